# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""CARP state of one vhid: read it, plan a change, apply the plan.

Two backends:

* ``freebsd``: the kernel's carp(4), read from ``ifconfig -a`` (``ifconfig
  -a -k`` when a key is asked for) and ``sysctl net.inet.carp``. Both
  ifconfig syntaxes are understood: FreeBSD 10 and later list ``carp:``
  lines (several vhids per interface) under an ordinary interface and tie
  addresses to vhids with ``vhid N`` on the ``inet`` lines; FreeBSD 9 has
  one cloned ``carpN`` interface per vhid.
* ``ucarp``: the userspace CARP on Linux, run by the floating_ip role as one
  systemd unit ``floatip-ucarp@<vhid>.service`` per VIP, with its settings in
  ``<env dir>/vhid-<vhid>.conf`` and its state written by its up/down scripts
  to ``<state dir>/vhid-<vhid>.state``.

Everything here is pure: parsing and planning take text and return data, and
``sync`` does its I/O only through the callables of a ``Host``, so that tests
can run it against recorded output and stand-in programs. Every problem is a
``CarpError`` whose message names the argument or file at fault.

A vhid's key (its password) is a secret: it is read (``ifconfig -k``) and
passed (``ifconfig ... pass``) only when the caller asks for one, compared
here without being returned, and shown as ``********`` in every command
reported or quoted in an error. FreeBSD's ifconfig takes it on its command
line only: the one moment it is visible in the process list is while that
``ifconfig ... pass`` runs, which happens only when the vhid's key differs.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ansible_collections.floatip.ha.plugins.module_utils.contract import PATHS

STATES = ("INIT", "BACKUP", "MASTER")
WANTED_STATES = ("master", "backup")
BACKENDS = ("auto", "freebsd", "ucarp")
SYNTAX_FREEBSD10 = "freebsd10"
SYNTAX_FREEBSD9 = "freebsd9"

CARP_SYSCTL = "net.inet.carp"
DEMOTION_OID = "net.inet.carp.demotion"
PREEMPT_OID = "net.inet.carp.preempt"

UCARP_ENV_DIR = PATHS["ucarp"]
UCARP_STATE_DIR = f"{PATHS['state']}/ucarp"
UCARP_KEYS = ("UCARP_VHID", "UCARP_ADVBASE", "UCARP_ADVSKEW", "UCARP_ADDR", "UCARP_IFACE")

# ifconfig copies a key with strlcpy into CARP_KEY_LEN (20) bytes: it keeps 19.
KEY_MAX = 19
MASK = "********"
# The key's three states as reported (never the key itself).
KEY_NONE, KEY_OTHER, KEY_ASKED = "none", "another", "as asked"

VHID_RANGE = (1, 255)
ADVSKEW_RANGE = (0, 254)
ADVBASE_RANGE = (1, 255)

_IFACE_RE = re.compile(r"^(?P<name>[^\s:]+): flags=[0-9a-fA-F]+<(?P<flags>[^>]*)>")
# With ifconfig -k, as root, a vhid that has a key ends its line with: key "<key>".
_CARP_RE = re.compile(r"^\s+carp: (?P<state>\S+) vhid (?P<vhid>\d+) advbase (?P<advbase>\d+) advskew (?P<advskew>\d+)"
                      r'(?: key "(?P<key>.*)")?')
_ADDR_RE = re.compile(r"^\s+inet6? (?P<addr>\S+)(?P<rest>.*)$")
_VHID_RE = re.compile(r"\bvhid (\d+)\b")
_CARP_IF_RE = re.compile(r"^carp\d+$")
_INT_RE = re.compile(r"^-?\d+$")


class CarpError(ValueError):
    """A CARP argument, a reading of the host, or a change that failed."""


@dataclass(frozen=True)
class Want:
    """What the caller asked for; None means leave as it is."""

    vhid: int
    interface: str | None = None
    state: str | None = None
    advskew: int | None = None
    advbase: int | None = None
    demotion: int | None = None
    # Never in a repr, a message or a result.
    key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Paths:
    """The programs and directories a backend uses."""

    ifconfig: str = "ifconfig"
    sysctl: str = "sysctl"
    systemctl: str = "systemctl"
    ucarp_env_dir: str = UCARP_ENV_DIR
    ucarp_state_dir: str = UCARP_STATE_DIR


