"""``python -m konspekt.serve``: start the service named by ``$KONSPEKT_SERVICE``.

The one Dockerfile (services/Dockerfile) builds every service's image; this is its command, so
the image needs no per-service ``CMD``. Equivalent to ``python -m konspekt_<service>``.
"""

from __future__ import annotations

import os
import runpy
import sys

SERVICES = ("gateway", "audio", "asr", "summarizer", "renderer")


def main() -> int:
    service = os.environ.get("KONSPEKT_SERVICE", "").strip().lower()
    if service not in SERVICES:
        print(
            f"KONSPEKT_SERVICE={service!r}: set it to one of {', '.join(SERVICES)}",
            file=sys.stderr,
        )
        return 2
    runpy.run_module(f"konspekt_{service}", run_name="__main__", alter_sys=True)
    return 0  # the service's __main__ exits with its own code


if __name__ == "__main__":
    sys.exit(main())
