"""The CARP backend of floatip.ha.floating_ip, rendered for the mail ring and checked without FreeBSD.

No FreeBSD host runs here, so the backend is proven on what it writes:
render_carp.yml applies the role's render tasks (tasks_from: render) to
inventories/mail_ring on the controller, with ansible_connection=local and
no facts, in both CARP syntaxes. Each node's rc.conf and sysctl.conf blocks
must equal the files under expected/ byte for byte. Apart from those files,
every node's rc.conf must configure every VIP of the layout (computed here
with module_utils/layout.py) exactly once, with its vhid and the node's
advskew, read back the same by sh as rc.d reads it; and for each VIP only
its owner may have advskew 0.

The blocks start with the ansible_managed line. It is Ansible's default,
"Ansible managed", and deterministic: every run uses the checkout's
ansible.cfg and no ANSIBLE_* variable of the caller (see conftest.py), so
the files are compared as they are, that line included.
"""

from __future__ import annotations

import re
import stat
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils.cluster import DEFAULT_VRID_BASE, build_model
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INVENTORY = ROOT / "inventories" / "mail_ring"
PLAYBOOK = HERE / "render_carp.yml"
EXPECTED = {"vhid": HERE / "expected" / "mail_ring", "carpN": HERE / "expected" / "mail_ring_carpN"}
# Fixed test data, given on the command line in place of the inventory's password lookup.
PASSWORD = "ring-test-secret"
SYSCTLS = ["net.inet.carp.allow=1", "net.inet.carp.preempt=1"]


@dataclass
class Cluster:
    """The mail ring as the inventory describes it, and its layout."""

    nodes: list
    interface: str
    prefixlen: int
    layout: dict


@dataclass
class Rendered:
    syntax: str
    directory: Path
    run: object


def render_vars(directory: Path, **more: object) -> dict:
    return {"ansible_connection": "local", "floating_ip_password": PASSWORD,
            "floating_ip_render_dir": str(directory), **more}


def files_under(directory: Path) -> dict:
    """Every file below directory, by its path relative to it, as text."""
    if not directory.exists():
        return {}
    return {str(path.relative_to(directory)): path.read_bytes().decode("utf-8")
            for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture(name="cluster", scope="module")
def fixture_cluster(ansible_inventory) -> Cluster:
    inventory = ansible_inventory(INVENTORY)
    nodes = inventory["floatip_nodes"]["hosts"]
    hostvars = inventory["_meta"]["hostvars"]
    first = hostvars[nodes[0]]
    model = build_model(first["floatip_network"], [(node, hostvars[node]["floatip_address"]) for node in nodes],
                        vip_pool=first["floatip_vip_pool"], vips_per_node=first["floatip_vips_per_node"],
                        vip_backend=first["floatip_vip_backend"])
    layout = build_layout(model, vrid_base=first.get("floating_ip_vrid_base", DEFAULT_VRID_BASE))
    return Cluster(nodes=nodes, interface=first["floating_ip_carp_interface"], prefixlen=model["prefixlen"], layout=layout)


@pytest.fixture(name="rendered", scope="module", params=["vhid", "carpN"])
def fixture_rendered(request, tmp_path_factory, ansible_playbook) -> Rendered:
    directory = tmp_path_factory.mktemp(f"render-{request.param}")
    run = ansible_playbook(PLAYBOOK, INVENTORY, render_vars(directory, floating_ip_carp_syntax=request.param))
    assert run.rc == 0, run.output
    return Rendered(syntax=request.param, directory=directory, run=run)


def vip_entries(text: str, syntax: str, cluster: Cluster) -> tuple:
    """The VIP lines of an rc.conf block as dicts, and the carpN interfaces it clones (None with vhid).

    Every line that is not a comment must be one of these: nothing else may
    reach rc.conf.
    """
    if syntax == "vhid":
        name = re.escape(re.sub(r"[-./+]", "_", cluster.interface))
        vip_re = re.compile(rf'^ifconfig_{name}_alias(?P<number>\d+)="inet vhid (?P<vhid>\d+) advbase 1 '
                            r'advskew (?P<advskew>\d+) pass (?P<password>\S+) alias (?P<vip>[0-9.]+)/32"$')
    else:
        vip_re = re.compile(r'^ifconfig_carp(?P<number>\d+)="vhid (?P<vhid>\d+) advskew (?P<advskew>\d+) '
                            rf'pass (?P<password>\S+) (?P<vip>[0-9.]+)/{cluster.prefixlen}"$')
    cloned_re = re.compile(r'^cloned_interfaces="\$\{cloned_interfaces\}(?P<names>( carp\d+)+)"$')
    entries, cloned = [], None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        vip = vip_re.match(line)
        clone = cloned_re.match(line) if syntax == "carpN" else None
        if vip:
            entries.append({key: int(value) if value.isdigit() else value for key, value in vip.groupdict().items()})
        elif clone and cloned is None:
            cloned = clone["names"].split()
        else:
            pytest.fail(f"unexpected line in a {syntax} rc.conf block: {line!r}")
    return entries, cloned


def sh_reads(path: Path) -> dict:
    """The variables that sh sets from an rc.conf block, as rc.d reads it, on a host that already clones lo1."""
    script = 'set -a; cloned_interfaces=lo1; . "$1"; env -0'
    done = subprocess.run(["sh", "-c", script, "sh", str(path)], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=True)
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)


