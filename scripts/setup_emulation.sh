#!/usr/bin/env bash
# Set up what the emulated aarch64 device needs: qemu user-mode, the aarch64 cross compiler, an arm64
# Debian root filesystem with python3, and the aarch64 wheels of TVM (same pins as the host); and
# what counting executed aarch64 instructions needs (`tvm-mobilenet bench --target arm
# --count-instructions`): the dynamic qemu-aarch64, its instruction-counting plugin, and the aarch64
# wheels of the peers (TFLite/XNNPACK, ONNX Runtime).
#
#   bash scripts/setup_emulation.sh        # idempotent; a second run takes seconds
#
# Everything is cached outside the repository in $TVM_MOBILENET_CACHE/emulation
# (default ~/.cache/tvm_mobilenet/emulation): rootfs/, wheels/, peer_wheels/<peer>/ and plugins/,
# each marked complete by a stamp file.
set -euo pipefail

CACHE="${TVM_MOBILENET_CACHE:-$HOME/.cache/tvm_mobilenet}/emulation"
ROOTFS="$CACHE/rootfs"
WHEELS="$CACHE/wheels"
PEER_WHEELS="$CACHE/peer_wheels"
PLUGIN="$CACHE/plugins/libinsn_count.so"
PLUGIN_SRC="$(dirname "$0")/qemu_insn_count.c"
SUITE=bookworm
PY_VERSION=3.11
# Keep in step with pyproject.toml (0.1.15 of the ffi segfaults in MetaSchedule's JSON database).
AARCH64_WHEELS=(apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 numpy ml_dtypes typing_extensions
                cloudpickle psutil tornado)
# The peers inside the emulated python, each in its own folder (numpy and typing_extensions come
# from wheels/). ai-edge-litert 1.4.0 is the last release with an aarch64 cp311 wheel.
LITERT_WHEELS=(ai-edge-litert==1.4.0 backports.strenum flatbuffers tqdm)
ONNXRUNTIME_WHEELS=(onnxruntime==1.32.0 flatbuffers packaging protobuf)

log() { echo "setup_emulation: $*" >&2; }

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Step 1. Host tools from Debian (skipped when present).
install_host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  # the dynamic qemu-aarch64 loads TCG plugins (the static one cannot); the two install side by side
  command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
  command -v gcc >/dev/null || missing+=(gcc)
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

# install_aarch64_wheels DIR WHEEL...: the aarch64 wheels, installed into a plain directory the
# emulated python puts on PYTHONPATH (skipped when DIR already holds exactly these).
install_aarch64_wheels() {
  local dir="$1"
  shift
  local want="$*"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$want" ]; then return 0; fi
  log "installing aarch64 wheels into $dir"
  rm -rf "$dir.partial"
  mkdir -p "$(dirname "$dir")"
  python3 -m pip install -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --target "$dir.partial" "$@" >&2 || return 1  # (set -e does not apply under `||`)
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
  echo "$want" > "$dir/.complete"
}

# Step 3. TVM's aarch64 wheels.
install_wheels() {
  install_aarch64_wheels "$WHEELS" "${AARCH64_WHEELS[@]}"
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

# Step 5. The instruction-counting plugin. Debian ships neither qemu's plugins nor qemu-plugin.h,
# so its source declares the few plugin-API-version-1 functions it uses; rebuilt when the source
# changes, and checked on the rootfs's /bin/true.
build_count_plugin() {
  local sum
  sum=$(sha256sum "$PLUGIN_SRC" | cut -d' ' -f1)
  [ -f "$PLUGIN" ] && [ "$(cat "$PLUGIN.sha256" 2>/dev/null)" = "$sum" ] && return 0
  log "building the instruction-counting qemu plugin into $PLUGIN"
  mkdir -p "$(dirname "$PLUGIN")"
  gcc -O2 -Wall -shared -fPIC -fvisibility=hidden -o "$PLUGIN.partial" "$PLUGIN_SRC"
  local out
  out=$(mktemp)
  QEMU_CPU=cortex-a72 qemu-aarch64 -L "$ROOTFS" -plugin "$PLUGIN.partial,out=$out" "$ROOTFS/bin/true"
  if ! grep -q '"instructions": [1-9]' "$out"; then
    log "the plugin counted nothing on /bin/true: $(cat "$out")"
    rm -f "$out"
    exit 1
  fi
  rm -f "$out"
  mv "$PLUGIN.partial" "$PLUGIN"
  echo "$sum" > "$PLUGIN.sha256"
}

# Step 6. The peers' aarch64 wheels. A peer whose wheels do not install is left out (the bench
# then says it is not installed); the others still count.
install_peer_wheels() {
  install_aarch64_wheels "$PEER_WHEELS/litert" "${LITERT_WHEELS[@]}" ||
    log "warning: TFLite/XNNPACK's aarch64 wheels did not install; counting goes on without it"
  install_aarch64_wheels "$PEER_WHEELS/onnxruntime" "${ONNXRUNTIME_WHEELS[@]}" ||
    log "warning: ONNX Runtime's aarch64 wheels did not install; counting goes on without it"
}

# Step 7. An ARM /proc/cpuinfo in the rootfs: qemu-user 7.2 passes the x86 host's through, and
# ONNX Runtime's cpuinfo library dereferences NULL when it finds no ARM core in it. qemu's -L
# lookup finds the rootfs's file first. Cortex-A72 cores (implementer 0x41, part 0xd08), as many
# as the host has.
write_arm_cpuinfo() {
  local text="" cpu
  for ((cpu = 0; cpu < $(nproc --all); cpu++)); do
    text+="processor	: $cpu
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

"
  done
  [ "$(cat "$ROOTFS/proc/cpuinfo" 2>/dev/null; echo x)" = "${text}x" ] && return 0
  log "writing an ARM (Cortex-A72) /proc/cpuinfo into $ROOTFS/proc"
  mkdir -p "$ROOTFS/proc"
  printf '%s' "$text" > "$ROOTFS/proc/cpuinfo"
}

install_host_tools
build_rootfs
install_wheels
smoke_test
build_count_plugin
install_peer_wheels
write_arm_cpuinfo
log "ready: rootfs $ROOTFS, wheels $WHEELS, peers $PEER_WHEELS, counting plugin $PLUGIN"
