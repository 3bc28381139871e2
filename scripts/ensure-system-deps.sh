#!/usr/bin/env bash
# Makes sure the Debian packages the tests drive are installed (run by `npm test` as pretest).
#
# Each package is checked by a file it installs (commands are looked up with the shell
# builtin), never through dpkg or apt, so the common case costs a few milliseconds. When
# something is missing: as root, install it; otherwise print the exact command and fail.
set -euo pipefail

log() { printf 'ensure-system-deps: %s\n' "$*" >&2; }

# package  check ("cmd:NAME" = command on PATH, "file:PATH" = file exists); one per line
CHECKS='
dcmtk            cmd:storescu
dcmtk            cmd:storescp
dcmtk            cmd:echoscu
dcmtk            cmd:dcmdump
dcmtk            cmd:findscu
dcmtk            cmd:movescu
dcmtk            cmd:dcmqrscp
python3-pydicom  file:/usr/lib/python3/dist-packages/pydicom/__init__.py
dicom3tools      cmd:dciodvfy
radosgw          cmd:radosgw
ceph-mon         cmd:ceph-mon
ceph-osd         cmd:ceph-osd
ceph-common      cmd:ceph
curl             cmd:curl
iproute2         cmd:ss
orthanc          file:/usr/sbin/Orthanc
orthanc-python   file:/usr/share/orthanc/plugins/libOrthancPython.so
orthanc-postgresql file:/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
python3-boto3    file:/usr/lib/python3/dist-packages/boto3/__init__.py
'

missing=()
while read -r pkg check; do
  [[ -z "$pkg" ]] && continue
  kind=${check%%:*}
  what=${check#*:}
  if [[ $kind == cmd ]]; then
    command -v "$what" >/dev/null 2>&1 && continue
  elif [[ -e $what ]]; then
    continue
  fi
  log "missing: $what (package $pkg)"
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done <<<"$CHECKS"

if ((${#missing[@]} == 0)); then
  log "all system packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  log "not root; install them with:"
  log "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "no apt-get here; install these Debian packages by other means: ${missing[*]}"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Lock::Timeout: another apt run (e.g. a parallel job) holding the lock is waited for, up to
# 10 minutes, instead of failing at once.
log "apt-get update"
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
log "apt-get install ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
log "installed: ${missing[*]}"
