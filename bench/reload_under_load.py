"""Benchmark: requests a client loses while HAProxy reloads once a second under load.

Two haproxy processes on loopback, from configurations in a temporary
directory. The backend one (a plain daemon, never reloaded) answers HTTP on
two ports with ``http-request return status 200 ... string ok``: the two
servers. The front one runs as the role runs it: master-worker (``-W -D -p
PIDFILE -S front-master.sock``, Debian's unit has ``-Ws ... -S``), an admin stats
socket with ``expose-fd listeners`` (seamless reload), the role's defaults
(redispatch, 3 retries, server-state-file loaded from the global file), and a
frontend on 127.0.0.1 balancing over the two servers, health-checked.

The load comes from --workers processes of this script (threads in each),
together --rate requests a second on a fixed schedule: each a new TCP
connection, ``GET / HTTP/1.1`` with ``Connection: close``, 2 s for the whole
request. An answer counts when it is status 200 with the body ``ok``; the
others are counted by kind: refused, reset, timeout, empty (closed without an
answer), status_<code>, or the OS error. First an anchor of --anchor seconds
without reloads, then --duration seconds with a reload every second done as
the role's systemd reload does it (ExecReload): ``haproxy -c``, the servers'
states saved to the server-state-file through the admin socket, then ``kill
-USR2`` to the master. Before each reload the master CLI's ``show proc`` is
read, to check that every reload made a new worker. Target: zero failed
requests. ``headline(report)`` gives its row of bench/report.py's summary
from the JSON: failed of all requests during the reloads, against the anchor.

Run: .venv/bin/python bench/reload_under_load.py [--rate 600 --workers 2 --duration 60 --anchor 10]
     .venv/bin/python bench/reload_under_load.py --report-only   (table and plot again from the JSON)
Writes bench/results/reload_under_load.json (per second and per phase: every
count by kind, latencies; every failed request; every reload),
reload_under_load.md (the table it prints) and reload_under_load.png (requests
a second and failures over time, reloads marked). Bounded: about 90 s; load
workers stop by themselves and every process is stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _results import (NotMeasured, cell, count, figure_label, handle_signals, ignore_signals, load_average, load_line, log, machine,
                      machine_line, measured, note_lines, now, pyplot, read, save_figure, write, write_and_print)
from floatip_testing.haproxy import HAProxyError, LocalHAProxy, free_port, haproxy_binary, haproxy_version, query, socket_dir

NAME = "reload_under_load"

MIN_RATE = 500.0  # the load asked for, requests a second at least
REQUEST_TIMEOUT = 2.0  # seconds for a whole request: connect, send, answer
THREADS = 96  # per load worker: requests in flight at most
LATE_MS = 100.0  # a request started this late against its schedule: the load generator lagged
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: floatip-bench\r\nConnection: close\r\n\r\n"
STATUS_KINDS = ("refused", "reset", "timeout", "empty")

BACKEND_CONFIG = """\
global
    stats socket {dir}/backend.sock mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend app1
    bind 127.0.0.1:{app1}
    http-request return status 200 content-type text/plain string ok

frontend app2
    bind 127.0.0.1:{app2}
    http-request return status 200 content-type text/plain string ok
"""

# The role's global and defaults sections (roles/haproxy/templates/haproxy.cfg.j2)
# as far as a reload is concerned, without logging, chroot and users.
FRONT_CONFIG = """\
global
    maxconn 4096
    stats socket {dir}/admin.sock mode 600 level admin expose-fd listeners
    stats timeout 30s
    server-state-file {dir}/server-state

defaults
    mode http
    option dontlognull
    option redispatch
    option contstats
    retries 3
    maxconn 4096
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout check 5s
    load-server-state-from-file global

frontend fe_web
    bind 127.0.0.1:{front}
    default_backend be_web

backend be_web
    balance roundrobin
    option allbackups
    option httpchk
    http-check send meth HEAD uri / ver HTTP/1.1 hdr Host bench
    http-check expect status 200-399
    default-server inter 1000ms fall 3 rise 2
    server app1 127.0.0.1:{app1} check
    server app2 127.0.0.1:{app2} check
