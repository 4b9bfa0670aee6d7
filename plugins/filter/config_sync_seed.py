# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.config_sync import SyncError, split_seed


def config_sync_seed(rendered, basenames):
    """The files that seed the config repository (see config_sync_seed.yml for the documentation)."""
    try:
        return split_seed(rendered, basenames)
    except SyncError as exc:
        raise AnsibleFilterError(f"floatip.ha config_sync_seed: {exc}") from None


class FilterModule:
    def filters(self):
        return {"config_sync_seed": config_sync_seed}
