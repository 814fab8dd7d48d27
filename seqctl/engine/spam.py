"""Spam-risk score for one email: 0-100 (lower is better), with the reasons and how to fix them.

Deterministic and explainable: every point comes from a named rule with a detail and a fix.
Score the template text when you have it: `{{ first_name }}` counts as personalization, and
merge tags are ignored when judging capitals or counting words. Bands: green < 30, amber 30-59,
red >= 60.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

GREEN_BELOW = 30
RED_FROM = 60

#: Phrases that filters and readers associate with bulk promotion. Lowercase; matched on word
#: boundaries, case-insensitively. Grouped by theme.
# fmt: off
SPAM_PHRASES: tuple[str, ...] = (
    # urgency
    "act immediately", "act now", "apply now", "buy now", "call now", "don't delete",
    "don't miss out", "do not delete", "expires today", "final notice", "hurry", "last chance",
    "limited offer", "limited time", "offer expires", "once in a lifetime", "order now",
    "urgent", "what are you waiting for", "while supplies last",
    # too good to be true
    "100% free", "100% guaranteed", "100% satisfied", "amazing offer", "best price",
    "cash bonus", "exclusive deal", "free gift", "free money", "guaranteed",
    "incredible deal", "lowest price", "miracle", "money back", "no catch", "no cost",
    "no credit card", "no obligation", "no strings attached", "prize", "risk free",
    "risk-free", "satisfaction guaranteed", "special promotion", "winner", "you have been selected",
    "you've been selected", "you have won", "you've won",
    # money
    "be your own boss", "double your", "earn extra", "extra income", "fast cash", "get paid",
    "make money", "million dollars", "pre-approved", "work from home",
    # clicks and form
    "click below", "click here", "dear friend", "dear sir", "dear madam", "not spam",
    "this is not spam", "this isn't spam",
)
# fmt: on

URL_SHORTENERS: frozenset[str] = frozenset(
    {
        "bit.ly", "bitly.com", "buff.ly", "cutt.ly", "goo.gl", "is.gd", "lnkd.in", "ow.ly",
        "rb.gy", "rebrand.ly", "shorturl.at", "t.co", "t.ly", "tiny.cc", "tinyurl.com", "v.gd",
    }
)  # fmt: skip

_TAG_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_TAG_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _trie_pattern(phrases: tuple[str, ...]) -> str:
    """One regex alternation shaped as a trie: far faster than a flat list of alternatives."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        ends = "" in node
        branches = [
            re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not ends else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if ends else body

    return pattern(trie)


_PHRASES = re.compile(r"\b" + _trie_pattern(SPAM_PHRASES) + r"(?![\w-])")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+")
_URL_ANY_CASE = re.compile(_URL.pattern, re.IGNORECASE)
_URL_HOST = re.compile(r"(?:https?://)?(?:www\.)?([^/:?#\s]+)", re.IGNORECASE)
_CAPS_RUN = re.compile(r"[A-Z][A-Z][A-Z][A-Z]+")  # spelled out: much faster than [A-Z]{4,}
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_IMAGE_URL = re.compile(r"\.(?:png|jpe?g|gif|webp|bmp)(?:\?\S*)?$", re.IGNORECASE)
_ONE_PIXEL = re.compile(r"""\b(?:width|height)\s*=\s*["']?[01](?:px)?\b""", re.IGNORECASE)
_PIXEL_SRC = re.compile(r"(?:pixel|beacon|track|/open|/o/)", re.IGNORECASE)
_REPLY_FORWARD = re.compile(r"^\s*(?:re|fwd?|fw|aw|wg|tr|sv)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_GREETING = re.compile(
    r"\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)),?\s+([^\W\d_][\w'’-]*)",
    re.IGNORECASE,
)
_GENERIC_NAMES = frozenset(
    "there friend friends sir madam all team everyone customer valued user folks guys colleague "
    "colleagues sir/madam partner member".split()
)
_MONEY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("repeated dollar signs", re.compile(r"\${2,}")),
    ("a large dollar amount", re.compile(r"\$\s?\d{1,3}(?:,\d{3}){2,}|\$\s?\d{7,}")),
    (
        "an 'earn/make/win $' promise",
        re.compile(
            r"\b(?:earn|make|making|win|won|get)\s+(?:up\s+to\s+|over\s+|an\s+extra\s+)?\$",
            re.IGNORECASE,
        ),
    ),
    ("a percent-off offer", re.compile(r"\b\d{2,3}\s?%\s+off\b", re.IGNORECASE)),
    (
        "a dollars-per-day promise",
        re.compile(r"\$\s?\d[\d,]*\s*(?:/|per|a|an)\s*(?:hour|day|week|month)\b", re.IGNORECASE),
    ),
)


@dataclass
class Reason:
    """One rule that added points, what it found, and how to fix it."""

    rule: str
    points: int
    detail: str
    fix: str


@dataclass
class SpamReport:
    """The score (0-100), its band (green, amber, red) and the reasons, highest points first."""

    score: int
    band: str
    reasons: list[Reason]

    def to_json(self) -> dict:
        """`{"score", "band", "reasons": [{"rule", "points", "detail", "fix"}]}`."""
        return {
            "score": self.score,
            "band": self.band,
            "reasons": [asdict(reason) for reason in self.reasons],
        }


def band_for(score: int) -> str:
    """green below 30, amber 30-59, red from 60."""
    if score < GREEN_BELOW:
        return "green"
    return "amber" if score < RED_FROM else "red"


def _without_tags(text: str, placeholder: str) -> str:
    if "{" not in text:
        return text
    return _TAG_EXPRESSION.sub(placeholder, _TAG_STATEMENT.sub("", text))


def _host(url: str) -> str:
    match = _URL_HOST.match(url)
    return match[1].lower().rstrip(".") if match else ""


def _caps_words(text: str) -> list[str]:
    """Words of four or more letters, all capitals."""
    words = []
    for match in _CAPS_RUN.finditer(text):
        start, end = match.span()
        if (start == 0 or not text[start - 1].isalpha()) and (
            end == len(text) or not text[end].isalpha()
        ):
            words.append(match.group())
    return words


@dataclass
class _Body:
    images: int
    pixels: int
    urls: list[str]
    prose: str


def _split_body(text: str) -> _Body:
    """Separate images, tracking pixels and links from the prose, cheaply when there are none."""
    images = pixels = 0
    if "<img" in text or "<IMG" in text or "<Img" in text:
        for tag in _IMG_TAG.findall(text):
            if _ONE_PIXEL.search(tag) or _PIXEL_SRC.search(tag):
                pixels += 1
            else:
                images += 1
        text = _IMG_TAG.sub(" ", text)
    if "![" in text:
        images += len(_MARKDOWN_IMAGE.findall(text))
        text = _MARKDOWN_IMAGE.sub(" ", text)
    urls: list[str] = []
    if "http" in text or "www." in text:
        url_pattern = _URL
    else:
        lowered = text.lower()
        url_pattern = _URL_ANY_CASE if "http" in lowered or "www." in lowered else None
    if url_pattern is not None:
        urls = [url.rstrip(".,;:!?") for url in url_pattern.findall(text)]
        text = url_pattern.sub(" ", text)
        images += sum(1 for url in urls if _IMAGE_URL.search(url))
    return _Body(images, pixels, urls, text)


