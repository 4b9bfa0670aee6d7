"""Each role's meta/argument_specs.yml: in step with its defaults and its checks, and what Ansible refuses at the role's entry.

Ansible validates a role's variables against its argument_specs when the
role starts; these tests run the same validator on the loaded YAML.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.floatip.ha.plugins.module_utils import cluster, haproxy_config, role_inputs

ROLES = Path(__file__).resolve().parents[2] / "roles"
CHECKED = ("cluster", "base", "floating_ip", "heartbeat", "haproxy", "nginx_behind_proxy", "postfix_multihome")
# What each role requires, besides its defaults.
REQUIRED = {
    "heartbeat": {"heartbeat_auth_key": "heartbeat-s3cr3t-key-0123456789"},
    "haproxy": {"haproxy_stats_users": [{"name": "ops", "password": "stats-s3cr3t-ops", "admin": True}]},
}
# The model's inputs, which floatip.ha.cluster checks once for every role.
MODEL = {
    "floatip_network": "172.30.80.0/24",
    "haproxy_services": [{"name": "web", "mode": "http", "port": 80, "server_port": 5080, "check_path": "/check.txt",
                          "auth_users": [{"name": "joe", "password": "basic-s3cr3t"}],
                          "routes": [{"src": ["192.0.2.0/24"], "to": "other"}]},
                         {"name": "other", "mode": "http", "port": 8080, "send_proxy": "v2"}],
}


def entry(role: str, name: str = "main") -> dict:
    return yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"][name]["options"]


def defaults(role: str) -> dict:
    path = ROLES / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def valid(role: str) -> dict:
    """The role's defaults (less those a template gives) and what it requires."""
    return {**{key: value for key, value in defaults(role).items() if not _templated(value) and value is not None},
            **(MODEL if role == "cluster" else REQUIRED.get(role, {}))}


@pytest.mark.parametrize("role", CHECKED)
def test_the_defaults_and_the_required_pass_the_spec(role: str) -> None:
    result = ArgumentSpecValidator(entry(role)).validate(valid(role))
    assert result.error_messages == []


@pytest.mark.parametrize("role", CHECKED)
def test_every_default_is_in_the_spec_with_the_same_value(role: str) -> None:
    spec = entry(role)
    for key, value in defaults(role).items():
        assert key in spec, f"{role}: {key} is in defaults/main.yml but not in meta/argument_specs.yml"
        # A default the role computes (a template) or leaves null is not
        # repeated in the spec, where it would read as a literal.
        if _templated(value) and "default" not in spec[key] or value is None:
            continue
        assert spec[key].get("default") == value, f"{role}: {key} defaults to {value!r}, its spec says {spec[key].get('default')!r}"
    # floatip.ha.cluster has no defaults/main.yml: its defaults are the
    # Python's (test_the_models_defaults_in_the_spec_are_the_pythons).
    for key, option in spec.items() if role != "cluster" else ():
        assert key in defaults(role) or option.get("required") or "default" not in option, f"{role}: {key}"


def test_the_models_defaults_in_the_spec_are_the_pythons() -> None:
    """The spec documents the defaults (not as default:, which would refuse a null); the code that applies them is
    plugins/module_utils (cluster.py, haproxy_config.py)."""
    spec = entry("cluster")

    def documented(key: str) -> object:
        return yaml.safe_load(spec[key]["description"].split("Default (null or unset) V(", 1)[1].rsplit(")", 1)[0])

    assert not [key for key, option in spec.items() if "default" in option]
    assert documented("floatip_vip_backend") == cluster.DEFAULT_VIP_BACKEND
    assert spec["floatip_vip_backend"]["choices"] == list(cluster.VIP_BACKENDS)
    assert documented("floatip_vips_per_node") == cluster.DEFAULT_VIPS_PER_NODE
    assert documented("floating_ip_vrid_base") == cluster.DEFAULT_VRID_BASE
    assert documented("floatip_firewall") is True
    assert documented("haproxy_check_interval") == haproxy_config.DEFAULT_CHECK_INTERVAL
    assert documented("haproxy_hide_response_headers") == list(haproxy_config.DEFAULT_HIDDEN_HEADERS)


def test_null_is_unset_for_every_input_of_the_model() -> None:
    # An inventory may null an input to unset it (floatip_vips_per_node for a
    # heartbeat pair); the backend keeps its choices, the network is required.
    nulls = {key: None for key in entry("cluster") if key not in ("floatip_network", "floatip_vip_backend")}
    assert ArgumentSpecValidator(entry("cluster")).validate({**MODEL, **nulls}).error_messages == []


def test_the_haproxy_services_schema_is_the_one_the_checks_know() -> None:
    options = entry("cluster")["haproxy_services"]["options"]
    assert set(options) == set(haproxy_config._KNOWN_KEYS)
    assert options["mode"]["choices"] == list(haproxy_config.MODES)
    assert options["check"]["choices"] == list(haproxy_config.CHECKS)
    assert options["persistence"]["choices"] == list(haproxy_config.PERSISTENCE)
    assert options["balance"]["choices"] == list(haproxy_config._BALANCE)


