"""Command line: install what a part of the flow needs on this machine (apt packages, caches).

    tvm-mobilenet setup emulation   # qemu, the aarch64 cross compiler, an arm64 rootfs, TVM wheels;
                                    # the instruction-counting plugin and the peers' aarch64 wheels
    tvm-mobilenet setup opencl      # PoCL (OpenCL on this CPU) and pyopencl, to check Mali kernels

Runs the script shipped with the package (scripts/setup_NAME.sh in the repository); apt-get needs
root.
"""

from __future__ import annotations

import subprocess

from tvm_mobilenet.cli.common import Parser

PARTS = ("emulation", "opencl")


def main(argv=None, prog=None) -> int:
    parser = Parser(prog=prog or "tvm-mobilenet setup", description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=PARTS, help="what to set up")
    args = parser.parse_args(argv)

    from tvm_mobilenet.resources import setup_script

    return subprocess.run(["bash", str(setup_script(args.part))], check=False).returncode