"""


class BenchError(Exception):
    """The bench cannot measure: a process did not start, a reload did not happen, a worker failed."""


def on_signal(signum: int, _frame: object) -> None:
    raise BenchError(f"interrupted by signal {signal.Signals(signum).name}")


# --- the load (in each worker process) --------------------------------------


def one_request(port: int, timeout: float) -> str:
    """ok, or what went wrong: refused, reset, timeout, empty, bad_answer, status_<code>, or the errno's name."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(REQUEST)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, f"oserror_{exc.errno}")
    if not data:
        return "empty"
    head, end, body = data.partition(b"\r\n\r\n")
    words = head.split(b" ", 2)
    if not end or len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        return "bad_answer"
    if words[1] != b"200":
        return f"status_{words[1].decode()}"
    return "ok" if body == b"ok" else "bad_answer"


def load(spec: dict[str, Any]) -> list[list[Any]]:
    """Requests on the schedule of the spec; per request [start s, latency ms, kind, late ms] from spec start."""
    port, rate, start = spec["port"], spec["rate"], spec["start"]
    count = int(rate * spec["duration"])
    phase = spec["index"] / spec["workers"]  # the workers' schedules interleave
    records: list[list[Any]] = []
    lock = threading.Lock()
    issued = iter(range(count))

    def run() -> None:
        while True:
            with lock:
                number = next(issued, None)
            if number is None:
                return
            due = start + (number + phase) / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.monotonic()
            kind = one_request(port, spec["timeout"])
            ended = time.monotonic()
            records.append([round(began - start, 4), round((ended - began) * 1000, 2), kind, round((began - due) * 1000, 1)])

    threads = [threading.Thread(target=run, name=f"load-{index}", daemon=True) for index in range(spec["threads"])]
    for thread in threads:
        thread.start()
    # Every request ends within its timeout; the join is bounded all the same.
    deadline = start + spec["duration"] + spec["timeout"] + 5
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return records


def worker_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    records = load(spec)
    sys.stdout.write(json.dumps(records, separators=(",", ":")))
    sys.stdout.flush()
    # Threads still stuck (none should be) must not hold the process.
    os._exit(0)  # pylint: disable=protected-access


# --- processes --------------------------------------------------------------


def get_ok(port: int) -> bool:
    return one_request(port, 1.0) == "ok"


def wait_until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)


class Reloader(threading.Thread):
    """Reloads the front haproxy every second, as the role's ExecReload lines do; records each reload."""

    def __init__(self, front: LocalHAProxy, admin_socket: str, state_file: Path, start: float, count: int) -> None:
        super().__init__(daemon=True)
        self.front = front
        self.admin_socket = admin_socket
        self.state_file = state_file
        self.start_at = start
        self.count = count
        self.reloads: list[dict[str, Any]] = []
        self.error: str | None = None
        self.halt = threading.Event()

    def save_state(self) -> None:
        """haproxy-save-state: show servers state to the server-state-file, only when it is a state."""
        text = query(self.admin_socket, "show servers state")
        if not text.split("\n", 1)[0].strip().isdigit():
            raise BenchError(f"show servers state answered {text[:200]!r}")
        staged = self.state_file.with_suffix(".new")
        staged.write_text(text, encoding="utf-8")
        staged.replace(self.state_file)

    def run(self) -> None:
        try:
            for number in range(self.count):
                # Half a second into each second of the phase.
                if self.halt.wait(max(self.start_at + number + 0.5 - time.monotonic(), 0.0)):
                    return
                record: dict[str, Any] = {"number": number + 1}
                before = time.monotonic()
                procs = self.front.show_proc()
                record["workers_before"] = procs["workers"]
                record["old_workers_before"] = len(procs["old_workers"])
                record["master_reloads_before"] = procs["reloads"]
                self.front.check_config()
                record["check_ms"] = round((time.monotonic() - before) * 1000, 1)
                saving = time.monotonic()
                self.save_state()
                record["save_ms"] = round((time.monotonic() - saving) * 1000, 1)
                self.front.reload()
                record["t_s"] = round(time.monotonic() - self.start_at, 4)
                self.reloads.append(record)
        except (BenchError, HAProxyError, OSError, subprocess.SubprocessError) as exc:
            self.error = str(exc)


