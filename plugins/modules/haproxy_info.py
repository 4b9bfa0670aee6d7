#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_info
short_description: Read a running HAProxy's process info, frontends, backends and servers
version_added: 0.1.0
description:
  - Reads a running HAProxy through its runtime API (the C(stats socket) of haproxy.cfg) and returns the fact
    C(haproxy_info) with the process info (C(show info)), the frontends and the backends with their servers
    (C(show stat), C(show servers state)).
  - Each server has its status, its administrative state (V(ready), V(drain) or V(maint)), its sessions and its weight,
    the same values M(floatip.ha.haproxy_server) sets and waits for.
  - All commands of a run go over one connection to the socket. The module only reads, so a C(level user) socket is
    enough.
author:
  - floatip.ha maintainers (@floatip)
extends_documentation_fragment:
  - floatip.ha.haproxy
options:
  gather:
    description:
      - What to read. V(info) is C(show info); V(stat) is C(show stat), the status and sessions of every frontend,
        backend and server; V(servers) is C(show servers state), the administrative state and weights.
    type: list
    elements: str
    choices: [info, stat, servers]
    default: [info, stat, servers]
attributes:
  check_mode:
    description: Can run in check mode; it only reads, so it does the same as without.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
  facts:
    description: Returns the fact C(haproxy_info) in C(ansible_facts).
    support: full
notes:
  - C(changed) is always false.
  - Written for the runtime API of HAProxy 2.6 (Debian 12).
seealso:
  - module: floatip.ha.haproxy_server
  - name: HAProxy management guide
    description: The runtime API, C(show info), C(show stat) and C(show servers state).
    link: https://docs.haproxy.org/2.6/management.html#9.3
"""

EXAMPLES = r"""
- name: Read HAProxy
  floatip.ha.haproxy_info:
    socket: /run/haproxy/admin.sock

- name: Show the servers of backend web that take no new traffic
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts['haproxy_info']['backends']['web']['servers'] | dict2items
         | rejectattr('value.admin_state', 'equalto', 'ready') | map(attribute='key') | list }}

- name: Only the status and sessions, through a TCP stats socket
  floatip.ha.haproxy_info:
    socket: tcp://127.0.0.1:9999
    gather: [stat]

- name: Fail unless web1 of backend web is up
  ansible.builtin.assert:
    that: ansible_facts['haproxy_info']['backends']['web']['servers']['web1']['status'] in ['UP', 'no check']
"""

RETURN = r"""
ansible_facts:
  description: The facts gathered.
  returned: success
  type: dict
  contains:
    haproxy_info:
      description: What HAProxy reported.
      returned: success
      type: dict
      contains:
        info:
          description:
            - C(show info) as a dict, the integer values as integers (C(Pid), C(CurrConns), ...), the others as strings
              (C(Version), C(Uptime), ...).
          returned: when O(gather) includes V(info)
          type: dict
          sample: {Name: HAProxy, Version: 2.6.12-1+deb12u4, Pid: 3787, CurrConns: 0, Maxconn: 9984}
        frontends:
          description: Each frontend (and C(listen) section) by name.
          returned: when O(gather) includes V(stat)
          type: dict
          sample: {www: {status: OPEN, sessions: 12, session_limit: 9984, mode: http}}
        backends:
          description:
            - Each backend (and C(listen) section) by name, with C(status), C(sessions) and C(mode) (from V(stat)) and
              C(servers).
            - Each server by name has, from V(stat), C(status) (V(UP), V(DOWN), V(no check), V(DRAIN), V(MAINT),
              V(MAINT (via web/web1\)), V(UP 1/3), ...), C(sessions), C(queued), C(check_status) (for example V(L4OK),
              V(L4CON), null without check) and C(check_description); from V(servers), C(operational_state)
              (V(stopped), V(starting), V(running), V(stopping)) and C(initial_weight) (from haproxy.cfg); and from
              either, C(admin_state), C(weight) and C(address).
            - C(admin_state) is V(ready), V(drain) or V(maint), from the administrative flags of C(show servers state)
              when V(servers) is gathered (maintenance or drain inherited from a tracked server included), else from
              the status.
            - C(weight) is the weight set in haproxy.cfg or by C(set server ... weight), whatever the state.
          returned: when O(gather) includes V(stat) or V(servers)
          type: dict
          sample:
            web:
              status: UP
              sessions: 3
              mode: http
              servers:
                web1:
                  status: DRAIN
                  admin_state: drain
                  operational_state: running
                  sessions: 3
                  queued: 0
                  weight: 100
                  initial_weight: 100
                  check_status: L4OK
                  check_description: Layer4 check passed
                  address: 192.0.2.11:8080
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.haproxy import (
    GATHER,
    HAProxyError,
    connect,
    gather,
    parse_address,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", required=True),
            gather=dict(type="list", elements="str", choices=list(GATHER), default=list(GATHER)),
        ),
        supports_check_mode=True,
    )
    try:
        with connect(parse_address(module.params["socket"])) as client:
            facts = gather(client, module.params["gather"])
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"haproxy_info": facts})


if __name__ == "__main__":
    main()
