"""The cluster's firewall as the base lays it: its own table, loaded again at
every boot, and gone without a trace when the inventory leaves the firewall
to the operator. (What it keeps strangers from is proven by the cluster
scenario, where every role adds its part.)"""

from __future__ import annotations

import json

import testinfra

from conftest import ansible_playbook, docker, hostvars, hosts, model, wait_booted

NODES = hosts("floatip_nodes")
UNIT = "/etc/systemd/system/floatip-firewall.service"


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _table(node: str) -> str:
    return _host(node).check_output("nft list table inet floatip")


def test_every_node_has_the_table_with_the_clusters_nodes_and_vips() -> None:
    cluster = model()
    for node in NODES:
        table = _table(node)
        assert "comment \"floatip " in table and 'iifname "lo" accept' in table
        for each in cluster["nodes"]:
            assert each["address"] in table.split("set admins")[0]
        assert all(vip in table for vip in cluster["vips"])
        # Its own table beside the host's (Docker's nat for its DNS here),
        # which still resolves the peers' names (test_base.py).
        tables = _host(node).check_output("nft list tables").splitlines()
        assert tables.count("table inet floatip") == 1 and len(tables) > 1, tables


def test_the_table_is_back_after_a_reboot() -> None:
    node = NODES[1]
    before = _table(node)
    docker("restart", node)
    wait_booted(node)
    assert _table(node) == before
    assert _host(node).service("floatip-firewall").is_enabled


def test_without_the_firewall_nothing_of_it_is_left_and_it_comes_back() -> None:
    node = NODES[2]
    off = ansible_playbook("converge.yml", "-l", node, "-e", json.dumps({"floatip_firewall": False}))
    assert off["rc"] == 0, off["failures"]
    assert off["changed"] > 0
    host = _host(node)
    assert host.run("nft list table inet floatip").rc != 0
    assert not host.file(UNIT).exists
    assert not host.file("/etc/floatip/firewall/floatip.nft").exists
    again = ansible_playbook("converge.yml", "-l", node, "-e", json.dumps({"floatip_firewall": False}))
    assert again["rc"] == 0 and again["changed"] == 0, again["failures"]
    on = ansible_playbook("converge.yml", "-l", node)
    assert on["rc"] == 0, on["failures"]
    assert hostvars(node)["floatip_address"] in _table(node)
    assert host.file(UNIT).exists and host.file("/etc/floatip/firewall/floatip.nft").mode == 0o600
