"""MIME helpers shared by the mail providers: the envelope of a raw message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.parser import BytesHeaderParser
from email.utils import getaddresses


def _header_block(raw: bytes) -> tuple[bytes, bytes]:
    """Split a message into its header block (with the blank line) and the body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index != -1:
            cut = index + len(separator)
            return raw[:cut], raw[cut:]
    return raw, b""


def strip_bcc(raw: bytes) -> tuple[bytes, list[str]]:
    """Remove any Bcc header (with its continuation lines) from the bytes that go on the wire,
    returning the addresses it named so they still get the message."""
    head, body = _header_block(raw)
    if not re.search(rb"(?im)^bcc:", head):
        return raw, []
    kept: list[bytes] = []
    removed: list[str] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and line.strip():
            if dropping:
                removed[-1] += line.decode("utf-8", "replace")
                continue
        else:
            dropping = line[:4].lower() == b"bcc:"
            if dropping:
                removed.append(line[4:].decode("utf-8", "replace"))
                continue
        kept.append(line)
    addresses = [addr for _name, addr in getaddresses(removed) if addr]
    return b"".join(kept) + body, addresses


def envelope_recipients(raw: bytes, bcc: Iterable[str] = ()) -> list[str]:
    """To + Cc from the headers, then Bcc; each address once (case-insensitive)."""
    headers = BytesHeaderParser().parsebytes(_header_block(raw)[0])    # the body is not read
    fields = [str(value) for name in ("To", "Cc") for value in headers.get_all(name, [])]
    addresses = [addr for _name, addr in getaddresses(fields) if addr]
    addresses += [addr for _name, addr in getaddresses(list(bcc)) if addr]
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique
