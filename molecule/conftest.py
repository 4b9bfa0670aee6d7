"""Helpers shared by the testinfra checks of every Molecule scenario.

Molecule runs each scenario's tests/ with the scenario's inventory in
MOLECULE_INVENTORY_FILE; the hosts and their model variables come from it,
so no check writes an address down a second time.
"""

from __future__ import annotations

import ipaddress
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


def docker(*args: str, timeout: float = 120) -> str:
    """Run the docker CLI against the scenario's containers."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


def ansible_playbook(playbook: str, *args: str, inventory: str = INVENTORY, timeout: float = 600) -> dict:
    """Run a playbook of the scenario against its inventory, as converge does.

    Returns the json callback's report plus ``rc``, ``failures`` (the
    message of every failed task) and ``changed`` (the sum over hosts).
    """
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    done = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO_DIR / playbook), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    report = json.loads(done.stdout)
    failures = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                # A failed loop reports each failed item's message inside.
                items = [each for each in result.get("results", []) if isinstance(each, dict)]
                for each in items or [result]:
                    if each.get("failed"):
                        # A probe that ran out of retries has no msg: say what it saw.
                        text = each.get("msg") or f"{task['task']['name']}: rc={each.get('rc')} {each.get('stdout', '')}"
                        failures.append(" ".join(str(text).split()))
    report.update(
        rc=done.returncode,
        failures=failures,
        changed=sum(stats["changed"] for stats in report["stats"].values()),
    )
    return report


PROBE = (Path(__file__).parent / "_shared" / "probe.py").read_text()


def container(host: str) -> str:
    """The container of an inventory host: its ansible_host where the
    inventory composes one (the lab's floatip-<lab>-<host>), else its name
    (Molecule's)."""
    name = hostvars(host).get("ansible_host", host)
    # ansible-inventory marks a composed value unsafe: {"__ansible_unsafe": value}.
    return str(name["__ansible_unsafe"] if isinstance(name, dict) else name)


def is_paused(host: str) -> bool:
    return docker("inspect", "--format", "{{.State.Paused}}", container(host)).strip() == "true"


def holders(address: str, nodes: list[str]) -> list[str]:
    """The nodes that have ``address`` configured now (a frozen node counts
    as holding what it held when it froze, but cannot be asked: skipped)."""
    held = []
    for node in nodes:
        if is_paused(node):
            continue
        out = docker("exec", container(node), "ip", "-o", "address", "show")
        if f" {address}/" in out:
            held.append(node)
    return held


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


@contextmanager
def frozen(container: str) -> Iterator[None]:
    """Pause a container (all its processes stop, as in a hang) and always
    thaw it on the way out."""
    docker("pause", container)
    try:
        yield
    finally:
        if is_paused(container):
            docker("unpause", container)


@contextmanager
def crashed(container: str) -> Iterator[None]:
    """Kill a container at once (a power cut: nothing is shut down, its
    addresses vanish with it) and boot it again on the way out, waiting
    until systemd has started everything."""
    docker("kill", container)
    try:
        yield
    finally:
        docker("start", container)
        wait_booted(container)


def wait_booted(container: str, timeout: float = 120) -> None:
    """Wait until systemd in ``container`` has started everything.

    Right after a (re)start systemd's bus may not answer yet, so ask again
    until it says running."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        done = subprocess.run(["docker", "exec", container, "systemctl", "is-system-running"],
                              capture_output=True, text=True, timeout=30, check=False)
        state = done.stdout.strip()
        if state == "running":
            return
        time.sleep(0.5)
    raise AssertionError(f"{container} did not finish booting within {timeout} s (systemd says {state!r})")


@contextmanager
def stranger(beside: str, packages: list[str]) -> Iterator[tuple[str, str]]:
    """(name, address) of a host on the network of container ``beside`` that
    no inventory names: in no group, at an address that is no host's and no
    VIP, with Debian's ``packages`` installed; removed on the way out. It
    carries the labels of ``beside``, so the scenario's destroy removes it
    whatever happens."""
    info = json.loads(docker("inspect", container(beside)))[0]
    network = next(iter(info["NetworkSettings"]["Networks"]))
    cluster = model()
    taken = {str(hostvars(name).get("floatip_address")) for name in hosts()} | set(cluster["vips"])
    hosts_of = list(ipaddress.ip_network(cluster["network"]).hosts())
    # The first host address is the network's gateway.
    address = next(str(a) for a in reversed(hosts_of[1:]) if str(a) not in taken)
    name = f"{container(beside)}-stranger"
    labels = [arg for key, value in info["Config"]["Labels"].items() if key.startswith("floatip.") for arg in ("--label", f"{key}={value}")]
    docker("run", "-d", "--name", name, "--hostname", name, "--network", network, "--ip", address, *labels,
           "--entrypoint", "sleep", info["Config"]["Image"], "3600")
    try:
        docker("exec", name, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
               f"--no-install-recommends {' '.join(packages)} >/dev/null", timeout=600)
        yield name, address
    finally:
        docker("rm", "-f", name)


def converge(**extra: object) -> dict:
    """Run the scenario's converge playbook with extra variables; it must succeed."""
    run = ansible_playbook("converge.yml", "-e", json.dumps(extra))
    assert run["rc"] == 0, run["failures"]
    return run


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
        seen = {vip: holders(vip, nodes) for vip in expected}
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
                                 playbook: str = "converge.yml") -> None:
    """Converge (or run ``playbook``) with bad ``extra_vars``: it must fail with
    ``message`` in every failure, report no change, and leave ``path`` as it
    was on every node."""
    def checksums() -> dict[str, str]:
        return {node: docker("exec", node, "md5sum", path).split()[0] for node in nodes}

    before = checksums()
    run = ansible_playbook(playbook, "-e", json.dumps(extra_vars))
    assert run["rc"] != 0
    assert run["failures"] and all(message in failure for failure in run["failures"]), run["failures"]
    assert run["changed"] == 0
    assert checksums() == before