def test_render_writes_the_expected_files(rendered: Rendered) -> None:
    got = files_under(rendered.directory)
    want = files_under(EXPECTED[rendered.syntax])
    assert sorted(got) == sorted(want)
    for name, text in want.items():
        assert got[name] == text, f"{rendered.directory / name} differs from {EXPECTED[rendered.syntax] / name}"


def test_every_vip_once_with_its_vhid_and_advskew(rendered: Rendered, cluster: Cluster) -> None:
    vips = cluster.layout["vips"]
    for node in cluster.nodes:
        entries, cloned = vip_entries((rendered.directory / node / "rc.conf").read_text(encoding="utf-8"),
                                      rendered.syntax, cluster)
        assert Counter(entry["vip"] for entry in entries) == Counter(vip["address"] for vip in vips), node
        for vip in vips:
            entry = next(entry for entry in entries if entry["vip"] == vip["address"])
            assert (entry["vhid"], entry["advskew"]) == (vip["vrid"], vip["advskew"][node]), (node, vip["address"])
        assert {entry["password"] for entry in entries} == {PASSWORD}
        # rc.d stops at the first missing alias number; carpN are numbered as the node's VIP list.
        assert sorted(entry["number"] for entry in entries) == list(range(len(vips)))
        if rendered.syntax == "carpN":
            assert cloned == [f"carp{number}" for number in range(len(vips))]


def test_each_vip_is_preferred_on_its_owner_alone(rendered: Rendered, cluster: Cluster) -> None:
    advskews: dict = {}
    for node in cluster.nodes:
        entries, _cloned = vip_entries((rendered.directory / node / "rc.conf").read_text(encoding="utf-8"),
                                       rendered.syntax, cluster)
        for entry in entries:
            advskews.setdefault(entry["vip"], {})[node] = entry["advskew"]
    for vip in cluster.layout["vips"]:
        by_node = advskews[vip["address"]]
        assert [node for node, advskew in by_node.items() if advskew == 0] == [vip["owner"]], vip["address"]
        # Equal advskews would leave the holder to chance.
        assert len(set(by_node.values())) == len(cluster.nodes), vip["address"]


def test_sh_reads_the_rc_conf_block_as_written(rendered: Rendered, cluster: Cluster) -> None:
    for node in cluster.nodes:
        path = rendered.directory / node / "rc.conf"
        assigned = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
                        if not line.startswith("#"))
        values = sh_reads(path)
        for name, quoted in assigned.items():
            if name == "cloned_interfaces":
                # The host's own cloned interfaces stay.
                assert values[name] == "lo1 " + " ".join(f"carp{k}" for k in range(len(cluster.layout["vips"])))
            else:
                assert values[name] == quoted.strip('"'), (node, name)


def test_sysctl_block_allows_and_preempts(rendered: Rendered, cluster: Cluster) -> None:
    for node in cluster.nodes:
        text = (rendered.directory / node / "sysctl.conf").read_text(encoding="utf-8")
        assert sorted(line for line in text.splitlines() if not line.startswith("#")) == SYSCTLS


def test_the_password_is_not_logged(rendered: Rendered) -> None:
    assert PASSWORD not in rendered.run.output


