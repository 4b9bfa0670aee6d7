"""The config_sync role on the controller: its policy lets the roles' own files through, its checks stop bad input.

render_config_sync.yml renders, with ansible_connection=local, what the
roles write on each node: haproxy.cfg (the file that seeds the central
repository) and config-sync.json (the policy the node reads every pushed
revision against). The policy must let each node's own haproxy.cfg
through: the shapes it holds are the haproxy role's, spelled again in
config_sync's vars, and this is where a change on one side and not the
other shows. (keepalived.conf needs the node's interfaces to render: the
Molecule scenario config_sync seeds and serves the real one.) The same run
renders the repository host's authorized_keys and runs the role's checks
on bad inputs, each of which must stop with a message naming the
variable.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_haproxy_render import NODES, _services
from test_haproxy_render import _inventory as _haproxy_inventory

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

_spec = importlib.util.spec_from_file_location("floatip_config_sync", ROOT / "roles" / "config_sync" / "files" / "config_sync.py")
cs = importlib.util.module_from_spec(_spec)
sys.modules.setdefault(_spec.name, cs)
_spec.loader.exec_module(cs)

# The role's checks on bad inputs: (case, variables, the variable its message names).
BAD = [
    ("committer name with a newline", {"config_sync_committers": [{"name": "ada\n", "ssh_key": KEY}]},
     "config_sync_committers"),
    ("committer name with a quote", {"config_sync_committers": [{"name": 'ada"', "ssh_key": KEY}]},
     "config_sync_committers"),
    ("committer name with a space", {"config_sync_committers": [{"name": "ada lovelace", "ssh_key": KEY}]},
     "config_sync_committers"),
    ("key with a second line", {"config_sync_committers": [{"name": "ada", "ssh_key": KEY + "\nssh-ed25519 AAAA x"}]},
     "config_sync_committers"),
    ("key with options in front", {"config_sync_committers": [{"name": "ada", "ssh_key": 'command="sh" ' + KEY}]},
     "config_sync_committers"),
    ("key with a quote in its comment", {"config_sync_committers": [{"name": "ada", "ssh_key": KEY + ' ada"x'}]},
     "config_sync_committers"),
    ("key with a trailing newline", {"config_sync_committers": [{"name": "ada", "ssh_key": KEY + "\n"}]},
     "config_sync_committers"),
    ("two committers of one name", {"config_sync_committers": [{"name": "ada", "ssh_key": KEY}] * 2},
     "config_sync_committers"),
    ("repository with a newline", {"config_sync_repository": "/srv/floatip-config/config\n"}, "config_sync_repository"),
    ("repository with a quote", {"config_sync_repository": '/srv/floatip-config/co"nfig'}, "config_sync_repository"),
    ("repository with a space", {"config_sync_repository": "/srv/floatip config/config"}, "config_sync_repository"),
    ("repository climbing", {"config_sync_repository": "/srv/floatip-config/../config"}, "config_sync_repository"),
    ("repository whose parent is /srv", {"config_sync_repository": "/srv/config"}, "config_sync_repository"),
    ("relative repository", {"config_sync_repository": "srv/floatip-config/config"}, "config_sync_repository"),
    ("user with a newline", {"config_sync_user": "floatip\n"}, "config_sync_user"),
    ("user root", {"config_sync_user": "root"}, "config_sync_user"),
    ("user with a capital", {"config_sync_user": "Floatip"}, "config_sync_user"),
    ("file dirs of the whole disk", {"config_sync_haproxy_file_dirs": ["/"]}, "config_sync_haproxy_file_dirs"),
    ("file dirs of /etc", {"config_sync_haproxy_file_dirs": ["/etc"]}, "config_sync_haproxy_file_dirs"),
    ("file dirs climbing", {"config_sync_haproxy_file_dirs": ["/etc/haproxy/../.."]}, "config_sync_haproxy_file_dirs"),
    ("file dirs with a newline", {"config_sync_haproxy_file_dirs": ["/etc/haproxy/errors\n"]},
     "config_sync_haproxy_file_dirs"),
]
GOOD = [
    ("the defaults", {}),
    ("a committer with a key and a comment", {"config_sync_committers": [{"name": "ada.l-1", "ssh_key": KEY + " ada@laptop"}]}),
]


def _inventory(tmp_path: Path, cert: Path) -> Path:
    """The HAProxy render test's cluster (every feature of the haproxy role,
    the runtime API over TCP too), with a repository host and committers."""
    inventory = yaml.safe_load(_haproxy_inventory(tmp_path, _services(cert)).read_text())
    inventory["all"]["vars"].update({
        "config_sync_targets": ["haproxy", "keepalived"],
        "config_sync_committers": [{"name": "ada", "ssh_key": KEY + " ada@laptop"}],
    })
    inventory["all"]["children"]["floatip_config_repo"] = {"hosts": {"repo": {"floatip_address": "172.30.80.5"}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import _ansible_playbook

    where = tmp_path_factory.mktemp("config_sync")
    cert = where / "site.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=floatip.test",
                    "-keyout", str(where / "key"), "-out", str(where / "crt")], check=True, capture_output=True, timeout=120)
    cert.write_text((where / "crt").read_text() + (where / "key").read_text())
    cases = [{"name": name, "vars": variables} for name, variables, _variable in BAD]
    cases += [{"name": name, "vars": variables} for name, variables in GOOD]
    (where / "cases.json").write_text(json.dumps(cases))
    run = _ansible_playbook(HERE / "render_config_sync.yml", _inventory(where, cert), {"render_dir": str(where)})
    assert run.rc == 0, run.output
    return where


def _assembled(target: str, text: str) -> object:
    assembled = cs.Assembled(target)
    assembled.add(f"{target}/{target}.conf", text)
    return assembled


@pytest.mark.parametrize("node", sorted(NODES))
def test_the_policy_serves_what_the_roles_render(rendered: Path, node: str) -> None:
    config = json.loads((rendered / f"{node}.json").read_text())
    targets = {target["name"]: target for target in config["targets"]}
    assert set(targets) == {"haproxy", "keepalived"}
    haproxy_cfg = (rendered / f"{node}.haproxy.cfg").read_text()
    # What the role puts in it that the policy weighs.
    assert "stats socket 127.0.0.1:9999" in haproxy_cfg and " ssl crt " in haproxy_cfg
    assert "stats admin if " in haproxy_cfg and "send-proxy" in haproxy_cfg
    cs.policy_for(targets["haproxy"]).check(_assembled("haproxy", haproxy_cfg))
    keepalived = targets["keepalived"]["policy"]
    assert keepalived["scripts"] == [["/usr/bin/pgrep", "-x", "<name>"], ["/usr/local/lib/floatip/reach-any", "<address>..."]]
    assert keepalived["global_defs"]["vrrp_notify_fifo_script"] == "/usr/local/lib/floatip/vrrp-notify"
    # And each file gets the mode its target needs.
    assert (targets["haproxy"]["owner"], targets["haproxy"]["group"], targets["haproxy"]["mode"]) == ("root", "haproxy", "0640")
    assert (targets["keepalived"]["owner"], targets["keepalived"]["group"], targets["keepalived"]["mode"]) == ("root", "root", "0600")


def test_node_keys_come_from_their_own_address_only(rendered: Path) -> None:
    lines = [line for line in (rendered / "authorized_keys").read_text().splitlines() if line and not line.startswith("#")]
    assert len(lines) == len(NODES) + 1
    for node, address in NODES.items():
        (line,) = [line for line in lines if line.endswith(f" node {node}")]
        assert line.startswith(f'restrict,from="{address}",command="/usr/bin/python3 /usr/local/lib/floatip/config_sync.py'
                               f' serve --repository /srv/floatip-config/config --node {node}" ssh-ed25519 ')
    (committer,) = [line for line in lines if line.endswith(" committer ada")]
    assert committer == ('restrict,command="/usr/bin/python3 /usr/local/lib/floatip/config_sync.py serve --repository '
                         f'/srv/floatip-config/config --pusher ada" {KEY} committer ada')


@pytest.mark.parametrize(("case", "variable"), [(name, variable) for name, _vars, variable in BAD],
                         ids=[name for name, _vars, _variable in BAD])
def test_bad_input_is_stopped_naming_the_variable(rendered: Path, case: str, variable: str) -> None:
    said = json.loads((rendered / "validate.json").read_text())[case]
    assert said != "passed" and said.startswith(variable), said


@pytest.mark.parametrize("case", [name for name, _vars in GOOD])
def test_good_input_passes(rendered: Path, case: str) -> None:
    assert json.loads((rendered / "validate.json").read_text())[case] == "passed"
