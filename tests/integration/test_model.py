"""The cluster model, whole (plugins/module_utils/model.py): computed once, its defaults, one VIP set.

The expected layouts of the reference deployments are written out here from
the reference documents (a node's first VIP is taken over by its right-hand
neighbour in the ring, its second by its left-hand one), not computed by the
code under test.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import cluster, contract
from ansible_collections.floatip.ha.plugins.module_utils.inputs import InputError
from ansible_collections.floatip.ha.plugins.module_utils.model import cluster_model
from ansible_collections.floatip.ha.plugins.module_utils.vip_info import interface_of, layout_record, parse_layout

from conftest import ROOT, VENV_BIN, _ansible_inventory, _env

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


@cache
def inventory_model(name: str) -> dict:
    """The model of a reference inventory, as ansible-inventory reads it."""
    inventory = _ansible_inventory(INVENTORIES / name)
    nodes = inventory["floatip_nodes"]["hosts"]
    hostvars = inventory["_meta"]["hostvars"]
    first = hostvars[nodes[0]]
    return cluster_model(first["floatip_network"], [(node, hostvars[node]["floatip_address"]) for node in nodes],
                         vip_pool=first.get("floatip_vip_pool"), vips_per_node=first.get("floatip_vips_per_node"),
                         vip_backend=first.get("floatip_vip_backend"))


# VIP: (owner, the node that takes it over first), as the mail-ring reference
# lays them out: mail0N's first VIP goes right, its second goes left.
# Nodes by their place in the ring (1 to 5).
MAIL_RING = {
    "101": (1, 2), "102": (1, 5),
    "103": (2, 3), "104": (2, 1),
    "105": (3, 4), "106": (3, 2),
    "107": (4, 5), "108": (4, 3),
    "109": (5, 1), "110": (5, 4),
}


@pytest.mark.parametrize(("inventory", "prefix"), [("mail_ring", "192.0.2."), ("lab", "172.30.80.")])
def test_the_ring_is_laid_out_as_the_reference_says(inventory: str, prefix: str) -> None:
    model = inventory_model(inventory)
    place = {node["name"]: number for number, node in enumerate(model["nodes"], start=1)}
    got = {vip["address"]: (place[vip["order"][0]], place[vip["order"][1]]) for vip in model["layout"]["vips"]}
    assert got == {prefix + last: holders for last, holders in MAIL_RING.items()}
    assert [vip["vrid"] for vip in model["layout"]["vips"]] == list(range(1, 11))
    assert model["vips"] == [prefix + last for last in MAIL_RING] and model["spare"] == []


@pytest.mark.parametrize("place", [1, 2, 3, 4, 5])
def test_one_node_down_spreads_its_vips_over_two_neighbours(place: int) -> None:
    model = inventory_model("mail_ring")
    down = model["nodes"][place - 1]["name"]
    load: dict = {}
    for vip in model["layout"]["vips"]:
        holder = next(node for node in vip["order"] if node != down)
        load[holder] = load.get(holder, 0) + 1
    assert sorted(load.values()) == [2, 2, 3, 3]


def test_the_keepalived_pair_and_the_heartbeat_pair() -> None:
    pair = inventory_model("keepalived_pair")
    first, second = (node["name"] for node in pair["nodes"])
    assert [(vip["address"], vip["order"]) for vip in pair["layout"]["vips"]] == [
        ("172.30.84.101", [first, second]), ("172.30.84.102", [second, first])]
    web = inventory_model("web_front")
    assert web["vip_backend"] == "heartbeat" and web["layout"] is None and web["vrid_base"] is None
    assert web["vips"] == web["pool"] and web["spare"] == []


def test_the_defaults_are_cluster_pys() -> None:
    model = cluster_model("172.30.80.0/24", [("a", "172.30.80.11"), ("b", "172.30.80.12")], vip_pool=["172.30.80.101-172.30.80.102"])
    assert model["vip_backend"] == cluster.DEFAULT_VIP_BACKEND == "keepalived"
    assert model["vips_per_node"] == cluster.DEFAULT_VIPS_PER_NODE == 1
    assert model["vrid_base"] == cluster.DEFAULT_VRID_BASE == 1
    assert model["firewall"] is True and model["services"] == []
    assert model["paths"] == contract.PATHS


def test_spare_vips_are_neither_held_nor_served() -> None:
    model = cluster_model("172.30.80.0/24", [("a", "172.30.80.11"), ("b", "172.30.80.12")],
                          vip_pool=["172.30.80.101-172.30.80.104"], vips_per_node=1,
                          services=[{"name": "web", "mode": "http", "port": 80, "server_port": 5080}])
    assert model["pool"] == ["172.30.80.101", "172.30.80.102", "172.30.80.103", "172.30.80.104"]
    assert model["vips"] == ["172.30.80.101", "172.30.80.102"]
    assert model["spare"] == ["172.30.80.103", "172.30.80.104"]
    assert model["services"][0]["vips"] == model["vips"]
    with pytest.raises(InputError, match=r"haproxy_services\[0\] \(web\).vips 172.30.80.103 are not VIPs"):
        cluster_model("172.30.80.0/24", [("a", "172.30.80.11"), ("b", "172.30.80.12")], vip_pool=["172.30.80.101-172.30.80.104"],
                      services=[{"name": "web", "port": 80, "vips": ["172.30.80.103"]}])


def test_the_service_contract_holds_no_password() -> None:
    model = cluster_model("172.30.80.0/24", [("a", "172.30.80.11")], vip_pool=["172.30.80.101"], services=[
        {"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "basic-s3cr3t"}]}])
    assert model["services"][0]["auth_users"] == ["joe"]
    assert "basic-s3cr3t" not in repr(model)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"check_interval": 0}, "haproxy_check_interval must be a number above 0"),
        ({"hide_headers": ["Server\n"]}, r"haproxy_hide_response_headers\[0\] must be"),
        ({"vrid_base": 255}, "floating_ip_vrid_base 255 gives the 2 VIPs"),
        ({"vip_backend": "vrrpd"}, "floatip_vip_backend must be one of keepalived, carp, ucarp, heartbeat"),
    ],
)
def test_the_models_own_inputs_are_named_when_bad(changes: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        cluster_model("172.30.80.0/24", [("a", "172.30.80.11"), ("b", "172.30.80.12")], vip_pool=["172.30.80.101-172.30.80.102"],
                      **changes)


@pytest.mark.parametrize("inventory", ["mail_ring", "web_front"])
def test_the_layout_file_is_what_vip_info_reads(inventory: str) -> None:
    model = inventory_model(inventory)
    node = model["nodes"][1]["name"]
    record = layout_record(model, node, "em0")
    read = parse_layout(json.dumps(record))
    assert read["node"] == node and read["backend"] == model["vip_backend"] and read["interface"] == "em0"
    assert [vip["address"] for vip in read["vips"]] == model["vips"]
    if model["layout"]:
        # node2's own VIPs carry its top priority and no advskew.
        own = [vip for vip in read["vips"] if vip["owner"] == node]
        assert [vip["address"] for vip in own] == model["layout"]["nodes"][node]["owns"]
        assert {vip["advskew"] for vip in own} == {0}
    else:
        assert {vip["owner"] for vip in read["vips"]} == {model["nodes"][0]["name"]}


def test_the_interface_is_found_by_its_address() -> None:
    facts = {"interfaces": ["lo", "eth0", "br-x.1"],
             "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}},
             "eth0": {"device": "eth0", "ipv4": {"address": "172.30.80.11"}, "ipv6": [{"address": "fd00::11"}]},
             "br_x_1": {"device": "br-x.1", "ipv4": {"address": "10.0.0.1"}, "ipv4_secondaries": [{"address": "10.0.0.2"}]}}
    assert interface_of(facts, "172.30.80.11") == "eth0"
    assert interface_of(facts, "fd00:0::11") == "eth0"
    assert interface_of(facts, "10.0.0.2") == "br-x.1"
    assert interface_of(facts, "192.0.2.1") == ""


@pytest.mark.parametrize("inventory", sorted(path.name for path in INVENTORIES.iterdir() if (path / "hosts.yml").is_file()))
def test_site_names_an_absent_optional_group_without_a_warning(inventory: str) -> None:
    """floatip_nginx, floatip_postfix and floatip_config_repo are optional:
    a reference inventory without one gets no warning from any playbook."""
    for playbook in ["site.yml", *sorted(str(path) for path in (ROOT / "playbooks").glob("*.yml"))]:
        done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORIES / inventory), playbook, "--list-hosts"],
                              cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "[WARNING]" not in done.stdout + done.stderr, (playbook, done.stderr)
