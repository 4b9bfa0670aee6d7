#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vip_info
short_description: Which floating IPs this node holds now, and in which state
version_added: 0.1.0
description:
  - Reads the VIP layout that the VIP layer (the C(floatip.ha.floating_ip) or C(floatip.ha.heartbeat) role) wrote to
    O(layout_path), asks the node's VIP backend in which state each VIP is, and checks which of the VIP addresses the node
    really holds. Returns it all as the fact C(floatip_vips), with a list of the things that do not add up.
  - "keepalived: the state each VRRP instance's notify script wrote to C(<state_dir>/vrrp/vrid-<vrid>.state) (V(MASTER),
    V(BACKUP), V(FAULT) or V(STOP)); no file yet is V(INIT). The node is in maintenance standby while
    O(keepalived_standby_file) holds a non-zero number."
  - "ucarp: the state the up/down scripts wrote to C(<state_dir>/ucarp/vhid-<vrid>.state) (V(MASTER) or V(BACKUP)); no file
    is V(INIT). The node is in maintenance standby while O(ucarp_standby_file) exists."
  - "heartbeat: C(cl_status rscstatus). The VIPs are held (V(MASTER)) when it says C(all), or C(local) on the VIPs' owner
    (the primary) and C(foreign) on the other node; otherwise V(BACKUP). V(TRANSITION) while heartbeat moves them, V(STOP)
    when C(cl_status) fails (heartbeat is not running). Standby is not recorded anywhere, so it is null."
  - "carp (FreeBSD): the vhid states in C(ifconfig -a) output, in the FreeBSD 10+ syntax or the FreeBSD 9 one (C(carpN)
    interfaces); a vhid in MASTER holds its addresses. The node is in standby while C(net.inet.carp.demotion) is above 0
    (null on FreeBSD 9, which has no such counter)."
  - On Linux the held addresses come from C(ip -o address show).
  - The module only reads; it changes nothing on the node.
author:
  - floatip.ha maintainers (@floatip)
options:
  layout_path:
    description:
      - The VIP layout of this node, written by the VIP layer (JSON with C(backend), C(node), C(interface), C(prefixlen) and
        C(vips), each with C(address), C(vrid), C(priority), C(advskew) and C(owner)).
      - The module fails if it is missing or cannot be read, since then the VIP layer has not been applied to this node.
    type: path
    default: /etc/floatip/layout.json
  state_dir:
    description:
      - The directory under which the keepalived notify script (C(vrrp/)) and the ucarp up/down scripts (C(ucarp/)) write
        the state files.
    type: path
    default: /run/floatip
  keepalived_standby_file:
    description:
      - keepalived's maintenance standby switch; a non-zero number in it means standby, V(0) or no file means not.
    type: path
    default: /etc/keepalived/floatip-standby
  ucarp_standby_file:
    description:
      - The marker file that exists while a ucarp node is in maintenance standby.
    type: path
    default: /etc/floatip/ucarp/standby
  ip_path:
    description:
      - The C(ip) program to run (Linux backends). By default it is looked up in the E(PATH) and the sbin directories.
    type: path
  cl_status_path:
    description:
      - The C(cl_status) program to run (heartbeat). By default it is looked up in the E(PATH) and the sbin directories.
    type: path
  ifconfig_path:
    description:
      - The C(ifconfig) program to run (carp). By default it is looked up in the E(PATH) and the sbin directories.
    type: path
  sysctl_path:
    description:
      - The C(sysctl) program to run (carp). By default it is looked up in the E(PATH) and the sbin directories.
    type: path
attributes:
  check_mode:
    description: Can run in check mode; it only reads, so it does the same as without.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
  facts:
    description: Returns the fact C(floatip_vips) in C(ansible_facts).
    support: full
  platform:
    description: The targets it runs on.
    support: full
    platforms: posix
notes:
  - C(changed) is always false.
  - Problems are reported, not failed on, so that a play can show every node's view of the cluster; fail on
    C(floatip_vips.problems) where a task needs a consistent cluster.
seealso:
  - module: floatip.ha.carp_state
"""

EXAMPLES = r"""
- name: Read which VIPs this node holds
  floatip.ha.vip_info:

- name: Show them
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} holds {{ ansible_facts['floatip_vips']['held'] | join(', ') or 'nothing' }}"

- name: Stop when something does not add up
  ansible.builtin.assert:
    that: ansible_facts['floatip_vips']['problems'] | length == 0
    fail_msg: "{{ ansible_facts['floatip_vips']['problems'] }}"

- name: The VIPs this node owns but does not hold now
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts['floatip_vips']['vips'] | selectattr('owner', 'equalto', inventory_hostname)
         | rejectattr('held') | map(attribute='address') | list }}
