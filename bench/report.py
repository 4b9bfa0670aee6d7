"""The benchmarks' summary: one table of their headline figures, each against its anchor, and every table and plot after it.

For each benchmark NAME of vip_layout, runtime_api, reload_under_load,
config_sync, rolling_maintenance and failover_gap, in that order, whose
bench/results/NAME.json exists, it imports bench/NAME.py and asks its
``headline(report)`` for its rows: what was measured, the figure, and the
anchor measured in the same run (a benchmark without ``headline`` yet is
left out of the table with a note). Nothing is measured here: it reads the
JSON the benchmarks wrote, old ones too.

Writes bench/results/report.md: a title, the machine and the date (those of
the newest report, and each benchmark's own date where they differ), the
run from bench/results/run.json when the orchestrator wrote one (its total
time, each step's seconds and exit code), the summary table, then each
benchmark's own NAME.md with its headings one level down and its plot. And
bench/results/report.json: the date, the machine, the run (or null), the
rows and the names of the reports found. With ``--readme PATH`` it also
puts a sentence on the machine and the summary table into PATH, between the
lines ``<!-- bench:begin -->`` and ``<!-- bench:end -->``, leaving every
other byte as it was; a file without those lines is left untouched.

Run: .venv/bin/python bench/report.py [--readme README.md]
Exit status: 0 when at least one report was found, 1 when none was, 2 when
the --readme file lacks the markers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from _results import RESULTS, cell, machine_line

NAMES = ("vip_layout", "runtime_api", "reload_under_load", "config_sync", "rolling_maintenance", "failover_gap")
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
HEADER = ["| what | figure | anchor, in the same run |", "|---|---|---|"]


class MarkersMissing(Exception):
    """The file to update lacks the lines that bound the benchmarks' table."""


# --- reading ----------------------------------------------------------------


def reports(results: Path) -> dict[str, dict[str, Any]]:
    """Every NAME.json of NAMES that exists, in that order."""
    return {name: json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
            for name in NAMES if (results / f"{name}.json").exists()}


def run_info(results: Path) -> dict[str, Any] | None:
    """The orchestrator's run.json (start, end, total seconds, steps), or None without one."""
    path = results / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def headlines(found: dict[str, dict[str, Any]]) -> tuple[list[dict[str, str]], list[str]]:
    """The rows of every benchmark's ``headline``, and a note for each one that gave none."""
    rows, notes = [], []
    for name, report in found.items():
        try:
            headline = getattr(importlib.import_module(name), "headline", None)
            if headline is None:
                notes.append(f"{name}: bench/{name}.py has no headline() yet; its figures are in its own section below")
                continue
            rows += [{"bench": name, "what": what, "figure": figure, "anchor": anchor} for what, figure, anchor in headline(report)]
        except Exception as exc:  # pylint: disable=broad-except  # one bench's fault leaves the others' rows
            notes.append(f"{name}: its headline failed ({type(exc).__name__}: {exc}); its figures are in its own section below")
    return rows, notes


# --- the machine and the run ------------------------------------------------


