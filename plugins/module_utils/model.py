# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The cluster model, whole: what every role and playbook reads.

The role floatip.ha.cluster computes it at the start of every role and
playbook (a dependency of each, allow_duplicates), as the fact
``cluster_model``, from the inventory's variables; every default of the
model is in the modules it calls (cluster.py for the inventory's
description and the model's own defaults, layout.py for the VIP layout, haproxy_config.py for the
service contract, contract.py for the node-side paths). Nothing else
computes any of it again.

    network, prefixlen, ip_version, nodes, vip_backend, vips_per_node,
    firewall, admin_networks   the inventory's description, checked (cluster.py)
    pool                       every address of floatip_vip_pool
    vips                       the VIPs the cluster serves: held by a node,
                               bound by HAProxy, listened on by postfix
    spare                      the pool's addresses beyond nodes x
                               floatip_vips_per_node, kept for nodes to come:
                               no node holds them and nothing binds them
    vrid_base, layout          the VIP layout (owners, VRIDs, orders), none
                               with heartbeat, whose primary holds every VIP
    services                   the service contract (haproxy_config.py)
    paths                      the node-side contract (contract.py)
"""

from __future__ import annotations

from collections.abc import Iterable

from ansible_collections.floatip.ha.plugins.module_utils.cluster import DEFAULT_VRID_BASE, ModelError, build_model
from ansible_collections.floatip.ha.plugins.module_utils.contract import PATHS
from ansible_collections.floatip.ha.plugins.module_utils.haproxy_config import (
    DEFAULT_CHECK_INTERVAL,
    DEFAULT_HIDDEN_HEADERS,
    HEADER_ALLOWED,
    HEADER_RE,
    check_services,
)
from ansible_collections.floatip.ha.plugins.module_utils.inputs import items, number, text
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout


def cluster_model(
    network: object,
    nodes: Iterable[tuple[str, object]],
    *,
    vrid_base: object = None,
    services: object = None,
    check_interval: object = None,
    hide_headers: object = None,
    **description: object,
) -> dict:
    """The whole model, or ModelError naming the variable at fault.

    ``description`` is what ``cluster.build_model`` reads (vip_pool,
    vips_per_node, vip_backend, firewall, admin_networks); the rest are the
    layout's and the services' inputs.
    """
    model = build_model(network, nodes, **description)
    model["pool"] = list(model["vips"])
    model["spare"] = []
    model["vrid_base"] = None
    model["layout"] = None
    if model["vips"] and model["vip_backend"] != "heartbeat":
        model["vrid_base"] = DEFAULT_VRID_BASE if vrid_base is None else vrid_base
        model["layout"] = build_layout(model, vrid_base=model["vrid_base"])
        model["vips"] = [vip["address"] for vip in model["layout"]["vips"]]
        model["spare"] = list(model["layout"]["spare"])
    interval = DEFAULT_CHECK_INTERVAL if check_interval is None else number(check_interval, "haproxy_check_interval", 0, 3600, above=True)
    hide = list(DEFAULT_HIDDEN_HEADERS) if hide_headers is None else [
        text(header, f"haproxy_hide_response_headers[{index}]", HEADER_ALLOWED, HEADER_RE)
        for index, header in enumerate(items(hide_headers, "haproxy_hide_response_headers", "header names"))
    ]
    model["services"] = check_services(model, services, interval, hide)
    model["paths"] = dict(PATHS)
    return model


__all__ = ["ModelError", "cluster_model"]
