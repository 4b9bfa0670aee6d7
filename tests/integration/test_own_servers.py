"""The bring-your-own-servers inventory (inventories/own_servers, walked
through in docs/own-servers.md) with its secrets in ansible-vault, as the
guide makes them: every node's haproxy.cfg renders from it and passes a real
haproxy -c, the secrets reach the configs only hashed, never the output,
and without the vault password nothing renders at all."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, VENV_BIN, Run, _ansible_playbook, _env, haproxy_binary

INVENTORY = ROOT / "inventories" / "own_servers"
RENDER = Path(__file__).parent / "render_haproxy.yml"
# The controller stands in for the servers: the templates render locally.
LOCAL = {"ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


@pytest.fixture(name="vaulted", scope="module")
def fixture_vaulted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A copy of the inventory with group_vars/all/vault.yml made from
    vault.yml.example and encrypted with ansible-vault, as the guide says:
    (inventory, vault password file, the secrets in plain)."""
    where = tmp_path_factory.mktemp("own_servers")
    inventory = where / "inventory"
    shutil.copytree(INVENTORY, inventory)
    keys = yaml.safe_load((inventory / "group_vars" / "all" / "vault.yml.example").read_text())
    # Letters and digits: 8 for VRRPv2's password, 24 for the others.
    plain = {key: secrets.token_hex(4 if "floating_ip" in key else 12) for key in keys}
    vault = inventory / "group_vars" / "all" / "vault.yml"
    vault.write_text(yaml.safe_dump(plain))
    password_file = where / "vault-password"
    password_file.write_text(secrets.token_urlsafe(24))
    password_file.chmod(0o600)
    subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(vault)],
                   cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=True)
    text = vault.read_text()
    assert text.startswith("$ANSIBLE_VAULT;")
    assert not any(value in text for value in plain.values())
    return inventory, password_file, plain


def _render(inventory: Path, render_dir: Path, *options: str) -> Run:
    return _ansible_playbook(RENDER, inventory, {**LOCAL, "render_dir": str(render_dir)}, options=options)


Vaulted = tuple[Path, Path, dict[str, str]]


def test_every_node_renders_from_the_vault_and_haproxy_accepts_it(vaulted: Vaulted, tmp_path: Path) -> None:
    inventory, password_file, plain = vaulted
    run = _render(inventory, tmp_path, "--vault-password-file", str(password_file))
    assert run.rc == 0, run.output
    nodes = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["floatip_nodes"]["hosts"]
    for node, host in nodes.items():
        config = tmp_path / f"{node}.cfg"
        checked = subprocess.run([haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        text = config.read_text()
        # The stats page on the node's cluster address, never its management name.
        assert f"bind {host['floatip_address']}:" in text and host["ansible_host"] not in text
        assert "user ops password $" in text
    everything = run.output + "".join(path.read_text() for path in tmp_path.glob("*.cfg"))
    assert not any(value in everything for value in plain.values())


def test_without_the_vault_password_nothing_renders(vaulted: Vaulted, tmp_path: Path) -> None:
    inventory, plain = vaulted[0], vaulted[2]
    run = _render(inventory, tmp_path)
    assert run.rc != 0
    assert "vault" in run.output.lower(), run.output
    assert not list(tmp_path.glob("*.cfg"))
    assert not any(value in run.output for value in plain.values())
