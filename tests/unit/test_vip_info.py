"""The vip_info module: module_utils/vip_info.py for every backend, then the module end to end.

Each node is played in a temporary directory: the layout file, the state
files the keepalived notify script or the ucarp up/down scripts write, the
standby switches, and stand-in programs (small shell scripts) for ip,
cl_status, ifconfig and sysctl that check their arguments and print what
the real program would. The Linux side reads fixtures/vip_info/:

- ip-o-address-node1.txt: ``ip -o address show`` of node1 holding VIP
  172.30.80.101 (IPv4, secondary on eth0) and 2001:db8:80::101, with an IPv6
  address whose duplicate address detection failed.
- ip-o-address-front1-holds-vip.txt / -no-vip.txt: a heartbeat node with and
  without the pair's VIP 172.30.83.100.

FreeBSD is read from the recordings in fixtures/ifconfig/ (see
test_carp.py) and, end to end, from fixtures/ifconfig_standin.py, which
prints a pretend host's state as FreeBSD's ifconfig and sysctl do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import vip_info
from ansible_collections.floatip.ha.plugins.module_utils.vip_info import Host, Paths, VipInfoError

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
MODULE = "ansible_collections.floatip.ha.plugins.modules.vip_info"
FIXTURES = Path(__file__).parent / "fixtures"
STANDIN = FIXTURES / "ifconfig_standin.py"
NOT_APPLIED = "the VIP layer (floatip.ha.floating_ip or floatip.ha.heartbeat) has not been applied to this node"

# node1 of a three-node keepalived ring: it owns 172.30.80.101 and backs up the others.
KEEPALIVED_VIPS = [
    {"address": "172.30.80.101", "vrid": 1, "priority": 200, "advskew": 0, "owner": "node1"},
    {"address": "172.30.80.102", "vrid": 2, "priority": 197, "advskew": 3, "owner": "node2"},
    {"address": "172.30.80.103", "vrid": 3, "priority": 194, "advskew": 6, "owner": "node3"},
]
HEARTBEAT_VIPS = [{"address": "172.30.83.100", "vrid": None, "priority": None, "advskew": None, "owner": "front1"}]
# mail01 of the five-node mail ring (fixtures/ifconfig/*-mail01-ring.txt): ten vhids, it owns 1 and 6.
RING_ADVSKEW = {1: 0, 2: 200, 3: 150, 4: 100, 5: 50, 6: 0, 7: 50, 8: 100, 9: 150, 10: 200}
RING_VIPS = [{"address": f"192.0.2.{100 + v}", "vrid": v, "priority": None, "advskew": RING_ADVSKEW[v],
              "owner": "mail01" if RING_ADVSKEW[v] == 0 else f"mail0{(v - 1) % 5 + 1}"} for v in range(1, 11)]


def fixture(name: str) -> str:
    return (FIXTURES / "vip_info" / name).read_text(encoding="utf-8")


def recording(name: str) -> str:
    return (FIXTURES / "ifconfig" / name).read_text(encoding="utf-8")


def vip_facts(vips: list, states: dict, held: set) -> list:
    """What the facts say of each VIP, given its state and whether it is held."""
    return [dict(vip, state=states[vip["address"]], held=vip["address"] in held) for vip in vips]


class Node:
    """One node in a temporary directory: layout, state files, standby switches and stand-in programs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.state_dir = tmp / "run-floatip"
        self.layout_path = tmp / "etc-floatip" / "layout.json"
        self.keepalived_standby = tmp / "etc-keepalived" / "floatip-standby"
        self.ucarp_standby = tmp / "etc-floatip" / "ucarp" / "standby"
        self.env = {"PYTHONPATH": str(COLLECTIONS)}

    def layout(self, backend: str, node: str, vips: list, interface: str = "eth0") -> None:
        self.layout_path.parent.mkdir(parents=True, exist_ok=True)
        # As roles/floating_ip/templates/layout.json.j2 writes it, "managed" included.
        data = {"managed": "Ansible managed", "backend": backend, "node": node, "interface": interface, "prefixlen": 24,
                "vips": vips}
        self.layout_path.write_text(json.dumps(data, indent=1), encoding="utf-8")

    def state(self, subdir: str, name: str, text: str) -> None:
        path = self.state_dir / subdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def keepalived(self, vrid: int, state: str) -> None:
        self.state("vrrp", f"vrid-{vrid}.state", state + "\n")

    def ucarp(self, vrid: int, state: str) -> None:
        self.state("ucarp", f"vhid-{vrid}.state", state + "\n")

    def standby(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def program(self, name: str, argv: list, stdout: str, rc: int = 0, stderr: str = "") -> None:
        """A stand-in that prints stdout and stderr and exits rc, and refuses other arguments."""
        (self.bin / f"{name}.out").write_text(stdout, encoding="utf-8")
        (self.bin / f"{name}.err").write_text(stderr, encoding="utf-8")
        script = self.bin / name
        script.write_text(
            "#!/bin/sh\n"
            f'if [ "$*" != "{" ".join(argv)}" ]; then echo "{name} stand-in: unexpected arguments: $*" >&2; exit 64; fi\n'
            f'cat "{self.bin / name}.out"\ncat "{self.bin / name}.err" >&2\nexit {rc}\n', encoding="utf-8")
        script.chmod(0o755)

    def ip(self, name: str) -> None:
        self.program("ip", ["-o", "address", "show"], fixture(name))

    def cl_status(self, rscstatus: str, rc: int = 0) -> None:
        if rc:
            self.program("cl_status", ["rscstatus"], "", rc=rc, stderr="Heartbeat is stopped on this node.\n")
        else:
            self.program("cl_status", ["rscstatus"], rscstatus + "\n")

    def freebsd(self, ifconfig: str, sysctl: str = "0\n", sysctl_rc: int = 0, sysctl_err: str = "") -> None:
        self.program("ifconfig", ["-a"], ifconfig)
        self.program("sysctl", ["-n", "net.inet.carp.demotion"], sysctl, rc=sysctl_rc, stderr=sysctl_err)

    def paths(self) -> Paths:
        return Paths(layout=str(self.layout_path), state_dir=str(self.state_dir), ip=str(self.bin / "ip"),
                     cl_status=str(self.bin / "cl_status"), ifconfig=str(self.bin / "ifconfig"),
                     sysctl=str(self.bin / "sysctl"), keepalived_standby=str(self.keepalived_standby),
                     ucarp_standby=str(self.ucarp_standby))

    @staticmethod
    def host() -> Host:
        def run(argv: list) -> tuple:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            return proc.returncode, proc.stdout, proc.stderr

        def read_text(path: str) -> str | None:
            try:
                return Path(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                return None

        return Host(run=run, read_text=read_text, exists=lambda path: Path(path).exists())

    def collect(self) -> dict:
        return vip_info.collect(self.host(), self.paths())

    def args(self, **extra: object) -> dict:
        """The module's arguments, pointing it at this node."""
        paths = self.paths()
        args = {"layout_path": paths.layout, "state_dir": paths.state_dir, "keepalived_standby_file": paths.keepalived_standby,
                "ucarp_standby_file": paths.ucarp_standby}
        args.update({f"{name}_path": getattr(paths, name) for name in ("ip", "cl_status", "ifconfig", "sysctl")
                     if (self.bin / name).exists()})
        args.update(extra)
        return args

    def run_module(self, args: dict, check: bool = False) -> dict:
        payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}
        proc = subprocess.run([sys.executable, "-m", MODULE], input=json.dumps(payload), capture_output=True, text=True,
                              env=dict(os.environ, **self.env), timeout=120, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"module printed no JSON (rc {proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
        assert (proc.returncode != 0) == bool(result.get("failed")), result
        return result


@pytest.fixture(name="node")
def fixture_node(tmp_path: Path) -> Node:
    return Node(tmp_path)


# --- the layout ------------------------------------------------------------

def test_layout_is_read_and_checked(node: Node) -> None:
    node.layout("keepalived", "node1", KEEPALIVED_VIPS)
    layout = vip_info.read_layout(node.host(), str(node.layout_path))
    assert layout == {"backend": "keepalived", "node": "node1", "interface": "eth0", "prefixlen": 24, "vips": KEEPALIVED_VIPS}


def test_missing_layout_says_the_vip_layer_was_not_applied(node: Node) -> None:
    with pytest.raises(VipInfoError) as error:
        vip_info.read_layout(node.host(), str(node.layout_path))
    assert str(error.value) == f"{node.layout_path} does not exist: {NOT_APPLIED}; apply it first"


def test_unreadable_layout_says_the_vip_layer_was_not_applied(node: Node) -> None:
    def refuse(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    host = Host(run=None, read_text=refuse, exists=None)
    with pytest.raises(VipInfoError) as error:
        vip_info.read_layout(host, "/etc/floatip/layout.json")
    assert str(error.value) == ("cannot read /etc/floatip/layout.json (Permission denied): "
                                f"{NOT_APPLIED}, or the file was damaged since; apply it")


@pytest.mark.parametrize(("text", "what"), [
    ("{", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("[]", "expected a JSON object, got list"),
    ('{"backend": "vrrp", "node": "n", "vips": []}', "backend must be one of keepalived, carp, ucarp, heartbeat, got 'vrrp'"),
    ('{"backend": "ucarp", "node": "", "vips": []}', "node must be the node's inventory name, got ''"),
    ('{"backend": "ucarp", "node": "n", "vips": {}}', "vips must be a list, got {}"),
    ('{"backend": "ucarp", "node": "n", "vips": [{"address": "172.30.80.101/24", "vrid": 1}]}',
     "vips[0].address must be an IP address, got '172.30.80.101/24'"),
    ('{"backend": "keepalived", "node": "n", "vips": [{"address": "172.30.80.101", "vrid": null}]}',
     "vips[0].vrid must be an integer from 1 to 255 with the keepalived backend, got None"),
    ('{"backend": "carp", "node": "n", "vips": [{"address": "192.0.2.1", "vrid": 256}]}',
     "vips[0].vrid must be an integer from 1 to 255 with the carp backend, got 256"),
    ('{"backend": "carp", "node": "n", "vips": [{"address": "192.0.2.1", "vrid": 1, "priority": "high"}]}',
     "vips[0].priority must be an integer or null, got 'high'"),
    ('{"backend": "heartbeat", "node": "n", "vips": [{"address": "2001:db8::1"}, {"address": "2001:DB8:0::1"}]}',
     "vips[1].address 2001:DB8:0::1 is listed twice"),
])
def test_bad_layout_names_what_is_wrong(text: str, what: str) -> None:
    with pytest.raises(VipInfoError) as error:
        vip_info.parse_layout(text, "/etc/floatip/layout.json")
    assert str(error.value) == (f"/etc/floatip/layout.json: {what}; "
                                "apply the VIP layer (floatip.ha.floating_ip or floatip.ha.heartbeat) to this node again")


def test_heartbeat_layout_needs_no_vrid() -> None:
    text = json.dumps({"backend": "heartbeat", "node": "front2", "interface": "eth0", "prefixlen": 24, "vips": HEARTBEAT_VIPS})
    assert vip_info.parse_layout(text)["vips"] == HEARTBEAT_VIPS


# --- ip -o address show ----------------------------------------------------

def test_ip_addresses_with_their_interfaces() -> None:
    assert vip_info.parse_ip_addresses(fixture("ip-o-address-node1.txt")) == {
        "127.0.0.1": "lo", "::1": "lo", "172.30.80.11": "eth0", "172.30.80.101": "eth0",
        "2001:db8:80::101": "eth0", "fe80::42:acff:fe1e:500b": "eth0"}


def test_ip_addresses_compare_in_any_spelling() -> None:
    text = "3: eth1@if12    inet6 2001:DB8:80:0:0::101/64 scope global \\       valid_lft forever preferred_lft forever\n"
    assert vip_info.parse_ip_addresses(text) == {"2001:db8:80::101": "eth1"}


# --- keepalived ------------------------------------------------------------

def keepalived_node(node: Node, states: dict, ip: str = "ip-o-address-node1.txt") -> None:
    node.layout("keepalived", "node1", KEEPALIVED_VIPS)
    node.ip(ip)
    for vrid, state in states.items():
        node.keepalived(vrid, state)


def test_keepalived_owner_holds_its_vip(node: Node) -> None:
    keepalived_node(node, {1: "MASTER", 2: "BACKUP"})
    assert node.collect() == {
        "backend": "keepalived", "node": "node1", "standby": False, "held": ["172.30.80.101"],
        "vips": vip_facts(KEEPALIVED_VIPS, {"172.30.80.101": "MASTER", "172.30.80.102": "BACKUP", "172.30.80.103": "INIT"},
                          {"172.30.80.101"}),
        "problems": []}


def test_keepalived_state_and_addresses_that_disagree(node: Node) -> None:
    layout_vips = [dict(KEEPALIVED_VIPS[0], address="172.30.80.105"), KEEPALIVED_VIPS[1],
                   dict(KEEPALIVED_VIPS[2], address="172.30.80.101")]
    node.layout("keepalived", "node1", layout_vips)
    node.ip("ip-o-address-node1.txt")
    node.keepalived(1, "MASTER")
    node.keepalived(2, "BACKUP")
    node.keepalived(3, "STOP")
    facts = node.collect()
    assert [(v["state"], v["held"]) for v in facts["vips"]] == [("MASTER", False), ("BACKUP", False), ("STOP", True)]
    assert facts["held"] == ["172.30.80.101"]
    assert facts["problems"] == [
        "172.30.80.105 (vrid 1): keepalived reports MASTER but this node does not hold the address",
        "172.30.80.101 (vrid 3): this node holds the address but keepalived reports STOP"]


def test_keepalived_standby_is_fault_on_purpose(node: Node) -> None:
    keepalived_node(node, {1: "FAULT", 2: "FAULT", 3: "FAULT"}, ip="ip-o-address-front1-no-vip.txt")
    node.standby(node.keepalived_standby, "1\n")
    facts = node.collect()
    assert facts["standby"] is True and facts["held"] == [] and facts["problems"] == []
    assert [v["state"] for v in facts["vips"]] == ["FAULT", "FAULT", "FAULT"]


def test_keepalived_fault_outside_standby_and_master_in_standby(node: Node) -> None:
    keepalived_node(node, {1: "MASTER", 2: "FAULT"})
    node.standby(node.keepalived_standby, "0\n")
    assert node.collect()["problems"] == [
        "172.30.80.102 (vrid 2): keepalived reports FAULT (a tracked process or the interface is down) "
        "and the node is not in maintenance standby"]
    node.standby(node.keepalived_standby, "2\n")
    assert node.collect()["problems"] == [
        "172.30.80.101 (vrid 1): keepalived reports MASTER although the node is in maintenance standby"]


def test_keepalived_unreadable_state_and_standby_are_problems(node: Node) -> None:
    keepalived_node(node, {1: "MASTER", 2: "backup", 3: "SPLIT"})
    node.standby(node.keepalived_standby, "yes\n")
    facts = node.collect()
    assert [v["state"] for v in facts["vips"]] == ["MASTER", "BACKUP", "UNKNOWN"]
    assert facts["standby"] is None
    assert facts["problems"] == [
        f"{node.state_dir}/vrrp/vrid-3.state holds 'SPLIT', expected MASTER, BACKUP, FAULT, STOP",
        f"{node.keepalived_standby} holds 'yes', expected a number (0: not in standby)"]


def test_failing_ip_is_an_error(node: Node) -> None:
    node.layout("keepalived", "node1", KEEPALIVED_VIPS)
    node.program("ip", ["-o", "address", "show"], "", rc=1, stderr="Cannot open netlink socket: Permission denied\n")
    with pytest.raises(VipInfoError) as error:
        node.collect()
    assert str(error.value) == (f"{node.bin}/ip -o address show failed (rc 1: Cannot open netlink socket: Permission denied): "
                                "cannot tell which addresses this node holds")


# --- ucarp -----------------------------------------------------------------

def test_ucarp_states_from_the_up_down_scripts(node: Node) -> None:
    node.layout("ucarp", "node1", KEEPALIVED_VIPS)
    node.ip("ip-o-address-node1.txt")
    node.ucarp(1, "MASTER")
    node.ucarp(2, "BACKUP")
    assert node.collect() == {
        "backend": "ucarp", "node": "node1", "standby": False, "held": ["172.30.80.101"],
        "vips": vip_facts(KEEPALIVED_VIPS, {"172.30.80.101": "MASTER", "172.30.80.102": "BACKUP", "172.30.80.103": "INIT"},
                          {"172.30.80.101"}),
        "problems": []}


def test_ucarp_standby_marker_and_problems(node: Node) -> None:
    node.layout("ucarp", "node1", KEEPALIVED_VIPS)
    node.ip("ip-o-address-node1.txt")
    node.ucarp(1, "BACKUP")
    node.ucarp(2, "MASTER")
    node.ucarp(3, "FAULT")
    node.standby(node.ucarp_standby, "UCARP_ADVSKEW=240\n")
    facts = node.collect()
    assert facts["standby"] is True
    assert [v["state"] for v in facts["vips"]] == ["BACKUP", "MASTER", "UNKNOWN"]
    assert facts["problems"] == [
        f"{node.state_dir}/ucarp/vhid-3.state holds 'FAULT', expected MASTER or BACKUP",
        "172.30.80.101 (vhid 1): this node holds the address but ucarp reports BACKUP",
        "172.30.80.102 (vhid 2): ucarp reports MASTER but this node does not hold the address"]


# --- heartbeat -------------------------------------------------------------

@pytest.mark.parametrize(("node_name", "rscstatus", "ip", "state"), [
    # The VIPs are the primary's "local" resources and the secondary's "foreign" ones.
    ("front1", "local", "ip-o-address-front1-holds-vip.txt", "MASTER"),
    ("front1", "all", "ip-o-address-front1-holds-vip.txt", "MASTER"),
    ("front1", "foreign", "ip-o-address-front1-no-vip.txt", "BACKUP"),
    ("front1", "none", "ip-o-address-front1-no-vip.txt", "BACKUP"),
    ("front2", "local", "ip-o-address-front1-no-vip.txt", "BACKUP"),
    ("front2", "foreign", "ip-o-address-front1-holds-vip.txt", "MASTER"),
    ("front2", "all", "ip-o-address-front1-holds-vip.txt", "MASTER"),
    ("front2", "none", "ip-o-address-front1-no-vip.txt", "BACKUP"),
])
def test_heartbeat_rscstatus(node: Node, node_name: str, rscstatus: str, ip: str, state: str) -> None:
    node.layout("heartbeat", node_name, HEARTBEAT_VIPS)
    node.ip(ip)
    node.cl_status(rscstatus)
    held = state == "MASTER"
    assert node.collect() == {
        "backend": "heartbeat", "node": node_name, "standby": None, "held": ["172.30.83.100"] if held else [],
        "vips": vip_facts(HEARTBEAT_VIPS, {"172.30.83.100": state}, {"172.30.83.100"} if held else set()),
        "problems": []}


def test_heartbeat_down_is_stop(node: Node) -> None:
    node.layout("heartbeat", "front1", HEARTBEAT_VIPS)
    node.ip("ip-o-address-front1-no-vip.txt")
    node.cl_status("", rc=1)
    facts = node.collect()
    assert facts["vips"][0]["state"] == "STOP" and facts["problems"] == []
    # An address left behind by a heartbeat that died.
    node.ip("ip-o-address-front1-holds-vip.txt")
    assert node.collect()["problems"] == ["172.30.83.100: this node holds the address but heartbeat reports STOP"]


def test_heartbeat_disagreements(node: Node) -> None:
    node.layout("heartbeat", "front1", HEARTBEAT_VIPS)
    node.ip("ip-o-address-front1-no-vip.txt")
    node.cl_status("local")
    assert node.collect()["problems"] == ["172.30.83.100: heartbeat reports MASTER but this node does not hold the address"]
    node.cl_status("transition")
    facts = node.collect()
    assert facts["vips"][0]["state"] == "TRANSITION" and facts["problems"] == []
    node.cl_status("local resources")
    facts = node.collect()
    assert facts["vips"][0]["state"] == "UNKNOWN"
    assert facts["problems"] == [f"{node.bin}/cl_status rscstatus printed 'local resources', "
                                 "expected one of all, local, foreign, none, transition"]


# --- carp (FreeBSD) --------------------------------------------------------

RING_MASTERS = {"192.0.2.101", "192.0.2.106"}


def ring_states(masters: set) -> dict:
    return {vip["address"]: "MASTER" if vip["address"] in masters else "BACKUP" for vip in RING_VIPS}


@pytest.mark.parametrize(("name", "sysctl", "sysctl_rc", "sysctl_err", "standby"), [
    ("freebsd-14.1-mail01-ring.txt", "0\n", 0, "", False),
    ("freebsd-14.1-mail01-ring.txt", "50\n", 0, "", True),
    # FreeBSD 9 has no demotion counter.
    ("freebsd-9.1-mail01-ring.txt", "", 1, "sysctl: unknown oid 'net.inet.carp.demotion'\n", None),
])
def test_carp_ring_node(node: Node, name: str, sysctl: str, sysctl_rc: int, sysctl_err: str, standby: bool | None) -> None:
    node.layout("carp", "mail01", RING_VIPS, interface="em0")
    node.freebsd(recording(name), sysctl, sysctl_rc, sysctl_err)
    assert node.collect() == {
        "backend": "carp", "node": "mail01", "standby": standby, "held": ["192.0.2.101", "192.0.2.106"],
        "vips": vip_facts(RING_VIPS, ring_states(RING_MASTERS), RING_MASTERS), "problems": []}


def test_carp_two_interfaces_ipv6_init_and_a_missing_vhid(node: Node) -> None:
    vips = [{"address": "203.0.113.10", "vrid": 1, "priority": None, "advskew": 0, "owner": "gw1"},
            {"address": "2001:DB8:113:0::10", "vrid": 1, "priority": None, "advskew": 0, "owner": "gw1"},
            {"address": "203.0.113.20", "vrid": 2, "priority": None, "advskew": 100, "owner": "gw2"},
            {"address": "198.51.100.10", "vrid": 3, "priority": None, "advskew": 50, "owner": "gw2"},
            {"address": "198.51.100.11", "vrid": 4, "priority": None, "advskew": 50, "owner": "gw2"}]
    node.layout("carp", "gw1", vips, interface="igb0")
    node.freebsd(recording("freebsd-13.2-two-nics-init.txt"))
    facts = node.collect()
    assert facts["held"] == ["203.0.113.10", "2001:DB8:113:0::10"]
    assert [(v["state"], v["held"]) for v in facts["vips"]] == [
        ("MASTER", True), ("MASTER", True), ("BACKUP", False), ("INIT", False), ("STOP", False)]
    assert facts["problems"] == ["198.51.100.11 (vhid 4): ifconfig shows no vhid 4 on this node"]


SAME_VHID_TWICE = """\
em1: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tinet 198.51.100.11 netmask 0xffffff00 broadcast 198.51.100.255
\tinet 198.51.100.101 netmask 0xffffffff broadcast 198.51.100.101 vhid 1
\tcarp: MASTER vhid 1 advbase 1 advskew 0
\t      peer 224.0.0.18 peer6 ff02::12
em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tinet 192.0.2.11 netmask 0xffffff00 broadcast 192.0.2.255
\tinet 192.0.2.101 netmask 0xffffffff broadcast 192.0.2.101 vhid 1
\tcarp: BACKUP vhid 1 advbase 1 advskew 100
\t      peer 224.0.0.18 peer6 ff02::12
"""


@pytest.mark.parametrize(("address", "interface", "state"), [
    ("192.0.2.101", "em1", "BACKUP"),     # the vhid that carries the address, wherever the layout says
    ("198.51.100.101", "em0", "MASTER"),
    ("192.0.2.150", "em0", "BACKUP"),     # no vhid carries it: the one on the layout's interface
    ("192.0.2.150", "em1", "MASTER"),
])
def test_carp_same_vhid_on_two_interfaces(node: Node, address: str, interface: str, state: str) -> None:
    node.layout("carp", "gw1", [{"address": address, "vrid": 1, "priority": None, "advskew": 0, "owner": "gw1"}], interface)
    node.freebsd(SAME_VHID_TWICE)
    assert node.collect()["vips"][0]["state"] == state


def test_carp_master_without_the_address(node: Node) -> None:
    vips = [dict(RING_VIPS[0], address="192.0.2.199"), RING_VIPS[1]]
    node.layout("carp", "mail01", vips, interface="em0")
    node.freebsd(recording("freebsd-14.1-mail01-ring.txt"))
    facts = node.collect()
    assert facts["held"] == []
    assert facts["problems"] == ["192.0.2.199 (vhid 1): CARP reports MASTER but this node does not hold the address"]


def test_carp_failing_sysctl_is_a_problem_and_failing_ifconfig_an_error(node: Node) -> None:
    node.layout("carp", "mail01", RING_VIPS, interface="em0")
    node.freebsd(recording("freebsd-14.1-mail01-ring.txt"), "", 1, "sysctl: Operation not permitted\n")
    facts = node.collect()
    assert facts["standby"] is None
    assert facts["problems"] == [f"{node.bin}/sysctl -n net.inet.carp.demotion failed (rc 1: sysctl: Operation not permitted)"]
    node.program("ifconfig", ["-a"], "", rc=1, stderr="ifconfig: socket: Protocol not supported\n")
    with pytest.raises(VipInfoError) as error:
        node.collect()
    assert str(error.value) == (f"{node.bin}/ifconfig -a failed (rc 1: ifconfig: socket: Protocol not supported): "
                                "cannot read the CARP state of this node")


# --- the module end to end -------------------------------------------------

def test_module_keepalived_in_check_mode_too(node: Node) -> None:
    keepalived_node(node, {1: "MASTER", 2: "BACKUP", 3: "BACKUP"})
    expected = {"backend": "keepalived", "node": "node1", "standby": False, "held": ["172.30.80.101"],
                "vips": vip_facts(KEEPALIVED_VIPS, {"172.30.80.101": "MASTER", "172.30.80.102": "BACKUP",
                                                    "172.30.80.103": "BACKUP"}, {"172.30.80.101"}),
                "problems": []}
    for check in (False, True):
        result = node.run_module(node.args(), check=check)
        assert result["changed"] is False
        assert result["ansible_facts"] == {"floatip_vips": expected}


def test_module_ucarp(node: Node) -> None:
    node.layout("ucarp", "node1", KEEPALIVED_VIPS)
    node.ip("ip-o-address-node1.txt")
    node.ucarp(1, "MASTER")
    node.ucarp(2, "MASTER")
    node.standby(node.ucarp_standby, "")
    facts = node.run_module(node.args())["ansible_facts"]["floatip_vips"]
    assert (facts["backend"], facts["standby"], facts["held"]) == ("ucarp", True, ["172.30.80.101"])
    assert [v["state"] for v in facts["vips"]] == ["MASTER", "MASTER", "INIT"]
    assert facts["problems"] == ["172.30.80.102 (vhid 2): ucarp reports MASTER but this node does not hold the address"]


def test_module_heartbeat(node: Node) -> None:
    node.layout("heartbeat", "front2", HEARTBEAT_VIPS)
    node.ip("ip-o-address-front1-holds-vip.txt")
    node.cl_status("foreign")
    result = node.run_module(node.args())
    assert result["changed"] is False
    assert result["ansible_facts"]["floatip_vips"] == {
        "backend": "heartbeat", "node": "front2", "standby": None, "held": ["172.30.83.100"],
        "vips": vip_facts(HEARTBEAT_VIPS, {"172.30.83.100": "MASTER"}, {"172.30.83.100"}), "problems": []}


def freebsd_state(release: str, demotion: int | None) -> dict:
    """mail01 of the ring as fixtures/ifconfig_standin.py keeps it."""
    carps = [{"vhid": v, "state": "MASTER" if RING_ADVSKEW[v] == 0 else "BACKUP", "advbase": 1, "advskew": RING_ADVSKEW[v]}
             for v in range(1, 11)]
    em0 = {"name": "em0", "ether": "08:00:27:4d:a0:01", "inet": [{"addr": "192.0.2.11", "prefixlen": 24}]}
    if release.startswith("9."):
        carp_ifs = [{"name": f"carp{c['vhid'] - 1}", "kind": "carp",
                     "inet": [{"addr": f"192.0.2.{100 + c['vhid']}", "prefixlen": 24}], "carp": [c]} for c in carps]
        return {"release": release, "interfaces": [em0, *carp_ifs], "sysctl": {"net.inet.carp.allow": 1}}
    em0["inet"] += [{"addr": f"192.0.2.{100 + v}", "prefixlen": 32, "vhid": v} for v in range(1, 11)]
    em0["carp"] = carps
    return {"release": release, "interfaces": [em0], "sysctl": {"net.inet.carp.demotion": demotion, "net.inet.carp.allow": 1}}


@pytest.mark.parametrize(("release", "demotion", "standby"), [("14.1", 0, False), ("14.1", 240, True), ("9.1", None, None)])
def test_module_carp(node: Node, release: str, demotion: int | None, standby: bool | None) -> None:
    for tool in ("ifconfig", "sysctl"):
        wrapper = node.bin / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" --as {tool} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    state_path = node.tmp / "carp.json"
    state = freebsd_state(release, demotion)
    # vhid 6 stepped down: another node holds it now.
    carp6 = next(c for i in state["interfaces"] for c in i.get("carp", []) if c["vhid"] == 6)
    carp6["state"] = "BACKUP"
    state_path.write_text(json.dumps(state), encoding="utf-8")
    node.env["FLOATIP_STANDIN_STATE"] = str(state_path)
    node.layout("carp", "mail01", RING_VIPS, interface="em0")
    result = node.run_module(node.args())
    assert result["changed"] is False
    assert result["ansible_facts"]["floatip_vips"] == {
        "backend": "carp", "node": "mail01", "standby": standby, "held": ["192.0.2.101"],
        "vips": vip_facts(RING_VIPS, ring_states({"192.0.2.101"}), {"192.0.2.101"}), "problems": []}


def test_module_fails_without_a_layout(node: Node) -> None:
    result = node.run_module(node.args())
    assert result["failed"] is True
    assert result["msg"] == f"{node.layout_path} does not exist: {NOT_APPLIED}; apply it first"


def test_module_fails_on_a_program_that_is_not_there(node: Node) -> None:
    node.layout("keepalived", "node1", KEEPALIVED_VIPS)
    result = node.run_module(node.args(ip_path=str(node.tmp / "no-ip")))
    assert result["msg"] == f"ip_path {node.tmp / 'no-ip'} is not an executable file"
