"""`seqctl doctor` (SPEC 19): look up each sending domain's MX, SPF, DKIM and DMARC records
with dnspython, read the settings and recent sends, and hand the plain values to the judges
in `deliverability`.

Every lookup has a time limit, and once the DNS server has timed out the rest of the run
asks it nothing more (each such lookup is `unknown` at once), so a dead server costs one
timeout, not one per record. A slow server that answers each question just in time is
bounded too: the lookups of a run share RUN_SECONDS, after which the rest are `unknown`. The
command always finishes in bounded time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver
from sqlite_utils import Database

from seqctl import settings
from seqctl.engine import accounts
from seqctl.engine import deliverability as judge
from seqctl.engine.deliverability import Check, SpfWalk
from seqctl.errors import SeqctlError

LOOKUP_SECONDS = 3.0      # one query, retries included
RUN_SECONDS = 15.0        # all the lookups of one run
BOUNCE_WINDOW = 100       # the bounce rate is judged over this many recent sends
MAX_SPF_DEPTH = 10


def parse_server(text: str) -> tuple[str, int]:
    """`SEQCTL_DNS_SERVER`: `HOST[:PORT]`, `[IPv6]:PORT` or a bare IPv6 address. A host name
    is resolved once, here. SeqctlError when it is not one of those."""
    raw = text.strip()
    host, port = raw, 53
    if raw.startswith("["):
        host, closed, rest = raw[1:].partition("]")
        if not closed:
            raise SeqctlError(f"SEQCTL_DNS_SERVER '{text}' is not HOST[:PORT]")
        if rest:
            if not rest.startswith(":"):
                raise SeqctlError(f"SEQCTL_DNS_SERVER '{text}' is not HOST[:PORT]")
            port = _port(rest[1:], text)
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        port = _port(port_text, text)
    if not host:
        raise SeqctlError(f"SEQCTL_DNS_SERVER '{text}' names no host (HOST[:PORT])")
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0], port
    except (OSError, UnicodeError):
        raise SeqctlError(f"SEQCTL_DNS_SERVER: cannot resolve the host '{host}'") from None


def _port(value: str, text: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SeqctlError(f"SEQCTL_DNS_SERVER '{text}': the port must be 1-65535")
    return int(value)


@dataclass(frozen=True)
class Answer:
    """Records found (possibly none), or `error` when the question got no answer."""
    values: tuple[Any, ...] = ()
    error: str | None = None


class Lookup:
    """DNS questions for the doctor, asked of one server (`SEQCTL_DNS_SERVER`) or of the
    system's resolvers. NXDOMAIN and no-data are answers with no records; a server error,
    refusal or timeout is an `Answer` with an error."""

    def __init__(self, server: tuple[str, int] | None, timeout: float = LOOKUP_SECONDS,
                 budget: float = RUN_SECONDS):
        self.down: str | None = None
        self.budget = budget
        self.spent = 0.0            # seconds spent waiting for the server in this run
        self.cache: dict[tuple[str, str], Answer] = {}
        try:
            self.resolver = dns.resolver.Resolver(configure=server is None)
        except dns.resolver.NoResolverConfiguration:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.down = "no DNS resolver is configured (set SEQCTL_DNS_SERVER=HOST[:PORT])"
        if server is not None:
            self.resolver.nameservers = [server[0]]
            self.resolver.port = server[1]
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout

    def _ask(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        if key in self.cache:
            return self.cache[key]
        if self.down is None and self.spent >= self.budget:
            self.down = (f"the DNS server answered too slowly ({self.spent:.1f} s for this "
                         "run's lookups); try another with SEQCTL_DNS_SERVER")
        if self.down is not None:
            return Answer(error=self.down)
        started = time.monotonic()
        try:
            result = self.resolver.resolve(key[0] + ".", rdtype, raise_on_no_answer=False,
                                           search=False)
            answer = Answer(tuple(result.rrset or ()))
        except dns.resolver.NXDOMAIN:
            answer = Answer()
        except dns.exception.Timeout:
            self.down = f"the DNS server did not answer within {self.resolver.lifetime:g} s"
            answer = Answer(error=self.down)
        except dns.resolver.NoNameservers as exc:
            answer = Answer(error=_server_error(exc))
        except dns.exception.DNSException as exc:
            answer = Answer(error=f"{type(exc).__name__}: {exc}")
        finally:
            self.spent += time.monotonic() - started
        self.cache[key] = answer
        return answer

    def txt(self, name: str) -> Answer:
        """TXT strings (each record's character-strings joined, as SPF and DKIM read them)."""
        answer = self._ask(name, "TXT")
        if answer.error:
            return answer
        return Answer(tuple(b"".join(r.strings).decode("utf-8", "replace")
                            for r in answer.values if hasattr(r, "strings")))

    def mx(self, name: str) -> Answer:
        """(preference, host) pairs; a null MX is (0, '')."""
        answer = self._ask(name, "MX")
        if answer.error:
            return answer
        return Answer(tuple((r.preference, r.exchange.to_text(omit_final_dot=True)
                             .rstrip(".")) for r in answer.values if hasattr(r, "exchange")))


def _server_error(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for error in errors:
        text = str(error[-1]) if isinstance(error, tuple) else str(error)
        if text:
            return f"the DNS server answered {text}"
    return "the DNS server answered with an error"


# --- the checks that need DNS --------------------------------------------------------------


def walk_spf(lookup: Lookup, domain: str) -> tuple[SpfWalk | None, str | None]:
    """The domain's SPF records and, when there is exactly one, its whole include/redirect
    tree: lookups counted over every record reached (stops once past the limit)."""
    answer = lookup.txt(domain)
    if answer.error:
        return None, answer.error
    records = judge.spf_records(answer.values)
    if len(records) != 1:
        return SpfWalk(tuple(records), 0, ()), None
    lookups = 0
    domains: list[str] = []
    problems: list[str] = []
    unresolved: list[str] = []
    seen = {domain}

    def visit(text: str, depth: int) -> None:
        nonlocal lookups
        record = judge.parse_spf(text)
        lookups += record.lookups
        targets = list(record.includes)
        if record.redirect and record.all_qualifier is None:
            targets.append(record.redirect)
        for target in targets:
            if lookups > judge.SPF_LOOKUP_LIMIT or depth >= MAX_SPF_DEPTH:
                return
            domains.append(target)
            if "%" in target or target in seen:     # a macro, or a loop
                continue
            seen.add(target)
            found = lookup.txt(target)
            if found.error:
                unresolved.append(target)
                continue
            nested = judge.spf_records(found.values)
            if len(nested) != 1:
                problems.append(f"{target} has {len(nested) or 'no'} SPF record"
                                + ("s" if len(nested) > 1 else ""))
                continue
            visit(nested[0], depth + 1)

    visit(records[0], 0)
    return SpfWalk(tuple(records), lookups, tuple(domains), tuple(problems),
                   tuple(unresolved)), None


def check_dmarc(lookup: Lookup, domain: str) -> Check:
    org = judge.organizational_domain(domain)
    here = lookup.txt(f"_dmarc.{domain}")
    if here.error:
        return judge.judge_dmarc(domain, org, None, None, here.error)
    at_org: Answer = Answer()
    if org != domain and not judge.dmarc_records(here.values):
        at_org = lookup.txt(f"_dmarc.{org}")
    return judge.judge_dmarc(domain, org, here.values,
                             None if at_org.error else at_org.values, at_org.error)


def check_dkim(lookup: Lookup, domain: str, provider: str | None,
               selector: str | None, mx_error: str | None = None) -> Check:
    managed = judge.judge_dkim_managed(domain)
    if managed is not None and selector is None:
        return managed
    selectors = (selector,) if selector else judge.PROVIDER_DKIM_SELECTORS.get(provider or "", ())
    found: dict[str, Sequence[str] | None] = {}
    errors: dict[str, str] = {}
    for name in selectors:
        answer = lookup.txt(f"{name}._domainkey.{domain}")
        found[name] = None if answer.error else answer.values
        if answer.error:
            errors[name] = answer.error
    return judge.judge_dkim(domain, found, errors, mx_error=mx_error)


# --- the workflow --------------------------------------------------------------------------


def bounces_of_recent_sends(db: Database, inbox_id: int) -> tuple[int, int]:
    """(sent, hard-bounced) over the inbox's last `BOUNCE_WINDOW` sends."""
    recent = [row[0] for row in db.execute(
        "SELECT id FROM outbox WHERE inbox_id = ? AND status = 'sent' "
        "ORDER BY sent_at DESC, id DESC LIMIT ?", [inbox_id, BOUNCE_WINDOW])]
    if not recent:
        return 0, 0
    marks = ",".join("?" * len(recent))
    bounced = db.execute(f"SELECT COUNT(DISTINCT outbox_id) FROM events WHERE kind = 'bounce' "
                         f"AND outbox_id IN ({marks})", recent).fetchone()[0]
    return len(recent), bounced


def diagnose(db: Database, lookup: Lookup, address: str | None = None,
             dkim_selector: str | None = None) -> dict[str, Any]:
    """The `seqctl doctor --json` document for every inbox, or for ADDRESS (an inbox's, or
    any address: then the provider is told by its MX hosts and there is no inbox cap)."""
    targets: list[tuple[str, dict[str, Any] | None]]
    if address is not None:
        normalised = accounts.normalise_email(address, what="address")
        inbox = next((row for row in accounts.list_inboxes(db)
                      if row["address"] == normalised), None)
        targets = [(normalised, inbox)]
    else:
        targets = [(row["address"], row) for row in accounts.list_inboxes(db)]
        if not targets:
            raise SeqctlError("no inboxes to check: add one (`seqctl inbox add` or `seqctl "
                              "inbox connect`), or name an address: seqctl doctor you@acme.com")
    tracking_base_url = settings.get(db, "tracking_base_url")
    physical_address = settings.get(db, "physical_address")
    hourly_cap = settings.get_int(db, "sequence_hourly_send_cap")
    threshold = settings.get_float(db, "bounce_pause_threshold")
    reports = []
    every_check: list[Check] = []
    for target_address, inbox in targets:
        domain = judge.domain_of(target_address)
        mx = lookup.mx(domain)
        provider = judge.provider_of(inbox["kind"] if inbox else None,
                                     inbox["config"] if inbox else None,
                                     [host for _, host in mx.values])
        spf_walk, spf_error = walk_spf(lookup, domain)
        sent, bounced = bounces_of_recent_sends(db, inbox["id"]) if inbox else (0, 0)
        checks = [
            judge.judge_mx(domain, None if mx.error else mx.values, mx.error),
            judge.judge_spf(domain, spf_walk, provider, spf_error),
            check_dkim(lookup, domain, provider, dkim_selector,
                       mx.error if provider is None else None),
            check_dmarc(lookup, domain),
            judge.judge_one_click(tracking_base_url),
            judge.judge_physical_address(physical_address),
            judge.judge_bounce_rate(sent, bounced, threshold),
            judge.judge_caps(provider, domain,
                             inbox["effective_daily_cap"] if inbox else None, hourly_cap),
        ]
        every_check += checks
        reports.append({"address": target_address, "domain": domain, "provider": provider,
                        "inbox": inbox is not None,
                        "checks": [check.as_dict() for check in checks]})
    return {"inboxes": reports, "ok": judge.overall_ok(every_check)}
