"""The collection as an operator gets it: built, installed from its tarball, every playbook called by its FQCN.

Galaxy is not reachable here, so the declared dependencies come from the
PyPI ``ansible`` bundle of the virtualenv (found on Python's path), as the
README says; nothing is read from this checkout once the tarball is built.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(path.stem for path in (ROOT / "playbooks").glob("*.yml"))
INVENTORY = """\
all:
  children:
    floatip_nodes:
      hosts:
        node1: {floatip_address: 192.0.2.11}
        node2: {floatip_address: 192.0.2.12}
  vars:
    floatip_network: 192.0.2.0/24
    floatip_vip_pool: [192.0.2.101-192.0.2.102]
"""


def clean_env(where: Path) -> dict:
    """An operator's environment: no ANSIBLE_* of this checkout, the installed collections, the bundle's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(where / "collections"), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "true",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


@pytest.fixture(name="installed", scope="module")
def fixture_installed(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("installed")
    dist = where / "dist"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=300, cwd=where, env=clean_env(where))
    (tarball,) = dist.glob("floatip-ha-*.tar.gz")
    with tarfile.open(tarball) as tar:
        manifest = yaml.safe_load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["dependencies"] == yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    collections = where / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections), str(tarball)],
                   check=True, capture_output=True, text=True, timeout=300, cwd=where, env=clean_env(where))
    assert (collections / "ansible_collections" / "floatip" / "ha" / "MANIFEST.json").is_file()
    (where / "hosts.yml").write_text(INVENTORY)
    return where


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_runs_by_its_fqcn_from_the_installed_collection(installed: Path, playbook: str) -> None:
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(installed / "hosts.yml"), f"floatip.ha.{playbook}",
                           "--syntax-check"], cwd=installed, env=clean_env(installed), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Ansible itself runs from the checkout's virtualenv (a library's
    # warning may name it); nothing else of the checkout may be read.
    assert done.stdout.strip().startswith(f"playbook: {installed / 'collections'}"), done.stdout
    assert str(ROOT) not in (done.stdout + done.stderr).replace(str(BIN.parent), "<virtualenv>"), done.stdout + done.stderr
