"""The committed stubs must match protos/ (regenerate with tools/gen_protos.py)."""

import subprocess
import sys

from konspekt_devstack import ROOT


def test_generated_stubs_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_protos.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_proto_package_one_file_per_service() -> None:
    protos = sorted(p.name for p in (ROOT / "protos" / "konspekt" / "v1").glob("*.proto"))
    assert protos == ["asr.proto", "audio.proto", "common.proto", "renderer.proto", "summarizer.proto"]
    for name in protos:
        assert "package konspekt.v1;" in (ROOT / "protos" / "konspekt" / "v1" / name).read_text()
