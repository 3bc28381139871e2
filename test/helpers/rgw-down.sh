#!/usr/bin/env bash
# rgw-down.sh [--keep] DIR -- stop the S3 server that rgw-up.sh started in DIR
# and delete DIR.  Only processes named by DIR/run/*.pid are signalled, and only
# if their command line still refers to DIR/ceph.conf (guards against pid
# reuse); nothing is killed by name.  Without --keep the daemons get SIGKILL at
# once (all state is thrown away anyway, and a memstore OSD would otherwise dump
# its whole RAM store to disk on SIGTERM); with --keep they get SIGTERM (5 s
# grace, then SIGKILL) and DIR is left for inspection.  Works on daemons that a
# test froze with SIGSTOP.  Safe to run twice, or on a DIR whose start failed.
set -uo pipefail
KEEP=0
[ "${1:-}" = --keep ] && { KEEP=1; shift; }
[ $# -eq 1 ] || { echo "usage: $0 [--keep] DIR" >&2; exit 2; }
[ -d "$1" ] || { echo "rgw-down: $1: no such directory (nothing to do)" >&2; exit 0; }
DIR=$(cd "$1" && pwd -P)
[ -f "$DIR/ceph.conf" ] || [ -d "$DIR/run" ] || {
  echo "rgw-down: $DIR does not look like an rgw-up.sh directory; not touching it" >&2; exit 1; }

ours() {  # pid -> true if it is a live process started with -c DIR/ceph.conf
  local pid=$1 cmd
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [ -n "$cmd" ] || return 1                        # zombie
  case "$cmd" in *" $DIR/ceph.conf"*) return 0;; *) return 1;; esac
}

pids=()
for f in "$DIR"/run/rgw.pid "$DIR"/run/osd.pid "$DIR"/run/mon.pid "$DIR"/run/*.pid; do
  [ -f "$f" ] || continue
  pid=$(tr -dc 0-9 <"$f")
  [ -n "$pid" ] || continue
  case " ${pids[*]-} " in *" $pid "*) continue;; esac
  ours "$pid" && pids+=("$pid")
done

left=()
if [ ${#pids[@]} -gt 0 ]; then
  sig=KILL; [ $KEEP = 1 ] && sig=TERM
  for pid in "${pids[@]}"; do
    kill -s "$sig" "$pid" 2>/dev/null || true
    # a SIGSTOPped daemon would sit on SIGTERM until continued
    [ $sig = TERM ] && kill -s CONT "$pid" 2>/dev/null || true
  done
  for i in $(seq 1 50); do                          # up to 5 s
    left=(); for pid in "${pids[@]}"; do ours "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${left[@]-}"; do [ -n "$pid" ] && kill -s KILL "$pid" 2>/dev/null || true; done
  for i in $(seq 1 30); do                          # wait for SIGKILL to land
    left=(); for pid in "${pids[@]}"; do ours "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  [ ${#left[@]} -eq 0 ] || { echo "rgw-down: still running: ${left[*]}" >&2; exit 1; }
fi
echo "rgw-down: stopped ${#pids[@]} process(es) for $DIR" >&2
[ $KEEP = 1 ] || rm -rf -- "$DIR"
exit 0
