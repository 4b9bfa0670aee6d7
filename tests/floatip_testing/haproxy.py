"""A local HAProxy process and its runtime API, for the tests and benchmarks that run a real one.

``LocalHAProxy`` writes a configuration into a directory, starts this
machine's haproxy on it as a daemon (master-worker with a master CLI when
asked), waits for its admin socket, checks the configuration, reloads the
master and stops every process by its pid, for sure (SIGKILL when SIGTERM is
not enough). ``query`` sends one command to a runtime API socket, without the
collection's client, so that what HAProxy really did is read independently.

Used by tests/integration/test_haproxy_modules.py (a haproxy per test, for
haproxy_server and haproxy_info), tests/integration/conftest.py (the binary)
and the benchmarks bench/runtime_api.py (100 servers driven through the
runtime API) and bench/reload_under_load.py (a master-worker reloaded under
load). Standard library only; the directory and the error handling are the
caller's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a master or daemon
CHILD_GRACE = 2.0  # the same for a worker that did not follow its master out
KILL_WAIT = 2.0  # seconds a SIGKILLed process is given to be gone


class HAProxyError(Exception):
    """haproxy did not start, did not open its socket, refused its configuration or cannot be reloaded."""


# --- the runtime API ----------------------------------------------------------


def query(socket_path: str, command: str, timeout: float = 5.0) -> str:
    """One command to a unix CLI socket (admin stats socket or master CLI), non-interactive: the answer up to the close."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(command.encode() + b"\n")
        # The master CLI keeps the connection open for more commands until
        # the client's side is closed; the stats socket closes after one.
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(data)


# --- processes ----------------------------------------------------------------


def haproxy_binary() -> str:
    """The machine's haproxy, also when /usr/sbin is not on PATH; FileNotFoundError without one."""
    found = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if not found:
        raise FileNotFoundError("haproxy is not installed on this machine: run 'lab/host-setup.sh packages'")
    return found


def haproxy_version(binary: str) -> str | None:
    """``2.6.12-1+deb12u4``: the version in the first line of ``haproxy -v``; None when it says none."""
    words = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10, check=False).stdout.split()
    return words[2] if len(words) > 2 and words[1] == "version" else None


def socket_dir(prefix: str) -> Path:
    """A new temporary directory for a haproxy's files, removed by the caller.

    tempfile's, not pytest's tmp_path: a unix socket path must stay under 108 bytes.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (to listen on, or as one where nothing listens)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for a reaper that is not us counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def stop_pid(pid: int, grace: float = STOP_GRACE) -> bool:
    """SIGTERM, then SIGKILL after grace seconds; True when the process is gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if gone(pid):
                return True
            time.sleep(0.02)
    return gone(pid)


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (a haproxy master's workers, old and new)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _accepts(path: str) -> bool:
    """A unix socket at path accepts a connection."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
        return True


# --- the process --------------------------------------------------------------


class LocalHAProxy:
    """A haproxy daemon of this machine on a configuration in directory, stopped by its pid.

    The configuration is written to ``NAME.cfg`` at once; ``start`` runs
    ``haproxy -D -f NAME.cfg -p NAME.pid`` (with ``-W -S NAME-master.sock``
    for a master-worker) and waits until the admin stats socket that the
    configuration declares, ``admin_socket`` in directory, accepts
    connections. ``stop`` is safe to call at any time and more than once.
    """

    def __init__(self, directory: Path, config: str, *, name: str = "haproxy", admin_socket: str = "admin.sock",
                 master: bool = False, binary: str | None = None) -> None:
        self.binary = binary or haproxy_binary()
        self.directory = directory
        self.config = directory / f"{name}.cfg"
        self.config.write_text(config, encoding="utf-8")
        self.pidfile = directory / f"{name}.pid"
        self.admin = str(directory / admin_socket)
        self.master_socket = str(directory / f"{name}-master.sock") if master else None
        self.pid: int | None = None  # the master's, or the daemon's
        self._started = False

    def argv(self) -> list[str]:
        """The command line that starts it."""
        extra = ["-W", "-S", self.master_socket] if self.master_socket else []
        return [self.binary, *extra, "-D", "-f", str(self.config), "-p", str(self.pidfile)]

    def _read_pidfile(self) -> int | None:
        try:
            return int(self.pidfile.read_text(encoding="ascii").split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait up to timeout seconds for its admin socket; HAProxyError when it does not come up."""
        self._started = True
        done = subprocess.run(self.argv(), capture_output=True, text=True, timeout=30, check=False)
        self.pid = self._read_pidfile()
        if done.returncode != 0 or self.pid is None:
            raise HAProxyError(f"haproxy -f {self.config.name} did not start (rc {done.returncode}): {done.stderr.strip()}")
        deadline = time.monotonic() + timeout
        while not _accepts(self.admin):
            if time.monotonic() > deadline:
                raise HAProxyError(f"haproxy did not open {self.admin} within {timeout:.0f} s")
            time.sleep(0.05)

    def check_config(self) -> None:
        """``haproxy -c`` on the configuration, as the role's ExecReload runs it first; HAProxyError when refused."""
        mode = ["-W"] if self.master_socket else []
        checked = subprocess.run([self.binary, *mode, "-f", str(self.config), "-c", "-q"],
                                 capture_output=True, text=True, timeout=30, check=False)
        if checked.returncode != 0:
            raise HAProxyError(f"haproxy -c refused the configuration: {checked.stderr.strip()}")

    def reload(self) -> None:
        """``kill -USR2`` to the master: a master-worker's reload, a new worker on the configuration as it is now."""
        if self.master_socket is None:
            raise HAProxyError(f"{self.config.name}: not master-worker, no master to reload")
        if self.pid is None:
            raise HAProxyError(f"{self.config.name}: haproxy is not running")
        os.kill(self.pid, signal.SIGUSR2)

    def show_proc(self) -> dict[str, Any]:
        """The master CLI's show proc: the master's reload count, the current and the old workers."""
        if self.master_socket is None:
            raise HAProxyError(f"{self.config.name}: not master-worker, no master CLI")
        text = query(self.master_socket, "show proc")
        result: dict[str, Any] = {"reloads": None, "workers": [], "old_workers": []}
        section = "master"
        for line in text.splitlines():
            if line.startswith("# workers"):
                section = "workers"
            elif line.startswith("# old workers"):
                section = "old_workers"
            elif line and not line.startswith("#"):
                fields = line.split()
                if section == "master" and len(fields) > 2 and fields[1] == "master":
                    result["reloads"] = int(fields[2])
                elif section != "master" and fields[0].isdigit():
                    result[section].append(int(fields[0]))
        return result

    def stop(self) -> list[int]:
        """The master (or daemon), then every child that did not follow it out, by pid; the pids that would not stop.

        SIGTERM, SIGKILL after 5 s (2 s for a child). Also after a start that
        failed half-way: the pid file says what to stop.
        """
        pid = self.pid if self.pid is not None else (self._read_pidfile() if self._started else None)
        self.pid, self._started = None, False
        if pid is None:
            return []
        workers = children(pid)
        stuck = [] if stop_pid(pid) else [pid]
        for worker in workers:
            if not stop_pid(worker, grace=CHILD_GRACE):
                stuck.append(worker)
        return stuck
