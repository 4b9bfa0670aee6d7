# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout, holders, view_orders


def vip_layout(model, vrid_base=1):
    """The VIP layout of a cluster model (see vip_layout.yml for the documentation)."""
    try:
        return build_layout(model, vrid_base=vrid_base)
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha vip_layout: {exc}") from None


def vip_holders(views, failed=()):
    """Who should hold each VIP while ``failed`` are down (see vip_holders.yml)."""
    if isinstance(failed, str) or not isinstance(failed, (list, tuple, set)):
        raise AnsibleFilterError(f"floatip.ha vip_holders: failed must be a list of node names, got {failed!r}")
    if not isinstance(views, dict):
        raise AnsibleFilterError(f"floatip.ha vip_holders: expected a mapping of node names to floatip_vips, got {views!r}")
    try:
        return holders(view_orders(views), failed)
    except (ModelError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"floatip.ha vip_holders: {exc}") from None


class FilterModule:
    def filters(self):
        return {"vip_layout": vip_layout, "vip_holders": vip_holders}
