"""Runs on a lab client: HTTP requests (and SMTP messages) to every VIP, as
DNS round robin spreads clients, until a stop file appears.

    python3 load.py STOPFILE OUTFILE VIP [VIP ...] [--port 80] [--mail-every 3]
                    [--run ID] [--retry] [--timeout 5] [--longest 900]

Each step asks the next VIP for GET / over HTTP on --port, a new connection
each; every --mail-every-th step also sends a message over SMTP (port 25)
to recipient@example.net with the subject "floatip-load RUN N" (0: no
mail). Without --retry a request that fails is failed, as for a client that
does not retry. With --retry a client retries the way real ones do: an HTTP
client once at once (the connection broke under an idempotent GET), a mail
client once a second later; what still fails then is failed. Any request
that takes longer than 1 s is a stall (counted, the slowest kept).

OUTFILE gets one JSON object, written when the load stops (the stop file,
or --longest seconds): ok, failed, retried (first tries that failed and
were retried), stalls, slowest (seconds), errors (the first few), accepted
(the subjects the cluster accepted) and per_second ([second, ok, failed,
retried] rows).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import smtplib
import sys
import time
from email.message import EmailMessage

SMTP_PORT = 25
STALL = 1.0


def http_get(vip: str, port: int, timeout: float) -> None:
    conn = http.client.HTTPConnection(vip, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
    finally:
        conn.close()


def smtp_send(vip: str, subject: str, timeout: float) -> None:
    message = EmailMessage()
    message["From"] = "load@client.example.org"
    message["To"] = "recipient@example.net"
    message["Subject"] = subject
    message.set_content("a message of the floatip load\n")
    with smtplib.SMTP(vip, SMTP_PORT, timeout=timeout) as smtp:
        smtp.send_message(message)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stop")
    parser.add_argument("out")
    parser.add_argument("vips", nargs="+")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--mail-every", type=int, default=3)
    parser.add_argument("--run", default="load")
    parser.add_argument("--retry", action="store_true")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--longest", type=float, default=900.0)
    return parser.parse_args()


def main() -> int:
    args = arguments()
    totals = {"ok": 0, "failed": 0, "retried": 0, "stalls": 0}
    slowest = 0.0
    errors: list[str] = []
    accepted: list[str] = []
    per_second: dict[int, list[int]] = {}
    start = time.monotonic()

    def count(outcome: str) -> None:
        totals[outcome] += 1
        row = per_second.setdefault(int(time.monotonic() - start), [0, 0, 0])
        row[["ok", "failed", "retried"].index(outcome)] += 1

    def attempt(what: str, call, pause: float) -> bool:
        nonlocal slowest
        problems = []
        for last in ((False, True) if args.retry else (True,)):
            began = time.monotonic()
            try:
                call()
                outcome = "ok"
            except (OSError, smtplib.SMTPException, http.client.HTTPException) as exc:
                problems.append(repr(exc))
                outcome = "failed" if last else "retried"
            took = time.monotonic() - began
            slowest = max(slowest, took)
            totals["stalls"] += took > STALL
            count(outcome)
            if outcome == "ok":
                return True
            if not last:
                time.sleep(pause)
        if len(errors) < 10:
            errors.append(f"{time.monotonic() - start:.1f}s {what}: {', then '.join(problems)}")
        return False

    step = 0
    while not os.path.exists(args.stop) and time.monotonic() - start < args.longest:
        vip = args.vips[step % len(args.vips)]
        attempt(f"GET http://{vip}:{args.port}/", lambda: http_get(vip, args.port, args.timeout), 0)
        if args.mail_every and step % args.mail_every == 0:
            subject = f"floatip-load {args.run} {step}"
            if attempt(f"SMTP {vip}", lambda: smtp_send(vip, subject, args.timeout), 1):
                accepted.append(subject)
        step += 1
        time.sleep(0.01)
    report = {**totals, "slowest": round(slowest, 3), "errors": errors, "accepted": accepted,
              "per_second": [[second, *row] for second, row in sorted(per_second.items())]}
    with open(args.out + ".tmp", "w", encoding="utf-8") as file:
        json.dump(report, file)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
