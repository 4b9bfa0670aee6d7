"""Benchmark: the gap a client sees on a VIP when the node holding it dies.

A client opens a connection to the VIP every 10 ms (tests/floatip_testing/clients/gap_probe.py, run
on the client through ``docker exec``); each node's whoami service answers
with its name. While node1 holds the VIP, the bench freezes it (``docker
pause``: a hung machine) or kills it (``docker kill``: a power cut), and the
client records the longest time between two answered requests until node2
answers steadily: the client-visible failover gap. Then node1 comes back
(``docker unpause``, or ``docker start`` and systemd booted) and the bench
waits until the VIP is back on node1 alone and steady, recording that
failback gap too, so every trial starts from the same state.

Settings, each converged with bench/playbooks/converge.yml: keepalived with
floating_ip_profile conservative (VRRPv2, 1 s adverts) and fast (VRRPv3,
0.1 s), ucarp (advbase 1 s) and the heartbeat pair (the role's default
timings, deadtime 10 s, auto_failback on). Each runs in lanes: a lane is a
lab of its own (node1, node2 and a client, from the lab of
bench/inventories/failover, on the next /24 and under its own lab name),
and the lanes run at the same time, so that 20 freeze and 20 kill trials of
every setting fit in the time of the slowest lane: heartbeat's trials, which
wait out its 10 s deadtime and its restart after a partition, are spread
over three lanes. The labs are created with lab/up.yml and removed with
lab/down.yml at the end, also on failure or interruption (``--down`` removes
them after a run that was killed outright). Secrets (ucarp's password,
heartbeat's key) are made for the run and passed in a file of a private
temporary directory, never printed.

The anchor, in the same run and lab: before its trials each lane probes the
VIP for 10 s with nothing broken, and the longest gap then is the noise of
the probe and the machine that every trial's gap carries too.

Trials: --trials (20) freeze and as many kill trials per setting; a trial
that could not measure (a docker command failed) is replaced, three times at
most. No trial starts after --hard-limit seconds (1200): whatever is left is
skipped and the results say so. Every docker and ansible command has a
timeout. Target: the fast profile's p99 gap under 400 ms.

Run: make bench   (or: .venv/bin/python bench/failover_gap.py [--settings keepalived_fast,...] [--trials N])
     .venv/bin/python bench/failover_gap.py --report-only   (table and plot again from the JSON)
     .venv/bin/python bench/failover_gap.py --down          (remove every lane's lab)
Writes bench/results/failover_gap.json (every trial, raw), failover_gap.md
(the table it prints) and failover_gap.png (the distributions).
"""

from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from _results import (Interrupted, cell, figure_label, handle_signals, ignore_signals, link_collection, load_average, log, machine, machine_line,
                      note_lines, now, pyplot, read, save_figure, write, write_and_print)
from floatip_testing import client_script, lab as labs

NAME = "failover_gap"
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
INVENTORY = BENCH / "inventories" / "failover"  # the lab every lane copies
CONVERGE = BENCH / "playbooks" / "converge.yml"
PROBE_SOURCE = client_script("gap_probe.py").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent  # the virtualenv's ansible-playbook

TARGET_MS = 400.0  # the fast profile's p99 gap must stay under this
INTERVAL = 0.01  # seconds between the client's requests
REQUEST_TIMEOUT = 0.5  # per request, under Linux's 1 s SYN retransmit
FAILOVER_DEADLINE = 60.0  # the probe gives up on the peer answering after this
FAILBACK_DEADLINE = 120.0  # and on the returning owner (a kill boots it first)
SETTLE_S = 1.5  # the VIP must stay on its owner alone this long before a trial
ANCHOR_S = 10.0  # seconds each lane probes with nothing broken, first
RETRIES = 3  # failed trials replaced per lane and kind, at most
KINDS = ("freeze", "kill")
# What a trial keeps of each probe's report (gap_probe.py documents them).
PROBE_KEYS = ("requests", "answers", "errors", "runs", "gaps", "max_late_ms", "open_gap", "gap_ms", "seconds")


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    backend: str
    extra: dict[str, Any]  # the VIP layer's variables for converge.yml, but its pool
    vips: int = 2  # the pool: the first of .101 and .102 of each lane's network
    # The labs the setting's trials are spread over, each with the failure
    # kinds it runs; a kind's trials are shared evenly among its lanes.
    lanes: tuple[tuple[str, ...], ...] = (KINDS,)
    # About how long one trial takes here: the lanes with the most work
    # create their labs first (LabTurns).
    trial_s: float = 10.0


