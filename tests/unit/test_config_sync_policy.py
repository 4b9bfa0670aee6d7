"""What a committer may push: config sync's policy, against a real haproxy -c.

Each hostile HAProxy case is first shown to pass ``haproxy -c`` (HAProxy 2.6,
as on the nodes), so that the daemon's own check would have let it through,
and then to be refused by the policy with a reason that names the directive
and the line. keepalived's cases need no keepalived: the policy reads the
file before any keepalived does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from config_sync_daemon import cs

HAPROXY = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"])) or "haproxy"
ADMIN_SOCKET = "/run/haproxy/admin.sock mode 660 level admin user root group haproxy expose-fd listeners"
RUN_AS = {"user": "haproxy", "group": "haproxy", "chroot": "/var/lib/haproxy"}

GLOBAL = f"""\
global
    log /dev/log local0
    chroot /var/lib/haproxy
    user haproxy
    group haproxy
    maxconn 100
    stats socket {ADMIN_SOCKET}
    stats socket 127.0.0.1:19999 level user
    stats timeout 30s
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    tune.bufsize 32768
{{global_extra}}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

userlist ops
    group admin
    user ops password $6$abcdefgh$0123456789 groups admin

listen stats
    bind 127.0.0.1:18404
    stats enable
    stats uri /
    http-request auth realm stats unless {{{{ http_auth_group(ops) admin }}}}
    stats admin if {{{{ http_auth_group(ops) admin }}}}

listen probe
    bind 127.0.0.1:18080
    http-request return status 200 content-type text/plain string ok if {{{{ path /ok }}}}
{{proxy_extra}}
{{sections}}"""


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Directories set aside for files (allowed) and beside them (not), with
    an error page, an ACL file, a map and a certificate in each."""
    root = tmp_path_factory.mktemp("places")
    made = {}
    for name in ("allowed", "tls", "elsewhere"):
        where = root / name
        where.mkdir()
        (where / "503.http").write_text("HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nsorry\n")
        (where / "sources.acl").write_text("10.0.0.0/8\n")
        (where / "hosts.map").write_text("example.org be_one\n")
        made[name] = where
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=floatip.test",
                    "-keyout", str(root / "key"), "-out", str(root / "crt")], check=True, capture_output=True, timeout=120)
    for name in ("tls", "elsewhere"):
        (made[name] / "site.pem").write_text((root / "crt").read_text() + (root / "key").read_text())
    # A Lua file that leaves a mark when it runs: haproxy -c runs it.
    (root / "mark.lua").write_text(f'local f = io.open("{root}/lua-ran", "w"); f:write("ran"); f:close()\n')
    made["root"] = root
    return made


def haproxy_policy(places: dict[str, Path]) -> cs.HAProxyPolicy:
    return cs.HAProxyPolicy({"run_as": RUN_AS, "stats_sockets": [ADMIN_SOCKET, "127.0.0.1:19999 level user"],
                             "file_dirs": [str(places["allowed"])], "tls_dirs": [str(places["tls"])]})


def config(global_extra: str = "", proxy_extra: str = "", sections: str = "", places: dict | None = None) -> str:
    text = GLOBAL.format(global_extra=global_extra, proxy_extra=proxy_extra, sections=sections)
    for name, where in (places or {}).items():
        text = text.replace("{" + name + "}", str(where))
    return text


