"""Runs on a lab client: the longest stretch a VIP leaves a client unanswered.

    python3 - ADDRESS PORT BEFORE AFTER [options] < gap_probe.py

(bench/failover_gap.py runs it so, through ``docker exec -i``.) Opens a new
TCP connection to ADDRESS:PORT every ``--interval`` seconds (10 ms), each
with its own ``--timeout``, without waiting for the ones still open, so the
cadence holds while the VIP does not answer. Each node's whoami service
answers with the node's name, so every request ends as an answer (a node's
name) or a failure (timeout, refused, unreachable...).

Prints one JSON object per line:

- ``{"event": "ready", ...}`` once BEFORE has answered every request for
  ``--ready`` seconds: from then on the caller may break BEFORE;
- ``{"event": "done", ...}`` when AFTER has answered every request for
  ``--settle`` seconds, or at ``--deadline`` seconds after the start
  (``settled`` false). Its ``gap_ms`` is the longest time between the starts
  of two answered requests in a row, from the ready request on: what a client
  retrying every 10 ms waits, at 10 ms resolution (10 when nothing failed).
  ``gaps`` lists every such stretch longer than three intervals as [from, to,
  the node that answered at its end] (to null: still open at the end), so
  the caller can pick the one around the failure it caused. Times are
  CLOCK_MONOTONIC seconds, which containers share with their host.

Standard library only: the client has Debian's python3 and nothing else.
"""

from __future__ import annotations

import argparse
import errno
import json
import selectors
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

MAX_RUNS = 60  # outcome runs kept in the report
MAX_GAPS = 200  # stretches without an answer kept in the report


@dataclass
class Request:
    start: float
    end: float | None = None
    answer: str | None = None  # the node's name when answered
    error: str | None = None  # why not, when not
    data: bytes = b""

    @property
    def answered(self) -> bool:
        return self.answer is not None


@dataclass
class Tally:
    """Reads the requests in the order they were started."""

    before: str
    after: str
    ready_for: float
    settle_for: float
    ready_index: int | None = None
    settled_at: float | None = None
    streak_node: str | None = None
    streak_start: float = 0.0
    last_answered: float | None = None
    gap: float = 0.0
    gap_from: float | None = None
    gap_to: float | None = None
    gap_to_answer: str | None = None
    first_failure: float | None = None
    first_after: float | None = None
    answers: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    runs: list = field(default_factory=list)
    gaps: list = field(default_factory=list)  # [from, to, answer after] of every stretch > min_gap
    min_gap: float = 0.03

    def add(self, index: int, req: Request) -> None:
        outcome = req.answer if req.answered else "-"
        if self.runs and self.runs[-1][0] == outcome:
            self.runs[-1][1] += 1
        else:
            self.runs.append([outcome, 1])
        if req.answered:
            self.answers[req.answer] += 1
        else:
            self.errors[req.error] += 1
        # A streak: requests in a row answered by the same node.
        if req.answered and req.answer == self.streak_node:
            pass
        else:
            self.streak_node = req.answer
            self.streak_start = req.start
        if self.ready_index is None:
            if self.streak_node == self.before and req.start - self.streak_start >= self.ready_for:
                self.ready_index = index
                self.last_answered = req.start
            return
        if not req.answered:
            if self.first_failure is None:
                self.first_failure = req.start
            return
        if req.answer == self.after and self.first_after is None:
            self.first_after = req.start
        if self.last_answered is not None and req.start - self.last_answered > self.min_gap and len(self.gaps) < MAX_GAPS:
            self.gaps.append([round(self.last_answered, 4), round(req.start, 4), req.answer])
        if self.last_answered is not None and req.start - self.last_answered > self.gap:
            self.gap = req.start - self.last_answered
            self.gap_from, self.gap_to, self.gap_to_answer = self.last_answered, req.start, req.answer
        self.last_answered = req.start
        if self.streak_node == self.after and req.start - self.streak_start >= self.settle_for:
            self.settled_at = req.start


