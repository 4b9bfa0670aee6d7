"""Helpers shared by the testinfra checks of every Molecule scenario.

Molecule runs each scenario's tests/ with the scenario's inventory in
MOLECULE_INVENTORY_FILE; the hosts and their model variables come from it,
so no check writes an address down a second time.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO_DIR = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])


@cache
def runner() -> testinfra.utils.ansible_runner.AnsibleRunner:
    return testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)


def hosts(pattern: str = "all") -> list[str]:
    return runner().get_hosts(pattern)


def hostvars(name: str) -> dict:
    return runner().get_variables(name)


def docker(*args: str, timeout: float = 120) -> str:
    """Run the docker CLI against the scenario's containers."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


def ansible_playbook(playbook: str, *args: str, timeout: float = 600) -> dict:
    """Run a playbook of the scenario against its inventory, as converge does.

    Returns the json callback's report plus ``rc``, ``failures`` (the
    message of every failed task) and ``changed`` (the sum over hosts).
    """
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    done = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, str(SCENARIO_DIR / playbook), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    report = json.loads(done.stdout)
    failures = [
        " ".join(str(result.get("msg", "")).split())
        for play in report["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("failed")
    ]
    report.update(
        rc=done.returncode,
        failures=failures,
        changed=sum(stats["changed"] for stats in report["stats"].values()),
    )
    return report
