"""postfix on multihomed cluster nodes, as senders, the world and the postmaster see it."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import testinfra
from floatip_testing.load import SINK

from conftest import (
    ansible_playbook,
    converge,
    docker,
    frozen,
    hostvars,
    hosts,
    move,
    refused_with_nothing_changed,
    settles_as,
    stranger,
)


NODES = hosts("floatip_nodes")
CLIENT = hosts("floatip_clients")[0]
WORLD = hosts("floatip_world")[0]
# The layout, written out (one VIP per node, node i owns the i-th): the
# oracle is the documented rule, not the code under test.
OWNER = {"172.30.89.101": "pf-node1", "172.30.89.102": "pf-node2", "172.30.89.103": "pf-node3"}
VIP_OF = {owner: vip for vip, owner in OWNER.items()}
CLIENT_ADDRESS = hostvars(CLIENT)["floatip_address"]
WORLD_ADDRESS = hostvars(WORLD)["floatip_address"]

# Sends one message with smtplib from the host it runs on; prints the
# server's answer to the last command, or the SMTP error.
SEND = r"""
import smtplib, ssl, sys
host, port, subject, rcpt, user, password = sys.argv[1:7]
msg = f"From: sender@client.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhello\r\n"
try:
    with smtplib.SMTP(host, int(port), timeout=20) as smtp:
        smtp.ehlo("client.test")
        if user:
            smtp.starttls(context=ssl._create_unverified_context())
            smtp.ehlo("client.test")
            smtp.login(user, password)
        smtp.sendmail("sender@client.test", [rcpt], msg)
    print("sent")
except smtplib.SMTPRecipientsRefused as exc:
    code, text = next(iter(exc.recipients.values()))
    print(f"refused {code} {text.decode()}")
except smtplib.SMTPException as exc:
    print(f"error {exc}")
"""


def _host(node: str):
    return testinfra.get_host(f"docker://{node}")


def _address(node: str) -> str:
    return hostvars(node)["floatip_address"]


def _send(sender: str, host: str, port: int = 25, rcpt: str = "someone@world.test", user: str = "", password: str = "") -> tuple[str, str]:
    """(answer, subject) of one message sent from container ``sender``."""
    subject = f"probe-{uuid.uuid4().hex}"
    done = subprocess.run(["docker", "exec", sender, "python3", "-c", SEND, host, str(port), subject, rcpt, user, password],
                          capture_output=True, text=True, timeout=60, check=False)
    return (done.stdout.strip() or done.stderr.strip()), subject


def _received(subject: str, timeout: float = 30) -> dict:
    """The sink's record of the message with ``subject``, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        for line in _host(WORLD).file(SINK).content_string.splitlines() if _host(WORLD).file(SINK).exists else []:
            record = json.loads(line)
            if record["subject"] == subject:
                return record
        assert time.monotonic() < deadline, f"the sink never received {subject}"
        time.sleep(0.5)


def _sasl_password() -> str:
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "sasl_alice"), encoding="utf-8") as file:
        return file.read().split()[0]


def _bind_address(node: str) -> str:
    return _host(node).check_output("postconf -h smtp_bind_address")


@pytest.fixture
def cluster_in_layout() -> None:
    settles_as(OWNER, NODES, timeout=20)
    for node in NODES:
        deadline = time.monotonic() + 10
        while _bind_address(node) != VIP_OF[node]:
            assert time.monotonic() < deadline, f"{node} sends from {_bind_address(node)}, not its VIP {VIP_OF[node]}"
            time.sleep(0.5)


def test_mail_through_each_vip_arrives_and_leaves_from_that_vip(cluster_in_layout: None) -> None:
    for node, vip in VIP_OF.items():
        answer, subject = _send(CLIENT, vip)
        assert answer == "sent"
        assert _received(subject)["peer"] == vip, f"{node} delivered from another address"


