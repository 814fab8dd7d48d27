"""The embedded inbox: sent mail is written to the Maildir `DIR/sent`, incoming mail is read
from the Maildir `DIR/inbox`. No account, no network; what the demo and the tests run on.

Reading never changes the inbox (no renames, no flags), so a mail client or a sync tool such
as mbsync can share the folder. Which messages were already returned is in the cursor: the
keys seen so far that are still in the folder. The cursor only moves when the caller stores
the one it was given, so a crash between fetch and store returns the same messages again
(the caller dedupes by provider_id) and never loses one.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path

from seqctl import clock
from seqctl.providers.base import (
    FetchResult,
    InboundMessage,
    InboxInfo,
    ProviderError,
    SendResult,
    UndecidableError,
)

SUBDIRS = ("new", "cur", "tmp")
CREATED_MARKER = ".seqctl-created"   # the inbox folder was made by seqctl: nothing in it is old
FETCH_LIMIT = 1000                   # messages returned per call; `waiting` counts the rest
CURSOR_VERSION = 1

_counter = 0


def create_maildir(dir: Path) -> None:
    """Make `dir/inbox` and `dir/sent` Maildirs (new/, cur/, tmp/), mode 0700. Idempotent.
    An inbox folder created here is marked, so a first sync reads what was dropped into it
    before that sync (it cannot be mail from before the inbox existed)."""
    dir = Path(dir).expanduser()
    inbox_is_new = not (dir / "inbox").exists()
    for folder in ("inbox", "sent"):
        for sub in SUBDIRS:
            (dir / folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    if inbox_is_new:
        (dir / "inbox" / CREATED_MARKER).touch()


def maildir_key(file_name: str) -> str:
    """The unique part of a Maildir file name (without the ":2,FLAGS" info)."""
    return file_name.split(":", 1)[0]


def unique_name() -> str:
    """A standard Maildir unique name: time, microseconds, pid, counter, random, host."""
    global _counter
    _counter += 1
    now = clock.now().timestamp()
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    return (
        f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{_counter}"
        f"R{secrets.token_hex(8)}.{host}"
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _list(folder: Path) -> list[tuple[str, Path]]:
    """(key, path) of the messages in new/ then cur/. new/ is listed first: a message a mail
    client moves from new/ to cur/ meanwhile is then still seen in cur/."""
    found: list[tuple[str, Path]] = []
    for sub in ("new", "cur"):
        try:
            names = os.listdir(folder / sub)
        except FileNotFoundError:
            continue
        found.extend((maildir_key(name), folder / sub / name) for name in names
                     if not name.startswith("."))
    return found


def _message_id(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            headers = BytesHeaderParser().parse(handle)
    except FileNotFoundError:
        return None
    value = headers.get("Message-ID")
    return str(value).strip() if value else None


def _decode_cursor(cursor: str) -> set[str]:
    try:
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(data.get("v"))
        return set(data["seen"])
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ProviderError(f"unreadable maildir sync cursor: {cursor[:80]!r}") from error


def _encode_cursor(seen: Iterable[str]) -> str:
    return json.dumps({"v": CURSOR_VERSION, "seen": sorted(seen)}, separators=(",", ":"))


class MaildirProvider:
    """Sends by writing to `DIR/sent`, receives from `DIR/inbox`."""

    kind = "maildir"
    sent_lookup_lag: float = 0.0    # the file is in DIR/sent before send() returns

    def __init__(self, inbox: InboxInfo):
        self.inbox = inbox
        directory = inbox.config.get("dir")
        if not directory:
            raise ProviderError(f"inbox {inbox.address}: no maildir folder (dir) configured")
        self.dir = Path(directory).expanduser()
        self.sent_dir = self.dir / "sent"
        self.inbox_dir = self.dir / "inbox"
        self._ready = False

    def _ensure(self) -> None:
        """Create the folders once per provider (a dispatch batch), not once per email; a
        write that finds them gone makes `send` create them again."""
        if self._ready:
            return
        try:
            create_maildir(self.dir)
        except OSError as error:
            raise ProviderError(f"cannot create the maildir {self.dir}: {error}") from error
        self._ready = True

    def send(
        self,
        raw: bytes,
        *,
        message_id: str,
        thread_id: str | None = None,
        bcc: Iterable[str] = (),
    ) -> SendResult:
        """Write `raw` byte for byte to DIR/sent/new (via tmp/, then rename). Bcc is not
        recorded anywhere: the file is exactly the message."""
        self._ensure()
        key = unique_name()
        tmp = self.sent_dir / "tmp" / key
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:       # the folders were removed since: make them again
                self._ready = False
                self._ensure()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, self.sent_dir / "new" / key)
            _fsync_dir(self.sent_dir / "new")
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise ProviderError(f"cannot write to {self.sent_dir}: {error}") from error
        return SendResult(provider_message_id=key, thread_id=None, message_id=message_id)

    def find_sent(self, message_id: str) -> SendResult | None:
        """The file in DIR/sent (new/ or cur/) with this Message-ID, or None. The folder is
        local, so the answer is always certain."""
        wanted = message_id.strip()
        try:
            for key, path in _list(self.sent_dir):
                if _message_id(path) == wanted:
                    return SendResult(provider_message_id=key, thread_id=None, message_id=wanted)
        except OSError as error:        # unreadable folder or file: the answer is unknown
            raise UndecidableError(f"cannot read {self.sent_dir}: {error}") from error
        return None

    def fetch_new(self, cursor: str | None) -> FetchResult:
        """Messages in DIR/inbox (new/ and cur/) not returned before, oldest first.

        With no cursor, what is already there counts as old (nothing is returned), unless
        seqctl created the folder itself (then all of it arrived after the inbox was added)."""
        self._ensure()
        try:
            return self._fetch_new(cursor)
        except OSError as error:
            raise ProviderError(f"cannot read {self.inbox_dir}: {error}") from error

    def _fetch_new(self, cursor: str | None) -> FetchResult:
        present = _list(self.inbox_dir)
        present_keys = {key for key, _ in present}
        if cursor is None:
            if not (self.inbox_dir / CREATED_MARKER).exists():
                return FetchResult(messages=[], cursor=_encode_cursor(present_keys))
            seen: set[str] = set()
        else:
            seen = _decode_cursor(cursor) & present_keys   # forget what was deleted
        unseen: dict[str, Path] = {}
        for key, path in present:
            if key not in seen:
                unseen.setdefault(key, path)
        candidates = []
        for key, path in unseen.items():
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                mtime = 0.0         # moved meanwhile: read below finds it or the next call does
            candidates.append((mtime, key, path))
        candidates.sort()
        messages: list[InboundMessage] = []
        waiting = 0
        for index, (mtime, key, path) in enumerate(candidates):
            if len(messages) >= FETCH_LIMIT:
                waiting = len(candidates) - index
                break
            raw = self._read(key, path)
            if raw is None:
                continue
            messages.append(InboundMessage(
                provider_id=key,
                raw=raw,
                received_at=datetime.fromtimestamp(mtime, UTC) if mtime else None,
            ))
            seen.add(key)
        return FetchResult(messages=messages, cursor=_encode_cursor(seen), waiting=waiting)

    def _read(self, key: str, path: Path) -> bytes | None:
        """The file's bytes; if a mail client renamed it meanwhile, look for it again."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        for again_key, again_path in _list(self.inbox_dir):
            if again_key == key:
                try:
                    return again_path.read_bytes()
                except FileNotFoundError:
                    return None
        return None
