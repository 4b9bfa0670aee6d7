# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""HAProxy's runtime API: read the servers, set their state and weight, wait.

The runtime API is the ``stats socket`` of haproxy.cfg's global section, a
unix socket or a TCP port. ``Client`` speaks its interactive mode on ONE
connection: ``prompt`` first, then one command per line, each answer ending
with the prompt ``"\\n> "``. Interactive mode, not ``;``-separated batches,
because the commands depend on what HAProxy answered before (plan, then set,
then poll until drained), and because a batch's answers cannot be told apart
(a successful ``set server`` answers nothing at all).

Three read commands, parsed here from text:

* ``show info``: ``Key: value`` lines.
* ``show stat``: CSV under a ``# pxname,svname,...`` header, one row per
  frontend (``FRONTEND``), backend (``BACKEND``) and server; ``status`` (UP,
  DOWN, ``no check``, DRAIN, MAINT, ...) and ``scur`` (current sessions).
* ``show servers state``: a format version line (``1``), a ``# be_id
  be_name ...`` header and space-separated rows; ``srv_admin_state`` holds
  the administrative flags (bits below) and ``srv_uweight`` the weight set by
  ``set server ... weight``.

Planning is pure (text and rows in, commands out) and idempotent on the
administrative state and the weight only: session counts and health change on
their own and never make a change. ``sync`` and ``gather`` do their I/O only
through a client's ``command`` method, so tests can run them against recorded
answers. Every problem is a ``HAProxyError`` whose message says what to fix.
"""

from __future__ import annotations

import csv
import errno
import math
import os
import pwd
import re
import socket
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

ADMIN_STATES = ("ready", "drain", "maint")
GATHER = ("info", "stat", "servers")
IO_TIMEOUT = 10.0
PROMPT = b"\n> "
WEIGHT_MAX = 256

# srv_admin_state bits (enum srv_admin in HAProxy's include/haproxy/server-t.h).
ADMF_FMAINT = 0x01  # forced into maintenance (set server ... state maint)
ADMF_IMAINT = 0x02  # maintenance inherited from a tracked server
ADMF_CMAINT = 0x04  # "disabled" in the configuration; kept as a marker once made ready
ADMF_FDRAIN = 0x08  # forced into drain (set server ... state drain)
ADMF_IDRAIN = 0x10  # drain inherited from a tracked server
ADMF_RMAINT = 0x20  # maintenance because the server's name does not resolve
# HAProxy's own masks: CMAINT alone is not maintenance (a "disabled" server
# made ready keeps the bit).
ADMF_MAINT = ADMF_FMAINT | ADMF_IMAINT | ADMF_RMAINT
ADMF_DRAIN = ADMF_FDRAIN | ADMF_IDRAIN

# srv_op_state (enum srv_state).
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
# show stat statuses of a server that takes traffic with full health: "UP"
# ("UP 1/3" is going down: a check failed), or "no check" (no health check,
# so HAProxy holds it up).
UP_STATUSES = ("UP", "no check")

# The characters HAProxy allows in proxy and server names (invalid_char()).
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_INT_RE = re.compile(r"^-?\d+$")
_WEIGHT_RE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")

_STATE_INTS = ("be_id", "srv_id", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_iweight",
               "srv_time_since_last_change", "srv_check_status", "srv_check_result", "srv_check_health",
               "srv_check_state", "srv_agent_state", "srv_port")


class HAProxyError(Exception):
    """A bad argument, a socket that cannot be used, or an answer of HAProxy that is an error."""


# --- arguments -------------------------------------------------------------

@dataclass(frozen=True)
class Address:
    """Where the runtime API listens: a unix socket path or a TCP host and port."""

    path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_address(text: object) -> Address:
    """``/run/haproxy/admin.sock`` (or ``unix:///...``), ``tcp://host:port`` or ``host:port`` (IPv6 in brackets)."""
    if not isinstance(text, str) or not text.strip():
        raise HAProxyError(f"socket must be a unix socket path or tcp://host:port, got {text!r}")
    text = text.strip()
    if text.startswith("unix://"):
        return Address(path=text[len("unix://"):])
    tcp = text.startswith("tcp://")
    rest = text[len("tcp://"):] if tcp else text
    if tcp or ("/" not in rest and ":" in rest):
        host, sep, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise HAProxyError(f"socket {text!r} is not tcp://host:port with a port from 1 to 65535")
        return Address(host=host, port=int(port))
    return Address(path=text)


@dataclass(frozen=True)
class Weight:
    """A wanted weight: absolute (0-256) or a percentage of the server's initial weight."""

    value: int
    percent: bool = False

    def resolve(self, initial: int) -> int:
        """The absolute weight, computed as HAProxy does for ``set server ... weight N%``."""
        if not self.percent:
            return self.value
        # HAProxy: w = iweight * min(w, 25600) / 100 in integers, capped at 256.
        return min(WEIGHT_MAX, initial * min(self.value, 25600) // 100)


def parse_weight(value: object) -> Weight:
    """An int 0-256, its string, or a percentage string such as ``50%``."""
    match = _WEIGHT_RE.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        weight = Weight(value)
    elif match:
        weight = Weight(int(match.group(1)), percent=bool(match.group(2)))
    else:
        weight = None
    if weight is None or not weight.percent and not 0 <= weight.value <= WEIGHT_MAX:
        raise HAProxyError(f"weight must be an integer from 0 to {WEIGHT_MAX} or a percentage such as '50%', got {value!r}")
    return weight


def check_name(kind: str, name: object) -> str:
    """A proxy or server name as HAProxy allows it; anything else could not exist and would break the command line."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise HAProxyError(f"{kind} {name!r} is not a valid HAProxy name (letters, digits, '.', ':', '_' and '-')")
    return name


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True)
class Request:
    """What haproxy_server was asked for; backend None means every backend holding the servers."""

    servers: tuple
    backend: str | None = None
    state: str | None = None
    weight: Weight | None = None
    wait: bool = False
    wait_timeout: float = 30.0
    wait_interval: float = 0.5


def make_request(servers: object, backend: object = None, state: object = None, weight: object = None,
                 wait: bool = False, wait_timeout: object = 30, wait_interval: object = 0.5) -> Request:
    """Check the arguments and return them as a ``Request``."""
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, (list, tuple)) or not servers:
        raise HAProxyError("servers must list at least one server name")
    # Keep the order given, once each.
    names = tuple(dict.fromkeys(check_name("server", name) for name in servers))
    if backend in (None, "", "*"):
        backend = None
    else:
        backend = check_name("backend", backend)
    if state is not None and state not in ADMIN_STATES:
        raise HAProxyError(f"state must be one of {', '.join(ADMIN_STATES)}, got {state!r}")
    if state is None and weight is None:
        raise HAProxyError("nothing to do: give state (ready, drain or maint), weight, or both")
    wanted_weight = parse_weight(weight) if weight is not None else None
    if wait and state is None:
        raise HAProxyError("wait needs state: it waits for ready servers to be up and for drained or "
                           "maintenance servers to have no sessions left")
    if not _is_number(wait_timeout) or wait_timeout < 0:
        raise HAProxyError(f"wait_timeout must be 0 or more seconds, got {wait_timeout!r}")
    if not _is_number(wait_interval) or wait_interval <= 0:
        raise HAProxyError(f"wait_interval must be more than 0 seconds, got {wait_interval!r}")
    return Request(servers=names, backend=backend, state=state, weight=wanted_weight, wait=bool(wait),
                   wait_timeout=float(wait_timeout), wait_interval=float(wait_interval))


# --- parsing ---------------------------------------------------------------

def _typed(text: str) -> int | str:
    return int(text) if _INT_RE.match(text) else text


def _check_answer(command: str, answer: str) -> str:
    """The answer, unless HAProxy refused the command."""
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    if first.startswith("Permission denied"):
        raise HAProxyError(f"HAProxy refused '{command}' (Permission denied): the stats socket must be declared "
                           "with 'level admin' in haproxy.cfg")
    if first.startswith("Unknown command"):
        raise HAProxyError(f"HAProxy does not know the command '{command}': {first}")
    return answer


def parse_info(text: str) -> dict:
    """``show info`` as a dict; integer values as ints, the others (Version, Uptime) as strings."""
    info = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise HAProxyError(f"cannot read 'show info' line {line!r}: expected 'Key: value'")
        info[key.strip()] = _typed(value.strip())
    return info


def parse_stat(text: str) -> list:
    """``show stat`` CSV as a list of dicts of strings, keyed by the header's field names."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise HAProxyError(f"cannot read 'show stat': expected a '# pxname,svname,...' header, got {text[:80]!r}")
    reader = csv.reader(lines)
    header = next(reader)
    header[0] = header[0][2:]
    if header[:2] != ["pxname", "svname"]:
        raise HAProxyError(f"cannot read 'show stat': unexpected header {','.join(header[:4])}...")
    # Every row ends with a comma, hence an empty last name; zip drops the surplus.
    return [dict(zip(header, row)) for row in reader]


def parse_servers_state(text: str) -> list:
    """``show servers state`` (format version 1) as a list of dicts; numeric fields as ints."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise HAProxyError("cannot read 'show servers state': HAProxy answered nothing")
    if lines[0].strip() != "1":
        raise HAProxyError(f"cannot read 'show servers state': format version {lines[0].strip()!r}, this module knows 1")
    if len(lines) < 2 or not lines[1].startswith("# "):
        raise HAProxyError("cannot read 'show servers state': no '# be_id be_name ...' header")
    header = lines[1][2:].split()
    rows = []
    for line in lines[2:]:
        fields = line.split()
        if len(fields) < len(header):
            raise HAProxyError(f"cannot read 'show servers state' row {line!r}: {len(fields)} fields for {len(header)} names")
        row = dict(zip(header, fields))
        for key in _STATE_INTS:
            if key in row and _INT_RE.match(row[key]):
                row[key] = int(row[key])
        rows.append(row)
    return rows


def admin_state(bits: int) -> str:
    """ready, drain or maint from srv_admin_state; maintenance wins over drain, as in HAProxy."""
    if bits & ADMF_MAINT:
        return "maint"
    if bits & ADMF_DRAIN:
        return "drain"
    return "ready"


def admin_state_of_status(status: str) -> str:
    """ready, drain or maint from a show stat status (MAINT, MAINT (via web/s1), DRAIN, DRAIN 1/3, ...)."""
    if status.startswith("MAINT"):
        return "maint"
    if status.startswith("DRAIN"):
        return "drain"
    return "ready"


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and _INT_RE.match(text) else None


def _none_if_empty(text: str | None) -> str | None:
    return text if text else None


def backends_view(stat_rows: Sequence | None, state_rows: Sequence | None) -> dict:
    """Backends and their servers from ``show stat`` rows, ``show servers state`` rows, or both.

    The admin state comes from srv_admin_state when the servers state is
    there, else from the stat status; the weight is the one set by ``set
    server ... weight`` (srv_uweight, or the stat's uweight column).
    """
    backends: dict = {}

    def server_entry(backend: str, server: str) -> dict:
        entry = backends.setdefault(backend, {"servers": {}})
        return entry["servers"].setdefault(server, {})

    for row in stat_rows or ():
        if row["svname"] == "FRONTEND":
            continue
        if row["svname"] == "BACKEND":
            entry = backends.setdefault(row["pxname"], {"servers": {}})
            entry.update(status=row.get("status"), sessions=_int_or_none(row.get("scur")), mode=_none_if_empty(row.get("mode")))
            continue
        server = server_entry(row["pxname"], row["svname"])
        weight = row.get("uweight") if row.get("uweight") else row.get("weight")
        server.update(
            status=row.get("status"),
            admin_state=admin_state_of_status(row.get("status", "")),
            sessions=_int_or_none(row.get("scur")),
            queued=_int_or_none(row.get("qcur")),
            weight=_int_or_none(weight),
            check_status=_none_if_empty(row.get("check_status")),
            check_description=_none_if_empty(row.get("check_desc")),
            address=_none_if_empty(row.get("addr")),
        )
    for row in state_rows or ():
        server = server_entry(row["be_name"], row["srv_name"])
        server.update(
            admin_state=admin_state(row["srv_admin_state"]),
            operational_state=OP_STATES.get(row["srv_op_state"], str(row["srv_op_state"])),
            weight=row["srv_uweight"],
            initial_weight=row["srv_iweight"],
        )
        if "address" not in server:
            server["address"] = f"{row['srv_addr']}:{row['srv_port']}"
    return backends


def frontends_view(stat_rows: Sequence) -> dict:
    """Frontends from ``show stat`` rows: status (OPEN, STOP), sessions, session limit and mode."""
    return {row["pxname"]: {"status": row.get("status"), "sessions": _int_or_none(row.get("scur")),
                            "session_limit": _int_or_none(row.get("slim")), "mode": _none_if_empty(row.get("mode"))}
            for row in stat_rows if row["svname"] == "FRONTEND"}


# --- planning --------------------------------------------------------------

@dataclass
class Change:
    """One (backend, server): its state and weight before and after, and the commands between."""

    backend: str
    server: str
    before: dict
    after: dict
    commands: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.server}"


def resolve_targets(state_rows: Sequence, backends: Iterable, request: Request) -> list:
    """The (backend, server) pairs meant: in the given backend, or in every backend that holds each server."""
    known = list(dict.fromkeys(backends))
    by_backend: dict = {}
    for row in state_rows:
        by_backend.setdefault(row["be_name"], []).append(row["srv_name"])
    if request.backend is not None:
        if request.backend not in known and request.backend not in by_backend:
            raise HAProxyError(f"No such backend: HAProxy has no backend {request.backend!r} "
                               f"(its backends: {', '.join(known) or 'none'})")
        servers = by_backend.get(request.backend, [])
        missing = [name for name in request.servers if name not in servers]
        if missing:
            raise HAProxyError(f"No such server: backend {request.backend} has no server "
                               f"{', '.join(repr(name) for name in missing)} (its servers: {', '.join(servers) or 'none'})")
        return [(request.backend, name) for name in request.servers]
    targets = []
    for name in request.servers:
        holding = [backend for backend, servers in by_backend.items() if name in servers]
        if not holding:
            raise HAProxyError(f"No such server: no backend of HAProxy holds a server named {name!r} "
                               f"(its backends: {', '.join(known) or 'none'})")
        targets.extend((backend, name) for backend in holding)
    return targets


def _predict_bits(bits: int, state: str) -> int:
    """srv_admin_state after ``set server ... state`` (srv_adm_set_ready/drain/maint in HAProxy)."""
    if state == "ready":
        return bits & ~(ADMF_FMAINT | ADMF_FDRAIN)
    if state == "drain":
        return (bits | ADMF_FDRAIN) & ~ADMF_FMAINT
    return (bits | ADMF_FMAINT) & ~ADMF_FDRAIN


def _why_not(key: str, bits: int, wanted: str) -> str:
    reasons = []
    if bits & ADMF_IMAINT:
        reasons.append("it inherits maintenance from the server it tracks")
    if bits & ADMF_IDRAIN:
        reasons.append("it inherits drain from the server it tracks")
    if bits & ADMF_RMAINT:
        reasons.append("its address does not resolve (DNS maintenance)")
    why = " and ".join(reasons) or f"srv_admin_state is {bits}"
    return (f"{key} cannot be set to {wanted} with 'set server': {why}; change the tracked server "
            "(or the name resolution) instead")


def plan(state_rows: Sequence, targets: Sequence, request: Request) -> list:
    """A ``Change`` per target: the ``set server`` commands that give it the wanted admin state and weight.

    Only srv_admin_state and srv_uweight are compared, never sessions or health.
    """
    rows = {(row["be_name"], row["srv_name"]): row for row in state_rows}
    changes = []
    for backend, server in targets:
        row = rows[(backend, server)]
        key = f"{backend}/{server}"
        bits = row["srv_admin_state"]
        before = {"state": admin_state(bits), "weight": row["srv_uweight"]}
        after = dict(before)
        commands = []
        if request.state is not None:
            predicted = _predict_bits(bits, request.state)
            if admin_state(predicted) != request.state:
                raise HAProxyError(_why_not(key, bits, request.state))
            # Compare the bits: from maint (FMAINT) with a forced drain kept, a
            # derived state alone would not show that 'ready' still has work.
            if predicted != bits:
                commands.append(f"set server {key} state {request.state}")
                after["state"] = request.state
        if request.weight is not None:
            weight = request.weight.resolve(row["srv_iweight"])
            if weight != row["srv_uweight"]:
                commands.append(f"set server {key} weight {weight}")
                after["weight"] = weight
        changes.append(Change(backend=backend, server=server, before=before, after=after, commands=commands))
    return changes


# --- the connection --------------------------------------------------------

class Client:
    """One interactive-mode connection to the runtime API; ``command`` sends a line and returns the answer."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self._sock = sock
        self.name = name
        self._buffer = b""
        # Interactive mode: every answer, this first one too, ends with the prompt.
        self._sock.sendall(b"prompt\n")
        self._read_answer("prompt")

    def _read_answer(self, command: str) -> str:
        while not self._buffer.endswith(PROMPT):
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                raise HAProxyError(f"HAProxy at {self.name} did not answer '{command}' within "
                                   f"{self._sock.gettimeout():g} s") from None
            except OSError as exc:
                raise HAProxyError(f"lost the connection to HAProxy at {self.name} during '{command}': {exc.strerror}") from None
            if not data:
                raise HAProxyError(f"HAProxy at {self.name} closed the connection during '{command}'"
                                   + (f" after answering {self._buffer.decode(errors='replace').strip()!r}" if self._buffer else ""))
            self._buffer += data
        answer, self._buffer = self._buffer[:-len(PROMPT)], b""
        return answer.decode("utf-8", errors="replace")

    def command(self, line: str, check: bool = True) -> str:
        """The answer to one command, without the prompt; unless ``check`` is false, a refusal raises."""
        if "\n" in line or ";" in line:
            raise HAProxyError(f"one command at a time, without newline or ';': {line!r}")
        try:
            self._sock.sendall(line.encode("utf-8") + b"\n")
        except OSError as exc:
            raise HAProxyError(f"lost the connection to HAProxy at {self.name} sending '{line}': {exc.strerror}") from None
        answer = self._read_answer(line)
        return _check_answer(line, answer) if check else answer

    def close(self) -> None:
        try:
            self._sock.sendall(b"quit\n")
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(address: Address, timeout: float = IO_TIMEOUT) -> Client:
    """A ``Client`` connected to ``address``, with an error that names the socket and the likely cause."""
    name = f"unix socket {address.path}" if address.path is not None else str(address)
    if address.path is not None:
        try:
            mode = os.stat(address.path).st_mode
        except FileNotFoundError:
            raise HAProxyError(f"HAProxy socket {address.path} does not exist: is haproxy running, with "
                               f"'stats socket {address.path} level admin' in the global section of haproxy.cfg?") from None
        except OSError as exc:
            raise HAProxyError(f"cannot reach HAProxy socket {address.path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise HAProxyError(f"{address.path} is not a socket: socket must be the path of HAProxy's stats socket")
        family, target = socket.AF_UNIX, address.path
    else:
        family, target = None, (address.host, address.port)
    try:
        if family is None:
            sock = socket.create_connection(target, timeout=timeout)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                raise
    except socket.timeout:
        raise HAProxyError(f"no answer from HAProxy at {name} within {timeout:g} s") from None
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            raise HAProxyError(f"HAProxy refuses connections on {name} (connection refused): is haproxy running? "
                               "A stopped haproxy leaves its socket file behind") from None
        if exc.errno == errno.EACCES:
            raise HAProxyError(f"cannot connect to HAProxy at {name}: permission denied for user {_user()} "
                               "(run the task with become, or give the socket a mode, user or group that allows it)") from None
        raise HAProxyError(f"cannot connect to HAProxy at {name}: {exc.strerror or exc}") from None
    try:
        return Client(sock, name)
    except HAProxyError:
        sock.close()
        raise


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


# --- fetch, compare, apply -------------------------------------------------

def require_admin(client: Client) -> None:
    """Fail before planning, in check mode too, when the socket cannot change servers."""
    # HAProxy before 2.0 does not know the command; there the first 'set
    # server' answers 'Permission denied' instead.
    level = client.command("show cli level", check=False).strip()
    if level in ("user", "operator"):
        raise HAProxyError(f"{client.name} is at level {level}: changing servers needs a stats socket declared with "
                           "'level admin' in haproxy.cfg")


def _server_stats(client: Client) -> dict:
    """show stat rows of the servers only (type 4), keyed by (backend, server)."""
    return {(row["pxname"], row["svname"]): row for row in parse_stat(client.command("show stat -1 4 -1"))}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def pending(stats: dict, targets: Sequence, state: str) -> list:
    """What the targets still lack: up (ready) or no session left (drain, maint); empty when done."""
    lacking = []
    for backend, server in targets:
        row = stats.get((backend, server))
        key = f"{backend}/{server}"
        if row is None:
            lacking.append(f"{key} is no longer in HAProxy")
        elif state == "ready":
            if row["status"] not in UP_STATUSES:
                check = f" (check {row['check_status']})" if row.get("check_status") else ""
                lacking.append(f"{key} is {row['status']}{check}")
        else:
            # A draining server stays UP and serves its sessions: only the count matters.
            sessions = _int_or_none(row.get("scur")) or 0
            if sessions:
                lacking.append(f"{key} still holds {_plural(sessions, 'session')}")
    return lacking


def wait_for(client: Client, targets: Sequence, state: str, timeout: float, interval: float,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict:
    """Poll until every target is up (ready) or without sessions (drain, maint); the server stats at the end.

    The last poll is made at the deadline itself, so a condition met just in
    time counts.
    """
    deadline = clock() + timeout
    while True:
        stats = _server_stats(client)
        lacking = pending(stats, targets, state)
        if not lacking:
            return stats
        now = clock()
        if now >= deadline:
            goal = "up" if state == "ready" else "without sessions"
            raise HAProxyError(f"waited {timeout:g} s for {', '.join(f'{b}/{s}' for b, s in targets)} to be {goal}: "
                               + "; ".join(lacking))
        sleep(min(interval, deadline - now))


def _backend_names(stat_rows: Sequence) -> list:
    return [row["pxname"] for row in stat_rows if row["svname"] == "BACKEND"]


def sync(client: Client, request: Request, check_mode: bool = False, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> dict:
    """Read the servers, plan, apply unless in check mode, wait if asked, and report.

    Returns changed, servers (per backend/server: before, after, status and
    sessions), commands (sent, or to be sent in check mode) and diff.
    """
    require_admin(client)
    if request.wait:
        # The CLI closes a connection idle for 'stats timeout' (10 s by
        # default); the longest idle time here is one wait_interval.
        client.command(f"set timeout cli {math.ceil(request.wait_interval) + 10}")
    state_rows = parse_servers_state(client.command("show servers state"))
    stat_rows = parse_stat(client.command("show stat -1 6 -1"))
    targets = resolve_targets(state_rows, _backend_names(stat_rows), request)
    changes = plan(state_rows, targets, request)
    commands = [command for change in changes for command in change.commands]

    stats = {(row["pxname"], row["svname"]): row for row in stat_rows}
    if not check_mode:
        sent: list = []
        for command in commands:
            answer = client.command(command).strip()
            # A successful 'set server' answers nothing; anything else is HAProxy's error.
            if answer:
                done = f" (already done: {'; '.join(sent)})" if sent else ""
                raise HAProxyError(f"HAProxy refused '{command}': {answer}{done}")
            sent.append(command)
        if commands:
            _verify(client, changes)
        if request.wait:
            stats = wait_for(client, targets, request.state, request.wait_timeout, request.wait_interval, sleep, clock)
        elif commands:
            stats = _server_stats(client)

    servers = []
    for change in changes:
        row = stats.get((change.backend, change.server), {})
        servers.append({"backend": change.backend, "server": change.server, "before": change.before,
                        "after": change.after, "status": row.get("status"), "sessions": _int_or_none(row.get("scur"))})
    return {
        "changed": bool(commands),
        "servers": servers,
        "commands": commands,
        "diff": {"before": {change.key: change.before for change in changes},
                 "after": {change.key: change.after for change in changes}},
    }


def _verify(client: Client, changes: Sequence) -> None:
    """Read the servers back: HAProxy must now report what was planned."""
    rows = {(row["be_name"], row["srv_name"]): row for row in parse_servers_state(client.command("show servers state"))}
    for change in changes:
        row = rows.get((change.backend, change.server))
        if row is None:
            raise HAProxyError(f"{change.key} disappeared from HAProxy while it was being changed (a reload?)")
        now = {"state": admin_state(row["srv_admin_state"]), "weight": row["srv_uweight"]}
        if now != change.after:
            raise HAProxyError(f"after {'; '.join(change.commands) or 'the change'} HAProxy reports {change.key} as "
                               f"{now['state']} with weight {now['weight']}, not {change.after['state']} with weight "
                               f"{change.after['weight']}")


def gather(client: Client, what: Sequence = GATHER) -> dict:
    """The haproxy_info facts: info, backends (with their servers) and frontends, as far as gathered."""
    unknown = [item for item in what if item not in GATHER]
    if unknown:
        raise HAProxyError(f"gather knows {', '.join(GATHER)}, not {', '.join(map(str, unknown))}")
    facts: dict = {}
    if "info" in what:
        facts["info"] = parse_info(client.command("show info"))
    stat_rows = parse_stat(client.command("show stat")) if "stat" in what else None
    state_rows = parse_servers_state(client.command("show servers state")) if "servers" in what else None
    if stat_rows is not None or state_rows is not None:
        facts["backends"] = backends_view(stat_rows, state_rows)
    if stat_rows is not None:
        facts["frontends"] = frontends_view(stat_rows)
    return facts
