#!/usr/bin/env bash
# Build konspekt's images without a Docker daemon, with buildah (Debian package `buildah`,
# vfs storage: no overlay/fuse, works unprivileged-ish in a container), and print their sizes.
# Not part of the test suite: it needs the base images (python:3.11.13-slim-bookworm,
# nvidia/cuda, ...) from a registry, and PyPI/Debian mirrors during the build.
#
#   bench/build_images.sh                 # renderer only (the smallest)
#   bench/build_images.sh audio gateway   # these
#   bench/build_images.sh all             # the five CPU images
#   BUILDAH_ISOLATION=chroot is set, since nested user namespaces are often unavailable.
#
# Result on the machine this was written on: the first step (pulling the base image) fails,
# no registry is reachable from it; see deploy/README.md "Images".
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
STORAGE=(--storage-driver vfs)
command -v buildah >/dev/null || { echo "buildah is not installed (apt-get install buildah)" >&2; exit 2; }

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(renderer)
[ "${services[0]}" = all ] && services=(audio asr summarizer renderer gateway)

for s in "${services[@]}"; do
  file=services/$s/Dockerfile
  [ -f "$file" ] || { echo "no $file" >&2; exit 2; }
  echo "== building konspekt/$s:0.1.0 from $file" >&2
  buildah "${STORAGE[@]}" bud --layers --format docker -f "$file" -t "konspekt/$s:0.1.0" .
done

echo "== sizes" >&2
buildah "${STORAGE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep konspekt/ || true
