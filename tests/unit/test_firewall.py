"""The cluster's firewall: the table computed from the parts, and the module
run as Ansible runs it against the real nft, in a network namespace of its
own (``unshare --net``), so the machine's own rules are never touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils.firewall import FirewallError, check_part, render

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
MODULE = "ansible_collections.floatip.ha.plugins.modules.firewall"
NODES = ["192.0.2.12", "192.0.2.11"]
VIPS = ["192.0.2.101", "192.0.2.102"]
HAPROXY = [
    {"what": "the services' servers", "from": "nodes", "tcp": [5080, 25, 25]},
    {"what": "the stats page", "from": "admins", "tcp": [8404]},
    {"what": "the runtime API over TCP", "from": "local", "tcp": [9999]},
]
VRRP = [{"what": "VRRP adverts", "from": "nodes", "protocol": "vrrp"}]


def test_the_table_drops_and_resets_only_what_the_parts_name() -> None:
    text = render(NODES, VIPS, ["198.51.100.0/24"], {"haproxy": HAPROXY, "floating_ip": VRRP,
                                                     "heartbeat": [{"what": "heartbeats", "from": "nodes", "udp": [694]}]})
    body = [line.strip() for line in text.splitlines()]
    start = body.index("table inet floatip {")
    assert body[3:5] == ["table inet floatip", "delete table inet floatip"]
    assert body[start + 1].startswith('comment "floatip ')
    assert body[start + 2:] == [
        "set nodes { type ipv4_addr; elements = { 192.0.2.11, 192.0.2.12 } }",
        "set admins { type ipv4_addr; flags interval; elements = { 198.51.100.0/24 } }",
        "set vips { type ipv4_addr; elements = { 192.0.2.101, 192.0.2.102 } }",
        "chain input {",
        "type filter hook input priority filter - 10; policy accept;",
        'iifname "lo" accept',
        'meta l4proto 112 ip saddr != @nodes drop comment "floating_ip: VRRP adverts"',
        "ip daddr != @vips tcp dport { 25, 5080 } ip saddr != @nodes reject with tcp reset comment \"haproxy: the services' servers\"",
        'ip daddr != @vips tcp dport { 8404 } ip saddr != @admins reject with tcp reset comment "haproxy: the stats page"',
        'ip daddr != @vips tcp dport { 9999 } reject with tcp reset comment "haproxy: the runtime API over TCP"',
        'ip daddr != @vips udp dport { 694 } ip saddr != @nodes drop comment "heartbeat: heartbeats"',
        "}",
        "}",
    ]


def test_without_admin_networks_the_admins_are_the_nodes_and_ipv6_speaks_ip6() -> None:
    text = render(["2001:db8::11", "2001:db8::12"], [], [], {"haproxy": HAPROXY[1:2]})
    assert "set admins { type ipv6_addr; flags interval; elements = { 2001:db8::11, 2001:db8::12 } }" in text
    assert "set vips" not in text
    assert 'tcp dport { 8404 } ip6 saddr != @admins reject with tcp reset comment "haproxy: the stats page"' in text


def test_the_digest_follows_the_content() -> None:
    one = render(NODES, VIPS, [], {"haproxy": HAPROXY})
    assert one == render(list(reversed(NODES)), VIPS, [], {"haproxy": HAPROXY})
    other = render(NODES + ["192.0.2.13"], VIPS, [], {"haproxy": HAPROXY})
    assert one.splitlines()[6] != other.splitlines()[6]


BAD_PARTS = [
    ("HAProxy", [], "part must be 1-32 characters"),
    ("haproxy", {"what": "x"}, "rules of part haproxy must be a list"),
    ("haproxy", ["tcp 25"], "rules[0] of part haproxy must be a mapping"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": [25], "to": "vips"}], "rules[0] of part haproxy has unknown keys to"),
    ("haproxy", [{"from": "nodes", "tcp": [25]}], "rules[0] of part haproxy lacks what"),
    ("haproxy", [{"what": 'say "hi"', "from": "nodes", "tcp": [25]}], "rules[0] of part haproxy.what"),
    ("haproxy", [{"what": "x\nflush ruleset", "from": "nodes", "tcp": [25]}], "rules[0] of part haproxy.what"),
    ("haproxy", [{"what": "x", "from": "everyone", "tcp": [25]}], "rules[0] of part haproxy.from must be one of nodes, admins, local"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": [25], "udp": [25]}], "exactly one of tcp, udp and protocol"),
    ("haproxy", [{"what": "x", "from": "nodes"}], "exactly one of tcp, udp and protocol"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": []}], "rules[0] of part haproxy.tcp must name at least one port"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": [0]}], "rules[0] of part haproxy.tcp[0] must be a whole number from 1 to 65535, got 0"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": ["25 "]}], "rules[0] of part haproxy.tcp[0] must be a whole number"),
    ("haproxy", [{"what": "x", "from": "nodes", "udp": [True]}], "rules[0] of part haproxy.udp[0] must be a whole number from 1 to 65535, got True"),
    ("haproxy", [{"what": "x", "from": "nodes", "tcp": [65536]}], "rules[0] of part haproxy.tcp[0] must be a whole number from 1 to 65535, got 65536"),
    ("floating_ip", [{"what": "x", "from": "nodes", "protocol": "ospf"}], "rules[0] of part floating_ip.protocol must be one of vrrp, carp"),
    ("floating_ip", [{"what": "x", "from": "local", "protocol": "vrrp"}], "protocol vrrp comes from the nodes"),
]


@pytest.mark.parametrize(("name", "rules", "message"), BAD_PARTS)
def test_a_bad_part_is_refused_with_what_is_wrong(name: object, rules: object, message: str) -> None:
    with pytest.raises(FirewallError, match=None) as caught:
        check_part(name, rules)
    assert message in str(caught.value)


BAD_CLUSTERS = [
    ([], VIPS, [], "nodes must list the cluster's node addresses"),
    ("192.0.2.11", VIPS, [], "nodes must be a list of IP addresses"),
    (["192.0.2.11", "node2"], VIPS, [], "nodes: 'node2' is not an IP address"),
    (["192.0.2.11", "2001:db8::1"], [], [], "nodes mixes IPv4 and IPv6"),
    (NODES, ["2001:db8::101"], [], "2001:db8::101 is not of the cluster's IP version 4"),
    (NODES, VIPS, ["10.0.0.1/8"], "admin_networks: '10.0.0.1/8' is not a network in CIDR form"),
    (NODES, VIPS, [24], "admin_networks: 24 is not a network in CIDR form"),
]


@pytest.mark.parametrize(("nodes", "vips", "admins", "message"), BAD_CLUSTERS)
def test_bad_addresses_are_refused_with_what_is_wrong(nodes: object, vips: object, admins: object, message: str) -> None:
    with pytest.raises(FirewallError) as caught:
        render(nodes, vips, admins, {"haproxy": HAPROXY})
    assert message in str(caught.value)


# ---------------------------------------------------------------- real nft

def _in_own_netns(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) in a network namespace of its own, with nft."""
    return subprocess.run(["unshare", "--net", "sh", "-ec", script], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, check=False)


