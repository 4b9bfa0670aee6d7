"""Benchmark: push-to-served time of a config change on every node, and requests lost meanwhile.

The lab is the Molecule scenario molecule/config_sync (a repository host,
three nodes with HAProxy and keepalived, a client that is the committer's
workstation), brought up with ``molecule converge`` and removed with
``molecule destroy`` at the end, also on failure. Its names and addresses
are read from the scenario's molecule.yml (its inventory), its VIPs computed
from them by the collection's model.

The client keeps sending HTTP requests to every VIP in turn, one at a time,
a new connection each, with no retry (floatip_testing's load; the pushed
probe file and its poller are floatip_testing.probes, as in the scenario's
checks). Meanwhile it pushes
--pushes changes to the central repository, each --gap seconds after the
last was served everywhere (longer than the scenario's health watch of
6 s: a push that lands while a node still watches the previous revision
waits for that watch to end, which would be measured instead): each
changes the marker that a shared file, ``haproxy/probe.cfg``, makes every
node's HAProxy answer on a probe port. From the moment before ``hg push``
the client polls every node's probe port every 50 ms and records when each
node first answers the new marker: the push-to-served time (the push
itself, the node learning of it, pull, ``haproxy -c``, the reload, the
first answer). The anchor, measured in the same run: the same load for
--anchor seconds with no push, and the time ``hg push`` alone takes.
Target: every node within 5 s, zero failed requests. ``headline(report)``
gives its row of bench/report.py's summary from the JSON.

Run: .venv/bin/python bench/config_sync.py [--pushes 20 --gap 8 --anchor 20] [--measure-after FILE]
     .venv/bin/python bench/config_sync.py --report-only   (table and plot again from the JSON)
With --measure-after FILE the lab is built at once but measured only once
FILE exists: make bench builds it beside failover_gap and measures after
that has ended, so that the push meets a machine that is not freezing
nodes in six labs.
Writes bench/results/config_sync.json (every push's time per node, the load
counts of both phases), config_sync.md and config_sync.png (the distribution
per node). Bounded: about 9 minutes with the lab's converge; the load stops
by itself after 10 minutes at most.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from _results import (COLLECTIONS, ROOT, Interrupted, cell, failed_of, figure_label, handle_signals, ignore_signals, link_collection, load_average,
                      load_line, log, machine, machine_line, measured, molecule, note_lines, now, pyplot, read, save_figure, span, write,
                      write_and_print)
from floatip_testing import load as client_load
from floatip_testing.lab import DockerError
from floatip_testing.probes import PROBE, PROBE_PORT, SERVED

sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.floatip.ha.plugins.module_utils.cluster import build_model  # noqa: E402  pylint: disable=wrong-import-position

NAME = "config_sync"
SCENARIO = "config_sync"
SCENARIO_DIR = ROOT / "molecule" / SCENARIO
TARGET_S = 5.0
WORK = "/root/bench-work"


def lab() -> dict[str, Any]:
    """Names, groups and addresses of the scenario's hosts."""
    spec = yaml.safe_load((SCENARIO_DIR / "molecule.yml").read_text(encoding="utf-8"))
    host_vars = spec["provisioner"]["inventory"]["host_vars"]
    group_vars = spec["provisioner"]["inventory"]["group_vars"]["all"]
    names = {group: [p["name"] for p in spec["platforms"] if group in p["groups"]]
             for group in ("floatip_config_repo", "floatip_nodes", "floatip_clients")}
    web = next(service for service in group_vars["haproxy_services"] if service["name"] == "web")
    return {
        "repo": names["floatip_config_repo"][0],
        "nodes": names["floatip_nodes"],
        "client": names["floatip_clients"][0],
        "address": {name: host_vars[name]["floatip_address"] for name in host_vars},
        "vips": build_model(group_vars["floatip_network"], [(name, host_vars[name]["floatip_address"]) for name in names["floatip_nodes"]],
                            vip_pool=group_vars["floatip_vip_pool"])["vips"],
        "web_port": web["port"],
        "repository": group_vars.get("config_sync_repository", "/srv/floatip-config/config"),
    }


def on_client(client: str, command: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", "exec", "-i", client, "sh", "-ec", command], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command}: {done.stderr.strip()}")
    return done.stdout