def finish(req: Request, now: float, error: str | None = None) -> None:
    req.end = now
    if error is None:
        text = req.data.decode(errors="replace").strip()
        if text:
            req.answer = text.split()[0]
        else:
            req.error = "empty"
    else:
        req.error = error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("before", help="the node that answers first (the one about to fail)")
    parser.add_argument("after", help="the node expected to answer after the failure")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=0.5, help="per request")
    parser.add_argument("--ready", type=float, default=0.3)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()

    tally = Tally(args.before, args.after, args.ready, args.settle, min_gap=3 * args.interval)
    sel = selectors.DefaultSelector()
    requests: list[Request] = []
    open_socks: dict[socket.socket, Request] = {}
    cursor = 0  # requests before this index are finished and tallied
    started = time.monotonic()
    next_start = started
    late = 0.0  # how far the cadence slipped at worst
    ready_sent = False

    def close(sock: socket.socket) -> None:
        sel.unregister(sock)
        del open_socks[sock]
        sock.close()

    while True:
        wait = next_start - time.monotonic()
        if open_socks:
            wait = min(wait, min(req.start for req in open_socks.values()) + args.timeout - time.monotonic())
        # Answers first: after a stall of this process (a busy machine), what
        # arrived meanwhile counts as answered, not as timed out.
        for key, _events in sel.select(max(wait, 0)):
            sock = key.fileobj
            req = open_socks[sock]
            try:
                chunk = sock.recv(256)
            except OSError as exc:
                finish(req, time.monotonic(), errno.errorcode.get(exc.errno or 0, exc.__class__.__name__))
                close(sock)
                continue
            req.data += chunk
            if not chunk or b"\n" in req.data:
                finish(req, time.monotonic())
                close(sock)
        now = time.monotonic()
        if now - started > args.deadline:
            break
        if now >= next_start:
            late = max(late, now - next_start)
            req = Request(start=now)
            requests.append(req)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((args.address, args.port))
            if code in (0, errno.EINPROGRESS):
                open_socks[sock] = req
                sel.register(sock, selectors.EVENT_READ)
            else:
                finish(req, now, errno.errorcode.get(code, str(code)))
                sock.close()
            next_start += args.interval
            if next_start < now:  # fell behind: skip the missed ticks
                next_start = now + args.interval
        # Requests past their timeout fail.
        for sock, req in list(open_socks.items()):
            if now - req.start >= args.timeout:
                finish(req, now, "timeout")
                close(sock)
        # Tally the finished requests in start order.
        while cursor < len(requests) and requests[cursor].end is not None:
            tally.add(cursor, requests[cursor])
            cursor += 1
        if tally.ready_index is not None and not ready_sent:
            ready_sent = True
            print(json.dumps({"event": "ready", "t": round(requests[tally.ready_index].start, 4)}), flush=True)
        if tally.settled_at is not None:
            break

    for sock in list(open_socks):
        close(sock)
    # An outage still open at the deadline counts up to the last start.
    open_gap = False
    if tally.ready_index is not None and tally.last_answered is not None and requests:
        tail = requests[cursor - 1].start if cursor else tally.last_answered
        if tail - tally.last_answered > tally.gap:
            tally.gap, tally.gap_from, tally.gap_to, tally.gap_to_answer = tail - tally.last_answered, tally.last_answered, None, None
            open_gap = True
        if tail - tally.last_answered > tally.min_gap:
            tally.gaps.append([round(tally.last_answered, 4), None, None])
    runs = tally.runs if len(tally.runs) <= MAX_RUNS else tally.runs[: MAX_RUNS // 2] + [["...", 0]] + tally.runs[-MAX_RUNS // 2:]
    report = {
        "event": "done",
        "ready": tally.ready_index is not None,
        "settled": tally.settled_at is not None,
        "open_gap": open_gap,
        "gap_ms": round(tally.gap * 1000, 1) if tally.ready_index is not None else None,
        "gap_from": tally.gap_from and round(tally.gap_from, 4),
        "gap_to": tally.gap_to and round(tally.gap_to, 4),
        "gap_to_answer": tally.gap_to_answer,
        "first_failure": tally.first_failure and round(tally.first_failure, 4),
        "first_after": tally.first_after and round(tally.first_after, 4),
        "settled_at": tally.settled_at and round(tally.settled_at, 4),
        "requests": cursor,
        "answers": dict(tally.answers),
        "errors": dict(tally.errors),
        "runs": runs,
        "gaps": tally.gaps,
        "max_late_ms": round(late * 1000, 1),
        "interval_ms": args.interval * 1000,
        "timeout_ms": args.timeout * 1000,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(report), flush=True)
    return 0 if report["settled"] else 1


if __name__ == "__main__":
    sys.exit(main())