@pytest.mark.parametrize(("nodes", "vips"), [(NODES, VIPS), (["2001:db8::11", "2001:db8::12"], ["2001:db8::101"])])
def test_nft_loads_the_table_twice_in_a_row(tmp_path: Path, nodes: list, vips: list) -> None:
    (tmp_path / "floatip.nft").write_text(render(nodes, vips, [], {"haproxy": HAPROXY, "floating_ip": VRRP}))
    done = _in_own_netns("nft -c -f floatip.nft; nft -f floatip.nft; nft -f floatip.nft; nft list ruleset", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("table inet floatip {") == 1
    assert "reject with tcp reset" in done.stdout


class Node:
    """The module's directory on a pretend node whose network namespace
    lives as long as one shell, so that runs see each other's table."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "firewall"
        self.tmp = tmp

    def run(self, script_before: str = "", check: bool = False, diff: bool = True, **args: object) -> tuple[dict, str]:
        """The module's result, and ``nft list ruleset`` afterwards, in a new
        namespace where ``script_before`` first loads what the node had."""
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": {"directory": str(self.dir), **args,
                                                      "_ansible_check_mode": check, "_ansible_diff": diff}})
        (self.tmp / "args.json").write_text(payload)
        script = (f"{script_before}\n"
                  f"PYTHONPATH={COLLECTIONS} {sys.executable} -m {MODULE} < args.json > result.json || true\n"
                  "nft list ruleset")
        done = _in_own_netns(script, self.tmp)
        assert done.returncode == 0, done.stderr
        return json.loads((self.tmp / "result.json").read_text()), done.stdout

    def load_kept(self) -> str:
        """Load the kept file as the boot unit would."""
        return f"nft -f {self.dir / 'floatip.nft'}"


def test_the_module_sets_a_part_once_and_again_when_the_live_table_is_not_its_own(tmp_path: Path) -> None:
    node = Node(tmp_path)
    cluster = {"nodes": NODES, "vips": VIPS}
    first, ruleset = node.run(part="haproxy", rules=HAPROXY, **cluster)
    assert first["changed"] and first["parts"] == ["haproxy"]
    assert "tcp dport { 25, 5080 }" in ruleset and "@nodes" in ruleset
    assert (node.dir / "floatip.nft").stat().st_mode & 0o777 == 0o600
    # The same part, with the table loaded as at boot: nothing to do.
    again = node.run(node.load_kept(), part="haproxy", rules=HAPROXY, **cluster)[0]
    assert not again["changed"]
    # A live table that is not the file (lost at a reboot, flushed): loaded again.
    lost, ruleset = node.run("", part="haproxy", rules=HAPROXY, **cluster)
    assert lost["changed"] and "table inet floatip" in ruleset
    # A second part joins the first.
    both, ruleset = node.run(node.load_kept(), part="floating_ip", rules=VRRP, **cluster)
    assert both["changed"] and both["parts"] == ["floating_ip", "haproxy"]
    assert "meta l4proto vrrp ip saddr != @nodes drop" in ruleset and "tcp dport { 25, 5080 }" in ruleset
    # Removing one leaves the other.
    gone, ruleset = node.run(node.load_kept(), part="haproxy", state="absent", **cluster)
    assert gone["changed"] and gone["parts"] == ["floating_ip"]
    assert "tcp dport" not in ruleset and "l4proto vrrp" in ruleset


def test_check_mode_reports_the_change_and_makes_none(tmp_path: Path) -> None:
    node = Node(tmp_path)
    result, ruleset = node.run(check=True, part="haproxy", rules=HAPROXY, nodes=NODES, vips=VIPS)
    assert result["changed"]
    assert "tcp dport { 25, 5080 }" in result["diff"]["after"] and result["diff"]["before"] == ""
    assert "floatip" not in ruleset
    assert not (node.dir / "floatip.nft").exists()


def test_a_bad_part_changes_nothing_and_says_why(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.run(part="haproxy", rules=HAPROXY, nodes=NODES, vips=VIPS)
    before = (node.dir / "floatip.nft").read_text()
    result, ruleset = node.run(node.load_kept(), part="heartbeat", rules=[{"what": "heartbeats", "from": "world", "udp": [694]}],
                               nodes=NODES, vips=VIPS)
    assert result["failed"]
    assert "rules[0] of part heartbeat.from must be one of nodes, admins, local, got 'world'" in result["msg"]
    assert (node.dir / "floatip.nft").read_text() == before
    assert not (node.dir / "parts" / "heartbeat.json").exists()
    assert "tcp dport { 25, 5080 }" in ruleset


def test_disabled_removes_the_table_and_every_part(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.run(part="haproxy", rules=HAPROXY, nodes=NODES, vips=VIPS)
    result, ruleset = node.run(node.load_kept(), state="disabled")
    assert result["changed"]
    assert "floatip" not in ruleset
    assert not (node.dir / "floatip.nft").exists() and not list((node.dir / "parts").iterdir())
    again = node.run(state="disabled")[0]
    assert not again["changed"]
