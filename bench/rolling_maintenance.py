"""Benchmark: a rolling maintenance of the five-node mail ring under load, and the converge of site.yml.

The lab is the demo's (inventories/lab: five nodes with postfix, nginx,
HAProxy and keepalived, two VIPs each, and a client), moved to a network of
its own so that it runs beside `make demo`'s (floatip_testing.lab's
moved_inventory), plus a world: a mail sink every node relays to
(lab/mail_sink.yml). lab/up.yml starts it and lab/down.yml removes it at the
end, also on failure. Its names come from that inventory.

Converge: the wall time of site.yml's first run on the fresh nodes
(pipelining on) and of its second run, which must change nothing. Their
anchor, measured just before the converge on the same nodes, inventory and
configuration: the wall time of a playbook that gathers facts and runs one
``ansible.builtin.ping`` task (Ansible's own start-up, connections and fact
gathering).

Maintenance: the client sends HTTP requests and SMTP messages to all ten
VIPs in turn (floatip_testing's load, a client that retries once, as real
ones do: an extra figure, its first tries that failed are counted as
retried) while playbooks/rolling_maintenance.yml takes every node out and
back, one at a time, with molecule/cluster's maintenance task file (a
restart of postfix and nginx) and no package upgrade. Recorded: failed
requests of the total, first tries that had to be retried, stalls (a
request that took over 1 s) and the slowest, messages accepted and
delivered to the sink, each node's time out of service (from its first
task to its last) and the whole run's. The anchor, in the same run: the
same load for --anchor seconds with no maintenance. ``headline(report)``
gives its two rows of bench/report.py's summary from the JSON: the
maintenance and the converge.

Run: .venv/bin/python bench/rolling_maintenance.py [--anchor 30] [--keep]
     .venv/bin/python bench/rolling_maintenance.py --report-only
     .venv/bin/python bench/rolling_maintenance.py --down   (remove its lab, after --keep)
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

from _results import (ROOT, Interrupted, cell, count, failed_of, figure_label, handle_signals, ignore_signals, link_collection, load_average,
                      load_line, log, machine, machine_line, measured, note_lines, now, pyplot, read, save_figure, span, write,
                      write_and_print)
from floatip_testing import load as client_load
from floatip_testing import playbook as playbooks
from floatip_testing.lab import DockerError, moved_inventory, on

NAME = "rolling_maintenance"
# The demo's lab, moved this many /24 networks up, with a world beside it.
SOURCE = ROOT / "inventories" / "lab"
MOVE = 14
WORLD_OFFSET = 250
MAINTENANCE_TASKS = ROOT / "molecule" / "cluster" / "maintenance.yml"
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


def bench_inventory(directory: Path) -> Path:
    """The demo's inventory, moved to a network of its own, with a world (a
    mail sink) every node relays to and a stats password of this run only."""
    inventory = moved_inventory(SOURCE, directory / "ring", MOVE)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text(encoding="utf-8"))
    network = yaml.safe_load((inventory / "group_vars" / "all" / "moved.yml").read_text(encoding="utf-8"))["floatip_network"]
    world = network.rsplit(".", 1)[0] + f".{WORLD_OFFSET}"
    hosts["all"]["children"]["lab"]["children"]["floatip_world"] = {"hosts": {"world": {"floatip_address": world}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    # After services.yml in group_vars/all/ (read in name order), so these win.
    (inventory / "group_vars" / "all" / "world.yml").write_text(yaml.safe_dump({
        "postfix_multihome_relayhost": "[{{ hostvars['world'].floatip_address }}]:25",
        "haproxy_stats_users": [{"name": "ops", "admin": True, "password": "{{ lookup('ansible.builtin.password', '"
                                 + str(directory / "stats_ops") + "', length=24, chars=['ascii_letters', 'digits']) }}"}],
    }), encoding="utf-8")
    return inventory


def lab(inventory: Path) -> dict[str, Any]:
    """The lab's inventory and containers: its nodes, client and world."""
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"], capture_output=True, text=True,
                          timeout=120, check=True, env=ENV, cwd=ROOT)
    listing = json.loads(done.stdout)

    def container(host: str) -> str:
        name = listing["_meta"]["hostvars"][host]["ansible_host"]
        return str(name.get("__ansible_unsafe", name) if isinstance(name, dict) else name)

    nodes = listing["floatip_nodes"]["hosts"]
    return {"inventory": str(inventory), "nodes": nodes, "containers": {node: container(node) for node in nodes},
            "client": container(listing["floatip_clients"]["hosts"][0]), "world": container(listing["floatip_world"]["hosts"][0])}


