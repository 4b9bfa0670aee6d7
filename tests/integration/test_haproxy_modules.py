"""haproxy_server and haproxy_info end to end, against a real HAProxy on loopback.

Each test starts its own haproxy (the Debian package's binary, 2.6) as a
daemon from a configuration in a temporary directory, with an admin unix
socket, an admin TCP socket and a user-level unix socket, and stops it by its
pid afterwards (floatip_testing.haproxy's LocalHAProxy). The servers point at
a loopback listener run by the tests, which holds every connection until its
client closes it, so that a session opened through HAProxy's frontend stays on
the server until the test closes it. The modules run as Ansible runs them: a
Python process with the module arguments as JSON on stdin. What HAProxy really
did is read back from the admin socket (floatip_testing.haproxy's query)
independently of the collection's code.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import haproxy_binary
from floatip_testing.haproxy import LocalHAProxy, free_port, query, socket_dir

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".build" / "collections"
SERVER_MODULE = "ansible_collections.floatip.ha.plugins.modules.haproxy_server"
INFO_MODULE = "ansible_collections.floatip.ha.plugins.modules.haproxy_info"

# web and api balance dynamically; app1 is in web, api, shop (behind the
# frontend shop_in, for sessions) and is tracked by mirror/app5; app3 points
# at a port where nothing listens (DOWN); sticky balances statically and
# holds app6, disabled in the configuration.
CONFIG = """\
global
    stats socket {dir}/admin.sock mode 600 level admin
    stats socket 127.0.0.1:{admin_port} level admin
    stats socket {dir}/user.sock mode 600 level user
    stats timeout 10s

defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s

frontend shop_in
    bind 127.0.0.1:{shop_port}
    default_backend shop

backend web
    balance roundrobin
    server app1 127.0.0.1:{up_port} check inter 100ms rise 2 fall 2
    server app2 127.0.0.1:{up_port} weight 10

backend api
    balance roundrobin
    server app1 127.0.0.1:{up_port} check inter 100ms rise 2 fall 2
    server app3 127.0.0.1:{down_port} check inter 100ms rise 2 fall 2

backend shop
    server app1 127.0.0.1:{up_port}

backend mirror
    server app5 127.0.0.1:{up_port} track web/app1

backend sticky
    balance source
    server app4 127.0.0.1:{up_port} weight 20
    server app6 127.0.0.1:{up_port} disabled
