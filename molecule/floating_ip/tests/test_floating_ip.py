"""The keepalived ring as its clients and its operators see it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
import pytest
import testinfra
from floatip_testing import client_script

from conftest import (EPHEMERAL_DIR, check_diff, client_waits_for, converge, docker, frozen, holders, holders_of, hostvars, hosts,
                      model, move, refused_with_nothing_changed, settles_as, vip_info)
from conftest import stranger as stranger_host

from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout
from ansible_collections.floatip.ha.plugins.module_utils.layout import holders as layout_holders

NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
PORT = int(hostvars(NODES[0])["whoami_port"])
LAYOUT = build_layout(model())
VIPS = [vip["address"] for vip in LAYOUT["vips"]]
OWNS = {node: LAYOUT["nodes"][node]["owns"] for node in NODES}
# The conservative profile: a backup takes over after three missed
# advertisements of one second plus its skew; allow for the gratuitous ARP
# and a busy machine.
TAKEOVER = 3 * 1 + 1 + 4
# Run on the stranger: forged VRRP adverts.
ADVERTS = client_script("vrrp_adverts.py")


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _events(node: str) -> list[str]:
    """What the notify hook of prepare.yml logged on a node, oldest first."""
    return _host(node).run("cat /var/log/vip-events 2>/dev/null").stdout.splitlines()


def _where() -> dict[str, list[str]]:
    return holders_of(VIPS, NODES)


def _settles_as(expected: dict[str, str], timeout: float) -> None:
    settles_as(expected, NODES, timeout)


def _move(action: str, node: str) -> dict:
    return move(action, node)


def _layout_with(failed: set[str]) -> dict[str, str]:
    return layout_holders(LAYOUT, failed)


@pytest.fixture
def ring_in_layout():
    """Each check starts and ends with every node up and every VIP on its owner."""
    for node in NODES:
        _host(node).run("systemctl start haproxy")
    _settles_as(_layout_with(set()), timeout=TAKEOVER * 2)
    yield
    for node in NODES:
        _host(node).run("systemctl start haproxy")


def test_every_vip_is_held_by_its_owner_alone_and_answers(ring_in_layout: None) -> None:
    for node in NODES:
        for vip in OWNS[node]:
            assert holders(vip, NODES) == [node]
            client_waits_for(CLIENT, vip, PORT, node, timeout=5)


def test_vip_info_reports_what_each_node_holds(ring_in_layout: None) -> None:
    facts = vip_info()
    assert sorted(facts) == sorted(NODES)
    for node in NODES:
        mine = facts[node]
        assert mine["backend"] == "keepalived" and mine["standby"] is False
        assert sorted(mine["held"]) == sorted(OWNS[node])
        states = {vip["address"]: vip["state"] for vip in mine["vips"]}
        assert states == {vip: "MASTER" if vip in OWNS[node] else "BACKUP" for vip in VIPS}
        assert mine["problems"] == []


@pytest.mark.parametrize("victim", [NODES[0], NODES[2]])
def test_a_frozen_nodes_vips_go_where_the_layout_says_and_come_back(ring_in_layout: None, victim: str) -> None:
    expected = _layout_with({victim})
    # The survivors share the victim's VIPs: no two on one node.
    assert len({expected[vip] for vip in OWNS[victim]}) == len(OWNS[victim])
    events = {node: _events(node) for node in NODES if node != victim}
    with frozen(victim):
        for vip in OWNS[victim]:
            client_waits_for(CLIENT, vip, PORT, expected[vip], timeout=TAKEOVER)
        _settles_as(expected, timeout=TAKEOVER)
        # The notify hook heard of it on each new holder.
        for vip in OWNS[victim]:
            vrid = next(each["vrid"] for each in LAYOUT["vips"] if each["address"] == vip)
            assert f"{vip} {vrid} MASTER" in _events(expected[vip])[len(events[expected[vip]]):]
    # preempt: the thawed owner takes its VIPs back, and only it holds them.
    for vip in OWNS[victim]:
        client_waits_for(CLIENT, vip, PORT, victim, timeout=TAKEOVER)
    _settles_as(_layout_with(set()), timeout=TAKEOVER)


def test_two_frozen_neighbours_leave_no_vip_unserved(ring_in_layout: None) -> None:
    victims = {NODES[1], NODES[2]}
    expected = _layout_with(victims)
    with frozen(NODES[1]), frozen(NODES[2]):
        _settles_as(expected, timeout=TAKEOVER * 2)
        for vip in VIPS:
            client_waits_for(CLIENT, vip, PORT, expected[vip], timeout=5)
    _settles_as(_layout_with(set()), timeout=TAKEOVER * 2)


def test_a_node_without_haproxy_gives_its_vips_away(ring_in_layout: None) -> None:
    victim = NODES[3]
    _host(victim).run("systemctl stop haproxy")
    _settles_as(_layout_with({victim}), timeout=TAKEOVER)
    _host(victim).run("systemctl start haproxy")
    _settles_as(_layout_with(set()), timeout=TAKEOVER)


def test_standby_moves_every_vip_away_and_takeover_brings_them_back(ring_in_layout: None) -> None:
    node = NODES[4]
    _move("standby", node)
    # The move waited for the peers: at once, the layout without the node.
    _settles_as(_layout_with({node}), timeout=2)
    assert _host(node).service("keepalived").is_running
    facts = vip_info()[node]
    assert facts["standby"] is True and facts["held"] == [] and facts["problems"] == []
    for vip in OWNS[node]:
        client_waits_for(CLIENT, vip, PORT, _layout_with({node})[vip], timeout=5)
    assert _move("standby", node)["changed"] == 0
    _move("takeover", node)
    _settles_as(_layout_with(set()), timeout=2)
    assert _move("takeover", node)["changed"] == 0


def test_the_fast_profile_reloads_without_moving_a_vip_and_fails_over(ring_in_layout: None) -> None:
    try:
        # VRRPv3 has no password.
        run = converge("vips", floating_ip_profile="fast", floating_ip_password=None)
        assert run["changed"] > 0
        # The reload kept every VIP on its owner.
        assert _where() == {vip: [node] for vip, node in _layout_with(set()).items()}
        victim = NODES[1]
        expected = _layout_with({victim})
        with frozen(victim):
            # Three adverts of 0.1 s and a skew: a second is plenty.
            _settles_as(expected, timeout=1 + 2)
    finally:
        converge("vips")
    _settles_as(_layout_with(set()), timeout=TAKEOVER)


@pytest.fixture(name="stranger", scope="module")
def fixture_stranger() -> Iterator[tuple[str, str]]:
    """A host on the cluster's network that no inventory names, with scapy:
    its name and address."""
    with stranger_host(CLIENT, ["python3-scapy"]) as (name, address):
        docker("cp", str(ADVERTS), f"{name}:/root/vrrp_adverts.py")
        yield name, address


@pytest.fixture(name="unicast_ring")
def fixture_unicast_ring(ring_in_layout: None) -> Iterator[None]:
    """The ring converged in unicast mode, keepalived's own checks alone: no
    firewall drops a stranger's adverts before keepalived sees them."""
    try:
        converge(floating_ip_unicast=True, floatip_firewall=False)
        for node in NODES:
            conf = _host(node).file("/etc/keepalived/keepalived.conf").content_string
            assert conf.count("check_unicast_src") == conf.count("vrrp_instance ") == len(VIPS), node
        _settles_as(_layout_with(set()), timeout=TAKEOVER * 2)
        yield
    finally:
        converge()
    _settles_as(_layout_with(set()), timeout=TAKEOVER * 2)


