"""Runs on the client: steady HTTP load on the VIPs until a stop file appears.

    python3 load.py STOPFILE PORT VIP [VIP ...]

One request at a time to each VIP in turn (as DNS round robin spreads
clients), a new connection each; at most 10 minutes. Prints a JSON line:
{"ok": N, "failed": N, "errors": [first few]}.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time


def main() -> int:
    stop, port, vips = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    ok = failed = 0
    errors: list[str] = []
    deadline = time.monotonic() + 600
    while not os.path.exists(stop) and time.monotonic() < deadline:
        for vip in vips:
            try:
                conn = http.client.HTTPConnection(vip, port, timeout=3)
                conn.request("GET", "/")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    ok += 1
                    continue
                why = f"HTTP {status}"
            except OSError as exc:
                why = f"{exc.__class__.__name__}: {exc}"
            failed += 1
            if len(errors) < 5:
                errors.append(f"{vip}: {why}")
        time.sleep(0.02)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
