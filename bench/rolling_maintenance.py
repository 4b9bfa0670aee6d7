"""Benchmark: a rolling maintenance of the five-node mail ring under load, and the converge of site.yml.

The lab is the Molecule scenario molecule/cluster (five nodes with postfix,
nginx, HAProxy and keepalived, built by site.yml; a client; the world's mail
sink), brought up with ``molecule create`` and ``prepare`` and removed with
``molecule destroy`` at the end, also on failure. Its names are read from
the scenario's molecule.yml.

Converge: the wall time of ``molecule converge`` (site.yml's first run on
fresh nodes, with pipelining) and of ``molecule idempotence`` (the second
run, which must change nothing). Their anchor, measured just before the
converge on the same nodes, inventory and configuration: the wall time of a
playbook that gathers facts and runs one ``ansible.builtin.ping`` task
(Ansible's own start-up, connections and fact gathering; molecule's own
start-up is in the converge times, not in the anchor).

Maintenance: the client sends HTTP requests and SMTP messages to all ten
VIPs in turn (the scenario's load.py: a client retries once, as real ones
do) while playbooks/rolling_maintenance.yml takes every node out and back,
one at a time, with the scenario's maintenance task file (a restart of
postfix and nginx) and no package upgrade. Recorded: failed requests of the
total, first tries that had to be retried, messages accepted and delivered
to the sink, each node's time out of service (from its first task to its
last) and the whole run's. The anchor, in the same run: the same load for
--anchor seconds with no maintenance. ``headline(report)`` gives its two
rows of bench/report.py's summary from the JSON: the maintenance and the
converge.

Run: .venv/bin/python bench/rolling_maintenance.py [--anchor 30]
     .venv/bin/python bench/rolling_maintenance.py --report-only
Writes bench/results/rolling_maintenance.json (every figure, the load's
counts per second, each node's window), rolling_maintenance.md and
rolling_maintenance.png (requests per second over time, each node's window
shaded). Bounded: about 12 minutes; the load stops by itself after 15
minutes at most.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from _results import (ROOT, Interrupted, count, failed_of, figure_label, handle_signals, ignore_signals, link_collection, load_average,
                      load_line, log, machine, machine_line, measured, molecule, note_lines, now, pyplot, read, save_figure, span, write,
                      write_and_print)

NAME = "rolling_maintenance"
SCENARIO = "cluster"
SCENARIO_DIR = ROOT / "molecule" / SCENARIO
BIN = ROOT / ".venv" / "bin"
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
# The converge's anchor: Ansible's start-up, a connection to each node and
# its facts, with nothing to configure.
ANCHOR_PLAY = """\
- name: Anchor of the converge, facts and one ping
  hosts: floatip_nodes
  gather_facts: true
  tasks:
    - name: Ping each node
      ansible.builtin.ping:
"""


def lab() -> dict[str, Any]:
    spec = yaml.safe_load((SCENARIO_DIR / "molecule.yml").read_text(encoding="utf-8"))
    names = {group: [p["name"] for p in spec["platforms"] if group in p["groups"]]
             for group in ("floatip_nodes", "floatip_clients", "floatip_world")}
    return {"nodes": names["floatip_nodes"], "client": names["floatip_clients"][0], "world": names["floatip_world"][0]}


def inventory() -> str:
    """The inventory molecule wrote for this run: the newest of the scenario's (other checkouts have their own)."""
    paths = Path.home().joinpath(".ansible", "tmp").glob(f"molecule.*.{SCENARIO}/inventory/ansible_inventory.yml")
    return str(max(paths, key=lambda path: path.stat().st_mtime))