# --- one phase --------------------------------------------------------------


def run_phase(name: str, port: int, args: argparse.Namespace, duration: float, reload: dict[str, Any] | None,
              processes: list[subprocess.Popen[str]]) -> dict[str, Any]:
    """The load for duration seconds (with reloads when reload holds front, socket and state file); its records."""
    start = time.monotonic() + 1.0  # the workers start together
    specs = [{"port": port, "rate": args.rate / args.workers, "start": start, "duration": duration,
              "timeout": REQUEST_TIMEOUT, "threads": THREADS, "index": i, "workers": args.workers}
             for i in range(args.workers)]
    for spec in specs:
        processes.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reloader = None
    if reload is not None:
        reloader = Reloader(reload["front"], reload["socket"], reload["state_file"], start, int(duration))
        reloader.start()
    log(f"{name}: {args.rate:.0f} requests a second for {duration:.0f} s"
        + (", a reload every second" if reloader else ", no reload"))
    records: list[list[Any]] = []
    for proc in processes[-len(specs):]:
        try:
            out, err = proc.communicate(timeout=duration + REQUEST_TIMEOUT + 20)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{name}: a load worker did not finish in time") from None
        if proc.returncode != 0:
            raise BenchError(f"{name}: a load worker failed (rc {proc.returncode}): {err.strip()[-500:]}")
        records.extend(json.loads(out))
    phase: dict[str, Any] = {"name": name, "duration_s": duration, "start_monotonic": round(start, 4)}
    if reloader is not None:
        reloader.halt.set()
        reloader.join(35)
        if reloader.error:
            raise BenchError(f"{name}: reload failed: {reloader.error}")
        phase["reloads"] = reloader.reloads
    records.sort()
    phase.update(aggregate(records, duration, phase.get("reloads", [])))
    return phase


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=1000, method="inclusive")[int(pct * 10) - 1], 2)


