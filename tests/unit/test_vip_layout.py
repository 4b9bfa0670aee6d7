"""The VIP layout: ownership, VRIDs, priorities, and how failed nodes' VIPs spread."""

from __future__ import annotations

import time
from collections import Counter
from functools import lru_cache
from itertools import combinations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.vip_layout import vip_layout
from ansible_collections.floatip.ha.plugins.module_utils import layout as layout_mod
from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError, build_model
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout, holders, ring_orders, spread_orders

NET = "172.30.80.0/24"
SIZES = [(n, k) for n in range(2, 9) for k in range(1, 4)]


def names(n: int) -> list[str]:
    return [f"node{i}" for i in range(1, n + 1)]


def model(n: int, k: int, extra: int = 0, backend: str | None = "keepalived") -> dict:
    nodes = [(name, f"172.30.80.{10 + i}") for i, name in enumerate(names(n), start=1)]
    pool = [f"172.30.80.{100 + i}" for i in range(1, n * k + extra + 1)]
    return build_model(NET, nodes, vip_pool=pool, vips_per_node=k, vip_backend=backend)


@lru_cache(maxsize=None)
def failure_loads(design: str, n: int, k: int) -> dict[frozenset, tuple[int, int]]:
    """For every failure set: (most VIPs held by one survivor, ideal share); counted here, not by layout.py."""
    if design == "ours":
        orders = [vip["order"] for vip in build_layout(model(n, k))["vips"]]
    else:
        orders = ring_orders(names(n), k)
    result = {}
    for size in range(1, n):
        for failed in combinations(names(n), size):
            held = holders(orders, set(failed))
            assert all(node is not None and node not in failed for node in held.values()), (design, failed, held)
            assert len(held) == n * k
            result[frozenset(failed)] = (max(Counter(held.values()).values()), -(-n * k // (n - size)))
    return result


def excess(design: str, n: int, k: int) -> dict[frozenset, int]:
    return {failed: most - ideal for failed, (most, ideal) in failure_loads(design, n, k).items()}


def test_lab_layout() -> None:
    layout = vip_layout(model(5, 2))
    assert [(v["address"], v["vrid"], v["owner"]) for v in layout["vips"]] == [
        (f"172.30.80.{100 + i}", i, f"node{(i + 1) // 2}") for i in range(1, 11)
    ]
    # Pinned: a change of the search shows here first.
    assert [v["order"] for v in layout["vips"]] == [
        ["node1", "node2", "node4", "node5", "node3"],
        ["node1", "node5", "node2", "node4", "node3"],
        ["node2", "node3", "node5", "node1", "node4"],
        ["node2", "node1", "node3", "node5", "node4"],
        ["node3", "node4", "node1", "node2", "node5"],
        ["node3", "node2", "node4", "node1", "node5"],
        ["node4", "node5", "node2", "node3", "node1"],
        ["node4", "node3", "node5", "node2", "node1"],
        ["node5", "node1", "node3", "node4", "node2"],
        ["node5", "node4", "node1", "node3", "node2"],
    ]
    first = layout["vips"][0]
    assert first["priority"] == {"node1": 200, "node2": 197, "node4": 194, "node5": 191, "node3": 188}
    assert first["advskew"] == {"node1": 0, "node2": 3, "node4": 6, "node5": 9, "node3": 12}
    assert layout["nodes"]["node3"]["owns"] == ["172.30.80.105", "172.30.80.106"]
    assert layout["nodes"]["node1"]["vips"][2] == {
        "address": "172.30.80.103", "vrid": 3, "priority": 191, "advskew": 9, "state": "BACKUP",
    }
    assert layout["spare"] == []


def test_spare_addresses_are_listed_and_not_laid_out() -> None:
    layout = build_layout(model(3, 2, extra=3), vrid_base=40)
    assert layout["spare"] == ["172.30.80.107", "172.30.80.108", "172.30.80.109"]
    assert [v["address"] for v in layout["vips"]] == [f"172.30.80.{100 + i}" for i in range(1, 7)]
    assert [v["vrid"] for v in layout["vips"]] == list(range(40, 46))
    for node in layout["nodes"].values():
        assert [v["address"] for v in node["vips"]] == [v["address"] for v in layout["vips"]]


@pytest.mark.parametrize(("n", "k"), SIZES)
def test_orders_are_full_and_owner_first(n: int, k: int) -> None:
    layout = build_layout(model(n, k))
    for index, vip in enumerate(layout["vips"]):
        assert vip["owner"] == names(n)[index // k]
        assert vip["order"][0] == vip["owner"]
        assert sorted(vip["order"]) == sorted(names(n))
    for order in ring_orders(names(n), k):
        assert sorted(order) == sorted(names(n))


@pytest.mark.parametrize(("n", "k"), SIZES)
def test_priorities_advskews_and_states_follow_the_order(n: int, k: int) -> None:
    layout = build_layout(model(n, k))
    for vip in layout["vips"]:
        priorities = [vip["priority"][node] for node in vip["order"]]
        advskews = [vip["advskew"][node] for node in vip["order"]]
        assert set(vip["priority"]) == set(vip["advskew"]) == set(names(n))
        assert all(1 <= p <= 254 for p in priorities) and all(0 <= a <= 254 for a in advskews)
        assert all(a > b for a, b in zip(priorities, priorities[1:])), priorities
        assert advskews[0] == 0 and all(a < b for a, b in zip(advskews, advskews[1:])), advskews
    for name, node in layout["nodes"].items():
        assert node["owns"] == [v["address"] for v in layout["vips"] if v["owner"] == name]
        for entry, vip in zip(node["vips"], layout["vips"]):
            assert entry == {
                "address": vip["address"], "vrid": vip["vrid"], "priority": vip["priority"][name],
                "advskew": vip["advskew"][name], "state": "MASTER" if vip["owner"] == name else "BACKUP",
            }


@pytest.mark.parametrize(("n", "k"), SIZES)
def test_vrids_are_unique_and_in_range(n: int, k: int) -> None:
    for base in (1, 256 - n * k):
        vrids = [v["vrid"] for v in build_layout(model(n, k, extra=2), vrid_base=base)["vips"]]
        assert vrids == list(range(base, base + n * k))
        assert min(vrids) >= 1 and max(vrids) <= 255


def test_priorities_stay_in_range_for_64_nodes() -> None:
    nodes = [(f"n{i}", f"10.0.0.{i}") for i in range(1, 65)]
    layout = build_layout(build_model("10.0.0.0/24", nodes, vip_pool=["10.0.0.101-10.0.0.228"], vips_per_node=2))
    last = layout["vips"][-1]
    assert sorted(last["priority"].values()) == list(range(11, 201, 3))
    assert sorted(last["advskew"].values()) == list(range(0, 190, 3))


@pytest.mark.parametrize(("n", "k"), SIZES)
def test_ours_is_never_worse_than_the_ring(n: int, k: int) -> None:
    ours, ring = excess("ours", n, k), excess("ring", n, k)
    assert len(ours) == 2 ** n - 2
    worse = {tuple(sorted(failed)): (ours[failed], ring[failed]) for failed in ours if ours[failed] > ring[failed]}
    assert worse == {}
    # At most one VIP above the ideal share on any survivor, whatever fails.
    assert max(ours.values()) <= 1


@pytest.mark.parametrize(("n", "k"), [(n, k) for n, k in SIZES if n <= 5])
def test_ideal_for_every_failure_set_up_to_five_nodes(n: int, k: int) -> None:
    assert sum(excess("ours", n, k).values()) == 0
    if (n, k) != (5, 3):
        assert sum(excess("ring", n, k).values()) == 0


def test_the_ring_is_not_ideal_for_five_nodes_with_three_vips() -> None:
    # Its third VIP cannot be fitted to the alternating first two: whenever two
    # neighbours fail, one survivor holds 6 VIPs where 5 each would do.
    ring = excess("ring", 5, 3)
    assert sorted(tuple(sorted(f)) for f, e in ring.items() if e) == [
        ("node1", "node2"), ("node1", "node5"), ("node2", "node3"), ("node3", "node4"), ("node4", "node5"),
    ]
    assert failure_loads("ring", 5, 3)[frozenset({"node1", "node2"})] == (6, 5)


@pytest.mark.parametrize(("n", "k"), [(n, k) for n, k in SIZES if n >= 6])
def test_ours_beats_the_ring_above_five_nodes(n: int, k: int) -> None:
    ours, ring = excess("ours", n, k), excess("ring", n, k)
    assert sum(ring.values()) > 0
    assert sum(ours.values()) < sum(ring.values())
    assert sum(1 for e in ours.values() if e) < sum(1 for e in ring.values() if e)


@pytest.mark.parametrize(("n", "k"), [(9, 1), (9, 2), (9, 3), (10, 1), (10, 3)])
def test_ours_is_never_worse_than_the_ring_up_to_ten_nodes(n: int, k: int) -> None:
    ours, ring = excess("ours", n, k), excess("ring", n, k)
    assert all(ours[failed] <= ring[failed] for failed in ours)
    assert sum(ours.values()) < sum(ring.values())


@pytest.mark.parametrize(("n", "k"), SIZES)
def test_one_failed_node_spreads_its_vips(n: int, k: int) -> None:
    layout = build_layout(model(n, k))
    for failed in names(n):
        held = holders(layout, {failed})
        takers = [held[address] for address in layout["nodes"][failed]["owns"]]
        assert len(set(takers)) == min(k, n - 1), (failed, takers)
        assert all(held[v["address"]] == v["owner"] for v in layout["vips"] if v["owner"] != failed)


# Appending node n+1 (and k VIPs to the pool): for the n*k existing VIPs, how
# many see the relative order of the existing nodes change, and how many see
# a priority (or advskew) of an existing node change.
APPEND_CHANGES = {
    (2, 1): (0, 1), (3, 1): (1, 2), (4, 1): (2, 3), (5, 1): (3, 5), (6, 1): (4, 5), (7, 1): (6, 7),
    (2, 2): (0, 2), (3, 2): (2, 4), (4, 2): (4, 7), (5, 2): (8, 10), (6, 2): (8, 12), (7, 2): (14, 14),
    (2, 3): (0, 3), (3, 3): (3, 7), (4, 3): (6, 11), (5, 3): (12, 15), (6, 3): (18, 18), (7, 3): (21, 21),
}


@pytest.mark.parametrize(
    ("n", "k", "orders_changed", "priorities_changed"),
    [(n, k, *changes) for (n, k), changes in APPEND_CHANGES.items()],
    ids=[f"{n}to{n + 1}nodes-k{k}-{o}of{n * k}orders-{p}of{n * k}priorities" for (n, k), (o, p) in APPEND_CHANGES.items()],
)
def test_appending_a_node(n: int, k: int, orders_changed: int, priorities_changed: int) -> None:
    before = build_layout(model(n, k, extra=k))
    after = build_layout(model(n + 1, k))
    old = {v["address"]: v for v in before["vips"]}
    assert before["spare"] == after["nodes"][f"node{n + 1}"]["owns"]
    assert [v["address"] for v in after["vips"][: n * k]] == list(old)
    orders = priorities = 0
    for vip in after["vips"][: n * k]:
        was = old[vip["address"]]
        assert (vip["owner"], vip["vrid"]) == (was["owner"], was["vrid"])
        orders += [node for node in vip["order"] if node in was["priority"]] != was["order"]
        priorities += any(vip["priority"][node] != p for node, p in was["priority"].items())
    assert (orders, priorities) == (orders_changed, priorities_changed)


def test_the_search_is_deterministic_and_fast() -> None:
    first = spread_orders(names(8), 3)
    layout_mod._spread_index_orders.cache_clear()
    start = time.perf_counter()
    again = spread_orders(names(8), 3)
    took = time.perf_counter() - start
    assert again == first
    assert took < 0.5, f"8 nodes with 3 VIPs each took {took:.3f}s"


def test_holders() -> None:
    orders = {"a": ["n1", "n2", "n3"], "b": ["n2", "n3", "n1"]}
    assert holders(orders, set()) == {"a": "n1", "b": "n2"}
    assert holders(orders, {"n1", "n2"}) == {"a": "n3", "b": "n3"}
    assert holders(orders, {"n1", "n2", "n3"}) == {"a": None, "b": None}
    assert holders([["n1", "n2"], ["n2", "n1"]], {"n2"}) == {0: "n1", 1: "n1"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vrid_base": 252}, "floating_ip_vrid_base 252 gives the 6 VIPs in use VRIDs 252 to 257, but a VRID (vhid) "
                             "must be from 1 to 255: use a floating_ip_vrid_base from 1 to 250"),
        ({"vrid_base": 0}, "floating_ip_vrid_base 0 gives the 6 VIPs in use VRIDs 0 to 5, but"),
        ({"vrid_base": -3}, "floating_ip_vrid_base -3 gives the 6 VIPs in use VRIDs -3 to 2, but"),
        ({"vrid_base": "1"}, "floating_ip_vrid_base must be a whole number from 1 to 250, got '1'"),
        ({"vrid_base": True}, "floating_ip_vrid_base must be a whole number"),
    ],
)
def test_vrid_base_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ModelError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        build_layout(model(3, 2), **kwargs)


def test_highest_vrid_base_is_accepted() -> None:
    assert build_layout(model(3, 2), vrid_base=250)["vips"][-1]["vrid"] == 255


@pytest.mark.parametrize(
    ("layout_model", "message"),
    [
        (build_model(NET, [("a", "172.30.80.11"), ("b", "172.30.80.12")], vip_pool=["172.30.80.101"],
                     vip_backend="heartbeat"),
         "floatip_vip_backend heartbeat has no VIP layout"),
        (build_model(NET, [("a", "172.30.80.11"), ("b", "172.30.80.12")]), "the cluster model has no VIPs"),
        ({"nodes": [], "vips": ["172.30.80.101"], "vips_per_node": 1}, "the group floatip_nodes is empty"),
        ("172.30.80.0/24", "vip_layout takes the cluster model of floatip.ha.cluster_model"),
        ({"nodes": [{"name": "a"}], "vips": "172.30.80.101", "vips_per_node": 1}, "vip_layout takes the cluster model"),
        ({"nodes": ["a"], "vips": ["172.30.80.101"], "vips_per_node": 1}, "vip_layout takes the cluster model of .*; a node is 'a'"),
        ({"nodes": [{"name": "a"}], "vips": ["172.30.80.101"], "vips_per_node": 0}, "floatip_vips_per_node must be a whole number"),
        ({"nodes": [{"name": "a"}, {"name": "a"}], "vips": ["172.30.80.101", "172.30.80.102"], "vips_per_node": 1},
         "floatip_nodes lists node a twice"),
        ({"nodes": [{"name": "a"}], "vips": ["172.30.80.101"], "vips_per_node": 2},
         "floatip_vip_pool holds 1 addresses but 1 nodes with floatip_vips_per_node 2 need 2"),
        (build_model("10.0.0.0/24", [(f"n{i}", f"10.0.0.{i}") for i in range(1, 66)], vip_pool=["10.0.0.101-10.0.0.170"]),
         "floatip_nodes holds 65 nodes; a VIP layout covers at most 64"),
    ],
)
def test_model_errors(layout_model: object, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build_layout(layout_model)


def test_filter_wraps_errors() -> None:
    with pytest.raises(AnsibleFilterError, match="^floatip.ha vip_layout: floating_ip_vrid_base 255 gives the 6 VIPs in use VRIDs 255 to 260"):
        vip_layout(model(3, 2), vrid_base=255)
    with pytest.raises(AnsibleFilterError, match="^floatip.ha vip_layout: floatip_vip_backend heartbeat has no VIP layout"):
        vip_layout(build_model(NET, [("a", "172.30.80.11"), ("b", "172.30.80.12")], vip_pool=["172.30.80.101"],
                               vip_backend="heartbeat"))
    assert vip_layout(model(2, 1))["vips"][1]["order"] == ["node2", "node1"]
