"""The carp_state module end to end, run as Ansible runs it, against stand-in programs.

Each test starts the real module in a subprocess with its arguments on stdin.
FreeBSD is played by fixtures/ifconfig_standin.py (as ifconfig and sysctl),
which keeps a pretend host's CARP state in a JSON file and changes it as
FreeBSD does; ucarp is played by an environment file and a state file in
temporary directories and the same stand-in as systemctl, which records its
arguments and writes BACKUP to the state file as the unit's down script would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import carp

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
MODULE = "ansible_collections.floatip.ha.plugins.modules.carp_state"
FIXTURES = Path(__file__).parent / "fixtures"
STANDIN = FIXTURES / "ifconfig_standin.py"
RING_ADVSKEW = {1: 0, 2: 200, 3: 150, 4: 100, 5: 50, 6: 0, 7: 50, 8: 100, 9: 150, 10: 200}
SYSCTL_14 = {"net.inet.carp.ifdown_demotion_factor": 240, "net.inet.carp.senderr_demotion_factor": 240,
             "net.inet.carp.demotion": 0, "net.inet.carp.log": 1, "net.inet.carp.preempt": 1,
             "net.inet.carp.dscp": 56, "net.inet.carp.allow": 1}
SYSCTL_9 = {"net.inet.carp.allow": 1, "net.inet.carp.preempt": 0, "net.inet.carp.log": 1,
            "net.inet.carp.arpbalance": 0, "net.inet.carp.suppress_preempt": 0}
READS = [("ifconfig", ["-a"]), ("sysctl", ["net.inet.carp"])]


def ring_node(release: str) -> dict:
    """mail01 of the five-node mail ring (ten vhids, MASTER of 1 and 6), as the stand-in keeps it."""
    carps = [{"vhid": v, "state": "MASTER" if RING_ADVSKEW[v] == 0 else "BACKUP", "advbase": 1, "advskew": RING_ADVSKEW[v]}
             for v in range(1, 11)]
    em0 = {"name": "em0", "ether": "08:00:27:4d:a0:01", "inet": [{"addr": "192.0.2.11", "prefixlen": 24}]}
    lo0 = {"name": "lo0", "kind": "loopback", "inet": [{"addr": "127.0.0.1", "prefixlen": 8}]}
    if release.startswith("9."):
        em0["options"] = "9b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM>"
        carp_ifs = [{"name": f"carp{c['vhid'] - 1}", "kind": "carp",
                     "inet": [{"addr": f"192.0.2.{100 + c['vhid']}", "prefixlen": 24}], "carp": [c]} for c in carps]
        return {"release": release, "interfaces": [em0, lo0, *carp_ifs], "sysctl": dict(SYSCTL_9)}
    em0["options"] = "481009b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM,VLAN_HWFILTER,HWSTATS,MEXTPG>"
    em0["inet"] += [{"addr": f"192.0.2.{100 + v}", "prefixlen": 32, "vhid": v} for v in range(1, 11)]
    em0["carp"] = carps
    return {"release": release, "interfaces": [em0, lo0], "sysctl": dict(SYSCTL_14)}


class StandIn:
    """Wrappers named ifconfig, sysctl and systemctl, the stand-in's state and log, and a module runner."""

    def __init__(self, tmp: Path) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for tool in ("ifconfig", "sysctl", "systemctl"):
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" --as {tool} "$@"\n', encoding="utf-8")
            wrapper.chmod(0o755)
        self.state_path = tmp / "carp.json"
        self.log_path = tmp / "calls.jsonl"
        self.env_dir = tmp / "etc-floatip-ucarp"
        self.state_dir = tmp / "run-floatip-ucarp"
        self.env_dir.mkdir()
        self.state_dir.mkdir()
        self.env = dict(os.environ, PYTHONPATH=str(COLLECTIONS), FLOATIP_STANDIN_STATE=str(self.state_path),
                        FLOATIP_STANDIN_LOG=str(self.log_path), FLOATIP_STANDIN_UCARP_STATE_DIR=str(self.state_dir))

    def write(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    def read(self) -> dict:
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def carp_of(self, interface: str, vhid: int) -> dict:
        iface = next(i for i in self.read()["interfaces"] if i["name"] == interface)
        return next(c for c in iface["carp"] if c["vhid"] == vhid)

    def calls(self) -> list:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [(call["tool"], call["argv"]) for call in map(json.loads, lines)]

    def forget_calls(self) -> None:
        self.log_path.unlink(missing_ok=True)

    def freebsd(self, **args: object) -> dict:
        return dict(args, backend="freebsd", ifconfig_path=str(self.bin / "ifconfig"), sysctl_path=str(self.bin / "sysctl"))

    def ucarp(self, **args: object) -> dict:
        return dict(args, systemctl_path=str(self.bin / "systemctl"), ucarp_env_dir=str(self.env_dir),
                    ucarp_state_dir=str(self.state_dir))

    def run(self, args: dict, check: bool = False, diff: bool = False, **env: str) -> dict:
        payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
        proc = subprocess.run([sys.executable, "-m", MODULE], input=json.dumps(payload), capture_output=True, text=True,
                              env=dict(self.env, **env), timeout=120, check=False)
        # Everything the module printed, for the tests that look for a secret in it.
        self.printed = proc.stdout + proc.stderr
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"module printed no JSON (rc {proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
        assert (proc.returncode != 0) == bool(result.get("failed")), result
        return result


@pytest.fixture(name="standin")
def fixture_standin(tmp_path: Path) -> StandIn:
    return StandIn(tmp_path)


# --- the stand-in itself ---------------------------------------------------

@pytest.mark.parametrize(("release", "recording"), [("9.1", "freebsd-9.1-mail01-ring.txt"), ("14.1", "freebsd-14.1-mail01-ring.txt")])
def test_standin_prints_what_freebsd_printed(standin: StandIn, release: str, recording: str) -> None:
    standin.write(ring_node(release))
    # Started under the name ifconfig (argv[0]), as a symlink would.
    link = standin.bin.parent / "ifconfig"
    link.symlink_to(STANDIN)
    out = subprocess.run([sys.executable, str(link)], capture_output=True, text=True, env=standin.env, check=True).stdout
    recorded = (FIXTURES / "ifconfig" / recording).read_text(encoding="utf-8")
    assert carp.parse_ifconfig(out) == carp.parse_ifconfig(recorded)
    if release.startswith("9."):
        assert "\tinet 192.0.2.101 netmask 0xffffff00 \n" in out
        assert "carp0: flags=49<UP,LOOPBACK,RUNNING> metric 0 mtu 1500\n" in out
    else:
        assert "\tinet 192.0.2.101 netmask 0xffffffff broadcast 192.0.2.101 vhid 1\n" in out
        assert "\t      peer 224.0.0.18 peer6 ff02::12\n" in out


# --- FreeBSD 10 and later --------------------------------------------------

def test_read_only(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=6))
    assert result["changed"] is False and result["commands"] == []
    assert result["carp"] == {"backend": "freebsd", "interface": "em0", "vhid": 6, "state": "MASTER", "advbase": 1, "advskew": 0,
                              "addresses": ["192.0.2.106"], "syntax": "freebsd10", "demotion": 0, "preempt": True}
    assert standin.calls() == READS


