#!/usr/bin/env bash
# Installs the Debian packages Troupe builds against, only those that are missing.
# CUDA is not a Debian package: when nvcc is absent the build simply turns TROUPE_CUDA off.
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache pkg-config
      libcaf-dev libcapnp-dev capnproto libspdlog-dev libfmt-dev
      libboost-dev libboost-test-dev nlohmann-json3-dev libyaml-cpp-dev libpcre2-dev libicu-dev
      curl python3 python3-venv clang libclang-rt-14-dev
      iproute2)  # ip netns + veth: the multi-node partition test
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
