"""The judgements behind `seqctl doctor` (SPEC 19), as functions of plain values: DNS records
already fetched, settings already read, counts already made. No DNS, no database, no clock.

Each `judge_*` returns a `Check`: a status (`pass`, `warn`, `fail`, `unknown`), a one-line
detail and a one-line fix (empty when there is nothing to fix). `unknown` means the answer
could not be had (a DNS error or timeout), never that something is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
SPF_LOOKUP_LIMIT = 10      # RFC 7208 §4.6.4

# What each provider's mail needs in DNS, and its published sending limits.
PROVIDER_SPF = {"gmail": "_spf.google.com", "outlook": "spf.protection.outlook.com"}
PROVIDER_DKIM_SELECTORS = {"gmail": ("google",), "outlook": ("selector1", "selector2")}
PROVIDER_NAMES = {"gmail": "Gmail", "outlook": "Exchange Online"}
GMAIL_CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
OUTLOOK_CONSUMER_DOMAINS = frozenset({"outlook.com", "hotmail.com", "live.com", "msn.com"})
GMAIL_DAILY_LIMIT = {"workspace": 2000, "consumer": 500}
OUTLOOK_DAILY_LIMIT = 10_000
OUTLOOK_PER_MINUTE_LIMIT = 30


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def overall_ok(checks: Sequence[Check]) -> bool:
    """The doctor is happy when no check failed (warnings and unknowns do not fail it)."""
    return all(check.status != FAIL for check in checks)


# --- domains and providers -----------------------------------------------------------------


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().rstrip(".").lower()


@cache
def _suffix_extractor() -> Any:
    import tldextract

    # The list bundled with tldextract, never fetched or cached on disk (works offline).
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 include_psl_private_domains=True)


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label, by the Public Suffix List algorithm.
    A name no rule matches falls under the list's default rule `*` (its last label is the
    suffix), so `mail.sub.example` belongs to `sub.example`."""
    domain = domain.strip().rstrip(".").lower()
    labels = domain.split(".")
    suffix = _suffix_extractor()(domain).suffix or labels[-1]
    suffix_labels = suffix.count(".") + 1
    if len(labels) <= suffix_labels:
        return domain
    return ".".join(labels[-(suffix_labels + 1):])


def provider_of(kind: str | None, inbox_config: dict[str, Any] | None,
                mx_hosts: Sequence[str]) -> str | None:
    """`gmail`, `outlook`, or None (unknown): from the inbox kind, an SMTP inbox's host, or
    the domain's MX hosts."""
    if kind in ("gmail", "outlook"):
        return kind
    smtp_host = str((inbox_config or {}).get("smtp_host") or "").lower().rstrip(".")
    hosts = [smtp_host] if smtp_host else []
    hosts += [host.lower().rstrip(".") for host in mx_hosts]
    for host in hosts:
        if host.endswith(("google.com", "googlemail.com", "gmail.com")):
            return "gmail"
        if host.endswith(("outlook.com", "office365.com")):
            return "outlook"
    return None


# --- MX ------------------------------------------------------------------------------------


def judge_mx(domain: str, mx: Sequence[tuple[int, str]] | None, error: str | None = None) -> Check:
    """`mx` is (preference, host) pairs; None with `error` when the lookup failed."""
    if mx is None:
        return Check("mx", UNKNOWN, f"MX lookup for {domain} failed: {error}",
                     "check SEQCTL_DNS_SERVER or your network, then run doctor again")
    hosts = [host.rstrip(".") for _, host in sorted(mx)]
    if not hosts:
        return Check("mx", FAIL, f"{domain} has no MX records, so replies and bounces have "
                     "nowhere to go", f"add MX records for {domain} (your provider lists them)")
    if hosts == [""]:
        return Check("mx", FAIL, f"{domain} has a null MX (RFC 7505): it accepts no mail",
                     f"replace the null MX of {domain} with your provider's MX records")
    return Check("mx", PASS, f"{domain} has MX {', '.join(hosts[:3])}"
                 + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else ""))


