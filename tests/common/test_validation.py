"""Out-of-range enum values are INVALID_ARGUMENT with a clear message, never INTERNAL: the shared
check (konspekt.validation) alone, then through real stages on port 0 (every @rpc runs it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from konspekt.channels import open_channel
from konspekt.errors import InvalidInput, reason_of
from konspekt.server import StageServer
from konspekt.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc, summarizer_pb2, summarizer_pb2_grpc
from konspekt.validation import check_enums
from konspekt_renderer.server import build_server as build_renderer
from konspekt_renderer.settings import RendererSettings
from konspekt_summarizer.server import build_server as build_summarizer
from konspekt_summarizer.settings import SummarizerSettings

F = renderer_pb2.Format


def undefined(number: int) -> Any:
    """An enum number the enum does not define (typed Any: the stubs allow only defined ones)."""
    return number


def transcript(segments: int = 3) -> common_pb2.Transcript:
    return common_pb2.Transcript(
        language="en",
        duration=float(segments),
        segments=[
            common_pb2.Segment(index=i, start=i, end=i + 1, text=f" line {i}.") for i in range(segments)
        ],
    )


def refused(message: Message) -> str:
    with pytest.raises(InvalidInput) as info:
        check_enums(message)
    return info.value.message


# -- the shared check ---------------------------------------------------------------------------
def test_valid_requests_pass_unchanged() -> None:
    request = summarizer_pb2.SummarizeRequest(transcript=transcript(), style=common_pb2.STYLE_LECTURE)
    before = request.SerializeToString()
    check_enums(request)
    check_enums(summarizer_pb2.SummarizeRequest())  # every enum at its zero value
    check_enums(renderer_pb2.RenderRequest(formats=[F.FORMAT_KONSPEKT_DOCX, F.FORMAT_TRANSCRIPT_JSON]))
    assert request.SerializeToString() == before


def test_top_level_enum_out_of_range_names_field_value_and_allowed_values() -> None:
    message = refused(summarizer_pb2.SummarizeRequest(transcript=transcript(), style=undefined(7)))
    assert message == (
        "style: 7 is not a konspekt.v1.Style value; expected one of "
        "STYLE_UNSPECIFIED (0), STYLE_MEETING (1), STYLE_LECTURE (2)"
    )


def test_repeated_and_nested_enums_are_checked() -> None:
    message = refused(renderer_pb2.RenderRequest(formats=[F.FORMAT_KONSPEKT_TXT, undefined(99)]))
    assert message.startswith("formats[1]: 99 is not a konspekt.v1.Format value; expected one of ")
    assert "FORMAT_TRANSCRIPT_JSON (6)" in message
    nested = renderer_pb2.RenderRequest(konspekt=common_pb2.Konspekt(title="t", style=undefined(-3)))
    assert refused(nested).startswith("konspekt.style: -3 is not a konspekt.v1.Style value")
    in_a_list = renderer_pb2.RenderResponse(files=[renderer_pb2.RenderedFile(format=F.FORMAT_KONSPEKT_TXT)])
    in_a_list.files.add(format=undefined(42))
    assert refused(in_a_list).startswith("files[1].format: 42 is not a konspekt.v1.Format value")


def test_messages_without_enums_are_not_walked() -> None:
    # A big transcript has no enum anywhere: the check skips it (and stays fast).
    check_enums(summarizer_pb2.SummarizeRequest(transcript=transcript(20_000)))


# -- through real stages ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def renderer() -> Iterator[str]:
    server, loader = build_renderer(RendererSettings.model_validate({"port": 0, "grace_seconds": 0}))
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


@pytest.fixture(scope="module")
def summarizer() -> Iterator[StageServer]:
    """A real summarizer stage whose model is never loaded (valid calls get UNAVAILABLE
    "loading"): a bad enum must be refused before that, as INVALID_ARGUMENT."""
    # model_construct reads no environment: a stage used alone, serving calls without a token
    settings = SummarizerSettings.model_construct(
        port=0, grace_seconds=0, metrics_port=0, allow_unauthenticated=True, unauthenticated_prefix=""
    )
    server, _ = build_summarizer(settings)
    server.start()
    yield server
    server.stop(0)


def render_error(target: str, request: renderer_pb2.RenderRequest) -> grpc.RpcError:
    with open_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        renderer_pb2_grpc.RendererServiceStub(channel).Render(request, timeout=30)
    return info.value


def test_renderer_refuses_an_unknown_format_and_a_konspekt_style(renderer: str) -> None:
    request = renderer_pb2.RenderRequest(konspekt=common_pb2.Konspekt(title="t"), transcript=transcript())
    request.formats.append(undefined(99))
    error = render_error(renderer, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.details()).startswith(
        "formats[0]: 99 is not a konspekt.v1.Format value; expected one of"
    )

    request = renderer_pb2.RenderRequest(
        konspekt=common_pb2.Konspekt(title="t", style=undefined(7)), transcript=transcript()
    )
    error = render_error(renderer, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error.details()).startswith("konspekt.style: 7 is not a konspekt.v1.Style value")

    # the same request with valid enums renders
    request.konspekt.style = common_pb2.STYLE_LECTURE
    with open_channel(renderer) as channel:
        response = renderer_pb2_grpc.RendererServiceStub(channel).Render(request, timeout=30)
    assert len(response.files) == 7


def test_summarizer_refuses_style_7_as_invalid_argument(summarizer: StageServer) -> None:
    with grpc.insecure_channel(summarizer.address) as channel:  # no retries: the status shows
        stub = summarizer_pb2_grpc.SummarizerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(
                stub.Summarize(
                    summarizer_pb2.SummarizeRequest(transcript=transcript(), style=undefined(7)), timeout=30
                )
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == (
            "style: 7 is not a konspekt.v1.Style value; expected one of "
            "STYLE_UNSPECIFIED (0), STYLE_MEETING (1), STYLE_LECTURE (2)"
        )
        assert reason_of(info.value) == "ENUM_OUT_OF_RANGE"
        # a valid style reaches the servicer, which says the model is still loading
        request = summarizer_pb2.SummarizeRequest(transcript=transcript(), style=common_pb2.STYLE_LECTURE)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Summarize(request, timeout=30))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason_of(info.value) == "LOADING"
