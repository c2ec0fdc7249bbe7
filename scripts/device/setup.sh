# Sourced by scripts/device/run.sh and scripts/device/general.sh (never run alone): the device machine's
# environment. Needs ROOT, DRY (1: a dry run here, on the CPU) and SCRIPT (the caller, for messages).
# Sets PY, SIZE, MODELS (1: the carried models verified) and LATENTWIRE_DATA; refuses (exit 2) on a
# machine where torch sees no CUDA device unless DRY=1. The carried data (a data.tar among the carried
# pieces, from prepare.sh --data) is unpacked into /tmp/latentwire-data.
MODELS=0
if [ "$DRY" = 1 ]; then
  source scripts/bootstrap.sh >/dev/null
  set -uo pipefail
  export LATENTWIRE_GPU_TESTS_ON_CPU=1
  SIZE=tiny
else
  PY="${PYTHON:-python3}"
  SIZE=real
  DEV="${LATENTWIRE_DEVICE_DIR:-.device}"
  if ls "$DEV"/wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$DEV"/wheels/*.whl || { echo "error: installing the carried wheels failed" >&2; exit 2; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  SRC=""
  for p in packages/latentwire-core packages/latentwire-hf packages/latentwire-eval apps/runner; do SRC="$SRC:$ROOT/$p/src"; done
  PYTHONPATH="${PYTHONPATH:-}${SRC}"; export PYTHONPATH="${PYTHONPATH#:}"
  GGUF="${LATENTWIRE_GGUF_DIR:-/tmp/latentwire-gguf}"
  if [ -f "$DEV/models/manifest.json" ]; then
    rm -rf "$GGUF/in" && mkdir -p "$GGUF/in"
    find "$(cd "$DEV/models" && pwd)" -name '*.part*' -exec ln -sf {} "$GGUF/in/" \;
    cp "$DEV/models/manifest.json" "$GGUF/in/"
    if "$PY" scripts/device/pieces.py join "$GGUF/in" --dest "$GGUF"; then
      export LATENTWIRE_GGUF_DIR="$GGUF"
      MODELS=1
      if [ -f "$GGUF/data.tar" ]; then
        rm -rf /tmp/latentwire-data && mkdir -p /tmp/latentwire-data
        tar -xf "$GGUF/data.tar" -C /tmp/latentwire-data && export LATENTWIRE_DATA=/tmp/latentwire-data
      fi
    else
      echo "warning: the carried models did not verify; skipping the recall-gpu experiment" >&2
    fi
  fi
  export LATENTWIRE_CACHE="${LATENTWIRE_CACHE:-/tmp/latentwire-cache}"
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: torch sees no CUDA device here; on a CPU machine run: bash scripts/device/$SCRIPT --dry-run" >&2
    exit 2
  fi
fi
export LATENTWIRE_DATA="${LATENTWIRE_DATA:-$ROOT/tests/assets/data}"
