"""Every node's haproxy.cfg, rendered by the role's template and checked by a real haproxy -c.

The services here use every feature of the role at once (protocol checks,
PROXY protocol, TLS termination with a path reachable over TLS only, basic
auth, routing by source, Location rewriting), so that a template change that
HAProxy 2.6 would refuse fails here, without any container.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, haproxy_binary
from floatip_testing import playbook

HERE = Path(__file__).parent
NODES = {"node1": "172.30.80.11", "node2": "172.30.80.12", "node3": "172.30.80.13"}
STATS_PASSWORDS = {"ops": "ops-password-for-tests", "viewer": "viewer-password-for-tests"}
BASIC_PASSWORD = "basic-auth-password"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=floatip.test",
                    "-keyout", str(where / "key"), "-out", str(where / "crt")], check=True, capture_output=True, timeout=60)
    pem = where / "site.pem"
    pem.write_text((where / "crt").read_text() + (where / "key").read_text())
    return pem


def _services(cert: Path) -> list[dict]:
    return [
        {"name": "smtp", "port": 25, "check": "smtp", "send_proxy": True, "timeout": 300},
        {"name": "submission", "port": 587, "check": "smtp", "send_proxy": "v2"},
        {"name": "pop3", "port": 110, "check": "pop3"},
        {"name": "imap", "port": 143, "check": "imap", "persistence": "source"},
        {"name": "web", "mode": "http", "port": 80, "server_port": 5080, "check_path": "/check.txt",
         "tls_port": 443, "cert": str(cert), "tls_only_paths": ["/mywebpage"],
         "auth_users": [{"name": "joebloggs", "password": BASIC_PASSWORD}],
         "location_rewrites": [{"regex": "^http://(.*)$", "replace": "https://\\1"}]},
        {"name": "app", "port": 35007, "vips": ["172.30.80.106"], "check": "none",
         "routes": [{"src": ["203.0.113.0/24"], "to": "pilot"}]},
        {"name": "pilot", "port": 35096, "vips": ["172.30.80.106"]},
    ]


def _inventory(tmp_path: Path, services: list[dict]) -> Path:
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "floatip_network": "172.30.80.0/24",
                "floatip_vip_pool": ["172.30.80.101-172.30.80.106"],
                "floatip_vips_per_node": 2,
                "floatip_vip_backend": "keepalived",
                "haproxy_services": services,
                "haproxy_stats_users": [{"name": "ops", "password": STATS_PASSWORDS["ops"], "admin": True},
                                        {"name": "viewer", "password": STATS_PASSWORDS["viewer"]}],
                "haproxy_runtime_api_tcp_port": 9999,
            },
            "children": {"floatip_nodes": {"hosts": {name: {"floatip_address": address} for name, address in NODES.items()}}},
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, cert: Path) -> dict[str, str]:
    from conftest import _ansible_playbook

    tmp_path = tmp_path_factory.mktemp("render")
    run = _ansible_playbook(HERE / "render_haproxy.yml", _inventory(tmp_path, _services(cert)), {"render_dir": str(tmp_path)})
    assert run.rc == 0, run.output
    return {name: (tmp_path / f"{name}.cfg").read_text() for name in NODES}


def _section(config: str, header: str) -> list[str]:
    lines = config.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start + 1:end] if line.strip()]


@pytest.mark.parametrize("node", sorted(NODES))
def test_haproxy_accepts_every_nodes_config(rendered: dict[str, str], node: str, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(rendered[node])
    done = subprocess.run([haproxy_binary(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rendered[node].startswith("#")  # ansible_managed first


@pytest.mark.parametrize("node", sorted(NODES))
def test_each_node_prefers_its_own_server(rendered: dict[str, str], node: str) -> None:
    servers = [line for line in _section(rendered[node], "backend be_smtp") if line.startswith("server ")]
    assert servers == [
        f"server {name} {address}:25 check" + ("" if name == node else " backup") for name, address in NODES.items()
    ]
    assert "option allbackups" in _section(rendered[node], "backend be_smtp")


def test_frontends_bind_the_vips_and_the_stats_page_the_nodes_own_address(rendered: dict[str, str]) -> None:
    smtp = _section(rendered["node2"], "frontend fe_smtp")
    assert [line for line in smtp if line.startswith("bind ")] == [f"bind 172.30.80.10{i}:25" for i in range(1, 7)]
    assert "bind 172.30.80.106:35007" in _section(rendered["node2"], "frontend fe_app")
    assert "bind 172.30.80.12:8404" in _section(rendered["node2"], "listen stats")


def test_protocol_checks_and_proxy_protocol(rendered: dict[str, str]) -> None:
    config = rendered["node1"]
    assert "option smtpchk EHLO node1" in _section(config, "backend be_smtp")
    assert "default-server inter 3000ms fall 3 rise 2 send-proxy" in _section(config, "backend be_smtp")
    assert "default-server inter 3000ms fall 3 rise 2 send-proxy-v2" in _section(config, "backend be_submission")
    assert "tcp-check expect string +OK" in _section(config, "backend be_pop3")
    assert "tcp-check expect string *\\ OK" in _section(config, "backend be_imap")
    assert "balance source" in _section(config, "backend be_imap")
    assert "http-check send meth HEAD uri /check.txt ver HTTP/1.1 hdr Host node1" in _section(config, "backend be_web")
    assert all(" check" not in line for line in _section(config, "backend be_app") if line.startswith("server "))


def test_http_frontend_features(rendered: dict[str, str]) -> None:
    web = _section(rendered["node1"], "frontend fe_web")
    assert "bind 172.30.80.101:443 ssl crt " in "\n".join(web)
    assert web.index("http-request del-header X-Forwarded-For") < web.index("option forwardfor")
    assert "http-request deny if { path_beg -i /mywebpage } !{ ssl_fc }" in web
    assert "http-request auth realm web unless { http_auth(web_users) }" in web
    assert {"http-response del-header Server", "http-response del-header X-Powered-By"} <= set(web)
    assert "http-response replace-header Location ^http://(.*)$ https://\\1" in web
    assert "use_backend be_pilot if { src 203.0.113.0/24 }" in _section(rendered["node1"], "frontend fe_app")


def test_passwords_are_stored_hashed_and_stats_admin_is_for_admins(rendered: dict[str, str]) -> None:
    for config in rendered.values():
        for secret in [*STATS_PASSWORDS.values(), BASIC_PASSWORD]:
            assert secret not in config
        assert "insecure-password" not in config
        users = _section(config, "userlist floatip_stats")
        assert any(line.startswith("user ops password $6$") and line.endswith("groups admin") for line in users)
        assert any(line.startswith("user viewer password $6$") and line.endswith("groups readonly") for line in users)
        stats = _section(config, "listen stats")
        assert "stats admin if { http_auth_group(floatip_stats) admin }" in stats


def test_runtime_api_sockets(rendered: dict[str, str]) -> None:
    glob = _section(rendered["node1"], "global")
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin user root group haproxy expose-fd listeners" in glob
    assert "stats socket 127.0.0.1:9999 level user" in glob
    assert "server-state-file /var/lib/haproxy/server-state" in glob
    assert "load-server-state-from-file global" in _section(rendered["node1"], "defaults")


def test_a_second_render_is_the_same(rendered: dict[str, str], cert: Path, tmp_path: Path) -> None:
    from conftest import _ansible_playbook

    run = _ansible_playbook(HERE / "render_haproxy.yml", _inventory(tmp_path, _services(cert)), {"render_dir": str(tmp_path)})
    assert run.rc == 0, run.output
    assert {name: (tmp_path / f"{name}.cfg").read_text() for name in NODES} == rendered


def test_bad_services_fail_naming_the_variable_and_render_nothing(cert: Path, tmp_path: Path) -> None:
    from conftest import _ansible_playbook

    services = [*_services(cert), {"name": "smtp2", "port": 25}]
    run = _ansible_playbook(HERE / "render_haproxy.yml", _inventory(tmp_path, services), {"render_dir": str(tmp_path)})
    assert run.rc != 0
    assert "haproxy_services: smtp2 and smtp both listen on 172.30.80.101:25" in run.output
    assert not list(tmp_path.glob("*.cfg"))


def test_the_masked_diff_shows_a_change_and_no_password_hash(cert: Path, tmp_path: Path) -> None:
    """The role's --diff task (tasks/diff.yml) against the files the template
    wrote: the lookup renders what the template module writes (no change),
    and a changed check interval is the one line that differs, hashes
    masked."""
    from conftest import _ansible_playbook, _env

    services = _services(cert)
    run = _ansible_playbook(HERE / "render_haproxy.yml", _inventory(tmp_path, services), {"render_dir": str(tmp_path)})
    assert run.rc == 0, run.output
    hashes = {line.split()[3] for line in (tmp_path / "node1.cfg").read_text().splitlines() if " password " in line}
    assert len(hashes) == 3
    slower_smtp = [{**service, "check_interval": 7} if service["name"] == "smtp" else service for service in services]
    for changed, with_services in ((False, services), (True, slower_smtp)):
        extra = {"__haproxy_config": str(tmp_path) + "/{{ inventory_hostname }}.cfg"}
        report = playbook.run(HERE / "masked_diff_haproxy.yml", _inventory(tmp_path, with_services),
                              ["--diff", "-e", json.dumps(extra)], cwd=ROOT, env=_env(), timeout=300)
        assert report["rc"] == 0, report["failures"]
        shown = [task for play in report["plays"] for task in play["tasks"]
                 if task["task"]["name"].endswith("Show what would change in haproxy.cfg, its password hashes masked")]
        assert len(shown) == 1
        for name in NODES:
            result = shown[0]["hosts"][name]
            assert result["changed"] is changed
            before, after = (set(result["diff"][side].splitlines()) for side in ("before", "after"))
            assert {line.strip() for line in after - before} == ({"default-server inter 7000ms fall 3 rise 2 send-proxy"} if changed else set())
            assert "    user ops password ******** groups admin" in after
        assert not any(secret in json.dumps(report) for secret in [*hashes, *STATS_PASSWORDS.values(), BASIC_PASSWORD])