def playbook(path: Path, *args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on the scenario's molecule inventory, from the scenario's folder; its output captured, not checked."""
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", inventory(), str(path), *args], cwd=SCENARIO_DIR, capture_output=True,
                          text=True, timeout=timeout, check=False, env=env or ENV)


def converge_anchor() -> float:
    """Wall time, in seconds, of ANCHOR_PLAY on the nodes; a failed run is an error."""
    with tempfile.TemporaryDirectory(prefix="floatip-anchor-") as directory:
        path = Path(directory) / "anchor.yml"
        path.write_text(ANCHOR_PLAY, encoding="utf-8")
        log("converge anchor: facts and one ping on the nodes")
        began = time.monotonic()
        done = playbook(path, timeout=600)
        took = round(time.monotonic() - began, 1)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"the converge's anchor playbook failed (rc {done.returncode}):\n{tail}")
    return took


def docker_exec(container: str, *argv: str, timeout: float = 120) -> str:
    return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=timeout,
                          check=True).stdout


def load(spec: dict[str, Any], vips: list[str], seconds: float | None = None, during=None) -> dict[str, Any]:
    """The scenario's load on every VIP for ``seconds`` or while ``during()`` runs."""
    client = spec["client"]
    subprocess.run(["docker", "cp", str(SCENARIO_DIR / "load.py"), f"{client}:/root/load.py"], check=True, timeout=30)
    docker_exec(client, "rm", "-f", "/root/load.stop", "/root/load.json")
    run = f"bench{int(time.time())}"
    began = time.time()
    subprocess.run(["docker", "exec", "-d", client, "python3", "/root/load.py", "/root/load.stop", "/root/load.json",
                    run, *vips], check=True, timeout=30)
    result: dict[str, Any] = {"began": began}
    try:
        time.sleep(2)
        if during is not None:
            result["during"] = during()
        else:
            time.sleep(seconds or 0)
        time.sleep(2)
    finally:
        docker_exec(client, "touch", "/root/load.stop")
        deadline = time.monotonic() + 60
        out = ""
        while not out.strip() and time.monotonic() < deadline:
            time.sleep(0.5)
            out = docker_exec(client, "sh", "-c", "cat /root/load.json 2>/dev/null || true")
    silent = {"ok": 0, "failed": -1, "retried": 0, "accepted": [], "errors": ["the load did not report"], "per_second": []}
    result.update(json.loads(out) if out.strip() else silent)
    result["seconds"] = round(time.time() - began, 1)
    result["delivered"] = delivered(spec, result.pop("accepted"))
    return result


def delivered(spec: dict[str, Any], subjects: list[str], timeout: float = 120) -> dict[str, int]:
    """How many of the accepted messages reached the world's sink (waiting up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = docker_exec(spec["world"], "sh", "-c", "cat /var/log/sink.jsonl 2>/dev/null || true").splitlines()
        seen = {json.loads(line)["subject"] for line in lines if line.strip()}
        arrived = len(set(subjects) & seen)
        if arrived == len(set(subjects)) or time.monotonic() > deadline:
            return {"accepted": len(subjects), "delivered": arrived}
        time.sleep(1)


def stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def maintenance(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the rolling maintenance; each node's window (epoch seconds) from the json callback."""
    extra = json.dumps({"rolling_maintenance_upgrade": False,
                        "rolling_maintenance_tasks": str(SCENARIO_DIR / "maintenance.yml")})
    began = time.time()
    done = playbook(ROOT / "playbooks" / "rolling_maintenance.yml", "-e", extra, timeout=1800,
                    env={**ENV, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    ended = time.time()
    windows: dict[str, list[float]] = {}
    for play in json.loads(done.stdout)["plays"]:
        for task in play["tasks"]:
            for host in task["hosts"]:
                window = windows.setdefault(host, [float("inf"), 0.0])
                window[0] = min(window[0], stamp(task["task"]["duration"]["start"]))
                window[1] = max(window[1], stamp(task["task"]["duration"]["end"]))
    return {"rc": done.returncode, "began": began, "ended": ended,
            "windows": {node: windows[node] for node in spec["nodes"] if node in windows}}


def table(report: dict[str, Any]) -> str:
    run = report.get("maintenance", {})
    load_run, anchor = report["load"].get("maintenance"), report["load"].get("anchor")
    lines = [
        "# rolling_maintenance: the five-node mail ring maintained one node at a time, under load",
        "",
        f"Lab: molecule/{SCENARIO} ({len(report['nodes'])} nodes with postfix, nginx, HAProxy and keepalived; a client; a mail sink).",
        "Load: HTTP GET and every third step an SMTP message, to each of the ten VIPs in turn; a client retries once.",
        "Maintenance: playbooks/rolling_maintenance.yml (drain, standby, restart postfix and nginx, takeover, ready).",
        f"Anchor: the same load for {report['method']['anchor_s']:.0f} s with no maintenance. {machine_line(report)}, {load_line(report)}.",
        "",
        "| phase | s | requests | failed | retried | mail accepted | mail delivered |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, data in (("anchor", anchor), ("maintenance", load_run)):
        if data:
            lines.append(f"| {phase} | {data['seconds']:.0f} | {data['ok'] + max(data['failed'], 0)} | {data['failed']} | "
                         f"{data['retried']} | {data['delivered']['accepted']} | {data['delivered']['delivered']} |")
    if run.get("windows"):
        lines += ["", "| node | out of service, s |", "|---|---:|"]
        for node, (start, end) in run["windows"].items():
            lines.append(f"| {node} | {end - start:.1f} |")
        lines.append(f"| all, rc {run['rc']} | {run['ended'] - run['began']:.1f} |")
    converge = report.get("converge", {})
    if converge:
        lines += ["", "| site.yml on the five-node lab (pipelining on) | s |", "|---|---:|"]
        for what, label in (("anchor_s", "anchor: facts and one `ansible.builtin.ping` on the nodes (ansible-playbook, same inventory)"),
                            ("first_s", "first run (molecule converge)"), ("idempotent_s", "second run, changed=0 (molecule idempotence)")):
            if what in converge:
                lines.append(f"| {label} | {converge[what]:.1f} |")
    return "\n".join(lines + note_lines(report.get("notes", []))) + "\n"


def load_figures(data: dict[str, Any]) -> str:
    """``0 failed of 9,484 requests, 1 retried; mail: 2,371 of 2,371 delivered``: one phase of the load."""
    mail = data["delivered"]
    return (f"{failed_of(data)} requests, {count(data['retried'])} retried; "
            f"mail: {count(mail['delivered'])} of {count(mail['accepted'])} delivered")


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary's two rows: the maintenance under load against the load alone; site.yml's converge against the anchor playbook."""
    loads, run, converge = report.get("load", {}), report.get("maintenance", {}), report.get("converge", {})
    size = len(report.get("nodes") or [])

    def windows() -> str:
        lengths = [end - start for start, end in run["windows"].values()]
        failed = f", rc {run['rc']}" if run["rc"] else ""
        return f"each node out of service {span(min(lengths), max(lengths), 1)} s, {run['ended'] - run['began']:.1f} s in all{failed}"

    def anchor() -> str:
        return f"({loads['anchor']['seconds']:.0f} s): {load_figures(loads['anchor'])}"

    def took(key: str, digits: int) -> Callable[[], str]:
        return lambda: f"{converge[key]:.{digits}f} s"

    return [
        (f"the {f'{size}-node ' if size else ''}mail ring maintained one node at a time (`playbooks/rolling_maintenance.yml`) under HTTP and SMTP load",
         f"{measured(lambda: load_figures(loads['maintenance']), 'requests')}; {measured(windows, 'windows')}",
         f"the same load without maintenance {measured(anchor)}"),
        (f"site.yml on the {f'{size} ' if size else ''}nodes, pipelining on: its first run and the idempotent one (changed=0)",
         f"first run {measured(took('first_s', 0))}; idempotent run {measured(took('idempotent_s', 0))}",
         f"a playbook gathering facts and running one `ansible.builtin.ping` on the same nodes: {measured(took('anchor_s', 1))}"),
    ]


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    data = report["load"].get("maintenance")
    if data and data.get("per_second"):
        seconds = [row[0] for row in data["per_second"]]
        ax.plot(seconds, [row[1] for row in data["per_second"]], color="tab:blue", linewidth=1, label="answered per second")
        ax.bar(seconds, [row[2] for row in data["per_second"]], color="tab:red", width=1, label="failed")
        ax.bar(seconds, [row[3] for row in data["per_second"]], color="tab:orange", width=1, alpha=0.6, label="retried")
        for index, (node, (start, end)) in enumerate(report["maintenance"]["windows"].items()):
            ax.axvspan(start - data["began"], end - data["began"], color="grey", alpha=0.12 + 0.08 * (index % 2))
            ax.text((start + end) / 2 - data["began"], ax.get_ylim()[1] * 0.95, node, ha="center", va="top", fontsize=8)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("requests")
    ax.set_title(f"rolling maintenance under load ({figure_label(report)})")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", type=float, default=30.0, help="seconds of load with no maintenance")
    parser.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the JSON again")
    args = parser.parse_args()
    if args.report_only:
        print(write(NAME, read(NAME), table, plot), end="")
        return 0
    handle_signals()
    link_collection()
    spec = lab()
    began = time.monotonic()
    report: dict[str, Any] = {"benchmark": NAME, "date": now(), "machine": machine(load_start=load_average()),
                              "method": {"anchor_s": args.anchor}, "nodes": spec["nodes"], "load": {},
                              "converge": {}, "maintenance": {}, "notes": []}
    status = 0
    try:
        molecule(SCENARIO, "destroy", timeout=300)
        molecule(SCENARIO, "create", timeout=600)
        molecule(SCENARIO, "prepare", timeout=600)
        report["converge"]["anchor_s"] = converge_anchor()
        report["converge"]["first_s"] = molecule(SCENARIO, "converge", timeout=1800)
        report["converge"]["idempotent_s"] = molecule(SCENARIO, "idempotence", timeout=1200)
        # Every VIP, as the VIP layer laid them out on the first node.
        vips = [vip["address"] for vip in json.loads(docker_exec(spec["nodes"][0], "cat", "/etc/floatip/layout.json"))["vips"]]
        log(f"anchor: {args.anchor:.0f} s of load, no maintenance")
        report["load"]["anchor"] = load(spec, vips, args.anchor)
        log("rolling maintenance of every node under load")
        phase = load(spec, vips, during=lambda: maintenance(spec))
        report["maintenance"] = phase.pop("during")
        report["load"]["maintenance"] = phase
        if report["maintenance"]["rc"] != 0:
            report["notes"].append(f"the rolling maintenance failed (rc {report['maintenance']['rc']})")
            status = 1
    except (Interrupted, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        report["notes"].append(f"stopped early: {exc}")
        status = 1
    finally:
        ignore_signals()
        if not args.keep:
            try:
                molecule(SCENARIO, "destroy", timeout=300)
            except subprocess.SubprocessError as exc:
                report["notes"].append(f"molecule destroy failed: {exc}")
    report["machine"]["load_end"] = load_average()
    report["total_s"] = round(time.monotonic() - began, 1)
    write_and_print(NAME, report, table, plot, took=f"{report['total_s']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
