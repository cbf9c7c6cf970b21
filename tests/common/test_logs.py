"""JSON log lines carry the job id, also from threads a servicer starts for its work."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading

from konspekt.logs import JsonFormatter, _JobIdFilter, in_this_context, job_id_var


def _lines_from_a_worker_thread(wrap: bool) -> list[dict[str, str]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_JobIdFilter())
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("konspekt.test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def rpc() -> None:  # what a servicer does: the wrapper set the id, work runs in a thread
        job_id_var.set("job-42")
        logger.info("in the RPC thread")

        def work() -> None:
            logger.info("in the worker thread")

        worker = threading.Thread(target=in_this_context(work) if wrap else work)
        worker.start()
        worker.join()

    try:
        contextvars.copy_context().run(rpc)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_thread_started_in_this_context_logs_the_job_id() -> None:
    lines = _lines_from_a_worker_thread(wrap=True)
    assert [(line["msg"], line.get("job_id")) for line in lines] == [
        ("in the RPC thread", "job-42"),
        ("in the worker thread", "job-42"),
    ]
    assert lines[0]["service"] == "test" and lines[0]["level"] == "info"


def test_without_it_a_thread_loses_the_job_id() -> None:
    """Why the servicers start their threads with in_this_context."""
    lines = _lines_from_a_worker_thread(wrap=False)
    assert [line.get("job_id") for line in lines] == ["job-42", None]
