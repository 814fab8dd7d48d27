"""Local fakes of the HTTP APIs seqctl talks to: real HTTP servers on 127.0.0.1 with an
ephemeral port, run in a thread, shaped after the public API documentation.

`FakeServer` is the shared machinery: routing by method and path, a request log, scripted
failures (`fail_next`), optional TLS.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.tls import TLSFiles


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    times: int
    path_pattern: re.Pattern[str]
    body: Any


class FakeServer:
    """Subclasses set `api_pattern` (paths `fail_next` applies to by default), implement
    `route(request) -> Response | None` and `error(status, message) -> Response`."""

    api_pattern = r"^/"

    def __init__(self, *, tls: TLSFiles | None = None):
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self._failures: list[_Failure] = []
        self._delays: list[tuple[re.Pattern[str], float]] = []
        self.tls = tls
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = server.dispatch(request)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self.httpd.socket = context.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        times: int = 1,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        """The next `times` requests whose path matches `path` (a regex; default: the API)
        get `status`, with a Retry-After header when given."""
        with self.lock:
            self._failures.append(_Failure(
                status=status,
                retry_after=None if retry_after is None else str(retry_after),
                times=times,
                path_pattern=re.compile(path or self.api_pattern),
                body=body,
            ))

    def delay_next(self, seconds: float, *, path: str | None = None) -> None:
        """The next request matching `path` is handled normally, but only after `seconds`:
        a client with a shorter timeout gives up although the request went through."""
        with self.lock:
            self._delays.append((re.compile(path or self.api_pattern), seconds))

    def requests_to(self, pattern: str, method: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests
                    if re.search(pattern, r.path) and (method is None or r.method == method)]

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            delay = next((d for d in self._delays if d[0].search(request.path)), None)
            if delay is not None:
                self._delays.remove(delay)
        if delay is not None:
            time.sleep(delay[1])
        with self.lock:
            self.requests.append(request)
            for failure in self._failures:
                if failure.times > 0 and failure.path_pattern.search(request.path):
                    failure.times -= 1
                    if failure.body is not None:
                        response = json_response(failure.status, failure.body)
                    else:
                        response = self.error(failure.status, f"scripted failure {failure.status}")
                    if failure.retry_after is not None:
                        response.headers["Retry-After"] = failure.retry_after
                    return response
            try:
                response = self.route(request)
            except Exception as exc:  # a bug in a fake should read as a 500, not a hang
                return self.error(500, f"fake crashed: {exc!r}")
            return response if response is not None else self.error(404, "Not found")

    def route(self, request: Request) -> Response | None:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"error": {"code": status, "message": message}})