@dataclass
class Plan:
    """Commands (argv lists) and file contents that take a vhid from before to after."""

    before: dict
    after: dict
    commands: list = field(default_factory=list)
    files: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.commands or self.files)


@dataclass
class Host:
    """The I/O that ``sync`` needs, injected by the module (or a test)."""

    run: Callable[[list], tuple]
    read_text: Callable[[str], str | None]
    write_text: Callable[[str, str], None]
    sleep: Callable[[float], None]
    clock: Callable[[], float]


# --- arguments -------------------------------------------------------------

def _int_in(name: str, value: object, bounds: tuple) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CarpError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _check_key(key: object) -> str:
    """The key, if FreeBSD's ifconfig keeps it whole and prints it back unambiguously; the message never quotes it."""
    if not isinstance(key, str) or not 1 <= len(key) <= KEY_MAX or \
            not all(c.isascii() and c.isprintable() and not c.isspace() and c != '"' for c in key):
        raise CarpError(f"key must be 1 to {KEY_MAX} printable ASCII characters without spaces or double quotes "
                        f"(FreeBSD's ifconfig keeps {KEY_MAX} characters of a CARP key); the key given is not shown")
    return key


def make_want(vhid: object, interface: object = None, state: object = None, advskew: object = None,
              advbase: object = None, demotion: object = None, key: object = None) -> Want:
    """Check the arguments and return them as a ``Want``."""
    vhid = _int_in("vhid", vhid, VHID_RANGE)
    if interface is not None and (not isinstance(interface, str) or not interface or any(c.isspace() for c in interface)):
        raise CarpError(f"interface must be an interface name such as em0 or carp0, got {interface!r}")
    if state is not None:
        if not isinstance(state, str) or state.lower() not in WANTED_STATES:
            raise CarpError(f"state must be master or backup, got {state!r}")
        state = state.lower()
    if advskew is not None:
        advskew = _int_in("advskew", advskew, ADVSKEW_RANGE)
    if advbase is not None:
        advbase = _int_in("advbase", advbase, ADVBASE_RANGE)
    if demotion is not None and (isinstance(demotion, bool) or not isinstance(demotion, int)):
        raise CarpError(f"demotion must be an integer (the wanted value of {DEMOTION_OID}), got {demotion!r}")
    if key is not None:
        key = _check_key(key)
    return Want(vhid=vhid, interface=interface, state=state, advskew=advskew, advbase=advbase, demotion=demotion, key=key)


def resolve_backend(backend: str, system: str) -> str:
    """The backend to use: ``auto`` means freebsd on FreeBSD and ucarp on Linux."""
    if backend not in BACKENDS:
        raise CarpError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    if system == "FreeBSD":
        return "freebsd"
    if system == "Linux":
        return "ucarp"
    raise CarpError(f"backend=auto knows FreeBSD (carp) and Linux (ucarp), not {system!r}: set backend to freebsd or ucarp")


def check_backend(want: Want, backend: str) -> None:
    """Refuse what a backend cannot do, before anything is read."""
    if backend != "ucarp":
        return
    if want.state == "master":
        raise CarpError("state=master is not supported with the ucarp backend: ucarp has no command that makes it master. "
                        "Set state=backup on the node that holds the VIP, or give this node the lowest advskew")
    if want.demotion is not None:
        raise CarpError(f"demotion is FreeBSD only ({DEMOTION_OID}); with the ucarp backend raise advskew instead")
    if want.key is not None:
        raise CarpError("key is FreeBSD only: ucarp reads its password from the file that the floating_ip role keeps")


# --- FreeBSD ---------------------------------------------------------------

def _is_link_local(addr: str) -> bool:
    return "%" in addr or addr.lower().startswith("fe80:")


def parse_ifconfig(text: str) -> dict:
    """The vhids in FreeBSD ``ifconfig`` output, in either syntax.

    Returns ``{"syntax": "freebsd10" | "freebsd9" | None, "vhids": [...]}``
    where each vhid is a dict with interface, vhid, state, advbase, advskew,
    addresses and syntax. ``syntax`` is None when there is no CARP at all.
    Keys that ``ifconfig -k`` printed are left out (see ``parse_keys``).
    """
    return _parse_ifconfig(text)[0]