def test_postfix_logs_the_clients_own_address_not_haproxys(cluster_in_layout: None) -> None:
    node = NODES[1]
    answer, subject = _send(CLIENT, VIP_OF[node])
    assert answer == "sent"
    _received(subject)
    log = _host(node).file("/var/log/postfix.log").content_string.splitlines()
    # HAProxy's health checks come from the nodes, with the PROXY protocol
    # too; the client's message is logged with the client's own address.
    queued = [line for line in log if " client=" in line]
    assert any(line.endswith(f"[{CLIENT_ADDRESS}]") for line in queued)
    assert not any(line.endswith(f"[{_address(peer)}]") for peer in NODES for line in queued)
    assert any("connect from " in line and f"[{CLIENT_ADDRESS}]" in line for line in log)


@pytest.mark.parametrize("port", [25, 587])
def test_an_outsider_cannot_relay_through_any_listener(cluster_in_layout: None, port: int) -> None:
    for vip in VIP_OF.values():
        answer, _ = _send(WORLD, vip, port, rcpt="victim@elsewhere.test")
        if port == 25:
            assert answer.startswith("refused 554") and "Relay access denied" in answer, answer
        else:
            # Submission wants STARTTLS and a login before anything else.
            assert answer.startswith("refused 530") or answer.startswith("error"), answer
            assert "sent" not in answer


def test_submission_relays_for_authenticated_users_only(cluster_in_layout: None) -> None:
    vip = VIP_OF[NODES[2]]
    answer, subject = _send(CLIENT, vip, 587, user="alice", password=_sasl_password())
    assert answer == "sent"
    assert _received(subject)["peer"] == vip
    answer, _ = _send(WORLD, vip, 587, user="alice", password="not-the-password")
    assert answer.startswith("error") and "535" in answer, answer


def test_a_forged_proxy_header_gets_no_relay_from_postfix_itself(cluster_in_layout: None) -> None:
    """Without the cluster's firewall a stranger reaches the proxied
    listener on a node's own address and sends its own PROXY header,
    claiming loopback or the client that may relay: postfix relays for
    neither. With the firewall it reaches nothing there."""
    node = NODES[0]
    address = _address(node)
    with stranger(CLIENT, ["swaks"]) as (name, _):
        def relay(*proxy: str) -> str:
            done = subprocess.run(["docker", "exec", name, "swaks", "--server", address, "--port", "25", "--from", "x@example.org",
                                   "--to", "victim@elsewhere.test", "--quit-after", "RCPT", "--timeout", "10", *proxy],
                                  capture_output=True, text=True, timeout=60, check=False)
            return done.stdout + done.stderr

        assert "Connection refused" in relay()
        off = ansible_playbook("converge.yml", "-l", node, "--tags", "base,haproxy,postfix", "-e",
                               json.dumps({"floatip_firewall": False, "postfix_multihome_relay_networks": []}))
        assert off["rc"] == 0, off["failures"]
        try:
            assert _host(node).run("nft list table inet floatip").rc != 0
            for claimed in ("127.0.0.1", CLIENT_ADDRESS):
                answer = relay("--proxy", f"TCP4 {claimed} {address} 40000 25")
                assert "554 5.7.1" in answer and "Relay access denied" in answer, answer
        finally:
            on = ansible_playbook("converge.yml", "-l", node, "--tags", "base,haproxy,postfix")
            assert on["rc"] == 0, on["failures"]
        assert "Connection refused" in relay("--proxy", f"TCP4 127.0.0.1 {address} 40000 25")
    # Through HAProxy the client that may relay still does.
    answer, subject = _send(CLIENT, VIP_OF[node])
    assert answer == "sent"
    _received(subject)


def test_nothing_listens_on_port_25_where_the_role_did_not_say() -> None:
    for node in NODES:
        listening = {line.split()[3] for line in _host(node).check_output("ss -Htln 'sport = :25'").splitlines()}
        # postfix on the node's own address and loopback, HAProxy on the VIPs.
        assert listening == {f"{_address(node)}:25", "127.0.0.1:25"} | {f"{vip}:25" for vip in VIP_OF.values()}
        postfix = {line.split()[0] for line in _host(node).check_output("postconf -M").splitlines() if " inet " in line}
        assert postfix == {f"{_address(node)}:25", f"{_address(node)}:587", "127.0.0.1:25", "127.0.0.1:587"}


