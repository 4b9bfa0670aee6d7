"""The common base: nodes reach each other, services can bind floating
addresses (and still can after a reboot), and bad input stops the role
before it changes anything."""

from __future__ import annotations

import ipaddress
import json

import pytest
import testinfra

from conftest import ansible_playbook, docker, hostvars, hosts, model, wait_booted

NODES = hosts("floatip_nodes")
testinfra_hosts = NODES


def _unused_address() -> str:
    """An address of the cluster network that is neither a node's nor a VIP."""
    cluster = model()
    taken = {node["address"] for node in cluster["nodes"]} | set(cluster["vips"])
    network = ipaddress.ip_network(cluster["network"])
    return next(str(a) for a in reversed(list(network.hosts())) if str(a) not in taken)


def test_there_are_at_least_three_nodes() -> None:
    assert len(NODES) >= 3


@pytest.mark.parametrize("peer", NODES)
def test_node_reaches_every_peer_by_address_and_name(host, peer: str) -> None:
    address = hostvars(peer)["floatip_address"]
    assert host.run(f"ping -c 1 -W 2 {address}").rc == 0
    by_name = host.run(f"ping -c 1 -W 2 {peer}")
    assert by_name.rc == 0
    assert f"({address})" in by_name.stdout


def test_node_holds_its_model_address(host) -> None:
    address = hostvars(host.backend.get_hostname())["floatip_address"]
    assert address in host.interface.default().addresses


@pytest.mark.parametrize("package", ["iproute2", "iptables", "iputils-arping", "curl", "socat"])
def test_tools_the_cluster_uses_are_installed(host, package: str) -> None:
    assert host.package(package).is_installed


BIND_AND_SERVE = (
    "import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind((sys.argv[1], 8999)); s.listen(); print(s.getsockname()[0])"
)


def test_service_binds_an_address_the_node_does_not_hold(host) -> None:
    vip = _unused_address()
    assert vip not in host.interface.default().addresses
    result = host.run(f"python3 -c '{BIND_AND_SERVE}' {vip}")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == vip


def test_nonlocal_bind_survives_a_reboot() -> None:
    node = NODES[0]
    docker("restart", node)
    wait_booted(node)
    again = testinfra.get_host(f"docker://{node}")
    assert again.sysctl("net.ipv4.ip_nonlocal_bind") == 1
    result = again.run(f"python3 -c '{BIND_AND_SERVE}' {_unused_address()}")
    assert result.rc == 0, result.stderr


def _bad_inputs() -> list:
    first, last = NODES[0], NODES[-1]
    first_address = hostvars(first)["floatip_address"]
    return [
        ({"floatip_network": "10.99.0.0/24"}, f"floatip_address of node {first} {first_address} is outside floatip_network 10.99.0.0/24"),
        ({"floatip_vip_pool": [hostvars(last)["floatip_address"]]}, f"is the floatip_address of node {last}"),
        ({"floatip_vips_per_node": 50}, f"{len(NODES)} nodes with floatip_vips_per_node 50 need {len(NODES) * 50}"),
        ({"base_sysctls": {"net.core.somaxconn": [1]}}, "base_sysctls must map setting names to values"),
        ({"base_packages": {"curl": "latest"}}, "base_packages"),
    ]


@pytest.mark.parametrize(("extra_vars", "message"), _bad_inputs())
def test_bad_input_stops_before_anything_changes(extra_vars: dict, message: str) -> None:
    # A package the role would install if it got that far: its absence
    # afterwards shows that nothing was changed.
    run = ansible_playbook("converge.yml", "-e", json.dumps({**extra_vars, "base_extra_packages": ["tcpdump"]}))
    assert run["rc"] != 0
    assert run["failures"], "the run failed without a failed task"
    assert all(message in failure for failure in run["failures"]), run["failures"]
    assert run["changed"] == 0
    for node in NODES:
        assert not testinfra.get_host(f"docker://{node}").package("tcpdump").is_installed