def parse_keys(text: str) -> dict:
    """The keys that ``ifconfig -a -k`` printed, by (interface, vhid); a vhid without a key is absent."""
    return _parse_ifconfig(text)[1]


def _parse_ifconfig(text: str) -> tuple:
    interfaces: list = []
    keys: dict = {}
    current: dict | None = None
    for line in text.splitlines():
        match = _IFACE_RE.match(line)
        if match:
            current = {"name": match["name"], "flags": match["flags"].split(","), "carp": [], "addrs": []}
            interfaces.append(current)
            continue
        if current is None:
            continue
        match = _CARP_RE.match(line)
        if match:
            if match["key"] is not None:
                keys[(current["name"], int(match["vhid"]))] = match["key"]
            current["carp"].append({
                "vhid": int(match["vhid"]),
                "state": match["state"].upper(),
                "advbase": int(match["advbase"]),
                "advskew": int(match["advskew"]),
            })
            continue
        match = _ADDR_RE.match(line)
        if match:
            vhid = _VHID_RE.search(match["rest"])
            current["addrs"].append((match["addr"], int(vhid.group(1)) if vhid else None))

    vhids = []
    for iface in interfaces:
        # FreeBSD 9: a cloned carpN holds one vhid and its addresses carry no "vhid N".
        legacy = bool(_CARP_IF_RE.match(iface["name"])) and len(iface["carp"]) == 1 and \
            all(vhid is None for _addr, vhid in iface["addrs"])
        for carp in iface["carp"]:
            if legacy:
                addresses = [addr for addr, _vhid in iface["addrs"] if not _is_link_local(addr)]
            else:
                addresses = [addr for addr, vhid in iface["addrs"] if vhid == carp["vhid"]]
            vhids.append({"interface": iface["name"], **carp, "addresses": addresses,
                          "syntax": SYNTAX_FREEBSD9 if legacy else SYNTAX_FREEBSD10})
    syntaxes = {entry["syntax"] for entry in vhids}
    syntax = SYNTAX_FREEBSD9 if SYNTAX_FREEBSD9 in syntaxes else (SYNTAX_FREEBSD10 if syntaxes else None)
    return {"syntax": syntax, "vhids": vhids}, keys


def _known_vhids(parsed: dict) -> str:
    if not parsed["vhids"]:
        return "ifconfig shows no CARP vhid at all (is carp(4) loaded and configured?)"
    return "ifconfig shows " + ", ".join(f"vhid {e['vhid']} on {e['interface']}" for e in parsed["vhids"])


def find_vhid(parsed: dict, vhid: int, interface: str | None = None) -> dict:
    """The one vhid entry asked for; on FreeBSD 10+ a vhid number is per interface."""
    matches = [entry for entry in parsed["vhids"] if entry["vhid"] == vhid]
    if interface is not None:
        on_interface = [entry for entry in matches if entry["interface"] == interface]
        if on_interface:
            return on_interface[0]
        raise CarpError(f"vhid {vhid} is not configured on interface {interface}: {_known_vhids(parsed)}")
    if not matches:
        raise CarpError(f"vhid {vhid} is not configured on this host: {_known_vhids(parsed)}")
    if len(matches) > 1:
        names = ", ".join(entry["interface"] for entry in matches)
        raise CarpError(f"vhid {vhid} is configured on several interfaces ({names}): set interface to the one meant")
    return matches[0]


def _value(text: str) -> int | str:
    text = text.strip()
    return int(text) if _INT_RE.match(text) else text


def parse_sysctl(text: str, names: Sequence[str] | None = None) -> dict:
    """Values from ``sysctl name...`` (``name: value`` lines) or, given the names asked for, ``sysctl -n``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if names is not None:
        if len(lines) != len(names):
            raise CarpError(f"sysctl -n printed {len(lines)} values for {len(names)} names ({', '.join(names)})")
        return {name: _value(line) for name, line in zip(names, lines)}
    values: dict = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise CarpError(f"cannot read sysctl output line {line!r}: expected 'name: value'")
        values[name.strip()] = _value(value)
    return values


def key_status(key_now: str | None, wanted: str) -> str:
    """How a vhid's key stands against the one asked for, in words that do not reveal either."""
    if key_now is None:
        return KEY_NONE
    return KEY_ASKED if key_now == wanted else KEY_OTHER


