"""The whole cluster under load: the mail ring of five nodes, built by
site.yml, serves HTTP and SMTP on all ten VIPs through a rolling
maintenance of every node and through each failover drill."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import (
    SCENARIO_DIR,
    ansible_playbook,
    docker,
    holders,
    hosts,
    hostvars,
    model,
    refused_with_nothing_changed,
    settles_as,
    stranger,
)

from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout
from ansible_collections.floatip.ha.plugins.module_utils.layout import holders as layout_holders

NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
WORLD = hosts("floatip_world")[0]
LAYOUT = build_layout(model())
VIPS = [vip["address"] for vip in LAYOUT["vips"]]
PLAYBOOKS = Path("..") / ".." / "playbooks"


def on(container: str, command: str, timeout: float = 120) -> str:
    return docker("exec", container, "sh", "-c", command, timeout=timeout)


def in_layout(timeout: float) -> None:
    """Every VIP held by its owner and by no other node."""
    settles_as(layout_holders(LAYOUT, set()), NODES, timeout=timeout)


@contextmanager
def load() -> Iterator[dict]:
    """The client's HTTP and SMTP load on every VIP for the length of the
    block; the result (see load.py) fills the yielded dict on the way out."""
    run = uuid.uuid4().hex[:8]
    docker("cp", str(SCENARIO_DIR / "load.py"), f"{CLIENT}:/root/load.py")
    on(CLIENT, "rm -f /root/load.stop /root/load.json")
    docker("exec", "-d", CLIENT, "python3", "/root/load.py", "/root/load.stop", "/root/load.json", run, *VIPS)
    result: dict = {}
    try:
        time.sleep(2)
        yield result
    finally:
        on(CLIENT, "touch /root/load.stop")
        deadline = time.monotonic() + 60
        while not (out := on(CLIENT, "cat /root/load.json 2>/dev/null || true")).strip():
            assert time.monotonic() < deadline, "the load did not stop"
            time.sleep(0.5)
        result.update(json.loads(out))


def undelivered(subjects: list[str], timeout: float) -> set[str]:
    """The subjects that have not reached the world's sink within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = on(WORLD, "cat /var/log/sink.jsonl 2>/dev/null || true").splitlines()
        missing = set(subjects) - {json.loads(line)["subject"] for line in lines if line.strip()}
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


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
    for vip in LAYOUT["vips"]:
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


# ---------------------------------------------------------------- a stranger
# A host on the cluster network that no inventory names gets nothing a
# client on the internet would not: no relay, no backend port, no stats
# page, no trust in a header it forges, no say in who holds a VIP.

NODE_ADDRESSES = [hostvars(node)["floatip_address"] for node in NODES]
RELAY = ["--from", "x@example.org", "--to", "victim@example.net", "--quit-after", "RCPT", "--timeout", "10"]


@pytest.fixture(scope="module")
def outsider() -> Iterator[tuple[str, str]]:
    with stranger(CLIENT, ["swaks", "curl", "python3-scapy"]) as (name, address):
        docker("cp", str(SCENARIO_DIR.parent / "_shared" / "vrrp_adverts.py"), f"{name}:/root/vrrp_adverts.py")
        yield name, address


