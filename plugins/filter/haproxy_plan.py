# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.haproxy_config import ServiceError, build_plan


def haproxy_plan(model, services, node, check_interval=3, hide_headers=None, reserved_ports=None):
    """The HAProxy frontends and backends of one node (see haproxy_plan.yml for the documentation)."""
    kwargs = {"check_interval": check_interval, "reserved_ports": reserved_ports}
    if hide_headers is not None:
        kwargs["hide_headers"] = hide_headers
    try:
        return build_plan(model, services, node, **kwargs)
    except ServiceError as exc:
        raise AnsibleFilterError(f"floatip.ha haproxy_plan: {exc}") from None


class FilterModule:
    def filters(self):
        return {"haproxy_plan": haproxy_plan}