def plan_freebsd(current: dict, want: Want, ifconfig: str = "ifconfig", sysctl: str = "sysctl",
                 key_now: str | None = None) -> Plan:
    """Commands that bring a FreeBSD vhid (``current``, with its demotion) to what is wanted.

    Order: demotion, key, advskew, advbase, then state, so that a node given
    a higher advskew before it steps down does not take the VIP straight
    back. ``key_now`` is the vhid's key as ``ifconfig -k`` shows it (None:
    none); the key is passed only when it differs from ``want.key``.
    """
    before = dict(current)
    after = dict(current)
    commands = []
    if want.demotion is not None:
        if current.get("demotion") is None:
            raise CarpError(f"demotion needs the sysctl {DEMOTION_OID} (FreeBSD 10 and later), which this host does not have")
        # Writing the sysctl adds to the kernel's counter: write the difference.
        delta = want.demotion - current["demotion"]
        if delta:
            commands.append([sysctl, f"{DEMOTION_OID}={delta}"])
            after["demotion"] = want.demotion
    if current["syntax"] == SYNTAX_FREEBSD9:
        target = [ifconfig, current["interface"]]
    else:
        target = [ifconfig, current["interface"], "vhid", str(current["vhid"])]
    if want.key is not None:
        if current["syntax"] == SYNTAX_FREEBSD9:
            raise CarpError(f"key needs FreeBSD 10 or later: FreeBSD 9's ifconfig does not show the key of {current['interface']}, "
                            "so whether it differs cannot be told")
        before["key"] = key_status(key_now, want.key)
        after["key"] = KEY_ASKED
        if before["key"] != KEY_ASKED:
            commands.append(target + ["pass", want.key])
    for key in ("advskew", "advbase"):
        value = getattr(want, key)
        if value is not None and value != current[key]:
            commands.append(target + [key, str(value)])
            after[key] = value
    if want.state is not None:
        if current["state"] == "INIT":
            # The kernel ignores state changes in INIT, and INIT holds no address.
            if want.state == "master":
                raise CarpError(f"vhid {current['vhid']} on {current['interface']} is INIT (its interface is down or has no carrier) "
                                "and cannot become master")
        elif current["state"] != want.state.upper():
            commands.append(target + ["state", want.state])
            after["state"] = want.state.upper()
    return Plan(before=before, after=after, commands=commands)


# --- ucarp -----------------------------------------------------------------

def ucarp_unit(vhid: int) -> str:
    return f"floatip-ucarp@{vhid}.service"


def ucarp_env_path(env_dir: str, vhid: int) -> str:
    return posixpath.join(env_dir, f"vhid-{vhid}.conf")


def ucarp_state_path(state_dir: str, vhid: int) -> str:
    return posixpath.join(state_dir, f"vhid-{vhid}.state")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_env_file(text: str, source: str = "the environment file") -> dict:
    """``KEY=value`` lines of a systemd environment file; ``#`` and ``;`` lines are comments."""
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CarpError(f"{source} line {number} is not KEY=value: {raw!r}")
        values[key] = _unquote(value.strip())
    return values


def parse_state_file(text: str | None, source: str = "the state file") -> str:
    """MASTER or BACKUP as the up/down scripts wrote it; no file (None) or an empty one is INIT."""
    if text is None or not text.strip():
        return "INIT"
    state = text.strip().upper()
    if state not in ("MASTER", "BACKUP"):
        raise CarpError(f"{source} holds {text.strip()!r}, expected MASTER or BACKUP")
    return state