"""

RETURN = r"""
ansible_facts:
  description: The facts gathered.
  returned: success
  type: dict
  contains:
    floatip_vips:
      description: The VIPs this node takes part in, their state and whether it holds them.
      returned: success
      type: dict
      contains:
        backend:
          description: The VIP backend, from the layout.
          type: str
          sample: keepalived
        node:
          description: This node's inventory name, from the layout.
          type: str
          sample: node1
        standby:
          description:
            - Whether the node is in maintenance standby; null where that is unknown (always with heartbeat, and with carp on
              FreeBSD 9).
          type: bool
          sample: false
        held:
          description: The VIP addresses this node holds now.
          type: list
          elements: str
          sample: ["172.30.80.101"]
        vips:
          description: Every VIP of the layout, in its order.
          type: list
          elements: dict
          contains:
            address:
              description: The VIP.
              type: str
              sample: 172.30.80.101
            vrid:
              description: The VRRP VRID (keepalived) or CARP vhid (carp, ucarp); null with heartbeat.
              type: int
              sample: 1
            owner:
              description: The node that holds the VIP when every node is up (with heartbeat, the primary).
              type: str
              sample: node1
            state:
              description:
                - The backend's state of the VIP on this node. V(MASTER) (holds it), V(BACKUP), V(FAULT) (keepalived),
                  V(INIT) (no state reported yet; carp, an interface down), V(STOP) (keepalived stopped the instance,
                  heartbeat is not running, or the carp vhid is not configured), V(TRANSITION) (heartbeat is moving it),
                  V(UNKNOWN) (the state could not be read; see RV(ansible_facts.floatip_vips.problems)).
              type: str
              sample: MASTER
            held:
              description: Whether this node holds the address now.
              type: bool
              sample: true
            priority:
              description: This node's VRRP priority for the VIP; null where the layout has none.
              type: int
              sample: 200
            advskew:
              description: This node's CARP/ucarp advskew for the VIP; null where the layout has none.
              type: int
              sample: 0
        problems:
          description:
            - What does not add up, for a person to read, such as a VIP in MASTER whose address this node does not hold,
              an address held while the backend reports another state, keepalived in FAULT outside standby, or a state file
              that cannot be read.
          type: list
          elements: str
          sample: ["172.30.80.102 (vrid 2): this node holds the address but keepalived reports BACKUP"]
  sample:
    floatip_vips:
      backend: keepalived
      node: node1
      standby: false
      held: ["172.30.80.101"]
      vips:
        - {address: 172.30.80.101, vrid: 1, owner: node1, state: MASTER, held: true, priority: 200, advskew: 0}
        - {address: 172.30.80.102, vrid: 2, owner: node2, state: BACKUP, held: false, priority: 197, advskew: 3}
      problems: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.vip_info import (
    KEEPALIVED_STANDBY,
    LAYOUT_PATH,
    STATE_DIR,
    UCARP_STANDBY,
    Host,
    Paths,
    VipInfoError,
    collect,
)


def _host(module: AnsibleModule) -> Host:
    def program(name: str) -> str:
        given = module.params[f"{name}_path"]
        if given:
            if not (os.path.isfile(given) and os.access(given, os.X_OK)):
                raise VipInfoError(f"{name}_path {given} is not an executable file")
            return given
        found = module.get_bin_path(name, opt_dirs=["/sbin", "/usr/sbin", "/bin", "/usr/bin"])
        if not found:
            raise VipInfoError(f"cannot find {name} on this host: set {name}_path")
        return found

    def run(argv: list) -> tuple:
        # Programs are looked up only when the node's backend runs them.
        return module.run_command([program(argv[0])] + argv[1:])

    def read_text(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    return Host(run=run, read_text=read_text, exists=os.path.exists)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            layout_path=dict(type="path", default=LAYOUT_PATH),
            state_dir=dict(type="path", default=STATE_DIR),
            keepalived_standby_file=dict(type="path", default=KEEPALIVED_STANDBY),
            ucarp_standby_file=dict(type="path", default=UCARP_STANDBY),
            ip_path=dict(type="path"),
            cl_status_path=dict(type="path"),
            ifconfig_path=dict(type="path"),
            sysctl_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # Paths keeps the programs' names (ip, cl_status, ...): run() finds them.
    paths = Paths(layout=params["layout_path"], state_dir=params["state_dir"],
                  keepalived_standby=params["keepalived_standby_file"], ucarp_standby=params["ucarp_standby_file"])
    try:
        facts = collect(_host(module), paths)
    except VipInfoError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"floatip_vips": facts})


if __name__ == "__main__":
    main()
