"""Benchmark: 100 servers drained and made ready, floatip.ha.haproxy_server against community.general.haproxy.

A haproxy on loopback (a configuration in a temporary directory, an admin
unix socket) holds one backend, ``pool``, of 100 servers (s001 to s100, all
at one closed loopback port, no health check: no traffic at all, only the
runtime API is used). Against that same haproxy, ansible-playbook (the
virtualenv's, on localhost, connection local) runs for each tool:

* a drain playbook, ONE task: ``floatip.ha.haproxy_server`` with the 100
  servers in ``servers`` and ``state: drain``; or ``community.general.haproxy``
  with ``state: drain`` looped over the 100 servers (its documented options:
  backend, host, socket, state; wait false);
* a ready playbook, the same with ``state: ready`` (``state: enabled``).

After each playbook the bench reads ``show servers state`` from the socket,
with its own code, and fails unless every server is drained (then ready).
The anchor is an empty playbook (one play, no task): Ansible's own start-up
cost, measured in the same run. Every playbook's wall time is kept; each
tool's figure is drain + ready (the median when there are several repeats),
raw and minus two anchors (two playbooks); the ratio is community's over
ours. One repeat by default (--repeats for more); repeats alternate which
tool goes first. Target: ours at least 10 times faster.
``headline(report)`` gives its row of bench/report.py's summary from the JSON.

Run: .venv/bin/python bench/runtime_api.py [--repeats 1]
     .venv/bin/python bench/runtime_api.py --report-only   (table and plot again from the JSON)
Writes bench/results/runtime_api.json (every raw time), runtime_api.md (the
table it prints) and runtime_api.png (a bar plot). Bounded: every playbook
has a timeout and no repeat starts once the budget (270 s) could be
overrun; haproxy is stopped by its pid in any case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from _results import (cell, figure_label, handle_signals, ignore_signals, link_collection, load_average, load_line, log, machine,
                      machine_line, measured, note_lines, now, pyplot, read, save_figure, write, write_and_print)
from floatip_testing.haproxy import HAProxyError, LocalHAProxy, free_port, haproxy_version, query, socket_dir

NAME = "runtime_api"
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv's ansible-playbook

SERVERS = [f"s{i:03d}" for i in range(1, 101)]
BACKEND = "pool"
TARGET_RATIO = 10.0  # ours at least this many times faster
BUDGET_S = 270.0  # the whole bench stays under 5 minutes
PLAYBOOK_TIMEOUT_S = 120.0
TOOLS = {
    "ours": "floatip.ha.haproxy_server",
    "community": "community.general.haproxy",
}

CONFIG = """\
global
    stats socket {dir}/admin.sock mode 600 level admin
    stats timeout 30s

defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s

backend {backend}
    balance roundrobin
{servers}
"""

PLAY_HEAD = """\
- name: {name}
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
"""

# The servers as a literal list in both tools' playbooks: no templating
# difference between them.
OURS_TASK = """\
  tasks:
    - name: Set the 100 servers {state}
      floatip.ha.haproxy_server:
        socket: {socket}
        backend: {backend}
        servers: {servers}
        state: {state}
"""

COMMUNITY_TASK = """\
  tasks:
    - name: Set each of the 100 servers {state}
      community.general.haproxy:
        socket: {socket}
        backend: {backend}
        host: "{{{{ item }}}}"
        state: {state}
        wait: false
      loop: {servers}
