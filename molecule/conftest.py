"""Helpers shared by the testinfra checks of every Molecule scenario.

Molecule runs each scenario's tests/ with the scenario's inventory in
MOLECULE_INVENTORY_FILE; the hosts and their model variables come from it,
so no check writes an address down a second time. What the scenarios share
with tests/ and bench/ (containers, the load, playbook runs, the clients'
scripts) is the package floatip_testing (tests/floatip_testing); this file
maps the scenario's inventory hosts onto it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import testinfra.utils.ansible_runner
from floatip_testing import client_script, lab, playbook
from floatip_testing.lab import crashed, docker, frozen  # noqa: F401  (the scenarios' checks import them from here)

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SCENARIO_DIR = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
EPHEMERAL_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])

# The checks compute addresses with the collection's own model code.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / ".build" / "collections"))
from ansible_collections.floatip.ha.plugins.module_utils.cluster import build_model  # noqa: E402


@cache
def runner() -> testinfra.utils.ansible_runner.AnsibleRunner:
    return testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)


def hosts(pattern: str = "all") -> list[str]:
    return runner().get_hosts(pattern)


def hostvars(name: str) -> dict:
    """A host's variables as the inventory gives them (not templated)."""
    return runner().get_variables(name)


def model(group: str = "floatip_nodes") -> dict:
    """The scenario's checked cluster model, as the roles compute it."""
    first = hostvars(hosts(group)[0])
    return build_model(
        first["floatip_network"],
        [(name, hostvars(name).get("floatip_address")) for name in hosts(group)],
        vip_pool=first.get("floatip_vip_pool"),
        vips_per_node=first.get("floatip_vips_per_node"),
        vip_backend=first.get("floatip_vip_backend"),
    )


