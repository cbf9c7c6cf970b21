#!/usr/bin/env bash
# A stand-in for docker.io/library/python:3.11.13-slim-bookworm, for machines that cannot reach
# a container registry (this workplace): Debian bookworm (minbase) + Debian's python3.11, venv
# and pip, built with mmdebstrap from the Debian mirror, tagged with the official name in
# buildah's vfs storage, so `bench/build_images.sh` can build the real Dockerfiles.
# Differences from the official image: Python 3.11.2 (Debian's) instead of 3.11.13, about 70 MB
# larger, and it carries this machine's CA bundle (pip here goes through a TLS-inspecting proxy).
# Image sizes measured on it are therefore approximate: compare the layers above the base.
#
#   apt-get install mmdebstrap buildah
#   bench/make_base_image.sh          # ~3 min (downloads ~60 MB of .debs)
set -euo pipefail
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
STORAGE=(--storage-driver vfs)
NAME=docker.io/library/python:3.11.13-slim-bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mmdebstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$work/rootfs.tar" "$MIRROR"

ctr=$(buildah "${STORAGE[@]}" from scratch)
buildah "${STORAGE[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah "${STORAGE[@]}" run "$ctr" -- ln -sf /usr/bin/python3.11 /usr/local/bin/python
buildah "${STORAGE[@]}" copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
buildah "${STORAGE[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd python3 "$ctr"
buildah "${STORAGE[@]}" commit --rm "$ctr" "$NAME" >/dev/null
buildah "${STORAGE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep "$NAME"