"""
BACKENDS = "web, api, shop, mirror, sticky"


class _Hold(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # Keep the connection until the other side closes it.
        while self.request.recv(4096):
            pass


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Listener:
    """A loopback server that accepts connections and holds each until its client goes."""

    def __init__(self, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Hold)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="listener", scope="module")
def fixture_listener() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


class HAProxy(LocalHAProxy):
    """A haproxy on CONFIG (admin socket admin.sock), its other sockets, and runners for the two modules."""

    def __init__(self, directory: Path, up_port: int) -> None:
        self.up_port = up_port
        self.user = str(directory / "user.sock")
        self.admin_port = free_port()
        self.shop_port = free_port()
        self.down_port = free_port()
        self._runs = 0
        super().__init__(directory, CONFIG.format(dir=directory, admin_port=self.admin_port, shop_port=self.shop_port,
                                                  up_port=up_port, down_port=self.down_port), binary=haproxy_binary())

    def start(self, timeout: float = 10.0) -> None:
        """Started, and its health checks settled."""
        super().start(timeout)
        self._settle()

    def _settle(self) -> None:
        """Wait until the health checks have spoken: web/app1 and api/app1 UP, api/app3 DOWN."""
        wanted = {("web", "app1"): "UP", ("api", "app1"): "UP", ("api", "app3"): "DOWN"}
        deadline = time.monotonic() + 10
        while True:
            try:
                stats = self.stats()
                if all(stats[key]["status"] == status for key, status in wanted.items()):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"haproxy's health checks did not settle in 10 s: {self.stats()}")
            time.sleep(0.05)

    def stop(self) -> list[int]:
        """SIGTERM, then SIGKILL after 5 s; never longer: a haproxy that would not stop fails the test."""
        stuck = super().stop()
        assert not stuck, f"haproxy {stuck} did not stop"
        return stuck

    # --- what HAProxy says, read without the collection's code -------------

    def stats(self) -> dict:
        """(backend, server) -> show stat row of the servers."""
        lines = query(self.admin, "show stat -1 4 -1").splitlines()
        header = lines[0][2:].split(",")
        return {(row["pxname"], row["svname"]): row
                for row in (dict(zip(header, line.split(","))) for line in lines[1:] if line)}

    def status(self, backend: str, server: str) -> str:
        return self.stats()[(backend, server)]["status"]

    def sessions(self, backend: str, server: str) -> int:
        return int(self.stats()[(backend, server)]["scur"])

    def servers_state(self) -> dict:
        """(backend, server) -> (srv_admin_state, srv_uweight), the values the module manages."""
        lines = query(self.admin, "show servers state").splitlines()
        header = lines[1][2:].split()
        rows = (dict(zip(header, line.split())) for line in lines[2:] if line)
        return {(row["be_name"], row["srv_name"]): (int(row["srv_admin_state"]), int(row["srv_uweight"])) for row in rows}

    def weight(self, backend: str, server: str) -> int:
        return self.servers_state()[(backend, server)][1]

    def send(self, command: str) -> None:
        answer = query(self.admin, command).strip()
        assert answer == "", f"{command}: {answer}"

    def wait_sessions(self, backend: str, server: str, count: int) -> None:
        deadline = time.monotonic() + 5
        while self.sessions(backend, server) != count:
            assert time.monotonic() < deadline, f"{backend}/{server} never had {count} sessions"
            time.sleep(0.02)

    def open_session(self) -> socket.socket:
        """A client connection through frontend shop_in, held on shop/app1 until closed."""
        client = socket.create_connection(("127.0.0.1", self.shop_port), timeout=5)
        self.wait_sessions("shop", "app1", 1)
        return client

    # --- the modules -------------------------------------------------------

    def _payload(self, args: dict, check: bool, diff: bool) -> str:
        return json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)})

    def start_module(self, module: str, args: dict, check: bool = False, diff: bool = False) -> subprocess.Popen:
        """The module started, its arguments on stdin from a file (so that it can run while the test acts)."""
        self._runs += 1
        args_file = self.directory / f"args-{self._runs}.json"
        args_file.write_text(self._payload(args, check, diff), encoding="utf-8")
        with open(args_file, encoding="utf-8") as stdin:
            return subprocess.Popen([sys.executable, "-m", module], stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)))

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 60) -> dict:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"the module did not finish within {timeout} s")
        try:
            result = json.loads(out)
        except ValueError:
            pytest.fail(f"module printed no JSON (rc {proc.returncode}): {out!r} {err!r}")
        assert (proc.returncode != 0) == bool(result.get("failed")), result
        return result

    def server(self, check: bool = False, diff: bool = False, **args: object) -> dict:
        """Run haproxy_server; the admin unix socket unless given."""
        return self.finish(self.start_module(SERVER_MODULE, dict({"socket": self.admin}, **args), check, diff))

    def info(self, check: bool = False, **args: object) -> dict:
        return self.finish(self.start_module(INFO_MODULE, dict({"socket": self.admin}, **args), check, False))


@pytest.fixture(name="hx")
def fixture_hx(listener: Listener) -> Iterator[HAProxy]:
    directory = socket_dir("floatip-hx-")
    try:
        haproxy = HAProxy(directory, listener.port)
        try:
            haproxy.start()
            yield haproxy
        finally:
            # Also when it started but failed to settle or answer.
            haproxy.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- state -----------------------------------------------------------------

def test_drain_then_again_changes_nothing(hx: HAProxy) -> None:
    first = hx.server(backend="web", servers=["app2"], state="drain")
    assert first["changed"] is True
    assert first["commands"] == ["set server web/app2 state drain"]
    assert first["servers"] == [{"backend": "web", "server": "app2", "before": {"state": "ready", "weight": 10},
                                 "after": {"state": "drain", "weight": 10}, "status": "DRAIN", "sessions": 0}]
    assert hx.status("web", "app2") == "DRAIN"
    assert hx.status("api", "app1") == "UP"

    second = hx.server(backend="web", servers=["app2"], state="drain")
    assert second["changed"] is False and second["commands"] == []
    assert second["servers"][0]["before"] == second["servers"][0]["after"] == {"state": "drain", "weight": 10}


def test_every_state_change(hx: HAProxy) -> None:
    # Every transition between ready, drain and maint, each run twice.
    steps = [("drain", "DRAIN"), ("maint", "MAINT"), ("ready", "no check"), ("maint", "MAINT"), ("drain", "DRAIN"),
             ("ready", "no check")]
    previous = "ready"
    for state, status in steps:
        result = hx.server(backend="web", servers="app2", state=state)
        assert result["changed"] is True, (previous, state)
        assert result["servers"][0]["before"]["state"] == previous
        assert result["servers"][0]["after"]["state"] == state
        assert result["servers"][0]["status"] == status == hx.status("web", "app2")
        again = hx.server(backend="web", servers="app2", state=state)
        assert again["changed"] is False, (previous, state)
        previous = state


def test_server_disabled_in_the_config(hx: HAProxy) -> None:
    # 'disabled' is maintenance (flags FMAINT and CMAINT, 5); made ready, the
    # CMAINT flag stays as a marker (4) and is not maintenance.
    assert hx.servers_state()[("sticky", "app6")] == (5, 1)
    assert hx.server(backend="sticky", servers="app6", state="maint")["changed"] is False
    ready = hx.server(backend="sticky", servers="app6", state="ready")
    assert ready["changed"] is True and ready["servers"][0]["before"]["state"] == "maint"
    assert hx.servers_state()[("sticky", "app6")] == (4, 1) and hx.status("sticky", "app6") == "no check"
    assert hx.server(backend="sticky", servers="app6", state="ready")["changed"] is False


def test_check_mode_changes_nothing(hx: HAProxy) -> None:
    before = hx.servers_state()
    result = hx.server(check=True, backend="web", servers=["app1", "app2"], state="maint", weight=5)
    assert result["changed"] is True
    assert result["commands"] == ["set server web/app1 state maint", "set server web/app1 weight 5",
                                  "set server web/app2 state maint", "set server web/app2 weight 5"]
    assert [(s["server"], s["after"]) for s in result["servers"]] == [("app1", {"state": "maint", "weight": 5}),
                                                                      ("app2", {"state": "maint", "weight": 5})]
    # Status and sessions are HAProxy's, as they are now.
    assert [s["status"] for s in result["servers"]] == ["UP", "no check"]
    assert hx.servers_state() == before


def test_diff_shows_before_and_after(hx: HAProxy) -> None:
    result = hx.server(diff=True, servers=["app2"], state="drain", weight="50%")
    assert result["diff"] == {"before": {"web/app2": {"state": "ready", "weight": 10}},
                              "after": {"web/app2": {"state": "drain", "weight": 5}}}
    assert "diff" not in hx.server(servers=["app2"], state="drain")


# --- weight ----------------------------------------------------------------

def test_weight_absolute_and_percentage(hx: HAProxy) -> None:
    result = hx.server(backend="web", servers="app2", weight=5)
    assert result["changed"] is True and result["commands"] == ["set server web/app2 weight 5"]
    assert hx.weight("web", "app2") == 5
    assert hx.server(backend="web", servers="app2", weight=5)["changed"] is False
    # 50% of the initial weight 10 is the 5 already set.
    assert hx.server(backend="web", servers="app2", weight="50%")["changed"] is False
    result = hx.server(backend="web", servers="app2", weight="250%")
    assert result["commands"] == ["set server web/app2 weight 25"] and hx.weight("web", "app2") == 25
    assert hx.server(backend="web", servers="app2", weight="0")["changed"] is True
    assert hx.weight("web", "app2") == 0
    # Weight alone leaves the state as it is.
    assert hx.status("web", "app2") == "no check"


def test_weight_refused_by_a_static_balance_algorithm(hx: HAProxy) -> None:
    result = hx.server(backend="sticky", servers="app4", weight=5)
    assert result["msg"] == ("HAProxy refused 'set server sticky/app4 weight 5': Backend is using a static LB algorithm "
                             "and only accepts weights '0%' and '100%'.")
    assert hx.server(backend="sticky", servers="app4", weight="0%")["changed"] is True
    assert hx.server(backend="sticky", servers="app4", weight="100%")["changed"] is True
    assert hx.weight("sticky", "app4") == 20


@pytest.mark.parametrize("weight", [257, -1, "abc", "5.5", True])
def test_bad_weight(hx: HAProxy, weight: object) -> None:
    result = hx.server(backend="web", servers="app2", weight=weight)
    assert result["msg"] == f"weight must be an integer from 0 to 256 or a percentage such as '50%', got {weight!r}"


# --- which servers ---------------------------------------------------------

def test_backend_omitted_applies_to_every_backend_holding_the_server(hx: HAProxy) -> None:
    before = hx.servers_state()
    result = hx.server(servers="app1", state="maint")
    assert result["changed"] is True
    assert [(s["backend"], s["server"]) for s in result["servers"]] == [("web", "app1"), ("api", "app1"), ("shop", "app1")]
    assert [hx.status(b, "app1") for b in ("web", "api", "shop")] == ["MAINT", "MAINT", "MAINT"]
    # The server that tracks web/app1 follows it; nothing else moved.
    assert hx.status("mirror", "app5") == "MAINT (via web/app1)"
    after = hx.servers_state()
    assert {key for key in before if before[key] != after[key]} == {("web", "app1"), ("api", "app1"), ("shop", "app1"),
                                                                    ("mirror", "app5")}
    # '*' is the same as no backend.
    assert hx.server(backend="*", servers="app1", state="maint")["changed"] is False


def test_several_servers_of_one_backend(hx: HAProxy) -> None:
    result = hx.server(backend="api", name=["app1", "app3"], state="drain")
    assert result["commands"] == ["set server api/app1 state drain", "set server api/app3 state drain"]
    assert hx.status("api", "app1") == "DRAIN"
    # A DOWN server shows DOWN whatever its admin state; the flag is set.
    assert hx.status("api", "app3") == "DOWN" and hx.servers_state()[("api", "app3")] == (0x08, 1)
    assert hx.status("web", "app1") == "UP"


def test_inherited_maintenance_cannot_be_set(hx: HAProxy) -> None:
    hx.send("set server web/app1 state maint")
    result = hx.server(backend="mirror", servers="app5", state="ready")
    assert result["msg"] == ("mirror/app5 cannot be set to ready with 'set server': it inherits maintenance from the "
                             "server it tracks; change the tracked server (or the name resolution) instead")


# --- wait ------------------------------------------------------------------

def test_wait_until_drained_with_a_session_held(hx: HAProxy) -> None:
    client = hx.open_session()
    started = time.monotonic()
    proc = hx.start_module(SERVER_MODULE, {"socket": hx.admin, "backend": "shop", "servers": "app1", "state": "drain",
                                           "wait": True, "wait_timeout": 20, "wait_interval": 0.1}, False, False)
    try:
        # Drained at once, but the session is still there: the module must be waiting.
        deadline = time.monotonic() + 10
        while hx.status("shop", "app1") != "DRAIN":
            assert time.monotonic() < deadline, "the module did not drain shop/app1"
            time.sleep(0.02)
        time.sleep(1.0)
        assert proc.poll() is None, "the module returned while a session was still held"
        assert hx.sessions("shop", "app1") == 1
    finally:
        client.close()
    result = hx.finish(proc)
    assert time.monotonic() - started >= 1.0
    assert result["changed"] is True
    assert result["servers"] == [{"backend": "shop", "server": "app1", "before": {"state": "ready", "weight": 1},
                                  "after": {"state": "drain", "weight": 1}, "status": "DRAIN", "sessions": 0}]


def test_wait_until_drained_times_out_naming_the_server(hx: HAProxy) -> None:
    client = hx.open_session()
    try:
        started = time.monotonic()
        result = hx.server(backend="shop", servers="app1", state="maint", wait=True, wait_timeout=1, wait_interval=0.3)
        elapsed = time.monotonic() - started
        assert result["msg"] == "waited 1 s for shop/app1 to be without sessions: shop/app1 still holds 1 session"
        assert 1.0 <= elapsed < 10
        # The change itself was made; only the wait failed.
        assert hx.status("shop", "app1") == "MAINT" and hx.sessions("shop", "app1") == 1
    finally:
        client.close()
    hx.wait_sessions("shop", "app1", 0)
    again = hx.server(backend="shop", servers="app1", state="maint", wait=True, wait_timeout=1)
    assert again["changed"] is False and again["servers"][0]["sessions"] == 0


def test_drain_wait_on_a_server_without_sessions_returns_at_once(hx: HAProxy) -> None:
    # The old fault of community.general.haproxy: drain + wait on an enabled
    # server waited for a status that never comes. Draining servers stay UP.
    started = time.monotonic()
    result = hx.server(backend="web", servers="app1", state="drain", wait=True, wait_timeout=20)
    assert time.monotonic() - started < 10
    assert result["changed"] is True and result["servers"][0]["status"] == "DRAIN" and result["servers"][0]["sessions"] == 0


def test_wait_until_up_waits_for_the_health_check(hx: HAProxy) -> None:
    # api/app3 is ready but DOWN: nothing listens on its port until the test starts a listener there.
    proc = hx.start_module(SERVER_MODULE, {"socket": hx.admin, "backend": "api", "servers": "app3", "state": "ready",
                                           "wait": True, "wait_timeout": 20, "wait_interval": 0.1}, False, False)
    time.sleep(1.0)
    assert proc.poll() is None, "the module returned while api/app3 was DOWN"
    listener = Listener(hx.down_port)
    try:
        result = hx.finish(proc)
    finally:
        listener.close()
    assert result["changed"] is False
    assert result["servers"][0]["status"] == "UP"


def test_wait_until_up_after_maintenance(hx: HAProxy) -> None:
    hx.send("set server web/app1 state maint")
    result = hx.server(backend="web", servers="app1", state="ready", wait=True, wait_timeout=20, wait_interval=0.05)
    assert result["changed"] is True
    # Out of maintenance HAProxy says 'UP 1/2' until a check passes; the module waits for full health.
    assert result["servers"][0]["status"] == "UP"


def test_wait_until_up_times_out_naming_the_server(hx: HAProxy) -> None:
    result = hx.server(backend="api", servers=["app1", "app3"], state="ready", wait=True, wait_timeout=1, wait_interval=0.2)
    assert result["msg"] == "waited 1 s for api/app1, api/app3 to be up: api/app3 is DOWN (check L4CON)"


def test_wait_needs_state(hx: HAProxy) -> None:
    result = hx.server(backend="web", servers="app2", weight=3, wait=True)
    assert result["msg"].startswith("wait needs state")
    assert hx.weight("web", "app2") == 10


# --- sockets ---------------------------------------------------------------

def test_tcp_socket(hx: HAProxy) -> None:
    result = hx.server(socket=f"tcp://127.0.0.1:{hx.admin_port}", backend="web", servers="app2", state="maint")
    assert result["changed"] is True and hx.status("web", "app2") == "MAINT"
    assert hx.server(socket=f"127.0.0.1:{hx.admin_port}", backend="web", servers="app2", state="maint")["changed"] is False
    info = hx.info(socket=f"127.0.0.1:{hx.admin_port}", gather=["servers"])
    assert info["ansible_facts"]["haproxy_info"]["backends"]["web"]["servers"]["app2"]["admin_state"] == "maint"


# --- errors ----------------------------------------------------------------

def test_missing_socket(hx: HAProxy) -> None:
    path = str(hx.directory / "nothing.sock")
    result = hx.server(socket=path, servers="app2", state="drain")
    assert result["msg"] == (f"HAProxy socket {path} does not exist: is haproxy running, with 'stats socket {path} "
                             "level admin' in the global section of haproxy.cfg?")
    assert hx.info(socket=path)["msg"] == result["msg"]


def test_connection_refused(hx: HAProxy) -> None:
    port = free_port()
    result = hx.server(socket=f"tcp://127.0.0.1:{port}", servers="app2", state="drain")
    assert result["msg"] == (f"HAProxy refuses connections on tcp://127.0.0.1:{port} (connection refused): is haproxy "
                             "running? A stopped haproxy leaves its socket file behind")
    # The socket file a stopped haproxy left behind.
    hx.stop()
    assert os.path.exists(hx.admin)
    stale = hx.server(servers="app2", state="drain")
    assert stale["msg"].startswith(f"HAProxy refuses connections on unix socket {hx.admin} (connection refused)")


def test_user_level_socket(hx: HAProxy) -> None:
    message = (f"unix socket {hx.user} is at level user: changing servers needs a stats socket declared with "
               "'level admin' in haproxy.cfg")
    assert hx.server(socket=hx.user, servers="app2", state="drain")["msg"] == message
    assert hx.server(socket=hx.user, servers="app2", state="drain", check=True)["msg"] == message
    assert hx.status("web", "app2") == "no check"
    # Reading is allowed at level user.
    facts = hx.info(socket=hx.user)["ansible_facts"]["haproxy_info"]
    assert facts["backends"]["web"]["servers"]["app2"]["admin_state"] == "ready"


def test_unknown_backend(hx: HAProxy) -> None:
    result = hx.server(backend="nope", servers="app1", state="drain")
    assert result["msg"] == f"No such backend: HAProxy has no backend 'nope' (its backends: {BACKENDS})"


def test_unknown_server(hx: HAProxy) -> None:
    in_backend = hx.server(backend="web", servers=["app1", "app9"], state="drain")
    assert in_backend["msg"] == "No such server: backend web has no server 'app9' (its servers: app1, app2)"
    anywhere = hx.server(servers=["app9"], state="drain")
    assert anywhere["msg"] == f"No such server: no backend of HAProxy holds a server named 'app9' (its backends: {BACKENDS})"
    # Nothing was changed, not even app1 named before app9.
    assert hx.status("web", "app1") == "UP"


def test_neither_state_nor_weight(hx: HAProxy) -> None:
    result = hx.server(backend="web", servers="app2")
    assert result["msg"] == "one of the following is required: state, weight"


def test_bad_names_and_states(hx: HAProxy) -> None:
    assert hx.server(backend="web;x", servers="app2", state="drain")["msg"] == \
        "backend 'web;x' is not a valid HAProxy name (letters, digits, '.', ':', '_' and '-')"
    assert hx.server(servers="app2", state="up")["msg"] == "value of state must be one of: ready, drain, maint, got: up"


# --- haproxy_info ----------------------------------------------------------

def test_info_reports_what_haproxy_server_set(hx: HAProxy) -> None:
    hx.server(backend="web", servers="app2", state="drain", weight=4)
    hx.server(backend="api", servers="app3", state="maint")
    hx.server(backend="web", servers="app1", state="maint")
    client = hx.open_session()
    try:
        result = hx.info()
    finally:
        client.close()
    assert result["changed"] is False
    facts = result["ansible_facts"]["haproxy_info"]
    assert facts["info"]["Name"] == "HAProxy" and str(facts["info"]["Version"]).startswith("2.")
    assert isinstance(facts["info"]["Pid"], int)
    assert list(facts["frontends"]) == ["shop_in"]
    shop_in = facts["frontends"]["shop_in"]
    assert (shop_in["status"], shop_in["sessions"], shop_in["mode"]) == ("OPEN", 1, "tcp")
    assert isinstance(shop_in["session_limit"], int) and shop_in["session_limit"] > 0
    backends = facts["backends"]
    assert sorted(backends) == sorted(BACKENDS.split(", "))
    assert backends["web"]["servers"]["app2"] == {
        "status": "DRAIN", "admin_state": "drain", "operational_state": "running", "sessions": 0, "queued": 0,
        "weight": 4, "initial_weight": 10, "check_status": None, "check_description": None,
        "address": f"127.0.0.1:{hx.up_port}"}
    assert backends["web"]["servers"]["app1"]["admin_state"] == "maint"
    assert backends["api"]["servers"]["app3"]["status"] == "MAINT"
    assert backends["api"]["servers"]["app3"]["admin_state"] == "maint"
    # Inherited maintenance is maintenance too.
    assert backends["mirror"]["servers"]["app5"]["status"] == "MAINT (via web/app1)"
    assert backends["mirror"]["servers"]["app5"]["admin_state"] == "maint"
    assert backends["api"]["servers"]["app1"]["check_status"] == "L4OK"
    assert backends["shop"]["servers"]["app1"]["sessions"] == 1 and backends["shop"]["sessions"] == 1
    assert backends["shop"]["status"] == "UP" and backends["shop"]["mode"] == "tcp"

    # Check mode reads the same.
    checked = hx.info(check=True)["ansible_facts"]["haproxy_info"]
    assert checked["backends"]["web"] == backends["web"] and checked["backends"]["api"] == backends["api"]


def test_info_gathers_only_what_is_asked(hx: HAProxy) -> None:
    hx.server(backend="web", servers="app2", state="maint")
    stat_only = hx.info(gather=["stat"])["ansible_facts"]["haproxy_info"]
    assert sorted(stat_only) == ["backends", "frontends"]
    app2 = stat_only["backends"]["web"]["servers"]["app2"]
    # Without the servers state the admin state comes from the status.
    assert app2["admin_state"] == "maint" and app2["status"] == "MAINT" and "initial_weight" not in app2
    servers_only = hx.info(gather=["servers"])["ansible_facts"]["haproxy_info"]
    assert sorted(servers_only) == ["backends"]
    assert servers_only["backends"]["web"]["servers"]["app2"] == {
        "admin_state": "maint", "operational_state": "stopped", "weight": 10, "initial_weight": 10,
        "address": app2["address"]}
    assert sorted(hx.info(gather=["info"])["ansible_facts"]["haproxy_info"]) == ["info"]
