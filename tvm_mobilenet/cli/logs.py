"""Command line: the catalogue of tuning logs, shipped with the package and tuned here.

tvm-mobilenet logs                # target, device, model, records, valid records, date, directory
tvm-mobilenet logs --json
"""

from __future__ import annotations

import json

from tvm_mobilenet.cli.common import Parser


def format_catalogue(entries) -> str:
    if not entries:
        return "no tuning logs: none shipped with the package, none under ./tuning_logs"
    rows = [("origin", "target", "device", "model", "records", "valid", "date", "directory")]
    rows += [
        (
            e.origin,
            e.family,
            e.device_class,
            e.model_name,
            str(e.records),
            str(e.valid_records),
            e.date,
            str(e.path),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    widths[-1] = 0  # the directory ends the line
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def entries_as_json(entries) -> str:
    return json.dumps(
        [
            {
                "origin": e.origin,
                "target": e.family,
                "device": e.device,
                "target_config": e.target,
                "model": e.model,
                "records": e.records,
                "valid_records": e.valid_records,
                "date": e.date,
                "path": str(e.path),
            }
            for e in entries
        ],
        indent=2,
    )


def print_catalogue(as_json: bool = False) -> int:
    from tvm_mobilenet.tune.api import list_logs

    entries = list_logs()
    print(entries_as_json(entries) if as_json else format_catalogue(entries))
    return 0


def main(argv=None, prog=None) -> int:
    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.logs", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    args = parser.parse_args(argv)
    return print_catalogue(args.json)
