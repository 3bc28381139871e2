#!/usr/bin/env bash
# npm run bench [-- --quick | --profile | --only=...]: runs bench/run.ts through the TypeScript
# loader that tap ships (transpile only: no type check, no build step).
set -euo pipefail
cd "$(dirname "$0")/.."
# The test suite's system packages (DCMTK, Ceph RGW), plus Orthanc as a reference receiver.
bash scripts/ensure-system-deps.sh
if [ ! -x /usr/sbin/Orthanc ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bench: installing Debian package orthanc" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends orthanc >&2
  else
    echo "bench: Orthanc is missing; install it with: sudo apt-get install -y orthanc" >&2
    exit 1
  fi
fi
export TS_NODE_TRANSPILE_ONLY=1 NODE_NO_WARNINGS=1
exec node --import=@tapjs/typescript/import bench/run.ts "$@"
