# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The VIP layout: who owns each VIP, who backs it up, in which order.

``build_layout`` takes the cluster model of ``cluster.build_model`` and
returns, for every VIP in use, its VRID (vhid), its owner, a preference order
over every node (owner first) and the VRRP priorities and CARP/ucarp
advskews that express that order; and for every node, what it owns and how
it takes part in every VIP.

Ownership is by blocks: node i of the ring owns VIPs i*k to i*k+k-1 of the
pool (k VIPs per node), and VIP number i gets VRID ``vrid_base + i``.
Appending a node to ``floatip_nodes`` and extending the pool therefore moves
no owner and renumbers no VRID.

The backup orders are chosen so that the VIPs of failed nodes spread evenly
over the survivors, for every set of failed nodes (``spread_orders``);
``ring_orders`` is the plain ring design they are measured against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import combinations
from math import comb

from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError

VRID_BASE_VAR = "floating_ip_vrid_base"
VRID_MIN = 1
VRID_MAX = 255
# Rank r in a VIP's order (0 for the owner) gets VRRP priority
# PRIORITY_TOP - PRIORITY_STEP * r and CARP/ucarp advskew ADVSKEW_STEP * r.
PRIORITY_TOP = 200
PRIORITY_STEP = 3
ADVSKEW_STEP = 3
# 64 nodes keep priorities within 11..200 and advskews within 0..189.
MAX_NODES = 64
# The most (VIP, candidate, failure set) evaluations the search may make
# (about 60 ms): enough to weigh every failure set of a cluster of up to 10
# nodes with up to 3 VIPs each; larger clusters weigh every failure set of up
# to search_depth() nodes.
SEARCH_BUDGET = 125000
# Cost of one VIP above a survivor's ideal share, against 1 for each VIP held.
EXCESS_WEIGHT = 100


def _ring_backups(n: int, owner: int, first_side: int) -> list[int]:
    """The other nodes by ring distance 1, 2, ..., each distance first on ``first_side``."""
    backups: list[int] = []
    seen = {owner}
    for distance in range(1, n):
        for side in (first_side, -first_side):
            node = (owner + side * distance) % n
            if node not in seen:
                seen.add(node)
                backups.append(node)
    return backups