"""


class BenchError(Exception):
    """The bench cannot measure, or a tool did not do what it was asked."""


def on_signal(signum: int, _frame: object) -> None:
    raise BenchError(f"interrupted by signal {signal.Signals(signum).name}")


# --- haproxy ----------------------------------------------------------------


def haproxy_config(directory: Path) -> str:
    """The configuration above: the 100 servers at a loopback port nothing listens on (it was free a moment ago;
    the servers are never connected to)."""
    port = free_port()
    servers = "\n".join(f"    server {name} 127.0.0.1:{port}" for name in SERVERS)
    return CONFIG.format(dir=directory, backend=BACKEND, servers=servers)


def admin_states(path: str) -> dict[str, int]:
    """srv_admin_state of each server of the backend, from ``show servers state``."""
    lines = query(path, f"show servers state {BACKEND}").splitlines()
    if len(lines) < 2 or not lines[1].startswith("# "):
        raise BenchError(f"cannot read 'show servers state': {lines[:2]}")
    header = lines[1][2:].split()
    rows = [dict(zip(header, line.split())) for line in lines[2:] if line.strip()]
    return {row["srv_name"]: int(row["srv_admin_state"]) for row in rows}


def verify(path: str, wanted: str, after: str) -> None:
    """Every server is drained (the FDRAIN bit, no maintenance) or ready (no admin flag at all)."""
    states = admin_states(path)
    if sorted(states) != SERVERS:
        raise BenchError(f"after {after}: the backend holds {len(states)} servers, not the 100 expected")
    if wanted == "drain":
        wrong = {name: bits for name, bits in states.items() if bits & 0x08 == 0 or bits & 0x23}
    else:
        wrong = {name: bits for name, bits in states.items() if bits != 0}
    if wrong:
        sample = ", ".join(f"{name}={bits}" for name, bits in list(wrong.items())[:5])
        raise BenchError(f"after {after}: {len(wrong)} of 100 servers are not {wanted} (srv_admin_state {sample})")


# --- the playbooks ----------------------------------------------------------


def write_playbooks(directory: Path, sock: str) -> dict[str, Path]:
    """The anchor and, per tool, a drain and a ready playbook."""
    servers = json.dumps(SERVERS)
    texts = {"anchor": PLAY_HEAD.format(name="Anchor, no task") + "  tasks: []\n"}
    for state, community_state in (("drain", "drain"), ("ready", "enabled")):
        texts[f"ours_{state}"] = PLAY_HEAD.format(name=f"ours {state}") + OURS_TASK.format(
            state=state, socket=sock, backend=BACKEND, servers=servers)
        texts[f"community_{state}"] = PLAY_HEAD.format(name=f"community {state}") + COMMUNITY_TASK.format(
            state=community_state, socket=sock, backend=BACKEND, servers=servers)
    paths = {}
    for name, text in texts.items():
        paths[name] = directory / f"{name}.yml"
        paths[name].write_text(text, encoding="utf-8")
    (directory / "inventory.ini").write_text("localhost ansible_connection=local\n", encoding="utf-8")
    return paths


def playbook_time(path: Path, timeout: float) -> float:
    """Wall time of one ansible-playbook run, in seconds; a failed run is an error."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(BIN / "ansible-playbook"), "-i", str(path.parent / "inventory.ini"), str(path)]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{path.name} did not finish within {timeout:.0f} s") from None
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise BenchError(f"{path.name} failed (rc {done.returncode}):\n{tail}")
    return elapsed


# --- the run ----------------------------------------------------------------