def ucarp_vhid_state(env: dict, state_text: str | None, vhid: int, env_source: str = "the environment file",
                     state_source: str = "the state file") -> dict:
    """The vhid dict for ucarp, from its parsed environment file and its state file."""
    missing = [key for key in UCARP_KEYS if not env.get(key)]
    if missing:
        raise CarpError(f"{env_source} lacks {', '.join(missing)}")
    numbers = {}
    for key in ("UCARP_VHID", "UCARP_ADVBASE", "UCARP_ADVSKEW"):
        if not _INT_RE.match(env[key]):
            raise CarpError(f"{env_source} has {key}={env[key]!r}, not an integer")
        numbers[key] = int(env[key])
    if numbers["UCARP_VHID"] != vhid:
        raise CarpError(f"{env_source} has UCARP_VHID={numbers['UCARP_VHID']}, not vhid {vhid}")
    return {
        "backend": "ucarp",
        "syntax": None,
        "interface": env["UCARP_IFACE"],
        "vhid": vhid,
        "state": parse_state_file(state_text, state_source),
        "advbase": numbers["UCARP_ADVBASE"],
        "advskew": numbers["UCARP_ADVSKEW"],
        "addresses": [env["UCARP_ADDR"]],
        "demotion": None,
        "preempt": None,
    }


def rewrite_env_file(text: str, changes: dict) -> str:
    """The environment file with ``KEY=value`` set for each change, comments and other lines kept."""
    lines = text.splitlines()
    seen = set()
    for index, raw in enumerate(lines):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;" or "=" not in stripped:
            continue
        key = stripped.partition("=")[0].strip()
        if key in changes:
            lines[index] = f"{key}={changes[key]}"
            seen.add(key)
    lines.extend(f"{key}={value}" for key, value in changes.items() if key not in seen)
    return "\n".join(lines) + "\n"


def plan_ucarp(current: dict, env_text: str, want: Want, env_path: str, systemctl: str = "systemctl") -> Plan:
    """File contents and commands that bring a ucarp vhid to what is wanted.

    ucarp cannot change advskew or advbase while it runs: the file is
    rewritten and the unit restarted (``try-restart``, so a stopped unit stays
    stopped), after which ucarp starts again as BACKUP. State backup is
    ``SIGUSR2``, after which ucarp is BACKUP but may take the VIP back by
    preempt when its advskew is the lowest.
    """
    check_backend(want, "ucarp")
    before = dict(current)
    after = dict(current)
    plan = Plan(before=before, after=after)
    unit = ucarp_unit(current["vhid"])
    changes = {}
    for key, var in (("advskew", "UCARP_ADVSKEW"), ("advbase", "UCARP_ADVBASE")):
        value = getattr(want, key)
        if value is not None and value != current[key]:
            changes[var] = str(value)
            after[key] = value
    if changes:
        plan.files[env_path] = rewrite_env_file(env_text, changes)
        plan.commands.append([systemctl, "try-restart", unit])
        if current["state"] != "INIT":
            after["state"] = "BACKUP"
    if want.state == "backup" and current["state"] == "MASTER" and not changes:
        plan.commands.append([systemctl, "kill", "--signal=SIGUSR2", unit])
        after["state"] = "BACKUP"
    return plan


# --- fetch, compare, apply -------------------------------------------------

def masked(argv: list) -> list:
    """The command as it may be shown: the argument after ``pass`` (a key) replaced by ********."""
    return [MASK if index and argv[index - 1] == "pass" else arg for index, arg in enumerate(argv)]


def _run(host: Host, argv: list, secret_output: bool = False) -> str:
    """Run a command; a failure names it masked, with stderr (and stdout unless it may hold keys)."""
    rc, out, err = host.run(argv)
    if rc != 0:
        detail = (err or ("" if secret_output else out) or "").strip() or "no output"
        raise CarpError(f"{' '.join(masked(argv))} failed (rc {rc}): {detail}")
    return out


def read_freebsd(host: Host, paths: Paths, vhid: int, interface: str | None = None) -> dict:
    """The vhid dict on FreeBSD, with the global demotion and preempt."""
    return _read_freebsd(host, paths, vhid, interface, with_key=False)[0]


def _read_freebsd(host: Host, paths: Paths, vhid: int, interface: str | None, with_key: bool) -> tuple:
    """The vhid dict, and with ``with_key`` its key as ``ifconfig -a -k`` shows it (None: none)."""
    if with_key:
        text = _run(host, [paths.ifconfig, "-a", "-k"], secret_output=True)
    else:
        text = _run(host, [paths.ifconfig, "-a"])
    parsed, keys = _parse_ifconfig(text)
    entry = find_vhid(parsed, vhid, interface)
    rc, out, _err = host.run([paths.sysctl, CARP_SYSCTL])
    values = parse_sysctl(out) if rc == 0 else {}
    demotion = values.get(DEMOTION_OID)
    preempt = values.get(PREEMPT_OID)
    return {
        "backend": "freebsd",
        **entry,
        "demotion": demotion if isinstance(demotion, int) else None,
        "preempt": bool(preempt) if isinstance(preempt, int) else None,
    }, keys.get((entry["interface"], entry["vhid"]))