def load_phase(spec: dict[str, Any], seconds: float | None, during=None) -> dict[str, Any]:
    """The load on every VIP (HTTP, a new connection each, no retry) for ``seconds`` or while ``during()`` runs; its counts."""
    with client_load.running(spec["client"], spec["vips"], port=spec["web_port"], mail_every=0, timeout=3) as result:
        if during is not None:
            result["pushes"] = during()
        else:
            time.sleep(seconds or 0)
    return result


def pushes(spec: dict[str, Any], count: int, gap: float, done: list[dict[str, Any]]) -> None:
    """Push ``count`` changes, appending each one's times to ``done`` as it is served (kept when stopped midway)."""
    client = spec["client"]
    addresses = [spec["address"][node] for node in spec["nodes"]]
    for index in range(count):
        marker = f"bench-{int(time.time())}-{index}"
        text = PROBE.format(port=PROBE_PORT, marker=marker, extra="")
        script = (f"cat > {WORK}/haproxy/probe.cfg; cd {WORK}; hg commit -q --addremove -m {shlex.quote(marker)}; "
                  f"t0=$(date +%s.%N); hg push -q; t1=$(date +%s.%N); "
                  f"python3 -c {shlex.quote(SERVED)} {marker} {PROBE_PORT} 30 {' '.join(addresses)} > /root/served.json & "
                  f"wait; echo $t0 $t1")
        # The poller starts after the push returns; its clock starts there,
        # so the push's own time is added back.
        out = subprocess.run(["docker", "exec", "-i", client, "sh", "-ec", script], input=text, capture_output=True,
                             text=True, timeout=90, check=True).stdout.split()
        push_s = float(out[1]) - float(out[0])
        took = json.loads(on_client(client, "cat /root/served.json"))
        row = {"marker": marker, "push_s": round(push_s, 3),
               "served_s": {node: (round(took[spec["address"][node]] + push_s, 3) if spec["address"][node] in took else None)
                            for node in spec["nodes"]}}
        done.append(row)
        log(f"push {index + 1}/{count}: hg push {push_s:.2f} s, served {row['served_s']}")
        time.sleep(gap)


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 3),
            "max": round(ordered[-1], 3)}


def waited(report: dict[str, Any]) -> list[str]:
    """The line saying how long the lab waited for failover_gap before measuring, when it did."""
    if "waited_s" not in report:
        return []
    return [f"The lab was built beside failover_gap and measured after it ended ({report['waited_s']:.0f} s of waiting; "
            f"load average {report['machine'].get('load_measure', '-')} then)."]


def table(report: dict[str, Any]) -> str:
    method = report["method"]
    lines = [
        "# config_sync: push-to-served time on every node, requests lost meanwhile",
        "",
        f"Lab: molecule/{SCENARIO} (a repository host, {len(report['nodes'])} nodes with HAProxy and keepalived, a client).",
        f"{method['pushes']} pushes, each {method['gap_s']:.0f} s after the last was served, changing a shared file that every node's HAProxy",
        "answers on a probe port; time from before `hg push` until the node answers the new content (polled every 50 ms).",
        "Anchor: `hg push` alone, and the same load with no push. Load: one request at a time to each VIP in turn.",
        f"{machine_line(report)}, {load_line(report)}. Target: every node within {TARGET_S:.0f} s, zero failed requests.",
        *waited(report),
        "",
        "| node | pushes served | median s | p95 s | max s |",
        "|---|---:|---:|---:|---:|",
    ]
    for node, stats in report["per_node"].items():
        lines.append(f"| {node} | {stats['served']}/{method['pushes']} | {cell(stats['median'], 2)} | "
                     f"{cell(stats['p95'], 2)} | {cell(stats['max'], 2)} |")
    anchor = report["push_alone"]
    lines.append(f"| (anchor) hg push alone | - | {cell(anchor['median'], 2)} | {cell(anchor['p95'], 2)} | "
                 f"{cell(anchor['max'], 2)} |")
    lines += ["", "| phase | s | requests | failed |", "|---|---:|---:|---:|"]
    for phase in ("anchor", "pushes"):
        load = report["load"].get(phase)
        if load:
            lines.append(f"| {phase} | {load['seconds']:.0f} | {load['ok'] + max(load['failed'], 0)} | {load['failed']} |")
    return "\n".join(lines + note_lines(report.get("notes", []))) + "\n"


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary's row: push-to-served per node and the requests lost meanwhile, against `hg push` alone and the load alone."""
    def served() -> str:
        stats, pushed = report["per_node"].values(), len(report["pushes"])
        medians = [s["median"] for s in stats]
        lost = sum(pushed - s["served"] for s in stats)
        unserved = f", {lost} not served within 30 s" if lost else ""
        return (f"median {span(min(medians), max(medians), 1)} s per node, max {max(s['max'] for s in stats):.2f} s "
                f"({pushed} pushes, {len(stats)} nodes{unserved}; target {TARGET_S:.0f} s)")

    def push_alone() -> str:
        return f"median {report['push_alone']['median']:.2f} s"

    load = report.get("load", {})
    return [("a config change pushed to Mercurial until every node serves it",
             f"{measured(served, 'push-to-served')}; {measured(lambda: failed_of(load['pushes']) + ' requests meanwhile', 'requests meanwhile')}",
             f"`hg push` alone: {measured(push_alone)}; the same load without pushes: {measured(lambda: failed_of(load['anchor']))}")]


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    nodes = list(report["per_node"])
    data = [[row["served_s"][node] for row in report["pushes"] if row["served_s"][node] is not None] for node in nodes]
    data.append([row["push_s"] for row in report["pushes"]])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.boxplot(data, tick_labels=[*nodes, "hg push\n(anchor)"], showfliers=True)
    for index, values in enumerate(data, start=1):
        ax.scatter([index] * len(values), values, s=10, alpha=0.5, color="tab:blue")
    ax.axhline(TARGET_S, color="tab:red", linestyle="--", linewidth=1, label=f"target {TARGET_S:.0f} s")
    ax.set_ylabel("seconds from before hg push")
    ax.set_title(f"config_sync: push-to-served per node ({figure_label(report)})")
    ax.legend()
    save_figure(fig, path)


