# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""Which VIPs this node holds now, and in which state, for every VIP backend.

The VIP layer (the floating_ip role, or the heartbeat role) writes the node's
layout to ``/etc/floatip/layout.json``: the backend, the node's name and every
VIP the node takes part in. ``collect`` reads it, asks the backend what state
each VIP is in, asks the system which addresses the node really holds, and
puts the two side by side:

* keepalived: the notify script writes MASTER, BACKUP, FAULT or STOP to
  ``<state dir>/vrrp/vrid-<vrid>.state``; no file yet is INIT. A non-zero
  number in ``/etc/keepalived/floatip-standby`` is maintenance standby.
* ucarp: the up/down scripts write MASTER or BACKUP to
  ``<state dir>/ucarp/vhid-<vrid>.state``; no file is INIT. The marker
  ``/etc/floatip/ucarp/standby`` exists while the node is in standby.
* heartbeat: ``cl_status rscstatus``; a failing cl_status (heartbeat down) is
  STOP for every VIP. Standby is not recorded anywhere, so it is null.
* carp (FreeBSD): the vhids in ``ifconfig`` output (parsed by ``carp.py``),
  standby from the ``net.inet.carp.demotion`` counter.

Held addresses come from ``ip -o address show`` on Linux; on FreeBSD a vhid
in MASTER holds its addresses.

Everything here is pure: parsing takes text and returns data, and
``collect`` does its I/O only through the callables of a ``Host``. A layout
that cannot be read is a ``VipInfoError``; what the backend or the system
says that does not add up goes to ``problems``, for a person to read.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.floatip.ha.plugins.module_utils.carp import (
    DEMOTION_OID,
    CarpError,
    parse_ifconfig,
    parse_state_file,
    parse_sysctl,
    ucarp_state_path,
)
from ansible_collections.floatip.ha.plugins.module_utils.contract import PATHS

LAYOUT_PATH = PATHS["layout"]
STATE_DIR = PATHS["state"]
KEEPALIVED_STANDBY = PATHS["keepalived_standby"]
UCARP_STANDBY = PATHS["ucarp_standby"]

BACKENDS = ("keepalived", "carp", "ucarp", "heartbeat")
KEEPALIVED_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
# cl_status rscstatus: which of heartbeat's resource groups this node holds.
# "local" are the groups whose primary (haresources) is this node, "foreign"
# the peer's; "transition" while they move.
RSCSTATUS = ("all", "local", "foreign", "none", "transition")
VIP_LAYER = "the VIP layer (floatip.ha.floating_ip or floatip.ha.heartbeat)"
# Who reports the state, in problem messages.
REPORTERS = {"keepalived": "keepalived", "carp": "CARP", "ucarp": "ucarp", "heartbeat": "heartbeat"}
VRID_RANGE = (1, 255)


class VipInfoError(ValueError):
    """The layout is missing or wrong, or the node's addresses cannot be read."""


@dataclass(frozen=True)
class Paths:
    """The files and programs read."""

    layout: str = LAYOUT_PATH
    state_dir: str = STATE_DIR
    ip: str = "ip"
    cl_status: str = "cl_status"
    ifconfig: str = "ifconfig"
    sysctl: str = "sysctl"
    keepalived_standby: str = KEEPALIVED_STANDBY
    ucarp_standby: str = UCARP_STANDBY


@dataclass
class Host:
    """The I/O that ``collect`` needs, injected by the module (or a test).

    ``read_text`` returns None for a missing file and raises OSError when a
    file is there but cannot be read.
    """

    run: Callable[[list], tuple]
    read_text: Callable[[str], str | None]
    exists: Callable[[str], bool]


# --- the layout ------------------------------------------------------------

LAYOUT_MANAGED = "Ansible managed: written by floatip.ha's VIP layer from the cluster model; edits are overwritten"


def layout_record(model: dict, node: str, interface: str | None, managed: str = LAYOUT_MANAGED) -> dict:
    """This node's layout file, from the cluster model: what ``parse_layout`` reads.

    With keepalived, ucarp and carp every VIP of the layout is listed with
    the node's priority and advskew for it; with heartbeat every VIP, owned
    by the primary (the first node), without a VRID. ``managed`` says who
    wrote the file (JSON has no comments).
    """
    if model["vip_backend"] == "heartbeat":
        owner = model["nodes"][0]["name"]
        vips = [{"address": vip, "vrid": None, "owner": owner, "priority": None, "advskew": None} for vip in model["vips"]]
    else:
        mine = {vip["vrid"]: vip for vip in model["layout"]["nodes"][node]["vips"]}
        vips = [{"address": vip["address"], "vrid": vip["vrid"], "owner": vip["owner"],
                 "priority": mine[vip["vrid"]]["priority"], "advskew": mine[vip["vrid"]]["advskew"]}
                for vip in model["layout"]["vips"]]
    return {"managed": managed, "backend": model["vip_backend"], "node": node, "interface": interface or None,
            "prefixlen": model["prefixlen"], "vips": vips}


