"""The collection as an operator gets it: built, installed from its tarball, every playbook called by its FQCN.

Galaxy is not reachable here, so the declared dependencies come from the
PyPI ``ansible`` bundle of the virtualenv (found on Python's path), as the
README says; nothing is read from this checkout once the tarball is built.

On two ansible-core releases: the virtualenv's (the newest that this
machine's Python runs as a controller) and the oldest that meta/runtime.yml
admits (``requires_ansible``), installed from PyPI into a virtualenv of its
own under .build. With each, every playbook passes its syntax check by
FQCN, and the CARP backend renders the mail ring's reference inventory
(both from the installed tree) to the same files.
"""

from __future__ import annotations

import os
import re
import site
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


# The oldest ansible-core that meta/runtime.yml admits.
OLDEST = re.fullmatch(r">=\s*([0-9.]+)", yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]).group(1)


def clean_env(where: Path, bin_dir: Path = BIN) -> dict:
    """An operator's environment: no ANSIBLE_* of this checkout, the installed collections, the bundle's
    (the virtualenv's site-packages, which another ansible-core's Python does not scan)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([str(where / "collections"), *site.getsitepackages()]),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"})
    return env


@pytest.fixture(name="oldest", scope="module")
def fixture_oldest() -> Path:
    """The bin folder of a virtualenv with the oldest admitted ansible-core, made once under .build."""
    venv = ROOT / ".build" / f"ansible-core-{OLDEST}"
    if not (venv / "bin" / "ansible-playbook").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"ansible-core=={OLDEST}"], check=True,
                       capture_output=True, text=True, timeout=600)
    version = subprocess.run([str(venv / "bin" / "ansible-playbook"), "--version"], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    assert f"[core {OLDEST}]" in version, version
    return venv / "bin"


@pytest.fixture(name="core", params=["newest", "oldest"])
def fixture_core(request) -> Path:
    """The bin folder of the ansible-core under test."""
    return BIN if request.param == "newest" else request.getfixturevalue("oldest")


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
def test_every_playbook_runs_by_its_fqcn_from_the_installed_collection(installed: Path, playbook: str, core: Path) -> None:
    done = subprocess.run([str(core / "ansible-playbook"), "-i", str(installed / "hosts.yml"), f"floatip.ha.{playbook}",
                           "--syntax-check"], cwd=installed, env=clean_env(installed, core), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Ansible itself runs from a virtualenv in the checkout (a library's
    # warning may name it); nothing else of the checkout may be read.
    assert done.stdout.strip().startswith(f"playbook: {installed / 'collections'}"), done.stdout
    assert str(ROOT) not in (done.stdout + done.stderr).replace(str(core.parent), "<virtualenv>"), done.stdout + done.stderr


def render_ring(installed: Path, core: Path, out: Path) -> dict[str, str]:
    """The mail ring's CARP files as the installed collection renders them with this ansible-core."""
    tree = installed / "collections" / "ansible_collections" / "floatip" / "ha"
    extra = {"ansible_connection": "local", "ansible_python_interpreter": str(core / "python"),
             "floating_ip_password": "ring-test-secret", "floating_ip_render_dir": str(out)}
    done = subprocess.run([str(core / "ansible-playbook"), "-i", str(tree / "inventories" / "mail_ring"),
                           str(tree / "tests" / "integration" / "render_carp.yml"), "-e", yaml.safe_dump(extra, default_flow_style=True)],
                          cwd=installed, env=clean_env(installed, core), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return {str(path.relative_to(out)): path.read_text() for path in sorted(out.rglob("*")) if path.is_file()}


def test_the_oldest_admitted_ansible_core_renders_what_the_newest_does(installed: Path, oldest: Path, tmp_path: Path) -> None:
    newest = render_ring(installed, BIN, tmp_path / "newest")
    old = render_ring(installed, oldest, tmp_path / "oldest")
    # Five nodes, an rc.conf and a sysctl.conf block each.
    assert len(newest) == 10 and all(" vhid " in text for name, text in newest.items() if "rc.conf" in name), sorted(newest)
    assert old == newest
