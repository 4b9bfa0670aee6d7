"""A stranger on the cluster's own network, at an address that no inventory
names and in no group, gets nothing a client on the internet would not:
no relay, no backend port, no stats page, no trust in a header it forges,
no say in who holds a VIP. The tools are Debian's: swaks, curl, scapy.

Molecule runs it after test_cluster.py (so after the drills, crashed and
rebooted nodes included); `make lab-attack` runs it against the lab of
`make demo`."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from floatip_testing import client_script

from conftest import docker, holders, home_layout, hosts, hostvars, on, settles_as, stranger


NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
HOME = home_layout()
VIPS = [vip["address"] for vip in HOME]


def in_layout(timeout: float) -> None:
    """Every VIP held by its owner and by no other node."""
    settles_as({vip["address"]: vip["owner"] for vip in HOME}, NODES, timeout=timeout)


# A host on the cluster network that no inventory names gets nothing a
# client on the internet would not: no relay, no backend port, no stats
# page, no trust in a header it forges, no say in who holds a VIP.

NODE_ADDRESSES = [hostvars(node)["floatip_address"] for node in NODES]
RELAY = ["--from", "x@example.org", "--to", "victim@example.net", "--quit-after", "RCPT", "--timeout", "10"]


@pytest.fixture(scope="module")
def outsider() -> Iterator[tuple[str, str]]:
    with stranger(CLIENT, ["swaks", "curl", "python3-scapy"]) as (name, address):
        docker("cp", str(client_script("vrrp_adverts.py")), f"{name}:/root/vrrp_adverts.py")
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
    assert all(re.search(rf"RCPT from \S*\[{re.escape(outsider[1])}\]: 554 ", line) for line in refusals), refusals


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
    vip = HOME[0]
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