def settings() -> list[Setting]:
    pair = {"floatip_vips_per_node": 1}  # .101 owned by node1, .102 by node2
    return [
        Setting("keepalived", "keepalived conservative (VRRPv2, 1 s)", "keepalived",
                {**pair, "floatip_vip_backend": "keepalived", "floating_ip_profile": "conservative"}, trial_s=11),
        Setting("keepalived_fast", "keepalived fast (VRRPv3, 0.1 s)", "keepalived",
                {**pair, "floatip_vip_backend": "keepalived", "floating_ip_profile": "fast"}, trial_s=6),
        Setting("ucarp", "ucarp (advbase 1 s)", "ucarp", {**pair, "floatip_vip_backend": "ucarp"}, trial_s=10),
        # A frozen primary costs heartbeat its deadtime and, once thawed, the
        # peer's restart after the partition (some 35 s a trial): two lanes.
        Setting("heartbeat", "heartbeat (deadtime 10 s)", "heartbeat",
                {"floatip_vip_backend": "heartbeat", "heartbeat_auto_failback": True}, vips=1,
                lanes=(("freeze",), ("freeze",), ("kill",)), trial_s=35),
    ]


# --- the labs -------------------------------------------------------------


@dataclass
class Lab:
    """A lane's lab: its names and addresses, read from its inventory."""

    inventory: Path
    containers: dict[str, str]  # inventory host -> container
    network: str
    port: int
    vips: list[str]
    node_a: str = "node1"  # holds the VIP and is broken
    node_b: str = "node2"  # takes it over
    client: str = "client"
    secret_values: list[str] = field(default_factory=list)

    @classmethod
    def from_inventory(cls, inventory: Path) -> Lab:
        out = run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"], timeout=120).stdout
        hostvars = json.loads(out)["_meta"]["hostvars"]

        def plain(value: Any) -> Any:
            return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value

        network = ipaddress.ip_network(plain(hostvars["node1"]["floatip_network"]))
        return cls(
            inventory=inventory,
            containers={host: plain(v["ansible_host"]) for host, v in hostvars.items()},
            network=str(network),
            port=int(hostvars["client"]["whoami_port"]),
            # .101 and .102 of the lab's network: one VIP owned by each node.
            vips=[str(network[101]), str(network[102])],
        )

    def c(self, host: str) -> str:
        return self.containers[host]

    def redact(self, text: str) -> str:
        for value in self.secret_values:
            text = text.replace(value, "***")
        return text


def lane_inventory(index: int, directory: Path) -> Path:
    """The inventory of lane ``index``: the bench lab's, on the ``index``-th
    /24 after its network and named after it plus the index."""
    return labs.moved_inventory(INVENTORY, directory / f"lane{index}", index)


@dataclass
class Lane:
    """One lab and the trials run on it."""

    index: int
    setting: Setting
    trials: dict[str, int]  # failure kind -> trials on this lane
    lab: Lab

    @property
    def name(self) -> str:
        return f"{self.setting.name}/{self.index}"


def plan_lanes(chosen: list[Setting], trials: int, directory: Path) -> list[Lane]:
    """Every setting's lanes, numbered in order, with ``trials`` of each kind shared among the lanes that run it."""
    lanes: list[Lane] = []
    for setting in chosen:
        for position, kinds in enumerate(setting.lanes):
            share = {}
            for kind in kinds:
                carriers = [i for i, ks in enumerate(setting.lanes) if kind in ks]
                share[kind] = trials // len(carriers) + (1 if carriers.index(position) < trials % len(carriers) else 0)
            index = len(lanes)
            lanes.append(Lane(index, setting, share, Lab.from_inventory(lane_inventory(index, directory))))
    return lanes


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
    return labs.docker(*args, timeout=timeout, check=check).strip()


def playbook(lab: Lab, path: Path, *args: str, timeout: float) -> None:
    done = run([str(BIN / "ansible-playbook"), "-i", str(lab.inventory), str(path), *args], timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"{path.relative_to(ROOT)} failed (rc {done.returncode}):\n{lab.redact(tail)}")


def lab_up(lab: Lab, name: str) -> None:
    """Create the lab; once more from nothing when that fails (a container
    that exited as it started, or never finished booting: what the host's
    inotify limit did before lab/host-setup.sh raised it, docs/lab.md)."""
    try:
        playbook(lab, ROOT / "lab" / "up.yml", timeout=180)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        log(f"{name}: creating the lab failed, once more from nothing: {lab.redact(str(exc)).splitlines()[0]}")
        lab_down(lab)
        playbook(lab, ROOT / "lab" / "up.yml", timeout=180)


