"""Container health probe: exit 0 iff the service says it is healthy.

    python -m konspekt.healthcheck [host:port] [--service NAME] [--timeout S]
    python -m konspekt.healthcheck --http http://127.0.0.1:8000/readyz [--timeout S]

The defaults come from ``$KONSPEKT_HEALTHCHECK_TARGET`` / ``$KONSPEKT_HEALTHCHECK_HTTP``, which the
image (services/Dockerfile) sets per service, so its ``HEALTHCHECK`` has no arguments.

gRPC (the stages): asks ``grpc.health.v1.Health/Check`` and exits 0 only for SERVING (a stage
says NOT_SERVING until its model is loaded and while it drains). ``--service`` asks about one
service (e.g. ``konspekt.v1.AsrService``); the default, empty, is the whole server.
HTTP (the gateway): exits 0 only for a 2xx answer.

Exit codes: 0 healthy, 1 unhealthy or unreachable, 2 bad arguments. One line on stdout says why
(Docker keeps it in ``docker inspect``). Used by the Dockerfiles' ``HEALTHCHECK`` and the compose
healthchecks; Kubernetes uses its native ``grpc:`` and ``httpGet`` probes instead.
Standard library + grpcio only, so it starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 3.0

HEALTHY, UNHEALTHY, USAGE = 0, 1, 2


def check_grpc(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT) -> tuple[bool, str]:
    """(healthy, reason) from gRPC health at ``target``."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # No proxy for a probe of the container itself, whatever http_proxy says.
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            name = code.name if code is not None else "ERROR"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            return False, f"{target}: {name}: {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    what = f"{target} {service}".rstrip()
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{what}: {status}"


def check_http(url: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[bool, str]:
    """(healthy, reason) from an HTTP GET of ``url``: healthy iff 2xx."""
    if not url.startswith(("http://", "https://")):
        return False, f"{url}: not an http(s) URL"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"{url}: HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return False, f"{url}: {reason}"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _target(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a gRPC target like host:port")
    return text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m konspekt.healthcheck",
        description="Exit 0 iff the service is healthy (gRPC health SERVING, or HTTP 2xx with --http).",
    )
    parser.add_argument(
        "target",
        nargs="?",
        type=_target,
        default=os.environ.get("KONSPEKT_HEALTHCHECK_TARGET", DEFAULT_TARGET),
        help=f"gRPC host:port (default $KONSPEKT_HEALTHCHECK_TARGET or {DEFAULT_TARGET})",
    )
    parser.add_argument("--service", default="", help="gRPC service name to ask about (default: the server)")
    parser.add_argument(
        "--http",
        metavar="URL",
        default=os.environ.get("KONSPEKT_HEALTHCHECK_HTTP") or None,
        help="check this HTTP URL instead of gRPC health (default $KONSPEKT_HEALTHCHECK_HTTP)",
    )
    parser.add_argument(
        "--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="seconds to wait (default 3)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help is 0, bad arguments 2
        return int(exc.code) if isinstance(exc.code, int) else USAGE
    if args.http:
        healthy, reason = check_http(args.http, args.timeout)
    else:
        healthy, reason = check_grpc(args.target, args.service, args.timeout)
    print(("healthy: " if healthy else "unhealthy: ") + reason, flush=True)
    return HEALTHY if healthy else UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