# --- SPF -----------------------------------------------------------------------------------

LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists")


def spf_records(txt: Sequence[str]) -> list[str]:
    """The TXT strings that are SPF records (`v=spf1` alone or followed by a space)."""
    return [text for text in txt
            if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")]


@dataclass(frozen=True)
class SpfRecord:
    text: str
    lookups: int                          # terms of this record that cost a DNS lookup
    includes: tuple[str, ...]             # include: targets, in order
    redirect: str | None
    all_qualifier: str | None             # '+', '-', '~', '?', or None without `all`
    errors: tuple[str, ...] = field(default=())


def parse_spf(text: str) -> SpfRecord:
    """One SPF record's terms (RFC 7208 §4.6): what costs a lookup, where includes and the
    redirect point, and how `all` is qualified (a bare `all` is `+all`)."""
    lookups, includes, errors = 0, [], []
    redirect: str | None = None
    all_qualifier: str | None = None
    for term in text.split()[1:]:
        lowered = term.lower()
        if lowered.startswith("redirect="):
            redirect = term.split("=", 1)[1].rstrip(".").lower()
            lookups += 1
            continue
        if "=" in lowered.split(":", 1)[0]:
            continue                      # another modifier (exp=, unknown ones)
        qualifier = lowered[0] if lowered[0] in "+-~?" else "+"
        body = lowered[1:] if lowered[0] in "+-~?" else lowered
        name, _, value = body.partition(":")
        name = name.split("/", 1)[0]
        if name == "all":
            all_qualifier = qualifier
        elif name in LOOKUP_MECHANISMS:
            lookups += 1
            if name == "include":
                if value:
                    includes.append(value.rstrip("."))
                else:
                    errors.append("include without a domain")
        elif name not in ("ip4", "ip6"):
            errors.append(f"unknown mechanism '{term}'")
    return SpfRecord(text, lookups, tuple(includes), redirect, all_qualifier, tuple(errors))


@dataclass(frozen=True)
class SpfWalk:
    """What following a domain's SPF includes and redirects found (made by the workflow)."""
    records: tuple[str, ...]              # the SPF records at the domain itself
    lookups: int                          # total lookups over the whole tree
    domains: tuple[str, ...]              # every include/redirect target reached
    problems: tuple[str, ...] = ()        # includes that are missing or have no SPF record
    unresolved: tuple[str, ...] = ()      # names whose lookup failed (DNS error, timeout)


def judge_spf(domain: str, walk: SpfWalk | None, provider: str | None,
              error: str | None = None) -> Check:
    """One `v=spf1` record, at most 10 lookups, not `+all`, and it covers the provider."""
    fix_add = (f"publish one TXT record at {domain}: v=spf1 "
               + (f"include:{PROVIDER_SPF[provider]} " if provider in PROVIDER_SPF else "")
               + "~all")
    if walk is None:
        return Check("spf", UNKNOWN, f"SPF lookup for {domain} failed: {error}",
                     "check SEQCTL_DNS_SERVER or your network, then run doctor again")
    if not walk.records:
        return Check("spf", FAIL, f"{domain} has no SPF record", fix_add)
    if len(walk.records) > 1:
        return Check("spf", FAIL, f"{domain} has {len(walk.records)} SPF records; receivers "
                     "treat that as an error (RFC 7208 §4.5)",
                     "merge them into a single v=spf1 record")
    record = parse_spf(walk.records[0])
    if record.all_qualifier == "+":
        return Check("spf", FAIL, f"the SPF record of {domain} ends in +all: anyone may send "
                     "as this domain", "end it with ~all or -all")
    if walk.lookups > SPF_LOOKUP_LIMIT:
        return Check("spf", FAIL, f"the SPF record of {domain} needs {walk.lookups} DNS "
                     f"lookups (limit {SPF_LOOKUP_LIMIT}), so receivers see a permerror",
                     "remove unused includes, or replace some with ip4:/ip6: ranges")
    if record.errors or walk.problems:
        return Check("spf", FAIL, f"the SPF record of {domain} is broken: "
                     + "; ".join(record.errors + walk.problems),
                     "fix the record so every term is valid and every include has SPF")
    required = PROVIDER_SPF.get(provider or "")
    covered = required is None or required in walk.domains
    if walk.unresolved and not covered:
        return Check("spf", UNKNOWN, f"could not follow {', '.join(walk.unresolved)} in the "
                     f"SPF record of {domain}", "run doctor again; check SEQCTL_DNS_SERVER")
    if not covered:
        return Check("spf", FAIL, f"the SPF record of {domain} does not cover "
                     f"{PROVIDER_NAMES[provider or '']} (include:{required})",
                     f"add include:{required} to the SPF record of {domain}")
    summary = f"one record, {walk.lookups} of {SPF_LOOKUP_LIMIT} lookups"
    if record.all_qualifier is None and record.redirect is None:
        return Check("spf", WARN, f"{summary}, but no `all` at the end (mail from anywhere "
                     "else is neutral)", "end the record with ~all or -all")
    if record.all_qualifier == "?":
        return Check("spf", WARN, f"{summary}, ending in ?all (neutral for everyone else)",
                     "end it with ~all or -all")
    if walk.unresolved:
        return Check("spf", UNKNOWN, f"{summary} so far; could not follow "
                     f"{', '.join(walk.unresolved)}", "run doctor again; check SEQCTL_DNS_SERVER")
    covers = f", covers {PROVIDER_NAMES[provider or '']}" if required else ""
    ending = f", ends {record.all_qualifier}all" if record.all_qualifier else ""
    return Check("spf", PASS, f"{summary}{ending}{covers}")


# --- DKIM ----------------------------------------------------------------------------------


def parse_tags(text: str) -> dict[str, str]:
    """`k=v; k2=v2` tag lists (DKIM keys, DMARC records); names lower-cased, values stripped."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags


def dkim_key_state(txt: Sequence[str]) -> str:
    """`key` (a usable public key), `revoked` (empty p=), or `none`."""
    state = "none"
    for text in txt:
        tags = parse_tags(text)
        if "p" not in tags or tags.get("v", "DKIM1") != "DKIM1":
            continue
        if tags["p"]:
            return "key"
        state = "revoked"
    return state


def judge_dkim_managed(domain: str) -> Check | None:
    """Mail from a consumer mailbox domain (gmail.com, outlook.com...) is signed by the
    provider with keys of its own choosing: nothing to look up or fix. None for others."""
    if domain in GMAIL_CONSUMER_DOMAINS or domain in OUTLOOK_CONSUMER_DOMAINS:
        return Check("dkim", PASS, f"{domain} is the provider's own domain: it signs the mail")
    return None


def judge_dkim(domain: str, selectors: dict[str, Sequence[str] | None],
               errors: dict[str, str] | None = None, *, hint: str = "",
               mx_error: str | None = None) -> Check:
    """`selectors` maps each selector looked at to its TXT strings (None: lookup failed).
    No selectors and `mx_error`: the provider, and so its selectors, could not be told
    because the MX lookup failed, which is `unknown`, not a missing setting."""
    if not selectors and mx_error:
        return Check("dkim", UNKNOWN, f"the provider of {domain}, and so its DKIM selectors, "
                     f"could not be told: MX lookup failed: {mx_error}",
                     "run doctor again; check SEQCTL_DNS_SERVER (or name your selector: "
                     "--dkim-selector SELECTOR)")
    if not selectors:
        return Check("dkim", WARN, f"no DKIM selector known for {domain}'s provider",
                     "name your selector: seqctl doctor --dkim-selector SELECTOR")
    found = [s for s, txt in selectors.items() if txt is not None and dkim_key_state(txt) == "key"]
    names = ", ".join(f"{s}._domainkey.{domain}" for s in selectors)
    if found:
        return Check("dkim", PASS, "DKIM key at " + ", ".join(
            f"{s}._domainkey.{domain}" for s in found))
    failed = [s for s, txt in selectors.items() if txt is None]
    if failed:
        reason = (errors or {}).get(failed[0], "lookup failed")
        return Check("dkim", UNKNOWN, f"DKIM lookup at {failed[0]}._domainkey.{domain} "
                     f"failed: {reason}", "run doctor again; check SEQCTL_DNS_SERVER")
    revoked = [s for s, txt in selectors.items() if dkim_key_state(txt or ()) == "revoked"]
    if revoked:
        return Check("dkim", FAIL, f"the DKIM key at {revoked[0]}._domainkey.{domain} is "
                     "revoked (empty p=)", hint or "publish the current key from your provider")
    return Check("dkim", FAIL, f"no DKIM key at {names}",
                 hint or "turn on DKIM signing at your provider and publish its key")


# --- DMARC ---------------------------------------------------------------------------------


def dmarc_records(txt: Sequence[str]) -> list[str]:
    return [text for text in txt if text.replace(" ", "").lower().startswith("v=dmarc1")]


def judge_dmarc(domain: str, org_domain: str, at_domain: Sequence[str] | None,
                at_org: Sequence[str] | None, error: str | None = None) -> Check:
    """A `v=DMARC1` record at `_dmarc.DOMAIN`, or else at the organizational domain (then
    its `sp=` applies, else `p=`), and how strict its policy is. `at_org` is only looked at
    when DOMAIN has none; None means the lookup failed."""
    fix_add = (f"publish a TXT record at _dmarc.{org_domain}: v=DMARC1; p=quarantine; "
               f"rua=mailto:dmarc@{org_domain}")
    if at_domain is None:
        return Check("dmarc", UNKNOWN, f"DMARC lookup at _dmarc.{domain} failed: {error}",
                     "run doctor again; check SEQCTL_DNS_SERVER")
    records, where, inherited = dmarc_records(at_domain), domain, False
    if not records and org_domain != domain:
        if at_org is None:
            return Check("dmarc", UNKNOWN, f"DMARC lookup at _dmarc.{org_domain} failed: "
                         f"{error}", "run doctor again; check SEQCTL_DNS_SERVER")
        records, where, inherited = dmarc_records(at_org), org_domain, True
    if not records:
        searched = f"_dmarc.{domain}" + (f" or _dmarc.{org_domain}" if org_domain != domain
                                          else "")
        return Check("dmarc", FAIL, f"no DMARC record at {searched}", fix_add)
    if len(records) > 1:
        return Check("dmarc", FAIL, f"_dmarc.{where} has {len(records)} DMARC records; "
                     "receivers then apply none (RFC 7489 §6.6.3)", "keep a single record")
    tags = parse_tags(records[0])
    policy = (tags.get("sp") if inherited else None) or tags.get("p", "")
    policy = policy.lower()
    source = f"inherited from _dmarc.{org_domain}" if inherited else f"at _dmarc.{domain}"
    if policy not in ("none", "quarantine", "reject"):
        return Check("dmarc", FAIL, f"the DMARC record {source} has no valid policy "
                     f"(p={tags.get('p', '')})", "set p=quarantine or p=reject")
    pct = tags.get("pct", "100")
    partial = f", applied to {pct}% of mail" if pct != "100" else ""
    if policy == "none":
        return Check("dmarc", WARN, f"DMARC {source}, policy none: monitoring only{partial}",
                     f"once reports look clean, set p=quarantine at _dmarc.{where}")
    return Check("dmarc", PASS if not partial else WARN,
                 f"DMARC {source}, policy {policy}{partial}",
                 "" if not partial else f"raise pct to 100 at _dmarc.{where}")


# --- settings and sending ------------------------------------------------------------------

LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")


def judge_one_click(tracking_base_url: str) -> Check:
    """RFC 8058 one-click unsubscribe needs the `serve` endpoint at an https base URL."""
    fix = "seqctl settings set tracking_base_url https://t.example.com and run `seqctl serve` there"
    if not tracking_base_url:
        return Check("one_click", FAIL, "tracking_base_url is not set, so emails carry no "
                     "one-click unsubscribe (RFC 8058)", fix)
    parts = urlsplit(tracking_base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        if host.startswith(LOOPBACK_HOSTS):
            return Check("one_click", WARN, f"tracking_base_url {tracking_base_url} is a "
                         "loopback address: recipients cannot reach it", fix)
        return Check("one_click", FAIL, f"tracking_base_url {tracking_base_url} is not https",
                     fix)
    return Check("one_click", PASS, f"one-click unsubscribe at {tracking_base_url}")


def judge_physical_address(value: str) -> Check:
    if not value.strip():
        return Check("physical_address", FAIL, "no physical address: CAN-SPAM wants a postal "
                     "address in every commercial email",
                     "seqctl settings set physical_address '1 Main St, Springfield'")
    return Check("physical_address", PASS, f"set: {' '.join(value.split())}")


def judge_bounce_rate(sent: int, bounced: int, threshold: float) -> Check:
    """Hard bounces over the last (up to) 100 sends. `threshold` is the setting at which
    sending pauses (`bounce_pause_threshold`); from 2% on, receivers start to notice."""
    if sent == 0:
        return Check("bounce_rate", PASS, "nothing sent yet")
    share = bounced / sent
    text = f"{bounced} of the last {sent} sends bounced ({share:.1%})"
    if share > threshold:
        return Check("bounce_rate", FAIL, text + f", over the {threshold:.0%} "
                     "bounce_pause_threshold", "verify addresses before enrolling them; remove the bad ones")
    if share >= min(0.02, threshold / 2):
        return Check("bounce_rate", WARN, text, "verify addresses before enrolling them")
    return Check("bounce_rate", PASS, text)


def judge_caps(provider: str | None, domain: str, daily_cap: int | None,
               hourly_cap: int) -> Check:
    """The inbox's daily cap and the hourly cap within the provider's published limits:
    Gmail 2,000 a day on Workspace and 500 on a consumer account; Exchange Online 10,000
    recipients a day and 30 a minute. `daily_cap` is None for an address that is no inbox."""
    if provider == "gmail":
        account = "consumer" if domain in GMAIL_CONSUMER_DOMAINS else "workspace"
        daily_limit, per_hour = GMAIL_DAILY_LIMIT[account], None
        label = f"Gmail ({'consumer account' if account == 'consumer' else 'Workspace'})"
    elif provider == "outlook":
        daily_limit, per_hour = OUTLOOK_DAILY_LIMIT, OUTLOOK_PER_MINUTE_LIMIT * 60
        label = "Exchange Online"
    else:
        return Check("caps", UNKNOWN, "the provider is not Gmail or Exchange Online, so its "
                     "limits are not known", "check your provider's sending limits by hand")
    problems = []
    if daily_cap is not None and daily_cap > daily_limit:
        problems.append(f"daily cap {daily_cap:,} is over {label}'s {daily_limit:,} a day")
    if per_hour is not None and hourly_cap > per_hour:
        problems.append(f"hourly cap {hourly_cap:,} is over {label}'s "
                        f"{OUTLOOK_PER_MINUTE_LIMIT} a minute")
    if hourly_cap > daily_limit:
        problems.append(f"hourly cap {hourly_cap:,} is over {label}'s {daily_limit:,} a day")
    if problems:
        return Check("caps", FAIL, "; ".join(problems),
                     "lower them: seqctl inbox set ADDRESS --daily-cap N, seqctl settings set "
                     "sequence_hourly_send_cap N")
    daily = f"daily cap {daily_cap:,}" if daily_cap is not None else "no daily cap (not an inbox)"
    return Check("caps", PASS, f"{daily} and hourly cap {hourly_cap:,} within {label}'s "
                 f"{daily_limit:,} a day")
