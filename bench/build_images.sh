#!/usr/bin/env bash
# Build konspekt's images without a Docker daemon, with buildah (Debian package `buildah`,
# vfs storage: no overlay/fuse, works unprivileged-ish in a container), and print their sizes.
# The Dockerfile and build args of each image are read from docker-compose.yml (one source).
# Not part of the test suite: it needs the base images (python:3.11.13-slim-bookworm,
# nvidia/cuda, ...) from a registry, and PyPI/Debian mirrors during the build.
#
#   bench/build_images.sh                 # renderer only (the smallest)
#   bench/build_images.sh audio gateway   # these (compose service names; also asr-gpu, models)
#   bench/build_images.sh all             # the five CPU images
#   BUILDAH_ISOLATION=chroot is set, since nested user namespaces are often unavailable.
#
# Where no registry is reachable (this workplace), first make a stand-in base image under the
# official name with bench/make_base_image.sh; bench/smoke_images.sh then starts each image and
# waits for its HEALTHCHECK. Sizes and results: deploy/README.md "Images".
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
STORAGE=(--storage-driver vfs)
PY=${PY:-.venv/bin/python}
command -v buildah >/dev/null || { echo "buildah is not installed (apt-get install buildah)" >&2; exit 2; }

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(renderer)
[ "${services[0]}" = all ] && services=(audio asr summarizer renderer gateway)

for s in "${services[@]}"; do
  # image, Dockerfile and --build-arg flags of compose service $s, one per line
  mapfile -t spec < <("$PY" - "$s" <<'PYEOF'
import sys, yaml
svc = yaml.safe_load(open("docker-compose.yml"))["services"].get(sys.argv[1])
if not svc or "build" not in svc:
    sys.exit(f"docker-compose.yml has no buildable service {sys.argv[1]!r}")
print(svc["image"]); print(svc["build"]["dockerfile"])
for key, value in (svc["build"].get("args") or {}).items():
    print("--build-arg"); print(f"{key}={value}")
PYEOF
  )
  echo "== building ${spec[0]} from ${spec[1]}" >&2
  buildah "${STORAGE[@]}" bud --layers --format docker -f "${spec[1]}" "${spec[@]:2}" -t "${spec[0]}" .
done

echo "== sizes" >&2
buildah "${STORAGE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep konspekt/ || true
