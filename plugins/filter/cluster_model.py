# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError, nodes_from_hostvars, source_networks
from ansible_collections.floatip.ha.plugins.module_utils.model import cluster_model as whole_model
from ansible_collections.floatip.ha.plugins.module_utils.vip_info import interface_of as _interface_of
from ansible_collections.floatip.ha.plugins.module_utils.vip_info import layout_record as _layout_record


def cluster_model(network, hostvars, nodes, vip_pool=None, vips_per_node=None, vip_backend=None, firewall=None,
                  admin_networks=None, vrid_base=None, services=None, check_interval=None, hide_headers=None):
    """The whole cluster model (see cluster_model.yml for the documentation)."""
    try:
        return whole_model(
            network,
            nodes_from_hostvars(nodes, hostvars),
            vip_pool=vip_pool,
            vips_per_node=vips_per_node,
            vip_backend=vip_backend,
            firewall=firewall,
            admin_networks=admin_networks,
            vrid_base=vrid_base,
            services=services,
            check_interval=check_interval,
            hide_headers=hide_headers,
        )
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha cluster model: {exc}") from None


def narrow_networks(networks, variable="networks"):
    """Checked client networks (see narrow_networks.yml for the documentation)."""
    try:
        return source_networks(networks, variable)
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha narrow_networks: {exc}") from None


def layout_record(model, node, interface=None):
    """A node's layout file (see layout_record.yml for the documentation)."""
    try:
        return _layout_record(model, node, interface)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"floatip.ha layout_record: {node} is not laid out in this cluster model ({exc})") from None


def interface_of(facts, address):
    """The interface that has an address (see interface_of.yml for the documentation)."""
    return _interface_of(facts, address)


class FilterModule:
    def filters(self):
        return {"cluster_model": cluster_model, "narrow_networks": narrow_networks, "layout_record": layout_record,
                "interface_of": interface_of}
