"""The HAProxy runtime API client: parsing, planning, waiting and the wire, on answers recorded from HAProxy 2.6.

The recordings are from Debian 12's haproxy 2.6.12 with this configuration,
after ``set server web/web2 state drain``, ``set server web/web2 weight 5``
and ``set server web/web1 state maint``::

    frontend www
        bind 127.0.0.1:19980
        default_backend web
    backend web
        server web1 127.0.0.1:19970 check inter 100ms
        server web2 127.0.0.1:19971 weight 10
        server web3 127.0.0.1:19971 disabled
    backend api
        server web1 127.0.0.1:19970
        server api1 127.0.0.1:19971 track web/web1

``sync``, ``wait_for`` and ``gather`` are run through their seam, the
client's ``command`` method, played by ``FakeClient``; ``Client`` itself is
run over a socket pair against a stand-in that answers as HAProxy's
interactive mode does.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
from pathlib import Path

import pytest

from ansible_collections.floatip.ha.plugins.module_utils import haproxy
from ansible_collections.floatip.ha.plugins.module_utils.haproxy import HAProxyError

SHOW_INFO = (
    "Name: HAProxy\n"
    "Version: 2.6.12-1+deb12u4\n"
    "Release_date: 2026/10/17\n"
    "Nbthread: 2\n"
    "Pid: 15093\n"
    "Uptime: 0d 0h00m01s\n"
    "Uptime_sec: 1\n"
    "Maxconn: 9985\n"
    "CurrConns: 0\n"
    "Idle_pct: 100\n"
    "node: vm\n"
    "Stopping: 0\n"
    "Build info: 2.6.12-1+deb12u4\n"
    "\n"
)
SHOW_STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,"
    "bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
    "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,"
    "req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,"
    "rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,"
    "agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,"
    "wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,"
    "idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,"
    "agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,"
    "h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,"
    "h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,"
    "h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
    "www,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,"
    "tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
    "web,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,1,1,1,1,,1,3,1,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,"
    ",,,127.0.0.1:19970,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "web,web2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DRAIN,5,1,0,,,0,,,1,3,2,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,"
    "127.0.0.1:19971,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,5,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "web,web3,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,,,1,,,1,3,3,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,"
    "127.0.0.1:19971,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "web,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,0,0,,1,3,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,"
    "0,,,,,,,,,,,,,,tcp,roundrobin,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
    "0,\n"
    "api,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,1,,,1,4,1,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,"
    ",,,127.0.0.1:19970,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "api,api1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (via web/web1),1,1,0,,,1,,,1,4,2,,0,web/web1,2,0,,0,,,,,,,,,,,,,,0,0,,,,,"
    "-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:19971,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "api,BACKEND,0,0,0,0,1,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,1,0,,1,4,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,"
    ",,,,,,,,,,tcp,roundrobin,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
    "\n"
)
SHOW_SERVERS_STATE = (
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state "
    "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
    "3 web 1 web1 127.0.0.1 0 1 1 1 1 8 2 0 14 0 0 0 - 19970 - 0 0 - - 0\n"
    "3 web 2 web2 127.0.0.1 2 8 5 10 0 1 0 2 0 0 0 0 - 19971 - 0 0 - - 0\n"
    "3 web 3 web3 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 19971 - 0 0 - - 0\n"
    "4 api 1 web1 127.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 19970 - 0 0 - - 0\n"
    "4 api 2 api1 127.0.0.1 0 2 1 1 1 1 0 2 0 0 0 0 - 19971 - 0 0 - - 0\n"
    "\n"
)


def stat_with(changes: dict) -> str:
    """SHOW_STAT with some fields of some rows changed: {(pxname, svname): {field: value}}."""
    lines = SHOW_STAT.splitlines()
    header = lines[0][2:].split(",")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(line for line in lines[1:] if line):
        fields = dict(zip(header, row))
        for key, value in changes.get((fields["pxname"], fields["svname"]), {}).items():
            row[header.index(key)] = value
        writer.writerow(row)
    return lines[0] + "\n" + out.getvalue() + "\n"


def servers_state_with(changes: dict) -> str:
    """SHOW_SERVERS_STATE with some fields of some rows changed: {(be_name, srv_name): {field: value}}."""
    lines = SHOW_SERVERS_STATE.splitlines()
    header = lines[1][2:].split()
    rows = []
    for line in lines[2:]:
        if not line:
            continue
        fields = line.split()
        for key, value in changes.get((fields[1], fields[3]), {}).items():
            fields[header.index(key)] = str(value)
        rows.append(" ".join(fields))
    return "\n".join(lines[:2] + rows) + "\n\n"


class FakeClient:
    """Plays the runtime API at the ``command`` seam: scripted answers per command, every command recorded.

    An answer is a string, or a list of strings given one per call (the last
    one repeating). ``set server`` commands answer nothing, as HAProxy does
    when they succeed, unless scripted otherwise.
    """

    name = "unix socket /run/haproxy/admin.sock"

    def __init__(self, answers: dict | None = None) -> None:
        self.answers = {"show cli level": "admin\n", "show info": SHOW_INFO, "show stat": SHOW_STAT,
                        "show stat -1 6 -1": SHOW_STAT, "show stat -1 4 -1": SHOW_STAT,
                        "show servers state": SHOW_SERVERS_STATE}
        self.answers.update(answers or {})
        self.sent: list = []

    def command(self, line: str, check: bool = True) -> str:
        self.sent.append(line)
        answer = self.answers.get(line, "" if line.startswith(("set server", "set timeout")) else None)
        if answer is None:
            raise AssertionError(f"unexpected command {line!r}")
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return haproxy._check_answer(line, answer) if check else answer

    @property
    def sets(self) -> list:
        return [line for line in self.sent if line.startswith("set server")]


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


# --- parsing ---------------------------------------------------------------

def test_parse_info() -> None:
    info = haproxy.parse_info(SHOW_INFO)
    assert info["Name"] == "HAProxy" and info["Version"] == "2.6.12-1+deb12u4"
    assert info["Pid"] == 15093 and info["Maxconn"] == 9985 and info["Uptime"] == "0d 0h00m01s"
    assert info["Build info"] == "2.6.12-1+deb12u4"
    with pytest.raises(HAProxyError, match="cannot read 'show info' line 'garbage'"):
        haproxy.parse_info("Name: HAProxy\ngarbage\n")


def test_parse_stat() -> None:
    rows = haproxy.parse_stat(SHOW_STAT)
    assert [(row["pxname"], row["svname"]) for row in rows] == [
        ("www", "FRONTEND"), ("web", "web1"), ("web", "web2"), ("web", "web3"), ("web", "BACKEND"),
        ("api", "web1"), ("api", "api1"), ("api", "BACKEND")]
    web2 = rows[2]
    assert (web2["status"], web2["scur"], web2["weight"], web2["uweight"], web2["addr"]) == ("DRAIN", "0", "5", "5", "127.0.0.1:19971")
    assert rows[6]["status"] == "MAINT (via web/web1)" and rows[6]["tracked"] == "web/web1"
    with pytest.raises(HAProxyError, match="expected a '# pxname,svname,...' header"):
        haproxy.parse_stat("No such proxy.\n")


def test_parse_servers_state() -> None:
    rows = haproxy.parse_servers_state(SHOW_SERVERS_STATE)
    assert [(r["be_name"], r["srv_name"], r["srv_op_state"], r["srv_admin_state"], r["srv_uweight"], r["srv_iweight"])
            for r in rows] == [("web", "web1", 0, 1, 1, 1), ("web", "web2", 2, 8, 5, 10), ("web", "web3", 0, 5, 1, 1),
                               ("api", "web1", 2, 0, 1, 1), ("api", "api1", 0, 2, 1, 1)]
    assert rows[0]["srv_port"] == 19970 and rows[0]["srv_fqdn"] == "-" and rows[0]["srv_addr"] == "127.0.0.1"
    with pytest.raises(HAProxyError, match="format version '2', this module knows 1"):
        haproxy.parse_servers_state(SHOW_SERVERS_STATE.replace("1\n", "2\n", 1))
    with pytest.raises(HAProxyError, match="HAProxy answered nothing"):
        haproxy.parse_servers_state("\n")


@pytest.mark.parametrize(("bits", "state"), [
    (0, "ready"), (0x01, "maint"), (0x02, "maint"), (0x04, "ready"), (0x05, "maint"), (0x08, "drain"),
    (0x0C, "drain"), (0x10, "drain"), (0x20, "maint"), (0x0A, "maint"), (0x40, "ready"),
])
def test_admin_state_from_the_flags(bits: int, state: str) -> None:
    # CMAINT (0x04) alone is the marker a 'disabled' server keeps once made ready; HMAINT (0x40) is not maintenance.
    assert haproxy.admin_state(bits) == state


@pytest.mark.parametrize(("status", "state"), [
    ("UP", "ready"), ("UP 1/3", "ready"), ("DOWN", "ready"), ("no check", "ready"), ("DRAIN", "drain"),
    ("DRAIN 1/3", "drain"), ("MAINT", "maint"), ("MAINT (via web/web1)", "maint"), ("MAINT (resolution)", "maint"),
])
def test_admin_state_from_the_status(status: str, state: str) -> None:
    assert haproxy.admin_state_of_status(status) == state


# --- arguments -------------------------------------------------------------

@pytest.mark.parametrize(("text", "address", "shown"), [
    ("/run/haproxy/admin.sock", haproxy.Address(path="/run/haproxy/admin.sock"), "/run/haproxy/admin.sock"),
    ("unix:///run/haproxy/admin.sock", haproxy.Address(path="/run/haproxy/admin.sock"), "/run/haproxy/admin.sock"),
    ("admin.sock", haproxy.Address(path="admin.sock"), "admin.sock"),
    ("tcp://127.0.0.1:9999", haproxy.Address(host="127.0.0.1", port=9999), "tcp://127.0.0.1:9999"),
    ("127.0.0.1:9999", haproxy.Address(host="127.0.0.1", port=9999), "tcp://127.0.0.1:9999"),
    ("tcp://lb1.example.org:9999", haproxy.Address(host="lb1.example.org", port=9999), "tcp://lb1.example.org:9999"),
    ("tcp://[::1]:9999", haproxy.Address(host="::1", port=9999), "tcp://[::1]:9999"),
])
def test_parse_address(text: str, address: haproxy.Address, shown: str) -> None:
    assert haproxy.parse_address(text) == address
    assert str(address) == shown


@pytest.mark.parametrize("text", ["", "tcp://127.0.0.1", "tcp://:9999", "tcp://host:0", "host:70000", "tcp://host:port"])
def test_bad_address(text: str) -> None:
    with pytest.raises(HAProxyError, match="socket"):
        haproxy.parse_address(text)


@pytest.mark.parametrize(("value", "initial", "absolute"), [
    (0, 10, 0), (256, 10, 256), ("7", 10, 7), ("50%", 10, 5), ("50%", 1, 0), ("33%", 10, 3), ("100%", 20, 20),
    ("250%", 10, 25), ("300%", 100, 256), ("999999%", 3, 256), (" 40 % ", 10, 4),
])
def test_weight(value: object, initial: int, absolute: int) -> None:
    # Percentages of the initial weight, rounded down and capped at 256, as HAProxy works them out.
    assert haproxy.parse_weight(value).resolve(initial) == absolute


@pytest.mark.parametrize("value", [257, -1, "-1", "abc", "5.5", "50%%", True, 5.0, None])
def test_bad_weight(value: object) -> None:
    with pytest.raises(HAProxyError, match=r"weight must be an integer from 0 to 256 or a percentage such as '50%'"):
        haproxy.parse_weight(value)


@pytest.mark.parametrize(("args", "message"), [
    ({"servers": []}, "servers must list at least one server name"),
    ({"servers": ["web 1"], "state": "drain"}, "server 'web 1' is not a valid HAProxy name"),
    ({"servers": ["web1"], "backend": "web;show info", "state": "drain"}, "backend 'web;show info' is not a valid HAProxy name"),
    ({"servers": ["web1"]}, "nothing to do: give state (ready, drain or maint), weight, or both"),
    ({"servers": ["web1"], "state": "up"}, "state must be one of ready, drain, maint, got 'up'"),
    ({"servers": ["web1"], "weight": 3, "wait": True}, "wait needs state"),
    ({"servers": ["web1"], "state": "drain", "wait_timeout": -1}, "wait_timeout must be 0 or more seconds, got -1"),
    ({"servers": ["web1"], "state": "drain", "wait_interval": 0}, "wait_interval must be more than 0 seconds, got 0"),
])
def test_bad_request(args: dict, message: str) -> None:
    with pytest.raises(HAProxyError) as caught:
        haproxy.make_request(**args)
    assert str(caught.value).startswith(message)


def test_request() -> None:
    request = haproxy.make_request(["web1", "web2", "web1"], "*", "drain", "50%", True, 10, 0.2)
    assert request == haproxy.Request(servers=("web1", "web2"), backend=None, state="drain",
                                      weight=haproxy.Weight(50, percent=True), wait=True, wait_timeout=10.0, wait_interval=0.2)
    assert haproxy.make_request("web1", "web", weight=3).servers == ("web1",)


# --- planning --------------------------------------------------------------

STATE_ROWS = haproxy.parse_servers_state(SHOW_SERVERS_STATE)
BACKEND_NAMES = ["web", "api"]


def _plan(**args: object) -> list:
    request = haproxy.make_request(**args)
    targets = haproxy.resolve_targets(STATE_ROWS, BACKEND_NAMES, request)
    return [(c.key, c.before, c.after, c.commands) for c in haproxy.plan(STATE_ROWS, targets, request)]


def test_targets_without_backend_are_every_backend_holding_the_server() -> None:
    request = haproxy.make_request(["web1", "api1"], state="drain")
    assert haproxy.resolve_targets(STATE_ROWS, BACKEND_NAMES, request) == [("web", "web1"), ("api", "web1"), ("api", "api1")]


def test_unknown_backend_and_server() -> None:
    with pytest.raises(HAProxyError, match=r"^No such backend: HAProxy has no backend 'www' \(its backends: web, api\)$"):
        _plan(servers=["web1"], backend="www", state="drain")
    with pytest.raises(HAProxyError, match=r"^No such server: backend api has no server 'web2' \(its servers: web1, api1\)$"):
        _plan(servers=["web1", "web2"], backend="api", state="drain")
    with pytest.raises(HAProxyError, match=r"^No such server: no backend of HAProxy holds a server named 'db1' "):
        _plan(servers=["db1"], state="drain")


def test_plan_changes_only_what_differs() -> None:
    assert _plan(servers=["web1"], state="drain") == [
        ("web/web1", {"state": "maint", "weight": 1}, {"state": "drain", "weight": 1}, ["set server web/web1 state drain"]),
        ("api/web1", {"state": "ready", "weight": 1}, {"state": "drain", "weight": 1}, ["set server api/web1 state drain"]),
    ]
    # web2 is drained with weight 5, which is 50% of its initial 10.
    assert _plan(servers=["web2"], backend="web", state="drain", weight=5)[0][3] == []
    assert _plan(servers=["web2"], backend="web", state="drain", weight="50%")[0][3] == []
    assert _plan(servers=["web2"], backend="web", weight="100%") == [
        ("web/web2", {"state": "drain", "weight": 5}, {"state": "drain", "weight": 10}, ["set server web/web2 weight 10"])]


def test_plan_of_a_server_disabled_in_the_config() -> None:
    # web3 is 'disabled': FMAINT and CMAINT (5). Maint is there already; ready clears FMAINT.
    assert _plan(servers=["web3"], backend="web", state="maint")[0][3] == []
    assert _plan(servers=["web3"], backend="web", state="ready")[0][3] == ["set server web/web3 state ready"]
    made_ready = haproxy.parse_servers_state(servers_state_with({("web", "web3"): {"srv_admin_state": 4}}))
    request = haproxy.make_request(["web3"], "web", "ready")
    assert haproxy.plan(made_ready, [("web", "web3")], request)[0].commands == []


def test_plan_refuses_what_set_server_cannot_reach() -> None:
    with pytest.raises(HAProxyError) as caught:
        _plan(servers=["api1"], state="ready")
    assert str(caught.value) == ("api/api1 cannot be set to ready with 'set server': it inherits maintenance from the "
                                 "server it tracks; change the tracked server (or the name resolution) instead")
    with pytest.raises(HAProxyError, match="api/api1 cannot be set to drain"):
        _plan(servers=["api1"], state="drain")
    # Forcing maintenance works: it keeps the server down when the tracked one comes back.
    assert _plan(servers=["api1"], state="maint")[0][3] == ["set server api/api1 state maint"]


# --- sync ------------------------------------------------------------------

def _sync(client: FakeClient, check_mode: bool = False, **args: object) -> dict:
    clock = Clock()
    return haproxy.sync(client, haproxy.make_request(**args), check_mode=check_mode, sleep=clock.sleep, clock=clock)


def test_sync_applies_and_verifies() -> None:
    after = servers_state_with({("web", "web1"): {"srv_admin_state": 8}, ("api", "web1"): {"srv_admin_state": 8}})
    client = FakeClient({"show servers state": [SHOW_SERVERS_STATE, after]})
    result = _sync(client, servers=["web1"], state="drain")
    assert result["changed"] is True
    assert result["commands"] == client.sets == ["set server web/web1 state drain", "set server api/web1 state drain"]
    assert client.sent == ["show cli level", "show servers state", "show stat -1 6 -1", "set server web/web1 state drain",
                           "set server api/web1 state drain", "show servers state", "show stat -1 4 -1"]
    assert result["diff"] == {"before": {"web/web1": {"state": "maint", "weight": 1}, "api/web1": {"state": "ready", "weight": 1}},
                              "after": {"web/web1": {"state": "drain", "weight": 1}, "api/web1": {"state": "drain", "weight": 1}}}
    assert result["servers"][1] == {"backend": "api", "server": "web1", "before": {"state": "ready", "weight": 1},
                                    "after": {"state": "drain", "weight": 1}, "status": "no check", "sessions": 0}


def test_sync_check_mode_sends_no_change() -> None:
    client = FakeClient()
    result = _sync(client, check_mode=True, servers=["web1"], state="ready", weight=2, wait=True)
    assert result["changed"] is True and client.sets == []
    assert result["commands"] == ["set server web/web1 state ready", "set server web/web1 weight 2",
                                  "set server api/web1 weight 2"]
    # No waiting in check mode either.
    assert "show stat -1 4 -1" not in client.sent


def test_sync_never_changes_for_sessions_or_health() -> None:
    busy = stat_with({("web", "web2"): {"scur": "7", "status": "DOWN"}})
    client = FakeClient({"show stat -1 6 -1": busy})
    result = _sync(client, servers=["web2"], backend="web", state="drain", weight=5)
    assert result["changed"] is False and client.sets == []
    assert (result["servers"][0]["status"], result["servers"][0]["sessions"]) == ("DOWN", 7)


def test_sync_refuses_a_user_level_socket_before_reading() -> None:
    client = FakeClient({"show cli level": "user\n"})
    with pytest.raises(HAProxyError) as caught:
        _sync(client, check_mode=True, servers=["web1"], state="drain")
    assert str(caught.value) == ("unix socket /run/haproxy/admin.sock is at level user: changing servers needs a stats "
                                 "socket declared with 'level admin' in haproxy.cfg")
    assert client.sent == ["show cli level"]


def test_sync_permission_denied_says_level_admin() -> None:
    # HAProxy without 'show cli level' (before 2.0): the refusal comes with the first change.
    client = FakeClient({"show cli level": "Unknown command, but maybe one of the following ones is a better match:\n",
                         "set server api/web1 state maint": "Permission denied\n"})
    with pytest.raises(HAProxyError, match=r"Permission denied\): the stats socket must be declared with 'level admin'"):
        _sync(client, servers=["web1"], backend="api", state="maint")


def test_sync_reports_what_haproxy_refused_and_what_was_done() -> None:
    refusal = "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
    client = FakeClient({"set server web/web2 weight 7": refusal})
    with pytest.raises(HAProxyError) as caught:
        _sync(client, servers=["web2"], backend="web", state="maint", weight=7)
    assert str(caught.value) == ("HAProxy refused 'set server web/web2 weight 7': Backend is using a static LB algorithm "
                                 "and only accepts weights '0%' and '100%'. (already done: set server web/web2 state maint)")


def test_sync_verifies_the_change() -> None:
    # HAProxy answered nothing but web/web1 is still in maintenance.
    client = FakeClient()
    with pytest.raises(HAProxyError, match=r"^after set server web/web1 state ready HAProxy reports web/web1 as maint "
                                           r"with weight 1, not ready with weight 1$"):
        _sync(client, servers=["web1"], backend="web", state="ready")


def test_sync_raises_the_cli_timeout_when_waiting() -> None:
    client = FakeClient()
    _sync(client, servers=["web2"], backend="web", state="drain", wait=True, wait_interval=25)
    assert client.sent[1] == "set timeout cli 35"


# --- wait ------------------------------------------------------------------

def _wait(answers: list, state: str, timeout: float, interval: float,
          targets: tuple = (("web", "web2"),)) -> tuple:
    client = FakeClient({"show stat -1 4 -1": answers})
    clock = Clock()
    try:
        haproxy.wait_for(client, list(targets), state, timeout, interval, clock.sleep, clock)
        error = None
    except HAProxyError as exc:
        error = str(exc)
    return client.sent.count("show stat -1 4 -1"), clock.sleeps, error


def test_wait_checks_one_last_time_at_the_deadline() -> None:
    busy = stat_with({("web", "web2"): {"scur": "2"}})
    # Sessions gone exactly at the deadline (third poll at t=1.0): that counts.
    assert _wait([busy, busy, SHOW_STAT], "drain", 1, 0.5) == (3, [0.5, 0.5], None)
    # The last sleep is cut short to land on the deadline.
    assert _wait([busy, busy, busy, SHOW_STAT], "drain", 1, 0.4) == (4, [0.4, 0.4, 0.2], None)


def test_wait_timeout_names_servers_and_sessions() -> None:
    busy = stat_with({("web", "web2"): {"scur": "2"}, ("api", "web1"): {"scur": "1"}})
    polls, sleeps, error = _wait([busy], "drain", 1, 0.5, (("web", "web2"), ("api", "web1"), ("web", "web3")))
    assert (polls, sleeps) == (3, [0.5, 0.5])
    assert error == ("waited 1 s for web/web2, api/web1, web/web3 to be without sessions: web/web2 still holds 2 sessions; "
                     "api/web1 still holds 1 session")


def test_wait_for_drain_needs_no_status_change() -> None:
    # Draining servers stay UP (or no check): only the sessions count.
    up = stat_with({("web", "web2"): {"status": "UP"}})
    assert _wait([up], "drain", 30, 0.5) == (1, [], None)
    assert _wait([SHOW_STAT], "maint", 0, 0.5, (("web", "web1"), ("api", "web1"))) == (1, [], None)


def test_wait_for_up() -> None:
    going_down = stat_with({("web", "web1"): {"status": "UP 1/3", "check_status": "L4CON"}})
    up = stat_with({("web", "web1"): {"status": "UP", "check_status": "L4OK"}})
    # 'no check' is up; 'UP 1/3' (a check failed) is not yet.
    assert _wait([going_down, up], "ready", 5, 1, (("web", "web1"), ("api", "web1"))) == (2, [1], None)
    down = stat_with({("web", "web1"): {"status": "DOWN", "check_status": "L4CON"}})
    assert _wait([down], "ready", 0, 1, (("web", "web1"),))[2] == \
        "waited 0 s for web/web1 to be up: web/web1 is DOWN (check L4CON)"
    assert _wait([SHOW_STAT], "ready", 0, 1, (("api", "api1"),))[2] == \
        "waited 0 s for api/api1 to be up: api/api1 is MAINT (via web/web1)"


def test_wait_notices_a_server_that_went_away() -> None:
    gone = SHOW_STAT.replace("web,web2,", "web,web9,")
    assert _wait([gone], "drain", 0, 1)[2] == "waited 0 s for web/web2 to be without sessions: web/web2 is no longer in HAProxy"


# --- gather ----------------------------------------------------------------

def test_gather_everything() -> None:
    client = FakeClient()
    facts = haproxy.gather(client)
    assert client.sent == ["show info", "show stat", "show servers state"]
    assert facts["info"]["Version"] == "2.6.12-1+deb12u4"
    assert facts["frontends"] == {"www": {"status": "OPEN", "sessions": 0, "session_limit": 9985, "mode": "tcp"}}
    web = facts["backends"]["web"]
    assert (web["status"], web["sessions"], web["mode"]) == ("DOWN", 0, "tcp")
    assert web["servers"]["web2"] == {"status": "DRAIN", "admin_state": "drain", "operational_state": "running",
                                      "sessions": 0, "queued": 0, "weight": 5, "initial_weight": 10, "check_status": None,
                                      "check_description": None, "address": "127.0.0.1:19971"}
    assert web["servers"]["web1"]["check_status"] is None and web["servers"]["web1"]["admin_state"] == "maint"
    assert web["servers"]["web3"]["admin_state"] == "maint"
    assert facts["backends"]["api"]["servers"]["api1"]["status"] == "MAINT (via web/web1)"
    assert facts["backends"]["api"]["servers"]["api1"]["admin_state"] == "maint"


def test_gather_the_admin_state_prefers_the_flags() -> None:
    # A drained server that is DOWN shows DOWN in show stat; the flags still say drain.
    client = FakeClient({"show stat": stat_with({("web", "web2"): {"status": "DOWN"}})})
    assert haproxy.gather(client, ["stat"])["backends"]["web"]["servers"]["web2"]["admin_state"] == "ready"
    assert haproxy.gather(client, ["stat", "servers"])["backends"]["web"]["servers"]["web2"]["admin_state"] == "drain"


def test_gather_parts() -> None:
    client = FakeClient()
    assert sorted(haproxy.gather(client, ["info"])) == ["info"]
    servers_only = haproxy.gather(client, ["servers"])
    assert sorted(servers_only) == ["backends"]
    assert servers_only["backends"]["api"]["servers"]["web1"] == {
        "admin_state": "ready", "operational_state": "running", "weight": 1, "initial_weight": 1, "address": "127.0.0.1:19970"}
    with pytest.raises(HAProxyError, match="gather knows info, stat, servers, not acl"):
        haproxy.gather(client, ["acl"])


# --- the wire --------------------------------------------------------------

def _standin(sock: socket.socket, answers: dict, chunk: int = 3) -> None:
    """HAProxy's interactive mode over ``sock``: every answer then the prompt, sent a few bytes at a time."""
    reader = sock.makefile("rb")
    for raw in reader:
        line = raw.decode().rstrip("\n")
        if line == "quit":
            break
        answer = answers.get(line)
        if answer is None:
            break
        data = (answer + "\n> ").encode()
        for start in range(0, len(data), chunk):
            sock.sendall(data[start:start + chunk])
    reader.close()
    sock.close()


