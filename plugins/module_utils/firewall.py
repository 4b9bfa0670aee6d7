# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The cluster's firewall: one nftables table of its own, computed from the model.

Each role that opens something on a node says who may reach it, as a *part*
of the firewall (the haproxy role: its servers' ports from the nodes only,
the stats page from the admin networks, the TCP runtime API from the node
itself; the VIP layer: VRRP or CARP from the nodes only; heartbeat: its UDP
port from the peer). The parts are kept on the node, one JSON file each, and
joined with the cluster's node addresses, admin networks and VIPs into one
table, ``inet floatip``, which is replaced in one nftables transaction.

The table never touches rules it does not own and never stops ssh: its
chain accepts by default and only drops or resets what a part names, and
only towards the node's own addresses (never a VIP: the services HAProxy
publishes on the VIPs stay open to every client). Loopback is never
filtered.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence

from ansible_collections.floatip.ha.plugins.module_utils.inputs import InputError, choice, items, mapping, port, text

TABLE = "floatip"
FAMILY = "inet"
# Who may reach what a rule names.
SOURCES = ("nodes", "admins", "local")
PROTOCOLS = {"vrrp": 112, "carp": 112}
_PART_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TEXT_RE = re.compile(r"[A-Za-z0-9 .,:;()'/_+-]{1,80}")


# The collection's one error type, by the name the firewall's callers know.
FirewallError = InputError


def _addresses(values: object, what: str) -> list:
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        raise FirewallError(f"{what} must be a list of IP addresses, got {values!r}")
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_address(value))
        except (TypeError, ValueError):
            raise FirewallError(f"{what}: {value!r} is not an IP address") from None
    return out


