"""A fake Microsoft identity platform (v2.0 endpoints), served over https because MSAL accepts
only https authorities. MSAL built with `instance_discovery=False` asks for:

- GET  /{tenant}/v2.0/.well-known/openid-configuration
- POST /{tenant}/oauth2/v2.0/devicecode          (initiate_device_flow)
- POST /{tenant}/oauth2/v2.0/token               (device_code and refresh_token grants)

Token responses carry `client_info` and an (unsigned) `id_token`, which MSAL needs to create
the account in its cache. Errors look like AAD's: `{"error", "error_description",
"error_codes"}`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from typing import Any

from fakes import FakeServer, Request, Response, json_response

_RESERVED = {"openid", "profile", "offline_access"}


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class MSIdentityServer(FakeServer):
    api_pattern = r"/oauth2/v2\.0/token$"

    def __init__(self, *, client_id: str = "ms-client-id", username: str = "rep@contoso.com",
                 pending_polls: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.client_id = client_id
        self.username = username
        self.pending_polls = pending_polls       # authorization_pending answers before success
        self.uid = "00000000-0000-0000-aaaa-000000000001"
        self.utid = "9188040d-6c67-4c5b-b112-36a304b66dad"
        self._counter = itertools.count(1)
        self.device_codes: dict[str, int] = {}   # device code → pending polls left
        self.refresh_tokens: dict[str, str] = {}  # refresh token → scope string
        self.access_tokens: dict[str, str] = {}   # access token → scope string
        self.revoked = False

    # -- scripting ------------------------------------------------------------------------

    def revoke(self) -> None:
        """Consent withdrawn / password reset: refresh answers invalid_grant, tokens die."""
        with self.lock:
            self.revoked = True
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def is_valid(self, token: str | None) -> bool:
        with self.lock:
            return bool(token) and token in self.access_tokens

    # -- routing --------------------------------------------------------------------------

    def route(self, request: Request) -> Response | None:
        match = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|"
                             r"oauth2/v2\.0/devicecode|oauth2/v2\.0/token)", request.path)
        if not match:
            return None
        tenant, what = match.groups()
        base = f"{self.url}/{tenant}"
        if what.endswith("openid-configuration"):
            return json_response(200, {
                "issuer": f"{self.url}/{self.utid}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": None,
            })
        form = request.form()
        if form.get("client_id") != self.client_id:
            return self._error("unauthorized_client", 400, 700016,
                               f"Application with identifier '{form.get('client_id')}' was "
                               "not found in the directory.")
        if what == "oauth2/v2.0/devicecode":
            return self._devicecode(form)
        return self._token(form)

    def _error(self, error: str, status: int, code: int, description: str) -> Response:
        return json_response(status, {
            "error": error, "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
        })

    def _devicecode(self, form: dict[str, str]) -> Response:
        number = next(self._counter)
        device_code = f"device-code-{number}"
        user_code = f"FAKE{number:04d}"
        self.device_codes[device_code] = self.pending_polls
        verification = "https://microsoft.com/devicelogin"
        return json_response(200, {
            "user_code": user_code, "device_code": device_code,
            "verification_uri": verification, "expires_in": 900, "interval": 1,
            "message": f"To sign in, use a web browser to open the page {verification} and "
                       f"enter the code {user_code} to authenticate.",
        })

    def _issue(self, scope: str) -> Response:
        number = next(self._counter)
        granted = " ".join(s for s in scope.split() if s not in _RESERVED)
        access, refresh = f"eyJ0.fake-access-{number}", f"fake-refresh-{number}"
        self.access_tokens[access] = granted
        self.refresh_tokens[refresh] = granted
        now = int(time.time())
        id_token = ".".join([
            _b64url({"typ": "JWT", "alg": "none"}),
            _b64url({"aud": self.client_id, "iss": f"{self.url}/{self.utid}/v2.0",
                     "iat": now, "nbf": now, "exp": now + 3600, "name": "Rep",
                     "oid": self.uid, "preferred_username": self.username,
                     "sub": "fake-sub", "tid": self.utid, "ver": "2.0"}),
            "",
        ])
        return json_response(200, {
            "token_type": "Bearer", "scope": granted, "expires_in": 3600,
            "ext_expires_in": 3600, "access_token": access, "refresh_token": refresh,
            "id_token": id_token, "client_info": _b64url({"uid": self.uid, "utid": self.utid}),
        })

    def _token(self, form: dict[str, str]) -> Response:
        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            code = form.get("device_code", "")
            if code not in self.device_codes:
                return self._error("invalid_grant", 400, 70000, "The device code is unknown.")
            if self.device_codes[code] > 0:
                self.device_codes[code] -= 1
                return self._error("authorization_pending", 400, 70016,
                                   "OAuth 2.0 device flow error. Authorization is pending.")
            del self.device_codes[code]
            return self._issue(form.get("scope", ""))
        if grant == "refresh_token":
            if self.revoked or form.get("refresh_token") not in self.refresh_tokens:
                return self._error("invalid_grant", 400, 70000,
                                   "The provided authorization code or refresh token has "
                                   "expired due to inactivity.")
            return self._issue(form.get("scope", ""))
        return self._error("unsupported_grant_type", 400, 70003, f"grant_type {grant}")
