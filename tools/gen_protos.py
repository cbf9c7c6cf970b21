#!/usr/bin/env python3
"""Generate the Python stubs of protos/konspekt/v1 into libs/common/konspekt/v1, and
descriptors.binpb beside them: a FileDescriptorSet of the same files with their comments (source
info), which the stages' reflection serves (the _pb2 modules carry no comments).

python tools/gen_protos.py          # (re)generate
python tools/gen_protos.py --check  # exit 1 if the committed stubs are stale
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "libs" / "common"
PACKAGE = Path("konspekt") / "v1"
DESCRIPTORS = "descriptors.binpb"
INIT = '"""Generated gRPC/protobuf stubs of konspekt.v1 (tools/gen_protos.py); do not edit."""\n'


def generate(out_root: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    (out_root / PACKAGE).mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--descriptor_set_out={out_root / PACKAGE / DESCRIPTORS}",
        "--include_source_info",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    bindir = str(Path(sys.executable).parent)
    env = {"PATH": bindir + ":/usr/bin:/bin"}
    subprocess.run(cmd, check=True, cwd=PROTO_ROOT, env=env, capture_output=True)
    (out_root / PACKAGE / "__init__.py").write_text(INIT)
    (out_root / PACKAGE / "py.typed").write_text("")


def main() -> int:
    target = OUT_ROOT / PACKAGE
    if "--check" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh = Path(tmp) / PACKAGE
            names = {p.name for p in fresh.iterdir()}
            if target.exists():
                names |= {p.name for p in target.iterdir() if p.is_file()}
            stale = sorted(
                n
                for n in names
                if not (fresh / n).is_file()
                or not (target / n).is_file()
                or not filecmp.cmp(fresh / n, target / n, shallow=False)
            )
        if stale:
            print("stale generated stubs (run: python tools/gen_protos.py): " + ", ".join(stale))
            return 1
        print("generated stubs are fresh")
        return 0
    shutil.rmtree(target, ignore_errors=True)
    generate(OUT_ROOT)
    print(f"generated {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
