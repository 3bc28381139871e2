#!/usr/bin/env bash
# rgw-up.sh DIR [PORT] -- start a throw-away, single-node S3 server (Ceph RADOS
# Gateway 16.x from Debian 12) on 127.0.0.1 only, for the integration tests.
# test/helpers/rgw.ts drives it; by hand:
#   out=$(test/helpers/rgw-up.sh /tmp/rgw1) || exit 1; set -a; eval "$out"; set +a
#   ...;  test/helpers/rgw-down.sh /tmp/rgw1
# (`eval "$(rgw-up.sh ...)"` alone would hide a failed start: eval of "" succeeds.)
#
# Needs the Debian packages radosgw ceph-mon ceph-osd ceph-common curl; it does
# NOT install them (scripts/ensure-system-deps.sh does) and exits 3 naming the
# missing ones.
#
# Builds one mon (msgr2 only, 127.0.0.1:<random port>), one OSD on *memstore*
# (object data lives in the OSD's RAM, RSS ~2x the bytes stored; nothing big on
# disk) and one radosgw (beast frontend, 127.0.0.1:PORT), with cephx; no
# ceph-mgr (RGW does not need it).  Creates S3 user "test", waits until a
# SigV4-signed ListBuckets answers 200, then prints exactly 4 lines on stdout
# (also written to DIR/env):
#   S3_ENDPOINT=http://127.0.0.1:PORT
#   S3_ACCESS_KEY_ID=...
#   S3_SECRET_ACCESS_KEY=...
#   S3_REGION=us-east-1
# Progress and errors go to stderr.  On failure: exit 1, log tails on stderr,
# started daemons stopped, DIR kept for inspection.
#
# State: everything (conf, keyring, mon store, logs, admin sockets, pid files
# DIR/run/{mon,osd,rgw}.pid) lives under DIR; nothing in /etc/ceph or
# /var/lib/ceph.  DIR must be empty or absent.  Daemons run as the invoking
# user, each in its own session (setsid) with stdio on files under DIR/log, so
# `$(...)` returns at once.  Several DIRs can run at the same time (own fsid,
# keys, ports).  Ports: mon and RGW (PORT=0) get random free ports in
# 20000-31999; the OSD binds 4 ports in 6800-7300.
#
# Knobs (env): RGWUP_ACCESS_KEY, RGWUP_SECRET_KEY (override the fixed test keys;
#   [A-Za-z0-9/+=_.-] only), RGWUP_MEMSTORE_BYTES (OSD capacity, default 8 GiB),
#   RGWUP_TIMEOUT (seconds for all waits together, default 90).
# S3 client notes (RGW 16.2): path-style addressing; with @aws-sdk/client-s3
#   >= 3.729 set requestChecksumCalculation: 'WHEN_REQUIRED' (streamed
#   PutObject bodies otherwise fail with 411); RGW 16 returns an empty ETag from
#   CompleteMultipartUpload (HeadObject has it).
set -euo pipefail

log() { printf '[rgw-up %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 DIR [PORT]" >&2; exit 2; }
DIR_ARG=$1
PORT=${2:-0}
case "$PORT" in ''|*[!0-9]*) die "PORT must be a number";; esac
HERE=$(cd "$(dirname "$0")" && pwd -P)

ACCESS_KEY=${RGWUP_ACCESS_KEY:-RGWUPTESTACCESSKEY01}
SECRET_KEY=${RGWUP_SECRET_KEY:-rgwup/test/secret/key/0123456789abcdefghi}
MEMSTORE_BYTES=${RGWUP_MEMSTORE_BYTES:-8589934592}
TIMEOUT=${RGWUP_TIMEOUT:-90}
T0=$(date +%s.%N)
for k in "$ACCESS_KEY" "$SECRET_KEY"; do
  case "$k" in ''|*[!A-Za-z0-9/+=_.-]*) die "keys may only use [A-Za-z0-9/+=_.-]";; esac
done

# ---------------------------------------------------------------- packages
# Installing is someone else's job (it needs root and minutes); say exactly what is missing.
missing=()
for pair in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw radosgw-admin:radosgw \
            ceph:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common \
            curl:curl setsid:util-linux; do
  bin=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg");; esac
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "ERROR: missing Debian package(s): ${missing[*]}"
  log "install them with scripts/ensure-system-deps.sh (or: apt-get install -y --no-install-recommends ${missing[*]})"
  exit 3
fi

# ---------------------------------------------------------------- ports
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
pick_port() {  # random port below the ephemeral range, not listening now
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    [ "$p" = "${1:-}" ] && continue
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}
if [ "$PORT" = 0 ]; then
  MON_PORT=$(pick_port); PORT=$(pick_port "$MON_PORT")
else
  port_in_use "$PORT" && die "port $PORT already in use"
  MON_PORT=$(pick_port "$PORT")
fi

# ---------------------------------------------------------------- layout
mkdir -p "$DIR_ARG"
DIR=$(cd "$DIR_ARG" && pwd -P)
[ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty (run rgw-down.sh on it first)"
mkdir -p "$DIR"/{run,log,mon,osd/ceph-0,rgw/ceph-rgw.gw,crash,tmp}
CONF=$DIR/ceph.conf
KEYRING=$DIR/keyring
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $KEYRING
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.\$pid.\$cctid.asok
pid file = $DIR/run/\$name.ceph.pid
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
tmp dir = $DIR/tmp
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
rgw data = $DIR/rgw/\$cluster-\$id
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
paxos propose interval = 0.01
paxos min wait = 0.01
[mon]
admin socket = $DIR/run/\$cluster-\$name.asok
mon cluster log file = $DIR/log/cluster.log
[osd]
admin socket = $DIR/run/\$cluster-\$name.asok
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd crush update on start = true
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.gw]
admin socket = $DIR/run/\$cluster-\$name.asok
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw thread pool size = 128
rgw enable usage log = false
# deleted/overwritten data is garbage-collected after 30 s instead of 2 h, so
# the memstore OSD's RAM does not keep growing during long test runs
rgw gc obj min wait = 30
rgw gc processor period = 30
# re-check the osdmap every 1 s (not 5 s) when an op has no OSD to go to
objecter tick interval = 1
EOF

