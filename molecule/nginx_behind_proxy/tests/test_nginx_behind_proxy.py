"""nginx behind HAProxy, as its clients and the people reading its logs see it."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Iterator

import pytest
import testinfra

from conftest import ansible_playbook, converge, hostvars, hosts, refused_with_nothing_changed, settles_as


NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
VARS = hostvars(NODES[0])
# The layout, written out (one VIP per node, node i owns the i-th): the
# oracle is the documented rule, not the code under test.
OWNER = {"172.30.88.101": "nx-node1", "172.30.88.102": "nx-node2", "172.30.88.103": "nx-node3"}
VIP_OF = {owner: vip for vip, owner in OWNER.items()}
WEB = next(service for service in VARS["haproxy_services"] if service["name"] == "web")
PORT = WEB["server_port"]
HEALTH = WEB["check_path"]
CLIENT_ADDRESS = hostvars(CLIENT)["floatip_address"]
ACCESS_LOG = "/var/log/nginx/access.log"
# Three failed checks a second apart, and slack for a busy machine.
CHECK_TIMEOUT = 3 + 7


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _address(node: str) -> str:
    return hostvars(node)["floatip_address"]


def _get(url: str, *headers: str) -> tuple[int, str]:
    """A GET from the client: (status, body); status 0 when nothing answered."""
    command = ["curl", "-s", "-m", "5", "-o", "-", "-w", r"\n%{http_code}", url]
    for header in headers:
        command += ["-H", header]
    out = _host(CLIENT).run(shlex.join(command)).stdout
    body, _, status = out.rpartition("\n")
    return int(status or 0), body.strip()


def _marker() -> str:
    return f"/?probe={uuid.uuid4().hex}"


def _log_line(node: str, marker: str, timeout: float = 5) -> str:
    """The access-log line of the request with ``marker`` on ``node``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in _host(node).file(ACCESS_LOG).content_string.splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(lines) == 1, f"{node} logged {len(lines)} lines for {marker}"
    return lines[0]


def _server_status(node: str, server: str) -> str:
    out = _host(node).check_output("echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock")
    return next(line.split(",")[17] for line in out.splitlines() if line.startswith(f"be_web,{server},"))


def _waits_for_status(node: str, server: str, want: str) -> None:
    deadline = time.monotonic() + CHECK_TIMEOUT
    while not _server_status(node, server).startswith(want):
        assert time.monotonic() < deadline, f"be_web/{server} on {node} is {_server_status(node, server)}, not {want}"
        time.sleep(0.3)


@pytest.fixture
def cluster_in_layout() -> Iterator[None]:
    settles_as(OWNER, NODES, timeout=20)
    for node in NODES:
        _waits_for_status(node, node, "UP")
    yield


def test_a_request_through_a_vip_is_logged_with_the_clients_address(cluster_in_layout: None) -> None:
    for node, vip in VIP_OF.items():
        marker = _marker()
        status, body = _get(f"http://{vip}{marker}")
        assert (status, body) == (200, node)
        line = _log_line(node, marker)
        # The client first, the proxy (this node's HAProxy) at the end.
        assert line.startswith(f"{CLIENT_ADDRESS} - ")
        assert line.endswith(f"proxy={_address(node)}")


def test_a_forged_forwarded_for_from_a_stranger_is_not_believed(cluster_in_layout: None) -> None:
    node = NODES[1]
    marker = _marker()
    status, _ = _get(f"http://{_address(node)}:{PORT}{marker}", "X-Forwarded-For: 203.0.113.9")
    assert status == 200
    line = _log_line(node, marker)
    assert line.startswith(f"{CLIENT_ADDRESS} - ") and "203.0.113.9" not in line.split('"')[0]


def test_a_forged_forwarded_for_through_haproxy_is_not_believed(cluster_in_layout: None) -> None:
    node = NODES[2]
    marker = _marker()
    status, _ = _get(f"http://{VIP_OF[node]}{marker}", "X-Forwarded-For: 203.0.113.9")
    assert status == 200
    assert _log_line(node, marker).startswith(f"{CLIENT_ADDRESS} - ")