@lru_cache(maxsize=64)
def _ring_index_orders(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    orders = []
    for owner in range(n):
        for j in range(k):
            backups = _ring_backups(n, owner, 1 if j % 2 == 0 else -1)
            shift = 2 * (j // 2) % len(backups) if backups else 0
            orders.append((owner, *backups[shift:], *backups[:shift]))
    return tuple(orders)


def search_depth(n: int, k: int) -> int:
    """The largest number of failed nodes whose every combination the search weighs.

    Every failure set of up to this many nodes is weighed; it is n - 1 (every
    failure set) while that fits in SEARCH_BUDGET evaluations, and at least 1
    (every single failure) when there are two nodes or more.
    """
    m = n * k
    depth = min(1, n - 1)
    for s in range(2, n):
        work = sum(m * (n - r) * sum(comb(n - r - 1, i) for i in range(s - r + 1)) for r in range(1, s + 1))
        if work > SEARCH_BUDGET:
            break
        depth = s
    return depth


@lru_cache(maxsize=64)
def _spread_index_orders(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    """Backup orders of the n*k VIPs (in ownership order) as node indexes.

    A greedy search, rank by rank: for rank 1, then rank 2, and so on, each
    VIP (the first VIP of every node in ring order, then the second VIP of
    every node, ...) takes as its next backup the node that costs least over
    every failure set in which that rank decides who holds the VIP (the
    failed sets that contain every node before it in the order). In each such
    set the node's load there (VIPs it already holds, plus this one) costs
    EXCESS_WEIGHT per VIP above the ideal share ceil(VIPs / survivors), plus
    1 per VIP held, so the search fills the least loaded survivors first and
    keeps every survivor at its ideal share where it can. Ties go to the
    node that comes first in the VIP's ring order. Ranks beyond
    search_depth(n, k) decide no weighed failure set and follow the ring
    order; there are none up to 10 nodes with up to 3 VIPs each.
    No randomness: the same (n, k) gives the same orders.
    """
    ring = _ring_index_orders(n, k)
    ring_rank = [{node: position for position, node in enumerate(order)} for order in ring]
    m = n * k
    depth = search_depth(n, k)
    ideal = [0] + [-(-m // (n - size)) for size in range(1, n)]
    # Loads of every weighed failure set, indexed by its bit mask: before any
    # backup is chosen, every survivor holds its own k VIPs.
    loads: dict[int, list[int]] = {}
    for size in range(1, depth + 1):
        for failed in combinations(range(n), size):
            mask = 0
            for node in failed:
                mask |= 1 << node
            loads[mask] = [0 if mask >> node & 1 else k for node in range(n)]
    orders = [[owner] for owner in range(n) for j in range(k)]
    sequence = [owner * k + j for j in range(k) for owner in range(n)]
    for rank in range(1, depth + 1):
        for vip in sequence:
            order = orders[vip]
            prefix = 0
            for node in order:
                prefix |= 1 << node
            rest = [node for node in range(n) if not prefix >> node & 1]
            cost = dict.fromkeys(rest, 0)
            sets = []
            for extra in range(min(depth - rank, len(rest) - 1) + 1):
                for more in combinations(rest, extra):
                    mask = prefix
                    for node in more:
                        mask |= 1 << node
                    row = loads[mask]
                    top = ideal[rank + extra]
                    sets.append((mask, row))
                    for node in rest:
                        if not mask >> node & 1:
                            held = row[node] + 1
                            cost[node] += held + EXCESS_WEIGHT * (held - top) if held > top else held
            best = min((cost[node], ring_rank[vip][node], node) for node in rest)[2]
            order.append(best)
            for mask, row in sets:
                if not mask >> best & 1:
                    row[best] += 1
    # No weighed failure set reaches the ranks after depth: they follow the ring.
    for vip, order in enumerate(orders):
        chosen = set(order)
        order.extend(node for node in ring[vip] if node not in chosen)
    return tuple(tuple(order) for order in orders)


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ModelError(f"floatip_vips_per_node must be a whole number of at least 1, got {k!r}")
    return k


def ring_orders(nodes: Sequence[str], k: int) -> list[list[str]]:
    """The ring design: backup orders of the len(nodes)*k VIPs, in ownership order.

    VIP j (0-based) of an owner: the owner, then the other nodes by ring
    distance 1, 2, ... taking the next node (+) first for even j and the
    previous one (-) first for odd j: owner+1, owner-1, owner+2, owner-2, ...
    and owner-1, owner+1, owner-2, owner+2, ... From the third VIP on that
    list of backups is rotated by 2 * (j // 2) places, so the third and
    fourth VIPs of an owner start one distance further out.
    """
    names = list(nodes)
    return [[names[i] for i in order] for order in _ring_index_orders(len(names), _check_k(k))]


def spread_orders(nodes: Sequence[str], k: int) -> list[list[str]]:
    """The layout's backup orders of the len(nodes)*k VIPs, in ownership order.

    See _spread_index_orders for how they are chosen.
    """
    names = list(nodes)
    return [[names[i] for i in order] for order in _spread_index_orders(len(names), _check_k(k))]


def priority(rank: int) -> int:
    """VRRP priority of the node at ``rank`` (0 for the owner) of a VIP's order."""
    return PRIORITY_TOP - PRIORITY_STEP * rank


def advskew(rank: int) -> int:
    """CARP/ucarp advskew of the node at ``rank`` (0 for the owner) of a VIP's order."""
    return ADVSKEW_STEP * rank


def _check_model(model: object) -> tuple[list[str], list[str], int]:
    if not isinstance(model, Mapping) or not all(
        isinstance(model.get(key), Sequence) and not isinstance(model.get(key), str) for key in ("nodes", "vips")
    ):
        raise ModelError(f"vip_layout takes the cluster model of floatip.ha.cluster_model, got {model!r}")
    if model.get("vip_backend") == "heartbeat":
        raise ModelError(
            "floatip_vip_backend heartbeat has no VIP layout: its primary node holds every VIP "
            "and the other takes them all over; there are no VRIDs, priorities or advskews to compute"
        )
    vips = [str(vip) for vip in model["vips"]]
    if not vips:
        raise ModelError("the cluster model has no VIPs: give floatip_vip_pool to lay VIPs out")
    names: list[str] = []
    for node in model["nodes"]:
        name = node.get("name") if isinstance(node, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ModelError(f"vip_layout takes the cluster model of floatip.ha.cluster_model; a node is {node!r}")
        if name in names:
            raise ModelError(f"floatip_nodes lists node {name} twice")
        names.append(str(name))
    if not names:
        raise ModelError("the group floatip_nodes is empty: list the cluster's nodes in it, in ring order")
    if len(names) > MAX_NODES:
        raise ModelError(
            f"floatip_nodes holds {len(names)} nodes; a VIP layout covers at most {MAX_NODES}, so that VRRP "
            f"priorities ({PRIORITY_TOP} - {PRIORITY_STEP} x rank) and advskews ({ADVSKEW_STEP} x rank) stay distinct and in range"
        )
    k = _check_k(model.get("vips_per_node"))
    if len(vips) < len(names) * k:
        raise ModelError(
            f"floatip_vip_pool holds {len(vips)} addresses but {len(names)} nodes with "
            f"floatip_vips_per_node {k} need {len(names) * k}"
        )
    return names, vips, k


def _check_vrid_base(vrid_base: object, count: int) -> int:
    low, high = VRID_MIN, VRID_MAX - count + 1
    if isinstance(vrid_base, bool) or not isinstance(vrid_base, int):
        raise ModelError(f"{VRID_BASE_VAR} must be a whole number from {low} to {high}, got {vrid_base!r}")
    if not low <= vrid_base <= high:
        raise ModelError(
            f"{VRID_BASE_VAR} {vrid_base} gives the {count} VIPs in use VRIDs {vrid_base} to {vrid_base + count - 1}, "
            f"but a VRID (vhid) must be from {VRID_MIN} to {VRID_MAX}: "
            + (f"use a {VRID_BASE_VAR} from {low} to {high}" if low <= high else f"{count} VIPs need more VRIDs than there are")
        )
    return vrid_base


def build_layout(model: object, vrid_base: object = 1) -> dict:
    """The VIP layout of a cluster model, as plain data (see vip_layout.yml)."""
    names, pool, k = _check_model(model)
    used = len(names) * k
    base = _check_vrid_base(vrid_base, used)
    orders = spread_orders(names, k)
    vips = []
    nodes: dict = {name: {"owns": [], "vips": []} for name in names}
    for index, (address, order) in enumerate(zip(pool, orders)):
        vrid = base + index
        vip = {
            "address": address,
            "vrid": vrid,
            "owner": order[0],
            "order": list(order),
            "priority": {name: priority(rank) for rank, name in enumerate(order)},
            "advskew": {name: advskew(rank) for rank, name in enumerate(order)},
        }
        vips.append(vip)
        nodes[order[0]]["owns"].append(address)
        for rank, name in enumerate(order):
            nodes[name]["vips"].append({
                "address": address,
                "vrid": vrid,
                "priority": priority(rank),
                "advskew": advskew(rank),
                "state": "MASTER" if rank == 0 else "BACKUP",
            })
    return {"vips": vips, "nodes": nodes, "spare": pool[used:]}


def holders(layout_or_orders: object, failed: Iterable[str]) -> dict:
    """Who holds each VIP while the nodes in ``failed`` are down.

    ``layout_or_orders`` is a layout from ``build_layout`` (keys: the VIP
    addresses), a mapping of VIP to order, or a list of orders such as
    ``ring_orders`` gives (keys: their positions). Each VIP goes to the first
    node of its order that is not in ``failed``; None when every node is.
    """
    if isinstance(layout_or_orders, Mapping) and "vips" in layout_or_orders and "nodes" in layout_or_orders:
        orders: Mapping = {vip["address"]: vip["order"] for vip in layout_or_orders["vips"]}
    elif isinstance(layout_or_orders, Mapping):
        orders = layout_or_orders
    else:
        orders = dict(enumerate(layout_or_orders))
    down = set(failed)
    return {vip: next((node for node in order if node not in down), None) for vip, order in orders.items()}


def view_orders(views: Mapping[str, Mapping]) -> dict:
    """Each VIP's order of nodes, read back from what the nodes run.

    ``views`` maps node names to their ``floatip_vips`` facts (the vip_info
    module). A VIP's order ranks the nodes by their keepalived priority
    (highest first), their CARP/ucarp advskew (lowest first), or, with
    heartbeat, the VIP's owner before the other node.
    """
    ranked: dict = {}
    for node, view in views.items():
        if not isinstance(view, Mapping) or not isinstance(view.get("vips"), list):
            raise ModelError(f"the view of {node} must be vip_info's floatip_vips fact, got {view!r}")
        backend = view.get("backend")
        for vip in view["vips"]:
            if backend == "keepalived":
                rank = -int(vip["priority"])
            elif backend in ("carp", "ucarp"):
                rank = int(vip["advskew"])
            else:
                rank = 0 if vip["owner"] == node else 1
            ranked.setdefault(vip["address"], []).append((rank, node))
    return {address: [node for _rank, node in sorted(entries)] for address, entries in ranked.items()}