def test_backup_then_again_changes_nothing(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    first = standin.run(standin.freebsd(vhid=1, interface="em0", state="backup"))
    assert first["changed"] is True
    assert first["commands"] == [[str(standin.bin / "ifconfig"), "em0", "vhid", "1", "state", "backup"]]
    assert first["carp"]["state"] == "BACKUP"
    assert standin.carp_of("em0", 1)["state"] == "BACKUP"
    assert standin.carp_of("em0", 6)["state"] == "MASTER"

    standin.forget_calls()
    second = standin.run(standin.freebsd(vhid=1, interface="em0", state="backup"))
    assert second["changed"] is False and second["commands"] == []
    assert second["carp"]["state"] == "BACKUP"
    assert standin.calls() == READS


def test_check_mode_predicts_and_changes_nothing(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    before = standin.read()
    result = standin.run(standin.freebsd(vhid=1, interface="em0", state="backup", advskew=240, demotion=10), check=True)
    assert result["changed"] is True
    assert result["carp"]["state"] == "BACKUP" and result["carp"]["advskew"] == 240 and result["carp"]["demotion"] == 10
    assert [argv[1:] for argv in result["commands"]] == [
        ["net.inet.carp.demotion=10"], ["em0", "vhid", "1", "advskew", "240"], ["em0", "vhid", "1", "state", "backup"]]
    assert standin.read() == before
    assert standin.calls() == READS


def test_diff_shows_before_and_after(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=1, interface="em0", state="backup", advskew=200), diff=True)
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert (before["state"], before["advskew"]) == ("MASTER", 0)
    assert (after["state"], after["advskew"]) == ("BACKUP", 200)
    assert {k: v for k, v in before.items() if k not in ("state", "advskew")} == \
        {k: v for k, v in after.items() if k not in ("state", "advskew")}
    assert after == result["carp"]
    assert "diff" not in standin.run(standin.freebsd(vhid=1, interface="em0", state="backup"))


def test_advskew_and_advbase_change(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=5, interface="em0", advskew=120, advbase=2))
    assert result["changed"] is True
    assert [argv[1:] for argv in result["commands"]] == [["em0", "vhid", "5", "advskew", "120"], ["em0", "vhid", "5", "advbase", "2"]]
    assert standin.carp_of("em0", 5) == {"vhid": 5, "state": "BACKUP", "advbase": 2, "advskew": 120}
    assert (result["carp"]["advskew"], result["carp"]["advbase"]) == (120, 2)
    assert standin.run(standin.freebsd(vhid=5, interface="em0", advskew=120, advbase=2))["changed"] is False


