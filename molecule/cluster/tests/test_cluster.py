"""The whole cluster under load: the mail ring of five nodes, built by
site.yml, serves HTTP and SMTP on all ten VIPs through a rolling
maintenance of every node and through each failover drill."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from floatip_testing import load as client_load

from conftest import (
    SCENARIO_DIR,
    ansible_playbook,
    home_layout,
    hosts,
    hostvars,
    on,
    refused_with_nothing_changed,
    settles_as,
)


NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
WORLD = hosts("floatip_world")[0]
HOME = home_layout()
VIPS = [vip["address"] for vip in HOME]
PLAYBOOKS = Path("..") / ".." / "playbooks"


def in_layout(timeout: float) -> None:
    """Every VIP held by its owner and by no other node."""
    settles_as({vip["address"]: vip["owner"] for vip in HOME}, NODES, timeout=timeout)


@contextmanager
def load() -> Iterator[dict]:
    """The client's HTTP and SMTP load on every VIP for the length of the
    block, a client that retries once as real ones do (floatip_testing.load);
    its report fills the yielded dict on the way out."""
    with client_load.running(CLIENT, VIPS, run=uuid.uuid4().hex[:8], retry=True, settle=2) as result:
        yield result


def undelivered(subjects: list[str], timeout: float) -> set[str]:
    """The subjects that have not reached the world's sink within ``timeout``."""
    return client_load.undelivered(WORLD, subjects, timeout)


def test_every_vip_serves_web_and_mail_from_the_client() -> None:
    in_layout(timeout=30)
    with load() as result:
        time.sleep(5)
    assert result["failed"] == 0 and result["retried"] == 0, result["errors"]
    assert result["ok"] > len(VIPS) and result["accepted"]
    assert not undelivered(result["accepted"], timeout=60)
    # The web service saw the client's own address, not HAProxy's.
    logs = "".join(on(node, "cat /var/log/nginx/access.log") for node in NODES)
    assert hostvars(CLIENT)["floatip_address"] in logs


def status_servers() -> list[list[str]]:
    """Every HAProxy server's row in status.yml's table: node, backend, server, status, /, admin state, /, sessions."""
    run = ansible_playbook(str(PLAYBOOKS / "status.yml"))
    assert run["rc"] == 0, run["failures"]
    task = next(task for play in run["plays"] for task in play["tasks"] if task["task"]["name"] == "Show the cluster")
    lines = next(result["msg"] for result in task["hosts"].values() if "msg" in result)
    return [line.split() for line in lines if line.split()[:1] and line.split()[0] in NODES]


def test_a_rolling_maintenance_under_load_fails_no_request_and_loses_no_mail() -> None:
    in_layout(timeout=30)
    playbook = str(PLAYBOOKS / "rolling_maintenance.yml")
    extra = ["-e", json.dumps({"rolling_maintenance_upgrade": False,
                               "rolling_maintenance_tasks": str(SCENARIO_DIR / "maintenance.yml")})]
    for node in NODES:
        on(node, "rm -f /var/lib/floatip-maintained")
    # The dry run says what it would do and changes nothing.
    dry = ansible_playbook(playbook, "--check", *extra)
    assert dry["rc"] == 0, dry["failures"]
    assert all(row[3:6] == ["UP", "/", "ready"] for row in status_servers())
    in_layout(timeout=5)
    assert not any(on(node, "ls /var/lib/floatip-maintained 2>/dev/null || true").strip() for node in NODES)

    since = {node: on(node, "date +%s").strip() for node in NODES}
    with load() as result:
        run = ansible_playbook(playbook, *extra, timeout=1200)
    assert run["rc"] == 0, run["failures"]
    # Every node was maintained, one at a time in ring order, and came back.
    stamps = sorted((on(node, "cat /var/lib/floatip-maintained").strip(), node) for node in NODES)
    assert [node for _stamp, node in stamps] == NODES
    for vip in HOME:
        owner = vip["owner"]
        events = on(owner, f"journalctl -t floatip --no-pager -o cat --since @{since[owner]}").splitlines()
        moves = [line for line in events if line.startswith(f"VIP {vip['address']} (vrrp {vip['vrid']}) is now ")]
        # It left its owner in standby and came back to it.
        assert moves and moves[0].endswith("FAULT") and moves[-1].endswith("MASTER"), moves
    in_layout(timeout=30)
    servers = status_servers()
    # Every node's HAProxy, every service's backend, every node's server.
    assert len(servers) == len(NODES) * len(hostvars(NODES[0])["haproxy_services"]) * len(NODES)
    assert all(row[3:6] == ["UP", "/", "ready"] for row in servers), servers
    # Under load the whole time: no request failed, no mail was lost.
    assert result["failed"] == 0, (result["errors"], result["retried"])
    assert result["ok"] > 100
    assert not undelivered(result["accepted"], timeout=120)


@pytest.mark.parametrize(("fault", "node"), [("crash", 1), ("freeze", 2), ("partition", 3)])
def test_a_drill_under_load_keeps_every_vip_served_and_heals(fault: str, node: int) -> None:
    in_layout(timeout=30)
    target = NODES[node]
    with load() as result:
        run = ansible_playbook(str(PLAYBOOKS / "failover_drill.yml"), "-e",
                               json.dumps({"failover_drill_node": target, "failover_drill_fault": fault,
                                           "failover_drill_timeout": 20, "failover_drill_hold": 3}), timeout=600)
    # The drill's own checks: every VIP held by exactly the node its order
    # names, every service answering on every VIP, within 20 s; after the
    # heal, the layout back and everything answering.
    assert run["rc"] == 0, run["failures"]
    in_layout(timeout=10)
    # Some requests in flight on the broken node fail; what the cluster
    # accepted is delivered all the same.
    assert result["ok"] > 50
    assert not undelivered(result["accepted"], timeout=120), result
    if fault == "partition":
        assert not on(target, "iptables -S | grep floatip-drill || true").strip()


def test_a_drill_in_check_mode_says_what_it_would_do_and_breaks_nothing() -> None:
    in_layout(timeout=30)
    run = ansible_playbook(str(PLAYBOOKS / "failover_drill.yml"), "--check", "-e",
                           json.dumps({"failover_drill_node": NODES[0], "failover_drill_fault": "crash"}))
    assert run["rc"] == 0, run["failures"]
    assert run["changed"] == 0
    in_layout(timeout=5)


def test_a_drill_with_a_bad_fault_is_refused_before_anything_breaks() -> None:
    refused_with_nothing_changed({"failover_drill_node": NODES[0], "failover_drill_fault": "meteor"},
                                 "failover_drill_fault one of crash, freeze, partition, got 'meteor'",
                                 NODES, "/etc/keepalived/keepalived.conf",
                                 playbook=str(PLAYBOOKS / "failover_drill.yml"))
    in_layout(timeout=5)
