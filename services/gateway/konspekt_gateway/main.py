"""``python -m konspekt_gateway``: settings from the environment, JSON logs, uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from konspekt.logs import setup_logging
from konspekt.settings import S3Settings
from konspekt_gateway.app import create_app
from konspekt_gateway.settings import GatewaySettings

log = logging.getLogger("konspekt_gateway")


class DrainingServer(uvicorn.Server):
    """Tells the app (``app.state.drain``) when a stop begins, before uvicorn waits for requests."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain: Callable[[], None] | None = getattr(self.app.state, "drain", None)
        if drain is not None and not self.should_exit:
            with contextlib.suppress(RuntimeError):  # no loop running: nothing to drain
                asyncio.get_running_loop().call_soon_threadsafe(drain)
        super().handle_exit(sig, frame)


def main() -> int:
    try:
        settings = GatewaySettings()
        s3 = S3Settings()
    except ValidationError as exc:
        setup_logging("gateway")
        log.error("invalid settings: %s", exc)
        return 2
    setup_logging("gateway", settings.log_level, settings.log_json)
    if not s3.configured:
        log.error("the object store is not configured: set KONSPEKT_S3_ENDPOINT and credentials")
        return 2
    app = create_app(settings, s3)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our JSON handler
        access_log=False,
        timeout_graceful_shutdown=settings.drain_seconds,
        lifespan="on",
    )
    # SIGTERM/SIGINT: stop accepting, end the event streams, finish requests (uploads: up to
    # drain_seconds), run the lifespan's end (the jobs' leases released); uvicorn then re-raises
    # the signal, so the exit status says how the process ended.
    server = DrainingServer(config, app)
    server.run()
    return 0 if server.started else 1