def aggregate(records: list[list[Any]], duration: float, reloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase and per second: requests, answers, failures by kind, latencies; every failure with its reload."""
    seconds = int(duration)
    # A request of the last second that started a little late stays in it.
    per_second = [{"second": s, "started": 0, "ok": 0, "failed": {}, "latencies": []} for s in range(seconds)]
    kinds: Counter[str] = Counter()
    latencies = []
    failures = []
    instants = [r["t_s"] for r in reloads]
    for began, latency, kind, late in records:
        slot = per_second[min(max(int(began), 0), seconds - 1)]
        slot["started"] += 1
        kinds[kind] += 1
        if kind == "ok":
            slot["ok"] += 1
            slot["latencies"].append(latency)
            latencies.append(latency)
        else:
            slot["failed"][kind] = slot["failed"].get(kind, 0) + 1
            last = max((t for t in instants if t <= began), default=None)
            failures.append({"t_s": began, "latency_ms": latency, "kind": kind, "late_ms": late,
                             "since_reload_ms": None if last is None else round((began - last) * 1000, 1)})
    for slot in per_second:
        values = sorted(slot.pop("latencies"))
        slot["p50_ms"] = percentile(values, 50)
        slot["p99_ms"] = percentile(values, 99)
        slot["max_ms"] = values[-1] if values else None
    latencies.sort()
    lateness = [r[3] for r in records]
    total = len(records)
    failed = total - kinds["ok"]
    full = [slot["started"] for slot in per_second]
    return {
        "requests": total,
        "ok": kinds["ok"],
        "failed": failed,
        "failed_pct": round(100 * failed / total, 4) if total else None,
        "failed_by_kind": {k: v for k, v in sorted(kinds.items()) if k != "ok"},
        "rate_achieved": round(total / duration, 1),
        "rate_min_per_second": min(full) if full else 0,
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                       "p999": percentile(latencies, 99.9), "max": latencies[-1] if latencies else None},
        "late_requests": sum(1 for late in lateness if late > LATE_MS),
        "max_late_ms": max(lateness) if lateness else None,
        "per_second": per_second,
        "failures": failures,
    }


# --- the report -------------------------------------------------------------


def kind_cells(phase: dict[str, Any]) -> list[str]:
    kinds = phase["failed_by_kind"]
    cells = [str(kinds.get(kind, 0)) for kind in STATUS_KINDS]
    cells.append(str(sum(n for k, n in kinds.items() if k.startswith("status_"))))
    cells.append(str(sum(n for k, n in kinds.items() if k not in STATUS_KINDS and not k.startswith("status_"))))
    return cells


def table(report: dict[str, Any]) -> str:
    method = report["method"]
    lines = [
        "# reload_under_load: requests lost while HAProxy reloads once a second",
        "",
        f"{report['haproxy']}, master-worker with `expose-fd listeners`, on loopback; 2 servers on a second haproxy",
        f"(not reloaded). Load: {method['rate']:.0f} requests a second from {method['workers']} processes, each a new",
        f"connection, HTTP/1.1 GET with Connection: close, {REQUEST_TIMEOUT:.0f} s timeout. Reload as the role's",
        "systemd unit does it: `haproxy -c`, servers' states saved, `kill -USR2` to the master. The anchor: the same",
        "load without reloads. Non-200: an answer with another status; other: any other error.",
        f"{machine_line(report)}, {load_line(report)}; total {report.get('total_s', 0):.0f} s. Target: zero failed requests.",
        "",
        "| phase | s | reloads | requests | req/s achieved (min in a second) | failed | failed % | refused | reset | "
        "timeout | empty | non-200 | other | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in report["phases"]:
        lat = phase["latency_ms"]
        lines.append(
            f"| {phase['name']} | {phase['duration_s']:.0f} | {len(phase.get('reloads', []))} | {phase['requests']} | "
            f"{phase['rate_achieved']:.0f} ({phase['rate_min_per_second']}) | {phase['failed']} | "
            f"{cell(phase['failed_pct'], 3)} | {' | '.join(kind_cells(phase))} | {cell(lat['p50'], 1)} | "
            f"{cell(lat['p99'], 1)} | {cell(lat['max'], 1)} |")
    reload_phase = next((p for p in report["phases"] if p.get("reloads")), None)
    if reload_phase is not None:
        met = reload_phase["failed"] == 0
        lines += ["", f"Target (zero failed requests during reloads): {'met' if met else 'MISSED'}, "
                  f"{reload_phase['failed']} of {reload_phase['requests']} failed over "
                  f"{len(reload_phase['reloads'])} reloads."]
    return "\n".join(lines + note_lines(report.get("notes", []))) + "\n"


def headline(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary's row: failed of all requests while reloading, against the phase without reloads."""
    phases = report.get("phases", [])
    method = report.get("method", {})

    def failed(reloads: bool) -> str:
        phase = next((p for p in phases if bool(p.get("reloads")) == reloads), None)
        if phase is None:
            raise NotMeasured
        return f"{count(phase['failed'])} {'failed ' if reloads else ''}of {count(phase['requests'])}"

    what = "HAProxy reloaded every second under load"
    if "reload_s" in method and "rate" in method:
        what = f"HAProxy reloaded every second for {method['reload_s']:.0f} s under {method['rate']:.0f} requests/s"
    return [(what, measured(lambda: failed(True)), f"no reload: {measured(lambda: failed(False))}")]


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    phases = report["phases"]
    if not phases:
        return
    origin = phases[0]["start_monotonic"]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(12, 8), sharex=True,
                                              gridspec_kw={"height_ratios": [3, 2, 2]})
    colours = {"refused": "tab:red", "reset": "tab:purple", "timeout": "tab:brown", "empty": "tab:pink"}
    seen: set[str] = set()
    for phase in phases:
        offset = phase["start_monotonic"] - origin
        xs = [offset + slot["second"] + 0.5 for slot in phase["per_second"]]
        top.plot(xs, [slot["started"] for slot in phase["per_second"]], color="tab:blue", linewidth=1.2,
                 label="requests started / s" if "started" not in seen else None)
        top.plot(xs, [slot["ok"] for slot in phase["per_second"]], color="tab:green", linewidth=1, linestyle="--",
                 label="answered 200 ok / s" if "ok" not in seen else None)
        for key, style in (("p99_ms", "-"), ("max_ms", ":")):
            middle.plot(xs, [slot[key] for slot in phase["per_second"]], color="tab:blue", linestyle=style, linewidth=1,
                        label=f"{key[:-3]} of the answers started in the second" if key not in seen else None)
            seen.add(key)
        seen.update(("started", "ok"))
        top.axvspan(offset, offset + phase["duration_s"], color="grey" if not phase.get("reloads") else "white",
                    alpha=0.12, zorder=0)
        top.text(offset + 0.3, 0.02, phase["name"], transform=top.get_xaxis_transform(), fontsize=8, color="grey")
        bottoms = [0] * len(xs)
        kinds = sorted({k for slot in phase["per_second"] for k in slot["failed"]})
        for kind in kinds:
            heights = [slot["failed"].get(kind, 0) for slot in phase["per_second"]]
            bottom.bar(xs, heights, width=0.9, bottom=bottoms, color=colours.get(kind, "tab:orange"),
                       label=kind if kind not in seen else None)
            seen.add(kind)
            bottoms = [b + h for b, h in zip(bottoms, heights)]
        for number, reload in enumerate(phase.get("reloads", [])):
            for ax in (top, middle, bottom):
                ax.axvline(offset + reload["t_s"], color="tab:red", alpha=0.25, linewidth=0.7,
                           label="reload (kill -USR2)" if ax is top and number == 0 else None)
    top.axhline(MIN_RATE, color="grey", linestyle=":", linewidth=1, label=f"{MIN_RATE:.0f} / s asked at least")
    top.set_ylabel("requests per second")
    top.set_ylim(bottom=0)
    top.legend(fontsize=8, loc="lower right")
    top.grid(alpha=0.3)
    middle.set_ylabel("latency ms (log)")
    middle.set_yscale("log")
    middle.legend(fontsize=8, loc="upper right")
    middle.grid(alpha=0.3)
    bottom.set_ylabel("failed requests per second")
    bottom.set_xlabel("seconds since the anchor's start")
    if not any(p["failed"] for p in phases):
        bottom.text(0.5, 0.5, "no failed request", transform=bottom.transAxes, ha="center", va="center", color="grey")
        bottom.set_ylim(0, 1)
    else:
        bottom.legend(fontsize=8, loc="upper right")
    bottom.grid(alpha=0.3)
    reloaded = next((p for p in phases if p.get("reloads")), phases[-1])
    fig.suptitle(f"HAProxy reloaded every second under {report['method']['rate']:.0f} requests/s: "
                 f"{reloaded['failed']} of {reloaded['requests']} failed ({figure_label(report)})")
    save_figure(fig, path)


