"""The ring held by ucarp (CARP on Linux), as its clients and operators see it."""

from __future__ import annotations

import shlex

import pytest
import testinfra

from conftest import client_waits_for, frozen, holders, hostvars, hosts, model, move, refused_with_nothing_changed, settles_as, vip_info

from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout
from ansible_collections.floatip.ha.plugins.module_utils.layout import holders as layout_holders

NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
PORT = int(hostvars(NODES[0])["whoami_port"])
LAYOUT = build_layout(model())
OWNS = {node: LAYOUT["nodes"][node]["owns"] for node in NODES}
# CARP: a backup takes over after three advertisements of advbase (1 s)
# are missed, plus its skew; allow for a busy machine.
TAKEOVER = 3 * 1 + 1 + 6
PASSWORD_FILE = "/etc/floatip/ucarp/password"


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _layout_with(failed: set[str]) -> dict[str, str]:
    return layout_holders(LAYOUT, failed)


@pytest.fixture
def ring_in_layout():
    settles_as(_layout_with(set()), NODES, timeout=TAKEOVER * 2)


def test_every_vip_is_held_by_its_owner_alone_and_answers(ring_in_layout: None) -> None:
    for node in NODES:
        for vip in OWNS[node]:
            assert holders(vip, NODES) == [node]
            client_waits_for(CLIENT, vip, PORT, node, timeout=5)
    # What vip_info reads: the state each up and down script recorded.
    facts = vip_info()
    for node in NODES:
        assert sorted(facts[node]["held"]) == sorted(OWNS[node])
        states = {vip["address"]: vip["state"] for vip in facts[node]["vips"]}
        assert states == {vip["address"]: "MASTER" if vip["address"] in OWNS[node] else "BACKUP" for vip in LAYOUT["vips"]}
        assert facts[node]["problems"] == []


@pytest.mark.parametrize("victim", [NODES[0], NODES[3]])
def test_a_frozen_nodes_vips_go_where_the_layout_says_and_come_back(ring_in_layout: None, victim: str) -> None:
    expected = _layout_with({victim})
    with frozen(victim):
        for vip in OWNS[victim]:
            client_waits_for(CLIENT, vip, PORT, expected[vip], timeout=TAKEOVER)
        settles_as(expected, NODES, timeout=TAKEOVER)
    # preempt: the thawed owner takes its VIPs back, and only it holds them.
    settles_as(_layout_with(set()), NODES, timeout=TAKEOVER * 2)


def test_standby_moves_every_vip_away_and_takeover_brings_them_back(ring_in_layout: None) -> None:
    node = NODES[2]
    move("standby", node)
    # The standby returns once a peer answers on each VIP. When the owner's
    # ucarp restarts, both of a VIP's next backups may advertise as master
    # for an advert or two before the one with the higher advskew yields
    # (seen on a busy machine): settled, one holder each, soon after.
    settles_as(_layout_with({node}), NODES, timeout=10)
    assert all(_host(node).service(f"floatip-ucarp@{vip['vrid']}").is_running for vip in LAYOUT["nodes"][node]["vips"])
    assert move("standby", node)["changed"] == 0
    move("takeover", node)
    settles_as(_layout_with(set()), NODES, timeout=2)


def _password(node: str) -> str:
    """The ucarp password as the role wrote it on ``node``."""
    return _host(node).file(PASSWORD_FILE).content_string


@pytest.mark.parametrize("node", NODES)
def test_the_password_is_in_a_file_only_root_reads(node: str) -> None:
    password = _host(node).file(PASSWORD_FILE)
    assert (password.user, password.group, password.mode) == ("root", "root", 0o600)
    directory = _host(node).file(PASSWORD_FILE.rsplit("/", 1)[0])
    assert (directory.user, directory.mode) == ("root", 0o700)
    # The run's password (molecule.yml), and the same on every node.
    assert len(_password(node)) == 19 and _password(node) == _password(NODES[0])


@pytest.mark.parametrize("node", NODES)
def test_no_command_line_shows_the_password(ring_in_layout: None, node: str) -> None:
    secret = _password(node)
    # What any local user sees: every process's arguments.
    args = _host(node).check_output("ps -eo args")
    ucarps = [line for line in args.splitlines() if line.startswith("/usr/sbin/ucarp ")]
    # Each VIP's ucarp runs, and takes the password from the file.
    assert len(ucarps) == len(LAYOUT["vips"]), ucarps
    assert all(f"--passfile={PASSWORD_FILE}" in line for line in ucarps), ucarps
    assert secret not in args
    assert not any(arg == "-p" or arg.startswith("--pass=") for line in ucarps for arg in line.split())


@pytest.mark.parametrize("node", NODES)
def test_no_other_file_holds_the_password(node: str) -> None:
    # Settings, units, scripts, state and logs: the password file alone.
    done = _host(node).run(f"grep -rlsF -e {shlex.quote(_password(node))} /etc /usr/local /run /var/log")
    assert done.rc in (0, 1), done.stderr
    assert done.stdout.split() == [PASSWORD_FILE]


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py.
    conf = f"/etc/floatip/ucarp/vhid-{LAYOUT['vips'][0]['vrid']}.conf"
    refused_with_nothing_changed({"floating_ip_password": None}, "floating_ip_password is required with ucarp", NODES, conf,
                                 tags="vips")
