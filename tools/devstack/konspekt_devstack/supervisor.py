"""``./dev run``'s supervisor and command line: a process that exits is restarted after 1, 2,
4 … 30 s (the delay starts again at 1 s once it has stayed up for a minute); the others keep
running. Ctrl-C or SIGTERM stops everything."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from konspekt_devstack.procs import (
    ROOT,
    STAGE_TOKEN_FILE,
    STAGES,
)
from konspekt_devstack.stack import Stack

log = logging.getLogger("konspekt_devstack")


@dataclass
class _Watch:
    """What the supervisor knows of one process."""

    started: float
    failures: int = 0  # exits in a row without a stable run between them
    restart_at: float | None = None  # set while it is down and waiting for its restart
    ready: bool = True  # answered since its last start (False: log when it does)
    exit_code: int | None = None


@dataclass
class Supervisor:
    """Restarts any process of ``stack`` that exits, after 1, 2, 4 … ``max_backoff`` seconds
    (doubling for each exit in a row; a process that stays up ``stable_after`` seconds starts
    again at ``first_backoff``). Each exit, restart and return to service is logged. The other
    processes keep running meanwhile; the gateway keeps serving the page and finished downloads
    while a stage restarts (jobs wait for the stage), and everyone waits out SeaweedFS."""

    stack: Stack
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 60.0
    interval: float = 0.5
    #: (name, exit code, delay) of every restart, for tests.
    restarts: list[tuple[str, int, float]] = field(default_factory=list)
    _watch: dict[str, _Watch] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def backoff(self, failures: int) -> float:
        """Seconds before restart number ``failures`` in a row (1-based)."""
        return float(min(self.first_backoff * 2 ** (failures - 1), self.max_backoff))

    def start(self) -> Supervisor:
        now = time.monotonic()
        self._watch = {name: _Watch(started=now) for name in self.stack.names}
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="konspekt-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the stack is stopped, so nothing is restarted meanwhile)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name in self.stack.names:
                if self._stop.is_set():
                    return
                try:
                    self.check(name, time.monotonic())
                except Exception:
                    log.exception("supervisor: could not look after %s; trying again", name)

    def check(self, name: str, now: float) -> None:
        watch = self._watch[name]
        proc = self.stack.proc(name)
        if watch.restart_at is not None:
            if now >= watch.restart_at:
                watch.restart_at = None
                self._restart(name, watch, now)
            return
        if proc is None:
            return
        code = proc.popen.poll()
        if code is None:
            if not watch.ready and self.stack.ready(name):
                watch.ready = True
                log.info("supervisor: %s is serving again (after %.0f s)", name, now - watch.started)
            if watch.failures and watch.ready and now - watch.started >= self.stable_after:
                watch.failures = 0
            return
        with contextlib.suppress(Exception):
            proc.log_file.close()
        watch.failures += 1
        watch.exit_code = code
        delay = self.backoff(watch.failures)
        watch.restart_at = now + delay
        log.error(
            "supervisor: %s exited with code %s (see %s); restarting it in %.0f s (exit %d in a row)",
            name,
            code,
            proc.log_path,
            delay,
            watch.failures,
        )
        self.restarts.append((name, code, delay))

    def _restart(self, name: str, watch: _Watch, now: float) -> None:
        try:
            proc = self.stack.launch(name)
        except Exception as exc:  # noqa: BLE001 - e.g. a port still taken: try again later
            watch.failures += 1
            delay = self.backoff(watch.failures)
            watch.restart_at = now + delay
            log.error("supervisor: could not restart %s (%s); trying again in %.0f s", name, exc, delay)
            return
        watch.started = now
        watch.ready = False
        log.warning("supervisor: restarted %s (pid %d); log in %s", name, proc.popen.pid, proc.log_path)


def main() -> int:
    parser = argparse.ArgumentParser(description="run konspekt locally (SeaweedFS, 4 stages, gateway)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KONSPEKT_GATEWAY_PORT", "8000")))
    parser.add_argument("--data", type=Path, default=ROOT / ".run", help="object store data and logs")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated stages to start (default: all four)"
    )
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    stack = Stack(
        args.data,
        gateway_port=args.port,
        default_ports=True,
        stages=stages,
        with_gateway=not args.no_gateway,
        new_sessions=True,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    supervisor = Supervisor(stack)
    try:
        log.info("starting SeaweedFS, the stages (loading models) and the gateway; logs in %s", args.data)
        stack.start()
        log.info("stages: %s", ", ".join(f"{k} 127.0.0.1:{stack.ports[k]}" for k in stack.stages))
        log.info(
            "calling a stage alone (konspekt-audio ...): export KONSPEKT_STAGE_TOKEN_FILE=%s",
            stack.run_dir / STAGE_TOKEN_FILE,
        )
        names = (*stack.stages, *(("gateway",) if stack.with_gateway else ()))
        log.info("metrics: %s", ", ".join(stack.metrics_url(k) for k in names))
        supervisor.start()
        if stack.with_gateway:
            log.info("konspekt is up: open %s  (Ctrl-C stops everything)", stack.url)
        else:
            log.info("konspekt's stages are up (no gateway)  (Ctrl-C stops everything)")
        log.info(
            "a process that exits is restarted (after 1, 2, 4 ... 30 s); see the log of each in %s", args.data
        )
        while not stop.wait(0.5):
            pass
        log.info("stopping everything")
    finally:
        supervisor.stop()
        stack.stop()
    return 0
