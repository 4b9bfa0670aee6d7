"""CARP parsing and planning (module_utils/carp.py) against recorded FreeBSD output.

The recordings in fixtures/ifconfig/:
- freebsd-9.1-mail01-ring.txt: node mail01 of the five-node mail ring of the
  reference (two VIPs per node, ten vhids, FreeBSD 9 carpN interfaces); mail01
  is MASTER of vhid 1 (carp0) and vhid 6 (carp5).
- freebsd-14.1-mail01-ring.txt: the same node with today's carp(4), the ten
  vhids on em0.
- freebsd-9.1-carp-init.txt: em1 without carrier, so carp1 is down and INIT.
- freebsd-13.2-two-nics-init.txt: vhids 1 (IPv4 and IPv6) and 2 on igb0,
  vhid 3 INIT on igb1 (no carrier).
- freebsd-14.1-no-carp.txt: no CARP at all.
- sysctl-freebsd-*.txt: `sysctl net.inet.carp` on 14.1 and 9.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import carp
from ansible_collections.floatip.ha.plugins.module_utils.carp import CarpError, Host, Paths, Want

FIXTURES = Path(__file__).parent / "fixtures" / "ifconfig"
# mail01's advskew per vhid in the ring: 0 for its own VIPs (vhids 1 and 6),
# then further from the owner, higher.
RING_ADVSKEW = {1: 0, 2: 200, 3: 150, 4: 100, 5: 50, 6: 0, 7: 50, 8: 100, 9: 150, 10: 200}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def parsed(name: str) -> dict:
    return carp.parse_ifconfig(fixture(name))


def freebsd_vhid(name: str, vhid: int, interface: str | None = None, demotion: int | None = 0) -> dict:
    return {"backend": "freebsd", **carp.find_vhid(parsed(name), vhid, interface), "demotion": demotion, "preempt": True}


# --- parsing ifconfig ------------------------------------------------------

def test_freebsd9_ring_node_has_ten_carp_interfaces() -> None:
    result = parsed("freebsd-9.1-mail01-ring.txt")
    assert result["syntax"] == "freebsd9"
    assert [(e["interface"], e["vhid"]) for e in result["vhids"]] == [(f"carp{n - 1}", n) for n in range(1, 11)]
    assert {e["vhid"]: e["advskew"] for e in result["vhids"]} == RING_ADVSKEW
    assert [e["vhid"] for e in result["vhids"] if e["state"] == "MASTER"] == [1, 6]
    assert {e["state"] for e in result["vhids"]} == {"MASTER", "BACKUP"}
    assert result["vhids"][0] == {"interface": "carp0", "vhid": 1, "state": "MASTER", "advbase": 1, "advskew": 0,
                                  "addresses": ["192.0.2.101"], "syntax": "freebsd9"}


def test_freebsd14_ring_node_reads_as_the_freebsd9_one() -> None:
    old = parsed("freebsd-9.1-mail01-ring.txt")
    new = parsed("freebsd-14.1-mail01-ring.txt")
    assert new["syntax"] == "freebsd10"
    assert {e["interface"] for e in new["vhids"]} == {"em0"}

    def shape(result: dict) -> list:
        return [(e["vhid"], e["state"], e["advbase"], e["advskew"], e["addresses"]) for e in result["vhids"]]

    assert shape(new) == shape(old)
    assert new["vhids"][5]["addresses"] == ["192.0.2.106"]


def test_freebsd13_addresses_follow_their_vhid_and_init_on_no_carrier() -> None:
    result = parsed("freebsd-13.2-two-nics-init.txt")
    assert result["syntax"] == "freebsd10"
    by_vhid = {e["vhid"]: e for e in result["vhids"]}
    assert by_vhid[1]["addresses"] == ["203.0.113.10", "2001:db8:113::10"]
    assert by_vhid[2]["addresses"] == ["203.0.113.20"]
    assert (by_vhid[2]["state"], by_vhid[2]["advskew"]) == ("BACKUP", 100)
    assert by_vhid[3] == {"interface": "igb1", "vhid": 3, "state": "INIT", "advbase": 2, "advskew": 50,
                          "addresses": ["198.51.100.10"], "syntax": "freebsd10"}


def test_freebsd9_down_carp_interface_is_init() -> None:
    result = parsed("freebsd-9.1-carp-init.txt")
    assert [(e["interface"], e["state"]) for e in result["vhids"]] == [("carp0", "MASTER"), ("carp1", "INIT")]
    assert result["vhids"][1]["addresses"] == ["198.51.100.50"]


def test_no_carp_at_all() -> None:
    assert parsed("freebsd-14.1-no-carp.txt") == {"syntax": None, "vhids": []}


def test_every_recording_parses_into_known_states() -> None:
    for path in FIXTURES.glob("freebsd-*.txt"):
        for entry in carp.parse_ifconfig(path.read_text(encoding="utf-8"))["vhids"]:
            assert entry["state"] in carp.STATES, path.name
            assert entry["addresses"], path.name


# --- finding the vhid ------------------------------------------------------

def test_find_vhid_by_number_and_interface() -> None:
    assert carp.find_vhid(parsed("freebsd-9.1-mail01-ring.txt"), 6)["interface"] == "carp5"
    assert carp.find_vhid(parsed("freebsd-9.1-mail01-ring.txt"), 6, "carp5")["vhid"] == 6
    assert carp.find_vhid(parsed("freebsd-13.2-two-nics-init.txt"), 3, "igb1")["state"] == "INIT"


def test_find_vhid_names_what_there_is() -> None:
    with pytest.raises(CarpError, match=r"^vhid 4 is not configured on this host: ifconfig shows vhid 1 on igb0, "
                                        r"vhid 2 on igb0, vhid 3 on igb1$"):
        carp.find_vhid(parsed("freebsd-13.2-two-nics-init.txt"), 4)
    with pytest.raises(CarpError, match=r"^vhid 3 is not configured on interface igb0: .*vhid 3 on igb1$"):
        carp.find_vhid(parsed("freebsd-13.2-two-nics-init.txt"), 3, "igb0")
    with pytest.raises(CarpError, match=r"ifconfig shows no CARP vhid at all \(is carp\(4\) loaded and configured\?\)"):
        carp.find_vhid(parsed("freebsd-14.1-no-carp.txt"), 1)


def test_same_vhid_on_two_interfaces_needs_interface() -> None:
    text = fixture("freebsd-13.2-two-nics-init.txt").replace("vhid 3", "vhid 1")
    with pytest.raises(CarpError, match=r"^vhid 1 is configured on several interfaces \(igb0, igb1\): set interface"):
        carp.find_vhid(carp.parse_ifconfig(text), 1)
    assert carp.find_vhid(carp.parse_ifconfig(text), 1, "igb1")["addresses"] == ["198.51.100.10"]


# --- sysctl ----------------------------------------------------------------

def test_parse_sysctl_listing() -> None:
    values = carp.parse_sysctl(fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    assert values["net.inet.carp.demotion"] == 0
    assert values["net.inet.carp.preempt"] == 1
    assert values["net.inet.carp.allow"] == 1
    old = carp.parse_sysctl(fixture("sysctl-freebsd-9.1-net.inet.carp.txt"))
    assert carp.DEMOTION_OID not in old and old["net.inet.carp.suppress_preempt"] == 0


def test_parse_sysctl_values_only() -> None:
    names = ["net.inet.carp.demotion", "net.inet.carp.preempt"]
    assert carp.parse_sysctl("-240\n1\n", names) == {"net.inet.carp.demotion": -240, "net.inet.carp.preempt": 1}
    with pytest.raises(CarpError, match=r"sysctl -n printed 1 values for 2 names"):
        carp.parse_sysctl("0\n", names)
    with pytest.raises(CarpError, match=r"cannot read sysctl output line 'garbage'"):
        carp.parse_sysctl("garbage\n")


# --- arguments -------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vhid": 0}, "vhid must be an integer from 1 to 255, got 0"),
    ({"vhid": 256}, "vhid must be an integer from 1 to 255, got 256"),
    ({"vhid": True}, "vhid must be an integer from 1 to 255, got True"),
    ({"vhid": "1"}, "vhid must be an integer from 1 to 255, got '1'"),
    ({"vhid": 1, "advskew": 255}, "advskew must be an integer from 0 to 254, got 255"),
    ({"vhid": 1, "advskew": -1}, "advskew must be an integer from 0 to 254, got -1"),
    ({"vhid": 1, "advbase": 0}, "advbase must be an integer from 1 to 255, got 0"),
    ({"vhid": 1, "state": "up"}, "state must be master or backup, got 'up'"),
    ({"vhid": 1, "demotion": "x"}, "demotion must be an integer (the wanted value of net.inet.carp.demotion), got 'x'"),
    ({"vhid": 1, "interface": "em 0"}, "interface must be an interface name such as em0 or carp0, got 'em 0'"),
])
def test_bad_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(CarpError) as info:
        carp.make_want(**kwargs)
    assert str(info.value) == message


def test_good_arguments() -> None:
    want = carp.make_want(255, "em0", "BACKUP", 254, 255, -20)
    assert want == Want(vhid=255, interface="em0", state="backup", advskew=254, advbase=255, demotion=-20)
    assert carp.make_want(1, advskew=0) == Want(vhid=1, advskew=0)


def test_backend_auto_follows_the_system() -> None:
    assert carp.resolve_backend("auto", "FreeBSD") == "freebsd"
    assert carp.resolve_backend("auto", "Linux") == "ucarp"
    assert carp.resolve_backend("freebsd", "Linux") == "freebsd"
    with pytest.raises(CarpError, match=r"backend=auto knows FreeBSD \(carp\) and Linux \(ucarp\), not 'Darwin'"):
        carp.resolve_backend("auto", "Darwin")
    with pytest.raises(CarpError, match=r"backend must be one of auto, freebsd, ucarp, got 'vrrp'"):
        carp.resolve_backend("vrrp", "Linux")


def test_ucarp_refuses_master_and_demotion() -> None:
    with pytest.raises(CarpError, match=r"^state=master is not supported with the ucarp backend"):
        carp.check_backend(Want(vhid=1, state="master"), "ucarp")
    with pytest.raises(CarpError, match=r"^demotion is FreeBSD only \(net.inet.carp.demotion\)"):
        carp.check_backend(Want(vhid=1, demotion=10), "ucarp")
    carp.check_backend(Want(vhid=1, state="master", demotion=10), "freebsd")


# --- planning on FreeBSD ---------------------------------------------------

def test_plan_backup_on_freebsd10() -> None:
    current = freebsd_vhid("freebsd-14.1-mail01-ring.txt", 1, "em0")
    plan = carp.plan_freebsd(current, Want(vhid=1, interface="em0", state="backup"), "/sbin/ifconfig")
    assert plan.commands == [["/sbin/ifconfig", "em0", "vhid", "1", "state", "backup"]]
    assert plan.before["state"] == "MASTER" and plan.after["state"] == "BACKUP"
    assert {k: v for k, v in plan.after.items() if k != "state"} == {k: v for k, v in plan.before.items() if k != "state"}


def test_plan_nothing_when_already_so() -> None:
    current = freebsd_vhid("freebsd-14.1-mail01-ring.txt", 2, "em0")
    plan = carp.plan_freebsd(current, Want(vhid=2, interface="em0", state="backup", advskew=200, advbase=1, demotion=0))
    assert not plan.changed and plan.commands == [] and plan.before == plan.after


def test_plan_raises_advskew_before_stepping_down() -> None:
    current = freebsd_vhid("freebsd-14.1-mail01-ring.txt", 6, "em0")
    plan = carp.plan_freebsd(current, Want(vhid=6, interface="em0", state="backup", advskew=240, advbase=2))
    assert plan.commands == [
        ["ifconfig", "em0", "vhid", "6", "advskew", "240"],
        ["ifconfig", "em0", "vhid", "6", "advbase", "2"],
        ["ifconfig", "em0", "vhid", "6", "state", "backup"],
    ]
    assert (plan.after["advskew"], plan.after["advbase"], plan.after["state"]) == (240, 2, "BACKUP")


def test_plan_freebsd9_uses_the_carp_interface() -> None:
    current = freebsd_vhid("freebsd-9.1-mail01-ring.txt", 7, demotion=None)
    plan = carp.plan_freebsd(current, Want(vhid=7, state="master", advskew=0))
    assert plan.commands == [["ifconfig", "carp6", "advskew", "0"], ["ifconfig", "carp6", "state", "master"]]
    assert plan.after["state"] == "MASTER"


@pytest.mark.parametrize(("now", "wanted", "command"), [
    (0, 50, "net.inet.carp.demotion=50"),
    (30, 50, "net.inet.carp.demotion=20"),
    (50, 0, "net.inet.carp.demotion=-50"),
    (240, 10, "net.inet.carp.demotion=-230"),
])
def test_plan_demotion_writes_the_difference(now: int, wanted: int, command: str) -> None:
    current = freebsd_vhid("freebsd-14.1-mail01-ring.txt", 1, "em0", demotion=now)
    plan = carp.plan_freebsd(current, Want(vhid=1, demotion=wanted), sysctl="/sbin/sysctl")
    assert plan.commands == [["/sbin/sysctl", command]]
    assert (plan.before["demotion"], plan.after["demotion"]) == (now, wanted)


def test_plan_demotion_needs_freebsd10() -> None:
    current = freebsd_vhid("freebsd-9.1-mail01-ring.txt", 1, demotion=None)
    with pytest.raises(CarpError, match=r"^demotion needs the sysctl net.inet.carp.demotion \(FreeBSD 10 and later\)"):
        carp.plan_freebsd(current, Want(vhid=1, demotion=10))


def test_plan_init_vhid() -> None:
    current = freebsd_vhid("freebsd-13.2-two-nics-init.txt", 3, "igb1")
    assert not carp.plan_freebsd(current, Want(vhid=3, interface="igb1", state="backup")).changed
    with pytest.raises(CarpError, match=r"^vhid 3 on igb1 is INIT \(its interface is down or has no carrier\) and cannot become master$"):
        carp.plan_freebsd(current, Want(vhid=3, interface="igb1", state="master"))
    plan = carp.plan_freebsd(current, Want(vhid=3, interface="igb1", advskew=100))
    assert plan.commands == [["ifconfig", "igb1", "vhid", "3", "advskew", "100"]]


# --- ucarp -----------------------------------------------------------------

UCARP_ENV = """\
# floatip.ha: ucarp for VIP 172.30.80.103
UCARP_VHID=3
UCARP_ADVBASE=1
UCARP_ADVSKEW=50
UCARP_ADDR=172.30.80.103

