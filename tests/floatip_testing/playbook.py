"""ansible-playbook with the json callback: its report, with what a test asks first.

``run(...)`` returns the callback's report (plays, tasks, stats) plus
``rc``, ``failures`` (the message of every failed task, or of every failed
loop item) and ``changed`` (the sum over hosts). A run whose output is not
the callback's JSON (a syntax error, an unreachable inventory) raises
PlaybookError with the end of what it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class PlaybookError(RuntimeError):
    """ansible-playbook printed no report."""


def run(playbook: str | Path, inventory: str | Path, args: Sequence[str] = (), *, timeout: float = 600,
        cwd: str | Path | None = None, env: Mapping[str, str] | None = None, program: str = "ansible-playbook") -> dict:
    settings = {**(env if env is not None else os.environ), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    done = subprocess.run([program, "-i", str(inventory), str(playbook), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env=settings, cwd=cwd)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise PlaybookError(f"{playbook} (rc {done.returncode}) gave no report:\n{tail}") from exc
    report.update(rc=done.returncode, failures=failures(report),
                  changed=sum(stats["changed"] for stats in report["stats"].values()))
    return report


def failures(report: dict) -> list[str]:
    """The message of every failed task (of each failed item of a loop), one line each."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                # A failed loop reports each failed item's message inside.
                items = [each for each in result.get("results", []) if isinstance(each, dict)]
                for each in items or [result]:
                    if each.get("failed"):
                        # A probe that ran out of retries has no msg: say what it saw.
                        text = each.get("msg") or f"{task['task']['name']}: rc={each.get('rc')} {each.get('stdout', '')}"
                        found.append(" ".join(str(text).split()))
    return found