def test_a_node_without_its_vip_sends_from_its_own_address_and_back(cluster_in_layout: None) -> None:
    node = NODES[0]
    move("standby", node)
    try:
        deadline = time.monotonic() + 15
        while _bind_address(node) != _address(node):
            assert time.monotonic() < deadline, f"{node} still sends from {_bind_address(node)} without its VIP"
            time.sleep(0.5)
        # Mail the node makes itself (cron, bounces) leaves from its own address.
        subject = f"probe-{uuid.uuid4().hex}"
        _host(node).check_output(f"printf 'Subject: {subject}\\n\\nhello\\n' | /usr/sbin/sendmail someone@world.test")
        assert _received(subject)["peer"] == _address(node)
    finally:
        move("takeover", node)
    deadline = time.monotonic() + 15
    while _bind_address(node) != VIP_OF[node]:
        assert time.monotonic() < deadline, f"{node} sends from {_bind_address(node)} after taking its VIP back"
        time.sleep(0.5)


def test_mail_accepted_before_a_freeze_is_delivered_after_it(cluster_in_layout: None) -> None:
    node = NODES[1]
    _host(WORLD).check_output("systemctl stop mail-sink")
    subjects = []
    try:
        for _ in range(5):
            answer, subject = _send(CLIENT, VIP_OF[node])
            assert answer == "sent"
            subjects.append(subject)
        with frozen(node):
            # The node's VIP goes to a peer meanwhile; nothing is lost.
            time.sleep(5)
    finally:
        _host(WORLD).check_output("systemctl start mail-sink")
    settles_as(OWNER, NODES, timeout=20)
    docker("exec", node, "postqueue", "-f")
    records = [_received(subject, timeout=60) for subject in subjects]
    assert len(records) == 5
    assert {record["peer"] for record in records} == {VIP_OF[node]}


def test_bad_input_stops_before_anything_changes() -> None:
    # One refusal through a converge proves that a refusal changes nothing
    # on a host; every bad input's message is checked in
    # tests/unit/test_role_inputs.py. This one would have made every
    # address a relay client in main.cf. Only postfix's part runs (its tag):
    # its check comes before the first task that could change a host.
    refused_with_nothing_changed({"postfix_multihome_myhostname": "mail.example.org\nmynetworks = 0.0.0.0/0"},
                                 "postfix_multihome_myhostname must be a host name", NODES, "/etc/postfix/main.cf",
                                 tags="postfix")


def test_alone_postfix_listens_on_the_vips_and_loopback_and_sends_from_its_vip(cluster_in_layout: None) -> None:
    # The reference's form: no HAProxy service in front of SMTP (HAProxy
    # keeps another service), so postfix itself listens on the VIPs.
    alone = {
        "haproxy_services": [{"name": "other", "port": 2525, "check": "tcp"}],
        "postfix_multihome_submission": False,
    }
    # Only HAProxy's and postfix's settings change: the firewall and the
    # VIP layer stay as they are.
    converge("haproxy,postfix", **alone)
    try:
        for node, vip in VIP_OF.items():
            listeners = {line.split()[0] for line in _host(node).check_output("postconf -M").splitlines() if " inet " in line}
            assert listeners == {f"{address}:25" for address in VIP_OF.values()} | {"127.0.0.1:25"}
            answer, subject = _send(CLIENT, vip)
            assert answer == "sent"
            assert _received(subject)["peer"] == vip
            answer, _ = _send(WORLD, vip, rcpt="victim@elsewhere.test")
            assert "Relay access denied" in answer
    finally:
        # Back to the cluster form in two steps: postfix gives the VIPs'
        # port 25 up before HAProxy binds it again.
        converge("haproxy,postfix", **alone, postfix_multihome_listen_addresses=["{{ floatip_address }}", "127.0.0.1"])
        converge("haproxy,postfix")