# --- main -------------------------------------------------------------------


def check_reloads(report: dict[str, Any], phase: dict[str, Any], front: LocalHAProxy) -> None:
    """Every reload made a new worker: the master counts them and each one's worker pid is new."""
    reloads = phase["reloads"]
    after = front.show_proc()
    report["show_proc_after"] = after
    seen = [tuple(r["workers_before"]) for r in reloads] + [tuple(after["workers"])]
    new_workers = sum(1 for before, then in zip(seen, seen[1:]) if before != then)
    phase["new_workers"] = new_workers
    first = reloads[0]["master_reloads_before"] if reloads else None
    if first is not None and after["reloads"] is not None:
        phase["master_reloads"] = after["reloads"] - first
    if new_workers != len(reloads) or phase.get("master_reloads", len(reloads)) != len(reloads):
        raise BenchError(f"{len(reloads)} reloads sent, but the master counts {phase.get('master_reloads')} and "
                         f"{new_workers} new workers were seen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=600.0, help="requests a second, all load workers together")
    parser.add_argument("--workers", type=int, default=2, help="load worker processes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load with a reload every second")
    parser.add_argument("--anchor", type=float, default=10.0, help="seconds of load without reloads, first")
    parser.add_argument("--report-only", action="store_true", help="write the table and plot from the JSON again")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker)
    if args.report_only:
        print(write(NAME, read(NAME), table, plot), end="")
        return 0
    handle_signals(on_signal)

    began = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": NAME,
        "date": now(),
        "machine": machine(load_start=load_average()),
        "method": {"rate": args.rate, "workers": args.workers, "threads_per_worker": THREADS,
                   "request_timeout_s": REQUEST_TIMEOUT, "anchor_s": args.anchor, "reload_s": args.duration,
                   "reload_every_s": 1.0, "late_ms": LATE_MS},
        "phases": [],
        "notes": [],
        "complete": False,
    }
    status = 0
    directory = socket_dir("floatip-reload-")
    processes: list[subprocess.Popen[str]] = []
    daemons: list[LocalHAProxy] = []
    try:
        binary = haproxy_binary()
        version = haproxy_version(binary)
        report["haproxy"] = f"HAProxy {version}" if version else "HAProxy"
        ports = {"front": free_port(), "app1": free_port(), "app2": free_port()}
        report["ports"] = ports
        backend = LocalHAProxy(directory, BACKEND_CONFIG.format(dir=directory, **ports), name="backend",
                               admin_socket="backend.sock", binary=binary)
        front = LocalHAProxy(directory, FRONT_CONFIG.format(dir=directory, **ports), name="front", master=True,
                             binary=binary)
        daemons += [backend, front]
        backend.start()
        wait_until(lambda: get_ok(ports["app1"]) and get_ok(ports["app2"]), "the backend haproxy did not answer")
        front.start()
        wait_until(lambda: get_ok(ports["front"]), "the front haproxy did not answer")
        log(f"reload_under_load: {report['haproxy']}, front master pid {front.pid}, port {ports['front']}")

        report["phases"].append(run_phase("anchor (no reload)", ports["front"], args, args.anchor, None, processes))
        reload = {"front": front, "socket": front.admin, "state_file": directory / "server-state"}
        phase = run_phase("reload every second", ports["front"], args, args.duration, reload, processes)
        report["phases"].append(phase)
        check_reloads(report, phase, front)
        for entry in report["phases"]:
            if entry["rate_achieved"] < MIN_RATE:
                report["notes"].append(f"{entry['name']}: the load reached {entry['rate_achieved']:.0f} requests a "
                                       f"second, under the {MIN_RATE:.0f} asked")
            if entry["late_requests"]:
                report["notes"].append(f"{entry['name']}: {entry['late_requests']} requests started more than "
                                       f"{LATE_MS:.0f} ms after their slot (up to {entry['max_late_ms']:.0f} ms): "
                                       "the load generator lagged")
        report["complete"] = True
    except (BenchError, HAProxyError, OSError, ValueError, subprocess.SubprocessError) as exc:
        status = 1
        report["notes"].append(f"FAILED: {exc}")
        log(f"FAILED: {exc}")
    finally:
        ignore_signals()
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for daemon in reversed(daemons):
            stuck = daemon.stop()
            if stuck:
                status = 1
                report["notes"].append(f"processes {stuck} of {daemon.config.name} would not stop")
        shutil.rmtree(directory, ignore_errors=True)
    report.setdefault("haproxy", "HAProxy")
    report["machine"]["load_end"] = load_average()
    report["total_s"] = round(time.monotonic() - began, 1)
    write_and_print(NAME, report, table, plot, f"{report['total_s']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
