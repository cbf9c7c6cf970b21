"""Run the whole service locally as plain processes: SeaweedFS (the embedded S3 server),
the four gRPC stages and the gateway. ``./dev run`` and the whole-stack tests use this.

    python -m konspekt_devstack [--port 8000] [--data DIR] [--stages audio,renderer] [--no-gateway]

SeaweedFS is started so that only konspekt can use it (docs/SECURITY.md): its S3 port needs the
credentials of ``s3.json``; every other port (master, volume, filer; HTTP and gRPC) speaks only
mutual TLS with a certificate made for this data folder, and the volume and filer HTTP APIs also
want a JWT signed with keys that only SeaweedFS holds (``security.toml``). All of it is made anew
at each start, readable by the owner only.

``./dev run`` supervises: a process that exits is restarted after 1, 2, 4 … 30 s (the delay
starts again at 1 s once it has stayed up for a minute); the others keep running. Ctrl-C or
SIGTERM stops everything.

Only for running locally and for the tests: it is installed in the dev venv
(requirements/dev.txt), never in a stage's image (which ships libs/common only).
Modules: procs (ports, files, processes), seaweed (the S3 server), stack (every process),
supervisor (restarts, ``main``).
"""

from __future__ import annotations

from konspekt_devstack.procs import (
    ACCESS_KEY,
    DEFAULT_METRICS_PORTS,
    DEFAULT_PORTS,
    GATEWAY_SECRET_FILE,
    MODELS,
    ROOT,
    STAGE_TOKEN_FILE,
    STAGES,
    Proc,
    distinct_port,
    free_port,
    grpc_serving,
    http_ok,
    new_token,
    port_open,
    private_dir,
    spawn,
    wait_until,
    write_private,
)
from konspekt_devstack.seaweed import Seaweed, make_certificates
from konspekt_devstack.stack import Stack, default_stage_env
from konspekt_devstack.supervisor import Supervisor, _Watch, main

__all__ = [
    "ACCESS_KEY",
    "DEFAULT_METRICS_PORTS",
    "DEFAULT_PORTS",
    "GATEWAY_SECRET_FILE",
    "MODELS",
    "ROOT",
    "STAGES",
    "STAGE_TOKEN_FILE",
    "Proc",
    "Seaweed",
    "Stack",
    "Supervisor",
    "_Watch",
    "default_stage_env",
    "distinct_port",
    "free_port",
    "grpc_serving",
    "http_ok",
    "main",
    "make_certificates",
    "new_token",
    "port_open",
    "private_dir",
    "spawn",
    "wait_until",
    "write_private",
]
