"""Reading a raw message: decoded headers, addresses, Message-IDs, the text of its parts, and
the sender's own lines (quotes and the quoted original removed).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from seqctl.engine.classify.verdict import _MAX_DEPTH, _MAX_TEXT

# -- headers -------------------------------------------------------------------------------

_ID_RE = re.compile(r"<[^<>\s]+>")


def _header(msg: Message, name: str) -> str:
    """A header decoded to one line of text ('' when missing or unreadable)."""
    try:
        value = msg.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    return _decode(value)


def _decode(value: object) -> str:
    try:
        chunks = decode_header(value)  # type: ignore[arg-type]
    except Exception:
        return _one_line(str(value))
    text = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            text.append(_bytes_to_str(chunk, charset))
        else:
            text.append(chunk)
    return _one_line("".join(text))


def _bytes_to_str(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, TypeError, ValueError):
        return data.decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\udcff", "")).strip()


def _address(value: str) -> str | None:
    address = parseaddr(value)[1].strip().lower()
    return address if "@" in address else (address or None)


def _sender(msg: Message) -> str | None:
    return _address(_header(msg, "From"))


def _first_id(value: str) -> str | None:
    match = _ID_RE.search(value)
    if match:
        return match.group(0)
    bare = value.strip()
    return f"<{bare}>" if bare and " " not in bare else None


def _ids(value: str) -> list[str]:
    return _ID_RE.findall(value)


def _references(msg: Message) -> list[str]:
    found = _ids(_header(msg, "In-Reply-To")) + _ids(_header(msg, "References"))
    return list(dict.fromkeys(found))


def _recipients(msg: Message) -> set[str]:
    values = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        try:
            values.extend(_decode(v) for v in msg.get_all(name, []))
        except Exception:
            continue
    return {addr.lower() for _name, addr in getaddresses(values) if addr}


def _date_header(msg: Message) -> datetime | None:
    try:
        when = parsedate_to_datetime(_header(msg, "Date"))
    except Exception:
        return None
    return when if when.tzinfo else None


# -- message parts -------------------------------------------------------------------------


def _parts(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part of the message itself, not descending into attached messages."""
    yield msg
    if depth >= _MAX_DEPTH or msg.get_content_maintype() == "message":
        return
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for part in payload:
                if isinstance(part, Message):
                    yield from _parts(part, depth + 1)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).lower()
    return disposition.startswith("attachment")


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        try:
            charset = part.get_content_charset()
        except Exception:
            charset = None
        return _bytes_to_str(data[:_MAX_TEXT], charset)
    payload = part.get_payload()
    return payload[:_MAX_TEXT] if isinstance(payload, str) else ""


def _body_text(msg: Message) -> str:
    """The message's own text: text/plain parts, else HTML turned into text."""
    plain, rich = [], []
    for part in _parts(msg):
        if part.is_multipart() or _is_attachment(part):
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            plain.append(_part_text(part))
        elif content_type == "text/html":
            rich.append(_html_to_text(_part_text(part)))
    return "\n".join(plain or rich)[:_MAX_TEXT]


_HTML_QUOTE_RE = re.compile(
    r"<blockquote\b|<div[^>]*\b(class|id)=\"?(gmail_quote|divRplyFwdMsg|appendonsend)", re.I
)
_HTML_HIDDEN_RE = re.compile(r"<(script|style|head)\b", re.I)


def _html_to_text(markup: str) -> str:
    """Visible text of an HTML body, up to the quoted original (replies quote below)."""
    quote = _HTML_QUOTE_RE.search(markup)
    markup = markup[: quote.start()] if quote else markup
    kept, position, lowered = [], 0, markup.lower()
    for match in _HTML_HIDDEN_RE.finditer(markup):
        if match.start() < position:
            continue
        kept.append(markup[position : match.start()])
        close = lowered.find(f"</{match.group(1).lower()}", match.end())
        close = lowered.find(">", close) if close >= 0 else -1
        position = close + 1 if close >= 0 else len(markup)
    markup = "".join(kept) + markup[position:]
    markup = re.sub(r"<br\s*/?>|</(p|div|tr|li|h\d)\s*>", "\n", markup, flags=re.I)
    markup = re.sub(r"<[^>]*>", " ", markup)
    return html.unescape(markup)


_REPLY_SEPARATOR_RE = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original)"
    r"|_{10,}"
    r"|on\b.{0,200}\bwrote:"
    r"|am\b.{0,200}\bschrieb\b"
    r"|le\b.{0,200}\ba écrit"
    r"|el\b.{0,200}\bescribió"
    r"|from:\s.+"
    r"|von:\s.+"
    r"|de\s?:\s.+@"
    r")",
    re.IGNORECASE,
)


def _own_lines(text: str) -> list[str]:
    """The sender's own lines: quoted lines dropped, cut at the first reply separator."""
    lines = []
    for line in text.splitlines():
        if _REPLY_SEPARATOR_RE.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        lines.append(line)
    return lines


def _own_text(text: str) -> str:
    return "\n".join(_own_lines(text))[:5000]


def _fold(text: str) -> str:
    """Lower case without accents, for keyword matching in four languages."""
    folded = text.casefold()
    if folded.isascii():            # most mail: nothing to strip
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")
