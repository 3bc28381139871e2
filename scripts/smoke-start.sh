#!/usr/bin/env bash
# Starts `npm start` (embedded default: no config, data under ./data) in a scratch
# copy of the work tree's data dir, waits for the listening log line, checks C-ECHO
# with DCMTK's echoscu, sends SIGTERM and expects a clean exit.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DICOM_PORT=${DICOM_PORT:-11112}
# own process group, so one signal reaches npm and the node process it runs
setsid npm start >"$log" 2>&1 &
pid=$!
deadline=$((SECONDS + 120))
until grep -q '"event":"gateway.started"' "$log"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "smoke: npm start exited early:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "smoke: gateway did not start within 120 s:" >&2
    cat "$log" >&2
    kill -TERM -- "-$pid" || true
    exit 1
  fi
  sleep 0.5
done
TCP_NODELAY=1 echoscu -aet SMOKE -aec DICOMGW 127.0.0.1 "$DICOM_PORT"
kill -TERM -- "-$pid"
wait "$pid" || true
# npm may exit before the node process it ran has finished stopping: wait for the log line.
deadline=$((SECONDS + 30))
until grep -q '"event":"gateway.stopped"' "$log" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
grep -q '"event":"gateway.stopped"' "$log" || {
  echo "smoke: no clean stop:" >&2
  cat "$log" >&2
  exit 1
}
echo "smoke: npm start came up, answered C-ECHO and stopped cleanly"
