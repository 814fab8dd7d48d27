"""Outlook / Microsoft 365 through Microsoft Graph, authorized with MSAL's device-code flow.

Send: `POST /me/sendMail` with the base64 MIME as the body (Graph keeps our headers, so
In-Reply-To/References thread replies), then the copy in Sent Items is looked up by
internetMessageId for the Graph id and conversationId. sendMail is asynchronous: the message
may sit in the Outbox for a while, so `find_sent` searches every folder (`/me/messages`), and
for `sent_lookup_lag` seconds after a send "not found" does not mean "not sent". Sync: a delta round on the inbox folder
(`changeType=created`, so flag changes never come back); the cursor is the deltaLink. Each new
message is read whole as MIME (`/messages/{id}/$value`).

The MSAL token cache lives in `$SEQCTL_HOME/tokens/outlook-<address>.json` (0600, atomic).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import msal
import requests

from seqctl import clock
from seqctl.errors import SeqctlError
from seqctl.files import write_private
from seqctl.providers.base import (
    AuthRevokedError,
    FetchResult,
    InboundMessage,
    InboxInfo,
    MessageRejectedError,
    ProviderError,
    RecipientRejectedError,
    SenderLimitError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.oauth import (
    DEFAULT_TIMEOUT,
    REVOKED_GRANT_ERRORS,
    api_error_message,
    error_for_response,
    graph_api_url,
    http_request,
    json_body,
    ms_authority,
    parse_retry_after,
    poll,
    redact,
    token_path,
    with_bcc,
)

try:
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS as _MICROSOFT_HOSTS
except ImportError:  # pragma: no cover - older/newer msal layouts
    _MICROSOFT_HOSTS = frozenset({"login.microsoftonline.com", "login.microsoft.com",
                                  "login.windows.net", "login.microsoftonline.us",
                                  "login.chinacloudapi.cn", "login.partner.microsoftonline.cn"})

# MSAL adds openid, profile and offline_access (the refresh token) by itself and refuses
# them in this list.
MAIL_SCOPES = ("Mail.Send", "Mail.Read", "User.Read")
CALENDAR_SCOPES = ("Calendars.Read",)

DELTA_SELECT = "id,conversationId,internetMessageId,receivedDateTime,from,subject"
RESYNC_DAYS = 7
RESYNC_LIMIT = 500
PAGE_SIZE = 50
_DELTA_EXPIRED_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
_TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
# Exchange Online's sending limits and refusals (learn.microsoft.com: Exchange Online limits,
# Graph error codes), lower-cased as `_graph_error_code` returns them.
_DAILY_LIMIT_CODES = frozenset({"errorexceededmessagelimit", "errorsubmissionquotaexceeded"})
_RATE_LIMIT_CODES = frozenset({"mailboxconcurrency", "applicationthrottled",
                               "errortoomanyobjectsopened"})
_INVALID_RECIPIENT_CODES = frozenset({"errorinvalidrecipients", "errorrecipientnotfound"})
_TOO_LARGE_CODES = frozenset({"errormessagesizeexceeded", "requestentitytoolarge"})
_SEND_AS_DENIED_CODES = frozenset({"errorsendasdenied"})
# sendMail answers 202 and sends later: the message can stay in the Outbox (and out of every
# search) for minutes. Reconciliation waits this long before trusting "not found".
SENT_LOOKUP_LAG = 900.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlparse(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def is_graph_url(url: str) -> bool:
    """True when `url` has the scheme, host and port of `graph_api_url()`: the only place
    the access token may be sent."""
    return bool(url) and _origin(url) == _origin(graph_api_url())


def outlook_scopes(calendar: bool = False) -> list[str]:
    return [*MAIL_SCOPES, *CALENDAR_SCOPES] if calendar else list(MAIL_SCOPES)


def build_msal_app(
    client_id: str, tenant: str | None, cache: msal.TokenCache, *, timeout: float = DEFAULT_TIMEOUT
) -> msal.PublicClientApplication:
    """A public-client MSAL app on `$SEQCTL_MS_AUTHORITY/<tenant>`. Hosts that are not
    Microsoft's own (test fakes, sovereign proxies) skip MSAL's instance discovery."""
    authority = ms_authority(tenant)
    extra: dict[str, Any] = {}
    if (urlparse(authority).hostname or "") not in _MICROSOFT_HOSTS:
        extra["instance_discovery"] = False
    try:
        return msal.PublicClientApplication(
            client_id, authority=authority, token_cache=cache, timeout=timeout, **extra
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(
            f"cannot reach Microsoft sign-in at {authority}: {redact(exc)}"
        ) from None
    except requests.RequestException as exc:
        raise TransientError(f"Microsoft sign-in at {authority} failed: {redact(exc)}") from None
    except ValueError as exc:
        raise ProviderError(
            f"Microsoft sign-in at {authority} is unusable: {redact(exc)}"
        ) from None


class _DeltaExpired(Exception):
    """The stored deltaLink is no longer valid (410 Gone / syncStateNotFound)."""


class OutlookProvider:
    """An inbox backed by Microsoft Graph. `inbox.config` holds "client_id" and "tenant"."""

    kind = "outlook"
    sent_lookup_lag: float = SENT_LOOKUP_LAG

    def __init__(
        self,
        inbox: InboxInfo,
        *,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        sent_lookup_tries: int = 3,
        sent_lookup_delay: float = 1.0,
        resync_limit: int = RESYNC_LIMIT,
        resync_days: int = RESYNC_DAYS,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.inbox = inbox
        self.address = inbox.address
        self.client_id = inbox.config.get("client_id") or ""
        self.tenant = inbox.config.get("tenant") or "common"
        self.token_file = token_path(inbox.home, "outlook", inbox.address)
        self.session = session or requests.Session()
        self.timeout = timeout
        self.sent_lookup_tries = sent_lookup_tries
        self.sent_lookup_delay = sent_lookup_delay
        self.resync_limit = resync_limit
        self.resync_days = resync_days
        self.page_size = page_size
        self._sleep = sleep
        self._cache: msal.SerializableTokenCache | None = None
        self._app: msal.PublicClientApplication | None = None

    # -- tokens ---------------------------------------------------------------------------

    def _reconnect_hint(self) -> str:
        return (
            f"reconnect it with `seqctl inbox connect outlook --client-id {self.client_id or 'ID'}"
            f"{'' if self.tenant == 'common' else ' --tenant ' + self.tenant}`"
        )

    def _msal(self) -> msal.PublicClientApplication:
        if self._app is None:
            if not self.client_id:
                raise AuthRevokedError(f"{self.address} has no client_id; {self._reconnect_hint()}")
            cache = msal.SerializableTokenCache()
            try:
                cache.deserialize(self.token_file.read_text())
            except FileNotFoundError:
                raise AuthRevokedError(
                    f"no Outlook token for {self.address}; {self._reconnect_hint()}"
                ) from None
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise AuthRevokedError(
                    f"the Outlook token file {self.token_file} is unusable "
                    f"({redact(exc)}); {self._reconnect_hint()}"
                ) from None
            except OSError as exc:
                raise ProviderError(
                    f"cannot read the Outlook token file {self.token_file}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            self._cache = cache
            self._app = build_msal_app(self.client_id, self.tenant, cache, timeout=self.timeout)
        return self._app

    def _save_cache(self) -> None:
        if self._cache is not None and self._cache.has_state_changed:
            try:
                write_private(self.token_file, self._cache.serialize())
            except OSError as exc:
                raise ProviderError(
                    f"cannot save the Outlook token file {self.token_file}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            self._cache.has_state_changed = False

    def access_token(self, scopes: list[str] | None = None, *, force_refresh: bool = False) -> str:
        """A valid access token from the cache, refreshed through the refresh token if needed.
        A grant that is gone → AuthRevokedError; an unreachable sign-in → TransientError."""
        app = self._msal()
        accounts = app.get_accounts()
        account = next(
            (a for a in accounts if (a.get("username") or "").lower() == self.address.lower()),
            accounts[0] if accounts else None,
        )
        if account is None:
            raise AuthRevokedError(f"no signed-in account for {self.address}; {self._reconnect_hint()}")
        try:
            result = app.acquire_token_silent_with_error(
                scopes or list(MAIL_SCOPES), account=account, force_refresh=force_refresh
            )
        except requests.RequestException as exc:
            raise TransientError(f"Microsoft token refresh failed: {redact(exc)}") from None
        except ValueError as exc:           # a non-JSON answer (an HTML 5xx page)
            raise TransientError(f"Microsoft token refresh failed: {redact(exc)}") from None
        finally:
            self._save_cache()
        if result and "access_token" in result:
            return result["access_token"]
        error = redact((result or {}).get("error", ""))
        description = redact(
            (result or {}).get("error_description") or "no usable token in the cache"
        )
        if error in _TRANSIENT_OAUTH_ERRORS:
            raise TransientError(f"Microsoft token refresh failed: {error}: {description}")
        if not result or error in REVOKED_GRANT_ERRORS:
            raise AuthRevokedError(
                f"Microsoft refused the grant for {self.address} ({error or 'no token'}: "
                f"{description.splitlines()[0] if description else ''}); {self._reconnect_hint()}"
            )
        raise ProviderError(f"Microsoft token refresh failed: {error}: {description}")

    # -- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        allow: tuple[int, ...] = (),
        scopes: list[str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """An authorized Graph call. 401 forces one token refresh and a retry; statuses in
        `allow` are returned, other failures raised as provider errors."""
        if not is_graph_url(url):
            raise ProviderError(
                f"{what}: refusing to send the access token to {_origin(url)[1] or url!r}, "
                f"which is not the Graph API host of {graph_api_url()}"
            )
        extra_headers = kwargs.pop("headers", {})
        unsafe = bool(kwargs.get("unsafe"))
        token = self.access_token(scopes)
        for attempt in (1, 2):
            response = http_request(
                self.session, method, url, what=what, timeout=self.timeout,
                headers={**extra_headers, "Authorization": f"Bearer {token}"}, **kwargs,
            )
            if response.status_code != 401 or attempt == 2:
                break
            token = self.access_token(scopes, force_refresh=True)
        if response.ok or response.status_code in allow:
            return response
        if response.status_code == 401:
            raise AuthRevokedError(
                f"{what}: Graph rejected a freshly refreshed token; {self._reconnect_hint()}"
            )
        raise graph_error(response, what, unsafe=unsafe)

    # -- sending ----------------------------------------------------------------------------

    def send(
        self,
        raw: bytes,
        *,
        message_id: str,
        thread_id: str | None = None,
        bcc: Iterable[str] = (),
    ) -> SendResult:
        raw = with_bcc(raw, bcc)
        self.request(
            "POST", f"{graph_api_url()}/me/sendMail", what="Graph sendMail",
            data=base64.b64encode(raw), headers={"Content-Type": "text/plain"}, unsafe=True,
        )
        # Graph answers 202 without an id; the copy lands in Sent Items moments later.
        found = poll(
            lambda: self._lookup_sent_quietly(message_id),
            tries=self.sent_lookup_tries, delay=self.sent_lookup_delay, sleep=self._sleep,
        )
        return found or SendResult(provider_message_id="", thread_id=None, message_id=message_id)

    def _lookup_sent_quietly(self, message_id: str) -> SendResult | None:
        # Already sent: a failing lookup must never look like a failed send. The copy in
        # Sent Items is waited for (its id is the one that lasts; an Outbox item's id
        # changes when Exchange moves it).
        try:
            return self._lookup_sent(message_id, folder="sentitems")
        except (ProviderError, KeyError, TypeError, AttributeError):
            return None

    def _lookup_sent(self, message_id: str, *, folder: str | None = None) -> SendResult | None:
        """The message with this internetMessageId in `folder`, or in any folder (Outbox,
        Sent Items, ...) when `folder` is None."""
        bracketed = message_id.strip()
        if not bracketed.startswith("<"):
            bracketed = f"<{bracketed}>"
        quoted = bracketed.replace("'", "''")
        path = f"/me/mailFolders/{folder}/messages" if folder else "/me/messages"
        what = "Graph sent items lookup" if folder else "Graph message lookup"
        found = json_body(self.request(
            "GET", f"{graph_api_url()}{path}",
            what=what,
            params={
                "$filter": f"internetMessageId eq '{quoted}'",
                "$select": "id,conversationId,internetMessageId",
                "$top": "5",
            },
        ), what)
        for item in found.get("value", []):
            return SendResult(
                provider_message_id=item["id"],
                thread_id=item.get("conversationId"),
                message_id=item.get("internetMessageId") or message_id,
            )
        return None

    def find_sent(self, message_id: str) -> SendResult | None:
        """Search every folder: a message sendMail accepted may still be in the Outbox."""
        try:
            return self._lookup_sent(message_id)
        except AuthRevokedError:
            raise
        except ProviderError as exc:
            raise UndecidableError(f"cannot look {message_id} up in Outlook: {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise UndecidableError(
                f"cannot look {message_id} up in Outlook: unexpected answer "
                f"({type(exc).__name__})"
            ) from None

    # -- receiving ------------------------------------------------------------------------

    def _initial_delta_url(self, since: datetime) -> str:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = urlencode({
            "changeType": "created",
            "$select": DELTA_SELECT,
            "$filter": f"receivedDateTime ge {stamp}",
        }, quote_via=quote)
        return f"{graph_api_url()}/me/mailFolders/inbox/messages/delta?{query}"

    def _delta_round(self, url: str) -> tuple[list[dict[str, Any]], str]:
        """Follow @odata.nextLink pages to the end; return the items and the deltaLink."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.request(
                "GET", url, what="Graph messages delta", allow=(400, 404, 410),
                headers={"Prefer": f"odata.maxpagesize={self.page_size}"},
            )
            if response.status_code in (400, 404, 410):
                if response.status_code == 410 or _graph_error_code(response) in _DELTA_EXPIRED_CODES:
                    raise _DeltaExpired()
                raise error_for_response(response, "Graph messages delta")
            page = json_body(response, "Graph messages delta")
            items.extend(item for item in page.get("value", []) if "@removed" not in item)
            if page.get("@odata.nextLink"):
                url = self._checked_link(page["@odata.nextLink"], "nextLink")
                continue
            delta_link = page.get("@odata.deltaLink")
            if not delta_link:
                raise ProviderError("Graph messages delta: a page had neither nextLink nor deltaLink")
            return items, self._checked_link(delta_link, "deltaLink")

    @staticmethod
    def _checked_link(link: str, name: str) -> str:
        """A link from a Graph answer, followed (with the token) only on the Graph host."""
        if not isinstance(link, str) or not is_graph_url(link):
            host = _origin(link)[1] if isinstance(link, str) else ""
            raise ProviderError(
                f"Graph messages delta: the @odata.{name} points to {host or 'an unknown host'!r}, "
                f"not to {graph_api_url()}; refusing to follow it"
            )
        return link

    def fetch_new(self, cursor: str | None) -> FetchResult:
        if cursor is None:
            # A new round from now on: nothing old is fetched, only the deltaLink kept.
            _, delta_link = self._delta_round(self._initial_delta_url(clock.now()))
            return FetchResult(messages=[], cursor=delta_link)
        if not is_graph_url(cursor):
            # Stored for another Graph host (the endpoint changed, or the value was tampered
            # with): never send it the token; start a fresh round on the current host.
            return self._resync()
        try:
            items, delta_link = self._delta_round(cursor)
        except _DeltaExpired:
            return self._resync()
        return FetchResult(messages=self._inbound_messages(items), cursor=delta_link)

    def _resync(self) -> FetchResult:
        """The deltaLink expired: start a new round over the last `resync_days` and return
        the newest `resync_limit` messages. The engine skips those it has already seen."""
        since = clock.now() - timedelta(days=self.resync_days)
        items, delta_link = self._delta_round(self._initial_delta_url(since))
        items.sort(key=lambda item: item.get("receivedDateTime") or "", reverse=True)
        return FetchResult(
            messages=self._inbound_messages(items[: self.resync_limit]), cursor=delta_link
        )

    def _inbound_messages(self, items: list[dict[str, Any]]) -> list[InboundMessage]:
        messages = []
        seen: set[str] = set()
        for item in items:
            if item["id"] in seen:
                continue
            seen.add(item["id"])
            response = self.request(
                "GET", f"{graph_api_url()}/me/messages/{item['id']}/$value",
                what="Graph message MIME", allow=(404,),
            )
            if response.status_code == 404:      # deleted since the delta page
                continue
            messages.append(InboundMessage(
                provider_id=item["id"],
                raw=response.content,
                thread_id=item.get("conversationId"),
                received_at=_parse_graph_time(item.get("receivedDateTime")),
            ))
        return messages


