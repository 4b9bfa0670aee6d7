"""No secret the collection handles appears in any playbook output, at -vvvv, on success or on failure.

A throwaway lab of two containers (lab/up.yml, the image of lab/vars.yml)
gets an inventory in which every secret is a marker made for this run: the
keepalived VRRPv2 password, the stats users' and a service's basic auth
passwords, the SASL users' passwords, ucarp's and CARP's passwords and
heartbeat's key. Then, each at -vvvv with --diff, and JSON results (a long
string is never folded across lines, so a grep finds it whole):

1. playbooks/site.yml builds the cluster: keepalived with its password,
   HAProxy with stats users and two HTTP services with basic auth users,
   postfix with submission and SASL users.
2. playbooks/failover_drill.yml crashes node2; its check of every HTTP
   service on every VIP, a loop over the services, passes for ``web`` and
   fails for ``dead``, a service whose servers are all down.
3. playbooks/rolling_maintenance.yml takes node1 out; its wait for the
   node's services, a loop over the services, passes for ``web`` and fails
   for ``dead``.
4. no_secret/roles.yml runs ucarp and a heartbeat pair with their secrets,
   renders CARP's configuration with its password on the controller, and
   gives every role a secret it must refuse (no_secret/refuse.yml): each
   refusal fails the role's own checks and is rescued.

Every output, stdout and stderr, must hold no marker, neither as it is nor
in base64 (as slurp returns a file). The secrets must also have been used:
the files on the nodes hold them, the stats page and dovecot accept them.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import shutil
import string
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

# Builds lab containers: run by make lab-tests, beside the Molecule scenarios.
pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGE = yaml.safe_load((ROOT / "lab" / "vars.yml").read_text(encoding="utf-8"))["floatip_lab_image"]
# Every option that shows more: the most verbose output, diffs, and results
# as JSON.
OPTIONS = ("-vvvv", "--diff")
SETTINGS = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
# Where the lab's network may go: a /24 of these that no Docker network
# overlaps.
CANDIDATE_NETWORKS = [ipaddress.ip_network(f"172.30.{third}.0/24") for third in range(200, 250)]
WEB_PORT = 8080
DEAD_PORT = 8081
TIMEOUT = 1800


def _marker(kind: str, length: int = 20, tail: str = "") -> str:
    """A string found nowhere else: the kind, then random letters and digits (length in all, before tail)."""
    alphabet = string.ascii_letters + string.digits
    return kind + "".join(secrets.choice(alphabet) for _position in range(length - len(kind))) + tail


@dataclass
class Markers:
    """One marker per secret; the refused ones break a rule of their role."""

    keepalived: str = field(default_factory=lambda: _marker("K", 8))
    stats: str = field(default_factory=lambda: _marker("nsStats"))
    auth_web: str = field(default_factory=lambda: _marker("nsAuthWeb"))
    auth_dead: str = field(default_factory=lambda: _marker("nsAuthDead"))
    sasl: str = field(default_factory=lambda: _marker("nsSasl"))
    ucarp: str = field(default_factory=lambda: _marker("nsUcarp", 19))
    heartbeat: str = field(default_factory=lambda: _marker("nsHeartbeat", 32))
    # carp(4) keeps 19 characters of a key; the role refuses more.
    carp: str = field(default_factory=lambda: _marker("nsCarp", 19))
    refused_keepalived: str = field(default_factory=lambda: _marker("K", 9))
    refused_ucarp: str = field(default_factory=lambda: _marker("nsUcarpLong", 24))
    refused_carp: str = field(default_factory=lambda: _marker("nsCarpShell", 18, tail="$(id)"))
    refused_heartbeat_words: tuple = field(default_factory=lambda: (_marker("nsHbOne"), _marker("nsHbTwo")))
    refused_stats: str = field(default_factory=lambda: _marker("nsSt", 10))
    refused_auth: str = field(default_factory=lambda: _marker("nsA", 7))
    refused_sasl: str = field(default_factory=lambda: _marker("nsSa", 10))

    @property
    def refused_heartbeat(self) -> str:
        return " ".join(self.refused_heartbeat_words)

    def searched(self) -> dict:
        """What must appear in no output, by a name for the report: each marker and its base64 forms."""
        plain = {name: value for name, value in vars(self).items() if isinstance(value, str)}
        plain.update({f"refused_heartbeat_{n}": word for n, word in enumerate(self.refused_heartbeat_words)})
        found = dict(plain)
        for name, value in plain.items():
            raw = value.encode()
            # In base64 a text shows the marker as one of three cores, by
            # where the marker starts in its group of three bytes.
            for shift in range(3):
                core = raw[shift:]
                core = core[: len(core) - len(core) % 3]
                if len(core) >= 6:
                    found[f"{name} (base64, shift {shift})"] = base64.b64encode(core).decode()
        return found


@dataclass
class Lab:
    name: str
    network: ipaddress.IPv4Network
    inventory: Path
    render_dir: Path
    markers: Markers

    def address(self, host: int) -> str:
        return str(self.network.network_address + host)

    def container(self, node: str) -> str:
        return f"floatip-{self.name}-{node}"

    def run_on(self, node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "exec", self.container(node), *argv], capture_output=True, text=True,
                              timeout=120, check=check)


def leaks(run, markers: Markers) -> list:
    """Each output line that shows a marker, with the marker's name."""
    searched = markers.searched()
    return [f"{name}: {line.strip()[:300]}" for line in run.output.splitlines()
            for name, value in searched.items() if value in line]