def wait_for(marker: Path, limit: float = 1800) -> float:
    """Seconds waited until ``marker`` exists (``make bench`` creates it when failover_gap ends)."""
    log(f"lab up; measuring once {marker} exists")
    began = time.monotonic()
    while not marker.exists():
        if time.monotonic() - began > limit:
            raise RuntimeError(f"{marker} did not appear within {limit:.0f} s")
        time.sleep(1)
    log(f"measuring after {time.monotonic() - began:.0f} s of waiting")
    return round(time.monotonic() - began, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--gap", type=float, default=8.0,
                        help="seconds between a push served everywhere and the next; above config_sync_health_wait")
    parser.add_argument("--anchor", type=float, default=20.0, help="seconds of load with no push")
    parser.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    parser.add_argument("--measure-after", type=Path, metavar="FILE",
                        help="once the lab is up, wait until FILE exists before measuring (make bench: until failover_gap ends)")
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
                              "method": {"pushes": args.pushes, "gap_s": args.gap, "anchor_s": args.anchor},
                              "nodes": spec["nodes"], "pushes": [], "load": {}, "notes": []}
    status = 0
    try:
        molecule(SCENARIO, "converge", timeout=1200)
        url = f"ssh://floatip-config@{spec['address'][spec['repo']]}/{spec['repository']}"
        on_client(spec["client"], f"rm -rf {WORK}; hg clone -q {url} {WORK}")
        if args.measure_after:
            report["waited_s"] = wait_for(args.measure_after)
            report["machine"]["load_measure"] = load_average()
        log(f"anchor: {args.anchor:.0f} s of load, no push")
        report["load"]["anchor"] = load_phase(spec, args.anchor)
        log(f"{args.pushes} pushes under load")
        phase = load_phase(spec, None, during=lambda: pushes(spec, args.pushes, args.gap, report["pushes"]))
        phase.pop("pushes", None)
        report["load"]["pushes"] = phase
    except (Interrupted, RuntimeError, AssertionError, DockerError, subprocess.SubprocessError) as exc:
        report["notes"].append(f"stopped early: {exc}")
        status = 1
    finally:
        ignore_signals()
        if not args.keep:
            try:
                molecule(SCENARIO, "destroy", timeout=300)
            except subprocess.SubprocessError as exc:
                report["notes"].append(f"molecule destroy failed: {exc}")
    report["per_node"] = {}
    for node in spec["nodes"]:
        values = [row["served_s"][node] for row in report["pushes"] if row["served_s"][node] is not None]
        report["per_node"][node] = {"served": len(values), **summary(values)}
    report["push_alone"] = summary([row["push_s"] for row in report["pushes"]])
    report["machine"]["load_end"] = load_average()
    report["total_s"] = round(time.monotonic() - began, 1)
    write_and_print(NAME, report, table, plot, took=f"{report['total_s']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
