"""The real-client load on a lab client, and the mail sink that tells what arrived.

``running(client, vips, ...)`` copies clients/load.py into the client
container, runs it for the length of a ``with`` block and fills the yielded
dict with its report when the block ends (see clients/load.py for the
fields). ``undelivered(world, subjects, timeout)`` waits for the messages
the cluster accepted to reach the world's sink.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from floatip_testing import ROOT, client_script
from floatip_testing.lab import copy_to, docker, on

SCRIPT = "/root/floatip-load.py"
STOP = "/root/floatip-load.stop"
REPORT = "/root/floatip-load.json"
# Where the world's mail sink writes what arrived, as lab/mail_sink.yml says.
SINK = yaml.safe_load((ROOT / "lab" / "mail_sink.yml").read_text(encoding="utf-8"))[0]["vars"]["mail_sink_log"]


@contextmanager
def running(client: str, vips: list[str], *, port: int = 80, mail_every: int = 3, run: str = "load",
            retry: bool = False, timeout: float = 5.0, settle: float = 1.0) -> Iterator[dict]:
    """The load from ``client`` on every VIP while the block runs (and
    ``settle`` seconds before and after it, so that the block's events fall
    inside the load); its report fills the yielded dict on the way out.

    Without ``retry`` it is a client that does not retry; with it, one that
    retries once as real HTTP and mail clients do (an extra figure, never
    the one that says nothing failed)."""
    copy_to(client, client_script("load.py"), SCRIPT)
    on(client, f"rm -f {STOP} {REPORT}")
    options = ["--port", str(port), "--mail-every", str(mail_every), "--run", run, "--timeout", str(timeout)]
    docker("exec", "-d", client, "python3", SCRIPT, STOP, REPORT, *vips, *options, *(["--retry"] if retry else []))
    result: dict = {}
    began = time.monotonic()
    try:
        time.sleep(settle)
        yield result
        time.sleep(settle)
    finally:
        on(client, f"touch {STOP}")
        deadline = time.monotonic() + 2 * timeout + 30
        while not (out := on(client, f"cat {REPORT} 2>/dev/null || true")).strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"the load on {client} did not report within {2 * timeout + 30:.0f} s of its stop")
            time.sleep(0.3)
        result.update(json.loads(out), seconds=round(time.monotonic() - began, 1))


def arrived(world: str) -> set[str]:
    """The subjects of every message the world's sink has received."""
    lines = on(world, f"cat {SINK} 2>/dev/null || true").splitlines()
    return {json.loads(line)["subject"] for line in lines if line.strip()}


def undelivered(world: str, subjects: list[str], timeout: float) -> set[str]:
    """The subjects that have not reached the world's sink within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        missing = set(subjects) - arrived(world)
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)
