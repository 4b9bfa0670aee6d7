"""The HAProxy plan: each node prefers its own service, and bad services are named."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.haproxy_plan import haproxy_plan
from ansible_collections.floatip.ha.plugins.module_utils.cluster import build_model
from ansible_collections.floatip.ha.plugins.module_utils.haproxy_config import ServiceError, build_plan

MODEL = build_model(
    "172.30.80.0/24",
    [("node1", "172.30.80.11"), ("node2", "172.30.80.12"), ("node3", "172.30.80.13")],
    vip_pool=["172.30.80.101-172.30.80.106"],
    vips_per_node=2,
    vip_backend="keepalived",
)
MAIL = [
    {"name": "smtp", "port": 25, "check": "smtp", "send_proxy": True, "timeout": 300},
    {"name": "imap", "port": 143, "check": "imap"},
    {"name": "web", "mode": "http", "port": 80, "server_port": 5080, "check_path": "/check.txt"},
]


def _plan(services: list | None = None, node: str = "node2", **kwargs) -> dict:
    return build_plan(MODEL, MAIL if services is None else services, node, **kwargs)


def test_each_backend_prefers_the_local_server_and_backs_up_with_every_peer() -> None:
    for node in ("node1", "node2", "node3"):
        for service in _plan(node=node)["services"]:
            active = [server["name"] for server in service["servers"] if not server["backup"]]
            backups = [server["name"] for server in service["servers"] if server["backup"]]
            assert active == [node]
            assert sorted(backups) == sorted({"node1", "node2", "node3"} - {node})


def test_servers_are_the_nodes_own_addresses_at_the_server_port() -> None:
    web = next(service for service in _plan()["services"] if service["name"] == "web")
    assert [(s["address"], s["port"]) for s in web["servers"]] == [
        ("172.30.80.11", 5080), ("172.30.80.12", 5080), ("172.30.80.13", 5080)]


def test_frontends_bind_every_vip_by_default_and_a_chosen_few_when_asked() -> None:
    plan = _plan([{"name": "app", "port": 35007, "vips": ["172.30.80.106"]}, {"name": "smtp", "port": 25}])
    assert plan["services"][0]["vips"] == ["172.30.80.106"]
    assert plan["services"][1]["vips"] == MODEL["vips"]
    assert plan["address"] == "172.30.80.12"


def test_defaults_follow_the_mode() -> None:
    smtp, imap, web = _plan()["services"]
    assert (smtp["check"], smtp["persistence"], smtp["send_proxy"], smtp["timeout_ms"]) == ("smtp", "none", "send-proxy", 300000)
    assert (web["check"], web["persistence"], web["hide_headers"]) == ("http", "cookie", ["Server", "X-Powered-By", "X-AspNet-Version"])
    assert imap["hide_headers"] == [] and imap["check_interval_ms"] == 3000
    assert smtp["server_port"] == 25


def test_source_persistence_balances_by_source() -> None:
    service = _plan([{"name": "web", "mode": "http", "port": 80, "persistence": "source"}])["services"][0]
    assert service["balance"] == "source"


def test_the_plan_names_basic_auth_users_but_never_holds_their_passwords() -> None:
    service = _plan([{"name": "web", "mode": "http", "port": 80,
                      "auth_users": [{"name": "joe", "password": "correct horse battery"}]}])["services"][0]
    assert service["auth_users"] == ["joe"]
    assert "correct horse" not in repr(service)


def test_routes_by_source_to_another_service() -> None:
    services = [{"name": "app", "port": 443, "routes": [{"src": ["203.0.113.0/24"], "to": "pilot"}]},
                {"name": "pilot", "port": 35096}]
    assert _plan(services)["services"][0]["routes"] == [{"src": ["203.0.113.0/24"], "to": "pilot"}]


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ([], "haproxy_services must be a non-empty list"),
        ("smtp", "haproxy_services must be a non-empty list"),
        ([{"port": 25}], "haproxy_services[0].name must be 1-32 characters"),
        ([{"name": "smtp", "port": 0}], "haproxy_services[0] (smtp).port must be a port number from 1 to 65535, got 0"),
        ([{"name": "smtp", "port": "25"}], "(smtp).port must be a port number"),
        ([{"name": "smtp", "port": 25, "mode": "udp"}], "(smtp).mode must be one of tcp, http, got 'udp'"),
        ([{"name": "smtp", "port": 25, "check": "ping"}], "(smtp).check must be one of tcp, smtp, pop3, imap, http, none"),
        ([{"name": "smtp", "port": 25, "check": "http"}], "(smtp).check http needs mode http"),
        ([{"name": "smtp", "port": 25, "persistence": "cookie"}], "(smtp).persistence cookie needs mode http"),
        ([{"name": "smtp", "port": 25, "send_proxy": "v3"}], "(smtp).send_proxy must be false, true (PROXY protocol v1) or v2"),
        ([{"name": "smtp", "port": 25, "prot": 26}], "haproxy_services[0] has unknown keys prot"),
        ([{"name": "smtp", "port": 25, "vips": ["172.30.80.200"]}], "(smtp).vips 172.30.80.200 are not VIPs of floatip_vip_pool"),
        ([{"name": "smtp", "port": 25, "hide_headers": ["Server"]}], "(smtp).hide_headers needs mode http"),
        ([{"name": "smtp", "port": 25, "check_interval": 0}], "(smtp).check_interval must be a number of seconds above 0"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_port": 443}], "(web).tls_port needs cert"),
        ([{"name": "web", "mode": "http", "port": 80, "cert": "/x.pem"}], "(web).cert is given without tls_port"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_only_paths": ["/admin"]}], "(web).tls_only_paths needs tls_port"),
        ([{"name": "web", "mode": "http", "port": 80, "check_path": "health"}], "(web).check_path must be a URL path"),
        ([{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "short"}]}],
         "(web).auth_users[0].password must be a string of at least 8 characters"),
        ([{"name": "web", "mode": "http", "port": 80, "location_rewrites": [{"regex": "(", "replace": "x"}]}],
         "(web).location_rewrites[0].regex is not a regular expression"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["0.0.0.0/0"], "to": "b"}]}, {"name": "b", "port": 26}],
         "(a).routes[0].src[0] '0.0.0.0/0' matches every address"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["10.0.0.1/8"], "to": "b"}]}, {"name": "b", "port": 26}],
         "(a).routes[0].src[0] '10.0.0.1/8' has host bits set"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["0.0.0.0/1", "128.0.0.0/1"], "to": "b"}]}, {"name": "b", "port": 26}],
         "(a).routes[0].src[0] '0.0.0.0/1' is wider than /8"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["192.0.2.0/24"], "to": ["b"]}]}, {"name": "b", "port": 26}],
         "(a).routes[0].to must be the name of another service of haproxy_services"),
        ([{"name": "smtp\n", "port": 25}],
         "haproxy_services[0].name must be 1-32 characters of a-z, 0-9, _ and -, starting with a letter; it holds a control character"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_port": 443, "cert": "/etc/ssl/site.pem\n    stats admin if TRUE"}],
         "(web).cert must be an absolute path of letters, digits and . _ - / @ % + = : , ~ (no spaces, quotes, $ or control characters)"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_port": 443, "cert": 'etc/ssl/site.pem'}], "(web).cert must be an absolute path"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_port": 443, "cert": '/etc/ssl/"site".pem'}], "(web).cert must be an absolute path"),
        ([{"name": "web", "mode": "http", "port": 80, "check_path": "/check.txt\n"}], "(web).check_path must be a URL path"),
        ([{"name": "web", "mode": "http", "port": 80, "check_path": "/check#x"}], "(web).check_path must be a URL path"),
        ([{"name": "web", "mode": "http", "port": 80, "tls_port": 443, "cert": "/x.pem", "tls_only_paths": ["/admin }"]}],
         "(web).tls_only_paths[0] must be a URL path"),
        ([{"name": "web", "mode": "http", "port": 80, "location_rewrites": [{"regex": "^http://(.*)#$", "replace": "x"}]}],
         "(web).location_rewrites[0].regex must be one word"),
        ([{"name": "web", "mode": "http", "port": 80, "location_rewrites": [{"regex": "^x$", "replace": "y\nz"}]}],
         "(web).location_rewrites[0].replace must be one word"),
        ([{"name": "web", "mode": "http", "port": 80, "hide_headers": ["Server\n"]}], "(web).hide_headers[0] must be a header name"),
        ([{"name": "web", "mode": "http", "port": 80, "hide_headers": ["X-A#b"]}], "(web).hide_headers[0] must be a header name"),
        ([{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "long-enough"},
                                                                     {"name": "joe", "password": "long-enough"}]}],
         "(web).auth_users[1].name joe is given twice"),
        ([{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe\n", "password": "long-enough"}]}],
         "(web).auth_users[0].name must be 1-64 characters"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["192.0.2.0/24"], "to": "c"}]}], "(a).routes[0].to must name another service"),
        ([{"name": "a", "port": 25, "routes": [{"src": ["192.0.2.0/24"], "to": "b"}]}, {"name": "b", "mode": "http", "port": 80}],
         "(a).routes[0].to: b has mode http, a has mode tcp"),
        ([{"name": "a", "port": 25}, {"name": "a", "port": 26}], "haproxy_services[1].name a is also haproxy_services[0].name"),
        ([{"name": "a", "port": 25}, {"name": "b", "port": 25}], "haproxy_services: b and a both listen on 172.30.80.101:25"),
        ([{"name": "a", "port": 25, "server_port": 8404}], "(a).server_port 8404 is taken by stats on the nodes' own addresses"),
        ([{"name": "a", "port": 25}, {"name": "b", "port": 26, "server_port": 25}], "(b).server_port 25 is taken by a"),
    ],
)
def test_bad_services_are_named_with_what_is_allowed(services, message: str) -> None:
    with pytest.raises(ServiceError) as caught:
        _plan(services, reserved_ports={"stats": 8404})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "services",
    [
        [{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "sekrit"}]}],
        [{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "sekrit-long", "admin": True}]}],
        [{"name": "web", "mode": "http", "port": 80, "auth_users": {"name": "joe", "password": "sekrit-long"}}],
        [[{"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "sekrit-long"}]}]],
        {"name": "web", "mode": "http", "port": 80, "auth_users": [{"name": "joe", "password": "sekrit-long"}]},
    ],
)
def test_a_password_never_appears_in_an_error(services) -> None:
    with pytest.raises(ServiceError) as caught:
        _plan(services)
    assert "haproxy_services" in str(caught.value)
    assert "sekrit" not in str(caught.value)


def test_a_node_outside_the_cluster_is_refused() -> None:
    with pytest.raises(ServiceError, match="client is not one of the cluster's nodes"):
        _plan(node="client")


def test_the_filter_turns_errors_into_filter_errors() -> None:
    with pytest.raises(AnsibleFilterError, match=r"floatip.ha haproxy_plan: haproxy_services\[0\] \(smtp\).port"):
        haproxy_plan(MODEL, [{"name": "smtp", "port": 99999}], "node1")
    assert haproxy_plan(MODEL, MAIL, "node1", hide_headers=["Server"])["services"][2]["hide_headers"] == ["Server"]
