"""The HTTP endpoint behind `tracking_base_url` (`seqctl serve`).

- `GET /u/{token}`: a confirmation page with an Unsubscribe button. A GET never unsubscribes:
  mail scanners follow every link.
- `POST /u/{token}` with `List-Unsubscribe=One-Click` (RFC 8058, urlencoded or multipart; the
  confirmation button sends the same): suppress the recipient and exit all their enrollments,
  then a small 200 page: no cookies, no redirect.
- `GET /o/{token}`: a 1x1 transparent GIF, and an `open` event.
- `GET /c/{token}`: 302 to the URL in the signed token when it is a link of that email, and a
  `click` event.
- `GET /healthz`: 200.

With a path in `tracking_base_url` (`https://t.example.com/seq`), every route is served under
it (`/seq/u/{token}`) as well as at the root, so a proxy may pass the path on or strip it.

A forged, altered or wrong-kind token, or one naming no email we sent, gets the same 404 and
changes nothing. HEAD requests never record anything. Each worker thread keeps its own SQLite
connection (WAL, busy timeout), so concurrent requests queue on the database, not fail.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from seqctl import clock
from seqctl import db as database
from seqctl.engine import links, pages, tracking

if TYPE_CHECKING:
    from sqlite_utils import Database

# The smallest transparent GIF (1x1, one transparent colour).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex"}

def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page in the report's look (`engine.pages`): inline CSS, nothing loaded."""
    return HTMLResponse(pages.notice_page(title, body), status_code=status, headers=NO_STORE)


def _not_found() -> Response:
    return PlainTextResponse("not found\n", status_code=404, headers=NO_STORE)


class _Connections:
    """One database connection per worker thread (sqlite3 connections stay in their thread)."""

    def __init__(self, path: Path):
        self.path = path
        self.local = threading.local()

    def get(self) -> Database:
        db = getattr(self.local, "db", None)
        if db is None:
            db = self.local.db = database.connect(self.path)
        return db


def make_app(db_path: Path, key: bytes, base_url: str = "") -> Starlette:
    """The Starlette app serving tracking links against the database at `db_path`; `key` is
    the install secret the links are signed with. Routes are served under the path of
    `base_url` (the tracking_base_url setting) and at the root."""
    connections = _Connections(Path(db_path))
    database.connect(Path(db_path)).close()      # create and migrate once, up front

    def open_pixel(request: Request) -> Response:
        token = links.verify("o", request.path_params["token"], key=key)
        if token is None:
            return _not_found()
        db = connections.get()
        if request.method == "HEAD":
            found = tracking.find_email(db, token.message_id) is not None
        else:
            found = tracking.record_open(db, token, clock.now())
        if not found:
            return _not_found()
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    def click(request: Request) -> Response:
        token = links.verify("c", request.path_params["token"], key=key)
        if token is None:
            return _not_found()
        if request.method == "HEAD":   # link checkers: the answer, but nothing recorded
            url = tracking.click_target(connections.get(), token)
        else:
            url = tracking.record_click(connections.get(), token, clock.now(), key=key)
        if url is None:
            return _not_found()
        return RedirectResponse(url, status_code=302, headers=NO_STORE)

    def confirm_page(request: Request) -> Response:
        token = links.verify("u", request.path_params["token"], key=key)
        if token is None or tracking.find_email(connections.get(), token.message_id) is None:
            return _not_found()
        return _page(
            "Unsubscribe",
            "<p>Stop receiving these emails?</p>\n"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" '
            'value="One-Click"><button type="submit">Unsubscribe</button></form>',
        )

    async def one_click(request: Request) -> Response:
        token = links.verify("u", request.path_params["token"], key=key)
        if token is None:
            return _not_found()
        try:
            form = await request.form()
        except Exception:  # a malformed body (bad multipart, wrong charset) is a bad request
            return _page("Unsubscribe", "<p>The request could not be read.</p>", 400)
        value = form.get("List-Unsubscribe")
        if not isinstance(value, str) or value.strip().lower() != "one-click":
            return _page("Unsubscribe",
                         "<p>Use the Unsubscribe button on the previous page.</p>", 400)
        done = await run_in_threadpool(_unsubscribe, connections, token)
        if not done:
            return _not_found()
        return _page("Unsubscribed", "<p>You are unsubscribed and will get no more emails "
                                     "from this sender.</p>")

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=NO_STORE)

    prefixes = dict.fromkeys([links.base_path(base_url), ""])
    return Starlette(routes=[
        route
        for prefix in prefixes
        for route in (
            Route(f"{prefix}/u/{{token}}", confirm_page, methods=["GET"]),
            Route(f"{prefix}/u/{{token}}", one_click, methods=["POST"]),
            Route(f"{prefix}/o/{{token}}", open_pixel, methods=["GET"]),
            Route(f"{prefix}/c/{{token}}", click, methods=["GET"]),
            Route(f"{prefix}/healthz", healthz, methods=["GET"]),
        )
    ])


def _unsubscribe(connections: _Connections, token: links.Token) -> bool:
    return tracking.unsubscribe(connections.get(), token, clock.now(), via="one-click")
