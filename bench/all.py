"""Every benchmark under bench/ in one run of at most 30 minutes on 2 cores, and one report.

What ``make bench`` runs. Two stages, each step a benchmark script of its
own (its output in bench/results/NAME.log):

1. The loopback benchmarks, alone, so that the load they make and measure
   meets a quiet machine: vip_layout (pure computation), runtime_api
   (Ansible against one local haproxy), reload_under_load (600 requests a
   second through a haproxy reloaded every second).
2. At once: failover_gap (its six lanes, each a lab of its own), and
   config_sync then rolling_maintenance (which also times site.yml's
   converge), each on its Molecule lab. config_sync builds its lab beside
   failover_gap but measures only once failover_gap has ended (its
   --measure-after): a push timed while six labs freeze and kill nodes
   measured the machine's load (median 7 s against 2.7 s alone).
   rolling_maintenance then has the machine to itself; beside
   failover_gap, its load and five nodes took the machine to a load
   average of 14, two lanes' labs never booted and its maintenance failed.
   Each figure is read against an anchor measured in the same run and lab,
   so a ratio holds while the others load the machine; run.json says what
   ran beside what.

Then bench/report.py writes bench/results/report.md and report.json, and
with ``--readme FILE`` the figures between FILE's bench markers.

Bounded: a step still running at ``--deadline`` seconds (1680) from the
start gets SIGTERM, upon which it removes its lab and writes what it has
measured; SIGKILL follows 120 s later, and then the lab's removal is done
here (``failover_gap.py --down``, ``rolling_maintenance.py --down``, ``molecule
destroy`` for config_sync). SIGINT or SIGTERM
to this script goes to the running steps the same way.

Run: make bench   (or: .venv/bin/python bench/all.py [--readme README.md] [--only failover_gap,...])
Writes bench/results/run.json (each step's command, exit status, start,
end, seconds and the steps beside it), each benchmark's results, report.md
and report.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _results import RESULTS, ROOT, log, now

PYTHON = sys.executable
BENCH = ROOT / "bench"
KILL_AFTER = 120.0  # seconds between a step's SIGTERM and its SIGKILL


@dataclass
class Step:
    name: str
    args: list[str] = field(default_factory=list)
    cleanup: list[str] | None = None  # what removes its lab when it had to be killed
    measure_after: str | None = None  # a step whose end this one waits for before measuring (its --measure-after)
    proc: subprocess.Popen[bytes] | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def argv(self) -> list[str]:
        return [PYTHON, str(BENCH / f"{self.name}.py"), *self.args]


def ended_marker(name: str) -> Path:
    """The file that says a step has ended, for a step that measures after it."""
    return RESULTS / f".{name}.ended"


def stages() -> list[list[list[Step]]]:
    """Stages run one after the other; in a stage, chains run at once; in a chain, steps one after the other."""
    molecule = str(ROOT / ".venv" / "bin" / "molecule")
    return [
        [[Step("vip_layout"), Step("runtime_api"), Step("reload_under_load")]],
        [[Step("failover_gap", cleanup=[PYTHON, str(BENCH / "failover_gap.py"), "--down"])],
         [Step("config_sync", cleanup=[molecule, "destroy", "-s", "config_sync"], measure_after="failover_gap"),
          Step("rolling_maintenance", cleanup=[PYTHON, str(BENCH / "rolling_maintenance.py"), "--down"])]],
    ]


def wait_for_ends(plan: list[list[list[Step]]]) -> None:
    """Clear the steps' end markers and give each step that measures after
    another, when that one runs too, its --measure-after."""
    steps = [step for stage in plan for chain in stage for step in chain]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for step in steps:
        ended_marker(step.name).unlink(missing_ok=True)
        if step.measure_after in {other.name for other in steps}:
            step.args += ["--measure-after", str(ended_marker(step.measure_after))]


class Runner:
    def __init__(self, deadline: float) -> None:
        self.start = time.monotonic()
        self.deadline = deadline
        self.stopping = threading.Event()
        self.stopped_at: float | None = None  # when the running steps got SIGTERM
        self.lock = threading.Lock()
        self.running: list[Step] = []
        self.done: list[Step] = []

    def stop(self, why: str) -> None:
        """No further step starts; the running ones get SIGTERM now and SIGKILL later."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.stopped_at = time.monotonic()
        log(f"stopping: {why}")
        with self.lock:
            for step in self.running:
                step.record.setdefault("stopped", why)
                if step.proc and step.proc.poll() is None:
                    step.proc.send_signal(signal.SIGTERM)

    def chain(self, steps: list[Step]) -> None:
        for step in steps:
            if self.stopping.is_set():
                step.record = {"name": step.name, "rc": None, "skipped": "the run was stopping"}
                ended_marker(step.name).touch()
                self.done.append(step)
                continue
            self.one(step)

    def one(self, step: Step) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        step.record = {"name": step.name, "command": " ".join(Path(a).name if a == PYTHON else a for a in step.argv()),
                       "started": now(), "concurrent_with": []}
        log(f"{step.name}: started (its output in {RESULTS.relative_to(ROOT) / (step.name + '.log')})")
        began = time.monotonic()
        with open(RESULTS / f"{step.name}.log", "wb") as out:
            with self.lock:
                step.proc = subprocess.Popen(step.argv(), cwd=BENCH, stdout=out, stderr=subprocess.STDOUT)
                for other in self.running:
                    other.record["concurrent_with"].append(step.name)
                    step.record["concurrent_with"].append(other.name)
                self.running.append(step)
            killed = False
            while True:
                try:
                    step.proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self.stopped_at is not None and time.monotonic() - self.stopped_at > KILL_AFTER and not killed:
                    log(f"{step.name}: still running {KILL_AFTER:.0f} s after SIGTERM: SIGKILL")
                    step.proc.kill()
                    killed = True
        with self.lock:
            self.running.remove(step)
        step.record.update(rc=step.proc.returncode, ended=now(), seconds=round(time.monotonic() - began, 1), killed=killed)
        log(f"{step.name}: rc {step.proc.returncode} after {step.record['seconds']:.0f} s")
        ended_marker(step.name).touch()
        if killed and step.cleanup:
            log(f"{step.name}: removing its lab ({' '.join(Path(a).name for a in step.cleanup[:2])} ...)")
            subprocess.run(step.cleanup, cwd=ROOT, timeout=600, check=False, stdout=subprocess.DEVNULL)
        self.done.append(step)

    def watch(self) -> None:
        """The deadline: stop everything that still runs then."""
        while not self.stopping.wait(timeout=1):
            if time.monotonic() - self.start > self.deadline:
                self.stop(f"the deadline of {self.deadline:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=1680, help="seconds after which running steps are stopped")
    parser.add_argument("--readme", help="a file whose bench markers get the summary table")
    parser.add_argument("--only", help="comma-separated benchmarks to run (the others are left out, their old results kept)")
    args = parser.parse_args()

    plan = stages()
    if args.only:
        wanted = set(args.only.split(","))
        known = {step.name for stage in plan for chain in stage for step in chain}
        if wanted - known:
            parser.error(f"unknown benchmarks: {', '.join(sorted(wanted - known))}; known: {', '.join(sorted(known))}")
        plan = [[[s for s in chain if s.name in wanted] for chain in stage] for stage in plan]
    wait_for_ends(plan)

    runner = Runner(args.deadline)

    def on_signal(signum: int, _frame: object) -> None:
        runner.stop(f"signal {signal.Signals(signum).name}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    threading.Thread(target=runner.watch, daemon=True).start()

    started = now()
    for number, stage in enumerate(plan, 1):
        chains = [chain for chain in stage if chain]
        if not chains:
            continue
        log(f"stage {number}: {' | '.join(' then '.join(s.name for s in chain) for chain in chains)}")
        threads = [threading.Thread(target=runner.chain, args=(chain,)) for chain in chains]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=1)
    runner.stopping.set()  # ends the watch (a stop from now on has nothing left to stop)

    total = round(time.monotonic() - runner.start, 1)
    order = [step.name for stage in plan for chain in stage for step in chain]
    steps = sorted((step.record for step in runner.done), key=lambda r: order.index(r["name"]))
    run = {"started": started, "ended": now(), "total_s": total, "deadline_s": args.deadline, "steps": steps}
    (RESULTS / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    log(f"all benchmarks: {total / 60:.1f} min")
    for name in order:
        ended_marker(name).unlink(missing_ok=True)

    report = [PYTHON, str(BENCH / "report.py")] + (["--readme", str(Path(args.readme).resolve())] if args.readme else [])
    status = subprocess.run(report, cwd=BENCH, check=False).returncode
    failed = [r["name"] for r in steps if r.get("rc") != 0]
    if failed:
        log(f"not clean: {', '.join(failed)} (see bench/results/<name>.log)")
    return 1 if failed or status else 0


if __name__ == "__main__":
    sys.exit(main())