def haproxy_check(text: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return subprocess.run([HAPROXY, "-c", *options, "-f", str(path)], capture_output=True, text=True, timeout=60, check=False)


def refusal(policy, text: str, target: str = "haproxy") -> str:
    assembled = cs.Assembled(target)
    assembled.add(f"{target}/shared.cfg", text)
    with pytest.raises(cs.Refused) as refused:
        policy.check(assembled)
    assert refused.value.target == target
    reason = str(refused.value)
    assert "\n" not in reason
    return reason


def line_of(text: str, fragment: str) -> int:
    return next(number for number, line in enumerate(text.split("\n"), start=1) if fragment in line)


def test_the_roles_shapes_and_files_in_their_places_are_allowed(places: dict[str, Path], tmp_path: Path) -> None:
    text = config(
        proxy_extra=(
            "    errorfile 503 {allowed}/503.http\n"
            "    http-request deny if { src -f {allowed}/sources.acl }\n"
            "    http-request set-header X-Backend %[req.hdr(host),lower,map_str({allowed}/hosts.map,none)]\n"
            "    http-request return status 200 content-type text/plain file {allowed}/503.http if { path /f }\n"
            "    http-request use-service prometheus-exporter if { path /metrics }\n"
            "    filter compression\n"
            "    no option httpclose\n"
            "    bind 127.0.0.1:18443 ssl crt {tls}/site.pem\n"
        ),
        sections="backend tls\n    server s 127.0.0.1:1 ssl verify required ca-file {tls}/site.pem\n",
        places=places,
    )
    checked = haproxy_check(text, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assembled = cs.Assembled("haproxy")
    assembled.add("haproxy/haproxy.cfg", text)
    haproxy_policy(places).check(assembled)


# (case, global lines, proxy lines, more sections, what the reason says,
#  the line it names, haproxy -c's options: -W where the case needs the
#  master-worker mode the nodes' haproxy runs in)
HOSTILE = [
    ("program", "", "", "program evil\n    command /bin/sh -c id\n", "starts a program", "program evil", ["-W"]),
    ("external-check", "    insecure-fork-wanted\n    external-check\n", "",
     "backend checked\n    option external-check\n    external-check command /bin/true\n    server s 127.0.0.1:1 check\n",
     "start programs", "insecure-fork-wanted", []),
    ("insecure-setuid-wanted", "    insecure-setuid-wanted\n", "", "", "change their account", "insecure-setuid", []),
    ("lua-prepend-path", "    lua-prepend-path /tmp/?.lua\n", "", "", "Lua", "lua-prepend-path", []),
    ("tune.lua", "    tune.lua.maxmem 10\n", "", "", "Lua", "tune.lua.maxmem", []),
    ("stats socket on every address", "    stats socket ipv4@0.0.0.0:9999 level admin\n", "", "",
     "runtime API socket other than the haproxy role's own", "0.0.0.0:9999", []),
    ("stats socket admin over TCP", "    stats socket 127.0.0.1:19999 level admin\n", "", "",
     "runtime API socket other than the haproxy role's own", "19999 level admin", []),
    ("stats socket spelt with quotes", '    stats "socket" "ipv4@0.0.0.0:9998"\n', "", "",
     "runtime API socket", "9998", []),
    ("master-worker", "    master-worker\n", "", "", "how HAProxy's processes are run", "master-worker", []),
    ("uid", "    uid 0\n", "", "", "account HAProxy runs as", "uid 0", []),
    ("setenv", "    setenv LD_PRELOAD /tmp/x.so\n", "", "", "environment", "setenv", []),
    ("presetenv", "    presetenv PATH /tmp\n", "", "", "environment", "presetenv", []),
    ("pidfile", "    pidfile /etc/floatip-test-pid\n", "", "", "write a file as root", "pidfile", []),
    ("errorfile elsewhere", "", "    errorfile 503 {elsewhere}/503.http\n", "", "503.http as root", "errorfile 503", []),
    ("errorfile climbing out", "", "    errorfile 503 {allowed}/../elsewhere/503.http\n", "", "as root",
     "errorfile 503", []),
    ("return file", "", "    http-request return status 200 content-type text/plain file /etc/hostname if { path /x }\n",
     "", "/etc/hostname as root", "file /etc/hostname", []),
    ("return lf-file", "", "    http-request return status 200 content-type text/plain lf-file /etc/hostname\n",
     "", "/etc/hostname as root", "lf-file", []),
    ("http-errors section", "", "", "http-errors errs\n    errorfile 503 {elsewhere}/503.http\n", "as root",
     "errorfile 503", []),
    ("ACL file", "", "    http-request deny if { src -f {elsewhere}/sources.acl }\n", "", "sources.acl as root",
     "src -f", []),
    ("map file", "", "    http-request set-header X %[src,map({elsewhere}/hosts.map)]\n", "", "hosts.map as root",
     "map(", []),
    ("map file climbing out through quotes", "",
     "    http-request set-header X %[src,map({allowed}/\\\"..\\\"/elsewhere/hosts.map)]\n", "", "as root", "map(", []),
    ("map file in quotes", "", '    http-request set-header X \'%[src,map("{allowed}/hosts.map")]\'\n', "",
     "as root", "map(", []),
    ("certificate elsewhere", "", "    bind 127.0.0.1:18443 ssl crt {elsewhere}/site.pem\n", "", "site.pem as root",
     "ssl crt", []),
    ("unix socket bind", "", "", "listen local\n    bind {root}/replaced.sock\n", "socket file as root",
     "replaced.sock", []),
    ("env()", "", "    http-request set-header X %[env(HOME)]\n", "", "environment", "env(HOME)", []),
    ("environment variable", "", '    http-request set-header X "$HOME"\n', "", "environment variable",
     "$HOME", []),
    ("server state of the revision's choosing", "", "",
     "backend state\n    load-server-state-from-file local\n", "reads a file", "load-server-state-from-file", []),
    ("server-state-file-name", "", "", "backend state\n    server-state-file-name /etc/passwd\n", "as root",
     "server-state-file-name", []),
    ("stats admin without a login", "", "", "listen open\n    bind 127.0.0.1:18405\n    stats enable\n"
     "    stats admin if TRUE\n", "admin actions", "stats admin if TRUE", []),
]


@pytest.mark.parametrize(("global_extra", "proxy_extra", "sections", "says", "named", "options"),
                         [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_haproxy_accepts_it_and_config_sync_refuses_it(places: dict[str, Path], tmp_path: Path, global_extra: str,
                                                       proxy_extra: str, sections: str, says: str, named: str,
                                                       options: list[str]) -> None:
    text = config(global_extra, proxy_extra, sections, places)
    checked = haproxy_check(text, tmp_path, *options)
    assert checked.returncode == 0, checked.stderr
    reason = refusal(haproxy_policy(places), text)
    assert says in reason
    assert f"haproxy/shared.cfg line {line_of(text, named)}: " in reason


@pytest.mark.parametrize("spelling", ["lua-load", '"lua-load"', "'lua-load'", "lua\\x2dload", 'lua"-"load',
                                      "lua-load\\x00ignored", "lua-load-per-thread"])
def test_lua_is_refused_however_it_is_spelt_and_haproxy_c_would_run_it(
        places: dict[str, Path], tmp_path: Path, spelling: str) -> None:
    mark = places["root"] / "lua-ran"
    mark.unlink(missing_ok=True)
    text = config(f"    {spelling} {places['root']}/mark.lua\n")
    # HAProxy reads every spelling as the keyword, and its check runs the code.
    checked = haproxy_check(text, tmp_path)
    assert checked.returncode == 0 and mark.exists(), checked.stderr
    reason = refusal(haproxy_policy(places), text)
    assert "Lua" in reason and f"line {line_of(text, 'mark.lua')}:" in reason


def test_each_part_of_an_external_check_is_refused_on_its_own(places: dict[str, Path]) -> None:
    for line in ("    option external-check\n", "    external-check command /bin/true\n", "    external-check path /bin\n"):
        text = config(proxy_extra=line)
        assert f"line {line_of(text, line.strip())}: '{line.strip()}' runs a program for health checks" in refusal(
            haproxy_policy(places), text)


def test_the_global_section_must_run_haproxy_as_its_own_account(places: dict[str, Path], tmp_path: Path) -> None:
    policy = haproxy_policy(places)
    as_root = config().replace("    user haproxy\n", "    user root\n")
    assert haproxy_check(as_root, tmp_path).returncode == 0
    assert "must be 'user haproxy'" in refusal(policy, as_root)
    # No user at all: HAProxy stays root.
    without = config().replace("    user haproxy\n", "")
    assert haproxy_check(without, tmp_path).returncode == 0
    assert "the global section has no 'user haproxy'" in refusal(policy, without)
    unchrooted = config().replace("    chroot /var/lib/haproxy\n", "    chroot /\n")
    assert "must be 'chroot /var/lib/haproxy'" in refusal(policy, unchrooted)
    nothing = config().split("defaults\n", 1)[1]
    assert "no 'global' section" in refusal(policy, "defaults\n" + nothing)


def test_a_line_haproxy_would_cut_differently_is_refused(places: dict[str, Path]) -> None:
    policy = haproxy_policy(places)
    # A CR ends HAProxy's line: what follows would be read by Python only.
    assert "control character" in refusal(policy, config("    maxconn 10\rlua-load /x\n"))
    assert "unmatched quote" in refusal(policy, config('    log "/dev/log local0\n'))
    assert "scope line" in refusal(policy, config() + "[scoped]\n")


def test_the_reason_names_the_repository_file_and_its_line(places: dict[str, Path]) -> None:
    assembled = cs.Assembled("haproxy")
    assembled.add("haproxy/haproxy.cfg", config())
    assembled.add("haproxy/nodes/n1/zz-extra.cfg", "listen extra\n    bind 127.0.0.1:18100\n\n    external-check command /x\n")
    with pytest.raises(cs.Refused, match=r"^haproxy/nodes/n1/zz-extra\.cfg line 4: 'external-check command /x' runs"):
        haproxy_policy(places).check(assembled)


# -- keepalived

KEEPALIVED = """\
# As roles/floating_ip/templates/keepalived.conf.j2 renders it.
global_defs {
    router_id n1
    enable_script_security
    script_user root
    vrrp_version 2
    vrrp_garp_master_delay 1
    vrrp_notify_fifo /run/floatip-vrrp.fifo
    vrrp_notify_fifo_script /usr/local/lib/floatip/vrrp-notify
}

vrrp_track_file floatip_standby {
    file /etc/keepalived/floatip-standby
    weight 0
    init_file 0
}

vrrp_script floatip_track_haproxy {
    script "/usr/bin/pgrep -x haproxy"
    interval 1
    fall 2
    rise 2
}

vrrp_script floatip_reach {
    script "/usr/local/lib/floatip/reach-any 172.30.80.12 172.30.80.13 172.30.80.1"
    interval 1
    timeout 2
}

vrrp_instance floatip_51 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    unicast_src_ip 172.30.80.11
    check_unicast_src
    unicast_peer {
        172.30.80.12
    }
    authentication {
        auth_type PASS
        auth_pass pa$$word
    }
    virtual_ipaddress {
        172.30.80.101/24 dev eth0
    }
    track_file {
        floatip_standby
    }
    track_script {
        floatip_track_haproxy
        floatip_reach
    }
}
"""
KEEPALIVED_POLICY = {
    "scripts": [["/usr/bin/pgrep", "-x", "<name>"], ["/usr/local/lib/floatip/reach-any", "<address>..."]],
    "global_defs": {"script_user": "root", "vrrp_notify_fifo": "/run/floatip-vrrp.fifo",
                    "vrrp_notify_fifo_script": "/usr/local/lib/floatip/vrrp-notify"},
    "track_files": ["/etc/keepalived/floatip-standby"],
}
INSTANCE = "    advert_int 1\n"


def test_the_vip_layers_own_keepalived_conf_is_allowed() -> None:
    assembled = cs.Assembled("keepalived")
    assembled.add("keepalived/nodes/n1/keepalived.conf", KEEPALIVED)
    cs.KeepalivedPolicy(KEEPALIVED_POLICY).check(assembled)


# (case, (old, new) replacement in KEEPALIVED, what the reason says, the line it names)
KEEPALIVED_HOSTILE = [
    ("notify_master", (INSTANCE, INSTANCE + '    notify_master "/bin/sh -c id"\n'), "runs a program", "notify_master"),
    ("notify", (INSTANCE, INSTANCE + "    notify /usr/local/bin/x\n"), "runs a program", "notify /usr"),
    ("notify spelt in quotes", (INSTANCE, INSTANCE + '    "notify_backup" /bin/x\n'), "runs a program",
     "notify_backup"),
    ("another script", ('"/usr/bin/pgrep -x haproxy"', '"/bin/sh -c id"'), "a vrrp_script may run only",
     "/bin/sh -c id"),
    ("an option smuggled into pgrep", ('"/usr/bin/pgrep -x haproxy"', '"/usr/bin/pgrep -x -f"'),
     "a vrrp_script may run only", "pgrep -x -f"),
    ("an option smuggled into reach-any", ('172.30.80.1"', '--help"'), "a vrrp_script may run only", "--help"),
    ("a script as another account", ("    timeout 2\n", "    timeout 2\n    user nobody\n"), "another account",
     "user nobody"),
    ("track_script of a block on one line", ("    fall 2\n", "    fall 2\n    track_script { x }\n"),
     "brace in the middle", "track_script {"),
    ("script_user", ("script_user root", "script_user nobody"), "may only be 'script_user root'", "script_user"),
    ("vrrp_notify_fifo_script", ("/usr/local/lib/floatip/vrrp-notify", "/tmp/evil"), "as the VIP layer sets it",
     "/tmp/evil"),
    ("notify_fifo_script", ("    enable_script_security\n", "    enable_script_security\n    notify_fifo_script /tmp/x\n"),
     "runs a program", "notify_fifo_script"),
    ("startup_script", ("    enable_script_security\n", "    enable_script_security\n    startup_script /tmp/x\n"),
     "runs a program", "startup_script"),
    ("include", ("global_defs {\n", "include /etc/keepalived/other.conf\nglobal_defs {\n"), "reads another file",
     "include"),
    ("track file elsewhere", ("file /etc/keepalived/floatip-standby", "file /etc/shadow"), "may watch only",
     "/etc/shadow"),
    ("conditional line", (INSTANCE, INSTANCE + "@n1 notify_master /x\n"), "conditional", "@n1"),
    ("parameter", ("global_defs {\n", "$ACTION=notify_master\nglobal_defs {\n"), "parameters", "$ACTION"),
    ("sequence", (INSTANCE, INSTANCE + "    ~SEQ(N,1,2) priority 1\n"), "parameters", "~SEQ"),
    ("LVS misc check", ("global_defs {\n", "virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 80 {\n"
                        "        MISC_CHECK {\n            misc_path /bin/x\n        }\n    }\n}\nglobal_defs {\n"),
     "LVS", "virtual_server"),
    ("a continued line", (INSTANCE, INSTANCE + "    priority 1 \\\n"), "continued line", "priority 1 "),
]


@pytest.mark.parametrize(("change", "says", "named"), [case[1:] for case in KEEPALIVED_HOSTILE],
                         ids=[case[0] for case in KEEPALIVED_HOSTILE])
def test_keepalived_directives_that_run_programs_are_refused(change: tuple, says: str, named: str) -> None:
    old, new = change
    assert old in KEEPALIVED
    text = KEEPALIVED.replace(old, new, 1)
    reason = refusal(cs.KeepalivedPolicy(KEEPALIVED_POLICY), text, target="keepalived")
    assert says in reason
    assert f"keepalived/shared.cfg line {line_of(text, named)}: " in reason


def test_a_policy_is_needed_for_every_target() -> None:
    with pytest.raises(cs.SyncError, match="target keepalived has no policy"):
        cs.policy_for({"name": "keepalived"})
    with pytest.raises(cs.SyncError, match="no policy is known for target nginx"):
        cs.policy_for({"name": "nginx", "policy": {}})
    with pytest.raises(cs.SyncError, match="run_as.chroot"):
        cs.policy_for({"name": "haproxy", "policy": {"run_as": {"user": "haproxy", "group": "haproxy"}}})
