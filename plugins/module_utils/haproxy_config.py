# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The HAProxy plan of one node: frontends and backends from the cluster model.

Every service of ``haproxy_services`` becomes, on every node, a frontend that
binds the service's port on the cluster's VIPs (the node binds VIPs it does
not hold, through ip_nonlocal_bind, so a VIP that arrives is served at once)
and a backend whose one active server is the node's own service and whose
``backup`` servers are the peers' (round robin over them with
``option allbackups`` while the local one is down).

``build_plan`` checks every service and raises ``ServiceError`` with a
message naming ``haproxy_services[i].field`` and what is allowed; the
template only lays out what it returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ansible_collections.floatip.ha.plugins.module_utils.inputs import InputError, path, source_networks, text, url_path

MODES = ("tcp", "http")
CHECKS = ("tcp", "smtp", "pop3", "imap", "http", "none")
PERSISTENCE = ("none", "source", "cookie")
PROXY_PROTOCOL = {False: "", True: "send-proxy", "v1": "send-proxy", "v2": "send-proxy-v2"}
DEFAULT_HIDDEN_HEADERS = ("Server", "X-Powered-By", "X-AspNet-Version")
# Seconds between two health checks of a server, where a service does not
# say: a dead service is noticed within a few seconds, and the mail logs are
# not full of checks.
DEFAULT_CHECK_INTERVAL = 3

# Matched whole (re.fullmatch): each goes into haproxy.cfg unquoted.
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
NAME_ALLOWED = "1-32 characters of a-z, 0-9, _ and -, starting with a letter"
_USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# An HTTP token, less # ' and $, which HAProxy's parser would take for a
# comment, a quote or a variable.
HEADER_RE = re.compile(r"[A-Za-z0-9!%&*+.^_`|~-]+")
HEADER_ALLOWED = "a header name (letters, digits and ! % & * + . ^ _ ` | ~ -)"
# A regex or replacement of location_rewrites: one word for HAProxy.
_WORD_RE = re.compile(r"[^\s\"'#]+")
_KNOWN_KEYS = frozenset(
    {
        "name", "port", "server_port", "mode", "check", "check_path", "check_interval", "send_proxy",
        "persistence", "balance", "vips", "tls_port", "cert", "tls_only_paths", "routes", "auth_users",
        "location_rewrites", "hide_headers", "timeout",
    }
)
_BALANCE = ("roundrobin", "leastconn", "source", "first")


# The collection's one error type, by the name the plan's callers know.
ServiceError = InputError


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ServiceError(f"{what} must be a port number from 1 to 65535, got {value!r}")
    return value