def test_master_takes_over(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=7, interface="em0", state="master"))
    assert result["changed"] is True and result["carp"]["state"] == "MASTER"
    assert standin.carp_of("em0", 7)["state"] == "MASTER"


def test_demotion_writes_the_difference(standin: StandIn) -> None:
    state = ring_node("14.1")
    state["sysctl"]["net.inet.carp.demotion"] = 30
    standin.write(state)
    up = standin.run(standin.freebsd(vhid=1, demotion=50))
    assert [argv[1:] for argv in up["commands"]] == [["net.inet.carp.demotion=20"]]
    assert up["carp"]["demotion"] == 50
    assert standin.read()["sysctl"]["net.inet.carp.demotion"] == 50

    down = standin.run(standin.freebsd(vhid=1, demotion=0))
    assert [argv[1:] for argv in down["commands"]] == [["net.inet.carp.demotion=-50"]]
    assert down["carp"]["demotion"] == 0 == standin.read()["sysctl"]["net.inet.carp.demotion"]
    assert standin.run(standin.freebsd(vhid=1, demotion=0))["changed"] is False


def test_interface_required_for_changes_on_freebsd10(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=1, state="backup"))
    assert result["failed"] is True
    assert result["msg"] == ("interface is required with state, advskew, advbase or key on FreeBSD 10 and later, "
                             "where a vhid belongs to an interface: vhid 1 is on em0")
    assert standin.carp_of("em0", 1)["state"] == "MASTER"


def test_init_vhid_cannot_become_master(standin: StandIn) -> None:
    state = ring_node("14.1")
    state["interfaces"][0]["carrier"] = False
    for entry in state["interfaces"][0]["carp"]:
        entry["state"] = "INIT"
    standin.write(state)
    assert standin.run(standin.freebsd(vhid=2, interface="em0", state="backup"))["changed"] is False
    result = standin.run(standin.freebsd(vhid=2, interface="em0", state="master"))
    assert result["msg"] == "vhid 2 on em0 is INIT (its interface is down or has no carrier) and cannot become master"