; the node's own address and interface
UCARP_IFACE="eth0"
UCARP_SRCIP=172.30.80.11
"""


def test_parse_env_file() -> None:
    env = carp.parse_env_file(UCARP_ENV)
    assert env == {"UCARP_VHID": "3", "UCARP_ADVBASE": "1", "UCARP_ADVSKEW": "50", "UCARP_ADDR": "172.30.80.103",
                   "UCARP_IFACE": "eth0", "UCARP_SRCIP": "172.30.80.11"}
    with pytest.raises(CarpError, match=r"^/etc/x.conf line 2 is not KEY=value: 'UCARP_VHID 3'$"):
        carp.parse_env_file("# x\nUCARP_VHID 3\n", "/etc/x.conf")


def test_parse_state_file() -> None:
    assert carp.parse_state_file(None) == "INIT"
    assert carp.parse_state_file("") == "INIT"
    assert carp.parse_state_file("MASTER\n") == "MASTER"
    assert carp.parse_state_file("backup") == "BACKUP"
    with pytest.raises(CarpError, match=r"^/run/s holds 'FAULT', expected MASTER or BACKUP$"):
        carp.parse_state_file("FAULT\n", "/run/s")


def test_ucarp_vhid_state() -> None:
    state = carp.ucarp_vhid_state(carp.parse_env_file(UCARP_ENV), "MASTER\n", 3)
    assert state == {"backend": "ucarp", "syntax": None, "interface": "eth0", "vhid": 3, "state": "MASTER", "advbase": 1,
                     "advskew": 50, "addresses": ["172.30.80.103"], "demotion": None, "preempt": None}
    with pytest.raises(CarpError, match=r"^f.conf has UCARP_VHID=3, not vhid 4$"):
        carp.ucarp_vhid_state(carp.parse_env_file(UCARP_ENV), None, 4, "f.conf")
    with pytest.raises(CarpError, match=r"^f.conf lacks UCARP_ADDR, UCARP_IFACE$"):
        carp.ucarp_vhid_state({"UCARP_VHID": "3", "UCARP_ADVBASE": "1", "UCARP_ADVSKEW": "0"}, None, 3, "f.conf")
    with pytest.raises(CarpError, match=r"^f.conf has UCARP_ADVSKEW='high', not an integer$"):
        carp.ucarp_vhid_state(dict(carp.parse_env_file(UCARP_ENV), UCARP_ADVSKEW="high"), None, 3, "f.conf")


def test_rewrite_env_file_keeps_the_rest() -> None:
    text = carp.rewrite_env_file(UCARP_ENV, {"UCARP_ADVSKEW": "200", "UCARP_ADVBASE": "2"})
    assert text == UCARP_ENV.replace("UCARP_ADVSKEW=50", "UCARP_ADVSKEW=200").replace("UCARP_ADVBASE=1", "UCARP_ADVBASE=2")
    appended = carp.rewrite_env_file("UCARP_VHID=3", {"UCARP_ADVSKEW": "10"})
    assert appended == "UCARP_VHID=3\nUCARP_ADVSKEW=10\n"


def ucarp_current(state: str) -> dict:
    return carp.ucarp_vhid_state(carp.parse_env_file(UCARP_ENV), state, 3)


def test_plan_ucarp_backup_is_sigusr2() -> None:
    plan = carp.plan_ucarp(ucarp_current("MASTER"), UCARP_ENV, Want(vhid=3, state="backup"), "/e/vhid-3.conf")
    assert plan.commands == [["systemctl", "kill", "--signal=SIGUSR2", "floatip-ucarp@3.service"]]
    assert plan.files == {} and plan.after["state"] == "BACKUP"
    for state in ("BACKUP", None):
        assert not carp.plan_ucarp(ucarp_current(state), UCARP_ENV, Want(vhid=3, state="backup"), "/e/vhid-3.conf").changed


def test_plan_ucarp_advskew_rewrites_and_restarts() -> None:
    plan = carp.plan_ucarp(ucarp_current("MASTER"), UCARP_ENV, Want(vhid=3, state="backup", advskew=200),
                           "/e/vhid-3.conf", "/bin/systemctl")
    # A restarted ucarp starts as BACKUP: no signal on top of the restart.
    assert plan.commands == [["/bin/systemctl", "try-restart", "floatip-ucarp@3.service"]]
    assert "UCARP_ADVSKEW=200\n" in plan.files["/e/vhid-3.conf"]
    assert (plan.after["advskew"], plan.after["state"]) == (200, "BACKUP")
    stopped = carp.plan_ucarp(ucarp_current(None), UCARP_ENV, Want(vhid=3, advbase=3), "/e/vhid-3.conf")
    assert stopped.after["state"] == "INIT" and stopped.after["advbase"] == 3
    assert not carp.plan_ucarp(ucarp_current("MASTER"), UCARP_ENV, Want(vhid=3, advskew=50, advbase=1), "/e/vhid-3.conf").changed


# --- keys ------------------------------------------------------------------

def with_keys(text: str, keys: dict) -> str:
    """A recording as ``ifconfig -a -k`` prints it when these vhids have keys."""
    for vhid, key in keys.items():
        text = re.sub(rf"(?m)^(\tcarp: \S+ vhid {vhid} advbase \d+ advskew \d+)$", rf'\1 key "{key}"', text)
    return text


def test_keys_are_read_apart_and_never_in_the_vhids() -> None:
    plain = fixture("freebsd-14.1-mail01-ring.txt")
    keyed = with_keys(plain, {1: "s3cret", 4: "other"})
    assert keyed != plain
    assert carp.parse_ifconfig(keyed) == carp.parse_ifconfig(plain)
    assert carp.parse_keys(keyed) == {("em0", 1): "s3cret", ("em0", 4): "other"}
    assert carp.parse_keys(plain) == {}


def test_a_want_never_shows_its_key() -> None:
    want = carp.make_want(1, "em0", key="s3cret")
    assert want.key == "s3cret" and "s3cret" not in repr(want)


def test_plan_passes_the_key_only_when_it_differs() -> None:
    current = freebsd_vhid("freebsd-14.1-mail01-ring.txt", 1, "em0")
    want = Want(vhid=1, interface="em0", key="s3cret")
    assert carp.plan_freebsd(current, want, key_now="s3cret").commands == []
    for now, status in ((None, "none"), ("other", "another")):
        plan = carp.plan_freebsd(current, want, key_now=now)
        assert plan.commands == [["ifconfig", "em0", "vhid", "1", "pass", "s3cret"]]
        assert (plan.before["key"], plan.after["key"]) == (status, "as asked")
    # Without a key asked for, the key is not part of the plan at all.
    assert "key" not in carp.plan_freebsd(current, Want(vhid=1, interface="em0"), key_now="other").after


def test_masked_hides_only_what_follows_pass() -> None:
    assert carp.masked(["ifconfig", "em0", "vhid", "1", "pass", "1"]) == ["ifconfig", "em0", "vhid", "1", "pass", "********"]
    assert carp.masked(["ifconfig", "em0", "vhid", "1", "advskew", "1"]) == ["ifconfig", "em0", "vhid", "1", "advskew", "1"]


def test_sync_with_the_right_key_reads_it_and_passes_nothing() -> None:
    fake = FakeHost(with_keys(fixture("freebsd-14.1-mail01-ring.txt"), {1: "s3cret"}),
                    fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    result = carp.sync(Want(vhid=1, interface="em0", key="s3cret"), "freebsd", fake.host())
    assert result["changed"] is False and result["commands"] == [] and result["carp"]["key"] == "as asked"
    assert fake.calls == [["ifconfig", "-a", "-k"], ["sysctl", "net.inet.carp"]]
    assert "s3cret" not in repr(result)


def test_sync_with_another_key_passes_it_masked_in_the_report() -> None:
    fake = FakeHost(with_keys(fixture("freebsd-14.1-mail01-ring.txt"), {1: "old"}),
                    fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    result = carp.sync(Want(vhid=1, interface="em0", key="s3cret"), "freebsd", fake.host())
    assert fake.calls[2] == ["ifconfig", "em0", "vhid", "1", "pass", "s3cret"]
    assert result["commands"] == [["ifconfig", "em0", "vhid", "1", "pass", "********"]]
    # The recording does not follow: the key still differs, and the warning says so without it.
    assert result["warnings"] == ["vhid 1: key is another after the change, expected as asked"]
    assert "s3cret" not in repr(result) and "old" not in repr(result["carp"])


def test_a_failing_key_read_does_not_quote_its_output() -> None:
    fake = FakeHost()
    fake.run = lambda argv: (1, '\tcarp: MASTER vhid 1 advbase 1 advskew 0 key "s3cret"\n', "")
    with pytest.raises(CarpError, match=r"^ifconfig -a -k failed \(rc 1\): no output$"):
        carp.sync(Want(vhid=1, interface="em0", key="s3cret"), "freebsd", fake.host())


# --- sync with an in-memory host -------------------------------------------

class FakeHost:
    """Recorded ifconfig and sysctl output, files in a dict, a clock that sleep moves on."""

    def __init__(self, ifconfig: str = "", sysctl: str = "", files: dict | None = None) -> None:
        self.outputs = {"ifconfig": ifconfig, "sysctl": sysctl}
        self.files = dict(files or {})
        self.calls: list = []
        self.now = 0.0
        self.on_sleep = None

    def host(self) -> Host:
        return Host(run=self.run, read_text=self.files.get, write_text=self.files.__setitem__,
                    sleep=self.sleep, clock=lambda: self.now)

    def run(self, argv: list) -> tuple:
        self.calls.append(argv)
        return 0, self.outputs.get(argv[0], ""), ""

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


def test_sync_check_mode_only_reads() -> None:
    fake = FakeHost(fixture("freebsd-14.1-mail01-ring.txt"), fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    result = carp.sync(Want(vhid=1, interface="em0", state="backup", demotion=20), "freebsd", fake.host(), check_mode=True)
    assert result["changed"] is True
    assert result["commands"] == [["sysctl", "net.inet.carp.demotion=20"], ["ifconfig", "em0", "vhid", "1", "state", "backup"]]
    assert fake.calls == [["ifconfig", "-a"], ["sysctl", "net.inet.carp"]]
    assert result["carp"]["state"] == "BACKUP" and result["carp"]["demotion"] == 20 and result["carp"]["preempt"] is True
    assert result["diff"]["before"]["state"] == "MASTER"


def test_sync_freebsd10_change_needs_interface() -> None:
    fake = FakeHost(fixture("freebsd-14.1-mail01-ring.txt"), fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    with pytest.raises(CarpError, match=r"^interface is required with state, advskew, advbase or key on FreeBSD 10 and later, "
                                        r"where a vhid belongs to an interface: vhid 1 is on em0$"):
        carp.sync(Want(vhid=1, state="backup"), "freebsd", fake.host())
    # Reading, and the global demotion, need none.
    assert carp.sync(Want(vhid=1), "freebsd", fake.host())["carp"]["interface"] == "em0"
    assert carp.sync(Want(vhid=1, demotion=0), "freebsd", fake.host())["changed"] is False


def test_sync_reports_a_failing_command() -> None:
    fake = FakeHost()
    fake.run = lambda argv: (1, "", "ifconfig: interface em9 does not exist\n")
    with pytest.raises(CarpError, match=r"^/sbin/ifconfig -a failed \(rc 1\): ifconfig: interface em9 does not exist$"):
        carp.sync(Want(vhid=1), "freebsd", fake.host(), Paths(ifconfig="/sbin/ifconfig"))


def test_sync_ucarp_waits_for_the_down_script() -> None:
    paths = Paths(ucarp_env_dir="/e", ucarp_state_dir="/s")
    fake = FakeHost(files={"/e/vhid-3.conf": UCARP_ENV, "/s/vhid-3.state": "MASTER\n"})

    def down_script_after_a_while(host: FakeHost) -> None:
        if host.now >= 0.6:
            host.files["/s/vhid-3.state"] = "BACKUP\n"

    fake.on_sleep = down_script_after_a_while
    result = carp.sync(Want(vhid=3, state="backup"), "ucarp", fake.host(), paths)
    assert result["carp"]["state"] == "BACKUP" and result["changed"] is True
    assert fake.calls == [["systemctl", "kill", "--signal=SIGUSR2", "floatip-ucarp@3.service"]]
    assert 0.6 <= fake.now < 1.0


def test_sync_ucarp_fails_when_the_state_file_never_says_backup() -> None:
    paths = Paths(ucarp_env_dir="/e", ucarp_state_dir="/s")
    fake = FakeHost(files={"/e/vhid-3.conf": UCARP_ENV, "/s/vhid-3.state": "MASTER\n"})
    with pytest.raises(CarpError, match=r"^vhid 3 still reports MASTER in /s/vhid-3.state 2 s after it was told to step down"):
        carp.sync(Want(vhid=3, state="backup"), "ucarp", fake.host(), paths, timeout=2)


def test_sync_ucarp_interface_must_match() -> None:
    paths = Paths(ucarp_env_dir="/e", ucarp_state_dir="/s")
    fake = FakeHost(files={"/e/vhid-3.conf": UCARP_ENV})
    with pytest.raises(CarpError, match=r"^interface is eth1 but /e/vhid-3.conf has UCARP_IFACE=eth0$"):
        carp.sync(Want(vhid=3, interface="eth1"), "ucarp", fake.host(), paths)
    with pytest.raises(CarpError, match=r"^vhid 4 has no ucarp settings: /e/vhid-4.conf does not exist$"):
        carp.sync(Want(vhid=4), "ucarp", fake.host(), paths)


def test_sync_warns_when_the_host_does_not_follow() -> None:
    # The recorded output stays as it was: the change did not take.
    fake = FakeHost(fixture("freebsd-14.1-mail01-ring.txt"), fixture("sysctl-freebsd-14.1-net.inet.carp.txt"))
    result = carp.sync(Want(vhid=1, interface="em0", state="backup"), "freebsd", fake.host())
    assert fake.calls[2] == ["ifconfig", "em0", "vhid", "1", "state", "backup"]
    assert result["carp"]["state"] == "MASTER"
    assert result["warnings"] == ["vhid 1: state is MASTER after the change, expected BACKUP"]
