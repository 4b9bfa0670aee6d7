# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""Each role's checks of its variables, before anything on a host changes.

``check_role(role, variables, model, node, context, hostvars)`` checks the
variables of one role (as a mapping of the role's variable names to their
values) against the checked cluster model for one node, and returns what
the role builds from them; ``context`` carries what the host says (facts)
and the role's own constants. A fault raises ``InputError`` with a message
that names the variable (``haproxy_stats_users[1].password``) and says what
is allowed, never a secret's value. The filter ``floatip.ha.role_inputs``
calls it from each role's tasks/validate.yml.

What each role gets back, besides ``cluster`` (the model it was given):
base and heartbeat nothing more; floating_ip ``layout``; haproxy ``plan``;
nginx_behind_proxy ``port``, ``health_path``, ``proxy_protocol`` and
``trusted``; postfix_multihome ``listen``, ``relay_networks``,
``clustered``, ``smtp_port``, ``submission_port``, ``smtp_proxy`` and
``submission_proxy``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from ansible_collections.floatip.ha.plugins.module_utils.haproxy_config import NAME_ALLOWED, NAME_RE, node_plan
from ansible_collections.floatip.ha.plugins.module_utils.inputs import (
    InputError,
    address,
    boolean,
    choice,
    hostname,
    integer,
    items,
    mapping,
    number,
    path,
    port,
    secret,
    source_networks,
    text,
    url_path,
)

LOOPBACK = ("127.0.0.1", "::1")


def _nodes(model: Mapping) -> list[str]:
    return [each["name"] for each in model["nodes"]]


def _one_of_the_nodes(model: Mapping, node: str, role: str) -> None:
    names = _nodes(model)
    if node not in names:
        raise InputError(f"{node} is not in the group floatip_nodes ({', '.join(names)}); apply floatip.ha.{role} to the cluster's nodes only")


def _node_address(model: Mapping, node: str) -> str:
    return next(each["address"] for each in model["nodes"] if each["name"] == node)


def _service_name(value: object, what: str) -> str:
    return text(value, what, f"the name of a service of haproxy_services ({NAME_ALLOWED})", NAME_RE)


def _services(model: Mapping) -> dict[str, dict]:
    """The service contract (the model's checked records of haproxy_services) by name."""
    return {service["name"]: service for service in model.get("services") or []}


# ---------------------------------------------------------------- base

_SYSCTL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
# A value of sysctl.conf: printable, one line, no space at either end.
_SYSCTL_VALUE = re.compile(r"[!-~](?:[ -~]*[!-~])?")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.:=~*_-]*")


def _normal(value: object) -> str:
    """An address as ipaddress writes it, or as given when it is none."""
    try:
        return str(ipaddress.ip_address(value))  # type: ignore[arg-type]
    except ValueError:
        return str(value)


