#!/usr/bin/env bash
# Runs the quickstart experiment (SST-2, SmolLM2-135M + Gemma3-270M, one soft token, 46-byte message) into runs/quickstart.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
set -euo pipefail
exec "$PY" -m runner experiments/quickstart.toml "$@"
