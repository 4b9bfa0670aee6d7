"""What the config sync checks (molecule/config_sync) and bench/config_sync.py push and poll, defined once."""

# A shared file of the repository: every node's HAProxy answers MARKER on PORT.
PROBE_PORT = 8099
PROBE = """\
listen probe
    bind :{port}
    mode http
    http-request return status 200 content-type text/plain string {marker}{extra}
"""

# Runs on the client: until every address answers MARKER on PORT, the
# seconds each took; gives up after TIMEOUT.
SERVED = """
import json, sys, time, urllib.request
marker, port, timeout, addresses = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
start, took = time.monotonic(), {}
while len(took) < len(addresses) and time.monotonic() - start < timeout:
    for address in addresses:
        if address in took:
            continue
        try:
            body = urllib.request.urlopen(f"http://{address}:{port}/", timeout=1).read().decode()
        except OSError:
            continue
        if body.strip() == marker:
            took[address] = round(time.monotonic() - start, 3)
    time.sleep(0.05)
print(json.dumps(took))
"""
