#!/usr/bin/env bash
# Runs the whole test suite in the project virtualenv (created on first use).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
set -euo pipefail
exec "$PY" -m pytest "$@"
