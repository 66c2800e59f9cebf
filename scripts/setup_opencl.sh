#!/usr/bin/env bash
# Set up an OpenCL implementation on this machine so the Mali kernels can be checked without a Mali:
# PoCL (OpenCL on the CPU) behind the ICD loader, clinfo to look at it, and pyopencl.
#
#   bash scripts/setup_opencl.sh        # idempotent; a second run takes a second
set -euo pipefail

PACKAGES=(ocl-icd-libopencl1 pocl-opencl-icd clinfo)

log() { echo "setup_opencl: $*" >&2; }

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Step 1. PoCL and the ICD loader from Debian (skipped when installed).
install_opencl() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  apt_install "${missing[@]}"
}

# Step 2. pyopencl (also in the [opencl] extra of pyproject.toml).
install_pyopencl() {
  python3 -c "import pyopencl" 2>/dev/null && return 0
  log "installing pyopencl"
  python3 -m pip install -q pyopencl >&2
}

# Step 3. A quick check: pyopencl sees at least one device.
smoke_test() {
  python3 -c "import pyopencl as cl; ds = [d.name for p in cl.get_platforms() for d in p.get_devices()];
assert ds, 'no OpenCL device'; print('OpenCL devices:', ', '.join(ds))" >&2
}

install_opencl
install_pyopencl
smoke_test
log "ready"
