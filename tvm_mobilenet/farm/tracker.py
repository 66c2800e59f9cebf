"""A phone farm on this machine: a TVM RPC tracker and emulated aarch64 devices registered under a
key.

Processes started here run in their own process group, with a JSON pid file in a state directory
(default `$TVM_MOBILENET_CACHE/farm`), so `stop` ends exactly what was started, children included.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tvm_mobilenet.errors import FarmUnavailableError, TvmMobilenetError
from tvm_mobilenet.farm.emulation import cache_dir, require_emulation

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TRACKER_PORT = 9190
# A tracker needs ~2 s alone (importing TVM), an emulated server ~4 s; each much more on a busy
# 2-core machine (the tracker took 30 s at a load of 10).
START_TIMEOUT_SEC = 240
QUERY_TIMEOUT_SEC = 5
START_TRACKER_HINT = (
    "start one with `python -m tvm_mobilenet.farm tracker` and add devices with "
    "`python -m tvm_mobilenet.farm emulate --tracker 127.0.0.1:9190 --key KEY`"
)

# Runs inside the emulated python: the RPC server re-executes sys.executable for its workers, which
# must be qemu again (binfmt_misc is not available to start aarch64 binaries directly).
_SERVER_BOOT = (
    "import os, runpy, sys; sys.executable = os.environ['TVM_MOBILENET_QEMU_PYTHON']; "
    "sys.argv[0] = 'rpc_server'; runpy.run_module('tvm.exec.rpc_server', run_name='__main__')"
)


@dataclass(frozen=True)
class Tracker:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_tracker(text: str) -> Tracker:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise TvmMobilenetError(
            f"--tracker/--rpc-tracker '{text}' is not HOST:PORT (e.g. 127.0.0.1:9190)"
        )
    return Tracker(host, int(port))


def tracker_from_env() -> Tracker | None:
    """TVM_TRACKER_HOST / TVM_TRACKER_PORT, as TVM's own tools read them."""
    host, port = os.environ.get("TVM_TRACKER_HOST"), os.environ.get("TVM_TRACKER_PORT")
    if not host and not port:
        return None
    return parse_tracker(f"{host or DEFAULT_HOST}:{port or DEFAULT_TRACKER_PORT}")


def default_state_dir() -> Path:
    return Path(os.environ.get("TVM_MOBILENET_FARM_STATE", cache_dir() / "farm"))


# ---------------------------------------------------------------- status


@dataclass
class KeyStatus:
    key: str
    total: int
    free: int
    pending: int

    @property
    def busy(self) -> int:
        return max(self.total - self.free, 0)


def _summary(tracker: Tracker, timeout: float) -> dict:
    """The tracker's summary, every step bounded by `timeout` (TVM's TrackerSession sets its
    timeout only after the handshake, so a port that accepts and stays silent hangs it)."""
    from tvm.rpc import base

    with socket.create_connection((tracker.host, tracker.port), timeout=timeout) as sock:
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        if struct.unpack("<i", base.recvall(sock, 4))[0] != base.RPC_TRACKER_MAGIC:
            raise ValueError("it is not an RPC tracker")
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        code, summary = base.recvjson(sock)
    if code != base.TrackerCode.SUCCESS:
        raise ValueError(f"unexpected answer {code}")
    return summary


def query(tracker: Tracker, timeout: float = QUERY_TIMEOUT_SEC) -> dict[str, KeyStatus]:
    """Devices per key (total, free, busy) and queued requests; FarmUnavailableError if the tracker
    is down or does not answer within `timeout`."""
    try:
        summary = _summary(tracker, timeout)
    except TimeoutError:
        raise FarmUnavailableError(
            f"nothing at {tracker} answered as an RPC tracker within {timeout:g} s (is the port "
            f"right? is the tracker stuck?); {START_TRACKER_HINT}"
        ) from None
    except (OSError, RuntimeError, ValueError) as err:  # refused, reset, not a tracker
        raise FarmUnavailableError(
            f"no RPC tracker answers at {tracker} ({err}); {START_TRACKER_HINT}"
        ) from None
    totals: dict[str, int] = {}
    for item in summary["server_info"]:
        key = item["key"].split(":", 1)[-1]  # "server:rasp4b" -> "rasp4b"
        totals[key] = totals.get(key, 0) + 1
    queue = summary["queue_info"]
    return {
        key: KeyStatus(
            key,
            totals.get(key, 0),
            int(queue.get(key, {}).get("free", 0)),
            int(queue.get(key, {}).get("pending", 0)),
        )
        for key in sorted(set(totals) | set(queue))
    }


def require_devices(tracker: Tracker, key: str) -> KeyStatus:
    """The key's status; FarmUnavailableError if the tracker is down or has no device under the
    key."""
    status = query(tracker).get(key)
    if status is None or status.total == 0:
        raise FarmUnavailableError(
            f"the tracker at {tracker} has no device under key '{key}': start some with "
            f"`python -m tvm_mobilenet.farm emulate --tracker {tracker} --key {key}` or register "
            f"your "
            f"boards with `python -m tvm.exec.rpc_server --tracker {tracker} --key {key}`"
        )
    return status


