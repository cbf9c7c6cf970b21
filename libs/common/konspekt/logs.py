"""Logging: JSON lines carrying the job id across services. Configure only from ``main``."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: The job being worked on, taken from gRPC metadata (JOB_ID_METADATA) by the servicer wrapper.
job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("konspekt_job_id", default="")

JOB_ID_METADATA = "x-konspekt-job-id"


def in_this_context(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` bound to a copy of the caller's context: a thread started with it logs the
    caller's job id (threads do not inherit context variables)."""
    context = contextvars.copy_context()
    return lambda: context.run(fn)


class _JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        job_id = getattr(record, "job_id", "")
        if job_id:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_JobIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s [%(job_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
