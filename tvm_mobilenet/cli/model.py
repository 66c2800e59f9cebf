"""Command line: print MobileNet v1's layer table (kind, input shape, mult-adds, params) and totals.

tvm-mobilenet model --alpha 0.5 --resolution 160 [--json] [--save-weights FILE.npz]
"""

from __future__ import annotations

import json
from pathlib import Path

from tvm_mobilenet.cli.common import Parser, add_model_args, model_config


def format_table(table: dict) -> str:
    lines = [
        f"{'layer':12s} {'kind':10s} {'input (NCHW)':>20s} {'stride':>6s} {'mult-adds':>13s} "
        f"{'params':>11s}"
    ]
    for row in table["layers"]:
        shape = "x".join(map(str, row["input_shape"]))
        lines.append(
            f"{row['name']:12s} {row['kind']:10s} {shape:>20s} {row['stride']:>6d} "
            f"{row['macs']:>13,d} {row['params']:>11,d}"
        )
    lines.append(
        f"{'total':12s} {'':10s} {'':>20s} {'':>6s} {table['macs']:>13,d} {table['params']:>11,d}"
    )
    lines.append(
        f"= {table['macs'] / 1e6:.0f} M mult-adds, {table['params'] / 1e6:.1f} M parameters "
        "(BatchNorm not counted)"
    )
    return "\n".join(lines)


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.model", description=__doc__.splitlines()[0]
    )
    add_model_args(parser, files=False)
    parser.add_argument("--json", action="store_true", help="print the table as one JSON object")
    parser.add_argument(
        "--save-weights",
        metavar="FILE.npz",
        help="also write the model's weights (from --weights or --seed) as a template",
    )
    args = parser.parse_args(argv)
    config = model_config(args)
    if args.save_weights:
        from tvm_mobilenet.files import check_output

        check_output(Path(args.save_weights), "--save-weights", {"--weights": args.weights})
    from tvm_mobilenet.model.architecture import layer_table

    table = layer_table(config)
    print(json.dumps(table) if args.json else format_table(table))
    if args.save_weights:
        from tvm_mobilenet.model.weights import get_weights, save_weights

        save_weights(get_weights(config, args.weights, args.seed), args.save_weights)
    return 0
