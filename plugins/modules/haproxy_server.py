#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Set HAProxy servers ready, draining or in maintenance, and their weight
version_added: 0.1.0
description:
  - Sets the administrative state (V(ready), V(drain), V(maint)) and the weight of one or more servers of a running
    HAProxy through its runtime API (the C(stats socket) of haproxy.cfg), and can wait until they are up or have no
    sessions left.
  - Without O(backend), every backend that holds a server of that name is changed, so a node leaves all its pools
    at once.
  - The change is idempotent on the administrative state and the weight only. Health and session counts change on
    their own and never make the module report a change.
  - All commands of a run go over one connection to the socket.
author:
  - floatip.ha maintainers (@floatip)
extends_documentation_fragment:
  - floatip.ha.haproxy
options:
  backend:
    description:
      - The backend (or C(listen) section) whose servers to change.
      - Omitted or V(*), every backend that holds a server of each name in O(servers).
    type: str
  servers:
    description:
      - The names of the servers, as in the C(server) lines of haproxy.cfg.
      - The module fails if a server is not in O(backend), or, without O(backend), in no backend at all.
    type: list
    elements: str
    required: true
    aliases: [name]
  state:
    description:
      - V(ready) takes the servers out of drain and maintenance; they take traffic again once their health check
        (if any) passes.
      - V(drain) sends them no new connections except persistent ones (stickiness, cookies), while the current
        sessions go on.
      - V(maint) takes them out of load balancing and stops their health checks; current sessions go on.
      - A server that inherits its state from a server it tracks (C(track)), or that is in maintenance because its
        name does not resolve, cannot be set this way; the module fails and says so.
    type: str
    choices: [ready, drain, maint]
  weight:
    description:
      - The weight, an integer from V(0) to V(256), or a percentage of the server's initial weight from haproxy.cfg
        such as V(50%), worked out as HAProxy does (rounded down, at most 256).
      - Backends with a static balance algorithm (for example C(balance source)) accept only V(0) and the initial
        weight (V(0%) and V(100%)); HAProxy refuses other values and the module fails with its message.
      - At least one of O(state) and O(weight) is required.
    type: raw
  wait:
    description:
      - Wait after the change (also when nothing changed) until the servers are where O(state) leads.
      - With O(state=ready), until each server is up with full health (status C(UP)), or C(no check) for a server
        without health check.
      - With O(state=drain) or O(state=maint), until each server has no session left. A draining server stays up and
        serves its sessions; only the session count is waited for.
      - Needs O(state). Not done in check mode.
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds to wait at most. On timeout the module fails and names each server that is not there yet,
        with its status or its number of sessions.
    type: int
    default: 30
  wait_interval:
    description:
      - Seconds between two polls while waiting. The last poll is made at the timeout itself.
    type: float
    default: 0.5
attributes:
  check_mode:
    description: Can run in check mode and returns the changes and commands it would make without making them.
    support: full
  diff_mode:
    description: Returns the state and weight of each server before and after the change when in diff mode.
    support: full
  idempotent:
    description: A second run with the same arguments reports no change.
    support: full
notes:
  - Changing servers needs a socket declared with C(level admin), for example
    C(stats socket /run/haproxy/admin.sock mode 660 level admin) in the C(global) section; the module fails on a
    C(level user) or C(level operator) socket, in check mode too.
  - Written for the runtime API of HAProxy 2.6 (Debian 12); the commands are C(set server <backend>/<server> state
    ready|drain|maint) and C(set server <backend>/<server> weight <n>).
  - The runtime API changes the running process only. A reload or restart of HAProxy resets the servers to
    haproxy.cfg unless C(load-server-state-from-file) keeps their state.
seealso:
  - module: floatip.ha.haproxy_info
  - name: HAProxy management guide
    description: The runtime API and its commands.
    link: https://docs.haproxy.org/2.6/management.html#9.3
"""

EXAMPLES = r"""
- name: Take web1 out of every backend that holds it, and wait until its sessions are gone
  floatip.ha.haproxy_server:
    socket: /run/haproxy/admin.sock
    servers: web1
    state: drain
    wait: true
    wait_timeout: 300

- name: Put two servers of backend app into maintenance
  floatip.ha.haproxy_server:
    socket: /run/haproxy/admin.sock
    backend: app
    servers: [app1, app2]
    state: maint

- name: Bring web1 back and wait until its health check says it is up
  floatip.ha.haproxy_server:
    socket: /run/haproxy/admin.sock
    servers: web1
    state: ready
    wait: true

- name: Give web2 half its configured weight, through a TCP stats socket
  floatip.ha.haproxy_server:
    socket: tcp://127.0.0.1:9999
    backend: web
    servers: web2
    weight: "50%"
"""

RETURN = r"""
servers:
  description:
    - One entry per backend and server changed (or that would be changed, in check mode) or found already as asked.
  returned: success
  type: list
  elements: dict
  contains:
    backend:
      description: The backend.
      type: str
      sample: web
    server:
      description: The server.
      type: str
      sample: web1
    before:
      description: The administrative state (V(ready), V(drain) or V(maint)) and the weight before.
      type: dict
      sample: {state: ready, weight: 100}
    after:
      description: The administrative state and the weight after; in check mode, as the change would leave them.
      type: dict
      sample: {state: drain, weight: 100}
    status:
      description:
        - HAProxy's status of the server at the end (after waiting), as in C(show stat), for example V(UP), V(DOWN),
          V(no check), V(DRAIN), V(MAINT), V(UP 1/3) (up, a check failed). In check mode, the status now.
      type: str
      sample: DRAIN
    sessions:
      description: The server's current sessions at the end (after waiting); in check mode, now.
      type: int
      sample: 0
  sample:
    - {backend: web, server: web1, before: {state: ready, weight: 100}, after: {state: drain, weight: 100},
       status: DRAIN, sessions: 0}
commands:
  description: The runtime API commands sent; in check mode, the commands that would be sent.
  returned: success
  type: list
  elements: str
  sample: ["set server web/web1 state drain", "set server api/web1 state drain"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.haproxy import (
    ADMIN_STATES,
    HAProxyError,
    connect,
    make_request,
    parse_address,
    sync,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", required=True),
            backend=dict(type="str"),
            servers=dict(type="list", elements="str", required=True, aliases=["name"]),
            state=dict(type="str", choices=list(ADMIN_STATES)),
            # raw: an int (50) or a percentage string ("50%"), checked by make_request.
            weight=dict(type="raw"),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=30),
            wait_interval=dict(type="float", default=0.5),
        ),
        required_one_of=[("state", "weight")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        request = make_request(params["servers"], params["backend"], params["state"], params["weight"],
                               params["wait"], params["wait_timeout"], params["wait_interval"])
        with connect(parse_address(params["socket"])) as client:
            result = sync(client, request, check_mode=module.check_mode)
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))

    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
