"""`seqctl serve`: the unsubscribe, open-pixel and click-redirect endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import config, output, settings
from seqctl.commands._common import db
from seqctl.errors import SeqctlError
from seqctl.files import install_secret


def register(root: typer.Typer) -> None:
    root.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
) -> None:
    """Serve one-click unsubscribe (RFC 8058), the open pixel and click redirects for the
    links in sent emails. Put it behind HTTPS at the `tracking_base_url` setting; a path in
    that URL (https://t.example.com/seq) is served too.

    \b
    Example:
      seqctl serve --host 127.0.0.1 --port 8080
    """
    try:
        import uvicorn

        from seqctl.server import make_app
    except ImportError as exc:
        raise SeqctlError(f"`seqctl serve` needs the serve extra ({exc.name} is missing): "
                          "pip install 'seqctl[serve]'") from None

    base = settings.get(db(), "tracking_base_url")
    if not base:
        output.warn("tracking_base_url is not set, so sent emails carry no links to this "
                    "server: `seqctl settings set tracking_base_url https://...`")
    output.info(f"serving on http://{host}:{port} (tracking_base_url: {base or 'not set'})")
    key = install_secret(config.home())
    uvicorn.run(make_app(config.db_path(), key, base), host=host, port=port, log_level="warning",
                server_header=False, proxy_headers=True)