def dated(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The reports that say when and where they ran (vip_layout's JSON names neither)."""
    return {name: report for name, report in found.items() if "date" in report and isinstance(report.get("machine"), dict)}


def newest(found: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    with_date = dated(found)
    return max(with_date.values(), key=lambda report: report["date"]) if with_date else None


def machine_text(found: dict[str, dict[str, Any]]) -> str:
    """The newest report's machine and date, then each benchmark's own date where they differ."""
    latest = newest(found)
    if latest is None:
        return "No report says which machine it ran on or when."
    text = f"Machine and date: {machine_line(latest)} (the newest report)."
    dates = {name: report["date"] for name, report in dated(found).items()}
    if len(set(dates.values())) > 1:
        text += " Each benchmark's own date: " + ", ".join(f"{name} {date}" for name, date in dates.items())
        undated = [name for name in found if name not in dates]
        text += "".join(f", {name} (not dated)" for name in undated) + "."
    return text


def minutes(seconds: float | None) -> str:
    return "an unknown time" if seconds is None else f"{seconds / 60:.0f} min"


def run_lines(run: dict[str, Any] | None) -> list[str]:
    """The orchestrator's run: its total time, then each step's seconds and exit code; nothing without a run."""
    if not run:
        return []
    lines = [f"The run: {minutes(run.get('total_s'))} in all ({run.get('started', '?')} to {run.get('ended', '?')}).", "",
             "| step | s | rc | alongside |", "|---|---:|---:|---|"]
    for step in run.get("steps", []):
        alongside = ", ".join(step.get("concurrent_with") or []) or "-"
        lines.append(f"| {step.get('name', '?')} | {cell(step.get('seconds'), 0)} | {'-' if step.get('rc') is None else step['rc']} | {alongside} |")
    return lines + [""]


# --- writing ----------------------------------------------------------------


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def table_lines(rows: list[dict[str, str]]) -> list[str]:
    return HEADER + [f"| {escape(row['what'])} | {escape(row['figure'])} | {escape(row['anchor'])} |" for row in rows]


def demoted(markdown: str) -> str:
    """The Markdown with every heading one level down (``#`` to ``##``), fenced code left as it is."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        lines.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(lines)


def markdown(found: dict[str, dict[str, Any]], rows: list[dict[str, str]], notes: list[str], run: dict[str, Any] | None,
             results: Path) -> str:
    lines = ["# Benchmarks: the summary", "", machine_text(found), "", *run_lines(run), *table_lines(rows)]
    lines += ["", "Notes:", "", *[f"- {note}" for note in notes]] if notes else []
    for name in found:
        section = results / f"{name}.md"
        lines += ["", demoted(section.read_text(encoding="utf-8")).rstrip("\n") if section.exists() else f"## {name}\n\n(no {name}.md)"]
        if (results / f"{name}.png").exists():
            lines += ["", f"![{name}]({name}.png)"]
    return "\n".join(lines) + "\n"


def summary_json(found: dict[str, dict[str, Any]], rows: list[dict[str, str]], notes: list[str], run: dict[str, Any] | None) -> dict[str, Any]:
    latest = newest(found)
    return {"date": latest["date"] if latest else None, "machine": latest["machine"] if latest else None, "run": run, "rows": rows,
            "reports": list(found), "dates": {name: report["date"] for name, report in dated(found).items()}, "notes": notes}


def readme_block(found: dict[str, dict[str, Any]], rows: list[dict[str, str]], run: dict[str, Any] | None) -> list[str]:
    """What goes between the markers: the machine and the run in a sentence, then the summary table."""
    latest = newest(found)
    if latest is None:
        where = "The latest figures"
    else:
        days = sorted({report["date"][:10] for report in dated(found).values()})
        when = f"on {days[0]}" if len(days) == 1 else f"from {days[0]} to {days[-1]}"
        where = f"The latest figures, on a machine with {latest['machine']['cores']} cores and kernel {latest['machine']['kernel']}, {when}"
    took = f"; the whole run took {minutes(run['total_s'])}" if run and run.get("total_s") is not None else ""
    return [f"{where}{took} (`bench/report.py`; every table and plot in `bench/results/report.md`):", "", *table_lines(rows)]


def replace_between(text: str, block: list[str]) -> str:
    """The text with the lines between the BEGIN and END marker lines replaced by the block's; the rest kept to the byte."""
    begin = re.search(rf"^{re.escape(BEGIN)}[ \t]*(\r?\n)", text, re.MULTILINE)
    end = re.search(rf"^{re.escape(END)}[ \t]*\r?$", text[begin.end():], re.MULTILINE) if begin else None
    if begin is None or end is None:
        raise MarkersMissing(f"a line {BEGIN} and, after it, a line {END}")
    newline = begin.group(1)
    return text[:begin.end()] + newline.join(block) + newline + text[begin.end() + end.start():]


def update_readme(path: Path, block: list[str]) -> None:
    """Put the block between the markers of the file at path; MarkersMissing (the file untouched) without them."""
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    try:
        updated = replace_between(text, block)
    except MarkersMissing as exc:
        raise MarkersMissing(f"{path}: no place for the benchmarks' table: it needs {exc}") from None
    if updated != text:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(updated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, help=f"also put the summary table between {BEGIN} and {END} in this file")
    args = parser.parse_args(argv)
    results = RESULTS
    found = reports(results)
    if not found:
        print(f"no report in {results}: none of {', '.join(f'{name}.json' for name in NAMES)} exists; run the benchmarks first "
              "(make bench)", file=sys.stderr)
        return 1
    rows, notes = headlines(found)
    run = run_info(results)
    (results / "report.md").write_text(markdown(found, rows, notes, run, results), encoding="utf-8")
    (results / "report.json").write_text(json.dumps(summary_json(found, rows, notes, run), indent=1) + "\n", encoding="utf-8")
    print("\n".join(table_lines(rows) + [f"- {note}" for note in notes]))
    missing = [name for name in NAMES if name not in found]
    print(f"\nwritten: {results / 'report.md'}, report.json ({len(found)} reports{'; missing: ' + ', '.join(missing) if missing else ''})")
    if args.readme is not None:
        try:
            update_readme(args.readme, readme_block(found, rows, run))
        except (MarkersMissing, OSError) as exc:
            print(f"report: {exc}", file=sys.stderr)
            return 2
        print(f"the summary table is in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