def score_email(subject: str | None, body: str, *, first_touch: bool = True) -> SpamReport:
    """Score one email (template or rendered text). `subject` None or "" on a follow-up
    (`first_touch=False`) means a reply in the thread and is not penalised."""
    reasons: list[Reason] = []

    def add(rule: str, points: int, detail: str, fix: str) -> None:
        reasons.append(Reason(rule, points, detail, fix))

    raw_subject = subject or ""
    personalized = "{{" in raw_subject or "{{" in body
    subject_text = _without_tags(raw_subject, "").strip()
    subject_sized = _without_tags(raw_subject, "Name").strip()
    body_text = _without_tags(body, "Name")
    parts = _split_body(body_text)
    urls, prose, images, pixels = parts.urls, parts.prose, parts.images, parts.pixels
    words = len(prose.split())

    if not raw_subject.strip():
        if first_touch:
            add(
                "empty_subject",
                25,
                "The first email has no subject.",
                "Add a short, specific subject (3-7 words).",
            )
    else:
        if first_touch and _REPLY_FORWARD.match(raw_subject):
            add(
                "re_fwd_first_touch",
                25,
                "A first email whose subject starts with Re:/Fwd: pretends to continue a thread.",
                "Drop the Re:/Fwd: prefix; follow-ups without a subject are threaded for you.",
            )
        letters = [c for c in subject_text if c.isalpha()]
        upper = sum(c.isupper() for c in letters)
        if len(letters) >= 6 and upper / len(letters) >= 0.7:
            add(
                "all_caps_subject",
                25,
                f"The subject is {round(100 * upper / len(letters))}% capital letters.",
                "Write the subject in sentence case, like a note to a colleague.",
            )
        if len(subject_sized) > 60:
            points = 20 if len(subject_sized) > 100 else 10
            add(
                "long_subject",
                points,
                f"The subject is {len(subject_sized)} characters long.",
                "Keep the subject under 60 characters; 3-7 words read best on phones.",
            )

    lowered_subject = subject_text.lower().replace("’", "'")
    lowered_body = prose.lower().replace("’", "'")
    subject_hits = sorted(set(_PHRASES.findall(lowered_subject)))
    body_hits = sorted(set(_PHRASES.findall(lowered_body)) - set(subject_hits))
    if subject_hits or body_hits:
        points = min(48, 12 * len(subject_hits) + 8 * len(body_hits))
        found = ", ".join(f'"{hit}"' for hit in subject_hits + body_hits)
        add(
            "spam_vocabulary",
            points,
            f"Promotional phrases: {found}.",
            "Say it plainly in your own words; cut hype, urgency and 'free' offers.",
        )

    money_text = f"{raw_subject}\n{prose}"
    money_found = (
        [label for label, pattern in _MONEY_PATTERNS if pattern.search(money_text)]
        if "$" in money_text or "%" in money_text
        else []
    )
    if money_found:
        add(
            "money_patterns",
            min(30, 12 * len(money_found)),
            "Money patterns: " + ", ".join(money_found) + ".",
            "Talk about the outcome for their business, not dollar figures or cash offers.",
        )

    exclamations_subject = raw_subject.count("!")
    exclamations_body = body.count("!")
    doubled = "!!" in raw_subject or "!!" in body
    exclamation_points = (
        (10 if exclamations_subject else 0)
        + 5 * max(0, exclamations_body - 2)
        + (10 if doubled else 0)
    )
    if exclamation_points:
        add(
            "excessive_exclamation",
            min(25, exclamation_points),
            f"{exclamations_subject} exclamation mark(s) in the subject, "
            f"{exclamations_body} in the body.",
            "Use at most one or two exclamation marks in the body and none in the subject.",
        )

    caps_words = _caps_words(prose)
    if len(caps_words) >= 3:
        add(
            "shouting",
            15 if len(caps_words) >= 6 else 10,
            f"{len(caps_words)} words in capitals: {', '.join(sorted(set(caps_words))[:5])}.",
            "Write the body in normal case; capitals read as shouting.",
        )

    hosts = sorted({_host(url) for url in urls})
    shorteners = [host for host in hosts if host in URL_SHORTENERS]
    if shorteners:
        add(
            "url_shortener",
            20,
            f"Shortened links ({', '.join(shorteners)}) hide where they go.",
            "Link to the full address on your own domain.",
        )
    distinct_links = len(set(urls))
    if distinct_links > 3:
        add(
            "too_many_links",
            min(25, 10 + 5 * (distinct_links - 4)),
            f"{distinct_links} links.",
            "Keep a first-touch email to one link (or none); put the rest in a follow-up.",
        )
    if distinct_links and words / distinct_links < 20:
        add(
            "link_to_text_ratio",
            15,
            f"{words} words of text for {distinct_links} link(s).",
            "Write at least a few sentences per link, or remove links.",
        )

    if images and words < 15:
        add(
            "image_only_body",
            40,
            f"The body is mostly images ({images}) with {words} words of text.",
            "Write the message as text; images alone look like a flyer and are often blocked.",
        )
    if pixels and not images:
        add(
            "tracking_pixel_only",
            15,
            "The body's only image is a tracking pixel.",
            "Remove the hand-added pixel; turn on track_opens if you need open tracking.",
        )
    if words == 0 and not images:
        add(
            "empty_body",
            30,
            "The body has no text.",
            "Write a short, personal message.",
        )
    elif words > 250:
        add(
            "long_body",
            10,
            f"The body is {words} words long.",
            "Cold emails that get replies are usually under 150 words.",
        )

    if not personalized:
        greeting = _GREETING.match(body)
        if greeting is None or greeting[1].lower() in _GENERIC_NAMES:
            add(
                "no_personalization",
                10,
                "No merge variable and no greeting by name.",
                "Greet the contact by name ({{ first_name }}) and mention something specific.",
            )

    reasons.sort(key=lambda reason: (-reason.points, reason.rule))
    score = min(100, sum(reason.points for reason in reasons))
    return SpamReport(score=score, band=band_for(score), reasons=reasons)