def interface_of(facts: dict, address: str) -> str:
    """The name of the interface that has ``address``, from Ansible's facts; empty when none has."""
    wanted = _normal(address)
    for name in facts.get("interfaces", []):
        device = facts.get(name.replace("-", "_").replace(".", "_")) or {}
        ipv4 = device.get("ipv4") or {}
        ipv4 = ipv4 if isinstance(ipv4, list) else [ipv4]
        held = [entry.get("address") for entry in ipv4 + (device.get("ipv4_secondaries") or [])]
        held += [entry.get("address") for entry in device.get("ipv6") or []]
        if any(isinstance(each, str) and _normal(each) == wanted for each in held):
            return device.get("device", name)
    return ""


def _bad_layout(source: str, what: str) -> VipInfoError:
    return VipInfoError(f"{source}: {what}; apply {VIP_LAYER} to this node again")


def _int_or_none(value: object, name: str, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_layout(source, f"{name} must be an integer or null, got {value!r}")
    return value


def parse_layout(text: str, source: str = LAYOUT_PATH) -> dict:
    """The layout checked: backend, node, interface, prefixlen and the VIPs.

    Each VIP keeps address, vrid, owner, priority and advskew. A vrid is
    required (1-255) except with heartbeat, whose VIPs have none.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _bad_layout(source, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad_layout(source, f"expected a JSON object, got {type(data).__name__}")
    backend = data.get("backend")
    if backend not in BACKENDS:
        raise _bad_layout(source, f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    node = data.get("node")
    if not isinstance(node, str) or not node:
        raise _bad_layout(source, f"node must be the node's inventory name, got {node!r}")
    interface = data.get("interface")
    if interface is not None and not isinstance(interface, str):
        raise _bad_layout(source, f"interface must be an interface name, got {interface!r}")
    vips = data.get("vips")
    if not isinstance(vips, list):
        raise _bad_layout(source, f"vips must be a list, got {vips!r}")
    checked = []
    seen = set()
    for index, vip in enumerate(vips):
        where = f"vips[{index}]"
        if not isinstance(vip, dict):
            raise _bad_layout(source, f"{where} must be an object, got {vip!r}")
        address = vip.get("address")
        try:
            key = _normal(address, strict=True)
        except (TypeError, ValueError):
            raise _bad_layout(source, f"{where}.address must be an IP address, got {address!r}") from None
        if key in seen:
            raise _bad_layout(source, f"{where}.address {address} is listed twice")
        seen.add(key)
        vrid = _int_or_none(vip.get("vrid"), f"{where}.vrid", source)
        if backend != "heartbeat" and (vrid is None or not VRID_RANGE[0] <= vrid <= VRID_RANGE[1]):
            raise _bad_layout(source, f"{where}.vrid must be an integer from {VRID_RANGE[0]} to {VRID_RANGE[1]} "
                                      f"with the {backend} backend, got {vip.get('vrid')!r}")
        owner = vip.get("owner")
        if owner is not None and not isinstance(owner, str):
            raise _bad_layout(source, f"{where}.owner must be a node name, got {owner!r}")
        checked.append({
            "address": address,
            "vrid": vrid,
            "owner": owner,
            "priority": _int_or_none(vip.get("priority"), f"{where}.priority", source),
            "advskew": _int_or_none(vip.get("advskew"), f"{where}.advskew", source),
        })
    return {
        "backend": backend,
        "node": node,
        "interface": interface,
        "prefixlen": _int_or_none(data.get("prefixlen"), "prefixlen", source),
        "vips": checked,
    }


def read_layout(host: Host, path: str = LAYOUT_PATH) -> dict:
    """The checked layout of this node; missing or unreadable means the VIP layer was never applied."""
    try:
        text = host.read_text(path)
    except OSError as exc:
        raise VipInfoError(f"cannot read {path} ({exc.strerror or exc}): {VIP_LAYER} has not been applied to this node, "
                           "or the file was damaged since; apply it") from None
    if text is None:
        raise VipInfoError(f"{path} does not exist: {VIP_LAYER} has not been applied to this node; apply it first")
    return parse_layout(text, path)


# --- addresses -------------------------------------------------------------

def _normal(address: object, strict: bool = False) -> str:
    """One spelling per address (IPv6 compressed, lower case), so that addresses compare."""
    if not isinstance(address, str):
        raise TypeError(f"not an address: {address!r}")
    text = address.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if strict:
            raise
        return text.lower()


def parse_ip_addresses(text: str) -> dict:
    """The addresses in ``ip -o address show`` output, each with its interface.

    Lines look like ``2: eth0    inet 172.30.80.101/24 scope global secondary eth0\\ ...``.
    An IPv6 address whose duplicate address detection failed (``dadfailed``)
    is not usable, so it is not held.
    """
    addresses: dict = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("inet", "inet6") or "dadfailed" in fields:
            continue
        interface = fields[1].split("@", 1)[0]
        addresses.setdefault(_normal(fields[3].split("/", 1)[0]), interface)
    return addresses


# --- states ----------------------------------------------------------------

def keepalived_state_path(state_dir: str, vrid: int) -> str:
    return posixpath.join(state_dir, "vrrp", f"vrid-{vrid}.state")


def parse_keepalived_state(text: str | None, source: str = "the state file") -> str:
    """The state the notify script wrote; no file (None) or an empty one is INIT."""
    if text is None or not text.strip():
        return "INIT"
    state = text.strip().upper()
    if state not in KEEPALIVED_STATES:
        raise VipInfoError(f"{source} holds {text.strip()!r}, expected {', '.join(KEEPALIVED_STATES)}")
    return state


def parse_standby_number(text: str | None, source: str = "the standby file") -> bool:
    """keepalived's standby switch: a non-zero number is standby; 0, empty or no file is not."""
    if text is None or not text.strip():
        return False
    try:
        return int(text.strip()) != 0
    except ValueError:
        raise VipInfoError(f"{source} holds {text.strip()!r}, expected a number (0: not in standby)") from None


def heartbeat_holds(rscstatus: str, owner_is_this_node: bool) -> bool:
    """Whether this node holds the VIPs, from ``cl_status rscstatus``.

    The VIPs are "local" resources on their owner (the primary) and
    "foreign" ones on the other node; "all" is both.
    """
    return rscstatus in ("all", "local" if owner_is_this_node else "foreign")


def _read_file(host: Host, path: str) -> str | None:
    try:
        return host.read_text(path)
    except OSError as exc:
        raise VipInfoError(f"cannot read {path}: {exc.strerror or exc}") from None


def _detail(rc: int, out: str, err: str) -> str:
    return f"rc {rc}: {(err or out or '').strip() or 'no output'}"


# --- each backend: a state per VIP, the held addresses, standby ------------

def _linux_held(host: Host, paths: Paths) -> set:
    rc, out, err = host.run([paths.ip, "-o", "address", "show"])
    if rc != 0:
        raise VipInfoError(f"{paths.ip} -o address show failed ({_detail(rc, out, err)}): cannot tell which addresses this node holds")
    return set(parse_ip_addresses(out))


def _keepalived(layout: dict, host: Host, paths: Paths, problems: list) -> tuple:
    states = {}
    for vip in layout["vips"]:
        path = keepalived_state_path(paths.state_dir, vip["vrid"])
        try:
            states[vip["address"]] = parse_keepalived_state(_read_file(host, path), path)
        except VipInfoError as exc:
            problems.append(str(exc))
            states[vip["address"]] = "UNKNOWN"
    try:
        standby = parse_standby_number(_read_file(host, paths.keepalived_standby), paths.keepalived_standby)
    except VipInfoError as exc:
        problems.append(str(exc))
        standby = None
    return states, _linux_held(host, paths), standby


def _ucarp(layout: dict, host: Host, paths: Paths, problems: list) -> tuple:
    states = {}
    for vip in layout["vips"]:
        path = ucarp_state_path(posixpath.join(paths.state_dir, "ucarp"), vip["vrid"])
        try:
            states[vip["address"]] = parse_state_file(_read_file(host, path), path)
        except (VipInfoError, CarpError) as exc:
            problems.append(str(exc))
            states[vip["address"]] = "UNKNOWN"
    return states, _linux_held(host, paths), host.exists(paths.ucarp_standby)


def _heartbeat(layout: dict, host: Host, paths: Paths, problems: list) -> tuple:
    rc, out, _err = host.run([paths.cl_status, "rscstatus"])
    rscstatus = out.strip()
    states = {}
    for vip in layout["vips"]:
        if rc != 0:
            # cl_status cannot reach heartbeat: it is not running here.
            states[vip["address"]] = "STOP"
        elif rscstatus == "transition":
            states[vip["address"]] = "TRANSITION"
        elif rscstatus in RSCSTATUS:
            held = heartbeat_holds(rscstatus, vip["owner"] == layout["node"])
            states[vip["address"]] = "MASTER" if held else "BACKUP"
        else:
            states[vip["address"]] = "UNKNOWN"
    if rc == 0 and rscstatus not in RSCSTATUS:
        problems.append(f"{paths.cl_status} rscstatus printed {rscstatus!r}, expected one of {', '.join(RSCSTATUS)}")
    return states, _linux_held(host, paths), None


def _pick_vhid(vhids: list, vrid: int, address: str, interface: str | None) -> dict | None:
    """The vhid entry of a VIP: the one carrying its address, else the one on the layout's interface."""
    matches = [entry for entry in vhids if entry["vhid"] == vrid]
    carrying = [entry for entry in matches if address in {_normal(a) for a in entry["addresses"]}]
    on_interface = [entry for entry in matches if entry["interface"] == interface]
    for group in (carrying, on_interface, matches):
        if group:
            return group[0]
    return None


def _carp(layout: dict, host: Host, paths: Paths, problems: list) -> tuple:
    rc, out, err = host.run([paths.ifconfig, "-a"])
    if rc != 0:
        raise VipInfoError(f"{paths.ifconfig} -a failed ({_detail(rc, out, err)}): cannot read the CARP state of this node")
    vhids = parse_ifconfig(out)["vhids"]
    states = {}
    for vip in layout["vips"]:
        entry = _pick_vhid(vhids, vip["vrid"], _normal(vip["address"]), layout["interface"])
        if entry is None:
            problems.append(f"{_label(vip, 'carp')}: ifconfig shows no vhid {vip['vrid']} on this node")
            states[vip["address"]] = "STOP"
        else:
            states[vip["address"]] = entry["state"]
    held = {_normal(a) for entry in vhids if entry["state"] == "MASTER" for a in entry["addresses"]}

    standby = None
    rc, out, err = host.run([paths.sysctl, "-n", DEMOTION_OID])
    if rc == 0:
        try:
            demotion = parse_sysctl(out, [DEMOTION_OID])[DEMOTION_OID]
            if not isinstance(demotion, int):
                raise CarpError(f"{DEMOTION_OID} is {demotion!r}, not a number")
            standby = demotion > 0
        except CarpError as exc:
            problems.append(f"cannot read the CARP demotion: {exc}")
    elif "unknown oid" not in err:
        problems.append(f"{paths.sysctl} -n {DEMOTION_OID} failed ({_detail(rc, out, err)})")
    # Otherwise FreeBSD 9, which has no demotion counter: standby unknown.
    return states, held, standby


READERS = {"keepalived": _keepalived, "ucarp": _ucarp, "heartbeat": _heartbeat, "carp": _carp}


# --- putting it together ---------------------------------------------------

def _label(vip: dict, backend: str) -> str:
    if vip["vrid"] is None:
        return vip["address"]
    return f"{vip['address']} ({'vhid' if backend in ('carp', 'ucarp') else 'vrid'} {vip['vrid']})"


def combine(layout: dict, states: dict, held: set, standby: bool | None, problems: list | None = None) -> dict:
    """The facts: each VIP with its state and whether it is held, and what does not add up.

    ``states`` maps each VIP address to its state, ``held`` is the set of
    addresses (normalised) this node holds. Problems: MASTER but the address
    is not held; the address held in any other state; keepalived MASTER in
    standby, or FAULT outside standby. States in TRANSITION or UNKNOWN are
    not compared with the addresses.
    """
    backend = layout["backend"]
    reporter = REPORTERS[backend]
    problems = list(problems or [])
    vips = []
    for vip in layout["vips"]:
        state = states[vip["address"]]
        is_held = _normal(vip["address"]) in held
        vips.append({
            "address": vip["address"],
            "vrid": vip["vrid"],
            "owner": vip["owner"],
            "state": state,
            "held": is_held,
            "priority": vip["priority"],
            "advskew": vip["advskew"],
        })
        label = _label(vip, backend)
        if state in ("TRANSITION", "UNKNOWN"):
            continue
        if state == "MASTER" and not is_held:
            problems.append(f"{label}: {reporter} reports MASTER but this node does not hold the address")
        elif state != "MASTER" and is_held:
            problems.append(f"{label}: this node holds the address but {reporter} reports {state}")
        if backend == "keepalived":
            # keepalived's standby switch puts every instance in FAULT on purpose.
            if state == "MASTER" and standby:
                problems.append(f"{label}: keepalived reports MASTER although the node is in maintenance standby")
            elif state == "FAULT" and standby is False:
                problems.append(f"{label}: keepalived reports FAULT (a tracked process or the interface is down) "
                                "and the node is not in maintenance standby")
    return {
        "backend": backend,
        "node": layout["node"],
        "standby": standby,
        "held": [vip["address"] for vip in vips if vip["held"]],
        "vips": vips,
        "problems": problems,
    }


def collect(host: Host, paths: Paths = Paths()) -> dict:
    """Read the layout, the backend and the addresses, and return the floatip_vips facts."""
    layout = read_layout(host, paths.layout)
    problems: list = []
    states, held, standby = READERS[layout["backend"]](layout, host, paths, problems)
    return combine(layout, states, held, standby, problems)