def lab_down(lab: Lab) -> None:
    # A paused container is thawed first, so that its removal is a plain one.
    for container in lab.containers.values():
        if docker("inspect", "--format", "{{.State.Paused}}", container, check=False) == "true":
            docker("unpause", container, check=False)
    playbook(lab, ROOT / "lab" / "down.yml", timeout=300)


is_paused = labs.is_paused


def holders(lab: Lab, vip: str) -> list[str]:
    """The nodes that have the VIP configured now (floatip_testing.lab.holds)."""
    return [node for node in (lab.node_a, lab.node_b) if labs.holds(lab.c(node), vip)]


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


wait_booted = labs.wait_booted


# --- the client's probe ---------------------------------------------------


class Probe:
    """floatip_testing's clients/gap_probe.py running on the client, its JSON lines read here."""

    def __init__(self, lab: Lab, vip: str, before: str, after: str, deadline: float, settle: float = 1.0) -> None:
        argv = ["docker", "exec", "-i", lab.c(lab.client), "python3", "-", vip, str(lab.port), before, after,
                "--interval", str(INTERVAL), "--timeout", str(REQUEST_TIMEOUT), "--deadline", str(deadline),
                "--settle", str(settle)]
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
        if kind == "freeze":
            labs.pause(lab.c(a))
        else:
            docker("kill", lab.c(a))
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


def anchor(lab: Lab) -> dict[str, Any]:
    """The probe for ANCHOR_S with nothing broken: its longest gap is the
    noise floor of every trial's gap on this lab."""
    probe = Probe(lab, lab.vips[0], lab.node_a, lab.node_a, ANCHOR_S + 30, settle=ANCHOR_S)
    try:
        done = probe.event("done", timeout=ANCHOR_S + 60)
    finally:
        probe.stop()
    return {"gap_ms": done["gap_ms"], "settled": done["settled"], "probe": {k: done[k] for k in PROBE_KEYS}}


class LabTurns:
    """Lanes create their labs one at a time, the lanes with the most work
    first, so that the lane that starts last is a short one. Creating a lab
    takes seconds; the converges still run at once."""

    def __init__(self, lanes: list[Lane]) -> None:
        self.order = [lane.index for lane in sorted(lanes, key=lambda ln: -sum(ln.trials.values()) * ln.setting.trial_s)]
        self.ready = threading.Condition()

    @contextlib.contextmanager
    def turn(self, index: int, stop: threading.Event) -> Iterator[None]:
        with self.ready:
            while self.order[0] != index:
                if stop.is_set():
                    raise RuntimeError("stopped before its lab was created")
                self.ready.wait(timeout=1)
        try:
            yield
        finally:
            with self.ready:
                self.order.remove(index)
                self.ready.notify_all()