def from_outsider(outsider: tuple[str, str], *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", outsider[0], *argv], capture_output=True, text=True, timeout=timeout, check=False)


def test_a_stranger_cannot_relay_with_or_without_a_forged_proxy_header(outsider: tuple[str, str]) -> None:
    in_layout(timeout=30)
    helo = f"stranger-{uuid.uuid4().hex[:8]}"
    for address in VIPS + NODE_ADDRESSES:
        for forged in ([], ["--proxy", f"TCP4 127.0.0.1 {address} 40000 25"]):
            done = from_outsider(outsider, "swaks", "--server", address, "--port", "25", "--helo", helo, *RELAY, *forged)
            said = done.stdout + done.stderr
            # postfix's own answer to RCPT decides (a forged header, taken
            # for a command, puts swaks' reading of the answers one behind).
            assert "2.1.5" not in said, f"relayed through {address} {forged}: {said}"
            if address in NODE_ADDRESSES:
                # The proxied listener answers the nodes' HAProxy only.
                assert "Connection refused" in said, said
            else:
                assert "554 5.7.1 <victim@example.net>: Relay access denied" in said, said
    # Through the VIPs postfix saw the stranger itself, whatever it claimed.
    refusals = [line for node in NODES for line in on(node, "cat /var/log/postfix.log").splitlines() if f"helo=<{helo}>" in line]
    assert len(refusals) >= len(VIPS), refusals
    assert all(f"RCPT from unknown[{outsider[1]}]" in line for line in refusals), refusals


def test_a_stranger_reaches_nothing_on_a_nodes_own_address(outsider: tuple[str, str]) -> None:
    """Every port a node listens on at its own address (HAProxy's servers:
    postfix, nginx; the stats page) refuses the stranger, crashed and
    rebooted nodes included, while the same services answer on the VIPs."""
    for node, address in zip(NODES, NODE_ADDRESSES):
        listening = on(node, "ss -Htln")
        ports = sorted({int(line.split()[3].rsplit(":", 1)[1]) for line in listening.splitlines()
                        if line.split()[3].rsplit(":", 1)[0] == address})
        assert 25 in ports and len(ports) >= 3, listening
        for port in ports:
            done = from_outsider(outsider, "curl", "-sS", "--max-time", "10", "-o", "/dev/null", f"http://{address}:{port}/")
            # 7: the connection was refused (reset), not left to time out (28).
            assert done.returncode == 7, f"{address}:{port}: {done.returncode} {done.stderr}"
    answer = from_outsider(outsider, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://{VIPS[0]}/")
    assert answer.stdout == "200", answer


def test_a_strangers_forwarded_for_is_not_taken_for_the_client(outsider: tuple[str, str]) -> None:
    marker = f"/?stranger-{uuid.uuid4().hex}"
    for vip in VIPS:
        done = from_outsider(outsider, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             "-H", "X-Forwarded-For: 203.0.113.77", f"http://{vip}{marker}")
        assert done.stdout == "200", done
    lines = [line for node in NODES for line in on(node, "cat /var/log/nginx/access.log").splitlines() if marker in line]
    assert len(lines) == len(VIPS)
    assert all(line.startswith(f"{outsider[1]} ") and "203.0.113.77" not in line.split('"')[0] for line in lines), lines


def _adverts(outsider: tuple[str, str], vip: dict, version: int, seconds: float) -> None:
    """The stranger sends VRRP adverts of priority 255 for ``vip`` for ``seconds``, in the background."""
    docker("exec", "-d", outsider[0], "python3", "/root/vrrp_adverts.py", str(version), str(vip["vrid"]), vip["address"], str(seconds))


def test_a_strangers_vrrp_adverts_move_no_vip(outsider: tuple[str, str]) -> None:
    in_layout(timeout=30)
    vip = LAYOUT["vips"][0]
    owner = vip["owner"]
    version = 3 if "vrrp_version 3" in on(owner, "cat /etc/keepalived/keepalived.conf") else 2
    # The attack is real: the owner without its firewall gives the VIP up.
    on(owner, "nft delete table inet floatip")
    try:
        _adverts(outsider, vip, version, seconds=8)
        deadline = time.monotonic() + 8
        while owner in holders(vip["address"], [owner]):
            assert time.monotonic() < deadline, f"the stranger's adverts did not reach {owner} even without its firewall"
            time.sleep(0.2)
    finally:
        on(owner, "systemctl restart floatip-firewall")
    in_layout(timeout=30)
    # With it, the same adverts change nothing on any node.
    _adverts(outsider, vip, version, seconds=6)
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        assert holders(vip["address"], NODES) == [owner]
        time.sleep(0.2)
    in_layout(timeout=5)
