#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: masked_diff
short_description: What would change in a config file that holds secrets, with the secrets masked
version_added: 0.1.0
description:
  - Compares a config file on the node with the text it should hold, both with their secrets masked, and returns the
    difference as a diff, so that C(--diff) can show it.
  - O(content) must be masked already (P(floatip.ha.mask_secrets#filter) on the controller); the module masks the live
    file with O(mask_patterns). No secret is in the module's arguments or in its result.
  - The module only reads; it never changes the file. The role's own task that writes the file stays the one that changes
    it, and reports a change of a secret alone, which masks to the same text.
author:
  - floatip.ha maintainers (@floatip)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The config file on the node. A missing file is shown as empty.
    type: path
    required: true
  content:
    description: The text the file should hold, its secrets masked.
    type: str
    required: true
  mask_patterns:
    description:
      - Regular expressions (multi-line), each with exactly one group, the part of a match to mask in the live file. They
        must cover every secret the file can hold.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
    details: It only reads, so it does the same as without.
  diff_mode:
    support: full
    details: Returns the masked diff.
  platform:
    platforms: posix
notes:
  - C(changed) says that the masked texts differ (or the file is missing), that is, the file would change.
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Show what would change in haproxy.cfg, the password hashes masked
  floatip.ha.masked_diff:
    path: /etc/haproxy/haproxy.cfg
    content: "{{ lookup('ansible.builtin.template', 'haproxy.cfg.j2') | floatip.ha.mask_secrets(['\\bpassword (\\S+)']) }}"
    mask_patterns: ['\bpassword (\S+)']
  when: ansible_diff_mode
"""

RETURN = r"""
diff:
  description: The live file and the wanted text, both masked.
  returned: success
  type: dict
  contains:
    before:
      description: The live file, masked (empty when there is none).
      type: str
    after:
      description: The wanted text, as given.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.masked_diff import MaskError, masked_diff


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True},
            "mask_patterns": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        with open(path, encoding="utf-8") as handle:
            live = handle.read()
    except FileNotFoundError:
        live = None
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")
    try:
        result = masked_diff(path, live, module.params["content"], module.params["mask_patterns"])
    except MaskError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
