#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: firewall
short_description: The cluster's own nftables table, from the parts each role adds
version_added: 0.1.0
description:
  - Keeps one nftables table, C(inet floatip), on a Linux node. It is made of I(parts), one per role, each a list of
    rules that say who may reach what the role opens. A rule names ports on the node's own addresses (never on the
    VIPs, whose services stay open to every client) and who may reach them (the cluster's nodes, the admin networks
    or the node itself), or an IP protocol (VRRP, CARP) that only the nodes may send.
  - The parts are kept in O(directory) (C(parts/<part>.json)) and joined with O(nodes), O(admin_networks) and O(vips)
    into C(<directory>/floatip.nft), which is checked with C(nft -c) and then loaded in one transaction that replaces
    the table whole. A boot unit can load the same file.
  - The table's chain accepts by default and only drops or resets what a rule names; it never touches another table
    and never filters loopback, so it cannot lock out ssh.
author:
  - floatip.ha maintainers (@floatip)
options:
  part:
    description:
      - The part to set or remove, for example V(haproxy). 1-32 characters of a-z, 0-9 and _.
      - Required unless O(state=disabled).
    type: str
  rules:
    description:
      - The part's rules. Each has C(what) (a short text, kept as the rule's comment), C(from) (V(nodes), V(admins)
        or V(local)) and one of C(tcp) or C(udp) (a list of ports on the node's own addresses) or C(protocol)
        (V(vrrp) or V(carp), IP protocol 112, from V(nodes) only).
      - V(local) means the node itself only (loopback).
    type: list
    elements: dict
    default: []
  nodes:
    description: The cluster's node addresses, all of one IP version. Required unless O(state=disabled).
    type: list
    elements: str
  vips:
    description: The cluster's VIPs. Traffic to them is never filtered by a port rule.
    type: list
    elements: str
    default: []
  admin_networks:
    description:
      - Networks (CIDR, no host bits) that rules C(from=admins) admit; empty for the nodes themselves.
    type: list
    elements: str
    default: []
  directory:
    description: Where the table's file and the parts are kept on the node.
    type: path
    required: true
  state:
    description:
      - V(present) sets the part, V(absent) removes it; either way the table is rebuilt from every part kept.
      - V(disabled) removes the table and every part, leaving the firewall to the operator.
    type: str
    choices: [present, absent, disabled]
    default: present
attributes:
  check_mode:
    description: Reports whether the table would change, and the new table's text in diff mode, without changing it.
    support: full
  diff_mode:
    description: Shows the table's file before and after.
    support: full
  idempotent:
    description: A second run with the same arguments reports no change, as long as the live table is the one written.
    support: full
  platform:
    description: The targets it runs on.
    support: full
    platforms: linux
notes:
  - Needs C(nft) (Debian's package nftables) and the C(CAP_NET_ADMIN) capability (root).
  - A live table that differs from the file (flushed, edited, lost at a reboot) is loaded again and reported as a
    change.
"""

EXAMPLES = r"""
- name: Let only the cluster's nodes reach HAProxy's servers, and the admins the stats page
  floatip.ha.firewall:
    directory: /etc/floatip/firewall
    part: haproxy
    nodes: [192.0.2.11, 192.0.2.12]
    vips: [192.0.2.101, 192.0.2.102]
    admin_networks: [198.51.100.0/24]
    rules:
      - {what: the services' servers, from: nodes, tcp: [25, 5080]}
      - {what: the stats page, from: admins, tcp: [8404]}

- name: Leave the firewall to the operator
  floatip.ha.firewall:
    directory: /etc/floatip/firewall
    state: disabled
"""

RETURN = r"""
path:
  description: The table's file.
  returned: success
  type: str
  sample: /etc/floatip/firewall/floatip.nft
parts:
  description: The parts the table is made of now (or would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [base, floating_ip, haproxy]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.firewall import (
    FAMILY,
    TABLE,
    FirewallError,
    check_part,
    dump_part,
    is_live,
    load_parts,
    render,
)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(prefix=".floatip-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _kept_parts(parts_dir: str) -> dict[str, str]:
    try:
        names = sorted(os.listdir(parts_dir))
    except FileNotFoundError:
        return {}
    return {name[:-5]: _read(os.path.join(parts_dir, name)) or "" for name in names if name.endswith(".json")}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            part=dict(type="str"),
            rules=dict(type="list", elements="dict", default=[]),
            nodes=dict(type="list", elements="str"),
            vips=dict(type="list", elements="str", default=[]),
            admin_networks=dict(type="list", elements="str", default=[]),
            directory=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent", "disabled"], default="present"),
        ),
        required_if=[("state", "present", ("part", "nodes")), ("state", "absent", ("part", "nodes"))],
        supports_check_mode=True,
    )
    params = module.params
    nft = module.get_bin_path("nft", required=True)
    directory = params["directory"]
    path = os.path.join(directory, f"{TABLE}.nft")
    parts_dir = os.path.join(directory, "parts")
    live = module.run_command([nft, "list", "table", FAMILY, TABLE])
    before = _read(path)

    if params["state"] == "disabled":
        kept = _kept_parts(parts_dir)
        changed = live[0] == 0 or before is not None or bool(kept)
        if changed and not module.check_mode:
            if live[0] == 0:
                rc, _out, err = module.run_command([nft, "delete", "table", FAMILY, TABLE])
                if rc != 0:
                    module.fail_json(msg=f"nft could not delete table {FAMILY} {TABLE}: {err.strip()}")
            for name in kept:
                os.unlink(os.path.join(parts_dir, f"{name}.json"))
            if before is not None:
                os.unlink(path)
        module.exit_json(changed=changed, path=path, parts=[],
                         diff={"before": before or "", "after": "", "before_header": path, "after_header": path})

    try:
        own = check_part(params["part"], params["rules"])
        kept_texts = _kept_parts(parts_dir)
        kept_texts.pop(params["part"], None)
        parts = load_parts(kept_texts)
        if params["state"] == "present":
            parts[params["part"]] = own
        text = render(params["nodes"], params["vips"], params["admin_networks"], parts)
    except FirewallError as exc:
        module.fail_json(msg=f"floatip.ha.firewall: {exc}")

    part_path = os.path.join(parts_dir, f"{params['part']}.json")
    part_before = _read(part_path)
    part_after = dump_part(own) if params["state"] == "present" else None
    live_is_ours = live[0] == 0 and is_live(text, live[1])
    changed = before != text or part_before != part_after or not live_is_ours

    if changed and not module.check_mode:
        os.makedirs(parts_dir, mode=0o700, exist_ok=True)
        fd, candidate = tempfile.mkstemp(prefix=".floatip-", suffix=".nft", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            rc, _out, err = module.run_command([nft, "-c", "-f", candidate])
            if rc != 0:
                module.fail_json(msg=f"nft -c refused the table; nothing changed: {err.strip()}")
            rc, _out, err = module.run_command([nft, "-f", candidate])
            if rc != 0:
                module.fail_json(msg=f"nft could not load the table; the one before serves: {err.strip()}")
            os.chmod(candidate, 0o600)
            os.replace(candidate, path)
        finally:
            if os.path.exists(candidate):
                os.unlink(candidate)
        if part_after is None:
            if part_before is not None:
                os.unlink(part_path)
        elif part_before != part_after:
            _write(part_path, part_after)

    module.exit_json(changed=changed, path=path, parts=sorted(parts),
                     diff={"before": before or "", "after": text, "before_header": path, "after_header": path})


if __name__ == "__main__":
    main()