def playbook(spec: dict[str, Any], path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on the lab's inventory, from the checkout's root; its output captured, not checked."""
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", spec["inventory"], str(path), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False, env=ENV)


def checked(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"{what} failed (rc {done.returncode}):\n{tail}")


def timed(spec: dict[str, Any], path: Path, what: str, timeout: float) -> tuple[float, dict[str, Any]]:
    """Wall time in seconds of one playbook run (json callback) and its report; a failed run is an error."""
    log(what)
    began = time.monotonic()
    report = playbooks.run(path, spec["inventory"], timeout=timeout, cwd=ROOT, env=ENV, program=str(BIN / "ansible-playbook"))
    took = round(time.monotonic() - began, 1)
    if report["rc"] != 0:
        raise RuntimeError(f"{what} failed (rc {report['rc']}): {report['failures'][:3]}")
    return took, report


def converge_anchor(spec: dict[str, Any]) -> float:
    """Wall time, in seconds, of ANCHOR_PLAY on the nodes; a failed run is an error."""
    with tempfile.TemporaryDirectory(prefix="floatip-anchor-") as directory:
        path = Path(directory) / "anchor.yml"
        path.write_text(ANCHOR_PLAY, encoding="utf-8")
        return timed(spec, path, "converge anchor: facts and one ping on the nodes", timeout=600)[0]


def load(spec: dict[str, Any], vips: list[str], seconds: float | None = None, during=None) -> dict[str, Any]:
    """The load on every VIP for ``seconds`` or while ``during()`` runs; then how much of its mail arrived."""
    began = time.time()
    with client_load.running(spec["client"], vips, run=f"bench{int(began)}", retry=True, settle=2) as result:
        if during is not None:
            result["during"] = during()
        else:
            time.sleep(seconds or 0)
    result["began"] = began
    result["delivered"] = delivered(spec, result.pop("accepted"))
    return result


def delivered(spec: dict[str, Any], subjects: list[str], timeout: float = 120) -> dict[str, int]:
    """How many of the accepted messages reached the world's sink (waiting up to ``timeout``)."""
    missing = client_load.undelivered(spec["world"], subjects, timeout)
    return {"accepted": len(set(subjects)), "delivered": len(set(subjects) - missing)}


def stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def maintenance(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the rolling maintenance; each node's window (epoch seconds) from the json callback."""
    extra = json.dumps({"rolling_maintenance_upgrade": False, "rolling_maintenance_tasks": str(MAINTENANCE_TASKS)})
    began = time.time()
    report = playbooks.run(ROOT / "playbooks" / "rolling_maintenance.yml", spec["inventory"], ["-e", extra], timeout=1800,
                           cwd=ROOT, env=ENV, program=str(BIN / "ansible-playbook"))
    ended = time.time()
    windows: dict[str, list[float]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host in task["hosts"]:
                window = windows.setdefault(host, [float("inf"), 0.0])
                window[0] = min(window[0], stamp(task["task"]["duration"]["start"]))
                window[1] = max(window[1], stamp(task["task"]["duration"]["end"]))
    return {"rc": report["rc"], "failures": report["failures"][:3], "began": began, "ended": ended,
            "windows": {node: windows[node] for node in spec["nodes"] if node in windows}}


def table(report: dict[str, Any]) -> str:
    run = report.get("maintenance", {})
    load_run, anchor = report["load"].get("maintenance"), report["load"].get("anchor")
    lines = [
        "# rolling_maintenance: the five-node mail ring maintained one node at a time, under load",
        "",
        f"Lab: the demo's, inventories/lab ({len(report['nodes'])} nodes with postfix, nginx, HAProxy and keepalived; a client), "
        "on a network of its own, with a mail sink.",
        "Load: HTTP GET and every third step an SMTP message, to each of the ten VIPs in turn; a client retries once.",
        "Maintenance: playbooks/rolling_maintenance.yml (drain, standby, restart postfix and nginx, takeover, ready).",
        f"Anchor: the same load for {report['method']['anchor_s']:.0f} s with no maintenance. {machine_line(report)}, {load_line(report)}.",
        "",
        "| phase | s | requests | failed | retried | stalls over 1 s | slowest, s | mail accepted | mail delivered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, data in (("anchor", anchor), ("maintenance", load_run)):
        if data:
            lines.append(f"| {phase} | {data['seconds']:.0f} | {data['ok'] + max(data['failed'], 0)} | {data['failed']} | "
                         f"{data['retried']} | {cell(data.get('stalls'), 0)} | {cell(data.get('slowest'), 2)} | "
                         f"{data['delivered']['accepted']} | {data['delivered']['delivered']} |")
    if run.get("windows"):
        lines += ["", "| node | out of service, s |", "|---|---:|"]
        for node, (start, end) in run["windows"].items():
            lines.append(f"| {node} | {end - start:.1f} |")
        lines.append(f"| all, rc {run['rc']} | {run['ended'] - run['began']:.1f} |")
    converge = report.get("converge", {})
    if converge:
        lines += ["", "| site.yml on the five-node lab (pipelining on) | s |", "|---|---:|"]
        for what, label in (("anchor_s", "anchor: facts and one `ansible.builtin.ping` on the nodes (ansible-playbook, same inventory)"),
                            ("first_s", "first run"), ("idempotent_s", "second run, changed=0")):
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
    parser.add_argument("--down", action="store_true", help="remove the bench's lab and leave")
    args = parser.parse_args()
    if args.report_only:
        print(write(NAME, read(NAME), table, plot), end="")
        return 0
    link_collection()
    if args.down:
        with tempfile.TemporaryDirectory(prefix="floatip-bench-ring-") as directory:
            done = playbook(lab(bench_inventory(Path(directory))), ROOT / "lab" / "down.yml", timeout=300)
        return done.returncode
    handle_signals()
    began = time.monotonic()
    report: dict[str, Any] = {"benchmark": NAME, "date": now(), "machine": machine(load_start=load_average()),
                              "method": {"anchor_s": args.anchor}, "nodes": [], "load": {},
                              "converge": {}, "maintenance": {}, "notes": []}
    status = 0
    with tempfile.TemporaryDirectory(prefix="floatip-bench-ring-") as directory:
        spec = lab(bench_inventory(Path(directory)))
        report["nodes"] = spec["nodes"]
        try:
            checked(playbook(spec, ROOT / "lab" / "down.yml", timeout=300), "removing a lab left from before")
            checked(playbook(spec, ROOT / "lab" / "up.yml", timeout=600), "lab/up.yml")
            checked(playbook(spec, ROOT / "lab" / "mail_sink.yml", timeout=600), "lab/mail_sink.yml")
            report["converge"]["anchor_s"] = converge_anchor(spec)
            report["converge"]["first_s"] = timed(spec, ROOT / "site.yml", "site.yml, first run", timeout=1800)[0]
            took, second = timed(spec, ROOT / "site.yml", "site.yml, second run", timeout=1200)
            report["converge"]["idempotent_s"] = took
            if second["changed"]:
                report["notes"].append(f"site.yml's second run changed {second['changed']} things")
                status = 1
            # Every VIP, as the VIP layer laid them out on the first node.
            layout = json.loads(on(spec["containers"][spec["nodes"][0]], "cat /etc/floatip/layout.json"))
            vips = [vip["address"] for vip in layout["vips"]]
            log(f"anchor: {args.anchor:.0f} s of load, no maintenance")
            report["load"]["anchor"] = load(spec, vips, args.anchor)
            log("rolling maintenance of every node under load")
            phase = load(spec, vips, during=lambda: maintenance(spec))
            report["maintenance"] = phase.pop("during")
            report["load"]["maintenance"] = phase
            if report["maintenance"]["rc"] != 0:
                report["notes"].append(f"the rolling maintenance failed (rc {report['maintenance']['rc']}): "
                                       f"{report['maintenance']['failures']}")
                status = 1
        except (Interrupted, RuntimeError, ValueError, AssertionError, DockerError, subprocess.SubprocessError,
                playbooks.PlaybookError) as exc:
            report["notes"].append(f"stopped early: {exc}")
            status = 1
        finally:
            ignore_signals()
            if not args.keep:
                done = playbook(spec, ROOT / "lab" / "down.yml", timeout=300)
                if done.returncode != 0:
                    report["notes"].append(f"lab/down.yml failed (rc {done.returncode})")
    report["machine"]["load_end"] = load_average()
    report["total_s"] = round(time.monotonic() - began, 1)
    write_and_print(NAME, report, table, plot, took=f"{report['total_s']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
