# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.cluster import (
    ModelError,
    build_model,
    nodes_from_hostvars,
    source_networks,
)


def cluster_model(network, hostvars, nodes, vip_pool=None, vips_per_node=None, vip_backend=None, firewall=None,
                  admin_networks=None):
    """The checked cluster model (see cluster_model.yml for the documentation)."""
    try:
        return build_model(
            network,
            nodes_from_hostvars(nodes, hostvars),
            vip_pool=vip_pool,
            vips_per_node=vips_per_node,
            vip_backend=vip_backend,
            firewall=firewall,
            admin_networks=admin_networks,
        )
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha cluster model: {exc}") from None


def narrow_networks(networks, variable="networks"):
    """Checked client networks (see narrow_networks.yml for the documentation)."""
    try:
        return source_networks(networks, variable)
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha narrow_networks: {exc}") from None


class FilterModule:
    def filters(self):
        return {"cluster_model": cluster_model, "narrow_networks": narrow_networks}
