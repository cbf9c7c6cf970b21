"""The gRPC bootstrap every stage uses: health (NOT_SERVING until the model is loaded),
reflection (v1 and v1alpha, with comments), message limits, callers' tokens and object prefixes
(konspekt.access), and a graceful stop on SIGTERM."""

from __future__ import annotations

import functools
import inspect
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import ValidationError
from pydantic_settings import SettingsError

from konspekt.access import AccessInterceptor, AccessPolicy, require_clients
from konspekt.errors import StageError, Unavailable, abort
from konspekt.interceptors import wrap_handler
from konspekt.logs import JOB_ID_METADATA, job_id_var, setup_logging
from konspekt.metrics import (
    STAGE_SERVING,
    STAGE_WORKERS,
    MetricsEndpoint,
    rpc_finished,
    serve_metrics,
    track_rpc,
)
from konspekt.reflection import enable_reflection
from konspekt.settings import S3Settings, ServiceSettings
from konspekt.storage import ObjectStore
from konspekt.validation import check_enums

log = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=ServiceSettings)


class Loader(Generic[T]):
    """Holds the engine that is loaded after the server starts (so health can say NOT_SERVING)."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._value: T | None = None
        self._ready = threading.Event()

    def load(self) -> T:
        value = self._load()
        self._value = value
        self._ready.set()
        return value

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def get(self) -> T:
        if self._value is None:
            raise Unavailable(LOADING, reason="LOADING")
        return self._value

    @property
    def probed(self) -> bool:
        """Whether the loaded engine can say if it still works (has ``alive()``)."""
        return isinstance(self._value, Probed)

    def alive(self) -> bool:
        """Loaded and, if the engine has ``alive()`` (e.g. its model server still answers), alive."""
        value = self._value
        if value is None:
            return False
        if not isinstance(value, Probed):
            return True
        try:
            return bool(value.alive())
        except Exception:  # a failing probe means "not alive"
            log.warning("liveness probe failed", exc_info=True)
            return False


@runtime_checkable
class Probed(Protocol):
    """An engine that can fail after it was loaded (a model server over HTTP): StageServer asks
    ``alive()`` every ``probe_seconds`` and health follows the answer. It must be cheap and must
    not disturb running work."""

    def alive(self) -> bool: ...


#: The gRPC health service name that says only "the process is alive": SERVING from the moment
#: the server listens, whatever the model (loading, a model server that stopped answering) and
#: while it drains. Kubernetes' liveness and startup probes ask it; readiness asks "" (the
#: server: SERVING = it can take work), so a stage waiting for its model or for vLLM is taken out
#: of the Service, never restarted for it.
LIVENESS_SERVICE = "konspekt.liveness"

#: Seconds between liveness probes (settings may set ``probe_seconds``); health turns
#: NOT_SERVING after PROBE_FAILURES failed probes in a row, SERVING again after one success.
PROBE_SECONDS = 10.0
PROBE_FAILURES = 2


def _bind_job_id(context: grpc.ServicerContext) -> None:
    for key, value in context.invocation_metadata() or ():
        if key == JOB_ID_METADATA:
            job_id_var.set(str(value))
            return
    job_id_var.set("")


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, StageError):
        log.warning("%s: %s", exc.code.name, exc.message)
        abort(context, exc.code, exc.message, exc.reason)
    log.exception("unexpected error")
    message = f"internal error ({type(exc).__name__}); see the service log"
    abort(context, grpc.StatusCode.INTERNAL, message, "INTERNAL")


def rpc(fn: F) -> F:
    """Servicer method wrapper: binds the job id for logs and turns errors into gRPC statuses.

    StageError subclasses keep their code and message, with an ErrorInfo detail carrying their
    reason (``konspekt.errors``); anything else becomes INTERNAL (reason "INTERNAL").
    Works for unary and server-streaming methods. Before the method runs, the request is checked
    for enum fields holding a number the enum does not define (INVALID_ARGUMENT), so no stage
    trips over one later (``konspekt.validation``).
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            _bind_job_id(context)
            try:
                check_enums(request)
                yield from fn(self, request, context)
            except Exception as exc:  # noqa: BLE001 - translated here, once
                _abort(context, exc)

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        _bind_job_id(context)
        try:
            check_enums(request)
            return fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - translated here, once
            _abort(context, exc)

    return unary  # type: ignore[return-value]


if TYPE_CHECKING:  # generic only in grpc-stubs
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor

#: Threads kept free of stage work, so health and reflection answer during long calls.
RESERVED_THREADS = 2
#: Details of the UNAVAILABLE answer when every worker and queue place is taken (ErrorInfo
#: reason "BUSY": clients such as the gateway recognise the reason, never this text; waiting for
#: capacity is not a failed try).
BUSY = "the stage is busy with other requests; retry later"
#: Details of the UNAVAILABLE answer while the stage loads its model (after a start or restart;
#: reason "LOADING"): clients wait for it without counting a failed try.
LOADING = "the model is still loading; try again shortly"
#: Details of the UNAVAILABLE answer to new calls while the stage drains on SIGTERM (health says
#: NOT_SERVING meanwhile; reason "DRAINING"): clients wait for the restarted stage or go to
#: another replica.
DRAINING = "the stage is shutting down; retry shortly"


