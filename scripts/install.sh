#!/usr/bin/env bash
# Installs everything edgeforge and its tests need on a fresh Debian/Ubuntu machine.
# Idempotent; runs without standard input. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
              openssh-server openssh-client mosquitto cmake chromium ser2net gdb-multiarch)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# the Debian mosquitto package starts a system broker on 1883; tests start their own.
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