def _choice(value: object, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ServiceError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _str_list(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(x, str) and x for x in value):
        raise ServiceError(f"{what} must be a list of non-empty strings, got {value!r}")
    return list(value)


def _networks(value: object, what: str) -> list[str]:
    networks = source_networks(value, what)
    if not networks:
        raise ServiceError(f"{what} must name at least one source network")
    return networks


def _mapping_list(value: object, what: str, keys: str) -> list:
    """A list of mappings (its items are checked by the caller)."""
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise ServiceError(f"{what} must be a list of {{{keys}}} mappings, got {value!r}")
    return list(value)


def _http_only(service: Mapping, key: str, mode: str, what: str) -> None:
    if key in service and mode != "http":
        raise ServiceError(f"{what}.{key} needs mode http (the service has mode {mode})")


def _seconds_to_ms(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ServiceError(f"{what} must be a number of seconds above 0 and at most 3600, got {value!r}")
    return max(1, round(value * 1000))


def _service(raw: object, index: int, model: Mapping, defaults: Mapping) -> dict:
    what = f"haproxy_services[{index}]"
    if not isinstance(raw, Mapping):
        # Not the value itself: it may hold passwords.
        raise ServiceError(f"{what} must be a mapping with at least name and port, got a {type(raw).__name__}")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ServiceError(f"{what} has unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(_KNOWN_KEYS))}")
    name = raw.get("name")
    text(name, f"{what}.name", NAME_ALLOWED, NAME_RE)
    what = f"haproxy_services[{index}] ({name})"
    port = _port(raw.get("port"), f"{what}.port")
    server_port = _port(raw.get("server_port", port), f"{what}.server_port")
    mode = _choice(raw.get("mode", "tcp"), MODES, f"{what}.mode")
    check = _choice(raw.get("check", "http" if mode == "http" else "tcp"), CHECKS, f"{what}.check")
    if check == "http" and mode != "http":
        raise ServiceError(f"{what}.check http needs mode http; use tcp, smtp, pop3 or imap for a tcp service")
    for key in ("check_path", "tls_only_paths", "auth_users", "location_rewrites", "hide_headers"):
        _http_only(raw, key, mode, what)
    check_path = url_path(raw.get("check_path", "/"), f"{what}.check_path")
    interval = _seconds_to_ms(raw.get("check_interval", defaults["check_interval"]), f"{what}.check_interval")
    send_proxy = raw.get("send_proxy", False)
    if send_proxy not in PROXY_PROTOCOL:
        raise ServiceError(f"{what}.send_proxy must be false, true (PROXY protocol v1) or v2, got {send_proxy!r}")
    persistence = _choice(raw.get("persistence", "cookie" if mode == "http" else "none"), PERSISTENCE, f"{what}.persistence")
    if persistence == "cookie" and mode != "http":
        raise ServiceError(f"{what}.persistence cookie needs mode http; use source for a tcp service")
    balance = _choice(raw.get("balance", "source" if persistence == "source" else "roundrobin"), _BALANCE, f"{what}.balance")

    vips = model["vips"]
    chosen = raw.get("vips", vips)
    chosen = _str_list(chosen, f"{what}.vips")
    outside = [vip for vip in chosen if vip not in vips]
    if outside:
        raise ServiceError(f"{what}.vips {', '.join(outside)} are not VIPs of floatip_vip_pool ({', '.join(vips)})")
    if not chosen:
        raise ServiceError(f"{what}.vips must name at least one VIP of floatip_vip_pool")

    tls_port = raw.get("tls_port")
    cert = raw.get("cert")
    if tls_port is not None:
        tls_port = _port(tls_port, f"{what}.tls_port")
        if tls_port == port:
            raise ServiceError(f"{what}.tls_port must differ from port {port}")
        if cert is None:
            raise ServiceError(f"{what}.tls_port needs cert, the absolute path of a PEM file (certificate and key) on the node")
        path(cert, f"{what}.cert")
    elif cert is not None:
        raise ServiceError(f"{what}.cert is given without tls_port, the port where TLS is terminated")
    tls_only_paths = _str_list(raw.get("tls_only_paths", []), f"{what}.tls_only_paths")
    if tls_only_paths and tls_port is None:
        raise ServiceError(f"{what}.tls_only_paths needs tls_port: a path reachable only over TLS needs a TLS frontend")
    for number, tls_only in enumerate(tls_only_paths):
        url_path(tls_only, f"{what}.tls_only_paths[{number}]")

    routes = []
    for number, route in enumerate(_mapping_list(raw.get("routes", []), f"{what}.routes", "src, to")):
        where = f"{what}.routes[{number}]"
        if not isinstance(route, Mapping) or set(route) != {"src", "to"}:
            raise ServiceError(f"{where} must be a mapping with exactly src (a list of networks) and to (a service name), got {route!r}")
        target = text(route["to"], f"{where}.to", f"the name of another service of haproxy_services ({NAME_ALLOWED})", NAME_RE)
        routes.append({"src": _networks(route["src"], f"{where}.src"), "to": target})

    auth_users = []
    # Not _mapping_list: its message would show the passwords.
    raw_users = raw.get("auth_users", [])
    if isinstance(raw_users, (str, Mapping)) or not isinstance(raw_users, Sequence):
        raise ServiceError(f"{what}.auth_users must be a list of {{name, password}} mappings")
    for number, user in enumerate(raw_users):
        where = f"{what}.auth_users[{number}]"
        if not isinstance(user, Mapping) or set(user) != {"name", "password"}:
            raise ServiceError(f"{where} must be a mapping with exactly name and password")
        text(user["name"], f"{where}.name", "1-64 characters of letters, digits, '.', '_' and '-'", _USER_RE)
        if user["name"] in auth_users:
            raise ServiceError(f"{where}.name {user['name']} is given twice; each user once")
        if not isinstance(user.get("password"), str) or len(user["password"]) < 8:
            # The message never repeats the password.
            raise ServiceError(f"{where}.password must be a string of at least 8 characters (it is stored hashed)")
        # The plan names the users only: the template takes each password
        # from haproxy_services itself, so the plan can be shown.
        auth_users.append(user["name"])

    rewrites = []
    for number, rewrite in enumerate(_mapping_list(raw.get("location_rewrites", []), f"{what}.location_rewrites", "regex, replace")):
        where = f"{what}.location_rewrites[{number}]"
        if not isinstance(rewrite, Mapping) or set(rewrite) != {"regex", "replace"}:
            raise ServiceError(f"{where} must be a mapping with exactly regex and replace")
        try:
            re.compile(rewrite["regex"])
        except (re.error, TypeError) as exc:
            raise ServiceError(f"{where}.regex is not a regular expression: {exc}") from None
        for key in ("regex", "replace"):
            text(rewrite[key], f"{where}.{key}", "one word: a string without spaces, quotes, # or control characters", _WORD_RE)
        rewrites.append(dict(rewrite))

    hide = _str_list(raw.get("hide_headers", list(defaults["hide_headers"])), f"{what}.hide_headers") if mode == "http" else []
    for number, header in enumerate(hide):
        text(header, f"{what}.hide_headers[{number}]", HEADER_ALLOWED, HEADER_RE)

    timeout = raw.get("timeout")
    timeout_ms = None if timeout is None else _seconds_to_ms(timeout, f"{what}.timeout")

    return {
        "name": name,
        "index": index,
        "mode": mode,
        "port": port,
        "server_port": server_port,
        "vips": chosen,
        "check": check,
        "check_path": check_path,
        "check_interval_ms": interval,
        "send_proxy": PROXY_PROTOCOL[send_proxy],
        "persistence": persistence,
        "balance": balance,
        "tls_port": tls_port,
        "cert": cert,
        "tls_only_paths": tls_only_paths,
        "routes": routes,
        "auth_users": auth_users,
        "location_rewrites": rewrites,
        "hide_headers": hide,
        "timeout_ms": timeout_ms,
    }


def check_services(
    model: Mapping,
    services: object,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    hide_headers: Sequence[str] = DEFAULT_HIDDEN_HEADERS,
) -> list[dict]:
    """The service contract: every service of ``haproxy_services`` checked
    and normalised, the same for every node (no servers, no passwords: a
    service's ``auth_users`` are its users' names). Nginx, postfix, the
    operations playbooks and HAProxy's own plan all read these records.
    None or an empty list is a cluster without services (the haproxy role's
    plan, ``node_plan``, refuses that)."""
    if services is None or (isinstance(services, list) and not services):
        return []
    if isinstance(services, (str, Mapping)) or not isinstance(services, Sequence) or not services:
        # The type only: a mapping given by mistake may hold passwords.
        got = repr(services) if not services else f"a {type(services).__name__}"
        raise ServiceError(f"haproxy_services must be a non-empty list of services (name, port, ...), got {got}")
    defaults = {"check_interval": check_interval, "hide_headers": hide_headers}
    built = [_service(raw, index, model, defaults) for index, raw in enumerate(services)]

    seen: dict[str, int] = {}
    listening: dict[tuple[str, int], str] = {}
    serving: dict[int, str] = {}
    for index, service in enumerate(built):
        if service["name"] in seen:
            raise ServiceError(f"haproxy_services[{index}].name {service['name']} is also haproxy_services[{seen[service['name']]}].name; names must be unique")
        seen[service["name"]] = index
        for port in filter(None, (service["port"], service["tls_port"])):
            for vip in service["vips"]:
                other = listening.setdefault((vip, port), service["name"])
                if other != service["name"]:
                    raise ServiceError(f"haproxy_services: {service['name']} and {other} both listen on {vip}:{port}")
        other = serving.setdefault(service["server_port"], service["name"])
        if other != service["name"]:
            raise ServiceError(
                f"haproxy_services[{index}] ({service['name']}).server_port {service['server_port']} is taken by {other} on the nodes' own addresses"
            )
    by_name = {service["name"]: service for service in built}
    for index, service in enumerate(built):
        for number, route in enumerate(service["routes"]):
            target = by_name.get(route["to"])
            where = f"haproxy_services[{index}] ({service['name']}).routes[{number}].to"
            if target is None or target is service:
                raise ServiceError(f"{where} must name another service of haproxy_services, got {route['to']!r}")
            if target["mode"] != service["mode"]:
                raise ServiceError(f"{where}: {target['name']} has mode {target['mode']}, {service['name']} has mode {service['mode']}")
    return built


def node_plan(model: Mapping, services: Sequence[Mapping], node: str, reserved_ports: Mapping[str, int] | None = None) -> dict:
    """The frontends and backends of ``node``: the checked ``services`` of the
    contract, each with its servers (this node's first, the peers' as
    backups). ``reserved_ports`` maps what else listens on the node's own
    address (the stats page, say) to its port, so that no service's server
    port takes it."""
    names = [each["name"] for each in model["nodes"]]
    if node not in names:
        raise ServiceError(f"{node} is not one of the cluster's nodes ({', '.join(names)}); apply the haproxy role to floatip_nodes")
    if not services:
        raise ServiceError("haproxy_services must be a non-empty list of services (name, port, ...), got []")
    taken = {port: what for what, port in (reserved_ports or {}).items()}
    planned = []
    for service in services:
        if service["server_port"] in taken:
            raise ServiceError(
                f"haproxy_services[{service['index']}] ({service['name']}).server_port {service['server_port']} is taken by "
                f"{taken[service['server_port']]} on the nodes' own addresses"
            )
        servers = [
            {"name": peer["name"], "address": peer["address"], "port": service["server_port"], "backup": peer["name"] != node}
            for peer in model["nodes"]
        ]
        planned.append({**service, "servers": servers})
    local = next(each for each in model["nodes"] if each["name"] == node)
    return {"node": node, "address": local["address"], "services": planned}


def build_plan(
    model: Mapping,
    services: object,
    node: str,
    check_interval: float = DEFAULT_CHECK_INTERVAL,
    hide_headers: Sequence[str] = DEFAULT_HIDDEN_HEADERS,
    reserved_ports: Mapping[str, int] | None = None,
) -> dict:
    """The frontends and backends of ``node`` from raw ``haproxy_services``:
    ``check_services`` then ``node_plan``."""
    if services is None:
        raise ServiceError("haproxy_services must be a non-empty list of services (name, port, ...), got None")
    return node_plan(model, check_services(model, services, check_interval, hide_headers), node, reserved_ports)