def test_only_the_owner_reads_the_block_that_holds_the_password(rendered: Rendered, cluster: Cluster) -> None:
    # As tasks/carp.yml keeps it on the node: /etc/rc.conf.d/netif, 0600.
    for node in cluster.nodes:
        assert stat.S_IMODE((rendered.directory / node).stat().st_mode) == 0o700, node
        assert stat.S_IMODE((rendered.directory / node / "rc.conf").stat().st_mode) == 0o600, node


def test_a_second_render_changes_nothing(rendered: Rendered, cluster: Cluster, ansible_playbook) -> None:
    assert all(rendered.run.recap[node]["changed"] > 0 for node in cluster.nodes), rendered.run.output
    again = ansible_playbook(PLAYBOOK, INVENTORY, render_vars(rendered.directory, floating_ip_carp_syntax=rendered.syntax))
    assert again.rc == 0, again.output
    assert {node: again.recap[node]["changed"] for node in cluster.nodes} == dict.fromkeys(cluster.nodes, 0)
    assert files_under(rendered.directory) == files_under(EXPECTED[rendered.syntax])


def test_nothing_reaches_the_nodes(tmp_path: Path, ansible_playbook) -> None:
    # The nodes keep their ssh connection, to a port where nothing listens:
    # any task that ran on a node would fail as unreachable.
    extra = render_vars(tmp_path, ansible_host="127.0.0.1", ansible_port=1)
    del extra["ansible_connection"]
    run = ansible_playbook(PLAYBOOK, INVENTORY, extra)
    assert run.rc == 0, run.output
    assert files_under(tmp_path) == files_under(EXPECTED["vhid"])


def test_without_a_password_pass_is_left_out(tmp_path: Path, ansible_playbook) -> None:
    run = ansible_playbook(PLAYBOOK, INVENTORY, render_vars(tmp_path, floating_ip_password=None))
    assert run.rc == 0, run.output
    want = {name: text.replace(f" pass {PASSWORD}", "") for name, text in files_under(EXPECTED["vhid"]).items()}
    assert files_under(tmp_path) == want


def test_aliases_start_where_the_hosts_own_end(tmp_path: Path, ansible_playbook) -> None:
    run = ansible_playbook(PLAYBOOK, INVENTORY, render_vars(tmp_path, floating_ip_carp_alias_start=3))
    assert run.rc == 0, run.output
    want = {name: re.sub(r"_alias(\d+)=", lambda m: f"_alias{int(m[1]) + 3}=", text)
            for name, text in files_under(EXPECTED["vhid"]).items()}
    assert files_under(tmp_path) == want


@pytest.mark.parametrize(("variable", "bad"), [
    ("floating_ip_carp_syntax", {"floating_ip_carp_syntax": "carp9"}),
    ("floating_ip_password", {"floating_ip_password": "p" * 21}),
    ("floating_ip_password", {"floating_ip_password": "pa$$word"}),
    ("floating_ip_carp_interface", {"floating_ip_carp_interface": "em0 alias"}),
    ("floating_ip_carp_alias_start", {"floating_ip_carp_alias_start": -1}),
    ("floatip_vip_backend", {"floatip_vip_backend": "keepalived"}),
    ("floating_ip_render_dir", {"floating_ip_render_dir": ""}),
], ids=["syntax-carp9", "password-21-characters", "password-shell-characters", "interface-with-a-space",
        "alias-start-negative", "backend-keepalived", "render-dir-empty"])
def test_bad_input_fails_naming_the_variable_and_renders_nothing(tmp_path: Path, ansible_playbook, cluster: Cluster,
                                                                 variable: str, bad: dict) -> None:
    directory = tmp_path / "render"
    run = ansible_playbook(PLAYBOOK, INVENTORY, {**render_vars(directory), **bad})
    assert run.rc != 0, run.output
    assert {node: run.recap[node]["failed"] for node in cluster.nodes} == dict.fromkeys(cluster.nodes, 1), run.output
    # Each error, from its [ERROR] line to the next blank line (the argument
    # spec's message starts on the line after).
    failures = re.findall(r"^\[ERROR\].*(?:\n.+)*", run.output, re.MULTILINE)
    assert failures and all(variable in failure for failure in failures), run.output
    assert files_under(directory) == {}
