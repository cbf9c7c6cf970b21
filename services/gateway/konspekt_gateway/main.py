"""``python -m konspekt_gateway``: settings from the environment, JSON logs, uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from pydantic import ValidationError

from konspekt.logs import setup_logging
from konspekt.settings import S3Settings
from konspekt_gateway.app import create_app
from konspekt_gateway.settings import GatewaySettings

log = logging.getLogger("konspekt_gateway")


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
    config = uvicorn.Config(
        create_app(settings, s3),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our JSON handler
        access_log=False,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
    # SIGTERM/SIGINT: stop accepting, finish requests (10 s at most), run the lifespan's end;
    # uvicorn then re-raises the signal, so the exit status says how the process ended.
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
