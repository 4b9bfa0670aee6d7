"""Runs on the client: HTTP requests and SMTP messages to every VIP, as DNS
round robin spreads clients, until a stop file appears (at most 15 minutes).

    python3 load.py STOPFILE OUTFILE RUN VIP [VIP ...]

Each step asks the next VIP over HTTP (GET / on port 80); every third step
also sends a message over SMTP (port 25) to recipient@example.net with the
subject "floatip-load RUN N". A client retries the way real ones do: an
HTTP client once at once, when the connection broke under an idempotent
GET; a mail client once a second later. What still fails then is failed.

OUTFILE gets one JSON object: ok, failed, retried (first tries that failed
and were retried), errors (the first few), accepted (the subjects the
cluster accepted) and per_second ([second, ok, failed, retried] rows).
"""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import sys
import time
from email.message import EmailMessage

HTTP_PORT = 80
SMTP_PORT = 25
TIMEOUT = 5
LONGEST = 900


def http_get(vip: str) -> None:
    conn = http.client.HTTPConnection(vip, HTTP_PORT, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
    finally:
        conn.close()


def smtp_send(vip: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "load@client.example.org"
    message["To"] = "recipient@example.net"
    message["Subject"] = subject
    message.set_content("a message of the floatip load\n")
    with smtplib.SMTP(vip, SMTP_PORT, timeout=TIMEOUT) as smtp:
        smtp.send_message(message)


def main() -> int:
    stop, out, run, vips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    totals = {"ok": 0, "failed": 0, "retried": 0}
    errors: list[str] = []
    accepted: list[str] = []
    per_second: dict[int, list[int]] = {}
    start = time.monotonic()

    def count(outcome: str) -> None:
        totals[outcome] += 1
        row = per_second.setdefault(int(time.monotonic() - start), [0, 0, 0])
        row[["ok", "failed", "retried"].index(outcome)] += 1

    def attempt(what: str, call, pause: float) -> bool:
        problems = []
        for retry in (False, True):
            try:
                call()
                count("ok")
                return True
            except (OSError, smtplib.SMTPException, http.client.HTTPException) as exc:
                problems.append(repr(exc))
                if not retry:
                    count("retried")
                    time.sleep(pause)
        count("failed")
        if len(errors) < 10:
            errors.append(f"{time.monotonic() - start:.1f}s {what}: {', then '.join(problems)}")
        return False

    step = 0
    while not os.path.exists(stop) and time.monotonic() - start < LONGEST:
        vip = vips[step % len(vips)]
        attempt(f"GET http://{vip}/", lambda: http_get(vip), 0)
        if step % 3 == 0:
            subject = f"floatip-load {run} {step}"
            if attempt(f"SMTP {vip}", lambda: smtp_send(vip, subject), 1):
                accepted.append(subject)
        step += 1
        time.sleep(0.01)
    report = {**totals, "errors": errors, "accepted": accepted,
              "per_second": [[second, *row] for second, row in sorted(per_second.items())]}
    with open(out + ".tmp", "w", encoding="utf-8") as file:
        json.dump(report, file)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
