"""The maildir inbox: sent mail as files in DIR/sent, incoming mail read once from DIR/inbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from seqctl.providers.base import InboxInfo, ProviderError
from seqctl.providers.maildir import MaildirProvider, create_maildir

ADDRESS = "rep@example.com"


def make_provider(directory: Path) -> MaildirProvider:
    return MaildirProvider(InboxInfo(id=1, address=ADDRESS, kind="maildir",
                                     config={"dir": str(directory)}))


def outgoing(message_id: str = "<out1@seqctl.test>") -> bytes:
    return (f"From: {ADDRESS}\r\nTo: ann@buyer.test\r\nSubject: Hello\r\n"
            f"Message-ID: {message_id}\r\n\r\nHi Ann\r\n").encode()


def incoming(n: int) -> bytes:
    return (f"From: ann@buyer.test\nTo: {ADDRESS}\nSubject: Re: Hello\n"
            f"Message-ID: <in{n}@buyer.test>\n\nreply {n}\n").encode()


def drop(directory: Path, sub: str, name: str, raw: bytes, age: float = 0) -> Path:
    """Deliver a file the way an MDA or a user would (tmp/ then rename)."""
    tmp = directory / "inbox" / "tmp" / name.split(":")[0]
    tmp.write_bytes(raw)
    target = directory / "inbox" / sub / name
    os.rename(tmp, target)
    if age:
        stamp = time.time() - age
        os.utime(target, (stamp, stamp))
    return target


@pytest.fixture
def maildir(tmp_path) -> Path:
    directory = tmp_path / "mail"
    create_maildir(directory)
    return directory


def test_create_maildir_makes_inbox_and_sent_with_new_cur_tmp(tmp_path):
    create_maildir(tmp_path / "m")
    create_maildir(tmp_path / "m")      # idempotent
    for folder in ("inbox", "sent"):
        for sub in ("new", "cur", "tmp"):
            assert (tmp_path / "m" / folder / sub).is_dir()


def test_send_writes_exactly_the_raw_bytes_to_sent_new(maildir):
    raw = outgoing()
    result = make_provider(maildir).send(raw, message_id="<out1@seqctl.test>",
                                         bcc=["hidden@log.test"])
    [file] = list((maildir / "sent" / "new").iterdir())
    assert file.read_bytes() == raw
    assert file.name == result.provider_message_id
    assert (result.thread_id, result.message_id) == (None, "<out1@seqctl.test>")
    assert list((maildir / "sent" / "tmp").iterdir()) == []


def test_send_creates_the_maildir_on_first_use(tmp_path):
    make_provider(tmp_path / "fresh").send(outgoing(), message_id="<out1@seqctl.test>")
    assert len(list((tmp_path / "fresh" / "sent" / "new").iterdir())) == 1
    assert (tmp_path / "fresh" / "inbox" / "cur").is_dir()


def test_a_folder_removed_between_two_sends_is_made_again(tmp_path):
    import shutil

    provider = make_provider(tmp_path / "mail")
    provider.send(outgoing("<o1@x>"), message_id="<o1@x>")
    shutil.rmtree(tmp_path / "mail")
    provider.send(outgoing("<o2@x>"), message_id="<o2@x>")
    [file] = list((tmp_path / "mail" / "sent" / "new").iterdir())
    assert b"<o2@x>" in file.read_bytes()


def test_every_send_gets_its_own_file(maildir):
    provider = make_provider(maildir)
    keys = {provider.send(outgoing(f"<o{n}@x>"), message_id=f"<o{n}@x>").provider_message_id
            for n in range(20)}
    assert len(keys) == 20
    assert len(list((maildir / "sent" / "new").iterdir())) == 20


def test_find_sent_finds_the_file_by_message_id_in_new_and_cur(maildir):
    provider = make_provider(maildir)
    first = provider.send(outgoing("<a@x>"), message_id="<a@x>")
    second = provider.send(outgoing("<b@x>"), message_id="<b@x>")
    # a mail client may move it to cur/ and mark it seen
    os.rename(maildir / "sent" / "new" / second.provider_message_id,
              maildir / "sent" / "cur" / f"{second.provider_message_id}:2,S")
    assert provider.find_sent("<a@x>").provider_message_id == first.provider_message_id
    assert provider.find_sent("<b@x>").provider_message_id == second.provider_message_id
    assert provider.find_sent("<never@x>") is None


def test_inbox_messages_are_returned_once_across_calls_including_ones_dropped_in_cur(maildir):
    provider = make_provider(maildir)
    first = provider.fetch_new(None)                      # seqctl made the folder: empty start
    assert first.messages == []
    drop(maildir, "new", "1700000001.A.host", incoming(1), age=30)
    drop(maildir, "cur", "1700000002.B.host:2,S", incoming(2), age=20)
    second = provider.fetch_new(first.cursor)
    assert [m.raw for m in second.messages] == [incoming(1), incoming(2)]
    assert [m.provider_id for m in second.messages] == ["1700000001.A.host", "1700000002.B.host"]
    assert second.messages[0].received_at is not None
    assert provider.fetch_new(second.cursor).messages == []
    drop(maildir, "new", "1700000003.C.host", incoming(3))
    third = provider.fetch_new(second.cursor)
    assert [m.raw for m in third.messages] == [incoming(3)]
    assert provider.fetch_new(third.cursor).messages == []


def test_reading_leaves_the_inbox_untouched(maildir):
    provider = make_provider(maildir)
    path = drop(maildir, "new", "1700000001.A.host", incoming(1))
    provider.fetch_new(None)
    assert path.exists() and path.read_bytes() == incoming(1)


def test_a_message_a_mail_client_moves_to_cur_is_not_returned_again(maildir):
    provider = make_provider(maildir)
    path = drop(maildir, "new", "1700000001.A.host", incoming(1))
    first = provider.fetch_new(None)
    assert len(first.messages) == 1
    os.rename(path, maildir / "inbox" / "cur" / "1700000001.A.host:2,RS")
    assert provider.fetch_new(first.cursor).messages == []


def test_messages_dropped_before_the_first_sync_of_a_seqctl_made_folder_are_read(maildir):
    drop(maildir, "new", "1700000001.A.host", incoming(1))
    result = make_provider(maildir).fetch_new(None)
    assert [m.raw for m in result.messages] == [incoming(1)]


def test_an_existing_maildir_counts_as_old_mail_on_the_first_sync(tmp_path):
    directory = tmp_path / "existing"
    for sub in ("new", "cur", "tmp"):
        (directory / "inbox" / sub).mkdir(parents=True)
    drop(directory, "cur", "1600000000.OLD.host:2,S", incoming(0))
    provider = make_provider(directory)
    first = provider.fetch_new(None)
    assert first.messages == []
    drop(directory, "new", "1700000001.A.host", incoming(1))
    assert [m.raw for m in provider.fetch_new(first.cursor).messages] == [incoming(1)]


def test_a_crash_before_the_cursor_is_stored_returns_the_messages_again(maildir):
    provider = make_provider(maildir)
    start = provider.fetch_new(None).cursor
    drop(maildir, "new", "1700000001.A.host", incoming(1))
    lost = provider.fetch_new(start)            # the caller crashes: this cursor is never stored
    assert len(lost.messages) == 1
    again = provider.fetch_new(start)
    assert [m.provider_id for m in again.messages] == [m.provider_id for m in lost.messages]


def test_deleted_messages_leave_the_cursor(maildir):
    provider = make_provider(maildir)
    path = drop(maildir, "new", "1700000001.A.host", incoming(1))
    cursor = provider.fetch_new(None).cursor
    assert "1700000001.A.host" in cursor
    path.unlink()
    cursor = provider.fetch_new(cursor).cursor
    assert "1700000001.A.host" not in cursor


def test_tmp_and_dot_files_are_not_messages(maildir):
    provider = make_provider(maildir)
    cursor = provider.fetch_new(None).cursor
    (maildir / "inbox" / "tmp" / "half-written").write_bytes(b"From: x\n")
    (maildir / "inbox" / "new" / ".hidden").write_bytes(b"From: x\n")
    assert provider.fetch_new(cursor).messages == []


def test_a_garbled_cursor_is_a_provider_error(maildir):
    with pytest.raises(ProviderError, match="cursor"):
        make_provider(maildir).fetch_new("not json")


def test_an_inbox_without_dir_is_a_provider_error():
    with pytest.raises(ProviderError, match="dir"):
        MaildirProvider(InboxInfo(id=1, address=ADDRESS, kind="maildir", config={}))


def test_maildir_declares_an_immediate_sent_lookup():
    assert MaildirProvider.sent_lookup_lag == 0