def home_layout() -> list[dict]:
    """Each VIP with its owner and VRID by the rules docs/model.md states, not by layout.py: the i-th address of the
    pool is owned by node i // floatip_vips_per_node and has VRID floating_ip_vrid_base (1) + i."""
    cluster = model()
    first = hostvars(hosts("floatip_nodes")[0])
    per, base = cluster["vips_per_node"], first.get("floating_ip_vrid_base", 1)
    return [{"address": vip, "owner": cluster["nodes"][index // per]["name"], "vrid": base + index}
            for index, vip in enumerate(cluster["vips"][:len(cluster["nodes"]) * per])]


def ansible_playbook(path: str, *args: str, inventory: str = INVENTORY, timeout: float = 600) -> dict:
    """Run a playbook of the scenario (a path relative to its folder) against
    its inventory, as converge does: floatip_testing.playbook's report, with
    ``rc``, ``failures`` and ``changed``."""
    return playbook.run(SCENARIO_DIR / path, inventory, args, timeout=timeout)


PROBE = client_script("probe.py").read_text(encoding="utf-8")


def container(host: str) -> str:
    """The container of an inventory host: its ansible_host where the
    inventory composes one (the lab's floatip-<lab>-<host>), else its name
    (Molecule's)."""
    name = hostvars(host).get("ansible_host", host)
    # ansible-inventory marks a composed value unsafe: {"__ansible_unsafe": value}.
    return str(name["__ansible_unsafe"] if isinstance(name, dict) else name)


def on(host: str, command: str, timeout: float = 120) -> str:
    """A shell command on an inventory host's container; its output."""
    return lab.on(container(host), command, timeout)


def is_paused(host: str) -> bool:
    return lab.is_paused(container(host))


def holders_of(addresses: list[str], nodes: list[str]) -> dict[str, list[str]]:
    """Each address's nodes that have it configured now, from one look at
    each node (a frozen node counts as holding what it held when it froze,
    but cannot be asked: skipped)."""
    held = {node: lab.addresses(container(node)) for node in nodes}
    return {address: [node for node in nodes if address in held[node]] for address in addresses}


def holders(address: str, nodes: list[str]) -> list[str]:
    """The nodes that have ``address`` configured now (see holders_of)."""
    return holders_of([address], nodes)[address]


def client_waits_for(client: str, address: str, port: int, want: str, timeout: float) -> float:
    """Seconds until ``want`` answers on address:port, as seen from ``client``.

    Raises AssertionError with the last answer when it does not within
    ``timeout``."""
    done = subprocess.run(
        ["docker", "exec", client, "python3", "-c", PROBE, address, str(port), want, str(timeout)],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    assert done.returncode == 0, f"{want} did not answer on {address}:{port} within {timeout} s: {done.stdout.strip()}"
    return float(done.stdout.split()[0])


def wait_booted(container_name: str, timeout: float = 120) -> None:
    """Wait until systemd in the container has started everything, every unit running."""
    state = lab.wait_booted(container_name, timeout)
    assert state == "running", f"{container_name} booted {state}: a unit failed (systemctl --failed)"


@contextmanager
def stranger(beside: str, packages: list[str]) -> Iterator[tuple[str, str]]:
    """(name, address) of a host on the network of ``beside`` that no
    inventory names: in no group, at an address that is no host's and no VIP
    (floatip_testing.lab.stranger), removed on the way out."""
    cluster = model()
    taken = {str(hostvars(name).get("floatip_address")) for name in hosts()} | set(cluster["vips"])
    with lab.stranger(container(beside), taken, cluster["network"], packages) as found:
        yield found


def converge(tags: str = "", **extra: object) -> dict:
    """Run the scenario's converge playbook with extra variables (only the
    roles of ``tags``, where its converge.yml tags them as site.yml does);
    it must succeed."""
    run = ansible_playbook("converge.yml", "-e", json.dumps(extra), *(("--tags", tags) if tags else ()))
    assert run["rc"] == 0, run["failures"]
    return run


def check_diff(tags: str, task: str, **extra: object) -> tuple[dict, dict[str, dict]]:
    """Converge the roles of ``tags`` with ``--check --diff`` and extra
    variables; it must succeed. The run's report, and each host's result of
    the task named ``task`` (a role's task is reported as "<role> : <name>")."""
    run = ansible_playbook("converge.yml", "--tags", tags, "--check", "--diff", "-e", json.dumps(extra))
    assert run["rc"] == 0, run["failures"]
    named = [each for play in run["plays"] for each in play["tasks"] if each["task"]["name"].split(" : ")[-1] == task]
    assert named, f"no task {task!r} ran"
    shown = named[0]
    return run, shown["hosts"]


def move(action: str, node: str) -> dict:
    """Run the VIP layer's standby or takeover on one node; it must succeed."""
    run = ansible_playbook(str(Path("..") / "_shared" / "move.yml"), "-e",
                           json.dumps({"vip_move": action, "vip_target": node}))
    assert run["rc"] == 0, run["failures"]
    return run


def settles_as(expected: dict[str, str], nodes: list[str], timeout: float) -> None:
    """Wait until each VIP of ``expected`` is held by its node and by no other."""
    deadline = time.monotonic() + timeout
    seen: dict = {}
    while time.monotonic() < deadline:
        seen = holders_of(list(expected), nodes)
        if all(seen[vip] == [node] for vip, node in expected.items()):
            return
        time.sleep(0.3)
    wrong = {vip: seen.get(vip) for vip, node in expected.items() if seen.get(vip) != [node]}
    raise AssertionError(f"expected {expected}, but these differ: {wrong}")


def vip_info() -> dict[str, dict]:
    """floatip.ha.vip_info's facts (floatip_vips) of every live node."""
    run = ansible_playbook(str(Path("..") / "_shared" / "vip_info.yml"))
    assert run["rc"] == 0, run["failures"]
    task = run["plays"][0]["tasks"][0]
    return {host: result["ansible_facts"]["floatip_vips"] for host, result in task["hosts"].items()}


def refused_with_nothing_changed(extra_vars: dict, message: str, nodes: list[str], path: str,
                                 playbook: str = "converge.yml", tags: str = "") -> None:
    """Converge (or run ``playbook``; only the roles of ``tags``, as converge
    does) with bad ``extra_vars``: it must fail with ``message`` in every
    failure, report no change, and leave ``path`` as it was on every node."""
    def checksums() -> dict[str, str]:
        return {node: docker("exec", container(node), "md5sum", path).split()[0] for node in nodes}

    before = checksums()
    run = ansible_playbook(playbook, "-e", json.dumps(extra_vars), *(("--tags", tags) if tags else ()))
    assert run["rc"] != 0
    assert run["failures"] and all(message in failure for failure in run["failures"]), run["failures"]
    assert run["changed"] == 0
    assert checksums() == before
