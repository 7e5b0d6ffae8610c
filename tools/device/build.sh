#!/usr/bin/env bash
# Builds troupe for the GPU machine (sm_90a) on this machine and packs what the device needs into
# devcarry/troupe.tar.xz: bin/ (troupe, the kernel test and bench programs, the cuda check), lib/ (the Debian
# shared libraries they load: CAF, Cap'n Proto, spdlog, ICU...; RPATH $ORIGIN/../lib) and share/ (the default
# model). xz keeps ICU's 30 MB data library well inside the device tool's 64 MiB carry limit.
#
#   tools/device/build.sh            then, with the device tool:
#   run(carry=["devcarry"], command="tools/device/on_device.sh 'tools/device/run_checks.sh all'")
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-cuda}
PREFIX=${PREFIX:-$PWD/install}
CARRY=${CARRY:-devcarry}  # several builders at once: CARRY=devcarry-me PREFIX=$PWD/install-me BUILD=build-me
export CCACHE_BASEDIR=$PWD
if [[ ! -f $BUILD/build.ninja ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_CUDA=ON -DCMAKE_INSTALL_PREFIX="$PREFIX"
fi
targets=(troupe)
for t in troupe_kernel_test troupe_kernel_bench troupe_cuda_check; do
  if ninja -C "$BUILD" -t query "$t" >/dev/null 2>&1; then targets+=("$t"); fi
done
echo "building ${targets[*]} in $BUILD"
nice ninja -C "$BUILD" -j "${JOBS:-2}" "${targets[@]}"
rm -rf "$PREFIX"
cmake --install "$BUILD" --strip --prefix "$PREFIX" >/dev/null
mkdir -p "$CARRY"
tar -C "$PREFIX" -cJf "$CARRY/troupe.tar.xz" .
echo "$CARRY/troupe.tar.xz: $(du -h "$CARRY/troupe.tar.xz" | cut -f1) ($(ls "$PREFIX"/bin | tr '\n' ' '))"