# All identities go into one keyring; `ceph-mon --mkfs` imports every entity
# (with caps) into the auth database, so no `ceph auth add` round-trips.
ceph-authtool "$KEYRING" --create-keyring --gen-key -n mon. --cap mon 'allow *' >&2
ceph-authtool "$KEYRING" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >&2
ceph-authtool "$KEYRING" --gen-key -n osd.0 \
  --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >&2
ceph-authtool "$KEYRING" --gen-key -n client.rgw.gw \
  --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >&2
chmod 600 "$KEYRING"

# ---------------------------------------------------------------- helpers
start_daemon() {  # name cmd...   (foreground daemon, own session, pid file)
  local name=$1; shift
  # No job control in a script, so setsid execs without forking: $! is the daemon.
  setsid "$@" -f -c "$CONF" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
}
fail() {
  log "ERROR: $*"
  for f in "$DIR"/log/*.out "$DIR"/log/mon.a.log "$DIR"/log/osd.0.log "$DIR"/log/client.rgw.gw.log; do
    [ -s "$f" ] && { echo "---- tail $f" >&2; tail -n 15 "$f" >&2; }
  done
  log "stopping what was started (logs kept in $DIR)"
  "$HERE/rgw-down.sh" --keep "$DIR" >&2 || true
  exit 1
}
trap 'fail "unexpected error at line $LINENO"' ERR
trap 'fail "interrupted"' INT TERM HUP
alive() { kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }
CEPH=(ceph -c "$CONF")

# ---------------------------------------------------------------- mon
log "fsid $FSID, mon 127.0.0.1:$MON_PORT, rgw 127.0.0.1:$PORT, dir $DIR"
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >&2
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$KEYRING" \
  >>"$DIR/log/mon.out" 2>&1 || fail "ceph-mon --mkfs failed"
start_daemon mon ceph-mon -i a

# ---------------------------------------------------------------- osd
# `osd new` waits for the mon to form quorum; it is idempotent per uuid, so
# retry with a short connect timeout while checking the mon is still alive.
deadline=$(( $(date +%s) + TIMEOUT ))
until port_in_use "$MON_PORT"; do   # don't let the CLI start hunting too early
  alive mon || fail "ceph-mon died (port $MON_PORT taken?)"
  [ "$(date +%s)" -lt "$deadline" ] || fail "mon did not listen within ${TIMEOUT}s"
  sleep 0.05
done
until OSD_ID=$("${CEPH[@]}" --connect-timeout 5 osd new "$OSD_UUID" 2>>"$DIR/log/cli.err"); do
  alive mon || fail "ceph-mon died (port $MON_PORT taken?)"
  [ "$(date +%s)" -lt "$deadline" ] || fail "mon did not answer within ${TIMEOUT}s"
done
[ "$OSD_ID" = 0 ] || fail "unexpected osd id '$OSD_ID'"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" --keyring "$KEYRING" \
  >>"$DIR/log/osd.out" 2>&1 || fail "ceph-osd --mkfs failed"
start_daemon osd ceph-osd -i 0
# Start radosgw only once the OSD is active: ops RGW sends to a pool whose PGs
# have no OSD yet wait for the next objecter tick, which made start-up take
# 7-8 s instead of ~2 s now and then.
osd_wait=$(( $(date +%s) + 20 ))
until grep -q 'state: booting -> active' "$DIR/log/osd.0.log" 2>/dev/null; do
  alive osd || fail "ceph-osd died"
  [ "$(date +%s)" -lt "$osd_wait" ] || { log "no 'osd active' log line after 20 s; going on"; break; }
  sleep 0.05
done
log "mon and osd up"

# ---------------------------------------------------------------- rgw
# radosgw creates its realm/zone and pools itself on first start.
start_daemon rgw radosgw -n client.rgw.gw
log "waiting for radosgw on 127.0.0.1:$PORT"
until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; do
  for d in mon osd rgw; do alive "$d" || fail "$d died"; done
  [ "$(date +%s)" -lt "$deadline" ] || fail "radosgw did not answer within ${TIMEOUT}s"
  sleep 0.2
done

log "radosgw answers; creating user"
radosgw-admin -c "$CONF" user create --uid=test --display-name="rgw-up test user" \
  --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" \
  >"$DIR/log/user-create.json" 2>>"$DIR/log/cli.err" || fail "radosgw-admin user create failed"

# ready = a SigV4-signed ListBuckets with the new keys answers 200.  (curl
# 7.88 does not add x-amz-content-sha256 itself; RGW needs it for SigV4.)
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
code=none
until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
        -H "x-amz-content-sha256: $EMPTY_SHA256" \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
        "http://127.0.0.1:$PORT/") && [ "$code" = 200 ]; do
  alive rgw || fail "radosgw died"
  [ "$(date +%s)" -lt "$deadline" ] || fail "signed request never succeeded (last HTTP $code)"
  sleep 0.2
done
trap - ERR INT TERM HUP

cat >"$DIR/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$PORT
S3_ACCESS_KEY_ID=$ACCESS_KEY
S3_SECRET_ACCESS_KEY=$SECRET_KEY
S3_REGION=us-east-1
EOF
log "ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
cat "$DIR/env"
