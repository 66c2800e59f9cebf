#!/usr/bin/env bash
# Set up what the emulated aarch64 device needs: qemu user-mode, the aarch64 cross compiler, an arm64
# Debian root filesystem with python3, and the aarch64 wheels of TVM (same pins as the host).
#
#   bash scripts/setup_emulation.sh        # idempotent; a second run takes seconds
#
# Everything is cached outside the repository in $TVM_MOBILENET_CACHE/emulation
# (default ~/.cache/tvm_mobilenet/emulation): rootfs/ and wheels/, each marked complete by a stamp file.
set -euo pipefail

CACHE="${TVM_MOBILENET_CACHE:-$HOME/.cache/tvm_mobilenet}/emulation"
ROOTFS="$CACHE/rootfs"
WHEELS="$CACHE/wheels"
SUITE=bookworm
PY_VERSION=3.11
# Keep in step with pyproject.toml (0.1.15 of the ffi segfaults in MetaSchedule's JSON database).
AARCH64_WHEELS=(apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 numpy ml_dtypes typing_extensions
                cloudpickle psutil tornado)

log() { echo "setup_emulation: $*" >&2; }

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Step 1. Host tools from Debian (skipped when present).
install_host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v make >/dev/null || missing+=(make)
  command -v g++ >/dev/null || missing+=(g++)
  apt_install "${missing[@]}"
}

# The Debian mirror this machine already uses (deb822 .sources or one-line sources.list).
debian_mirror() {
  local mirror
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
           awk '/^URIs:/{uri=$2} /^Suites:/{ if ($0 !~ /security/ && uri != "") { print uri; exit } }')
  if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '$1 == "deb" && $0 !~ /security/ && $0 ~ /debian/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
  fi
  if [ -z "$mirror" ]; then
    log "no Debian mirror found in /etc/apt/sources.list*; add one (e.g. via your distribution's apt setup)"
    exit 1
  fi
  echo "$mirror"
}

# Step 2. An arm64 root filesystem with python3: debootstrap's first stage downloads the packages,
# dpkg-deb -x unpacks them all (the second stage would need to run arm64 maintainer scripts).
build_rootfs() {
  [ -f "$ROOTFS/.complete" ] && return 0
  local mirror
  mirror=$(debian_mirror)
  log "building an arm64 $SUITE root filesystem in $ROOTFS from $mirror (a few minutes)"
  as_root rm -rf "$ROOTFS.partial"
  mkdir -p "$CACHE"
  as_root debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 "$SUITE" "$ROOTFS.partial" "$mirror" >&2
  for deb in "$ROOTFS.partial"/var/cache/apt/archives/*.deb; do
    as_root dpkg-deb -x "$deb" "$ROOTFS.partial"
  done
  as_root rm -f "$ROOTFS.partial"/var/cache/apt/archives/*.deb
  [ -x "$ROOTFS.partial/usr/bin/python$PY_VERSION" ] || { log "python$PY_VERSION missing in the rootfs"; exit 1; }
  as_root chown -R "$(id -u):$(id -g)" "$ROOTFS.partial"
  rm -rf "$ROOTFS"
  mv "$ROOTFS.partial" "$ROOTFS"
  touch "$ROOTFS/.complete"
}

# Step 3. The aarch64 wheels, installed into a plain directory the emulated python puts on PYTHONPATH.
install_wheels() {
  local want="${AARCH64_WHEELS[*]}"
  if [ -f "$WHEELS/.complete" ] && [ "$(cat "$WHEELS/.complete")" = "$want" ]; then return 0; fi
  log "installing aarch64 wheels into $WHEELS"
  rm -rf "$WHEELS.partial"
  python3 -m pip install -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --target "$WHEELS.partial" "${AARCH64_WHEELS[@]}" >&2
  rm -rf "$WHEELS"
  mv "$WHEELS.partial" "$WHEELS"
  echo "$want" > "$WHEELS/.complete"
}

# Step 4. A quick check: the emulated python imports the TVM runtime.
smoke_test() {
  [ -f "$CACHE/.checked" ] && [ "$CACHE/.checked" -nt "$WHEELS/.complete" ] && return 0
  log "checking the emulated TVM runtime"
  TVM_USE_RUNTIME_LIB=1 PYTHONPATH="$WHEELS" QEMU_CPU=cortex-a72 \
    qemu-aarch64-static -L "$ROOTFS" "$ROOTFS/usr/bin/python$PY_VERSION" -c \
    "import tvm, tvm.runtime.vm; print('emulated aarch64 TVM', tvm.__version__)" >&2
  touch "$CACHE/.checked"
}

install_host_tools
build_rootfs
install_wheels
smoke_test
log "ready: rootfs $ROOTFS, wheels $WHEELS"
