"""Runs on a client: which node answers on ADDRESS:PORT, as a client sees it.

    python3 probe.py ADDRESS PORT WANT TIMEOUT

Connects every 50 ms until a node named WANT answers (each node's whoami
service sends its name), then prints the seconds that took and the answer;
exits 1 with the last answer after TIMEOUT seconds.
"""

from __future__ import annotations

import socket
import sys
import time


def ask(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=0.3) as conn:
            conn.settimeout(0.5)
            return conn.recv(256).decode().strip() or "empty answer"
    except OSError as exc:
        return f"no answer ({exc.__class__.__name__})"


def main() -> int:
    address, port, want, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    start = time.monotonic()
    answer = ""
    while time.monotonic() - start < timeout:
        answer = ask(address, port)
        if answer == want:
            print(f"{time.monotonic() - start:.3f} {answer}")
            return 0
        time.sleep(0.05)
    print(f"timeout {answer}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
