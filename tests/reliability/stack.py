"""The whole service as processes (konspekt_devstack.Stack) with the small models, and what the
reliability suites do to its processes: kill, freeze, restart, and look for leftovers."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import MODELS, Stack
from tests.e2e.test_stack import TERMINAL, upload, wait_for, wait_job

__all__ = ["TERMINAL", "upload", "wait_for", "wait_job"]

#: Whisper base (the default ASR model) and the 0.5B GGUF (faster than the 1.5B default).
SMALL_MODELS = {
    "KONSPEKT_ASR_MODEL": str(MODELS / "whisper-base"),
    "KONSPEKT_SUMMARIZER_MODEL": str(MODELS / "qwen2.5-0.5b-instruct" / "model.gguf"),
}


def start_stack(run_dir: Path, **overrides: str) -> Stack:
    """A started stack whose processes keep their temporary files in ``run_dir/tmp`` (so a test
    can tell that nothing is left there), with short retry backoff."""
    tmp = run_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **SMALL_MODELS,
        "TMPDIR": str(tmp),
        "KONSPEKT_AUDIO_TEMP_DIR": str(tmp),
        "KONSPEKT_GATEWAY_RETRY_BACKOFF_SECONDS": "0.5",
        **overrides,
    }
    stack = Stack(run_dir, overrides=env)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def temp_files(stack: Stack) -> set[str]:
    """What is in the stack's temp dir (compare with what was there after the start: a library
    or two leave a marker file at import)."""
    return {p.name for p in (stack.run_dir / "tmp").iterdir()}


def stack_store(stack: Stack) -> ObjectStore:
    assert stack.seaweed is not None
    env = stack.seaweed.env()
    return ObjectStore(
        S3Settings.model_validate(
            {
                "endpoint": env["KONSPEKT_S3_ENDPOINT"],
                "access_key": env["KONSPEKT_S3_ACCESS_KEY"],
                "secret_key": env["KONSPEKT_S3_SECRET_KEY"],
            }
        ),
        timeout=5.0,
    )


def kill(stack: Stack, name: str) -> None:
    """SIGKILL a process of the stack (no chance to clean up) and forget it."""
    proc = stack.procs.pop(name)
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait()
    proc.log_file.close()


def freeze(stack: Stack, name: str) -> None:
    """SIGSTOP: the process keeps its port and connections but answers nothing (a hang)."""
    os.kill(stack.procs[name].popen.pid, signal.SIGSTOP)


def thaw(stack: Stack, name: str) -> None:
    os.kill(stack.procs[name].popen.pid, signal.SIGCONT)


def restart(stack: Stack, name: str) -> None:
    """Start a stopped or killed stage or gateway again on its port; returns once it is up."""
    if name in stack.procs:
        stack.procs.pop(name).stop()
    if name == "gateway":
        stack.start_gateway()
    else:
        stack.start_stage(name)


def job_record(stack: Stack, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stack_store(stack).get_bytes(f"jobs/{job_id}/job.json"))
    return data
