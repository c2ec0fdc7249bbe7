#!/usr/bin/env bash
# Runs the whole test suite in the project virtualenv (created on first use).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
set -euo pipefail
# The dashboard's end-to-end test drives a real headless Chromium (Debian's package; Playwright's own
# browser download cannot work offline).
if ! command -v chromium >/dev/null 2>&1; then
  echo "[test] installing Debian's chromium for the browser test" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
exec "$PY" -m pytest "$@"
