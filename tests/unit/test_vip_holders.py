"""floatip.ha.vip_holders: the expected holders read back from the nodes' vip_info views."""

from __future__ import annotations

from itertools import combinations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.vip_layout import vip_holders
from ansible_collections.floatip.ha.plugins.module_utils.cluster import build_model
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout, holders

NET = "172.30.80.0/24"


def layout(n: int, k: int) -> dict:
    nodes = [(f"node{i}", f"172.30.80.{10 + i}") for i in range(1, n + 1)]
    pool = [f"172.30.80.{100 + i}" for i in range(1, n * k + 1)]
    return build_layout(build_model(NET, nodes, vip_pool=pool, vips_per_node=k, vip_backend="keepalived"))


def views(lay: dict, backend: str) -> dict:
    """What vip_info reports on every node of ``lay`` (the fields vip_holders reads)."""
    owners = {vip["address"]: vip["owner"] for vip in lay["vips"]}
    return {
        node: {
            "backend": backend,
            "node": node,
            "vips": [{**vip, "owner": owners[vip["address"]]} for vip in part["vips"]],
        }
        for node, part in lay["nodes"].items()
    }


@pytest.mark.parametrize("backend", ["keepalived", "ucarp", "carp"])
@pytest.mark.parametrize(("n", "k"), [(2, 1), (3, 1), (5, 2)])
def test_views_give_the_layouts_holders_for_every_failure_set(backend: str, n: int, k: int) -> None:
    lay = layout(n, k)
    seen = views(lay, backend)
    for size in range(n + 1):
        for failed in combinations(lay["nodes"], size):
            assert vip_holders(seen, list(failed)) == holders(lay, failed)


def test_a_priority_that_differs_from_the_layout_is_what_counts() -> None:
    lay = layout(3, 1)
    seen = views(lay, "keepalived")
    # node3 runs a config that gives it the top priority for node1's VIP.
    first = lay["vips"][0]["address"]
    for vip in seen["node3"]["vips"]:
        if vip["address"] == first:
            vip["priority"] = 250
    assert vip_holders(seen)[first] == "node3"
    assert vip_holders(seen, ["node3"])[first] == "node1"


def test_heartbeat_puts_the_owner_first() -> None:
    vip = {"address": "172.30.83.100", "vrid": None, "owner": "front1", "priority": None, "advskew": None}
    seen = {node: {"backend": "heartbeat", "node": node, "vips": [dict(vip)]} for node in ("front2", "front1")}
    assert vip_holders(seen) == {"172.30.83.100": "front1"}
    assert vip_holders(seen, ["front1"]) == {"172.30.83.100": "front2"}
    assert vip_holders(seen, ["front1", "front2"]) == {"172.30.83.100": None}


@pytest.mark.parametrize(("bad_views", "failed", "message"), [
    ({"node1": {"backend": "keepalived"}}, [], "the view of node1 must be vip_info's floatip_vips fact"),
    ({"node1": {"backend": "keepalived", "vips": [{"address": "172.30.80.101"}]}}, [], "priority"),
    (["node1"], [], "expected a mapping of node names"),
    ({}, "node1", "failed must be a list of node names"),
])
def test_bad_input_says_what_is_wrong(bad_views: object, failed: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        vip_holders(bad_views, failed)
