#!/usr/bin/env bash
# The GPU machine's one command (issue 23); see scripts/device/prepare.sh for what to carry there first.
#
#   bash scripts/device/run.sh OUT_DIR              # THERE: one H200, no network; within about 8 minutes
#   bash scripts/device/run.sh --dry-run [OUT_DIR]  # HERE: the same steps on the CPU at tiny size (CI runs it)
#
# 1. installs the carried wheels (.device/wheels) into /tmp/site, reassembles and verifies the carried
#    models (.device/models, SHA-256 per piece and per file) into /tmp/latentwire-gguf; refuses (exit 2)
#    where torch sees no CUDA device;
# 2. pytest -m gpu (tests/gpu): bf16 against fp32, GPU generation against the CPU, a GPU checkpoint
#    resumed on the CPU, `accelerate launch` of a tiny experiment;
# 3. benchmarks/throughput.py: one training step at real sizes (Llama-3.2-1B, Qwen2.5-1.5B, Gemma3-1B
#    shapes, random weights);
# 4. if the models were carried: experiments/recall-gpu.toml, time-boxed to 5 minutes;
# 5. a summary. OUT_DIR gets at most 8 files: summary.json, summary.md, run.log, gpu-tests.xml,
#    throughput.json, throughput.md, recall-metrics.json, recall-manifest.json.
# Each step's failure is recorded and the next step still runs; the exit status is 1 if any failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DRY=0
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0; fi
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT="${1:-}"
if [ -z "$OUT" ]; then
  if [ "$DRY" = 1 ]; then OUT="$(mktemp -d)"; else echo "usage: run.sh OUT_DIR | run.sh --dry-run [OUT_DIR]" >&2; exit 2; fi
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/run.log") 2>&1
WORK="$(mktemp -d)"
T0=$(date +%s)
declare -A RC SECS
ORDER=()
stage() {  # stage NAME TIMEOUT_S CMD...: run with a time limit, record exit status and seconds
  local name="$1" limit="$2"; shift 2
  local t=$(date +%s)
  echo "=== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@"
  RC[$name]=$?
  ORDER+=("$name")
  SECS[$name]=$(( $(date +%s) - t ))
  echo "=== $name: exit ${RC[$name]} in ${SECS[$name]}s"
}

SCRIPT=scripts/device/run.sh
source scripts/device/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

stage gpu_tests 180 "$PY" -m pytest -q -m gpu tests/gpu -p no:cacheprovider --junitxml="$OUT/gpu-tests.xml"
stage throughput 120 "$PY" benchmarks/throughput.py --size "$SIZE" --out "$OUT"

RECALL=()
if [ "$DRY" = 1 ]; then  # the same experiment file at tiny size
  RECALL=(--set 'models.names=["tiny-llama", "tiny-gemma3"]' --set features.source=tiny-llama
    --set features.layer=1 --set features.max_length=64 --set wire.lm_pool.n_layers=1
    --set wire.encoder.d_z=16 --set data.train_limit=32 --set data.eval_limit=8 --set data.min_eval=8
    --set pretrain.steps=2 --set pretrain.batch_size=4 --set pretrain.ckpt_every=2
    --set train.steps=2 --set train.batch_size=4 --set train.ckpt_every=2
    --set eval.batch_size=8 --set eval.bootstrap_resamples=50)
fi
if [ "$DRY" = 1 ] || [ "$MODELS" = 1 ]; then
  stage recall_gpu 300 "$PY" -m runner experiments/recall-gpu.toml --runs-dir "$WORK/runs" "${RECALL[@]}"
  [ -f "$WORK/runs/recall-gpu/eval/metrics.json" ] && cp "$WORK/runs/recall-gpu/eval/metrics.json" "$OUT/recall-metrics.json"
  [ -f "$WORK/runs/recall-gpu/manifest.json" ] && cp "$WORK/runs/recall-gpu/manifest.json" "$OUT/recall-manifest.json"
fi

# summary: the machine, the versions, each stage's status and time, the tests, throughput, the recall result
RCS="$(for k in "${ORDER[@]}"; do echo "$k ${RC[$k]} ${SECS[$k]}"; done)"
"$PY" - "$OUT" "$DRY" "$(( $(date +%s) - T0 ))" "$WORK/runs/recall-gpu" <<PY
import json, subprocess, sys, xml.etree.ElementTree as ET
from pathlib import Path
out, dry, total, run = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), Path(sys.argv[4])
stages = {l.split()[0]: {"exit": int(l.split()[1]), "seconds": int(l.split()[2])} for l in """$RCS""".splitlines() if l.strip()}
import torch, transformers, accelerate
def smi(q):
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except OSError:
        return None
s = {"dry_run": dry, "total_seconds": total, "stages": stages,
     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "driver": smi("driver_version"),
     "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__, "accelerate": accelerate.__version__}}
x = out / "gpu-tests.xml"
if x.is_file():
    t = ET.parse(x).getroot(); t = t if t.tag == "testsuite" else t[0]
    s["gpu_tests"] = {k: int(t.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
tp = out / "throughput.json"
if tp.is_file():
    s["throughput"] = json.loads(tp.read_text())["rows"]
m = out / "recall-metrics.json"
if m.is_file():
    res = json.loads(m.read_text())["results"]
    s["recall_em"] = {f"{r['model']}/{r['method']}": r["value"] for r in res if r["metric"] == "em" and r["subset"] == "all"}
probe = run / "train" / "metrics.jsonl"
if probe.is_file():
    rows = [json.loads(l) for l in probe.read_text().splitlines() if "content_gap" in l]
    if rows:
        s["last_probe"] = {k: v for k, v in rows[-1].items() if k.endswith("content_gap") or k == "step"}
(out / "summary.json").write_text(json.dumps(s, indent=1))
md = [f"# Device run ({'dry run, CPU' if dry else s['gpu']}), {total} s", "", f"driver {s['driver']}, " + ", ".join(f"{k} {v}" for k, v in s["versions"].items()), "",
      "| stage | exit | seconds |", "|---|---|---|"] + [f"| {k} | {v['exit']} | {v['seconds']} |" for k, v in stages.items()]
if "gpu_tests" in s: md += ["", "GPU tests: " + ", ".join(f"{k} {v}" for k, v in s["gpu_tests"].items())]
if "recall_em" in s: md += ["", "recall EM: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(s["recall_em"].items()))]
if tp.is_file(): md += ["", (out / "throughput.md").read_text()]
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
rm -rf "$WORK"
failed=0
for k in "${!RC[@]}"; do [ "${RC[$k]}" = 0 ] || failed=1; done
echo "device run: $([ $failed = 0 ] && echo ok || echo 'a stage failed') in $(( $(date +%s) - T0 ))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $failed
