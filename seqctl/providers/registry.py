"""Open the provider for an inbox kind."""

from __future__ import annotations

import importlib

from seqctl.providers.base import InboxInfo, Provider

_CLASSES = {
    "maildir": ("seqctl.providers.maildir", "MaildirProvider"),
    "smtp": ("seqctl.providers.smtp", "SmtpProvider"),
    "gmail": ("seqctl.providers.gmail", "GmailProvider"),
    "outlook": ("seqctl.providers.outlook", "OutlookProvider"),
}


def open_provider(info: InboxInfo) -> Provider:
    module_name, class_name = _CLASSES[info.kind]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(info)
