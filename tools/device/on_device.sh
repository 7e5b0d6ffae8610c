#!/usr/bin/env bash
# Runs on the GPU machine, from the repo root of the carried working tree: unpacks devcarry/troupe.tar.xz
# (tools/device/build.sh made it) into /tmp/troupe, puts its bin/ first on PATH, prints the GPU, then runs
# the command given as one argument with bash. Logs go to $OUT when the device tool set it.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=${CARRY:-devcarry}  # CARRY=devcarry-me tools/device/on_device.sh ... for a build packed with CARRY set
if [[ ! -f $CARRY/troupe.tar.xz ]]; then
  echo "$CARRY/troupe.tar.xz is missing: run tools/device/build.sh and carry devcarry" >&2
  exit 2
fi
rm -rf /tmp/troupe && mkdir -p /tmp/troupe
tar -C /tmp/troupe -xJf "$CARRY/troupe.tar.xz"
export PATH=/tmp/troupe/bin:$PATH
# RUNPATH ($ORIGIN/../lib) covers only the binaries' direct dependencies; libcapnp's libkj and libicuuc's
# libicudata are found through this.
export LD_LIBRARY_PATH=/tmp/troupe/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OUT=${OUT:-/tmp/troupe-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
missing=$(ldd /tmp/troupe/bin/troupe | grep "not found" || true)
if [[ -n $missing ]]; then
  echo "troupe is missing shared libraries on this machine:" >&2
  echo "$missing" >&2
  exit 2
fi
exec bash -c "$1"
