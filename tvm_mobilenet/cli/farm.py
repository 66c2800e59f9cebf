"""Command line: a device farm on this machine: an RPC tracker and emulated aarch64 devices.

    tvm-mobilenet farm tracker [--host 127.0.0.1] [--port 9190]
    tvm-mobilenet farm emulate --tracker 127.0.0.1:9190 --key rasp4b --count 2 [--cpu cortex-a72]
    tvm-mobilenet farm status --tracker 127.0.0.1:9190
    tvm-mobilenet farm stop

Emulated devices (qemu) give correct results and meaningless timings. They need
`tvm-mobilenet setup emulation` once.
"""

from __future__ import annotations

from pathlib import Path

from tvm_mobilenet.cli.common import Parser

ALLOW_REMOTE_HELP = (
    "allow a --host other machines can reach: TVM RPC servers run any code they are sent, "
    "without authentication, so do this only on a network you trust"
)


def main(argv=None, prog=None) -> int:
    from tvm_mobilenet.farm import tracker as rpc_farm
    from tvm_mobilenet.farm.emulation import qemu_cpu_for

    parser = Parser(
        prog=prog or "python -m tvm_mobilenet.farm", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="where pid files and logs are kept "
        f"(default: TVM_MOBILENET_FARM_STATE, else {rpc_farm.default_state_dir()})",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    tracker = commands.add_parser("tracker", help="start a TVM RPC tracker in the background")
    tracker.add_argument(
        "--host", default=rpc_farm.DEFAULT_HOST, help="address to bind (default 127.0.0.1)"
    )
    tracker.add_argument("--allow-remote", action="store_true", help=ALLOW_REMOTE_HELP)
    tracker.add_argument(
        "--port", type=int, default=rpc_farm.DEFAULT_TRACKER_PORT, help="port (default 9190)"
    )
    emulate = commands.add_parser(
        "emulate", help="start emulated aarch64 devices that register with a tracker"
    )
    emulate.add_argument("--tracker", required=True, metavar="HOST:PORT")
    emulate.add_argument("--key", required=True, help="device key to register under (e.g. rasp4b)")
    emulate.add_argument("--count", type=int, default=1, help="number of devices (default 1)")
    emulate.add_argument(
        "--cpu",
        help="qemu CPU model (default: the `qemu_cpu` of the ARM device named like the key in "
        "targets/arm.json, else cortex-a72)",
    )
    emulate.add_argument(
        "--host", default=rpc_farm.DEFAULT_HOST, help="address the devices bind (default 127.0.0.1)"
    )
    emulate.add_argument("--allow-remote", action="store_true", help=ALLOW_REMOTE_HELP)
    status = commands.add_parser(
        "status", help="devices per key: total, free, busy, queued requests"
    )
    status.add_argument("--tracker", required=True, metavar="HOST:PORT")
    commands.add_parser("stop", help="stop every tracker and device this command started")
    args = parser.parse_args(argv)

    state_dir = args.state_dir
    if args.command == "tracker":
        address, process = rpc_farm.start_tracker(
            args.host, args.port, state_dir, allow_remote=args.allow_remote
        )
        print(f"tracker listening on {address} (pid {process.pid}, log {process.log})")
        print(
            f"next: python -m tvm_mobilenet.farm emulate --tracker {address} --key rasp4b --count 2"
        )
    elif args.command == "emulate":
        address = rpc_farm.parse_tracker(args.tracker)
        cpu = args.cpu or qemu_cpu_for(args.key)
        started = rpc_farm.start_emulated_devices(
            address, args.key, args.count, cpu, state_dir, args.host, allow_remote=args.allow_remote
        )
        print(
            f"{len(started)} emulated {cpu} device(s) registered under '{args.key}' at "
            f"{address} "
            f"(pids {', '.join(str(p.pid) for p in started)}); emulated timings are not performance"
        )
    elif args.command == "status":
        address = rpc_farm.parse_tracker(args.tracker)
        print(rpc_farm.format_status(address, rpc_farm.query(address)))
    else:
        stopped, stale = rpc_farm.stop(state_dir)
        print(
            f"stopped {len(stopped)} process(es)"
            + "".join(f"\n  {p.name} (pid {p.pid})" for p in stopped)
            + "".join(
                f"\n  {p.name}: pid {p.pid} is no longer the process the farm started "
                "(it exited, or the machine restarted); left alone, pid file removed"
                for p in stale
            )
        )
    return 0
