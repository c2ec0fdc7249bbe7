#!/usr/bin/env bash
# Answers from a shipped wire without training: encodes a sentence with wires/sst2-quickstart (one soft
# token, a 46-byte message), then two readers of two families answer from the message alone.
#   bash scripts/shipped.sh ["your sentence"]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
set -euo pipefail
TEXT="${1:-a gorgeous, witty, seductive movie.}"
WIRE=wires/sst2-quickstart
TMP="$(mktemp -d)"; MSG="$TMP/message.lw"; LOG="$TMP/log"
trap 'echo "failed; the log:" >&2; tail -20 "$LOG" >&2' ERR
"$PY" -m runner encode "$WIRE" --text "$TEXT" -o "$MSG" 2>>"$LOG"
echo "text:    \"$TEXT\" ($(printf '%s' "$TEXT" | wc -c) UTF-8 bytes)"
echo "message: $MSG ($(wc -c < "$MSG") bytes)"
for reader in smollm2-135m gemma3-270m; do
  echo "$reader: $("$PY" -m runner answer "$WIRE" --model "$reader" "$MSG" 2>>"$LOG")"
done
