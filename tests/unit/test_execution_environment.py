"""execution-environment.yml: ansible-builder accepts it and its build
context installs this collection, as built, with what it needs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_the_build_context_installs_this_collection(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (built,) = dist.glob("floatip-ha-*.tar.gz")
    with tarfile.open(built) as tar:
        names = tar.getnames()
    # The collection only: not the benchmarks, the lab or the repository's settings.
    assert "plugins/module_utils/model.py" in names and "roles/cluster/tasks/main.yml" in names
    assert not [name for name in names if name.split("/")[0] in {"bench", "lab", "molecule", "ansible.cfg", "pytest.ini", "site.yml"}]
    project = tmp_path / "project"
    (project / ".build" / "ee-files").mkdir(parents=True)
    shutil.copy(ROOT / "execution-environment.yml", project)
    shutil.copy(built, project / ".build" / "ee-files" / "floatip-ha.tar.gz")
    context = tmp_path / "context"
    done = subprocess.run([str(BIN / "ansible-builder"), "create", "--file", "execution-environment.yml",
                           "--context", str(context)], cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    wanted = {entry["name"] for entry in requirements["collections"]}
    assert {"ansible.posix", "community.crypto", "/build/floatip/floatip-ha.tar.gz"} <= wanted
    # The galaxy stage copies _build/ to /build before it installs them.
    containerfile = (context / "Dockerfile").read_text()
    assert "COPY _build /build" in containerfile
    assert containerfile.index("COPY _build /build") < containerfile.index("ansible-galaxy collection install")
    with tarfile.open(context / "_build" / "floatip" / "floatip-ha.tar.gz") as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"],
            manifest["collection_info"]["version"]) == (galaxy["namespace"], galaxy["name"], galaxy["version"])
    assert "passlib" in (context / "_build" / "requirements.txt").read_text()