def _client(answers: dict, chunk: int = 3) -> tuple:
    ours, theirs = socket.socketpair()
    ours.settimeout(2)
    thread = threading.Thread(target=_standin, args=(theirs, dict({"prompt": ""}, **answers), chunk), daemon=True)
    thread.start()
    return haproxy.Client(ours, "unix socket /test.sock"), thread


def test_client_reads_answers_up_to_the_prompt() -> None:
    client, thread = _client({"show cli level": "admin\n", "set server web/web1 state drain": "",
                              "show servers state": SHOW_SERVERS_STATE.rstrip("\n") + "\n"})
    with client:
        assert client.command("show cli level") == "admin\n"
        assert client.command("set server web/web1 state drain") == ""
        assert haproxy.parse_servers_state(client.command("show servers state")) == STATE_ROWS
    thread.join(2)
    assert not thread.is_alive()


def test_client_errors() -> None:
    client, _thread = _client({"set server web/web1 state drain": "Permission denied\n"}, chunk=1)
    with client:
        with pytest.raises(HAProxyError, match=r"must be declared with 'level admin'"):
            client.command("set server web/web1 state drain")
        with pytest.raises(HAProxyError, match="one command at a time"):
            client.command("show info;show stat")
        # The stand-in hangs up on a command it does not know.
        with pytest.raises(HAProxyError, match=r"^HAProxy at unix socket /test.sock closed the connection during 'show info'$"):
            client.command("show info")


