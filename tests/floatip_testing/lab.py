"""The lab's containers, from the host that runs them.

Every function takes a container's name (Molecule's platform name, or the
lab's floatip-<lab>-<host>): the callers map inventory hosts to containers.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


class DockerError(RuntimeError):
    """A docker command that failed: the command and what docker said."""


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run the docker CLI; its output. A failure raises DockerError with docker's message unless ``check`` is false."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:3])} ... failed (rc {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def on(container: str, command: str, timeout: float = 120) -> str:
    """A shell command in a container; its output (a failure raises DockerError)."""
    return docker("exec", container, "sh", "-c", command, timeout=timeout)


def copy_to(container: str, source: Path, target: str) -> None:
    """Copy a file of the host into a container."""
    docker("cp", str(source), f"{container}:{target}", timeout=60)


def is_paused(container: str) -> bool:
    return docker("inspect", "--format", "{{.State.Paused}}", container).strip() == "true"


def _up(container: str) -> bool:
    """Running and not paused."""
    return docker("inspect", "--format", "{{.State.Running}} {{.State.Paused}}", container).split() == ["true", "false"]


def addresses(container: str) -> set[str]:
    """The addresses configured in the container now, from one
    ``ip -o address show`` (a paused one cannot be asked, a stopped one has
    none: empty, also when it stopped or froze while being asked)."""
    if not _up(container):
        return set()
    try:
        out = docker("exec", container, "ip", "-o", "address", "show")
    except DockerError:
        if _up(container):
            raise
        return set()
    found = set()
    for line in out.splitlines():
        fields = line.split()
        for family in ("inet", "inet6"):
            if family in fields[:-1]:
                found.add(fields[fields.index(family) + 1].split("/")[0])
    return found


def holds(container: str, address: str) -> bool:
    """The container has ``address`` configured now (see addresses)."""
    return address in addresses(container)


# How often `docker pause` is tried when the kernel could not freeze the
# container's cgroup (below).
PAUSE_TRIES = 5


def pause(container: str) -> None:
    """Freeze every process of a container. The cgroup freezer can fail
    while a process is being started in the container (a `docker exec` of a
    poll, say): runc then thaws it again and says "unable to freeze"
    (runc's own word: freezing is "a game of chances", opencontainers/runc
    #2791). That is the instrument failing, not the cluster, so try again;
    any other error, or the same one every time, is raised."""
    for attempt in range(1, PAUSE_TRIES + 1):
        try:
            docker("pause", container)
            return
        except DockerError as error:
            if "unable to freeze" not in str(error) or attempt == PAUSE_TRIES or is_paused(container):
                raise
            time.sleep(0.1 * attempt)


@contextmanager
def frozen(container: str) -> Iterator[None]:
    """Pause a container (all its processes stop, as in a hang) and always
    thaw it on the way out."""
    pause(container)
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
        state = wait_booted(container)
        assert state == "running", f"{container} booted {state}: a unit failed (systemctl --failed)"


def wait_booted(container: str, timeout: float = 120) -> str:
    """systemd's state once ``container`` has finished booting: ``running``,
    or ``degraded`` when a unit failed (the caller decides whether that will
    do). Right after a (re)start systemd's bus may not answer yet, so ask
    again until it says one of them; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        done = subprocess.run(["docker", "exec", container, "systemctl", "is-system-running"],
                              capture_output=True, text=True, timeout=30, check=False)
        state = done.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.3)
    raise TimeoutError(f"{container} did not finish booting within {timeout:.0f} s (systemd says {state!r})")


@contextmanager
def stranger(beside: str, taken: set[str], network: str, packages: list[str]) -> Iterator[tuple[str, str]]:
    """(name, address) of a host on the network of container ``beside`` that
    no inventory names: at the highest address of ``network`` not in
    ``taken`` (every host's and VIP's), with Debian's ``packages``
    installed; removed on the way out. It carries the labels of ``beside``,
    so the lab's or scenario's removal takes it whatever happens."""
    info = json.loads(docker("inspect", beside))[0]
    docker_network = list(info["NetworkSettings"]["Networks"])[0]
    hosts = list(ipaddress.ip_network(network).hosts())
    # The first host address is the network's gateway.
    free = [str(a) for a in reversed(hosts[1:]) if str(a) not in taken]
    if not free:
        raise AssertionError(f"no address of {network} is free for a stranger")
    address = free[0]
    name = f"{beside}-stranger"
    labels = [arg for key, value in info["Config"]["Labels"].items() if key.startswith("floatip.")
              for arg in ("--label", f"{key}={value}")]
    docker("run", "-d", "--name", name, "--hostname", name, "--network", docker_network, "--ip", address, *labels,
           "--entrypoint", "sleep", info["Config"]["Image"], "3600")
    try:
        on(name, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
           f"--no-install-recommends {' '.join(packages)} >/dev/null", timeout=600)
        yield name, address
    finally:
        docker("rm", "-f", name, check=False)


def moved_inventory(source: Path, target: Path, index: int) -> Path:
    """A copy of the lab inventory ``source`` at ``target``, on the
    ``index``-th /24 after its network and named after its lab plus the
    index, every host at the same offset in the new network: a second lab
    of the same shape beside the first (the demo's, another benchmark's)."""
    base = yaml.safe_load((source / "group_vars" / "all" / "cluster.yml").read_text(encoding="utf-8"))
    network = ipaddress.ip_network(base["floatip_network"])
    moved = ipaddress.ip_network((int(network.network_address) + index * 256, network.prefixlen))
    shutil.copytree(source, target, dirs_exist_ok=True)
    hosts = yaml.safe_load((source / "hosts.yml").read_text(encoding="utf-8"))

    def move(tree: Any) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                if key == "floatip_address":
                    tree[key] = str(moved.network_address + (int(ipaddress.ip_address(value)) - int(network.network_address)))
                else:
                    move(value)

    move(hosts)
    (target / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    # Read after cluster.yml in group_vars/all/, so these win; the VIP pool
    # moves with the network.
    pool = [moved_range(item, network, moved) for item in base.get("floatip_vip_pool") or []]
    (target / "group_vars" / "all" / "moved.yml").write_text(
        yaml.safe_dump({"floatip_network": str(moved), "floatip_lab_name": f"{base['floatip_lab_name']}{index}",
                        **({"floatip_vip_pool": pool} if pool else {})}), encoding="utf-8")
    return target


def moved_range(item: str, old: ipaddress.IPv4Network | ipaddress.IPv6Network,
                new: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """An address, a range A-B or a network of the VIP pool at the same offset in ``new`` as in ``old``."""
    def one(text: str) -> str:
        if "/" in text:
            net = ipaddress.ip_network(text)
            return f"{one(str(net.network_address))}/{net.prefixlen}"
        return str(new.network_address + (int(ipaddress.ip_address(text)) - int(old.network_address)))

    return "-".join(one(part) for part in item.split("-"))