def _vrrp_password() -> str:
    # The password lookup of molecule.yml keeps it as the file's first word.
    return (EPHEMERAL_DIR / "vrrp_password").read_text().split()[0]


def test_unicast_adverts_from_a_stranger_do_not_move_a_vip(unicast_ring: None, stranger: tuple[str, str]) -> None:
    name, address = stranger
    owner = NODES[0]
    vip = next(each for each in LAYOUT["vips"] if each["address"] == OWNS[owner][0])
    targets = [hostvars(node)["floatip_address"] for node in NODES]
    since = int(time.time()) - 1
    # Priority 255 for the VIP's VRID with the group's password (VRRPv2
    # sends it in clear in every advert), to every node for six seconds:
    # without the source check its owner steps down at the first one.
    attack = subprocess.Popen(["docker", "exec", name, "python3", "/root/vrrp_adverts.py", "2", str(vip["vrid"]), vip["address"],
                               "6", _vrrp_password(), *targets], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        while attack.poll() is None:
            seen.append(holders(vip["address"], NODES))
    finally:
        out, err = attack.communicate(timeout=60)
    assert attack.returncode == 0 and int(out.split()[-1]) > 0, err
    assert seen and all(each == [owner] for each in seen), seen
    client_waits_for(CLIENT, vip["address"], PORT, owner, timeout=1)
    # The adverts arrived and keepalived refused them for their source.
    refusal = f"unicast source address {address} not a unicast peer"
    for node in NODES:
        log = _host(node).check_output(f"journalctl --unit keepalived --output cat --since @{since}")
        assert f"(floatip_{vip['vrid']}) {refusal}" in log, node


def test_the_config_and_the_state_files_are_private_where_they_hold_secrets() -> None:
    conf = _host(NODES[0]).file("/etc/keepalived/keepalived.conf")
    assert conf.user == "root" and conf.mode == 0o600


def test_check_diff_shows_what_would_change_with_the_password_masked() -> None:
    conf = "/etc/keepalived/keepalived.conf"
    before = {node: _host(node).file(conf).md5sum for node in NODES}
    run, shown = check_diff("vips", "Show what would change in keepalived.conf, its password masked", floating_ip_advert_int=3)
    for node in NODES:
        result = shown[node]
        assert result["changed"], result
        diff = result["diff"]
        added = set(diff["after"].splitlines()) - set(diff["before"].splitlines())
        assert {line.strip() for line in added} == {"advert_int 3"}, added
        for side in ("before", "after"):
            assert diff[side].count("auth_pass ********") == len(VIPS)
    assert _vrrp_password() not in json.dumps(run)
    assert {node: _host(node).file(conf).md5sum for node in NODES} == before


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py.
    refused_with_nothing_changed({"floating_ip_track_processes": ["haproxy\nvrrp_script evil"]},
                                 "floating_ip_track_processes[0] must be a process name", NODES, "/etc/keepalived/keepalived.conf",
                                 tags="vips")