def test_client_times_out() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    try:
        with pytest.raises(HAProxyError, match=r"^HAProxy at test did not answer 'prompt' within 0.2 s$"):
            haproxy.Client(ours, "test")
    finally:
        ours.close()
        theirs.close()


def _connect_error(text: str) -> str:
    with pytest.raises(HAProxyError) as caught:
        haproxy.connect(haproxy.parse_address(text), timeout=2)
    return str(caught.value)


def test_connect_errors(tmp_path: Path) -> None:
    missing = str(tmp_path / "admin.sock")
    assert _connect_error(missing) == (f"HAProxy socket {missing} does not exist: is haproxy running, with 'stats socket "
                                       f"{missing} level admin' in the global section of haproxy.cfg?")
    regular = tmp_path / "haproxy.cfg"
    regular.write_text("global\n", encoding="utf-8")
    assert _connect_error(str(regular)) == f"{regular} is not a socket: socket must be the path of HAProxy's stats socket"
    # A socket file nobody listens on, as a stopped haproxy leaves it.
    stale = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(stale)
    assert _connect_error(stale).startswith(f"HAProxy refuses connections on unix socket {stale} (connection refused)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert _connect_error(f"127.0.0.1:{port}").startswith(f"HAProxy refuses connections on tcp://127.0.0.1:{port}")


def test_connect_speaks_interactive_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "admin.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def accept() -> None:
        conn, _addr = server.accept()
        _standin(conn, {"prompt": "", "show cli level": "operator\n"})

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with haproxy.connect(haproxy.parse_address(path)) as client:
            with pytest.raises(HAProxyError, match=rf"^unix socket {path} is at level operator: "):
                haproxy.require_admin(client)
    finally:
        thread.join(2)
        server.close()
        os.unlink(path)
