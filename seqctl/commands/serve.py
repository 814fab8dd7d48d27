"""`seqctl serve`: the unsubscribe, open-pixel and click-redirect endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import config, output, settings
from seqctl.commands._common import db


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
) -> None:
    """Serve one-click unsubscribe (RFC 8058), the open pixel and click redirects for the
    links in sent emails. Put it behind HTTPS at the `tracking_base_url` setting."""
    import uvicorn

    from seqctl.server import make_app

    base = settings.get(db(), "tracking_base_url")
    if not base:
        output.warn("tracking_base_url is not set, so sent emails carry no links to this "
                    "server: `seqctl settings set tracking_base_url https://...`")
    output.info(f"serving on http://{host}:{port} (tracking_base_url: {base or 'not set'})")
    uvicorn.run(make_app(config.db_path()), host=host, port=port, log_level="warning",
                server_header=False, proxy_headers=True)
