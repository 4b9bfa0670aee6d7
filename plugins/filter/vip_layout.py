# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.cluster import ModelError
from ansible_collections.floatip.ha.plugins.module_utils.layout import build_layout


def vip_layout(model, vrid_base=1):
    """The VIP layout of a cluster model (see vip_layout.yml for the documentation)."""
    try:
        return build_layout(model, vrid_base=vrid_base)
    except ModelError as exc:
        raise AnsibleFilterError(f"floatip.ha vip_layout: {exc}") from None


class FilterModule:
    def filters(self):
        return {"vip_layout": vip_layout}
