# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.masked_diff import MaskError, mask


def mask_secrets(text, patterns, secrets=()):
    """A config's text with its secrets masked (see mask_secrets.yml for the documentation)."""
    try:
        return mask(text, patterns, secrets, name="patterns")
    except MaskError as exc:
        raise AnsibleFilterError(f"floatip.ha mask_secrets: {exc}") from None


class FilterModule:
    def filters(self):
        return {"mask_secrets": mask_secrets}
