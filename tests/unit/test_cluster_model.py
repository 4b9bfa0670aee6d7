"""The cluster model: what the inventory may say, and the errors it gets."""

from __future__ import annotations

import ipaddress

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.cluster_model import cluster_model
from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError, build_model, expand_pool

NET = "172.30.80.0/24"
NODES = [("node1", "172.30.80.11"), ("node2", "172.30.80.12"), ("node3", "172.30.80.13")]


def test_model_keeps_node_order_and_expands_ranges() -> None:
    model = build_model(NET, NODES, vip_pool=["172.30.80.101-172.30.80.105", "172.30.80.120"], vips_per_node=2,
                        vip_backend="keepalived")
    assert [n["name"] for n in model["nodes"]] == ["node1", "node2", "node3"]
    assert model["vips"] == ["172.30.80.101", "172.30.80.102", "172.30.80.103", "172.30.80.104",
                             "172.30.80.105", "172.30.80.120"]
    assert model["prefixlen"] == 24
    assert model["ip_version"] == 4
    assert model["vips_per_node"] == 2
    assert model["vip_backend"] == "keepalived"


def test_model_without_pool_has_no_vips() -> None:
    model = build_model(NET, NODES)
    assert model["vips"] == [] and model["vips_per_node"] is None and model["vip_backend"] == "keepalived"


def test_ipv6_network() -> None:
    model = build_model("2001:db8::/64", [("a", "2001:db8::1"), ("b", "2001:db8::2")],
                        vip_pool=["2001:db8::10-2001:db8::11"])
    assert model["vips"] == ["2001:db8::10", "2001:db8::11"]
    assert model["ip_version"] == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"network": "172.30.80.0"}, "floatip_network must be a network in CIDR form"),
        ({"network": "172.30.80.1/24"}, "floatip_network '172.30.80.1/24' is not a valid network"),
        ({"network": None}, "floatip_network must be a network in CIDR form"),
        ({"network": "172.30.80.0/24\n"}, "floatip_network '172.30.80.0/24\\n' is not a valid network"),
        ({"nodes": [("node 1", "172.30.80.11")]}, "a node name in the group floatip_nodes must be 1-64 letters, digits and _ . : -"),
        ({"nodes": [("node1\nrouter_id evil", "172.30.80.11")]}, "a node name in the group floatip_nodes must be 1-64 letters"),
        ({"nodes": [('node"1', "172.30.80.11")]}, "a node name in the group floatip_nodes must be"),
        ({"nodes": [("-node1", "172.30.80.11")]}, "a node name in the group floatip_nodes must be"),
        ({"nodes": [("node1", "172.30.80.11\n")]}, "floatip_address of node node1 '172.30.80.11\\n' is not an IP address"),
        ({"nodes": [("node1", 2887667723)]}, "floatip_address of node node1 must be an IP address string, got 2887667723"),
        ({"nodes": []}, "the group floatip_nodes is empty"),
        ({"nodes": [("node1", None)]}, "floatip_address is not set for node node1"),
        ({"nodes": [("node1", "172.30.81.11")]}, "floatip_address of node node1 172.30.81.11 is outside floatip_network"),
        ({"nodes": [("node1", "172.30.80.0")]}, "is the network or broadcast address"),
        ({"nodes": [("node1", "172.30.80.255")]}, "is the network or broadcast address"),
        ({"nodes": [("node1", "not-an-ip")]}, "floatip_address of node node1 'not-an-ip' is not an IP address"),
        ({"nodes": [("node1", "2001:db8::1")]}, "outside floatip_network"),
        ({"nodes": [("a", "172.30.80.11"), ("b", "172.30.80.11")]},
         "floatip_address 172.30.80.11 is given to both a and b"),
        ({"vip_backend": "vrrpd"}, "floatip_vip_backend must be one of keepalived, carp, ucarp, heartbeat"),
        ({"vip_backend": "heartbeat"}, "heartbeat runs on exactly two nodes; floatip_nodes has 3"),
        ({"vip_pool": "172.30.80.101"}, "floatip_vip_pool must be a list"),
        ({"vip_pool": ["172.30.80.101", "172.30.80.101"]}, "floatip_vip_pool lists 172.30.80.101 more than once"),
        ({"vip_pool": ["172.30.80.100-172.30.80.102", "172.30.80.101"]}, "lists 172.30.80.101 more than once"),
        ({"vip_pool": ["172.30.80.105-172.30.80.101"]}, "must go from a lower to a higher address"),
        ({"vip_pool": ["10.0.0.1"]}, "floatip_vip_pool entry 10.0.0.1 is outside floatip_network"),
        ({"vip_pool": ["172.30.80.12"]}, "floatip_vip_pool entry 172.30.80.12 is the floatip_address of node node2"),
        ({"vip_pool": ["172.30.80.101-172.30.80.106"], "vips_per_node": 0},
         "floatip_vips_per_node must be a whole number of at least 1"),
        ({"vip_pool": ["172.30.80.101-172.30.80.106"], "vips_per_node": True},
         "floatip_vips_per_node must be a whole number"),
        ({"vip_pool": ["172.30.80.101-172.30.80.105"], "vips_per_node": 2},
         "floatip_vip_pool holds 5 addresses but 3 nodes with floatip_vips_per_node 2 need 6"),
    ],
)
def test_bad_model_names_the_variable(kwargs: dict, message: str) -> None:
    args = {"network": NET, "nodes": NODES, **kwargs}
    with pytest.raises(ModelError) as err:
        build_model(args.pop("network"), args.pop("nodes"), **args)
    assert message in str(err.value)


def test_heartbeat_pair_holds_every_vip_on_the_primary() -> None:
    model = build_model(NET, NODES[:2], vip_pool=["172.30.80.100"], vip_backend="heartbeat")
    assert model["vips"] == ["172.30.80.100"]
    assert model["vips_per_node"] is None


def test_heartbeat_refuses_vips_per_node() -> None:
    with pytest.raises(ModelError, match="floatip_vips_per_node does not apply to floatip_vip_backend heartbeat"):
        build_model(NET, NODES[:2], vip_pool=["172.30.80.100"], vips_per_node=1, vip_backend="heartbeat")


def test_empty_pool_is_refused() -> None:
    with pytest.raises(ModelError, match="floatip_vip_pool is empty"):
        build_model(NET, NODES, vip_pool=[])


def test_huge_range_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(ModelError, match="more than 4096 addresses"):
        expand_pool(["10.0.0.1-10.255.255.254"], ipaddress.ip_network("10.0.0.0/8"))


def test_filter_reads_addresses_from_hostvars_in_node_order() -> None:
    hostvars = {"node2": {"floatip_address": "172.30.80.12"}, "node1": {"floatip_address": "172.30.80.11"}}
    model = cluster_model(NET, hostvars, ["node1", "node2"], vip_pool=["172.30.80.101-172.30.80.102"])
    assert model["nodes"] == [{"name": "node1", "address": "172.30.80.11"},
                              {"name": "node2", "address": "172.30.80.12"}]


def test_filter_error_is_an_ansible_error_with_the_message() -> None:
    with pytest.raises(AnsibleFilterError, match="floatip.ha cluster model: floatip_address is not set for node node1"):
        cluster_model(NET, {"node1": {}}, ["node1"])