def _free_network() -> ipaddress.IPv4Network:
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True, check=True).stdout.split()
    taken = []
    if ids:
        inspected = subprocess.run(["docker", "network", "inspect", *ids], capture_output=True, text=True, check=True)
        for network in json.loads(inspected.stdout):
            for config in (network.get("IPAM") or {}).get("Config") or []:
                if config.get("Subnet"):
                    taken.append(ipaddress.ip_network(config["Subnet"], strict=False))
    for candidate in CANDIDATE_NETWORKS:
        if not any(candidate.version == other.version and candidate.overlaps(other) for other in taken):
            return candidate
    pytest.fail(f"no /24 of {CANDIDATE_NETWORKS[0]} to {CANDIDATE_NETWORKS[-1]} is free of Docker networks")


def _write_inventory(directory: Path, name: str, network: ipaddress.IPv4Network, render_dir: Path,
                     markers: Markers) -> None:
    def address(host: int) -> str:
        return str(network.network_address + host)

    directory.mkdir()
    (directory / "group_vars").mkdir()
    shutil.copy(ROOT / "inventories" / "lab" / "lab_connection.yml", directory / "lab_connection.yml")
    hosts = {"all": {"children": {"lab": {"children": {
        "floatip_nodes": {"hosts": {"node1": {"floatip_address": address(11)}, "node2": {"floatip_address": address(12)}}},
        "floatip_postfix": {"hosts": {"node1": None}},
    }}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    (directory / "group_vars" / "lab.yml").write_text(yaml.safe_dump({
        "ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}), encoding="utf-8")
    cluster = {
        "floatip_lab_name": name,
        "floatip_network": str(network),
        "floatip_vip_pool": [f"{address(101)}-{address(102)}"],
        "floatip_vips_per_node": 1,
        "floatip_vip_backend": "keepalived",
        "floating_ip_profile": "conservative",
        "floating_ip_password": markers.keepalived,
        "floating_ip_move_timeout": 20,
        "haproxy_stats_users": [{"name": "ops", "password": markers.stats, "admin": True}],
        "haproxy_services": [
            {"name": "smtp", "port": 25, "check": "smtp", "send_proxy": True, "check_interval": 1},
            {"name": "submission", "port": 587, "check": "smtp", "send_proxy": True, "check_interval": 1},
            {"name": "web", "mode": "http", "port": 80, "server_port": WEB_PORT, "check_path": "/", "check_interval": 1,
             "auth_users": [{"name": "alice", "password": markers.auth_web}]},
            # Nothing serves it anywhere: the loops over the services fail on it.
            {"name": "dead", "mode": "http", "port": 81, "server_port": DEAD_PORT, "vips": [address(101)],
             "check_path": "/", "check_interval": 1, "auth_users": [{"name": "bob", "password": markers.auth_dead}]},
        ],
        "postfix_multihome_submission": True,
        "postfix_multihome_sasl_users": [{"name": "carol", "password": markers.sasl}],
        # no_secret/roles.yml
        "no_secret_ucarp": {"pool": [f"{address(103)}-{address(104)}"], "password": markers.ucarp},
        "no_secret_heartbeat": {"pool": [address(105)], "key": markers.heartbeat},
        "no_secret_carp": {"render_dir": str(render_dir), "password": markers.carp},
        "no_secret_refused": {
            "keepalived": markers.refused_keepalived, "ucarp": markers.refused_ucarp, "carp": markers.refused_carp,
            "heartbeat": markers.refused_heartbeat, "stats": markers.refused_stats, "auth": markers.refused_auth,
            "sasl": markers.refused_sasl,
        },
    }
    (directory / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster, sort_keys=False), encoding="utf-8")


@pytest.fixture(name="lab", scope="module")
def fixture_lab(tmp_path_factory, ansible_playbook) -> Iterator[Lab]:
    if shutil.which("docker") is None or subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True,
                                                        check=False).returncode != 0:
        pytest.fail(f"this test runs a lab: it needs Docker and the image {IMAGE} (make image)")
    base = tmp_path_factory.mktemp("no-secret")
    name = f"nosecret{secrets.token_hex(3)}"
    lab = Lab(name=name, network=_free_network(), inventory=base / "inventory", render_dir=base / "render",
              markers=Markers())
    _write_inventory(lab.inventory, name, lab.network, lab.render_dir, lab.markers)
    try:
        up = ansible_playbook(ROOT / "lab" / "up.yml", lab.inventory, {}, timeout=600)
        assert up.rc == 0, up.output
        # The service "web" on each node: what its HAProxy servers are.
        for node, host in (("node1", 11), ("node2", 12)):
            lab.run_on(node, "systemd-run", "--unit=floatip-test-web", "--property=Restart=always", "python3", "-m",
                       "http.server", str(WEB_PORT), "--bind", lab.address(host), "--directory", "/srv")
        yield lab
    finally:
        down = ansible_playbook(ROOT / "lab" / "down.yml", lab.inventory, {}, timeout=600)
        assert down.rc == 0, down.output


def _run(ansible_playbook, lab: Lab, playbook: Path, extra_vars: dict | None = None):
    return ansible_playbook(playbook, lab.inventory, extra_vars or {}, timeout=TIMEOUT, options=OPTIONS, settings=SETTINGS)


@pytest.fixture(name="converged", scope="module")
def fixture_converged(lab, ansible_playbook):
    run = _run(ansible_playbook, lab, ROOT / "playbooks" / "site.yml")
    if run.rc != 0:
        pytest.fail(f"site.yml failed (rc {run.rc}), so nothing after it can run:\n{run.output[-20000:]}")
    return run


@pytest.fixture(name="drilled", scope="module")
def fixture_drilled(lab, converged, ansible_playbook):
    return _run(ansible_playbook, lab, ROOT / "playbooks" / "failover_drill.yml",
                {"failover_drill_node": "node2", "failover_drill_fault": "crash", "failover_drill_timeout": 15})


@pytest.fixture(name="maintained", scope="module")
def fixture_maintained(lab, drilled, ansible_playbook):
    return _run(ansible_playbook, lab, ROOT / "playbooks" / "rolling_maintenance.yml",
                {"rolling_maintenance_upgrade": False, "rolling_maintenance_service_timeout": 5})


@pytest.fixture(name="roles_run", scope="module")
def fixture_roles_run(lab, maintained, ansible_playbook):
    return _run(ansible_playbook, lab, HERE / "no_secret" / "roles.yml")


def test_site_shows_no_secret(lab, converged) -> None:
    assert leaks(converged, lab.markers) == []


def test_failover_drill_shows_no_secret_when_a_service_fails(lab, drilled) -> None:
    # The loop ran both ways: web answered on every VIP, dead did not.
    assert drilled.rc != 0, drilled.output[-20000:]
    assert "ok: [node1 -> localhost] => (item=web on " in drilled.output, drilled.output[-20000:]
    assert "failed: [node1 -> localhost] (item=dead on " in drilled.output, drilled.output[-20000:]
    assert leaks(drilled, lab.markers) == []


def test_rolling_maintenance_shows_no_secret_when_a_service_fails(lab, maintained) -> None:
    assert maintained.rc != 0, maintained.output[-20000:]
    assert "ok: [node1] => (item=web)" in maintained.output, maintained.output[-20000:]
    assert "failed: [node1] (item=dead)" in maintained.output, maintained.output[-20000:]
    assert leaks(maintained, lab.markers) == []


def test_roles_show_no_secret_when_they_run_or_refuse(lab, roles_run) -> None:
    assert roles_run.rc == 0, roles_run.output[-20000:]
    # Seven refusals, each rescued after its check said why.
    assert roles_run.recap["node1"]["failed"] == 0
    assert roles_run.output.count("fatal: [node1]") == 7, roles_run.output[-20000:]
    assert leaks(roles_run, lab.markers) == []


def test_the_secrets_were_in_use(lab, roles_run) -> None:
    """Without this, a run that never used a secret would show none either."""
    markers = lab.markers
    assert markers.keepalived in lab.run_on("node1", "cat", "/etc/keepalived/keepalived.conf").stdout
    assert lab.run_on("node1", "cat", "/etc/floatip/ucarp/password").stdout == markers.ucarp
    assert markers.heartbeat in lab.run_on("node1", "cat", "/etc/ha.d/authkeys").stdout
    assert markers.carp in (lab.render_dir / "node1" / "rc.conf").read_text(encoding="utf-8")
    stats = lab.run_on("node1", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"ops:{markers.stats}",
                       f"http://{lab.address(11)}:8404/")
    assert stats.stdout == "200"
    sasl = lab.run_on("node1", "doveadm", "auth", "test", "-a", "/var/spool/postfix/private/auth", "carol", markers.sasl,
                      check=False)
    assert "auth succeeded" in sasl.stdout, sasl.stdout + sasl.stderr
