"""Open the provider for an inbox: the one place that maps an inbox kind to its module.

The engine gets providers only through a `ProviderFactory` (an `inboxes` row -> a provider);
`default_factory` is the real one, tests pass fakes."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from seqctl import config
from seqctl.providers.base import InboxInfo, Provider, ProviderError

_CLASSES = {
    "maildir": ("seqctl.providers.maildir", "MaildirProvider"),
    "smtp": ("seqctl.providers.smtp", "SmtpProvider"),
    "gmail": ("seqctl.providers.gmail", "GmailProvider"),
    "outlook": ("seqctl.providers.outlook", "OutlookProvider"),
}

# Scopes an XOAUTH2 token must carry for SMTP/IMAP: Google's full-mail scope, Exchange Online's
# SMTP and IMAP scopes.
OUTLOOK_MAIL_PROTOCOL_SCOPES = [
    "https://outlook.office.com/SMTP.Send",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
]


ProviderFactory = Callable[[dict[str, Any]], Provider]


def inbox_info(row: dict[str, Any]) -> InboxInfo:
    """What a provider needs of an `inboxes` row (as `accounts.list_inboxes` returns it)."""
    return InboxInfo(
        id=row["id"],
        address=row["address"],
        kind=row["kind"],
        config=row["config"],
        home=config.home(),
    )


def default_factory(inbox: dict[str, Any]) -> Provider:
    """The provider of an `inboxes` row."""
    return open_provider(inbox_info(inbox))


def open_provider(info: InboxInfo) -> Provider:
    module_name, class_name = _CLASSES[info.kind]
    cls = getattr(importlib.import_module(module_name), class_name)
    if info.kind == "smtp" and info.config.get("auth") == "xoauth2":
        return cls(info, token_source=xoauth2_token_source(info))
    return cls(info)


def xoauth2_token_source(info: InboxInfo) -> Callable[[], str]:
    """Access tokens for SMTP/IMAP XOAUTH2 from a Gmail or Outlook authorization of the same
    address (`config["oauth"]` = "gmail" | "outlook"; for outlook also "client_id", "tenant"),
    refreshed and saved like the API providers' own."""
    grant = info.config.get("oauth")
    if grant == "gmail":
        from seqctl.providers.gmail import GmailProvider

        gmail = GmailProvider(replace(info, kind="gmail"))
        return gmail._access_token
    if grant == "outlook":
        from seqctl.providers.outlook import OutlookProvider

        outlook = OutlookProvider(replace(info, kind="outlook"))
        return lambda: outlook.access_token(OUTLOOK_MAIL_PROTOCOL_SCOPES)
    raise ProviderError(
        f"inbox {info.address} uses XOAUTH2 but names no authorization: set config \"oauth\" "
        "to gmail or outlook"
    )