def check_base(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    _one_of_the_nodes(model, node, "base")
    supported = context["supported_os_families"]
    if context["os_family"] not in supported:
        raise InputError(f"floatip.ha.base supports the os_family {', '.join(supported)}; {node} is {context['os_family']}")
    own = _node_address(model, node)
    held = [_normal(each) for each in context["addresses"]]
    if own not in held:
        raise InputError(f"floatip_address {own} of {node} is not configured on the host, which has {', '.join(held) or 'no address'}; "
                         "set floatip_address to the node's own address")
    for key in ("base_packages", "base_extra_packages"):
        for index, package in enumerate(items(variables[key], key, "package names")):
            text(package, f"{key}[{index}]", "a package name such as curl, optionally with =version", _PACKAGE)
    sysctls = variables["base_sysctls"]
    if not isinstance(sysctls, Mapping):
        raise InputError(f"base_sysctls must map setting names to values (strings or numbers), got {sysctls!r}")
    for name, value in sysctls.items():
        text(name, "a setting name of base_sysctls", "a sysctl name such as net.core.somaxconn", _SYSCTL_NAME)
        what = f"base_sysctls['{name}']"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        text(value, what, "a number or a one-line string of printable characters such as '4096 87380 6291456'", _SYSCTL_VALUE)
    path(variables["base_sysctl_file"], "base_sysctl_file")
    return {"cluster": model}


# ----------------------------------------------------------- floating_ip

_PROCESS = re.compile(r"[A-Za-z0-9_.@+-]{1,15}")
_INTERFACE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,14}")
# The longest password each protocol keeps: FreeBSD's ifconfig keeps 19
# characters of CARP's key (a 20-byte buffer, NUL-terminated), ucarp
# refuses 20 or more ("Password too long").
PASSWORD_LIMITS = {"keepalived": 8, "carp": 19, "ucarp": 19}
# /etc/rc.conf.d/netif, which the shell reads, hands CARP's password to ifconfig unquoted.
_CARP_PASSWORD = re.compile(r"[A-Za-z0-9_.,:@%+=/-]+")
# keepalived.conf and ucarp's password file: one word of printable ASCII;
# keepalived takes # and ! for comments, quotes and \ for quoting.
_WORD_PASSWORD = re.compile(r"[!-~]+")
_PASSWORD_RULES = {
    "keepalived": ("printable ASCII without spaces, quotes, \\, # or !; VRRPv2 keeps 8 characters and no more, so a longer "
                   "one is refused rather than cut; VRRPv3 has no password: leave it unset"),
    "ucarp": "printable ASCII without spaces; ucarp requires one",
    "carp": "letters, digits and _ . , : @ % + = / - only (it goes into /etc/rc.conf.d/netif, which the shell reads)",
}


def _floating_ip_password(value: object, backend: str, vrrp_version: int | None) -> None:
    what = "floating_ip_password"
    limit = PASSWORD_LIMITS[backend]
    if value is None:
        if backend == "ucarp":
            raise InputError(f"{what} is required with ucarp: a word of at most {limit} characters, {_PASSWORD_RULES['ucarp']}")
        return
    allowed = f"a word of 1 to {limit} characters for {backend}, {_PASSWORD_RULES[backend]}"
    if backend == "keepalived" and vrrp_version == 3:
        raise InputError(f"{what} must be left unset with VRRPv3 (floating_ip_vrrp_version 3 or floating_ip_profile fast), "
                         "which has no password")
    pattern = _CARP_PASSWORD if backend == "carp" else _WORD_PASSWORD
    secret(value, what, allowed, pattern, 1, limit)
    if backend == "keepalived" and any(char in value for char in "\"'\\#!"):
        raise InputError(f"{what} must be {allowed}")


def _vrrp_timing(variables: Mapping, profiles: list) -> int:
    """The VRRP version, with the advertisement interval it allows (the profile's or the override's)."""
    choice(variables["floating_ip_profile"], profiles, "floating_ip_profile")
    version = integer(variables["floating_ip_vrrp_version"], "floating_ip_vrrp_version", 2, 3)
    what = "floating_ip_advert_int"
    allowed = f"whole seconds from 1 to 255 with VRRPv2, or from 0.01 to 40.95 seconds with VRRPv3 (this is VRRPv{version})"
    try:
        advert = number(variables[what], what, 1, 255) if version == 2 else number(variables[what], what, 0.01, 40.95)
    except InputError:
        raise InputError(f"{what} must be {allowed}, got {variables[what]!r}") from None
    if version == 2 and advert != int(advert):
        raise InputError(f"{what} must be {allowed}, got {variables[what]!r}")
    return version


