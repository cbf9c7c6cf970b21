#!/usr/bin/env bash
# Start each image built by bench/build_images.sh (buildah, vfs storage, chroot isolation: no
# daemon) with its own command, models mounted read-only at /models, and wait until its own
# HEALTHCHECK command says healthy: the model loaded and answered inside the image. Prints one
# line per image and the seconds it took. The stages run without an object store (inline mode).
#
#   bench/smoke_images.sh                  # audio asr summarizer renderer gateway
#   MODELS=/path/to/.models bench/smoke_images.sh summarizer
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
STORAGE=(--storage-driver vfs)
MODELS=${MODELS:-$PWD/.models}
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(audio asr summarizer renderer gateway)
declare -A PORT=([audio]=50951 [asr]=50952 [summarizer]=50953 [renderer]=50954 [gateway]=50980)
status=0
S3_ENV=()
for s in "${services[@]}"; do
  upper=${s^^}
  port=${PORT[$s]}
  ctr=$(buildah "${STORAGE[@]}" from "localhost/konspekt/$s:0.1.0")
  env=(--env "KONSPEKT_${upper}_PORT=$port" --env "KONSPEKT_${upper}_METRICS_PORT=0"
       --env KONSPEKT_DEFAULT_HOST=127.0.0.1 --env "KONSPEKT_HEALTHCHECK_TARGET=127.0.0.1:$port"
       --env KONSPEKT_ASR_MODEL=/models/whisper-base
       --env KONSPEKT_SUMMARIZER_MODEL=/models/qwen2.5-1.5b-instruct/model.gguf)
  if [ "$s" = gateway ]; then  # liveness (/healthz) with a real object store; no stages behind it
    env+=(--env "KONSPEKT_HEALTHCHECK_HTTP=http://127.0.0.1:$port/healthz")
    if [ -z "${WEED_PID:-}" ]; then  # SeaweedFS on the host, as ./dev run starts it
      coproc WEED { "${PY:-.venv/bin/python}" -c 'import sys, tempfile
from pathlib import Path
from konspekt_devstack import Seaweed
weed = Seaweed(Path(tempfile.mkdtemp(prefix="konspekt-smoke-"))).start()
print(*(f"{k}={v}" for k, v in weed.env().items()), "END", sep="\n", flush=True)
sys.stdin.read()
weed.stop()'; }
      while read -r line <&"${WEED[0]}" && [ "$line" != END ]; do S3_ENV+=(--env "$line"); done
    fi
    env+=("${S3_ENV[@]}")
  fi
  # the image's CMD in the background, then its HEALTHCHECK command until healthy (300 s)
  script='python -m konspekt.serve > /tmp/serve.log 2>&1 & pid=$!; start=$(date +%s)
    while [ $(( $(date +%s) - start )) -lt 300 ]; do
      if python -m konspekt.healthcheck --timeout 2 >/tmp/probe 2>&1; then
        echo "$(cat /tmp/probe) after $(( $(date +%s) - start )) s; uid $(id -u)"; kill -TERM $pid; wait $pid; exit 0; fi
      kill -0 $pid 2>/dev/null || break; sleep 1; done
    echo "never healthy: $(cat /tmp/probe)"; tail -5 /tmp/serve.log; kill $pid 2>/dev/null; exit 1'
  if out=$(buildah "${STORAGE[@]}" run "${env[@]}" --volume "$MODELS:/models:ro" "$ctr" -- sh -c "$script" 2>&1); then
    echo "$s: $(grep healthy <<<"$out")"
  else
    echo "$s: FAILED: $out"; status=1
  fi
  buildah "${STORAGE[@]}" rm "$ctr" >/dev/null
done
if [ -n "${WEED_PID:-}" ]; then exec {WEED[1]}>&-; wait "$WEED_PID" || true; fi
exit $status
