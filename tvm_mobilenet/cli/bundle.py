"""Command line: gather the C++ app, a compiled .so and the TVM runtime libraries into one folder to
ship.

    python -m tvm_mobilenet.bundle build/mobilenet_rasp4b.so -o dist/rasp4b
    # on the board:  cd rasp4b && ./mobilenet_app ./mobilenet_rasp4b.so [image.npy]

The app is built (natively or for aarch64, following the .so) with the Makefile in
tvm_mobilenet/run/cpp_app/.
"""

from __future__ import annotations

from pathlib import Path

from tvm_mobilenet.cli.common import Parser


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.bundle", description=__doc__.splitlines()[0]
    )
    parser.add_argument("module", type=Path, help="the .so written by tvm_mobilenet.compile")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the folder to fill")
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=Path("build") / "app",
        help="where the app is built (default build/app)",
    )
    args = parser.parse_args(argv)

    from tvm_mobilenet.run.bundle import APP_NAME, bundle

    result = bundle(args.module, args.output, args.build_dir)
    print(
        f"bundled for {'aarch64' if result.arch == 'aarch64' else 'this machine (x86-64)'} in "
        f"{result.folder}: " + ", ".join(result.files)
    )
    print(f"run: cd {result.folder} && ./{APP_NAME} ./{args.module.name} [input.npy] [--repeat N]")
    return 0