def check_floating_ip(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    layout = model.get("layout")
    if not layout:
        raise InputError(f"floatip.ha.floating_ip lays VIPs out for floatip_vip_backend keepalived, ucarp or carp, over a "
                         f"floatip_vip_pool; floatip_vip_backend is {model['vip_backend']} and the pool holds {len(model['pool'])} "
                         "addresses")
    _one_of_the_nodes(model, node, "floating_ip")
    backend = model["vip_backend"]
    vrids = [vip["vrid"] for vip in layout["vips"]]
    in_use = [integer(each, f"floating_ip_vrids_in_use[{index}]", 1, 255)
              for index, each in enumerate(items(variables["floating_ip_vrids_in_use"], "floating_ip_vrids_in_use", "VRIDs (1-255)"))]
    clash = sorted(set(vrids) & set(in_use))
    if clash:
        raise InputError(f"the VIPs get VRIDs {min(vrids)} to {max(vrids)} (from floating_ip_vrid_base {model['vrid_base']}), "
                         f"which clash with {', '.join(map(str, clash))} in floating_ip_vrids_in_use; choose a floating_ip_vrid_base "
                         "whose range avoids them")
    system = context.get("system")
    # Without facts (the render tasks, on the controller) there is no system to compare.
    if system is not None and (backend == "carp") != (system == "FreeBSD"):
        raise InputError(f"floatip_vip_backend {backend} does not run on {node} ({system}): carp is FreeBSD's, keepalived and ucarp "
                         "are Linux's")
    version = _vrrp_timing(variables, context["profiles"]) if backend == "keepalived" else None
    _floating_ip_password(variables["floating_ip_password"], backend, version)
    boolean(variables["floating_ip_unicast"], "floating_ip_unicast")
    for index, process in enumerate(items(variables["floating_ip_track_processes"], "floating_ip_track_processes", "process names")):
        text(process, f"floating_ip_track_processes[{index}]", "a process name as pgrep -x sees it (1-15 letters, digits and _ . @ + -)",
             _PROCESS)
    for index, script in enumerate(items(variables["floating_ip_notify_scripts"], "floating_ip_notify_scripts", "absolute paths")):
        path(script, f"floating_ip_notify_scripts[{index}]")
    boolean(variables["floating_ip_isolation_check"], "floating_ip_isolation_check")
    for index, target in enumerate(items(variables["floating_ip_isolation_targets"], "floating_ip_isolation_targets", "IP addresses")):
        address(target, f"floating_ip_isolation_targets[{index}]")
    for key in ("floating_ip_garp_master_delay", "floating_ip_garp_master_repeat", "floating_ip_garp_master_refresh"):
        integer(variables[key], key, 0, 3600)
    integer(variables["floating_ip_ucarp_advbase"], "floating_ip_ucarp_advbase", 1, 255)
    integer(variables["floating_ip_move_timeout"], "floating_ip_move_timeout", 1, 3600)
    if backend == "carp":
        choice(variables["floating_ip_carp_syntax"], ("vhid", "carpN"), "floating_ip_carp_syntax")
        integer(variables["floating_ip_carp_alias_start"], "floating_ip_carp_alias_start", 0, 9999)
        # floating_ip_carp_interface, by default the interface of the node's own address.
        interface = context.get("interface")
        if not interface:
            raise InputError(f"floating_ip_carp_interface must name the interface of the VIPs such as em0: no interface of {node} "
                             f"carries its floatip_address {_node_address(model, node)}")
        text(interface, "floating_ip_carp_interface", "an interface name such as em0 (a letter, then letters, digits, _ and .)",
             _INTERFACE)
    elif not context.get("interface"):
        raise InputError(f"no interface of {node} carries its floatip_address {_node_address(model, node)}; the VIPs go on that "
                         "interface: give the node that address")
    return {"cluster": model, "layout": layout}


# ------------------------------------------------------------- heartbeat

_RESOURCE = re.compile(r"[A-Za-z0-9_.@/:-]+")
_KEY = re.compile(r"[!-~]+")
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def heartbeat_names(hostvars: Mapping, nodes: list[str]) -> dict[str, tuple[object, object]]:
    """(heartbeat_node_name, uname -n) of each node, as the hosts' variables and facts say (None where unknown)."""
    names = {}
    for node in nodes:
        host = hostvars[node]
        facts = host.get("ansible_facts") or {}
        names[node] = (host.get("heartbeat_node_name", node), facts.get("nodename"))
    return names


def check_heartbeat(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    if model["vip_backend"] != "heartbeat":
        raise InputError(f"floatip.ha.heartbeat holds the VIPs where floatip_vip_backend is heartbeat; it is {model['vip_backend']} "
                         "(floatip.ha.floating_ip runs the right VIP layer for any backend)")
    _one_of_the_nodes(model, node, "heartbeat")
    if hostvars is None:
        raise InputError("the checks of floatip.ha.heartbeat read each node's heartbeat_node_name and facts from hostvars: pass it")
    secret(variables["heartbeat_auth_key"], "heartbeat_auth_key",
           "a secret of at least 16 printable ASCII characters without spaces (e.g. from `openssl rand -hex 32`, kept in a vault); "
           "it has no default", _KEY, 16)
    choice(variables["heartbeat_auth_method"], ("sha1", "md5"), "heartbeat_auth_method")
    keepalive, warntime, deadtime, initdead = (integer(variables[f"heartbeat_{key}"], f"heartbeat_{key}", 1, 3600)
                                               for key in ("keepalive", "warntime", "deadtime", "initdead"))
    if not keepalive < warntime < deadtime or initdead < max(2 * deadtime, 10):
        raise InputError("the timings must satisfy 1 <= heartbeat_keepalive < heartbeat_warntime < heartbeat_deadtime and "
                         f"heartbeat_initdead >= 2 * heartbeat_deadtime and >= 10; got keepalive {keepalive}, warntime {warntime}, "
                         f"deadtime {deadtime}, initdead {initdead}")
    port(variables["heartbeat_udpport"], "heartbeat_udpport")
    boolean(variables["heartbeat_auto_failback"], "heartbeat_auto_failback")
    integer(variables["heartbeat_move_timeout"], "heartbeat_move_timeout", 1, 3600)
    for index, resource in enumerate(items(variables["heartbeat_resources"], "heartbeat_resources", "haresources entries")):
        text(resource, f"heartbeat_resources[{index}]",
             "one haresources word such as haproxy or IPsrcaddr::192.0.2.10 (letters, digits and _ . @ / : -)", _RESOURCE)
    seen: dict[object, str] = {}
    for each, (name, uname) in heartbeat_names(hostvars, _nodes(model)).items():
        what = f"heartbeat_node_name of {each}"
        text(name, what, "the node's uname -n: 1-64 letters, digits and _ . -, starting with a letter or digit", _NODE_NAME)
        if name in seen:
            raise InputError(f"{what} is {name}, as is the heartbeat_node_name of {seen[name]}; each node has its own")
        seen[name] = each
        if uname is None:
            raise InputError(f"the facts of {each} are not known, so its heartbeat_node_name cannot be checked: gather facts on both nodes")
        if name != uname:
            raise InputError(f"heartbeat knows a node by its `uname -n`, but {each} is named {name} while its uname -n is {uname}; "
                             f"set heartbeat_node_name for {each} to {uname} or rename the host")
    if not context.get("interface"):
        raise InputError(f"no interface of {node} carries its floatip_address {_node_address(model, node)}; heartbeats go out on that "
                         "interface: give the node that address")
    return {"cluster": model}


# --------------------------------------------------------------- haproxy

_STATS_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ANY = re.compile(r".+", re.DOTALL)


def _users(value: object, what: str, none_message: str, name_allowed: str, name_pattern: re.Pattern[str], admin: bool = False) -> list:
    """Users with a name and a password (and optionally admin): at least one, each name once, never a password shown."""
    users = items(value, what, "users {name, password" + (", admin}" if admin else "}"), secret=True) if value is not None else []
    if not users:
        raise InputError(f"{what} must list at least one user; {none_message}")
    names: set[str] = set()
    for index, user in enumerate(users):
        where = f"{what}[{index}]"
        mapping(user, where, ("name", "password", "admin") if admin else ("name", "password"), ("name", "password"), secret=True)
        name = text(user["name"], f"{where}.name", name_allowed, name_pattern)
        if name in names:
            raise InputError(f"{where}.name {name} is given twice; each user once")
        names.add(name)
        secret(user["password"], f"{where}.password", "a string of at least 12 characters, without control characters (it is stored "
               "hashed)", _ANY, 12)
    return users


def check_haproxy(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    stats_port = port(variables["haproxy_stats_port"], "haproxy_stats_port")
    reserved = {"haproxy_stats_port": stats_port}
    tcp_port = variables["haproxy_runtime_api_tcp_port"]
    if tcp_port is not None:
        tcp_port = port(tcp_port, "haproxy_runtime_api_tcp_port")
        if tcp_port == stats_port:
            raise InputError(f"haproxy_runtime_api_tcp_port {tcp_port} is haproxy_stats_port too; give them different ports (or null)")
        reserved["haproxy_runtime_api_tcp_port"] = tcp_port
    path(variables["haproxy_runtime_api_socket"], "haproxy_runtime_api_socket")
    integer(variables["haproxy_maxconn"], "haproxy_maxconn", 1, 1000000)
    number(variables["haproxy_timeout"], "haproxy_timeout", 0, 86400, above=True)
    # haproxy_services, haproxy_check_interval and haproxy_hide_response_headers
    # are the model's: checked once, by floatip.ha.cluster, into model["services"].
    if not model["services"]:
        raise InputError("haproxy_services must be a non-empty list of services (name, port, ...): floatip.ha.haproxy fronts them")
    users = _users(variables["haproxy_stats_users"], "haproxy_stats_users", "there is no default user or password",
                   "1-64 letters, digits, '.', '_' and '-'", _STATS_USER, admin=True)
    for index, user in enumerate(users):
        if "admin" in user:
            boolean(user["admin"], f"haproxy_stats_users[{index}].admin")
    plan = node_plan(model, model["services"], node, reserved_ports=reserved)
    return {"cluster": model, "plan": plan}


# ---------------------------------------------------- nginx_behind_proxy

_VHOST_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SERVER_NAME = re.compile(r"_|(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_VHOST_KEYS = ("name", "root", "server_names", "default", "tls_cert", "tls_key")


def _vhosts(value: object) -> None:
    vhosts = items(value, "nginx_behind_proxy_vhosts", "virtual hosts {name, root, server_names, default, tls_cert, tls_key}")
    if not vhosts:
        raise InputError("nginx_behind_proxy_vhosts must list at least one virtual host")
    names: set[str] = set()
    defaults = []
    for index, vhost in enumerate(vhosts):
        what = f"nginx_behind_proxy_vhosts[{index}]"
        mapping(vhost, what, _VHOST_KEYS, ("name", "root"))
        name = text(vhost["name"], f"{what}.name", "1-32 characters of a-z, 0-9, _ and -, starting with a letter", _VHOST_NAME)
        if name in names:
            raise InputError(f"{what}.name {name} is given twice; each virtual host once")
        names.add(name)
        path(vhost["root"], f"{what}.root")
        for number_, server_name in enumerate(items(vhost.get("server_names", ["_"]), f"{what}.server_names", "host names")):
            text(server_name, f"{what}.server_names[{number_}]", "a host name, *.domain or _ (letters, digits, . and -)", _SERVER_NAME)
        if "default" in vhost and boolean(vhost["default"], f"{what}.default"):
            defaults.append(name)
        if ("tls_cert" in vhost) != ("tls_key" in vhost):
            raise InputError(f"{what} needs tls_cert with tls_key, or neither")
        for key in ("tls_cert", "tls_key"):
            if key in vhost:
                path(vhost[key], f"{what}.{key}")
    if len(defaults) > 1:
        raise InputError(f"nginx_behind_proxy_vhosts: {', '.join(defaults)} are each the default; default may be true for at most one")


def check_nginx_behind_proxy(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    _one_of_the_nodes(model, node, "nginx_behind_proxy")
    name = _service_name(variables["nginx_behind_proxy_haproxy_service"], "nginx_behind_proxy_haproxy_service")
    service = _services(model).get(name)
    if service is None:
        listen = port(variables["nginx_behind_proxy_port"], "nginx_behind_proxy_port")
        health = url_path(variables["nginx_behind_proxy_health_path"], "nginx_behind_proxy_health_path")
        proxy_protocol = False
    else:
        if service["mode"] != "http" or service["check"] != "http":
            raise InputError(f"the service {name} of haproxy_services fronts nginx (nginx_behind_proxy_haproxy_service), so it needs "
                             f"mode http and an http check; it has mode {service['mode']}, check {service['check']}")
        listen, health, proxy_protocol = service["server_port"], service["check_path"], bool(service["send_proxy"])
    tls_port = port(variables["nginx_behind_proxy_tls_port"], "nginx_behind_proxy_tls_port")
    if tls_port == listen:
        raise InputError(f"nginx_behind_proxy_tls_port {tls_port} is also nginx's port; give TLS another")
    path(variables["nginx_behind_proxy_maintenance_file"], "nginx_behind_proxy_maintenance_file")
    boolean(variables["nginx_behind_proxy_maintenance"], "nginx_behind_proxy_maintenance")
    extra = source_networks(variables["nginx_behind_proxy_trusted_proxies"], "nginx_behind_proxy_trusted_proxies")
    _vhosts(variables["nginx_behind_proxy_vhosts"])
    # HAProxy connects from loopback and from the nodes' own addresses (a
    # peer's HAProxy while this node's service is its backup).
    trusted = [*LOOPBACK, *(each["address"] for each in model["nodes"]), *extra]
    return {"cluster": model, "port": listen, "health_path": health, "proxy_protocol": proxy_protocol, "trusted": trusted}


# ----------------------------------------------------- postfix_multihome

_SASL_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_PARAMETER = r"\$(?:[a-z][a-z0-9_]*|\{[a-z][a-z0-9_]*\}|\([a-z][a-z0-9_]*\))"
_DESTINATION_LABEL = rf"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?|{_PARAMETER})"
_DESTINATION = re.compile(rf"{_DESTINATION_LABEL}(?:\.{_DESTINATION_LABEL})*")
_RELAYHOST = re.compile(r"(?:\[(?P<bracketed>[^\[\]]+)\]|(?P<plain>[A-Za-z0-9.-]+))(?::(?P<port>[0-9]{1,5}))?")
RELAYHOST_ALLOWED = "empty, or one host such as mail.example.net, [mail.example.net]:25, [192.0.2.1]:587 or [ipv6:2001:db8::1]:25"


def _relayhost(value: object) -> None:
    what = "postfix_multihome_relayhost"
    if text(value, what, RELAYHOST_ALLOWED) == "":
        return
    found = _RELAYHOST.fullmatch(value)  # type: ignore[arg-type]
    if found is None:
        raise InputError(f"{what} must be {RELAYHOST_ALLOWED}, got {value!r}")
    if found["port"] is not None:
        port(found["port"], f"the port of {what}")
    host = found["bracketed"] or found["plain"]
    if host.startswith("ipv6:"):
        if ipaddress.ip_address(address(host[5:], f"the address of {what}")).version != 6:
            raise InputError(f"{what} must be {RELAYHOST_ALLOWED}, got {value!r}")
        return
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        hostname(host, f"the host of {what}")


def check_postfix_multihome(variables: Mapping, model: Mapping, node: str, context: Mapping, hostvars: Mapping | None) -> dict:
    _one_of_the_nodes(model, node, "postfix_multihome")
    if model["vip_backend"] not in ("keepalived", "ucarp"):
        raise InputError("floatip.ha.postfix_multihome runs on nodes whose VIPs floatip.ha.floating_ip holds with keepalived or ucarp "
                         "(its notify hook switches the address postfix sends from); floatip_vip_backend is "
                         f"{model['vip_backend']}")
    services = _services(model)
    smtp_key, submission_key = "postfix_multihome_haproxy_service", "postfix_multihome_haproxy_submission_service"
    smtp = services.get(_service_name(variables[smtp_key], smtp_key))
    submission = services.get(_service_name(variables[submission_key], submission_key))
    if smtp is not None and (smtp["mode"] != "tcp" or smtp["check"] not in ("smtp", "tcp")):
        raise InputError(f"the service {smtp['name']} of haproxy_services ({smtp_key}) fronts postfix, so it needs mode tcp and a "
                         f"smtp or tcp check; it has mode {smtp['mode']}, check {smtp['check']}")
    if submission is not None and submission["mode"] != "tcp":
        raise InputError(f"the service {submission['name']} of haproxy_services ({submission_key}) fronts postfix's submission, so "
                         f"it needs mode tcp; it has mode {submission['mode']}")
    if submission is not None and smtp is None:
        raise InputError(f"the service {submission['name']} of haproxy_services fronts postfix's submission, but there is no "
                         f"{variables['postfix_multihome_haproxy_service']} service (postfix_multihome_haproxy_service) for its SMTP")

    own = _node_address(model, node)
    allowed = [own, *model["vips"], *LOOPBACK]
    listen = variables["postfix_multihome_listen_addresses"]
    if listen is None:
        # Behind HAProxy: the node's own address; alone: the VIPs.
        listen = [own] if smtp is not None else list(model["vips"])
        listen.append("127.0.0.1")
    else:
        what = "postfix_multihome_listen_addresses"
        listen = [address(each, f"{what}[{index}]") for index, each in enumerate(items(listen, what, "addresses"))]
        if not listen:
            raise InputError(f"{what} must name at least one address")
        strangers = [each for each in listen if each not in allowed]
        if strangers:
            raise InputError(f"{what} may hold only this node's own address ({own}), VIPs of the cluster ({', '.join(model['vips'])}) "
                             f"and loopback (127.0.0.1, ::1); these are none of them: {', '.join(strangers)}")

    if boolean(variables["postfix_multihome_submission"], "postfix_multihome_submission"):
        _users(variables["postfix_multihome_sasl_users"], "postfix_multihome_sasl_users",
               "with postfix_multihome_submission there is no default", "1-64 letters, digits and . _ @ -", _SASL_USER)
    path(variables["postfix_multihome_tls_cert"], "postfix_multihome_tls_cert")
    path(variables["postfix_multihome_tls_key"], "postfix_multihome_tls_key")
    relay = source_networks(variables["postfix_multihome_relay_networks"], "postfix_multihome_relay_networks")
    hostname(variables["postfix_multihome_myhostname"], "postfix_multihome_myhostname")
    what = "postfix_multihome_mydestination"
    for index, destination in enumerate(items(variables[what], what, "domains")):
        text(destination, f"{what}[{index}]", "a host name or domain, localhost, or a parameter reference such as $myhostname or "
             "localhost.$mydomain", _DESTINATION)
    _relayhost(variables["postfix_multihome_relayhost"])
    return {
        "cluster": model,
        "listen": listen,
        "relay_networks": relay,
        "clustered": smtp is not None,
        "smtp_port": smtp["server_port"] if smtp is not None else 25,
        "submission_port": submission["server_port"] if submission is not None else 587,
        "smtp_proxy": bool(smtp and smtp["send_proxy"]),
        "submission_proxy": bool(submission and submission["send_proxy"]),
    }


CHECKS: dict[str, Callable[..., dict]] = {
    "base": check_base,
    "floating_ip": check_floating_ip,
    "heartbeat": check_heartbeat,
    "haproxy": check_haproxy,
    "nginx_behind_proxy": check_nginx_behind_proxy,
    "postfix_multihome": check_postfix_multihome,
}


class _Variables(dict):
    """A role's variables; one its tasks/validate.yml does not pass is named, not a KeyError."""

    def __init__(self, role: str, variables: Mapping) -> None:
        super().__init__(variables)
        self.role = role

    def __missing__(self, key: str) -> object:
        raise InputError(f"the tasks/validate.yml of floatip.ha.{self.role} does not pass {key} to its checks")


def check_role(role: str, variables: Mapping, model: Mapping, node: str, context: Mapping | None = None,
               hostvars: Mapping | None = None) -> dict:
    """Check ``variables`` of ``role`` for ``node``; what the role builds from them (see the module's doc)."""
    if role not in CHECKS:
        raise InputError(f"floatip.ha has no checks for the role {role!r}; it has them for {', '.join(CHECKS)}")
    if not isinstance(variables, Mapping):
        raise InputError(f"the variables of floatip.ha.{role} must come as a mapping of names to values")
    return CHECKS[role](_Variables(role, variables), model, node, context or {}, hostvars)
