"""``embedsuite serve``: the REST API and the Gradio UI on one port, with its safeguards.

:func:`build_server` puts the UI (``build_demo``) under ``/`` of the REST app
(:func:`embedsuite.app.rest.build_api`), so ``/v1/...``, ``/health`` and ``/docs`` sit
beside the UI. :func:`check_exposure` refuses to open a server to the network with
neither a UI password nor an API key unless ``--insecure`` says so.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Any

from embedsuite.app.ui import MAX_UPLOAD_BYTES, AppContext

logger = logging.getLogger(__name__)

__all__ = ["build_server", "check_exposure", "is_loopback", "read_auth"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_auth(value: str | None, file: str | os.PathLike[str] | None
              ) -> list[tuple[str, str]]:
    """UI accounts from ``--auth USER:PASSWORD`` and ``--auth-file`` (one USER:PASSWORD per
    line; blank lines and ``#`` comments skipped).

    Raises:
        ValueError: An entry without ``:``, an empty user or password, or a missing file.
    """
    entries: list[tuple[str, str]] = []
    raw: list[tuple[str, str]] = []
    if value:
        raw.append(("--auth", value))
    if file:
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"--auth-file {str(path)!r} not found; expected a text file with "
                             f"one USER:PASSWORD per line")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                raw.append((f"{path.name} line {n}", line.strip()))
    for where, item in raw:
        user, sep, password = item.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"{where}: expected USER:PASSWORD (both non-empty), got "
                             f"{'an entry without a colon' if not sep else 'an empty part'}")
        entries.append((user.strip(), password))
    return entries


def check_exposure(host: str, *, auth: list[tuple[str, str]], api_key: str | None,
                   insecure: bool) -> None:
    """Refuse a non-loopback ``host`` with neither accounts nor an API key (unless
    ``insecure``); warn when only one of the two protects the server.

    Raises:
        ValueError: The server would be open to the network unprotected.
    """
    if is_loopback(host):
        return
    if not auth and not api_key:
        if not insecure:
            raise ValueError(
                f"--host {host} opens the server to other machines, and it has neither a UI "
                f"password nor an API key. Add --auth USER:PASSWORD (or --auth-file FILE) and "
                f"--api-key KEY, or pass --insecure if the network is trusted.")
        logger.warning("serving on %s with no authentication (--insecure)", host)
        return
    if not auth:
        logger.warning("serving on %s: the REST routes need the API key, the UI is open "
                       "(add --auth to protect it)", host)
    if not api_key:
        logger.warning("serving on %s: the UI needs a password, the REST routes are open "
                       "(add --api-key to protect them)", host)


def build_server(ctx: AppContext, *, workers: int | None = None, max_queue: int = 200,
                 auth: list[tuple[str, str]] | None = None, api_key: str | None = None,
                 public_stats: bool = False) -> Any:
    """The FastAPI app serving the REST routes and, under ``/``, the Gradio UI.

    Args:
        ctx: The shared app context (encoder, heads, limits).
        workers: Handlers run at once across the UI (see ``build_demo``).
        max_queue: Requests that may wait for the UI; more are refused with a message.
        auth: UI accounts (Gradio's login page); ``None`` or empty: no login.
        api_key: Bearer token the ``/v1`` routes need; ``None``: open.
        public_stats: Serve ``/server_stats`` to every client, not only loopback.
    """
    import gradio as gr

    from embedsuite.app.blocks import build_demo
    from embedsuite.app.rest import build_api

    api = build_api(ctx, api_key=api_key, public_stats=public_stats)
    demo = build_demo(ctx.encoder_name, ctx=ctx, workers=workers)
    demo.queue(max_size=max_queue)
    return gr.mount_gradio_app(api, demo, path="/", auth=auth or None,
                               max_file_size=MAX_UPLOAD_BYTES, show_error=False,
                               footer_links=["api"])
