"""Building the MIME message for one outgoing email, byte for byte.

The message is multipart/alternative: a text/plain part and an HTML part derived from it, both
UTF-8 and quoted-printable, with CRLF line endings (the form SMTP and the Gmail/Graph APIs take).
The bytes are written here rather than by `email.message.EmailMessage`: about ten times faster,
and deterministic by construction (the boundary comes from the Message-ID), so `seqctl preview`
shows exactly the bytes that are sent. Tests parse every message back with the stdlib parser.

Header values go through `header_safe`, so a merge value can never add or split a header.
Addresses are checked strictly; a malformed one raises ValueError rather than being guessed at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

from seqctl.engine.render import header_safe

_MAX_LINE = 78
_ENCODED_WORD_BYTES = 45  # 60 base64 characters: "=?utf-8?b?" + 60 + "?=" stays under 75


@dataclass
class Unsubscribe:
    """Where a contact unsubscribes: a one-click https URL and/or a mailto address."""

    mailto: str | None
    url: str | None
    physical_address: str | None


@dataclass
class Tracking:
    """Open and click tracking; applied to the HTML part only."""

    pixel_url: str | None = None
    wrap_link: Callable[[str], str] | None = None


@dataclass
class OutgoingEmail:
    """One email, merge already done; `text` is the body without the unsubscribe footer."""

    from_address: str
    from_name: str
    to_address: str
    to_name: str
    subject: str
    text: str
    cc: list[str]
    bcc: list[str]
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    unsubscribe: Unsubscribe | None = None
    tracking: Tracking | None = None


@dataclass
class BuiltMessage:
    """The message as sent.

    `to`, `cc` and `bcc` are bare addresses (the envelope recipients); `bcc` never appears in
    `raw`, so the provider must deliver to it. `headers` are the top-level headers of `raw`,
    unfolded and decoded. `text` and `html` are the decoded parts, footer included.
    """

    subject: str
    text: str
    html: str
    to: str
    cc: list[str]
    bcc: list[str]
    headers: dict[str, str]
    raw: bytes


# --- addresses ---------------------------------------------------------------------------

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_ADDR_SPEC = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_ADDRESS_ITEM = re.compile(
    r"""\s*(?:
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<name>[^<>",;@]*?))\s*<\s*(?P<angle>[^<>\s,;"]+)\s*>
        |(?P<bare>[^<>\s,;"]+)
    )\s*(?:[,;]|$)""",
    re.VERBOSE,
)
_PLAIN_PHRASE = re.compile(rf"[{_ATEXT} ]+")
_QUOTE_NEEDED = re.compile(r'[()<>\[\]:;@\\,."]')


def _addr_spec(value: str, what: str) -> str:
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{what}: invalid domain in {value!r}") from None
        address = f"{local}@{domain}"
    if not _ADDR_SPEC.fullmatch(address):
        raise ValueError(f"{what}: {value!r} is not an email address")
    return address


def _address_items(value: str, what: str) -> list[tuple[str, str]]:
    """`a@x.com`, `Name <a@x.com>`, `"Doe, Jane" <a@x.com>`, comma- or semicolon-separated."""
    text = header_safe(value)
    if _ADDR_SPEC.fullmatch(text):
        return [("", text)]
    items: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _ADDRESS_ITEM.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"{what}: {value!r} is not an email address or list of addresses")
        position = match.end()
        if match["bare"] is not None:
            items.append(("", _addr_spec(match["bare"], what)))
        else:
            quoted = match["quoted"]
            name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match["name"]
            items.append((_display_name(name), _addr_spec(match["angle"], what)))
    return items


def _unique_recipients(values: Iterable[str], what: str, seen: set[str]) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    for value in values:
        for name, address in _address_items(value, what):
            if address.lower() not in seen:
                seen.add(address.lower())
                result.append((name, address))
    return result


def _display_name(value: str) -> str:
    """A display name on one line, whitespace runs collapsed (a phrase carries no layout)."""
    return " ".join(header_safe(value).split())


def _display_address(name: str, address: str) -> str:
    """The decoded form of an address, as a parser prints it."""
    if not name:
        return address
    if _QUOTE_NEEDED.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{name} <{address}>"


# --- header encoding and folding ---------------------------------------------------------


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words, split between characters, never inside one."""
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + _ENCODED_WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return words


def _needs_encoding(text: str) -> bool:
    return not text.isascii() or "=?" in text or any(len(word) > 900 for word in text.split(" "))


def _fold(name: str, tokens: Iterable[str]) -> str:
    """`Name: tok tok ...` folded before a space so lines stay within 78 characters.

    Unfolding (removing each CRLF) gives the tokens joined by single spaces, exactly.
    """
    tokens = list(tokens)
    single = f"{name}: {' '.join(tokens)}"
    if len(single) <= _MAX_LINE:
        return single
    lines: list[str] = []
    line = f"{name}:"
    first = True
    for token in tokens:
        if not first and token and len(line) + 1 + len(token) > _MAX_LINE and line.strip():
            lines.append(line)
            line = " " + token
        else:
            line = f"{line} {token}"
        first = False
    lines.append(line)
    return "\r\n".join(lines)


def _unstructured(name: str, value: str) -> str:
    if not value:
        return f"{name}:"
    if _needs_encoding(value):
        return _fold(name, _encoded_words(value))
    return _fold(name, value.split(" "))


def _address_tokens(name: str, address: str) -> list[str]:
    if not name:
        return [address]
    if _needs_encoding(name):
        return [*_encoded_words(name), f"<{address}>"]
    if _PLAIN_PHRASE.fullmatch(name):
        return [*name.split(), f"<{address}>"]
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return [f'"{escaped}"', f"<{address}>"]


def _address_header(name: str, recipients: list[tuple[str, str]]) -> str:
    tokens: list[str] = []
    for index, (display, address) in enumerate(recipients):
        item = _address_tokens(display, address)
        if index < len(recipients) - 1:
            item[-1] += ","
        tokens.extend(item)
    return _fold(name, tokens)


_MSG_ID = re.compile(r"<?([^<>\s@]+@[^<>\s@]+)>?")


def _message_id(value: str, what: str) -> str:
    match = _MSG_ID.fullmatch(header_safe(value))
    if match is None:
        raise ValueError(f"{what}: {value!r} is not a Message-ID like <id@domain>")
    return f"<{match[1]}>"


# --- bodies ------------------------------------------------------------------------------

_URL = re.compile(r"""(?:https?://|www\.)[^\s<>"'`]+""", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?'\"*_]}"


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        if last in _TRAILING_PUNCTUATION or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


def find_links(text: str) -> list[str]:
    """The links in plain text as the HTML part makes them clickable, in order (repeats kept)."""
    return [url for url in (_trim_url(m.group()) for m in _URL.finditer(text)) if url]


def _escape_text(text: str) -> str:
    return html.escape(text, quote=False).replace("  ", "&nbsp; ").replace("\n", "<br>\n")


def html_from_text(text: str, *, wrap_link: Callable[[str], str] | None = None) -> str:
    """An HTML fragment for plain text: escaped, line breaks kept as `<br>`, runs of spaces
    kept, and http(s)/www links made clickable (their href passed through `wrap_link`)."""
    text = _normalize_newlines(text)
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if not url or url.lower() in ("http://", "https://", "www."):
            continue
        start = match.start()
        pieces.append(_escape_text(text[position:start]))
        target = url if "://" in url else f"https://{url}"
        if wrap_link is not None:
            target = wrap_link(target)
        pieces.append(f'<a href="{html.escape(target)}">{html.escape(url)}</a>')
        position = start + len(url)
    pieces.append(_escape_text(text[position:]))
    return "".join(pieces)


def _normalize_newlines(text: str) -> str:
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _mailto_uri(mailto: str) -> tuple[str, str]:
    """(bare address, `mailto:` URI asking for the subject "unsubscribe")."""
    value = header_safe(mailto)
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :]
    address, _, query = value.partition("?")
    address = _addr_spec(address, "unsubscribe mailto")
    return address, f"mailto:{address}?{query or 'subject=unsubscribe'}"


def _header_uri(url: str) -> str:
    return re.sub(r"[\s<>]", lambda m: f"%{ord(m.group()):02X}", header_safe(url))


def _footers(unsubscribe: Unsubscribe | None) -> tuple[str, str, list[str]]:
    """(text footer, HTML footer, List-Unsubscribe URIs)."""
    if unsubscribe is None:
        return "", "", []
    text_lines: list[str] = []
    html_lines: list[str] = []
    uris: list[str] = []
    url = _header_uri(unsubscribe.url) if unsubscribe.url else ""
    if url:
        uris.append(url)
    mailto = _mailto_uri(unsubscribe.mailto) if unsubscribe.mailto else None
    if mailto is not None:
        uris.append(mailto[1])
    if url:
        text_lines.append(f"Unsubscribe: {url}")
        html_lines.append(f'<a href="{html.escape(url)}">Unsubscribe</a>')
    elif mailto is not None:
        address, uri = mailto
        text_lines.append(f'To unsubscribe, email {address} with the subject "unsubscribe".')
        html_lines.append(
            f'To unsubscribe, email <a href="{html.escape(uri)}">{html.escape(address)}</a>'
            ' with the subject "unsubscribe".'
        )
    physical = _normalize_newlines(unsubscribe.physical_address or "").strip()
    if physical:
        text_lines.append(physical)
        html_lines.append(_escape_text(physical))
    return "\n".join(text_lines), "<br>\n".join(html_lines), uris


def _quoted_printable(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


# --- the message -------------------------------------------------------------------------


def build_message(email: OutgoingEmail) -> BuiltMessage:
    """The complete message for `email`: headers, text and HTML parts, footer, tracking.

    Same input, same bytes. Raises ValueError for a naive date or a malformed address or
    Message-ID.
    """
    if email.date.tzinfo is None or email.date.utcoffset() is None:
        raise ValueError("date: must be timezone-aware")
    from_address = _addr_spec(header_safe(email.from_address), "from")
    to_address = _addr_spec(header_safe(email.to_address), "to")
    from_name = _display_name(email.from_name)
    to_name = _display_name(email.to_name)
    subject = header_safe(email.subject)
    message_id = _message_id(email.message_id, "message_id")
    seen = {to_address.lower()}
    cc = _unique_recipients(email.cc, "cc", seen)
    bcc = _unique_recipients(email.bcc, "bcc", seen)
    in_reply_to = _message_id(email.in_reply_to, "in_reply_to") if email.in_reply_to else None
    references = [_message_id(ref, "references") for ref in email.references if ref.strip()]
    if in_reply_to and in_reply_to not in references:
        references.append(in_reply_to)

    text_footer, html_footer, unsubscribe_uris = _footers(email.unsubscribe)
    body = _normalize_newlines(email.text).rstrip()
    text = f"{body}\n\n{text_footer}\n" if text_footer else f"{body}\n"

    tracking = email.tracking
    wrap_link = tracking.wrap_link if tracking else None
    html_parts = [
        '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"></head>\n<body>\n<div>',
        html_from_text(body, wrap_link=wrap_link),
        "</div>\n",
    ]
    if html_footer:
        html_parts += ['<div style="margin-top:24px;font-size:12px;color:#777777">']
        html_parts += [html_footer, "</div>\n"]
    if tracking and tracking.pixel_url:
        pixel = html.escape(header_safe(tracking.pixel_url))
        html_parts.append(
            f'<img src="{pixel}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px">\n'
        )
    html_parts.append("</body>\n</html>\n")
    html_body = "".join(html_parts)

    boundary = "=_seqctl_" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
    date = format_datetime(email.date)
    lines = [
        _address_header("From", [(from_name, from_address)]),
        _address_header("To", [(to_name, to_address)]),
    ]
    headers = {
        "From": _display_address(from_name, from_address),
        "To": _display_address(to_name, to_address),
    }
    if cc:
        lines.append(_address_header("Cc", cc))
        headers["Cc"] = ", ".join(_display_address(name, address) for name, address in cc)
    lines += [_unstructured("Subject", subject), f"Date: {date}", f"Message-ID: {message_id}"]
    headers.update({"Subject": subject, "Date": date, "Message-ID": message_id})
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
        headers["In-Reply-To"] = in_reply_to
    if references:
        lines.append(_fold("References", references))
        headers["References"] = " ".join(references)
    lines.append("MIME-Version: 1.0")
    headers["MIME-Version"] = "1.0"
    if unsubscribe_uris:
        uri_tokens = [f"<{uri}>," for uri in unsubscribe_uris]
        uri_tokens[-1] = uri_tokens[-1][:-1]
        lines.append(_fold("List-Unsubscribe", uri_tokens))
        headers["List-Unsubscribe"] = " ".join(uri_tokens)
        if email.unsubscribe and email.unsubscribe.url and (
                email.unsubscribe.url.startswith("https://")):   # RFC 8058: https only
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    content_type = f'multipart/alternative; boundary="{boundary}"'
    lines.append(_fold("Content-Type", content_type.split(" ")))
    headers["Content-Type"] = content_type

    part_headers = 'charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    raw = b"".join(
        [
            "\r\n".join(lines).encode("ascii"),
            b"\r\n",
            delimiter,
            f"Content-Type: text/plain; {part_headers}".encode("ascii"),
            _quoted_printable(text),
            delimiter,
            f"Content-Type: text/html; {part_headers}".encode("ascii"),
            _quoted_printable(html_body),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
    return BuiltMessage(
        subject=subject,
        text=text,
        html=html_body,
        to=to_address,
        cc=[address for _, address in cc],
        bcc=[address for _, address in bcc],
        headers=headers,
        raw=raw,
    )