def median_or_none(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarize(report: dict[str, Any]) -> None:
    anchor = median_or_none(report["anchor_s"])
    report["anchor_median_s"] = anchor
    for tool, entry in report["tools"].items():
        totals = [d + r for d, r in zip(entry["drain_s"], entry["ready_s"])]
        entry["total_s"] = [round(t, 3) for t in totals]
        entry["median_drain_s"] = median_or_none(entry["drain_s"])
        entry["median_ready_s"] = median_or_none(entry["ready_s"])
        entry["median_total_s"] = median_or_none(totals)
        # Two playbooks, two Ansible start-ups.
        entry["median_total_net_s"] = (round(entry["median_total_s"] - 2 * anchor, 3)
                                       if anchor is not None and entry["median_total_s"] is not None else None)
        entry["module"] = TOOLS[tool]
    ours, community = report["tools"]["ours"], report["tools"]["community"]
    for key, ratio in (("median_total_s", "ratio"), ("median_total_net_s", "ratio_net")):
        report[ratio] = (round(community[key] / ours[key], 1)
                         if ours.get(key) and community.get(key) is not None and ours[key] > 0 else None)


def table(report: dict[str, Any]) -> str:
    anchor = report.get("anchor_median_s")
    repeats = len(report.get("anchor_s", []))
    times = ("one repeat (drain and ready each, and their sum)" if repeats == 1
             else f"medians over the {repeats} repeats (drain and ready each, and their sum per repeat)")
    lines = [
        "# runtime_api: 100 servers drained then made ready, ours against community.general.haproxy",
        "",
        f"One backend of 100 servers on a loopback {report['haproxy']}. Per tool, a drain playbook and a ready",
        "playbook, each with ONE task (ours: the 100 servers in one call; community.general.haproxy: a loop of 100),",
        "run with ansible-playbook on localhost (connection local); each checked through the socket",
        f"(`show servers state`). Times: {times};",
        f"net = the sum minus two anchors (an empty playbook, Ansible's start-up: {'median ' if repeats > 1 else ''}{cell(anchor, 3)} s). "
        f"Target: ours at least {TARGET_RATIO:.0f} times faster.",
        f"{machine_line(report)}, {load_line(report)}; ansible-core {report['versions']['ansible-core']}, "
        f"community.general {report['versions']['community.general']}.",
        "",
        "| tool | repeats | median drain s | median ready s | median drain+ready s | net of anchors s | ratio | net ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, entry in report["tools"].items():
        first = tool == "ours"
        ratio = "1" if first else cell(report.get("ratio"), 1, "x")
        net_ratio = "1" if first else cell(report.get("ratio_net"), 1, "x")
        lines.append(f"| {entry['module']} | {len(entry['total_s'])} | {cell(entry['median_drain_s'], 2)} | "
                     f"{cell(entry['median_ready_s'], 2)} | {cell(entry['median_total_s'], 2)} | "
                     f"{cell(entry['median_total_net_s'], 2)} | {ratio} | {net_ratio} |")
    if report.get("ratio") is not None:
        met = report["ratio"] >= TARGET_RATIO
        lines += ["", f"Target ({TARGET_RATIO:.0f}x, raw wall time): {'met' if met else 'MISSED'}, ours is "
                  f"{report['ratio']}x faster ({report.get('ratio_net')}x net of Ansible's start-up)."]
    return "\n".join(lines + note_lines(report.get("notes", []))) + "\n"


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary's row: ours, drain + ready (median), against community.general.haproxy and the ratios."""
    tools = report.get("tools", {})

    def community() -> str:
        ratio_net = report.get("ratio_net")
        net = "" if ratio_net is None else f"; {ratio_net:.0f}x net of Ansible's start-up"
        return f"{tools['community']['median_total_s']:.1f} s ({report['ratio']:.1f}x{net})"

    servers = report.get("method", {}).get("servers", len(SERVERS))
    return [(f"drain and re-enable {servers} servers: `{TOOLS['ours']}`",
             measured(lambda: f"{tools['ours']['median_total_s']:.1f} s"),
             f"`{TOOLS['community']}`, same haproxy: {measured(community)}")]


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    tools = list(report["tools"])
    anchor = report.get("anchor_median_s") or 0.0
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.36
    for i, tool in enumerate(tools):
        entry = report["tools"][tool]
        if not entry["total_s"]:
            continue
        # The repeat whose total is the median: its drain and ready parts.
        middle = entry["total_s"].index(statistics.median_low(entry["total_s"]))
        drain, ready = entry["drain_s"][middle], entry["ready_s"][middle]
        points = entry["total_s"]
        for offset, minus, label, alpha in ((-width / 2, 0.0, "raw", 1.0), (width / 2, anchor, "net of anchors", 0.55)):
            x = i + offset
            low, high = max(drain - minus, 0.0), max(ready - minus, 0.0)
            ax.bar(x, low, width, color="tab:orange", alpha=alpha, label=f"drain ({label})" if i == 0 else None)
            ax.bar(x, high, width, bottom=low, color="tab:blue", alpha=alpha, label=f"ready ({label})" if i == 0 else None)
            ax.text(x, low + high, f"{low + high:.2f} s", ha="center", va="bottom", fontsize=9)
        # Beside the raw bar, clear of its label.
        ax.scatter([i - width - 0.04] * len(points), points, color="black", s=12, zorder=3,
                   label="each repeat, drain + ready (raw)" if i == 0 else None)
    ax.axhline(2 * anchor, color="grey", linestyle="--", linewidth=1, label="two empty playbooks (anchor)")
    ax.set_xticks(range(len(tools)), [report["tools"][t]["module"] for t in tools])
    ax.set_ylabel("seconds, drain + ready of 100 servers (median)")
    ratio = report.get("ratio")
    ax.set_title(f"Runtime API, 100 servers: ours {ratio if ratio is not None else '-'}x faster "
                 f"({report.get('ratio_net', '-')}x net)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.text(0.99, 0.01, f"{figure_label(report)}, {report['haproxy']}", ha="right", fontsize=7, color="grey")
    save_figure(fig, path)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("ansible-core", "ansible"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    manifest = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections" / "community" / "general" / "MANIFEST.json"
    try:
        found["community.general"] = json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        found["community.general"] = None
    return found


def measure(report: dict[str, Any], playbooks: dict[str, Path], sock: str, repeats: int, start: float) -> None:
    """The repeats: an anchor, then each tool's drain and ready, verified; tools alternate in going first."""
    tools = report["tools"]
    per_repeat = None
    for repeat in range(repeats):
        elapsed = time.monotonic() - start
        if per_repeat is not None and elapsed + per_repeat * 1.5 > BUDGET_S:
            report["notes"].append(f"only {repeat} of {repeats} repeats: another one could overrun the "
                                   f"{BUDGET_S:.0f} s budget (one took {per_repeat:.0f} s)")
            return
        began = time.monotonic()
        report["anchor_s"].append(round(playbook_time(playbooks["anchor"], PLAYBOOK_TIMEOUT_S), 3))
        order = ["ours", "community"] if repeat % 2 == 0 else ["community", "ours"]
        for tool in order:
            verify(sock, "ready", f"repeat {repeat + 1}, before {tool}")
            for state in ("drain", "ready"):
                remaining = BUDGET_S + 20 - (time.monotonic() - start)
                seconds = playbook_time(playbooks[f"{tool}_{state}"], min(PLAYBOOK_TIMEOUT_S, max(remaining, 5.0)))
                verify(sock, state, f"repeat {repeat + 1}, {tool} {state}")
                tools[tool][f"{state}_s"].append(round(seconds, 3))
            log(f"repeat {repeat + 1}: {tool} drain {tools[tool]['drain_s'][-1]:.2f} s, "
                f"ready {tools[tool]['ready_s'][-1]:.2f} s")
        per_repeat = time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each playbook; the median is reported")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the JSON again")
    args = parser.parse_args()
    if args.report_only:
        report = read(NAME)
        summarize(report)
        print(write(NAME, report, table, plot), end="")
        return 0
    link_collection()
    handle_signals(on_signal)

    start = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": NAME,
        "date": now(),
        "machine": machine(load_start=load_average()),
        "versions": versions(),
        "method": {"servers": len(SERVERS), "backend": BACKEND, "repeats": args.repeats,
                   "connection": "local", "budget_s": BUDGET_S},
        "anchor_s": [],
        "tools": {tool: {"drain_s": [], "ready_s": []} for tool in TOOLS},
        "notes": [],
        "complete": False,
    }
    status = 0
    directory = socket_dir("floatip-rtapi-")
    haproxy = None
    try:
        haproxy = LocalHAProxy(directory, haproxy_config(directory))
        version = haproxy_version(haproxy.binary)
        report["haproxy"] = f"HAProxy {version}" if version else "HAProxy (version unknown)"
        haproxy.start()
        report["haproxy_show_info_version"] = next(
            (line.split(":", 1)[1].strip() for line in query(haproxy.admin, "show info").splitlines()
             if line.startswith("Version:")), None)
        log(f"runtime_api: {report['haproxy']}, 100 servers, {args.repeats} repeats")
        playbooks = write_playbooks(directory, haproxy.admin)
        measure(report, playbooks, haproxy.admin, args.repeats, start)
        report["complete"] = not report["notes"]
    except (BenchError, HAProxyError, OSError, subprocess.SubprocessError) as exc:
        status = 1
        report["notes"].append(f"FAILED: {exc}")
        log(f"FAILED: {exc}")
    finally:
        ignore_signals()
        if haproxy is not None:
            stuck = haproxy.stop()
            if stuck:
                log(f"haproxy {stuck} did not stop")
        shutil.rmtree(directory, ignore_errors=True)
    report.setdefault("haproxy", "haproxy (not started)")
    report["machine"]["load_end"] = load_average()
    report["total_s"] = round(time.monotonic() - start, 1)
    summarize(report)
    write_and_print(NAME, report, table, plot, f"{report['total_s']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