def test_unknown_vhid_and_interface(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    assert standin.run(standin.freebsd(vhid=11))["msg"].startswith(
        "vhid 11 is not configured on this host: ifconfig shows vhid 1 on em0, vhid 2 on em0,")
    assert standin.run(standin.freebsd(vhid=1, interface="em1"))["msg"].startswith(
        "vhid 1 is not configured on interface em1: ifconfig shows vhid 1 on em0,")


# --- keys ------------------------------------------------------------------

KEY = "ring-key-7f3a"
READS_WITH_KEYS = [("ifconfig", ["-a", "-k"]), ("sysctl", ["net.inet.carp"])]


def passed_a_key(calls: list) -> bool:
    return any("pass" in argv for _tool, argv in calls)


def test_the_key_is_passed_once_when_it_differs_and_never_again(standin: StandIn) -> None:
    state = ring_node("14.1")
    state["interfaces"][0]["carp"][0]["key"] = "old-key"
    standin.write(state)
    first = standin.run(standin.freebsd(vhid=1, interface="em0", key=KEY), diff=True)
    assert first["changed"] is True
    assert first["commands"] == [[str(standin.bin / "ifconfig"), "em0", "vhid", "1", "pass", "********"]]
    assert standin.carp_of("em0", 1)["key"] == KEY
    assert first["carp"]["key"] == "as asked" and first["diff"]["before"]["key"] == "another"
    assert KEY not in standin.printed and "old-key" not in standin.printed
    # Reads with -k, then the one pass, then reads again to confirm.
    assert [argv for _tool, argv in standin.calls()] == [
        ["-a", "-k"], ["net.inet.carp"], ["em0", "vhid", "1", "pass", KEY], ["-a", "-k"], ["net.inet.carp"]]

    standin.forget_calls()
    second = standin.run(standin.freebsd(vhid=1, interface="em0", key=KEY))
    assert second["changed"] is False and second["commands"] == [] and second["carp"]["key"] == "as asked"
    assert standin.calls() == READS_WITH_KEYS and not passed_a_key(standin.calls())
    assert KEY not in standin.printed


def test_a_vhid_without_a_key_gets_it(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    result = standin.run(standin.freebsd(vhid=3, interface="em0", key=KEY, advskew=150))
    assert result["changed"] is True and [argv[1:] for argv in result["commands"]] == [["em0", "vhid", "3", "pass", "********"]]
    assert standin.carp_of("em0", 3)["key"] == KEY and KEY not in standin.printed


def test_without_key_no_key_is_read_or_passed(standin: StandIn) -> None:
    state = ring_node("14.1")
    state["interfaces"][0]["carp"][4]["key"] = KEY
    standin.write(state)
    result = standin.run(standin.freebsd(vhid=5, interface="em0", advskew=120))
    assert result["changed"] is True and "key" not in result["carp"]
    assert all("-k" not in argv for _tool, argv in standin.calls())
    assert not passed_a_key(standin.calls()) and KEY not in standin.printed


def test_check_mode_reports_a_key_change_and_passes_nothing(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    before = standin.read()
    result = standin.run(standin.freebsd(vhid=2, interface="em0", key=KEY), check=True)
    assert result["changed"] is True and result["commands"][0][-2:] == ["pass", "********"]
    assert result["carp"]["key"] == "as asked"
    assert standin.read() == before and standin.calls() == READS_WITH_KEYS
    assert KEY not in standin.printed


def test_a_failing_pass_is_reported_without_the_key(standin: StandIn) -> None:
    standin.write(ring_node("14.1"))
    # The read lists no key; then ifconfig fails as the change is made.
    wrapper = standin.bin / "ifconfig"
    wrapper.write_text(f'#!/bin/sh\nfor a; do [ "$a" = pass ] && {{ echo "ifconfig: SIOCSVH: Operation not permitted" >&2; exit 1; }}; done\n'
                       f'exec "{sys.executable}" "{STANDIN}" --as ifconfig "$@"\n', encoding="utf-8")
    result = standin.run(standin.freebsd(vhid=1, interface="em0", key=KEY))
    assert result["msg"] == (f"{wrapper} em0 vhid 1 pass ******** failed (rc 1): ifconfig: SIOCSVH: Operation not permitted")
    assert KEY not in standin.printed


@pytest.mark.parametrize("bad", ["k" * 20, "two words", 'quo"te', "", "tab\tbed", "naïve"],
                         ids=["20-characters", "space", "double-quote", "empty", "tab", "not-ascii"])
def test_a_key_ifconfig_would_not_keep_whole_is_refused_unshown(standin: StandIn, bad: str) -> None:
    standin.write(ring_node("14.1"))
    before = standin.read()
    result = standin.run(standin.freebsd(vhid=1, interface="em0", key=bad))
    assert result["msg"] == ("key must be 1 to 19 printable ASCII characters without spaces or double quotes "
                             "(FreeBSD's ifconfig keeps 19 characters of a CARP key); the key given is not shown")
    assert standin.read() == before and standin.calls() == []
    if len(bad) > 3:
        assert bad not in standin.printed


def test_freebsd9_cannot_check_a_key(standin: StandIn) -> None:
    standin.write(ring_node("9.1"))
    result = standin.run(standin.freebsd(vhid=6, key=KEY))
    assert result["msg"] == ("key needs FreeBSD 10 or later: FreeBSD 9's ifconfig does not show the key of carp5, "
                             "so whether it differs cannot be told")
    assert not passed_a_key(standin.calls()) and KEY not in standin.printed


def test_ucarp_takes_no_key(standin: StandIn) -> None:
    result = standin.run(standin.ucarp(vhid=3, key=KEY))
    assert result["msg"] == "key is FreeBSD only: ucarp reads its password from the file that the floating_ip role keeps"
    assert standin.calls() == [] and KEY not in standin.printed


# --- FreeBSD 9 -------------------------------------------------------------

def test_freebsd9_carp_interface_syntax(standin: StandIn) -> None:
    standin.write(ring_node("9.1"))
    result = standin.run(standin.freebsd(vhid=6, state="backup", advskew=100))
    assert result["changed"] is True
    assert [argv[1:] for argv in result["commands"]] == [["carp5", "advskew", "100"], ["carp5", "state", "backup"]]
    assert result["carp"] == {"backend": "freebsd", "interface": "carp5", "vhid": 6, "state": "BACKUP", "advbase": 1,
                              "advskew": 100, "addresses": ["192.0.2.106"], "syntax": "freebsd9", "demotion": None,
                              "preempt": False}
    assert standin.carp_of("carp5", 6) == {"vhid": 6, "state": "BACKUP", "advbase": 1, "advskew": 100}
    again = standin.run(standin.freebsd(vhid=6, interface="carp5", state="backup", advskew=100))
    assert again["changed"] is False


def test_freebsd9_wrong_carp_interface(standin: StandIn) -> None:
    standin.write(ring_node("9.1"))
    result = standin.run(standin.freebsd(vhid=6, interface="carp0", state="backup"))
    assert result["msg"].startswith("vhid 6 is not configured on interface carp0: ifconfig shows vhid 1 on carp0,")


def test_freebsd9_has_no_demotion(standin: StandIn) -> None:
    standin.write(ring_node("9.1"))
    result = standin.run(standin.freebsd(vhid=1, demotion=10))
    assert result["msg"] == ("demotion needs the sysctl net.inet.carp.demotion (FreeBSD 10 and later), "
                             "which this host does not have")


# --- bad arguments ---------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    ({"vhid": 0}, "vhid must be an integer from 1 to 255, got 0"),
    ({"vhid": 1, "interface": "em0", "advskew": 255}, "advskew must be an integer from 0 to 254, got 255"),
    ({"vhid": 1, "interface": "em0", "advbase": 0}, "advbase must be an integer from 1 to 255, got 0"),
    ({"vhid": 1, "state": "up"}, "value of state must be one of: master, backup, got: up"),
])
def test_bad_arguments_fail_with_the_message(standin: StandIn, args: dict, message: str) -> None:
    standin.write(ring_node("14.1"))
    before = standin.read()
    result = standin.run(standin.freebsd(**args))
    assert result["failed"] is True and result["msg"] == message
    assert standin.read() == before


def test_missing_program_is_named(standin: StandIn) -> None:
    args = standin.freebsd(vhid=1)
    args["ifconfig_path"] = str(standin.bin / "no-such-ifconfig")
    result = standin.run(args)
    assert result["msg"] == f"ifconfig_path {standin.bin / 'no-such-ifconfig'} is not an executable file"


# --- ucarp on Linux --------------------------------------------------------

UCARP_ENV = """\
# floatip.ha: ucarp for VIP 172.30.80.103
UCARP_VHID=3
UCARP_ADVBASE=1
UCARP_ADVSKEW=50
UCARP_ADDR=172.30.80.103
UCARP_IFACE=eth0
UCARP_SRCIP=172.30.80.11
"""


def ucarp_vhid(standin: StandIn, state: str | None) -> None:
    (standin.env_dir / "vhid-3.conf").write_text(UCARP_ENV, encoding="utf-8")
    if state is not None:
        (standin.state_dir / "vhid-3.state").write_text(state + "\n", encoding="utf-8")


def test_ucarp_backup_is_sigusr2_then_nothing(standin: StandIn) -> None:
    ucarp_vhid(standin, "MASTER")
    first = standin.run(standin.ucarp(vhid=3, state="backup"))
    assert first["changed"] is True
    assert standin.calls() == [("systemctl", ["kill", "--signal=SIGUSR2", "floatip-ucarp@3.service"])]
    assert first["carp"] == {"backend": "ucarp", "syntax": None, "interface": "eth0", "vhid": 3, "state": "BACKUP",
                             "advbase": 1, "advskew": 50, "addresses": ["172.30.80.103"], "demotion": None, "preempt": None}
    standin.forget_calls()
    second = standin.run(standin.ucarp(vhid=3, state="backup"))
    assert second["changed"] is False and second["commands"] == [] and standin.calls() == []


def test_ucarp_advskew_rewrites_the_file_and_restarts(standin: StandIn) -> None:
    ucarp_vhid(standin, "MASTER")
    result = standin.run(standin.ucarp(vhid=3, advskew=200, state="backup"), diff=True)
    assert result["changed"] is True
    assert standin.calls() == [("systemctl", ["try-restart", "floatip-ucarp@3.service"])]
    assert (standin.env_dir / "vhid-3.conf").read_text(encoding="utf-8") == UCARP_ENV.replace("UCARP_ADVSKEW=50", "UCARP_ADVSKEW=200")
    assert (result["diff"]["before"]["advskew"], result["diff"]["after"]["advskew"]) == (50, 200)
    assert (result["carp"]["advskew"], result["carp"]["state"]) == (200, "BACKUP")
    standin.forget_calls()
    assert standin.run(standin.ucarp(vhid=3, advskew=200, state="backup"))["changed"] is False
    assert standin.calls() == []


def test_ucarp_check_mode_touches_nothing(standin: StandIn) -> None:
    ucarp_vhid(standin, "MASTER")
    result = standin.run(standin.ucarp(vhid=3, advskew=200), check=True)
    assert result["changed"] is True
    assert result["commands"] == [[str(standin.bin / "systemctl"), "try-restart", "floatip-ucarp@3.service"]]
    assert (standin.env_dir / "vhid-3.conf").read_text(encoding="utf-8") == UCARP_ENV
    assert (standin.state_dir / "vhid-3.state").read_text(encoding="utf-8") == "MASTER\n"
    assert standin.calls() == []


def test_ucarp_not_running_is_init(standin: StandIn) -> None:
    ucarp_vhid(standin, None)
    result = standin.run(standin.ucarp(vhid=3, state="backup"))
    assert result["changed"] is False and result["carp"]["state"] == "INIT"


def test_ucarp_refuses_master_and_demotion(standin: StandIn) -> None:
    ucarp_vhid(standin, "BACKUP")
    master = standin.run(standin.ucarp(vhid=3, state="master"))
    assert master["msg"].startswith("state=master is not supported with the ucarp backend")
    demotion = standin.run(standin.ucarp(vhid=3, demotion=10))
    assert demotion["msg"] == "demotion is FreeBSD only (net.inet.carp.demotion); with the ucarp backend raise advskew instead"
    assert standin.calls() == []


def test_ucarp_down_script_that_never_writes(standin: StandIn) -> None:
    ucarp_vhid(standin, "MASTER")
    result = standin.run(standin.ucarp(vhid=3, state="backup", timeout=0.5), FLOATIP_STANDIN_UCARP_STATE_DIR="")
    assert result["failed"] is True
    assert result["msg"] == (f"vhid 3 still reports MASTER in {standin.state_dir}/vhid-3.state 0.5 s after it was told to "
                             "step down: does the unit's down script write BACKUP there?")


def test_ucarp_failing_systemctl(standin: StandIn) -> None:
    ucarp_vhid(standin, "MASTER")
    result = standin.run(standin.ucarp(vhid=3, state="backup"), FLOATIP_STANDIN_FAIL="systemctl")
    assert result["msg"] == (f"{standin.bin / 'systemctl'} kill --signal=SIGUSR2 floatip-ucarp@3.service failed (rc 1): "
                             "systemctl: failing as FLOATIP_STANDIN_FAIL asks")


def test_ucarp_settings_missing(standin: StandIn) -> None:
    result = standin.run(standin.ucarp(vhid=4))
    assert result["msg"] == f"vhid 4 has no ucarp settings: {standin.env_dir}/vhid-4.conf does not exist"
