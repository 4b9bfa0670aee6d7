"""HAProxy on every node, as its clients and its operators see it."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import testinfra

from conftest import ansible_playbook, check_diff, client_waits_for, hostvars, hosts, refused_with_nothing_changed, settles_as


NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
VARS = hostvars(NODES[0])
# The layout, written out (one VIP per node, node i owns the i-th): the
# oracle is the documented rule, not the code under test.
OWNER = {"172.30.87.101": "hp-node1", "172.30.87.102": "hp-node2", "172.30.87.103": "hp-node3"}
VIP_OF = {owner: vip for vip, owner in OWNER.items()}
SERVICES = {service["name"]: service for service in VARS["haproxy_services"]}
WEB_PORT = SERVICES["web"]["port"]
WHOAMI_PORT = SERVICES["whoami"]["port"]
STATS_PORT = VARS.get("haproxy_stats_port", 8404)
SOCKET = "/run/haproxy/admin.sock"
CLIENT_ADDRESS = hostvars(CLIENT)["floatip_address"]
# Three failed checks of one second each, and slack for a busy machine.
CHECK_TIMEOUT = 3 * 1 + 7


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _address(node: str) -> str:
    return hostvars(node)["floatip_address"]


def _curl(*args: str) -> tuple[int, str]:
    """curl on the client: (HTTP status, body with headers); 0 when no answer."""
    command = ["curl", "-s", "-i", "-m", "5", "-o", "-", "-w", r"\n%{http_code}", *args]
    done = _host(CLIENT).run(shlex.join(command))
    *body, status = done.stdout.rsplit("\n", 1)
    return int(status or 0), "".join(body)


def _web(vip: str, *args: str) -> tuple[int, str]:
    return _curl(*args, f"http://{vip}:{WEB_PORT}/")


def _answered_by(body: str) -> str:
    """The node named in the echo service's answer (its first body line)."""
    return body.split("\r\n\r\n", 1)[-1].splitlines()[0]


def _stats_password(user: str) -> str:
    """The password converge made for a stats user (the lookup's file holds it first)."""
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], f"stats_{user}"), encoding="utf-8") as file:
        return file.read().split()[0]


def _runtime(node: str, command: str) -> str:
    return _host(node).check_output(f"echo {command!r} | socat -t 5 stdio UNIX-CONNECT:{SOCKET}")


def _worker(node: str) -> str:
    """The pid of the worker that answers the runtime API."""
    return next(line.split(":", 1)[1].strip() for line in _runtime(node, "show info").splitlines() if line.startswith("Pid:"))


def _server_status(node: str, backend: str, server: str) -> str:
    """A server's status in `show stat` on a node: UP, DOWN, DRAIN, MAINT..."""
    for line in _runtime(node, "show stat").splitlines():
        fields = line.split(",")
        if fields[:2] == [backend, server]:
            return fields[17]
    raise AssertionError(f"{backend}/{server} is not in show stat on {node}")