def test_the_vhost_schema_is_the_one_the_checks_know() -> None:
    assert tuple(entry("nginx_behind_proxy")["nginx_behind_proxy_vhosts"]["options"]) == role_inputs._VHOST_KEYS


@pytest.mark.parametrize(
    ("role", "changes", "message"),
    [
        ("heartbeat", {"heartbeat_auth_method": "crc"}, "value of heartbeat_auth_method must be one of: sha1, md5, got: crc"),
        ("heartbeat", {"heartbeat_keepalive": "often"}, "heartbeat_keepalive"),
        ("floating_ip", {"floating_ip_profile": "turbo"}, "value of floating_ip_profile must be one of: conservative, fast, got: turbo"),
        ("floating_ip", {"floating_ip_carp_syntax": "carp0"}, "floating_ip_carp_syntax must be one of: vhid, carpN"),
        ("floating_ip", {"floating_ip_vrrp_version": 4}, "floating_ip_vrrp_version must be one of: 2, 3"),
        ("base", {"base_packages": {"curl": "latest"}}, "base_packages"),
        ("base", {"base_sysctls": ["net.core.somaxconn=4096"]}, "base_sysctls"),
        ("haproxy", {"haproxy_stats_users": [{"name": "ops"}]}, "missing required arguments: password found in haproxy_stats_users"),
        ("haproxy", {"haproxy_stats_users": [{"name": "ops", "password": "stats-s3cr3t-ops", "role": "admin"}]}, "role"),
        ("cluster", {"haproxy_services": [{"name": "smtp", "port": 25, "mode": "udp"}]},
         "value of mode must be one of: tcp, http, got: udp found in haproxy_services"),
        ("cluster", {"haproxy_services": [{"name": "smtp", "port": 25, "prot": 26}]}, "prot"),
        ("cluster", {"floatip_vip_backend": "vrrpd"}, "value of floatip_vip_backend must be one of"),
        ("nginx_behind_proxy", {"nginx_behind_proxy_vhosts": [{"name": "site"}]},
         "missing required arguments: root found in nginx_behind_proxy_vhosts"),
        ("nginx_behind_proxy", {"nginx_behind_proxy_maintenance": "maybe"}, "nginx_behind_proxy_maintenance"),
        ("postfix_multihome", {"postfix_multihome_sasl_users": [{"name": "alice"}]},
         "missing required arguments: password found in postfix_multihome_sasl_users"),
        ("postfix_multihome", {"postfix_multihome_submission": "maybe"}, "postfix_multihome_submission"),
    ],
)
def test_ansible_refuses_wrong_types_and_choices_at_the_roles_entry(role: str, changes: dict, message: str) -> None:
    result = ArgumentSpecValidator(entry(role)).validate({**valid(role), **changes})
    assert any(message in error for error in result.error_messages), result.error_messages


def test_there_is_no_default_heartbeat_key() -> None:
    without_key = {key: value for key, value in valid("heartbeat").items() if key != "heartbeat_auth_key"}
    result = ArgumentSpecValidator(entry("heartbeat")).validate(without_key)
    assert "missing required arguments: heartbeat_auth_key" in result.error_messages
    for name in ("standby", "takeover"):
        assert entry("heartbeat", name)["heartbeat_auth_key"]["required"]


@pytest.mark.parametrize(
    ("role", "changes", "secret"),
    [
        ("heartbeat", {}, "heartbeat-s3cr3t-key-0123456789"),
        ("floating_ip", {"floating_ip_password": "vr-s3cr3"}, "vr-s3cr3"),
        ("haproxy", {}, "stats-s3cr3t-ops"),
        ("cluster", {}, "basic-s3cr3t"),
        ("postfix_multihome", {"postfix_multihome_sasl_users": [{"name": "alice", "password": "sasl-s3cr3t-alice"}]}, "sasl-s3cr3t-alice"),
    ],
)
def test_every_secret_is_no_log_so_ansible_masks_it(role: str, changes: dict, secret: str) -> None:
    result = ArgumentSpecValidator(entry(role)).validate({**valid(role), **changes})
    assert result.error_messages == []
    assert secret in result._no_log_values


def test_the_haproxy_readme_documents_every_key_of_the_schema() -> None:
    """roles/haproxy/README.md's table of a service's keys is checked against the schema, both ways."""
    readme = (ROLES / "haproxy" / "README.md").read_text()
    table = readme.split("A service's keys", 1)[1].split("\n\n", 2)[1]
    documented = set()
    for row in table.splitlines()[2:]:
        documented.update(key.strip().strip("`") for key in row.split("|")[1].split(","))
    assert documented == set(entry("cluster")["haproxy_services"]["options"])