@contextlib.contextmanager
def _bounded_sockets(seconds: float):
    """Python sockets made inside time out after `seconds` (TVM's tracker client sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def request_session(tracker: Tracker, key: str, timeout_sec: float):
    """An RPC session on a free device under `key`; each wait on the tracker is bounded by
    `timeout_sec`. Raises FarmUnavailableError, naming the cause."""
    import tvm

    require_devices(tracker, key)
    try:
        with _bounded_sockets(timeout_sec):
            client = tvm.rpc.connect_tracker(tracker.host, tracker.port)
            return client.request(key, session_timeout=int(timeout_sec), max_retry=2)
    except (OSError, RuntimeError, tvm.error.TVMError) as err:
        raise FarmUnavailableError(
            f"could not get a '{key}' device from the tracker at {tracker} "
            f"({str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__})"
        ) from None


def format_status(tracker: Tracker, status: dict[str, KeyStatus]) -> str:
    lines = [
        f"tracker {tracker}",
        f"{'key':20s} {'devices':>7s} {'free':>5s} {'busy':>5s} {'queued':>6s}",
    ]
    lines += [
        f"{s.key:20s} {s.total:7d} {s.free:5d} {s.busy:5d} {s.pending:6d}" for s in status.values()
    ]
    if not status:
        lines.append("(no devices registered)")
    return "\n".join(lines)


# ---------------------------------------------------------------- processes


@dataclass
class FarmProcess:
    """A process the farm started, as written to its pid file."""

    role: str  # "tracker" or "device"
    pid: int
    name: str
    log: str
    pid_file: Path
    key: str | None = None  # the device key (devices only)
    started: float | None = None  # its start time (psutil's create_time): the pid's identity
    command: list[str] | None = None

    def is_ours(self, check_command: bool = True) -> bool:
        """Whether `pid` is still the process the farm started: same start time and command
        line (after a reboot or once it died, the pid may name an unrelated process). Just after
        the start the command line may still be ours, before exec: `check_command=False`."""
        import psutil

        try:
            process = psutil.Process(self.pid)
            return (
                self.started is not None
                and abs(process.create_time() - self.started) < 0.5
                and (not check_command or process.cmdline() == self.command)
                and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:  # gone, or not ours to look at
            return False

    def alive(self) -> bool:
        if not self.is_ours(check_command=False):
            return False
        try:  # a zombie child of this process counts as dead
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return True

    def stop(self, grace_sec: float = 5.0) -> bool:
        """SIGTERM its process group, SIGKILL after `grace_sec`, and forget it; False (nothing
        signalled) if the pid no longer names the process the farm started."""
        ours = self.is_ours()
        for sig, wait in ((signal.SIGTERM, grace_sec), (signal.SIGKILL, 2.0)):
            if not ours:
                break
            try:
                os.killpg(self.pid, sig)
            except OSError:  # already gone
                break
            deadline = time.monotonic() + wait
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not self.alive():
                break
        self.pid_file.unlink(missing_ok=True)
        return ours

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(
                Path(self.log).read_text(errors="replace").strip().splitlines()[-lines:]
            )
        except OSError:
            return ""


def _spawn(
    role: str, name: str, command: list[str], env: dict, state_dir: Path, key: str | None = None
) -> FarmProcess:
    import psutil

    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / f"{name}.log"
    with open(log, "wb") as out:
        # a new session: the whole tree (qemu, RPC workers) is one process group to stop
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:  # exited at once: `alive()` is False, the caller shows its log
        started = None
    process = FarmProcess(
        role, proc.pid, name, str(log), state_dir / f"{name}.pid.json", key, started, command
    )
    fields = ("role", "pid", "name", "log", "key", "started", "command")
    process.pid_file.write_text(json.dumps({f: getattr(process, f) for f in fields}))
    return process


def farm_processes(state_dir: Path | None = None) -> list[FarmProcess]:
    state_dir = state_dir or default_state_dir()
    processes = []
    for pid_file in sorted(state_dir.glob("*.pid.json")):
        try:
            data = json.loads(pid_file.read_text())
            processes.append(
                FarmProcess(
                    data["role"],
                    int(data["pid"]),
                    data["name"],
                    data["log"],
                    pid_file,
                    data.get("key"),
                    data.get("started"),
                    data.get("command"),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
    return processes


def emulated_keys(state_dir: Path | None = None) -> set[str]:
    """Keys served by emulated devices this farm started (their timings are not performance)."""
    return {p.key for p in farm_processes(state_dir) if p.role == "device" and p.key and p.alive()}


def stop(
    state_dir: Path | None = None, names: list[str] | None = None
) -> tuple[list[FarmProcess], list[FarmProcess]]:
    """Stop the farm's processes (devices first), or only those named: (stopped, stale), where
    stale pid files named a process the farm did not start (left alone; the files are removed)."""
    chosen = [p for p in farm_processes(state_dir) if names is None or p.name in names]
    chosen.sort(key=lambda p: p.role == "tracker")
    stopped = [process for process in chosen if process.stop()]
    return stopped, [process for process in chosen if process not in stopped]


def check_bind_address(host: str, allow_remote: bool) -> None:
    """Loopback addresses only, unless `allow_remote` (then with a warning): a TVM RPC server runs
    any code it is sent, with no authentication, and the tracker hands its devices to anyone."""
    if _is_loopback(host):
        return
    if not allow_remote:
        raise TvmMobilenetError(
            f"--host {host} can be reached from other machines, and TVM RPC servers run any code "
            "they are sent (no authentication): use 127.0.0.1, or pass --allow-remote on a "
            "network you trust"
        )
    warnings.warn(
        f"listening on {host}: TVM RPC servers run any code they are sent, so anyone who can "
        "reach this address can run programs on this machine",
        stacklevel=2,
    )


def _is_loopback(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def start_tracker(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_TRACKER_PORT,
    state_dir: Path | None = None,
    timeout: float = START_TIMEOUT_SEC,
    allow_remote: bool = False,
) -> tuple[Tracker, FarmProcess]:
    """Start a TVM RPC tracker on exactly host:port (a busy port is an error, not a silent move)."""
    check_bind_address(host, allow_remote)
    tracker = Tracker(host, port)
    if _port_answers(
        tracker
    ):  # TVM's tracker binds with SO_REUSEPORT: a second one would share the port
        raise FarmUnavailableError(
            f"port {port} on {host} is in use (a tracker already runs there? "
            f"check with `python -m tvm_mobilenet.farm status --tracker {tracker}`); "
            "choose another with --port"
        )
    command = [sys.executable, "-m", "tvm.exec.rpc_tracker", *_bind_exactly(host, port)]
    process = _spawn(
        "tracker", f"tracker-{port}", command, dict(os.environ), state_dir or default_state_dir()
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            process.pid_file.unlink(missing_ok=True)
            raise FarmUnavailableError(
                f"the tracker did not start on {tracker}: {process.log_tail(1)}"
            )
        try:
            query(tracker, timeout=2)
            return tracker, process
        except FarmUnavailableError:
            time.sleep(0.3)
    process.stop()
    raise FarmUnavailableError(f"the tracker did not answer on {tracker} within {timeout:.0f} s")


def _bind_exactly(host: str, port: int) -> list[str]:
    """The flags of TVM's rpc_tracker and rpc_server that bind host:port and no other port (they
    otherwise search the range [--port, --port-end))."""
    return ["--host", host, "--port", str(port), "--port-end", str(port + 1)]


def _port_answers(tracker: Tracker) -> bool:
    try:
        with socket.create_connection((tracker.host, tracker.port), timeout=1):
            return True
    except OSError:
        return False


def _qemu_python_wrapper(state_dir: Path, command: list[str]) -> Path:
    wrapper = state_dir / "qemu-python3"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in command) + ' "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def start_emulated_devices(
    tracker: Tracker,
    key: str,
    count: int = 1,
    cpu: str = "cortex-a72",
    state_dir: Path | None = None,
    host: str = DEFAULT_HOST,
    timeout: float = START_TIMEOUT_SEC,
    allow_remote: bool = False,
) -> list[FarmProcess]:
    """Start `count` emulated aarch64 TVM RPC servers and wait until they registered under `key`."""
    if count < 1:
        raise TvmMobilenetError(f"--count {count} must be >= 1")
    check_bind_address(host, allow_remote)
    emu = require_emulation()
    state_dir = state_dir or default_state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    before = query(tracker).get(key)
    expected = (before.total if before else 0) + count
    python = emu.python_command()
    wrapper = _qemu_python_wrapper(state_dir, python)
    processes = []
    for _ in range(count):
        name = f"device-{key}-{time.time_ns() % 10**10}"
        tmpdir = state_dir / name
        tmpdir.mkdir(parents=True, exist_ok=True)
        env = {**emu.python_env(cpu, tmpdir), "TVM_MOBILENET_QEMU_PYTHON": str(wrapper)}
        port = _free_port(host)
        command = [
            *python,
            "-c",
            _SERVER_BOOT,
            *_bind_exactly(host, port),
            "--tracker",
            str(tracker),
            "--key",
            key,
            "--load-library",
            str(emu.runtime_extra_lib),
        ]
        processes.append(_spawn("device", name, command, env, state_dir, key))
    _wait_registered(tracker, key, expected, processes, timeout)
    return processes


def _free_port(host: str) -> int:
    """A port nobody listens on now. Servers started together and left to search one range race
    for its first port: TVM's server binds with SO_REUSEPORT, and the loser fails in listen()."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_registered(
    tracker: Tracker, key: str, expected: int, processes: list[FarmProcess], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in processes if not p.alive()]
        if dead:
            for process in processes:
                process.stop()
            raise FarmUnavailableError(
                f"emulated device {dead[0].name} exited: {dead[0].log_tail()}"
            )
        status = query(tracker).get(key)
        if status is not None and status.total >= expected:
            return
        time.sleep(0.5)
    for process in processes:
        process.stop()
    raise FarmUnavailableError(
        f"emulated devices did not register under '{key}' within {timeout:.0f} s"
    )