def graph_error(response: requests.Response, what: str, *, unsafe: bool = False) -> ProviderError:
    """A failed Graph answer sorted by whose problem it is: 429 and the mailbox's limits
    (ErrorExceededMessageLimit per day, MailboxConcurrency) are a SenderLimitError; for a
    send, ErrorInvalidRecipients is a RecipientRejectedError, ErrorMessageSizeExceeded (or
    413) a MessageRejectedError and ErrorSendAsDenied an authorization problem; the rest as
    `error_for_response` sorts it."""
    status = response.status_code
    code = _graph_error_code(response)
    detail = redact(api_error_message(response))
    message = f"{what}: HTTP {status}: {detail}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if code in _DAILY_LIMIT_CODES:
        return SenderLimitError(message, retry_after=retry_after, daily=True)
    if status == 429 or code in _RATE_LIMIT_CODES:
        return SenderLimitError(message, retry_after=retry_after)
    if unsafe and code in _INVALID_RECIPIENT_CODES:
        return RecipientRejectedError(message)
    if unsafe and (status == 413 or code in _TOO_LARGE_CODES):
        return MessageRejectedError(message)
    if unsafe and code in _SEND_AS_DENIED_CODES:
        return AuthRevokedError(f"{message}; the signed-in account may not send as this address")
    return error_for_response(response, what, unsafe=unsafe)