def _passive_opens(node: str) -> int:
    """The node kernel's count of TCP connections it has accepted (Tcp: PassiveOpens of /proc/net/snmp)."""
    names, values = [line.split()[1:] for line in _host(node).file("/proc/net/snmp").content_string.splitlines()
                     if line.startswith("Tcp:")]
    return int(dict(zip(names, values))["PassiveOpens"])


def test_the_health_check_leaves_no_log_line(cluster_in_layout: None) -> None:
    # HAProxy on every node checks every node's nginx once a second. The
    # kernel's count of accepted connections says when the checks of every
    # node have come at least twice since the log was emptied (nothing
    # else connects to the nodes meanwhile).
    opened = {}
    for node in NODES:
        _host(node).check_output(f"truncate -s 0 {ACCESS_LOG}")
        opened[node] = _passive_opens(node)
    deadline = time.monotonic() + CHECK_TIMEOUT
    for node in NODES:
        while _passive_opens(node) < opened[node] + 2 * len(NODES):
            assert time.monotonic() < deadline, f"{node} accepted {_passive_opens(node) - opened[node]} connections"
            time.sleep(0.2)
    for node in NODES:
        assert _server_status(node, node) == "UP"
        assert HEALTH not in _host(node).file(ACCESS_LOG).content_string


def test_nginx_listens_on_its_own_address_and_loopback_only() -> None:
    for node in NODES:
        sockets = _host(node).check_output("ss -Htlnp | grep nginx | awk '{print $4}' | sort -u").split()
        assert sorted(sockets) == sorted([f"{_address(node)}:{PORT}", f"127.0.0.1:{PORT}"])


def test_the_maintenance_switch_moves_the_nodes_clients_to_its_peers(cluster_in_layout: None) -> None:
    node = NODES[0]
    converge_on = ansible_playbook("converge.yml", "-l", node, "--tags", "nginx", "-e",
                                   json.dumps({"nginx_behind_proxy_maintenance": True}))
    assert converge_on["rc"] == 0, converge_on["failures"]
    try:
        _waits_for_status(node, node, "DOWN")
        answers = {_get(f"http://{VIP_OF[node]}/")[1] for _ in range(6)}
        assert answers == set(NODES) - {node}
    finally:
        converge_off = ansible_playbook("converge.yml", "-l", node, "--tags", "nginx")
        assert converge_off["rc"] == 0, converge_off["failures"]
    _waits_for_status(node, node, "UP")
    assert _get(f"http://{VIP_OF[node]}/") == (200, node)


def test_with_the_proxy_protocol_nginx_logs_the_client_from_its_header(cluster_in_layout: None) -> None:
    services = [{**WEB, "send_proxy": True}]
    # HAProxy sends the header, nginx expects it: the firewall and the VIPs
    # stay as they are.
    converge("haproxy,nginx", haproxy_services=services)
    try:
        node = NODES[1]
        _waits_for_status(node, node, "UP")
        marker = _marker()
        assert _get(f"http://{VIP_OF[node]}{marker}") == (200, node)
        assert _log_line(node, marker).startswith(f"{CLIENT_ADDRESS} - ")
        # A stranger without the header gets nothing from the node's address.
        assert _get(f"http://{_address(node)}:{PORT}/")[0] != 200
    finally:
        converge("haproxy,nginx")


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py. Two halves of the address space would
    # let any client forge its address in the log.
    refused_with_nothing_changed({"nginx_behind_proxy_trusted_proxies": ["0.0.0.0/1", "128.0.0.0/1"]},
                                 "nginx_behind_proxy_trusted_proxies[0] '0.0.0.0/1' is wider than /8", NODES, "/etc/nginx/nginx.conf",
                                 tags="nginx")
