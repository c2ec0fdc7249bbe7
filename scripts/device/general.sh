#!/usr/bin/env bash
# The general wire's pretraining on a GPU, from the committed snapshot: the device machine's first job.
#
#   bash scripts/device/general.sh OUT_DIR              # THERE: one H100/H200, no network, ~7 minutes
#   bash scripts/device/general.sh --dry-run [OUT_DIR]  # HERE: the same steps at tiny size on the CPU (CI)
#
# Carry first what scripts/device/prepare.sh --general cuts (the wheels, the three readers' GGUF files
# and data.tar, the offline data folder the corpus is built from, in pieces of one transfer each).
# Then, THERE: experiments/general-4x.toml's pretraining continues from wires/general-4x (tracked, so it
# travels with the working tree) in bf16 for GENERAL_SECONDS (default 400) training seconds, with the
# same batch of 8 as on the CPU, so the data position and the curriculum's phases mean the same steps.
# OUT_DIR gets at most 6 files: the new snapshot's weights as pieces of at most 15 MiB with their
# manifest.json (scripts/device/pieces.py), general-meta.tar (snapshot.json, wire.json, the curves) and
# general.log. HERE, afterwards, put them back and commit:
#
#   python scripts/device/pieces.py join FILES_AT --dest wires/general-4x
#   tar -xf FILES_AT/general-meta.tar -C wires/general-4x && git add wires/general-4x && git commit
#
# The CPU run then continues from that snapshot (its run folder has older checkpoints: move it away).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DRY=0
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0; fi
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT="${1:-}"
if [ -z "$OUT" ]; then
  if [ "$DRY" = 1 ]; then OUT="$(mktemp -d)"; else echo "usage: general.sh OUT_DIR | general.sh --dry-run [OUT_DIR]" >&2; exit 2; fi
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/general.log") 2>&1
WORK="$(mktemp -d)"
T0=$(date +%s)
SCRIPT=scripts/device/general.sh
source scripts/device/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
SECONDS_LIMIT="${GENERAL_SECONDS:-400}"

SNAP="$WORK/general-4x"
SETS=(--set "pretrain.time_limit_s=$SECONDS_LIMIT" --set "pretrain.snapshot=\"$SNAP\"")
if [ "$DRY" = 1 ]; then  # tiny readers from scratch (the committed snapshot is for the real ones), the
  # test slices as the corpus (the full one takes minutes to cut into every curriculum phase's spans)
  export LATENTWIRE_DATA="$ROOT/tests/assets/data"
  SETS+=(--set 'models.names=["tiny-llama", "tiny-gemma3"]' --set features.source=tiny-llama
    --set features.layer=1 --set features.max_length=64 --set wire.lm_pool.n_layers=1
    --set wire.encoder.d_z=16 --set data.eval_limit=8 --set data.min_eval=8 --set pretrain.steps=4
    --set pretrain.ckpt_every=2 --set pretrain.curriculum_steps=1
    --set pretrain.curve_every=0 --set pretrain.warmup_steps=1)
else
  if [ "$MODELS" != 1 ] || [ "${LATENTWIRE_DATA:-}" != /tmp/latentwire-data ]; then
    echo "error: the readers and data.tar were not carried (scripts/device/prepare.sh --general)" >&2; exit 2
  fi
  [ -f wires/general-4x/snapshot.json ] && cp -r wires/general-4x "$SNAP"
  SETS+=(--set pretrain.mixed_precision=bf16)
fi
timeout --kill-after=10 $((SECONDS_LIMIT + 180)) "$PY" -m runner experiments/general-4x.toml \
  --stage prepare --stage pretrain --runs-dir "$WORK/runs" "${SETS[@]}"
rc=$?
if [ -f "$SNAP/snapshot.json" ]; then
  "$PY" scripts/device/pieces.py split "$SNAP/wire.safetensors" --out "$OUT" --max-mib 15 >/dev/null || rc=1
  tar -cf "$OUT/general-meta.tar" -C "$SNAP" $(cd "$SNAP" && ls | grep -v '^wire.safetensors$') || rc=1
else
  echo "error: no snapshot was written" >&2; rc=1
fi
rm -rf "$WORK"
echo "general pretraining: exit $rc in $(( $(date +%s) - T0 ))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $rc
