"""Issue 15's "done when": a team with only ``protos/`` generates Python stubs into a clean
folder, and its client (tests/security/outside_client.py, run without the repository's packages
on its path) runs the whole chain audio → ASR → summarizer → renderer on jfk_en_11s.mp4 through
four real stages (port 0, the shared SeaweedFS, whisper-tiny-en and the 0.5B GGUF) with its
token under its own prefix; without a token a call is UNAUTHENTICATED, and a ref outside its
prefix PERMISSION_DENIED with nothing read or written."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from konspekt.server import StageServer
from konspekt.storage import ObjectStore
from konspekt.transcripts import konspekt_from_json, transcript_from_json
from konspekt_asr.server import build_server as build_asr
from konspekt_audio.server import build_server as build_audio
from konspekt_audio.settings import AudioSettings
from konspekt_devstack import ROOT
from konspekt_renderer.server import build_server as build_renderer
from konspekt_renderer.settings import RendererSettings
from konspekt_summarizer.server import build_server as build_summarizer
from tests.asr.conftest import asr_settings
from tests.summarizer.conftest import make_settings

TOKEN = secrets.token_urlsafe(32)
GATEWAY = secrets.token_urlsafe(32)
CLIENTS = {"team-a": {"token": TOKEN, "prefix": "team-a/"}, "gateway": {"token": GATEWAY, "prefix": "jobs/"}}
ACCESS = {"clients": CLIENTS, "allow_unauthenticated": False, "port": 0, "grace_seconds": 0}
CLIENT = Path(__file__).with_name("outside_client.py")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python stubs from protos/ alone, with the command the README gives."""
    out = tmp_path_factory.mktemp("gen") / "py"
    out.mkdir()
    protos = sorted(
        str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos" / "konspekt" / "v1").glob("*.proto")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "protos",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *(f"protos/{p}" for p in protos),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in (out / "konspekt" / "v1").glob("*_grpc.py")) == [
        "asr_pb2_grpc.py",
        "audio_pb2_grpc.py",
        "common_pb2_grpc.py",
        "renderer_pb2_grpc.py",
        "summarizer_pb2_grpc.py",
    ]
    return out


@pytest.fixture(scope="module")
def stages(store: ObjectStore, models_dir: Path) -> Iterator[dict[str, str]]:
    built: dict[str, tuple[StageServer, Any]] = {
        "audio": build_audio(AudioSettings.model_validate(ACCESS), store),
        "asr": build_asr(asr_settings(models_dir / "whisper-tiny-en", **ACCESS), store),
        "summarizer": build_summarizer(
            make_settings(
                models_dir / "qwen2.5-0.5b-instruct" / "model.gguf",
                n_ctx=2048,
                max_tokens=300,
                log_json=False,
                **ACCESS,
            ),
            store,
        ),
        "renderer": build_renderer(RendererSettings.model_validate(ACCESS), store),
    }
    try:
        for server, loader in built.values():
            server.start()
            server.load_and_serve(loader)
        yield {name: server.address for name, (server, _) in built.items()}
    finally:
        for server, _ in built.values():
            server.stop(0)


def run_client(stubs: Path, plan: dict[str, Any]) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KONSPEKT_CLIENT_PATH": os.pathsep.join(
            [str(stubs), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        ),
    }
    done = subprocess.run(
        [sys.executable, "-S", str(CLIENT)],
        input=json.dumps(plan),
        env=env,
        cwd=stubs.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_a_client_built_from_the_protos_runs_the_chain(
    stubs: Path, stages: dict[str, str], store: ObjectStore, testdata: Path
) -> None:
    job = uuid.uuid4().hex
    prefix, stranger = f"team-a/{job}/", f"jobs/{job}/"
    video = testdata / "video" / "jfk_en_11s.mp4"
    store.put_file(prefix + "upload.mp4", video, "video/mp4")
    store.put_file(stranger + "upload.mp4", video, "video/mp4")  # another client's upload

    report = run_client(
        stubs, {**stages, "token": TOKEN, "bucket": store.bucket, "prefix": prefix, "stranger": stranger}
    )

    assert Path(report["stubs"]).resolve().is_relative_to(stubs.resolve())  # not the repo's package
    assert report["no_token"] == dict.fromkeys(
        ("probe", "transcribe", "summarize", "render"), "UNAUTHENTICATED"
    )
    assert report["outside"] == dict.fromkeys(("read", "write", "dotdot", "render"), "PERMISSION_DENIED")
    # nothing reached the other client's objects, nothing was written outside the prefix
    assert sorted(store.list_keys(stranger)) == [stranger + "upload.mp4"]

    assert report["audio"] == {"key": prefix + "audio.wav", "seconds": pytest.approx(11.0, abs=0.2)}
    assert report["asr"]["key"] == prefix + "transcript.json"
    assert report["asr"]["language"] == "en"
    assert "ask not what your country can do for you" in report["asr"]["text"].lower()
    transcript = transcript_from_json(store.get_bytes(store.ref(prefix + "transcript.json")))
    assert " ".join(s.text for s in transcript.segments) == report["asr"]["text"]
    assert report["summarizer"]["key"] == prefix + "konspekt.json"
    assert report["summarizer"]["language"] == "en"
    konspekt = konspekt_from_json(store.get_bytes(store.ref(prefix + "konspekt.json")))
    assert konspekt.summary == report["summarizer"]["summary"] != ""
    assert report["renderer"] == {
        "konspekt.md": prefix + "out/konspekt.md",
        "konspekt.docx": prefix + "out/konspekt.docx",
        "transcript.srt": prefix + "out/transcript.srt",
    }
    assert store.get_bytes(store.ref(prefix + "out/transcript.srt")).decode().lower().count("country") >= 1
    assert sorted(store.list_keys(prefix)) == sorted(
        prefix + name
        for name in (
            "upload.mp4",
            "audio.wav",
            "transcript.json",
            "konspekt.json",
            "out/konspekt.md",
            "out/konspekt.docx",
            "out/transcript.srt",
        )
    )
