"""The common base: nodes reach each other, services can bind floating
addresses (and still can after a reboot), and bad input stops the role
before it changes anything."""

from __future__ import annotations

import ipaddress

import pytest
import testinfra

from conftest import docker, hostvars, hosts, model, refused_with_nothing_changed, wait_booted

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


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py. tcpdump is a package the role would
    # install if it got that far: its absence afterwards shows it did not.
    refused_with_nothing_changed(
        {"base_sysctls": {"net.core.somaxconn": "4096\nkernel.panic = 1"}, "base_extra_packages": ["tcpdump"]},
        "base_sysctls['net.core.somaxconn'] must be a number or a one-line string", NODES, "/etc/sysctl.d/60-floatip.conf")
    for node in NODES:
        assert not testinfra.get_host(f"docker://{node}").package("tcpdump").is_installed
