"""What the benchmarks under bench/ share: writing their results, describing the machine, small helpers.

A benchmark NAME writes bench/results/NAME.json (its report, every raw
figure), NAME.md (the table it prints) and NAME.png (its plot) with
``write`` (``write_and_print`` at the end of a run), and reads the JSON back
with ``read`` for ``--report-only``. Its report describes the machine with
``now``, ``machine`` and ``load_average``; its table and its figure name that
machine with ``machine_line``, ``load_line`` and ``figure_label``, format
numbers with ``cell`` and end with ``note_lines``; ``pyplot`` and
``save_figure`` open and write the figure. Its ``headline(report)`` gives
its rows of the summary (bench/report.py), worded with ``measured``,
``count``, ``failed_of`` and ``span``: a figure the report lacks reads
``not measured``. The rest are helpers the benchmarks repeat: a log line,
signals around the cleanup, the collection link under .build. A local
haproxy (its binary, its runtime API, stopping it by pid) is
floatip_testing.haproxy's.

Just functions, no framework: the scripts import them from ``_results``
(they run from bench/, which Python puts first on the path). Standard
library and matplotlib only. Importing it also puts tests/ on the path, for
what the benchmarks share with the tests: the package floatip_testing (the
lab's containers, the real-client load, playbook runs, HAProxy).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "bench" / "results"
COLLECTIONS = ROOT / ".build" / "collections"


# --- the results ------------------------------------------------------------


def write(name: str, report: dict[str, Any], table: Callable[[dict[str, Any]], str],
          plot: Callable[[dict[str, Any], Path], None]) -> str:
    """Write NAME.json, NAME.md (``table(report)``) and NAME.png (``plot``) to bench/results; the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    text = table(report)
    (RESULTS / f"{name}.md").write_text(text, encoding="utf-8")
    plot(report, RESULTS / f"{name}.png")
    return text


def read(name: str) -> dict[str, Any]:
    """The report in bench/results/NAME.json."""
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def write_and_print(name: str, report: dict[str, Any], table: Callable[[dict[str, Any]], str],
                    plot: Callable[[dict[str, Any], Path], None], took: str) -> None:
    """``write``, then print the table and where the results went, with how long the run ``took``."""
    print(write(name, report, table, plot), end="")
    print(f"\nwritten: {RESULTS / f'{name}.json'}, {name}.md, {name}.png ({took})")


# --- the machine ------------------------------------------------------------


def now() -> str:
    """The date of a run: UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, kernel, architecture and Python of this machine, then the extra entries given."""
    return {"cores": os.cpu_count(), "kernel": platform.release(), "arch": platform.machine(),
            "python": platform.python_version(), **extra}


def machine_line(report: dict[str, Any]) -> str:
    """``2 cores, kernel 6.1.0, 2025-01-01T10:00:00+00:00``: the machine and the date in a table's header."""
    m = report["machine"]
    return f"{m['cores']} cores, kernel {m['kernel']}, {report['date']}"


def load_line(report: dict[str, Any]) -> str:
    """The load averages at the start and at the end of the run (``-`` when it did not end)."""
    m = report["machine"]
    return f"load average {m['load_start']} at the start, {m.get('load_end', '-')} at the end"


def figure_label(report: dict[str, Any]) -> str:
    """``2 cores, 2025-01-01``: the machine and the day in a figure's title or footer."""
    return f"{report['machine']['cores']} cores, {report['date'][:10]}"


# --- tables and figures -----------------------------------------------------


def cell(value: float | None, digits: int, suffix: str = "") -> str:
    """A number in a table: ``-`` when there is none."""
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def note_lines(items: list[str]) -> list[str]:
    """The Markdown lines of the notes below a table; none without a note."""
    return ["", "Notes:", "", *[f"- {item}" for item in items]] if items else []


def pyplot() -> Any:
    """matplotlib.pyplot, drawing to files only (no display)."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay the figure out, write it as a PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


# --- headline rows ----------------------------------------------------------

# The headline of a benchmark: ``headline(report)`` in its module, a list of
# rows (what was measured, the figure, the anchor it was measured against in
# the same run) built from the report alone, so that an old JSON serves too.
NOT_MEASURED = "not measured"


class NotMeasured(Exception):
    """The report holds no figure for this (an old JSON, a run that stopped early)."""


def measured(build: Callable[[], str], what: str = "") -> str:
    """``build()``, or ``WHAT not measured`` when the report lacks a figure it needs (a missing key, a None, NotMeasured)."""
    try:
        return build()
    except (NotMeasured, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return f"{what} {NOT_MEASURED}".strip()


def count(value: int) -> str:
    """A count in a sentence, with thousands separated: ``36,000``."""
    return f"{value:,}"


def failed_of(load: dict[str, Any]) -> str:
    """``0 failed of 2,703``: a client load's failed requests of all it sent (``failed`` -1: the load did not report)."""
    if load["failed"] < 0:
        raise NotMeasured
    return f"{count(load['failed'])} failed of {count(load['ok'] + load['failed'])}"


def span(low: float, high: float, digits: int) -> str:
    """``2.6-2.8``, or ``2.6`` when both round alike."""
    first, last = f"{low:.{digits}f}", f"{high:.{digits}f}"
    return first if first == last else f"{first}-{last}"


# --- small helpers ----------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Interrupted(Exception):
    """A signal asked the benchmark to stop: it cleans up and leaves."""


def interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def handle_signals(handler: Callable[[int, Any], None] = interrupt) -> None:
    """SIGTERM, SIGHUP and SIGINT to ``handler`` (by default: raise Interrupted): the benchmark cleans up and leaves."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, handler)


def molecule(scenario: str, action: str, timeout: float) -> float:
    """Run one molecule step of a scenario from the checkout; its wall time in seconds."""
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    log(f"molecule {action} -s {scenario}")
    began = time.monotonic()
    subprocess.run([str(ROOT / ".venv" / "bin" / "molecule"), action, "-s", scenario], cwd=ROOT, env=env, timeout=timeout,
                   check=True, stdout=subprocess.DEVNULL)
    return round(time.monotonic() - began, 1)


def ignore_signals() -> None:
    """SIGINT and SIGTERM ignored from now on, so that nothing interrupts the cleanup."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def link_collection() -> None:
    """The checkout as the collection floatip.ha under .build/collections, where ansible.cfg looks for it."""
    link = COLLECTIONS / "ansible_collections" / "floatip" / "ha"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(ROOT, link.parent), link)
