# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The cluster model: the inventory's description of a cluster, checked.

The inventory describes a cluster once (its network, its nodes in order with
their own addresses, the VIP pool, VIPs per node, the VIP backend). Every
role reads the model through ``build_model``, which turns it into plain data
or raises ``ModelError`` with a message that names the variable at fault and
what is allowed, before anything on a host changes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from ansible_collections.floatip.ha.plugins.module_utils.inputs import InputError, source_networks, text

VIP_BACKENDS = ("keepalived", "carp", "ucarp", "heartbeat")

# The model's defaults, each written here and nowhere else: roles, playbooks
# and docs take them from the computed model (plugins/module_utils/model.py).
DEFAULT_VIP_BACKEND = "keepalived"  # floatip_vip_backend
DEFAULT_VIPS_PER_NODE = 1  # floatip_vips_per_node
DEFAULT_VRID_BASE = 1  # floating_ip_vrid_base
# A node's inventory name goes into keepalived's router_id, HAProxy's server
# lines and heartbeat's node lines, unquoted.
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")

# The collection's one error type, by the name the model's callers know.
ModelError = InputError


def _network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or "/" not in value:
        raise ModelError(f"floatip_network must be a network in CIDR form such as 192.0.2.0/24, got {value!r}")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ModelError(f"floatip_network {value!r} is not a valid network: {exc}") from None


def _address(value: object, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise ModelError(f"{what} must be an IP address string, got {value!r}")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ModelError(f"{what} {value!r} is not an IP address") from None


def _inside(net, addr, what: str) -> None:
    if addr.version != net.version or addr not in net:
        raise ModelError(f"{what} {addr} is outside floatip_network {net}")
    if net.num_addresses > 2 and addr in (net.network_address, net.broadcast_address):
        raise ModelError(f"{what} {addr} is the network or broadcast address of floatip_network {net}")


def _firewall(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise ModelError(f"floatip_firewall must be true (the collection keeps the cluster's firewall) or false (the operator does), got {value!r}")
    return value


def expand_pool(pool: object, net) -> list:
    """Addresses of a VIP pool given as a list of addresses and 'first-last' ranges."""
    if isinstance(pool, str) or not isinstance(pool, Iterable):
        raise ModelError(f"floatip_vip_pool must be a list of addresses or 'first-last' ranges, got {pool!r}")
    vips: list = []
    for item in pool:
        if isinstance(item, str) and "-" in item:
            first_s, last_s = (part.strip() for part in item.split("-", 1))
            first = _address(first_s, "floatip_vip_pool range start")
            last = _address(last_s, "floatip_vip_pool range end")
            if first.version != last.version or int(last) < int(first):
                raise ModelError(f"floatip_vip_pool range {item!r} must go from a lower to a higher address")
            if int(last) - int(first) >= 4096:
                raise ModelError(f"floatip_vip_pool range {item!r} holds more than 4096 addresses")
            vips.extend(ipaddress.ip_address(n) for n in range(int(first), int(last) + 1))
        else:
            vips.append(_address(item, "floatip_vip_pool entry"))
    for vip in vips:
        _inside(net, vip, "floatip_vip_pool entry")
    seen: set = set()
    for vip in vips:
        if vip in seen:
            raise ModelError(f"floatip_vip_pool lists {vip} more than once")
        seen.add(vip)
    return vips


def build_model(
    network: object,
    nodes: Iterable[tuple[str, object]],
    vip_pool: object = None,
    vips_per_node: object = None,
    vip_backend: object = None,
    firewall: object = None,
    admin_networks: object = None,
) -> dict:
    """Check the model and return it as plain data.

    ``nodes`` is the ordered list of (inventory name, floatip_address) of the
    cluster's nodes. The result holds the network, the nodes with their
    addresses, whether the collection keeps the cluster's firewall
    (``floatip_firewall``, on unless false), the admin networks and, when a
    pool is given, the VIPs in pool order.
    """
    net = _network(network)
    node_list = list(nodes)
    if not node_list:
        raise ModelError("the group floatip_nodes is empty: list the cluster's nodes in it, in ring order")
    by_address: dict = {}
    model_nodes = []
    for name, raw in node_list:
        text(name, "a node name in the group floatip_nodes",
             "1-64 letters, digits and _ . : -, starting with a letter or digit (it names the node in keepalived, HAProxy "
             "and heartbeat)", _NODE_NAME)
        if raw is None:
            raise ModelError(f"floatip_address is not set for node {name}: give every host in floatip_nodes its own address")
        addr = _address(raw, f"floatip_address of node {name}")
        _inside(net, addr, f"floatip_address of node {name}")
        if addr in by_address:
            raise ModelError(f"floatip_address {addr} is given to both {by_address[addr]} and {name}")
        by_address[addr] = name
        model_nodes.append({"name": name, "address": str(addr)})

    model: dict = {
        "network": str(net),
        "prefixlen": net.prefixlen,
        "ip_version": net.version,
        "nodes": model_nodes,
        "vips": [],
        "vips_per_node": None,
        "vip_backend": None,
        "firewall": _firewall(firewall),
        "admin_networks": [] if admin_networks is None else source_networks(admin_networks, "floatip_admin_networks"),
    }
    for admin in model["admin_networks"]:
        if ipaddress.ip_network(admin).version != net.version:
            raise ModelError(f"floatip_admin_networks: {admin} is not of floatip_network's IP version {net.version}")
    if vip_backend is None:
        vip_backend = DEFAULT_VIP_BACKEND
    if vip_backend is not None:
        if vip_backend not in VIP_BACKENDS:
            raise ModelError(f"floatip_vip_backend must be one of {', '.join(VIP_BACKENDS)}, got {vip_backend!r}")
        if vip_backend == "heartbeat" and len(model_nodes) != 2:
            raise ModelError(f"floatip_vip_backend heartbeat runs on exactly two nodes; floatip_nodes has {len(model_nodes)}")
        model["vip_backend"] = vip_backend
    if vip_pool is None:
        return model

    vips = expand_pool(vip_pool, net)
    for vip in vips:
        if vip in by_address:
            raise ModelError(f"floatip_vip_pool entry {vip} is the floatip_address of node {by_address[vip]}")
    if not vips:
        raise ModelError("floatip_vip_pool is empty: give at least one VIP")
    if vip_backend == "heartbeat":
        # One active node holds every VIP; there is no per-node share.
        if vips_per_node is not None:
            raise ModelError(
                "floatip_vips_per_node does not apply to floatip_vip_backend heartbeat, where the "
                "primary node holds every VIP of floatip_vip_pool; leave it unset"
            )
        model["vips"] = [str(vip) for vip in vips]
        return model
    if vips_per_node is None:
        vips_per_node = DEFAULT_VIPS_PER_NODE
    if isinstance(vips_per_node, bool) or not isinstance(vips_per_node, int) or vips_per_node < 1:
        raise ModelError(f"floatip_vips_per_node must be a whole number of at least 1, got {vips_per_node!r}")
    needed = len(model_nodes) * vips_per_node
    if len(vips) < needed:
        raise ModelError(
            f"floatip_vip_pool holds {len(vips)} addresses but {len(model_nodes)} nodes with "
            f"floatip_vips_per_node {vips_per_node} need {needed}"
        )
    model["vips"] = [str(vip) for vip in vips]
    model["vips_per_node"] = vips_per_node
    return model


def nodes_from_hostvars(names: Iterable[str], hostvars: Mapping) -> list[tuple[str, object]]:
    """(name, floatip_address) for each named host, None where unset."""
    return [(name, hostvars[name].get("floatip_address")) for name in names]