def _networks(values: object, what: str) -> list:
    if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
        raise FirewallError(f"{what} must be a list of networks in CIDR form, got {values!r}")
    out = []
    for value in values:
        if not isinstance(value, str):
            raise FirewallError(f"{what}: {value!r} is not a network in CIDR form")
        try:
            out.append(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise FirewallError(f"{what}: {value!r} is not a network in CIDR form ({exc})") from None
    return out


def _ports(values: object, what: str) -> list[int]:
    ports = [port(value, f"{what}[{index}]") for index, value in enumerate(items(values, what, "port numbers"))]
    if not ports:
        raise FirewallError(f"{what} must name at least one port")
    return sorted(set(ports))


def check_part(name: object, rules: object) -> list[dict]:
    """The rules of a part, checked and in a canonical form.

    Each rule names what it guards (``what``), who may reach it (``from``:
    nodes, admins or local) and one of: ``tcp`` or ``udp`` ports on the
    node's own addresses, or ``protocol`` (vrrp or carp, IP protocol 112)."""
    text(name, "part", "1-32 characters of a-z, 0-9 and _, starting with a letter", _PART_RE)
    checked = []
    for index, rule in enumerate(items(rules, f"rules of part {name}", "rules")):
        where = f"rules[{index}] of part {name}"
        mapping(rule, where, ("what", "from", "tcp", "udp", "protocol"), ("what", "from"))
        out = {"what": text(rule["what"], f"{where}.what", "1-80 plain characters saying what the rule guards", _TEXT_RE),
               "from": choice(rule["from"], SOURCES, f"{where}.from")}
        kinds = [key for key in ("tcp", "udp", "protocol") if key in rule]
        if len(kinds) != 1:
            raise FirewallError(f"{where} must have exactly one of tcp, udp and protocol")
        if kinds[0] == "protocol":
            out["protocol"] = choice(rule["protocol"], tuple(PROTOCOLS), f"{where}.protocol")
            if out["from"] == "local":
                raise FirewallError(f"{where}: protocol {rule['protocol']} comes from the nodes, not from local")
        else:
            out[kinds[0]] = _ports(rule[kinds[0]], f"{where}.{kinds[0]}")
        checked.append(out)
    return checked


def _elements(values: Iterable) -> str:
    return ", ".join(str(value) for value in values)


def _saddr(version: int) -> str:
    return "ip saddr" if version == 4 else "ip6 saddr"


def _daddr(version: int) -> str:
    return "ip daddr" if version == 4 else "ip6 daddr"


def _rule_lines(part: str, rule: Mapping, version: int, has_vips: bool) -> list[str]:
    comment = f'comment "{part}: {rule["what"]}"'
    saddr = _saddr(version)
    source = {"nodes": f"{saddr} != @nodes ", "admins": f"{saddr} != @admins ", "local": ""}[rule["from"]]
    if "protocol" in rule:
        return [f"meta l4proto {PROTOCOLS[rule['protocol']]} {source}drop {comment}"]
    # Only towards the node's own addresses: what HAProxy serves on the
    # VIPs, at the same port, stays open to every client.
    target = f"{_daddr(version)} != @vips " if has_vips else ""
    ports = "{ " + _elements(rule.get("tcp") or rule.get("udp")) + " }"
    if "tcp" in rule:
        return [f"{target}tcp dport {ports} {source}reject with tcp reset {comment}"]
    return [f"{target}udp dport {ports} {source}drop {comment}"]


def render(nodes: object, vips: object, admin_networks: object, parts: Mapping[str, object]) -> str:
    """The whole table as an nft script: it replaces the table in one transaction."""
    node_addresses = _addresses(nodes, "nodes")
    if not node_addresses:
        raise FirewallError("nodes must list the cluster's node addresses; it is empty")
    versions = {address.version for address in node_addresses}
    if len(versions) != 1:
        raise FirewallError(f"nodes mixes IPv4 and IPv6 addresses: {_elements(node_addresses)}")
    version = versions.pop()
    vip_addresses = _addresses(vips, "vips")
    admins = _networks(admin_networks, "admin_networks") if admin_networks else []
    for item in [*vip_addresses, *admins]:
        if item.version != version:
            raise FirewallError(f"{item} is not of the cluster's IP version {version}")
    checked = {name: check_part(name, rules) for name, rules in sorted(parts.items())}

    kind = "ipv4_addr" if version == 4 else "ipv6_addr"
    lines = [
        "#!/usr/sbin/nft -f",
        "# floatip.ha: the cluster's firewall, computed from the inventory's model.",
        "# Written by the floatip.ha.firewall module; edits are replaced.",
        f"table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
        f"    set nodes {{ type {kind}; elements = {{ {_elements(sorted(node_addresses))} }} }}",
    ]
    # The admin networks, or the nodes themselves when none are named.
    admin_elements = _elements(sorted(admins, key=lambda n: (int(n.network_address), n.prefixlen))) or _elements(sorted(node_addresses))
    lines.append(f"    set admins {{ type {kind}; flags interval; elements = {{ {admin_elements} }} }}")
    if vip_addresses:
        lines.append(f"    set vips {{ type {kind}; elements = {{ {_elements(sorted(vip_addresses))} }} }}")
    lines += [
        "    chain input {",
        "        type filter hook input priority filter - 10; policy accept;",
        '        iifname "lo" accept',
    ]
    for name, rules in checked.items():
        for rule in rules:
            lines += [f"        {line}" for line in _rule_lines(name, rule, version, bool(vip_addresses))]
    lines += ["    }", "}"]
    text = "\n".join(lines) + "\n"
    # The table carries its own digest, so a live table that is not this
    # text (flushed, edited, or lost at a reboot) is told apart.
    return text.replace(f"table {FAMILY} {TABLE} {{", f"table {FAMILY} {TABLE} {{\n    comment \"{digest(text)}\"", 1)


def digest(text: str) -> str:
    return "floatip " + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_live(text: str, listing: str) -> bool:
    """Whether ``nft list table`` output ``listing`` is the table of ``text``
    (by the digest its comment carries)."""
    found = re.search(r'comment "(floatip [0-9a-f]{16})"', text)
    return bool(found) and f'comment "{found.group(1)}"' in listing


def load_parts(texts: Mapping[str, str]) -> dict[str, list]:
    """Parts as kept on the node (``{name: JSON text}``), checked."""
    parts = {}
    for name, text in texts.items():
        try:
            rules = json.loads(text)
        except ValueError as exc:
            raise FirewallError(f"the kept part {name} is not JSON ({exc}); remove it and run the roles again") from None
        parts[name] = check_part(name, rules)
    return parts


def dump_part(rules: Sequence[Mapping]) -> str:
    return json.dumps(list(rules), indent=2, sort_keys=True) + "\n"
