"""Benchmark: the gap a client sees on a VIP when the node holding it dies.

A client of the bench lab (bench/inventories/failover: node1, node2 and a
client on 172.30.90.0/24) opens a connection to the VIP every 10 ms
(bench/gap_probe.py, run on the client through ``docker exec``); each node's
whoami service answers with its name. While node1 holds the VIP, the bench
freezes it (``docker pause``: a hung machine) or kills it (``docker kill``: a
power cut), and the client records the longest time between two answered
requests until node2 answers steadily: the client-visible failover gap.
Then node1 comes back (``docker unpause``, or ``docker start`` and systemd
booted) and the bench waits until the VIP is back on node1 alone and steady,
recording that failback gap too, so every trial starts from the same state.

Settings, each converged with bench/playbooks/converge.yml on the bench lab:
keepalived with floating_ip_profile conservative (VRRPv2, 1 s adverts) and
fast (VRRPv3, 0.1 s), ucarp (advbase 1 s) and the heartbeat pair (the role's
default timings, deadtime 10 s, auto_failback on). The lab is created fresh
for each backend with lab/up.yml (the fast profile is converged over the
conservative one: a keepalived reload) and removed with lab/down.yml at the
end, also on failure or interruption. Secrets (ucarp's password, heartbeat's
key) are made for the run and passed in a file of a private temporary
directory, never printed.

Trials: --freeze (20) per setting; --kill up to 20, at least --min-kill (5),
as many as the time budget (--budget seconds, 1500) leaves, shared evenly
among the settings. No trial starts after --hard-limit seconds (3600):
whatever is left is skipped and the results say so. Every docker and
ansible command has a timeout. Target: the fast profile's p99 gap under
400 ms.

Run: make bench   (or: .venv/bin/python bench/failover_gap.py [--settings keepalived_fast,...])
     .venv/bin/python bench/failover_gap.py --report-only   (table and plot again from the JSON)
Writes bench/results/failover_gap.json (every trial, raw), failover_gap.md
(the table it prints) and failover_gap.png (the distributions).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import queue
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _results import (Interrupted, cell, figure_label, handle_signals, ignore_signals, link_collection, load_average, log, machine, machine_line,
                      note_lines, now, pyplot, read, save_figure, write, write_and_print)

NAME = "failover_gap"
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
INVENTORY = BENCH / "inventories" / "failover"
CONVERGE = BENCH / "playbooks" / "converge.yml"
PROBE_SOURCE = (BENCH / "gap_probe.py").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent  # the virtualenv's ansible-playbook

TARGET_MS = 400.0  # the fast profile's p99 gap must stay under this
INTERVAL = 0.01  # seconds between the client's requests
REQUEST_TIMEOUT = 0.5  # per request, under Linux's 1 s SYN retransmit
FAILOVER_DEADLINE = 60.0  # the probe gives up on the peer answering after this
FAILBACK_DEADLINE = 120.0  # and on the returning owner (a kill boots it first)
SETTLE_S = 1.5  # the VIP must stay on its owner alone this long before a trial
RETRIES = 3  # failed trials replaced per setting and kind, at most
# What a trial keeps of each probe's report (gap_probe.py documents them).
PROBE_KEYS = ("requests", "answers", "errors", "runs", "gaps", "max_late_ms", "open_gap", "gap_ms", "seconds")


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    backend: str
    extra: dict[str, Any]  # the VIP layer's variables for converge.yml
    fresh_lab: bool = True  # tear the lab down and up before it
    # Seconds one freeze and one kill trial take, and its lab with the
    # converge: estimates (from runs on 2 busy cores) that only share the
    # time budget out among the settings.
    freeze_s: float = 10.0
    kill_s: float = 15.0
    lab_s: float = 120.0


def settings(vips: list[str]) -> list[Setting]:
    pair = {"floatip_vip_pool": vips[:2], "floatip_vips_per_node": 1}
    return [
        Setting("keepalived", "keepalived conservative (VRRPv2, 1 s)", "keepalived",
                {**pair, "floatip_vip_backend": "keepalived", "floating_ip_profile": "conservative"},
                freeze_s=10, kill_s=13, lab_s=240),
        Setting("keepalived_fast", "keepalived fast (VRRPv3, 0.1 s)", "keepalived",
                {**pair, "floatip_vip_backend": "keepalived", "floating_ip_profile": "fast"},
                fresh_lab=False, freeze_s=7, kill_s=11, lab_s=70),
        Setting("ucarp", "ucarp (advbase 1 s)", "ucarp",
                {**pair, "floatip_vip_backend": "ucarp"}, freeze_s=11, kill_s=15, lab_s=200),
        Setting("heartbeat", "heartbeat (deadtime 10 s)", "heartbeat",
                {"floatip_vip_pool": vips[:1], "floatip_vip_backend": "heartbeat", "heartbeat_auto_failback": True},
                freeze_s=45, kill_s=30, lab_s=120),
    ]


# --- the lab --------------------------------------------------------------


@dataclass
class Lab:
    """The bench lab's names and addresses, read from its inventory."""

    containers: dict[str, str]  # inventory host -> container
    network: str
    port: int
    vips: list[str]
    node_a: str = "node1"  # holds the VIP and is broken
    node_b: str = "node2"  # takes it over
    client: str = "client"
    secret_values: list[str] = field(default_factory=list)

    @classmethod
    def from_inventory(cls) -> Lab:
        out = run([str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"], timeout=120).stdout
        hostvars = json.loads(out)["_meta"]["hostvars"]

        def plain(value: Any) -> Any:
            return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value

        network = ipaddress.ip_network(hostvars["node1"]["floatip_network"])
        return cls(
            containers={host: plain(v["ansible_host"]) for host, v in hostvars.items()},
            network=str(network),
            port=int(hostvars["client"]["whoami_port"]),
            # .101 and .102 of the bench network: one VIP owned by each node.
            vips=[str(network[101]), str(network[102])],
        )

    def c(self, host: str) -> str:
        return self.containers[host]

    def redact(self, text: str) -> str:
        for value in self.secret_values:
            text = text.replace(value, "***")
        return text


def ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run(argv: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, cwd=ROOT, env=ansible_env())


def docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    done = run(["docker", *args], timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed (rc {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def playbook(lab: Lab, path: Path, *args: str, timeout: float) -> None:
    done = run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(path), *args], timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"{path.relative_to(ROOT)} failed (rc {done.returncode}):\n{lab.redact(tail)}")


def lab_up(lab: Lab) -> None:
    playbook(lab, ROOT / "lab" / "up.yml", timeout=600)


def lab_down(lab: Lab) -> None:
    # A paused container is thawed first, so that its removal is a plain one.
    for container in lab.containers.values():
        if docker("inspect", "--format", "{{.State.Paused}}", container, check=False) == "true":
            docker("unpause", container, check=False)
    playbook(lab, ROOT / "lab" / "down.yml", timeout=300)


def is_paused(container: str) -> bool:
    return docker("inspect", "--format", "{{.State.Paused}}", container) == "true"


def holders(lab: Lab, vip: str) -> list[str]:
    """The nodes that have the VIP configured now (a paused one cannot say)."""
    held = []
    for node in (lab.node_a, lab.node_b):
        done = run(["docker", "exec", lab.c(node), "ip", "-o", "-4", "address", "show"], timeout=20, check=False)
        if done.returncode == 0 and f" {vip}/" in done.stdout:
            held.append(node)
    return held


def heartbeat_settled(lab: Lab) -> bool:
    """Both heartbeats see their peer active, with no resource transition."""
    for node, peer in ((lab.node_a, lab.node_b), (lab.node_b, lab.node_a)):
        done = run(["docker", "exec", lab.c(node), "sh", "-c", f"cl_status nodestatus {peer} && cl_status rscstatus"],
                   timeout=20, check=False)
        lines = done.stdout.split()
        if done.returncode != 0 or len(lines) < 2 or lines[0] != "active" or lines[1] == "transition":
            return False
    return True


def revive_heartbeat(lab: Lab, record: dict[str, Any] | None) -> None:
    """Start heartbeat.service again on a node where it stopped.

    After a partition heals, heartbeat restarts itself by re-executing, and
    systemd (Debian's Type=simple unit, Restart=no) sometimes takes the exit
    of the old main process for the end of the service and stops it: that
    node then stays out of the pair, and auto_failback never brings the VIP
    back. The bench does what an operator would, and notes it in the trial."""
    for node in (lab.node_a, lab.node_b):
        if is_paused(lab.c(node)):
            continue
        state = run(["docker", "exec", lab.c(node), "systemctl", "is-active", "heartbeat"], timeout=20, check=False).stdout.strip()
        if state in ("inactive", "failed"):
            docker("exec", lab.c(node), "systemctl", "start", "heartbeat", timeout=90)
            if record is not None:
                record.setdefault("heartbeat_restarted", []).append(node)
            log(f"heartbeat had stopped on {node} ({state}): started it again")


def wait_steady(lab: Lab, setting: Setting, vip: str, owner: str, timeout: float,
                record: dict[str, Any] | None = None) -> float:
    """Seconds until ``owner`` alone holds ``vip`` for SETTLE_S in a row (and a
    heartbeat pair is settled); raises TimeoutError otherwise."""
    start = time.monotonic()
    since: float | None = None
    seen: list[str] = []
    while time.monotonic() - start < timeout:
        if setting.backend == "heartbeat":
            revive_heartbeat(lab, record)
        seen = holders(lab, vip)
        good = seen == [owner] and (setting.backend != "heartbeat" or heartbeat_settled(lab))
        now = time.monotonic()
        if not good:
            since = None
        elif since is None:
            since = now
        elif now - since >= SETTLE_S:
            return now - start
        time.sleep(0.25)
    raise TimeoutError(f"{vip} not steady on {owner} alone within {timeout:.0f} s (held by {seen})")


def wait_booted(container: str, timeout: float = 120) -> str:
    """systemd's state once it has finished booting (running, or degraded)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        done = run(["docker", "exec", container, "systemctl", "is-system-running"], timeout=30, check=False)
        state = done.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.3)
    raise TimeoutError(f"{container} did not finish booting within {timeout:.0f} s (systemd says {state!r})")


# --- the client's probe ---------------------------------------------------


class Probe:
    """bench/gap_probe.py running on the client, its JSON lines read here."""

    def __init__(self, lab: Lab, vip: str, before: str, after: str, deadline: float) -> None:
        argv = ["docker", "exec", "-i", lab.c(lab.client), "python3", "-", vip, str(lab.port), before, after,
                "--interval", str(INTERVAL), "--timeout", str(REQUEST_TIMEOUT), "--deadline", str(deadline)]
        self.deadline = deadline
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr or []), daemon=True).start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(PROBE_SOURCE)
        self.proc.stdin.close()

    def _read(self) -> None:
        for line in self.proc.stdout or []:
            self.lines.put(line)
        self.lines.put(None)

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty as exc:
                raise TimeoutError(f"the probe sent no {name} within {timeout:.0f} s") from exc
            if line is None:
                raise RuntimeError(f"the probe ended before {name}: {''.join(self.stderr)[-500:]}")
            report = json.loads(line)
            if report.get("event") == name:
                return report
            if report.get("event") == "done":  # ended before the event (not ready)
                raise RuntimeError(f"the probe ended before {name}: {report}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


# --- trials ---------------------------------------------------------------


def fig(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def gap_after(done: dict[str, Any], t0: float) -> float | None:
    """The longest stretch without an answer that ends after ``t0`` (the
    failure, or the return), in ms: a stall of the busy client before the
    failure is not the failover's. None when the outage never ended."""
    if done["open_gap"] or not done["ready"]:
        return None
    spans = [(end - start) * 1000 for start, end, _kind in done["gaps"] if end is not None and end > t0]
    # Nothing longer than three intervals: the client saw no gap.
    return round(max(spans, default=INTERVAL * 1000), 1)


def trial(lab: Lab, setting: Setting, kind: str, record: dict[str, Any]) -> None:
    """One failure of node_a while it holds the VIP, and its return, filling
    ``record`` as it goes (what was measured stays when a step fails)."""
    vip, a, b = lab.vips[0], lab.node_a, lab.node_b
    start = time.monotonic()
    probe = Probe(lab, vip, a, b, FAILOVER_DEADLINE)
    try:
        probe.event("ready", timeout=30)
        t0 = time.monotonic()
        docker("pause" if kind == "freeze" else "kill", lab.c(a))
        t1 = time.monotonic()
        done = probe.event("done", timeout=FAILOVER_DEADLINE + 30)
    finally:
        probe.stop()
    record.update(
        gap_ms=gap_after(done, t0),
        settled=done["settled"],
        action_ms=fig((t1 - t0) * 1000),
        # From the docker command to the first request of the gap that
        # failed, and to the first request node_b answered.
        first_failure_ms=fig((done["first_failure"] - t0) * 1000) if done["first_failure"] else None,
        served_by_peer_ms=fig((done["first_after"] - t0) * 1000) if done["first_after"] else None,
        probe={k: done[k] for k in PROBE_KEYS},
    )

    # Bring node_a back, measuring the client's gap while the VIP returns.
    back = Probe(lab, vip, b, a, FAILBACK_DEADLINE) if done["settled"] else None
    try:
        if back:
            back.event("ready", timeout=30)
        t2 = time.monotonic()
        if kind == "freeze":
            docker("unpause", lab.c(a))
        else:
            docker("start", lab.c(a))
        if back:
            fb = None
            while fb is None:
                try:
                    fb = back.event("done", timeout=2)
                except TimeoutError:
                    if time.monotonic() - t2 > FAILBACK_DEADLINE + 30:
                        raise
                    if setting.backend == "heartbeat":
                        revive_heartbeat(lab, record)
            record.update(failback_gap_ms=gap_after(fb, t2), failback_settled=fb["settled"],
                          failback_served_ms=fig((fb["first_after"] - t2) * 1000) if fb["first_after"] else None,
                          failback_probe={k: fb[k] for k in PROBE_KEYS})
    finally:
        if back:
            back.stop()
    if kind == "kill":
        record["boot_state"] = wait_booted(lab.c(a))
    record["steady_after_s"] = round(wait_steady(lab, setting, vip, a, timeout=120, record=record), 2)
    record["restore_s"] = round(time.monotonic() - t2, 2)
    record["trial_s"] = round(time.monotonic() - start, 2)
    record["ok"] = bool(done["settled"] and record["gap_ms"] is not None)


def summary(gaps: list[float]) -> dict[str, Any]:
    if not gaps:
        return {"n": 0}
    ordered = sorted(gaps)
    # p99 interpolated between order statistics (inclusive: within the data).
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {"n": len(ordered), "median_ms": round(statistics.median(ordered), 1), "p99_ms": round(p99, 1),
            "max_ms": max(ordered), "min_ms": min(ordered), "mean_ms": round(statistics.fmean(ordered), 1)}


def summarize(block: dict[str, Any]) -> None:
    trials = block["trials"]
    block["gaps_ms"] = [t["gap_ms"] for t in trials if t.get("ok")]
    # A failback the bench helped (heartbeat started again) is left out.
    block["failback_gaps_ms"] = [t["failback_gap_ms"] for t in trials
                                 if t.get("failback_gap_ms") is not None and not t.get("heartbeat_restarted")]
    block["heartbeat_restarts"] = sum(1 for t in trials if t.get("heartbeat_restarted"))
    block["summary"] = summary(block["gaps_ms"])
    block["failback_summary"] = summary(block["failback_gaps_ms"])
    # A failover that did not come within the probe's deadline, and a trial
    # that could not measure (replaced by another).
    block["failed_trials"] = sum(1 for t in trials if not t.get("ok") and "error" not in t)
    block["unmeasured_trials"] = sum(1 for t in trials if "error" in t)


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    hard_limit: float = 3600.0

    def hard_stop(self) -> bool:
        return self.elapsed() > self.hard_limit


def run_setting(lab: Lab, setting: Setting, later: list[Setting], args: argparse.Namespace, budget: Budget,
                extra_file: Path, report: dict[str, Any]) -> None:
    entry: dict[str, Any] = report["settings"].setdefault(setting.name, {
        "label": setting.label, "backend": setting.backend,
        "vars": dict(setting.extra),
        "freeze": {"trials": []}, "kill": {"trials": []}, "notes": [],
    })
    started = time.monotonic()
    if setting.fresh_lab:
        log(f"{setting.name}: a fresh bench lab")
        lab_down(lab)
        lab_up(lab)
    log(f"{setting.name}: converging")
    playbook(lab, CONVERGE, "-e", f"@{extra_file}", timeout=1200)
    entry["lab_s"] = round(time.monotonic() - started, 1)
    entry["steady_before_s"] = round(wait_steady(lab, setting, lab.vips[0], lab.node_a, timeout=120), 2)
    log(f"{setting.name}: lab ready in {entry['lab_s']} s")

    failures_in_a_row = 0

    def one(kind: str, number: int) -> bool:
        nonlocal failures_in_a_row
        record: dict[str, Any] = {"trial": number, "kind": kind, "ok": False,
                                  "load": load_average()}
        try:
            trial(lab, setting, kind, record)
        except (TimeoutError, RuntimeError, subprocess.SubprocessError) as exc:
            record.update(ok=False, error=lab.redact(str(exc)))
            log(f"{setting.name} {kind} {number}: FAILED {record['error']} (gap {record.get('gap_ms')} ms, "
                f"failback gap {record.get('failback_gap_ms')} ms)")
            # Back to the starting state if possible; a setting that cannot
            # get there twice in a row is abandoned.
            try:
                if is_paused(lab.c(lab.node_a)):
                    docker("unpause", lab.c(lab.node_a))
                if docker("inspect", "--format", "{{.State.Running}}", lab.c(lab.node_a)) != "true":
                    docker("start", lab.c(lab.node_a))
                wait_booted(lab.c(lab.node_a))
                wait_steady(lab, setting, lab.vips[0], lab.node_a, timeout=120, record=record)
            except (TimeoutError, RuntimeError, subprocess.SubprocessError) as again:
                record["restore_error"] = lab.redact(str(again))
                failures_in_a_row += 1
        else:
            failures_in_a_row = 0 if record["ok"] else failures_in_a_row + 1
            log(f"{setting.name} {kind} {number}: gap {record['gap_ms']} ms, failback gap "
                f"{record.get('failback_gap_ms')} ms, trial {record['trial_s']} s")
        entry[kind]["trials"].append(record)
        return failures_in_a_row < 2

    def ok_trials(kind: str) -> int:
        """Trials that measured (a failover that never came counts too)."""
        return sum(1 for t in entry[kind]["trials"] if "error" not in t)

    # A trial that could not measure (a docker command that failed, say) is
    # replaced, RETRIES times per kind at most.
    number = 0
    while ok_trials("freeze") < args.freeze and number < args.freeze + RETRIES:
        number += 1
        if budget.hard_stop():
            entry["notes"].append(f"freeze trials stopped at {ok_trials('freeze')}: past the hard time limit")
            break
        if not one("freeze", number):
            entry["notes"].append("abandoned after two failed trials in a row")
            break

    # Kill trials: the minimum, then more while this setting's share of the
    # slack lasts (the slack: the budget left after every later setting's
    # lab, freeze trials and minimum of kill trials).
    freeze_done = [t["trial_s"] for t in entry["freeze"]["trials"] if "trial_s" in t]
    reserve = sum(s.lab_s + args.freeze * s.freeze_s + args.min_kill * s.kill_s for s in later)
    slack = budget.seconds - budget.elapsed() - reserve - args.min_kill * setting.kill_s
    share = max(slack, 0) / (1 + len(later))
    extra_start: float | None = None
    kill_times: list[float] = []
    number = 0
    while ok_trials("kill") < args.kill and number < args.kill + RETRIES:
        number += 1
        if any(note.startswith("abandoned") for note in entry["notes"]):
            break
        if budget.hard_stop():
            entry["notes"].append(f"kill trials stopped at {ok_trials('kill')}: past the hard time limit")
            break
        if ok_trials("kill") >= args.min_kill:
            extra_start = extra_start or time.monotonic()
            per_trial = statistics.fmean(kill_times) if kill_times else setting.kill_s
            if time.monotonic() - extra_start + per_trial > share:
                entry["notes"].append(
                    f"{ok_trials('kill')} of {args.kill} kill trials: the time budget ({args.budget / 60:.0f} min for the "
                    f"whole bench) left this setting {share:.0f} s beyond its minimum of {args.min_kill}")
                break
        t = time.monotonic()
        if not one("kill", number):
            entry["notes"].append("abandoned after two failed trials in a row")
            break
        kill_times.append(time.monotonic() - t)
    entry["freeze_trial_s_mean"] = round(statistics.fmean(freeze_done), 1) if freeze_done else None
    entry["kill_trial_s_mean"] = round(statistics.fmean(kill_times), 1) if kill_times else None
    entry["setting_s"] = round(time.monotonic() - started, 1)
    for kind in ("freeze", "kill"):
        summarize(entry[kind])


# --- the report -----------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = [
        "# failover_gap: the client-visible gap when a VIP holder dies",
        "",
        f"A client asks the VIP every {report['method']['interval_ms']:.0f} ms (each request with a "
        f"{report['method']['request_timeout_ms']:.0f} ms timeout); the gap is the longest time between two answered",
        "requests while node1, holding the VIP, is frozen (docker pause) or killed (docker kill), until node2",
        "answers steadily. Failback: the same gap while the VIP returns to node1 (unpaused, or booted again).",
        "p99 is interpolated between the largest gaps of the trials; 10 ms means no request went unanswered.",
        f"Target: fast profile p99 < {TARGET_MS:.0f} ms.",
        f"{machine_line(report)}; total {report.get('total_s', 0) / 60:.1f} min; "
        f"{report.get('other_containers', 0)} other containers running on the machine at the start.",
        "",
        "| setting | failure | trials | median ms | p99 ms | max ms | failback median ms | failback max ms | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, entry in report["settings"].items():
        for kind in ("freeze", "kill"):
            block = entry[kind]
            s, fb = block.get("summary", {"n": 0}), block.get("failback_summary", {"n": 0})
            trials = f"{s['n']}" + (f" (+{block['failed_trials']} never served)" if block.get("failed_trials") else "")
            trials += f" (+{block['unmeasured_trials']} not measured)" if block.get("unmeasured_trials") else ""
            target = ""
            if name == "keepalived_fast" and s["n"]:
                target = "met" if s["p99_ms"] < TARGET_MS else "MISSED"
            lines.append(f"| {entry['label']} | {kind} | {trials} | {cell(s.get('median_ms'), 0)} | {cell(s.get('p99_ms'), 0)} | "
                         f"{cell(s.get('max_ms'), 0)} | {cell(fb.get('median_ms'), 0)} | {cell(fb.get('max_ms'), 0)} | "
                         f"{target} |")
    notes = [f"{entry['label']}: {note}" for entry in report["settings"].values() for note in entry.get("notes", [])]
    for entry in report["settings"].values():
        for kind in ("freeze", "kill"):
            block = entry[kind]
            if block.get("heartbeat_restarts"):
                notes.append(f"{entry['label']}, {kind}: in {block['heartbeat_restarts']} of {len(block['trials'])} trials "
                             "heartbeat.service stopped on a node after the pair healed and the bench started it again; "
                             "their failback gaps are left out")
    notes += report.get("notes", [])
    return "\n".join(lines + note_lines(notes)) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    names = list(report["settings"])
    kinds = [("freeze", "tab:blue"), ("kill", "tab:red")]
    fig_, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, key, title in ((axes[0], "gaps_ms", "failover: node1 frozen or killed"),
                           (axes[1], "failback_gaps_ms", "failback: node1 back")):
        for i, name in enumerate(names):
            for j, (kind, colour) in enumerate(kinds):
                data = report["settings"][name][kind].get(key, [])
                x = i + (j - 0.5) * 0.36
                if not data:
                    continue
                ax.boxplot([data], positions=[x], widths=0.28, showfliers=False,
                           medianprops={"color": colour}, boxprops={"color": colour},
                           whiskerprops={"color": colour}, capprops={"color": colour})
                jitter = [x + ((k * 0.618) % 1 - 0.5) * 0.2 for k in range(len(data))]
                ax.scatter(jitter, data, s=12, color=colour, alpha=0.6, zorder=3, label=kind)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), [report["settings"][n]["label"].replace(" (", "\n(") for n in names], fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].axhline(TARGET_MS, color="grey", linestyle="--", linewidth=1)
    axes[0].text(-0.45, TARGET_MS * 1.05, f"target for fast: p99 < {TARGET_MS:.0f} ms", fontsize=8, color="grey")
    axes[0].set_ylabel("longest gap seen by the client (ms, log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0].legend(unique.values(), unique.keys(), loc="lower left")
    fig_.suptitle(f"floatip.ha failover gap, a request every {report['method']['interval_ms']:.0f} ms "
                  f"({figure_label(report)})")
    save_figure(fig_, path)


# --- main -----------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", type=int, default=20, help="freeze trials per setting")
    parser.add_argument("--kill", type=int, default=20, help="kill trials per setting, at most")
    parser.add_argument("--min-kill", type=int, default=5, help="kill trials per setting, at least")
    parser.add_argument("--budget", type=float, default=1500, help="seconds for the whole bench, kill trials beyond the minimum fit into")
    parser.add_argument("--hard-limit", type=float, default=3600, help="seconds after which no further trial starts")
    parser.add_argument("--settings", help="comma-separated subset of: keepalived, keepalived_fast, ucarp, heartbeat")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the JSON again")
    args = parser.parse_args()
    args.min_kill = min(args.min_kill, args.kill)

    if args.report_only:
        print(write(NAME, read(NAME), table, plot), end="")
        return 0

    link_collection()
    handle_signals()

    budget = Budget(args.budget, hard_limit=args.hard_limit)
    lab = Lab.from_inventory()
    chosen = settings(lab.vips)
    if args.settings:
        wanted = args.settings.split(",")
        unknown = set(wanted) - {s.name for s in chosen}
        if unknown:
            parser.error(f"unknown settings: {', '.join(sorted(unknown))}")
        chosen = [s for s in chosen if s.name in wanted]
    # A setting is converged over the one before only when both have the
    # same backend (the fast profile over the conservative one).
    chosen = [s if s.fresh_lab or (i and chosen[i - 1].backend == s.backend) else replace(s, fresh_lab=True)
              for i, s in enumerate(chosen)]

    ours = set(lab.containers.values())
    others = [n for n in docker("ps", "--format", "{{.Names}}").split() if n not in ours]
    report: dict[str, Any] = {
        "benchmark": NAME,
        "date": now(),
        "machine": machine(docker=docker("version", "--format", "{{.Server.Version}}", check=False)),
        "other_containers": len(others),
        "load_start": load_average(),
        "method": {"interval_ms": INTERVAL * 1000, "request_timeout_ms": REQUEST_TIMEOUT * 1000,
                   "freeze_trials": args.freeze, "kill_trials_max": args.kill, "kill_trials_min": args.min_kill,
                   "budget_s": args.budget, "hard_limit_s": args.hard_limit, "vip": lab.vips[0], "holder": lab.node_a, "peer": lab.node_b,
                   "network": lab.network},
        "settings": {},
        "notes": [],
        "complete": False,
    }
    tail = "" if not others else f" ({len(others)} other containers share the machine)"
    log(f"failover_gap: {len(chosen)} settings, {args.freeze} freeze and {args.min_kill}-{args.kill} kill trials each, "
        f"budget {args.budget:.0f} s{tail}")
    status = 0
    with tempfile.TemporaryDirectory(prefix="floatip-bench-") as tmp:
        # Made for this run only; the file is readable by its owner alone.
        ucarp_password = secrets.token_hex(8)  # ucarp refuses 20 characters or more
        heartbeat_key = secrets.token_hex(20)
        lab.secret_values = [ucarp_password, heartbeat_key]
        try:
            for i, setting in enumerate(chosen):
                if budget.hard_stop():
                    report["notes"].append(f"{setting.label}: not run, past the hard time limit")
                    continue
                extra = dict(setting.extra)
                if setting.backend == "ucarp":
                    extra["floating_ip_password"] = ucarp_password
                if setting.backend == "heartbeat":
                    extra["heartbeat_auth_key"] = heartbeat_key
                extra_file = Path(tmp) / f"{setting.name}.json"
                extra_file.touch(mode=0o600)
                extra_file.write_text(json.dumps(extra), encoding="utf-8")
                try:
                    run_setting(lab, setting, chosen[i + 1:], args, budget, extra_file, report)
                    if any(note.startswith("abandoned") for note in report["settings"][setting.name]["notes"]):
                        status = 1
                except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
                    status = 1
                    message = lab.redact(str(exc))
                    log(f"{setting.name}: FAILED: {message}")
                    report["settings"].setdefault(setting.name, {"label": setting.label, "freeze": {"trials": []},
                                                                 "kill": {"trials": []}, "notes": []})
                    report["settings"][setting.name]["notes"].append(f"failed: {message.splitlines()[0]}")
                    for kind in ("freeze", "kill"):
                        summarize(report["settings"][setting.name][kind])
                report["total_s"] = round(budget.elapsed(), 1)
                write(NAME, report, table, plot)
            report["complete"] = status == 0
        except Interrupted as exc:
            status = 130
            report["notes"].append(f"interrupted by {exc}")
            log(f"interrupted by {exc}: removing the bench lab")
        finally:
            ignore_signals()
            try:
                lab_down(lab)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                status = status or 1
                log(f"could not remove the bench lab: {lab.redact(str(exc))}")
    report["total_s"] = round(budget.elapsed(), 1)
    if report["total_s"] > args.budget:
        report["notes"].append(
            f"the run took {report['total_s'] / 60:.0f} min, over the budget of {args.budget / 60:.0f} min: "
            f"the labs and the minimum of trials ({args.freeze} freeze, {args.min_kill} kill per setting) do not fit in it")
    report["load_end"] = load_average()
    for entry in report["settings"].values():
        for kind in ("freeze", "kill"):
            summarize(entry[kind])
    write_and_print(NAME, report, table, plot, f"{report['total_s'] / 60:.1f} min")
    return status


if __name__ == "__main__":
    sys.exit(main())