class _Admission(_Interceptor):
    """Bounds a stage's own RPCs: ``running`` at once, ``waiting`` more queued in threads;
    beyond that UNAVAILABLE ("busy"), which clients retry, perhaps on another replica.

    Health and reflection bypass it, and the pool has RESERVED_THREADS beyond these, so a
    long transcription never makes a readiness probe time out.

    It also records the generic per-RPC metrics (konspekt.metrics), once for every stage call:
    in flight, duration, and the final status code, busy rejections included.
    """

    def __init__(self, service_names: list[str], running: int, waiting: int) -> None:
        self.prefixes = tuple(f"/{name}/" for name in service_names)
        self.running = threading.Semaphore(running)
        self.admitted = threading.BoundedSemaphore(running + waiting)
        self.capacity = running + waiting
        self.draining = False

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        return wrap_handler(continuation, details, self.prefixes, self._unary, self._stream)

    def drain(self, timeout: float) -> bool:
        """Refuse new calls, then wait up to ``timeout`` seconds for the admitted ones to end
        (by taking every admission permit); False if some were still running."""
        self.draining = True
        deadline = time.monotonic() + timeout
        for _ in range(self.capacity):
            if not self.admitted.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
                return False
        return True

    def _admit(self, context: grpc.ServicerContext) -> None:
        if self.draining:
            abort(context, grpc.StatusCode.UNAVAILABLE, DRAINING, "DRAINING")
        if not self.admitted.acquire(blocking=False):
            abort(context, grpc.StatusCode.UNAVAILABLE, BUSY, "BUSY")

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        service, name = _split_method(method)

        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.monotonic()
            try:
                self._admit(context)
                try:
                    with track_rpc(service, name), self.running:
                        yield from behavior(request, context)
                finally:
                    self.admitted.release()
            finally:
                rpc_finished(service, name, _final_code(context), time.monotonic() - started)

        return wrapped

    def _unary(self, method: str, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        service, name = _split_method(method)

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            try:
                self._admit(context)
                try:
                    with track_rpc(service, name), self.running:
                        return behavior(request, context)
                finally:
                    self.admitted.release()
            finally:
                rpc_finished(service, name, _final_code(context), time.monotonic() - started)

        return wrapped


def _split_method(method: str) -> tuple[str, str]:
    """'/konspekt.v1.AsrService/Transcribe' -> ('konspekt.v1.AsrService', 'Transcribe')."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _final_code(context: grpc.ServicerContext) -> str:
    """The status the call ends with: what abort() set, else OK, or why the client is gone."""
    code = context.code()  # type: ignore[attr-defined]  # missing from grpc-stubs
    if isinstance(code, grpc.StatusCode):
        return code.name
    if context.is_active():
        return "OK"
    return "DEADLINE_EXCEEDED" if (context.time_remaining() or 1.0) <= 0 else "CANCELLED"


class StageServer:
    """A started gRPC server for one stage.

    ``register`` adds the servicer(s); ``service_names`` are the full names (for health and
    reflection). ``loaders`` run in ``load_and_serve`` before health turns SERVING. Every call
    of those services must carry a known client's token and name objects only in ``store``'s
    bucket, under that client's prefix (konspekt.access; health and reflection stay open).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        service_names: list[str],
        register: Callable[[grpc.Server], None],
        store: ObjectStore | None = None,
    ) -> None:
        # no clients and no ALLOW_UNAUTHENTICATED: refuse to serve at all (ValueError)
        require_clients(
            settings.clients, settings.allow_unauthenticated, str(settings.model_config.get("env_prefix", ""))
        )
        self.settings = settings
        self.service_names = service_names
        limit = settings.max_message_mb * 1024 * 1024
        running, waiting = settings.workers, settings.queue
        self._admission = _Admission(service_names, running, waiting)
        policy = AccessPolicy(
            clients=settings.clients,
            allow_unauthenticated=settings.allow_unauthenticated,
            unauthenticated_prefix=settings.unauthenticated_prefix,
            bucket=store.bucket if store is not None else None,
        )
        self.server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=running + waiting + RESERVED_THREADS, thread_name_prefix="rpc"
            ),
            # access first: a refused call takes no worker and no queue place
            interceptors=[AccessInterceptor(service_names, policy), self._admission],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
                # Clients reconnect (and re-resolve DNS) every few minutes, so new replicas get
                # traffic; calls under way finish first (the grace period is unlimited).
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            ],
        )
        register(self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)  # set_serving leaves it
        # v1 and v1alpha, with the protos' comments (konspekt.reflection)
        enable_reflection([*service_names, health.SERVICE_NAME], self.server)
        self.set_serving(False)
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.port}")
        if not self.port:
            raise RuntimeError(f"cannot listen on {settings.host}:{settings.port}")
        self._stopped = threading.Event()
        self._drained = threading.Event()
        self.metrics: MetricsEndpoint | None = None
        for name in service_names:
            STAGE_WORKERS.labels(name).set(running)

    @property
    def address(self) -> str:
        host = self.settings.host
        if host in {"0.0.0.0", "[::]", "::"}:
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            self.health.set(name, status)
        for name in self.service_names:
            STAGE_SERVING.labels(name).set(1 if serving else 0)

    def start(self) -> StageServer:
        """Serve gRPC, and /metrics on ``settings.metrics_port`` unless that is 0."""
        self.metrics = serve_metrics(self.settings.host, self.settings.metrics_port)
        self.server.start()
        log.info("listening on %s:%d", self.settings.host, self.port)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING, refuse new RPCs, give running ones ``grace`` seconds.

        The port stays open while they run, so health checks see NOT_SERVING (not a refused
        connection) for the whole drain; then the server stops."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.set_serving(False)
        grace = self.settings.grace_seconds if grace is None else grace
        started = time.monotonic()
        if grace > 0 and not self._admission.drain(grace):
            log.warning("calls still running after the %.0f s grace period are cancelled", grace)
        self.server.stop(max(grace - (time.monotonic() - started), 0.0)).wait()
        if self.metrics is not None:  # scraped until the end of the drain
            self.metrics.stop()
        log.info("stopped")
        self._drained.set()

    def load_and_serve(self, *loaders: Loader[Any]) -> None:
        for loader in loaders:
            loader.load()
        if not self._stopped.is_set():
            self.set_serving(True)
            log.info("serving %s", ", ".join(self.service_names))
            probed = [loader for loader in loaders if loader.probed]
            if probed:
                threading.Thread(target=self._watch, args=(probed,), name="liveness", daemon=True).start()

    def _watch(self, loaders: list[Loader[Any]]) -> None:
        """Health follows the engines' ``alive()`` until the server stops."""
        interval = float(getattr(self.settings, "probe_seconds", PROBE_SECONDS))
        failures, serving = 0, True
        while not self._stopped.wait(interval):
            if all(loader.alive() for loader in loaders):
                failures = 0
                if not serving and not self._stopped.is_set():
                    serving = True
                    self.set_serving(True)
                    log.info("the engine answers again: serving")
            else:
                failures += 1
                if serving and failures >= PROBE_FAILURES and not self._stopped.is_set():
                    serving = False
                    self.set_serving(False)
                    log.warning("the engine does not answer: NOT_SERVING until it does")

    def run_forever(self, *loaders: Loader[Any]) -> int:
        """For ``main``: start, load the engine(s), serve until SIGTERM/SIGINT, drain, return."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal %s: draining", signal.Signals(signum).name)
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        try:
            self.load_and_serve(*loaders)
        except Exception:
            log.exception("loading failed; exiting")
            self.stop(0)
            return 1
        self.server.wait_for_termination()
        self._drained.wait()
        return 0


def explain_settings_error(exc: ValidationError, env_prefix: str) -> str:
    """One line per invalid setting, naming the environment variable to fix."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"])
        where = f"{env_prefix}{field.upper()}" if field else env_prefix.rstrip("_")
        lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def run_stage(
    service: str,
    settings_cls: type[S],
    build_server: Callable[[S, ObjectStore | None], tuple[StageServer, Loader[Any]]],
) -> int:
    """The whole ``main`` of a stage: settings (fail fast), logging, object store, serve."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    try:
        settings = settings_cls()
    except ValidationError as exc:
        print(
            f"konspekt-{service}: invalid settings:\n{explain_settings_error(exc, prefix)}", file=sys.stderr
        )
        return 2
    except SettingsError as exc:  # a value that is not valid JSON, e.g. {prefix}CLIENTS
        print(f"konspekt-{service}: invalid settings: {exc} ({exc.__cause__})", file=sys.stderr)
        return 2
    try:
        s3 = S3Settings()
    except ValidationError as exc:
        print(
            f"konspekt-{service}: invalid settings:\n{explain_settings_error(exc, 'KONSPEKT_S3_')}",
            file=sys.stderr,
        )
        return 2
    try:
        require_clients(settings.clients, settings.allow_unauthenticated, prefix)
    except ValueError as exc:
        print(f"konspekt-{service}: invalid settings:\n  {exc}", file=sys.stderr)
        return 2
    setup_logging(service, settings.log_level, settings.log_json)
    store = ObjectStore(s3) if s3.configured else None
    server, loader = build_server(settings, store)
    return server.run_forever(loader)