def _waits_for_status(node: str, backend: str, server: str, want: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = _server_status(node, backend, server)
        if status.startswith(want):
            return
        time.sleep(0.3)
    raise AssertionError(f"{backend}/{server} on {node} is {status}, not {want}, after {timeout} s")


@contextmanager
def _stopped(node: str, service: str) -> Iterator[None]:
    _host(node).check_output(f"systemctl stop {service}")
    try:
        yield
    finally:
        _host(node).check_output(f"systemctl start {service}")


@pytest.fixture
def cluster_in_layout() -> Iterator[None]:
    """Each check starts with every VIP on its owner and every server up."""
    settles_as(OWNER, NODES, timeout=20)
    for node in NODES:
        for peer in NODES:
            _waits_for_status(node, "be_web", peer, "UP", timeout=CHECK_TIMEOUT)
    yield


def test_each_vip_is_served_by_its_holders_own_services(cluster_in_layout: None) -> None:
    for vip, owner in OWNER.items():
        status, body = _web(vip)
        assert status == 200 and _answered_by(body) == owner, body
        client_waits_for(CLIENT, vip, WHOAMI_PORT, owner, timeout=5)


def test_a_node_whose_service_stops_serves_from_its_peers(cluster_in_layout: None) -> None:
    victim = NODES[0]
    vip = VIP_OF[victim]
    with _stopped(victim, "echo"):
        _waits_for_status(victim, "be_web", victim, "DOWN", timeout=CHECK_TIMEOUT)
        answers = {_answered_by(_web(vip)[1]) for _ in range(8)}
        # Round robin over every peer (option allbackups), and the VIP stays
        # where it is: only the service moved.
        assert answers == set(NODES) - {victim}
        assert OWNER[vip] == victim
    _waits_for_status(victim, "be_web", victim, "UP", timeout=CHECK_TIMEOUT)
    assert _answered_by(_web(vip)[1]) == victim


def test_the_tcp_service_falls_back_to_a_peer(cluster_in_layout: None) -> None:
    victim = NODES[1]
    with _stopped(victim, "whoami"):
        peer_answers = set()
        deadline = time.monotonic() + CHECK_TIMEOUT
        while time.monotonic() < deadline and len(peer_answers) < 2:
            answer = _host(CLIENT).run(f"timeout 2 socat -T 1 - TCP:{VIP_OF[victim]}:{WHOAMI_PORT}").stdout.strip()
            if answer and answer != victim:
                peer_answers.add(answer)
            time.sleep(0.2)
        assert peer_answers == set(NODES) - {victim}


def test_the_backend_sees_the_client_and_never_a_forged_forwarded_for(cluster_in_layout: None) -> None:
    vip = VIP_OF[NODES[0]]
    status, body = _web(vip, "-H", "X-Forwarded-For: 203.0.113.7")
    assert status == 200
    assert f"xff={CLIENT_ADDRESS}\n" in body.replace("\r", "") + "\n"
    assert "203.0.113.7" not in body


def test_version_headers_are_removed(cluster_in_layout: None) -> None:
    _, body = _web(VIP_OF[NODES[0]])
    headers = body.split("\r\n\r\n", 1)[0].lower()
    assert "server:" not in headers and "x-powered-by:" not in headers


def test_the_cookie_keeps_a_client_on_its_server(cluster_in_layout: None) -> None:
    # A client first served by node1 keeps going to node1 when it reaches
    # node2's VIP with the cookie it was given.
    _, body = _web(VIP_OF[NODES[0]])
    cookie = next(line.split(":", 1)[1].split(";")[0].strip() for line in body.splitlines() if line.lower().startswith("set-cookie:"))
    _, again = _web(VIP_OF[NODES[1]], "-H", f"Cookie: {cookie}")
    assert _answered_by(again) == NODES[0]


def test_the_stats_page_wants_a_user_and_only_admins_may_act(cluster_in_layout: None) -> None:
    node = NODES[0]
    url = f"http://{_address(node)}:{STATS_PORT}/"
    status, _ = _curl(url)
    assert status == 401
    status, _ = _curl("-u", f"viewer:{'x' * 20}", url)
    assert status == 401
    viewer = f"viewer:{_stats_password('viewer')}"
    ops = f"ops:{_stats_password('ops')}"
    status, page = _curl("-u", viewer, url)
    assert status == 200 and "be_web" in page
    action = ["-d", "s=" + NODES[1], "-d", "action=drain", "-d", "b=be_web"]
    status, answer = _curl("-u", viewer, *action, url)
    assert status == 303 and "st=DENY" in answer
    assert _server_status(node, "be_web", NODES[1]) == "UP"
    status, answer = _curl("-u", ops, *action, url)
    assert status == 303 and "st=DONE" in answer
    try:
        assert _server_status(node, "be_web", NODES[1]) == "DRAIN"
    finally:
        _runtime(node, f"set server be_web/{NODES[1]} state ready")


def test_a_drained_server_stays_drained_across_a_reload(cluster_in_layout: None) -> None:
    node = NODES[0]
    _runtime(node, f"set server be_web/{NODES[2]} state drain")
    try:
        before = _worker(node)
        _host(node).check_output("systemctl reload haproxy")
        deadline = time.monotonic() + 10
        while _worker(node) == before:
            assert time.monotonic() < deadline, f"no new worker on {node} 10 s after the reload"
            time.sleep(0.2)
        assert _server_status(node, "be_web", NODES[2]) == "DRAIN"
    finally:
        _runtime(node, f"set server be_web/{NODES[2]} state ready")
    assert _server_status(node, "be_web", NODES[2]).startswith("UP")


def test_the_runtime_api_is_private_and_tcp_on_loopback_only() -> None:
    for node in NODES:
        sock = _host(node).file(SOCKET)
        assert sock.is_socket and sock.mode == 0o660 and (sock.user, sock.group) == ("root", "haproxy")
        listening = _host(node).check_output("ss -Htln")
        assert "127.0.0.1:9999" in listening and "0.0.0.0:9999" not in listening
        # Any local user reaches a TCP socket: it shows, it never changes.
        as_nobody = "su -s /bin/sh nobody -c 'echo \"{}\" | socat -T 2 - TCP:127.0.0.1:9999'"
        assert "be_web" in _host(node).check_output(as_nobody.format("show stat"))
        refused = _host(node).check_output(as_nobody.format(f"set server be_web/{NODES[1]} state maint"))
        assert "Permission denied" in refused
        assert _server_status(node, "be_web", NODES[1]).startswith("UP")
        config = _host(node).file("/etc/haproxy/haproxy.cfg")
        assert config.mode == 0o640 and (config.user, config.group) == ("root", "haproxy")
        text = config.content_string
        assert _stats_password("ops") not in text and _stats_password("viewer") not in text
        assert "insecure-password" not in text


def test_a_config_that_fails_haproxy_check_never_goes_live() -> None:
    # The role's own checks accept a TLS port with a certificate path; only
    # haproxy -c finds the file missing.
    broken = [*VARS["haproxy_services"], {"name": "tls", "mode": "http", "port": 8081, "server_port": 8082,
                                          "tls_port": 8443, "cert": "/etc/ssl/private/missing.pem"}]
    before = {node: _host(node).file("/etc/haproxy/haproxy.cfg").md5sum for node in NODES}
    run = ansible_playbook("converge.yml", "--tags", "haproxy", "-e", json.dumps({"haproxy_services": broken}))
    assert run["rc"] != 0
    assert all("failed to validate" in failure for failure in run["failures"]), run["failures"]
    assert {node: _host(node).file("/etc/haproxy/haproxy.cfg").md5sum for node in NODES} == before
    for vip, owner in OWNER.items():
        assert _answered_by(_web(vip)[1]) == owner


def test_check_diff_shows_what_would_change_with_the_password_hashes_masked() -> None:
    services = [{**service, "check_interval": 2} if service["name"] == "whoami" else service for service in VARS["haproxy_services"]]
    before = {node: _host(node).file("/etc/haproxy/haproxy.cfg").md5sum for node in NODES}
    run, shown = check_diff("haproxy", "Show what would change in haproxy.cfg, its password hashes masked", haproxy_services=services)
    for node in NODES:
        result = shown[node]
        assert result["changed"], result
        live, wanted = result["diff"]["before"], result["diff"]["after"]
        added = set(wanted.splitlines()) - set(live.splitlines())
        assert [line.split()[:3] for line in added] == [["default-server", "inter", "2000ms"]], added
        # The web backend keeps its 1000 ms: whoami's line is the one that went.
        assert live.count("default-server inter 1000ms") == wanted.count("default-server inter 1000ms") + 1
        for side in ("before", "after"):
            assert "user ops password ******** groups admin" in result["diff"][side]
    # Neither a hash nor a password anywhere in what the run said, and nothing changed.
    said = json.dumps(run)
    assert "$6$" not in said and _stats_password("ops") not in said and _stats_password("viewer") not in said
    assert {node: _host(node).file("/etc/haproxy/haproxy.cfg").md5sum for node in NODES} == before


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py and test_haproxy_plan.py. This one
    # would have put an admin socket open to all into haproxy.cfg.
    injected = {"name": "tls", "mode": "http", "port": 8081, "server_port": 8082, "tls_port": 8443,
                "cert": "/etc/ssl/private/site.pem\n    stats socket ipv4@0.0.0.0:9998 level admin"}
    refused_with_nothing_changed({"haproxy_services": [*VARS["haproxy_services"], injected]},
                                 f"haproxy_services[{len(SERVICES)}] (tls).cert must be an absolute path", NODES, "/etc/haproxy/haproxy.cfg",
                                 tags="haproxy")


def test_the_status_playbook_shows_who_holds_each_vip_and_every_server(cluster_in_layout: None) -> None:
    run = ansible_playbook(str(Path("..") / ".." / "playbooks" / "status.yml"))
    assert run["rc"] == 0, run["failures"]
    task = next(task for play in run["plays"] for task in play["tasks"] if task["task"]["name"] == "Show the cluster")
    lines = next(result["msg"] for result in task["hosts"].values() if "msg" in result)
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in OWNER}
    assert {vip: row[1:3] for vip, row in rows.items()} == {vip: [owner, owner] for vip, owner in OWNER.items()}
    servers = [line.split() for line in lines if line.split()[:1] and line.split()[0] in NODES]
    # Every node's HAProxy, every service's backend, every node's server.
    assert len(servers) == len(NODES) * len(SERVICES) * len(NODES)
    assert all(row[3:6] == ["UP", "/", "ready"] for row in servers), servers