def run_lane(lane: Lane, extra_file: Path, hard_stop: threading.Event, record: dict[str, Any], turns: LabTurns) -> None:
    """Build the lane's lab, probe its anchor, then run its trials, filling ``record`` as it goes."""
    lab, setting = lane.lab, lane.setting
    with turns.turn(lane.index, hard_stop):
        started = time.monotonic()
        lab_down(lab)  # whatever an earlier run left
        lab_up(lab, lane.name)
    log(f"{lane.name}: converging {setting.label}")
    playbook(lab, CONVERGE, "-e", f"@{extra_file}", timeout=1200)
    record["lab_s"] = round(time.monotonic() - started, 1)
    record["steady_before_s"] = round(wait_steady(lab, setting, lab.vips[0], lab.node_a, timeout=120), 2)
    record["anchor"] = anchor(lab)
    log(f"{lane.name}: lab ready in {record['lab_s']} s; nothing broken, the longest gap was {record['anchor']['gap_ms']} ms")

    failures_in_a_row = 0

    def one(kind: str, number: int) -> bool:
        nonlocal failures_in_a_row
        result: dict[str, Any] = {"trial": number, "kind": kind, "lane": lane.index, "ok": False, "load": load_average()}
        try:
            trial(lab, setting, kind, result)
        except (TimeoutError, RuntimeError, subprocess.SubprocessError) as exc:
            result.update(ok=False, error=lab.redact(str(exc)))
            log(f"{lane.name} {kind} {number}: FAILED {result['error']} (gap {result.get('gap_ms')} ms, "
                f"failback gap {result.get('failback_gap_ms')} ms)")
            # Back to the starting state if possible; a lane that cannot get
            # there twice in a row is abandoned.
            try:
                if is_paused(lab.c(lab.node_a)):
                    docker("unpause", lab.c(lab.node_a))
                if docker("inspect", "--format", "{{.State.Running}}", lab.c(lab.node_a)) != "true":
                    docker("start", lab.c(lab.node_a))
                wait_booted(lab.c(lab.node_a))
                wait_steady(lab, setting, lab.vips[0], lab.node_a, timeout=120, record=result)
            except (TimeoutError, RuntimeError, subprocess.SubprocessError) as again:
                result["restore_error"] = lab.redact(str(again))
                failures_in_a_row += 1
        else:
            failures_in_a_row = 0 if result["ok"] else failures_in_a_row + 1
            log(f"{lane.name} {kind} {number}: gap {result['gap_ms']} ms, failback gap "
                f"{result.get('failback_gap_ms')} ms, trial {result['trial_s']} s")
        record["trials"].append(result)
        return failures_in_a_row < 2

    # A trial that could not measure (a docker command that failed, say) is
    # replaced, RETRIES times per kind at most.
    for kind, wanted in lane.trials.items():
        number = 0
        while measured(record["trials"], kind) < wanted and number < wanted + RETRIES:
            number += 1
            if hard_stop.is_set():
                record["notes"].append(f"{kind} trials stopped at {measured(record['trials'], kind)} of {wanted}: "
                                       "past the hard time limit, or interrupted")
                return
            if not one(kind, number):
                record["notes"].append("abandoned after two failed trials in a row")
                return


def measured(trials: list[dict[str, Any]], kind: str) -> int:
    """Trials of a kind that measured (a failover that never came counts too)."""
    return sum(1 for t in trials if t["kind"] == kind and "error" not in t)


def gather(report: dict[str, Any]) -> None:
    """Each setting's trials of each kind from its lanes, summarized."""
    for entry in report["settings"].values():
        lanes = [report["lanes"][str(i)] for i in entry["lanes"]]
        for kind in KINDS:
            entry[kind] = {"trials": [t for lane in lanes for t in lane["trials"] if t["kind"] == kind]}
            summarize(entry[kind])
        gaps = [lane["anchor"]["gap_ms"] for lane in lanes if lane.get("anchor") and lane["anchor"]["gap_ms"] is not None]
        entry["anchor_gap_ms"] = max(gaps) if gaps else None
        entry["notes"] = [f"lane {i}: {note}" for i in entry["lanes"] for note in report["lanes"][str(i)]["notes"]]


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
        "Anchor: the longest gap of the same probe in the same labs with nothing broken "
        f"({report['method'].get('anchor_s', ANCHOR_S):.0f} s per lane).",
        f"Target: fast profile p99 < {TARGET_MS:.0f} ms.",
        f"{machine_line(report)}; total {report.get('total_s', 0) / 60:.1f} min, {len(report.get('lanes', {}))} lanes at once; "
        f"{report.get('other_containers', 0)} other containers running on the machine at the start.",
        "",
        "| setting | failure | trials | median ms | p99 ms | max ms | failback median ms | failback max ms | nothing broken ms | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, entry in report["settings"].items():
        for kind in KINDS:
            block = entry.get(kind, {})
            s, fb = block.get("summary", {"n": 0}), block.get("failback_summary", {"n": 0})
            trials = f"{s['n']}" + (f" (+{block['failed_trials']} never served)" if block.get("failed_trials") else "")
            trials += f" (+{block['unmeasured_trials']} not measured)" if block.get("unmeasured_trials") else ""
            target = ""
            if name == "keepalived_fast" and s["n"]:
                target = "met" if s["p99_ms"] < TARGET_MS else "MISSED"
            lines.append(f"| {entry['label']} | {kind} | {trials} | {cell(s.get('median_ms'), 0)} | {cell(s.get('p99_ms'), 0)} | "
                         f"{cell(s.get('max_ms'), 0)} | {cell(fb.get('median_ms'), 0)} | {cell(fb.get('max_ms'), 0)} | "
                         f"{cell(entry.get('anchor_gap_ms'), 0)} | {target} |")
    notes = [f"{entry['label']}: {note}" for entry in report["settings"].values() for note in entry.get("notes", [])]
    for entry in report["settings"].values():
        for kind in KINDS:
            block = entry.get(kind, {})
            if block.get("heartbeat_restarts"):
                notes.append(f"{entry['label']}, {kind}: in {block['heartbeat_restarts']} of {len(block['trials'])} trials "
                             "heartbeat.service stayed stopped on a node after the pair healed and the bench started it again; "
                             "their failback gaps are left out")
    notes += report.get("notes", [])
    return "\n".join(lines + note_lines(notes)) + "\n"


