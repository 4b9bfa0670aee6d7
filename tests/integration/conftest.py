"""Run this checkout's playbooks as Ansible runs them, with the collection floatip.ha installed from it.

The fixtures ``ansible_playbook`` and ``ansible_inventory`` run the
virtualenv's programs with the checkout's ansible.cfg, from its root.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from floatip_testing import haproxy as floatip_haproxy

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "floatip" / "ha"
VENV_BIN = ROOT / ".venv" / "bin"

# The link that ansible.cfg's collections_path finds (made by `make link`).
if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(ROOT, LINK.parent), LINK)
sys.path.insert(0, str(COLLECTIONS))

_RECAP_RE = re.compile(r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                       r"failed=(?P<failed>\d+)", re.MULTILINE)


@dataclass
class Run:
    """One ansible-playbook run: its exit status, its output, and the recap per host."""

    rc: int
    output: str

    @property
    def recap(self) -> dict:
        return {m["host"]: {key: int(m[key]) for key in ("ok", "changed", "unreachable", "failed")}
                for m in _RECAP_RE.finditer(self.output)}


def _env(settings: Mapping[str, str] | None = None) -> dict:
    # Only this checkout's ansible.cfg: no ANSIBLE_* setting of the caller's
    # shell (a custom ansible_managed, another callback) reaches the run;
    # a test's own settings come last.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(settings or {})
    return env


def _ansible_playbook(playbook: Path, inventory: Path, extra_vars: dict, timeout: float = 300,
                      options: Sequence[str] = (), settings: Mapping[str, str] | None = None) -> Run:
    """Run a playbook, extra variables given as JSON so that their types hold; options
    (such as -vvvv) go on its command line, settings (ANSIBLE_*) into its environment."""
    done = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), "-e", json.dumps(extra_vars), *options],
        cwd=ROOT, env=_env(settings), capture_output=True, text=True, timeout=timeout, check=False,
    )
    return Run(rc=done.returncode, output=done.stdout + done.stderr)


def _ansible_inventory(inventory: Path) -> dict:
    """The inventory as ``ansible-inventory --list`` gives it (variables not templated)."""
    done = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture(name="ansible_playbook", scope="session")
def fixture_ansible_playbook() -> Callable[..., Run]:
    return _ansible_playbook


@pytest.fixture(name="ansible_inventory", scope="session")
def fixture_ansible_inventory() -> Callable[[Path], dict]:
    return _ansible_inventory


def haproxy_binary() -> str:
    """The control machine's haproxy, which the HAProxy tests run for real: a
    missing one fails them (it is a prerequisite, never a reason to skip)."""
    try:
        found = floatip_haproxy.haproxy_binary()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} (these tests run a real one)")
    return found
