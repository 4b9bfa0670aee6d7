# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.module_utils.inputs import InputError
from ansible_collections.floatip.ha.plugins.module_utils.role_inputs import check_role


def role_inputs(variables, role, model, node, context=None, hostvars=None):
    """A role's variables, checked (see role_inputs.yml for the documentation)."""
    try:
        return check_role(role, variables, model, node, context=context, hostvars=hostvars)
    except InputError as exc:
        raise AnsibleFilterError(f"floatip.ha {role}: {exc}") from None


class FilterModule:
    def filters(self):
        return {"role_inputs": role_inputs}