def summary_cell(block: dict[str, Any]) -> str:
    s = block.get("summary", {"n": 0})
    if not s["n"]:
        return "not measured"
    return f"median {s['median_ms']:.0f} ms, p99 {s['p99_ms']:.0f}, max {s['max_ms']:.0f} ({s['n']} trials)"


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary rows: per failure kind, every setting's gap, against the gap with nothing broken."""
    entries = report.get("settings", {})
    anchors = [e["anchor_gap_ms"] for e in entries.values() if e.get("anchor_gap_ms") is not None]
    anchor_text = (f"nothing broken, same probe and labs: longest gap {max(anchors):.0f} ms" if anchors
                   else "nothing broken: not measured")
    rows = []
    for kind, what in (("freeze", "client-visible gap when the VIP holder is frozen (docker pause)"),
                       ("kill", "the same when it is killed (docker kill, a power cut)")):
        cells = [f"{entry['label']}: {summary_cell(entry.get(kind, {}))}" for entry in entries.values()]
        rows.append((what, "; ".join(cells) or "not measured", anchor_text))
    failback = []
    for entry in entries.values():
        gaps = [g for kind in KINDS for g in entry.get(kind, {}).get("failback_gaps_ms", [])]
        if gaps:
            failback.append(f"{entry['label']}: median {statistics.median(gaps):.0f} ms, max {max(gaps):.0f}")
    rows.append(("failback (the VIP returns to its owner)", "; ".join(failback) or "not measured", anchor_text))
    return rows


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    names = list(report["settings"])
    kinds = [("freeze", "tab:blue"), ("kill", "tab:red")]
    fig_, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, key, title in ((axes[0], "gaps_ms", "failover: node1 frozen or killed"),
                           (axes[1], "failback_gaps_ms", "failback: node1 back")):
        for i, name in enumerate(names):
            entry = report["settings"][name]
            for j, (kind, colour) in enumerate(kinds):
                data = entry.get(kind, {}).get(key, [])
                x = i + (j - 0.5) * 0.36
                if not data:
                    continue
                ax.boxplot([data], positions=[x], widths=0.28, showfliers=False,
                           medianprops={"color": colour}, boxprops={"color": colour},
                           whiskerprops={"color": colour}, capprops={"color": colour})
                jitter = [x + ((k * 0.618) % 1 - 0.5) * 0.2 for k in range(len(data))]
                ax.scatter(jitter, data, s=12, color=colour, alpha=0.6, zorder=3, label=kind)
            if entry.get("anchor_gap_ms") is not None:
                ax.hlines(entry["anchor_gap_ms"], i - 0.45, i + 0.45, color="grey", linestyle=":", label="nothing broken (anchor)")
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


def secrets_file(lane: Lane, directory: Path, ucarp_password: str, heartbeat_key: str) -> Path:
    """The lane's VIP layer as extra vars, its secret included, in a file only its owner reads."""
    setting = lane.setting
    extra = {**setting.extra, "floatip_vip_pool": lane.lab.vips[:setting.vips]}
    if setting.backend == "ucarp":
        extra["floating_ip_password"] = ucarp_password
    if setting.backend == "heartbeat":
        extra["heartbeat_auth_key"] = heartbeat_key
    path = directory / f"lane{lane.index}.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(extra), encoding="utf-8")
    return path