def read_ucarp(host: Host, paths: Paths, vhid: int) -> tuple:
    """The vhid dict for ucarp and the environment file's text."""
    env_path = ucarp_env_path(paths.ucarp_env_dir, vhid)
    state_path = ucarp_state_path(paths.ucarp_state_dir, vhid)
    text = host.read_text(env_path)
    if text is None:
        raise CarpError(f"vhid {vhid} has no ucarp settings: {env_path} does not exist")
    current = ucarp_vhid_state(parse_env_file(text, env_path), host.read_text(state_path), vhid, env_path, state_path)
    return current, text


def _wait_for_backup(host: Host, paths: Paths, vhid: int, timeout: float) -> dict:
    """ucarp steps down asynchronously: its down script writes BACKUP to the state file."""
    deadline = host.clock() + timeout
    while True:
        current, _text = read_ucarp(host, paths, vhid)
        if current["state"] == "BACKUP":
            return current
        if host.clock() >= deadline:
            raise CarpError(f"vhid {vhid} still reports {current['state']} in {ucarp_state_path(paths.ucarp_state_dir, vhid)} "
                            f"{timeout:g} s after it was told to step down: does the unit's down script write BACKUP there?")
        host.sleep(0.2)


def sync(want: Want, backend: str, host: Host, paths: Paths = Paths(), check_mode: bool = False,
         timeout: float = 10.0) -> dict:
    """Read the vhid, plan, apply unless in check mode, and report.

    Returns changed, carp (after the change, or as predicted in check mode),
    commands (run, or to be run in check mode), diff (before/after) and
    warnings.
    """
    check_backend(want, backend)
    warnings = []
    with_key = want.key is not None
    if backend == "freebsd":
        current, key_now = _read_freebsd(host, paths, want.vhid, want.interface, with_key)
        if current["syntax"] == SYNTAX_FREEBSD10 and want.interface is None and \
                (want.state, want.advskew, want.advbase, want.key) != (None, None, None, None):
            raise CarpError(f"interface is required with state, advskew, advbase or key on FreeBSD 10 and later, where a vhid "
                            f"belongs to an interface: vhid {want.vhid} is on {current['interface']}")
        plan = plan_freebsd(current, want, paths.ifconfig, paths.sysctl, key_now)
    elif backend == "ucarp":
        current, text = read_ucarp(host, paths, want.vhid)
        if want.interface is not None and want.interface != current["interface"]:
            raise CarpError(f"interface is {want.interface} but {ucarp_env_path(paths.ucarp_env_dir, want.vhid)} "
                            f"has UCARP_IFACE={current['interface']}")
        plan = plan_ucarp(current, text, want, ucarp_env_path(paths.ucarp_env_dir, want.vhid), paths.systemctl)
    else:
        raise CarpError(f"backend must be freebsd or ucarp here, got {backend!r}")

    carp = plan.after
    if plan.changed and not check_mode:
        for path, content in plan.files.items():
            host.write_text(path, content)
        for argv in plan.commands:
            _run(host, argv)
        if backend == "freebsd":
            carp, key_now = _read_freebsd(host, paths, want.vhid, current["interface"], with_key)
            if with_key:
                carp["key"] = key_status(key_now, want.key)
        elif current["state"] == "MASTER" and plan.after["state"] == "BACKUP":
            carp = _wait_for_backup(host, paths, want.vhid, timeout)
        else:
            carp, _text = read_ucarp(host, paths, want.vhid)
        for key in ("state", "advskew", "advbase", "demotion", "key"):
            if carp.get(key) != plan.after.get(key):
                warnings.append(f"vhid {want.vhid}: {key} is {carp.get(key)} after the change, expected {plan.after.get(key)}")
    return {
        "changed": plan.changed,
        "carp": carp,
        "commands": [masked(argv) for argv in plan.commands],
        "diff": {"before": plan.before, "after": plan.after},
        "warnings": warnings,
    }