def _graph_error_code(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["code"]).lower()
    except (ValueError, KeyError, TypeError):
        return ""


def _parse_graph_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- connecting -------------------------------------------------------------------------------


def connect_outlook(
    client_id: str,
    tenant: str,
    home: Path,
    *,
    printer: Callable[[str], Any] = print,
    calendar: bool = False,
) -> tuple[str, Path]:
    """Sign in with MSAL's device-code flow (prints the URL and the code), store the token
    cache and return (address, token file). Works on a host without a browser."""
    cache = msal.SerializableTokenCache()
    try:
        app = build_msal_app(client_id, tenant or "common", cache)
        flow = app.initiate_device_flow(scopes=outlook_scopes(calendar))
    except ProviderError as exc:
        raise SeqctlError(str(exc)) from exc
    except requests.RequestException as exc:
        raise SeqctlError(f"cannot reach Microsoft sign-in: {redact(exc)}") from None
    if "user_code" not in flow:
        raise SeqctlError(
            f"Microsoft refused to start the sign-in: {flow.get('error')}: "
            f"{(flow.get('error_description') or '').splitlines()[0] if flow.get('error_description') else ''}"
        )
    printer(flow["message"])
    try:
        result = app.acquire_token_by_device_flow(flow)
    except requests.RequestException as exc:
        raise SeqctlError(f"Microsoft sign-in failed: {redact(exc)}") from None
    if "access_token" not in result:
        description = (result.get("error_description") or "").splitlines()
        raise SeqctlError(
            f"Microsoft sign-in failed: {result.get('error')}: {description[0] if description else ''}"
        )
    try:
        response = http_request(
            requests.Session(), "GET", f"{graph_api_url()}/me", what="Graph /me",
            headers={"Authorization": f"Bearer {result['access_token']}"},
            params={"$select": "mail,userPrincipalName"},
        )
    except ProviderError as exc:
        raise SeqctlError(f"could not read the Outlook address: {exc}") from exc
    if not response.ok:
        raise SeqctlError(f"could not read the Outlook address: {error_for_response(response, 'Graph /me')}")
    me = response.json()
    address = (me.get("mail") or me.get("userPrincipalName") or "").lower()
    if not address:
        raise SeqctlError("Microsoft Graph returned no mail address for the signed-in user")
    path = token_path(home, "outlook", address)
    write_private(path, cache.serialize())
    return address, path