def remove_labs(lanes: list[Lane]) -> int:
    """Every lane's lab removed, at once; 1 when one could not be."""
    failed: list[str] = []

    def down(lane: Lane) -> None:
        try:
            lab_down(lane.lab)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            failed.append(f"{lane.name}: {lane.lab.redact(str(exc))}")

    threads = [threading.Thread(target=down, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for message in failed:
        log(f"could not remove a lab: {message}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="freeze trials, and kill trials, per setting")
    parser.add_argument("--hard-limit", type=float, default=1200, help="seconds after which no further trial starts")
    parser.add_argument("--settings", help="comma-separated subset of: keepalived, keepalived_fast, ucarp, heartbeat")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the JSON again")
    parser.add_argument("--down", action="store_true", help="remove every lane's lab, and nothing else")
    args = parser.parse_args()

    if args.report_only:
        print(write(NAME, read(NAME), table, plot), end="")
        return 0

    link_collection()
    handle_signals()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="floatip-bench-") as tmp:
        directory = Path(tmp)
        chosen = settings()
        if args.settings:
            wanted = args.settings.split(",")
            unknown = set(wanted) - {s.name for s in chosen}
            if unknown:
                parser.error(f"unknown settings: {', '.join(sorted(unknown))}")
            chosen = [s for s in chosen if s.name in wanted]
        lanes = plan_lanes(settings() if args.down else chosen, args.trials, directory)
        if args.down:
            return remove_labs(lanes)
        return run_all(args, chosen, lanes, directory, started)


def run_all(args: argparse.Namespace, chosen: list[Setting], lanes: list[Lane], directory: Path, started: float) -> int:
    ours = {c for lane in lanes for c in lane.lab.containers.values()}
    others = [n for n in docker("ps", "--format", "{{.Names}}").split() if n not in ours]
    report: dict[str, Any] = {
        "benchmark": NAME,
        "date": now(),
        "machine": machine(docker=docker("version", "--format", "{{.Server.Version}}", check=False)),
        "other_containers": len(others),
        "load_start": load_average(),
        "method": {"interval_ms": INTERVAL * 1000, "request_timeout_ms": REQUEST_TIMEOUT * 1000, "trials": args.trials,
                   "anchor_s": ANCHOR_S, "hard_limit_s": args.hard_limit, "holder": "node1", "peer": "node2",
                   "vip": "the .101 of each lane's network"},
        "settings": {s.name: {"label": s.label, "backend": s.backend, "vars": dict(s.extra), "vips": s.vips,
                              "lanes": [lane.index for lane in lanes if lane.setting is s]} for s in chosen},
        "lanes": {str(lane.index): {"setting": lane.setting.name, "network": lane.lab.network, "trials_planned": lane.trials,
                                    "trials": [], "notes": []} for lane in lanes},
        "notes": [],
        "complete": False,
    }
    tail = "" if not others else f" ({len(others)} other containers share the machine)"
    log(f"failover_gap: {len(chosen)} settings in {len(lanes)} lanes at once, {args.trials} freeze and "
        f"{args.trials} kill trials each{tail}")
    ucarp_password = secrets.token_hex(8)  # ucarp refuses 20 characters or more
    heartbeat_key = secrets.token_hex(20)
    files = {lane.index: secrets_file(lane, directory, ucarp_password, heartbeat_key) for lane in lanes}
    stop = threading.Event()
    timer = threading.Timer(args.hard_limit, stop.set)
    timer.daemon = True
    timer.start()
    errors: dict[int, str] = {}
    turns = LabTurns(lanes)

    def lane_thread(lane: Lane) -> None:
        lane.lab.secret_values = [ucarp_password, heartbeat_key]
        record = report["lanes"][str(lane.index)]
        began = time.monotonic()
        try:
            run_lane(lane, files[lane.index], stop, record, turns)
        except (RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
            errors[lane.index] = lane.lab.redact(str(exc))
            record["notes"].append(f"failed: {errors[lane.index].splitlines()[0]}")
            log(f"{lane.name}: FAILED: {errors[lane.index]}")
        finally:
            record["lane_s"] = round(time.monotonic() - began, 1)

    status = 0
    threads = [threading.Thread(target=lane_thread, args=(lane,), daemon=True) for lane in lanes]
    try:
        for thread in threads:
            thread.start()
        ticks = 0
        while any(thread.is_alive() for thread in threads):
            time.sleep(1)
            ticks += 1
            if ticks % 60 == 0:  # what is measured so far, on disk
                report["total_s"] = round(time.monotonic() - started, 1)
                gather(report)
                write(NAME, report, table, plot)
        abandoned = any(note.startswith("abandoned") for lane in report["lanes"].values() for note in lane["notes"])
        status = 1 if errors or abandoned else 0
        report["complete"] = status == 0 and not stop.is_set()
    except Interrupted as exc:
        status = 130
        stop.set()
        report["notes"].append(f"interrupted by {exc}")
        log(f"interrupted by {exc}: removing the bench labs")
    finally:
        ignore_signals()
        timer.cancel()
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
        status = remove_labs(lanes) or status
    report["total_s"] = round(time.monotonic() - started, 1)
    report["load_end"] = load_average()
    gather(report)
    write_and_print(NAME, report, table, plot, f"{report['total_s'] / 60:.1f} min")
    return status


if __name__ == "__main__":
    sys.exit(main())
