#!/usr/bin/python
# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: carp_state
short_description: Read and set the CARP state, advskew and demotion of a vhid
version_added: 0.1.0
description:
  - Reads one CARP virtual host (vhid) and, when asked, moves it to BACKUP or MASTER, changes its
    advskew or advbase, or sets the global CARP demotion counter.
  - On FreeBSD it works with the kernel's carp(4) through C(ifconfig) and C(sysctl); both the
    FreeBSD 10+ syntax (vhids on an ordinary interface) and the FreeBSD 9 syntax (one C(carpN)
    interface per vhid) are recognised from C(ifconfig) output.
  - On Linux it works with ucarp run by the floating_ip role as one systemd unit
    C(floatip-ucarp@<vhid>.service) per VIP, whose settings are in an environment file and whose
    up/down scripts write the state to a state file.
  - Without O(state), O(advskew), O(advbase), O(demotion) and O(key) it only reports the vhid.
author:
  - floatip.ha maintainers (@floatip)
options:
  vhid:
    description:
      - The virtual host ID, from 1 to 255.
    type: int
    required: true
  interface:
    description:
      - On FreeBSD 10 and later, the interface that carries the vhid (for example V(em0)). A vhid number
        belongs to an interface there, so O(interface) is required with O(state), O(advskew), O(advbase) or
        O(key); for reading only, a vhid found on exactly one interface needs none.
      - On FreeBSD 9, the C(carpN) interface of the vhid (for example V(carp0)); it is found from
        the vhid when not given.
      - With ucarp, if given it must equal C(UCARP_IFACE) of the vhid's environment file.
    type: str
  state:
    description:
      - V(backup) makes the node step down, V(master) makes it take the VIP over (FreeBSD only).
      - A vhid in INIT (its interface down or without carrier) holds no address, so V(backup) leaves
        it alone and V(master) fails.
      - Stepping down lasts only while another node is preferred. With preemption on, a node whose
        advskew is the lowest takes the VIP straight back; to move the VIP away for good raise
        O(advskew) (or O(demotion) on FreeBSD) in the same task.
    type: str
    choices: [master, backup]
  advskew:
    description:
      - The advertisement skew, from 0 to 254; the node with the lowest advskew is preferred as master.
      - With ucarp this rewrites C(UCARP_ADVSKEW) in the environment file and restarts the unit (ucarp
        cannot change it while it runs); a restarted ucarp starts as BACKUP.
    type: int
  advbase:
    description:
      - The advertisement base interval in seconds, from 1 to 255.
      - With ucarp this rewrites C(UCARP_ADVBASE) and restarts the unit, as for O(advskew).
    type: int
  demotion:
    description:
      - The wanted value of the global demotion counter C(net.inet.carp.demotion), which is added to
        the advskew of every vhid in this node's advertisements (capped at 240). FreeBSD 10 and later only.
      - Writing that sysctl on FreeBSD B(adds) the written value to the counter, so the module reads the
        counter and writes the difference between the wanted and the current value.
      - The counter also holds the kernel's own demotions (for example 240 while a CARP interface is
        down, C(net.inet.carp.ifdown_demotion_factor)) which the kernel takes back by itself later;
        an absolute value set while such a demotion is in force cancels it. Set it on a healthy node.
    type: int
  key:
    description:
      - The vhid's key (CARP password), FreeBSD 10 and later. The module reads the key the kernel holds
        (C(ifconfig -a -k), as root) and gives the vhid this one (C(ifconfig <interface> vhid <vhid> pass <key>))
        only when it differs, so the key is on a command line only when it must change.
      - Never returned nor shown; C(commands) shows it as C(********). Without O(key) no key is read at all.
      - At most 19 printable ASCII characters without spaces or double quotes (FreeBSD's ifconfig keeps 19).
      - A key cannot be removed this way (carp(4) ignores an empty one), nor checked on FreeBSD 9, whose ifconfig
        does not show it (the module fails there).
    type: str
  backend:
    description:
      - V(freebsd) for carp(4), V(ucarp) for ucarp on Linux.
      - V(auto) picks V(freebsd) on FreeBSD and V(ucarp) on Linux.
    type: str
    choices: [auto, freebsd, ucarp]
    default: auto
  timeout:
    description:
      - With ucarp, how many seconds to wait for the state file to say BACKUP after the node was told
        to step down (its down script writes it). The module fails if it does not.
    type: float
    default: 10
  ifconfig_path:
    description:
      - The C(ifconfig) program to run. By default it is looked up in the E(PATH) and the sbin directories.
    type: path
  sysctl_path:
    description:
      - The C(sysctl) program to run. By default it is looked up in the E(PATH) and the sbin directories.
    type: path
  systemctl_path:
    description:
      - The C(systemctl) program to run (ucarp). By default it is looked up in the E(PATH).
    type: path
  ucarp_env_dir:
    description:
      - The directory of the ucarp environment files C(vhid-<vhid>.conf) (lines C(UCARP_VHID=),
        C(UCARP_ADVBASE=), C(UCARP_ADVSKEW=), C(UCARP_ADDR=), C(UCARP_IFACE=), C(UCARP_SRCIP=)).
    type: path
    default: /etc/floatip/ucarp
  ucarp_state_dir:
    description:
      - The directory of the ucarp state files C(vhid-<vhid>.state), holding C(MASTER) or C(BACKUP)
        as the up/down scripts wrote it. A missing state file means INIT (ucarp not running).
    type: path
    default: /run/floatip/ucarp
attributes:
  check_mode:
    description: Can run in check mode and return the changed status and the commands it would run without changing the target.
    support: full
  diff_mode:
    description: Returns the vhid before and after the change when in diff mode.
    support: full
  idempotent:
    description: A second run with the same arguments reports no change.
    support: full
  platform:
    description: The targets it runs on.
    support: full
    platforms: posix
notes:
  - "FreeBSD 10 and later: the commands are C(ifconfig <interface> vhid <vhid> advskew|advbase <n>) and
    C(ifconfig <interface> vhid <vhid> state backup|master); a vhid number belongs to an interface."
  - "FreeBSD 9: the commands are C(ifconfig carpN advskew|advbase <n>) and C(ifconfig carpN state backup|master).
    FreeBSD 9 has no C(net.inet.carp.demotion), so O(demotion) fails there."
  - "ucarp: O(state=backup) is C(systemctl kill --signal=SIGUSR2 floatip-ucarp@<vhid>.service); ucarp
    then steps down to BACKUP, pauses 3 seconds, and may take the VIP back by preempt if its advskew
    is the lowest, so a lasting move needs a higher O(advskew). O(advskew) and O(advbase) rewrite the
    environment file and run C(systemctl try-restart), which leaves a stopped unit stopped. O(state=master)
    and O(demotion) are not supported with ucarp."
  - The changes are made in the order demotion, key, advskew, advbase, state, so that a node given a higher
    advskew before it steps down does not take the VIP straight back.
  - "FreeBSD offers no way to give carp(4) a key but C(ifconfig)'s command line: while that C(ifconfig ... pass)
    runs (milliseconds), a local user who lists processes may see the key, unless C(security.bsd.see_other_uids=0)
    hides root's processes from them. O(key) keeps that to the runs where the key really changes."
seealso:
  - name: carp(4)
    description: The FreeBSD CARP manual page.
    link: https://man.freebsd.org/cgi/man.cgi?query=carp&sektion=4
  - name: ifconfig(8)
    description: The FreeBSD ifconfig manual page (CARP parameters).
    link: https://man.freebsd.org/cgi/man.cgi?query=ifconfig&sektion=8
"""

EXAMPLES = r"""
- name: Read vhid 1
  floatip.ha.carp_state:
    vhid: 1
  register: vhid1

- name: Move the VIP of vhid 1 away for maintenance (FreeBSD 10 and later)
  floatip.ha.carp_state:
    vhid: 1
    interface: em0
    advskew: 240
    state: backup

- name: Take the VIP back after maintenance
  floatip.ha.carp_state:
    vhid: 1
    interface: em0
    advskew: 0
    state: master

- name: Step down on FreeBSD 9 (one carpN interface per vhid)
  floatip.ha.carp_state:
    vhid: 6
    interface: carp5
    state: backup

- name: Demote every vhid of this node by 50 while it is being upgraded
  floatip.ha.carp_state:
    vhid: 1
    demotion: 50

- name: Give vhid 1 the group's key if it has another one (or none)
  floatip.ha.carp_state:
    vhid: 1
    interface: em0
    key: "{{ carp_password }}"

- name: Step down and stay down with ucarp on Linux
  floatip.ha.carp_state:
    vhid: 3
    advskew: 200
    state: backup
"""

RETURN = r"""
carp:
  description:
    - The vhid after the change; in check mode, as the change would leave it.
  returned: success
  type: dict
  contains:
    backend:
      description: V(freebsd) or V(ucarp).
      type: str
      sample: freebsd
    syntax:
      description: The FreeBSD ifconfig syntax, V(freebsd10) (FreeBSD 10 and later) or V(freebsd9) (C(carpN) interfaces); null with ucarp.
      type: str
      sample: freebsd10
    interface:
      description: The interface that carries the vhid (the C(carpN) interface on FreeBSD 9).
      type: str
      sample: em0
    vhid:
      description: The virtual host ID.
      type: int
      sample: 1
    state:
      description: V(MASTER), V(BACKUP) or V(INIT).
      type: str
      sample: BACKUP
    advbase:
      description: The advertisement base interval in seconds.
      type: int
      sample: 1
    advskew:
      description: The advertisement skew.
      type: int
      sample: 240
    addresses:
      description: The addresses of the vhid (link-local addresses left out).
      type: list
      elements: str
      sample: ["192.0.2.101"]
    demotion:
      description: The global demotion counter C(net.inet.carp.demotion); null where there is none (FreeBSD 9, ucarp).
      type: int
      sample: 0
    preempt:
      description: Whether C(net.inet.carp.preempt) is on; null where unknown (ucarp).
      type: bool
      sample: true
    key:
      description:
        - With O(key) only, how the vhid's key stands against it, never the key itself. V(as asked) when the
          vhid has that key (in check mode, will have it); V(another) or V(none) only when the change did not
          take, with a warning. In diff mode the diff's C(before) tells how it stood.
      type: str
      returned: when O(key) is given
      sample: as asked
  sample:
    backend: freebsd
    syntax: freebsd10
    interface: em0
    vhid: 1
    state: BACKUP
    advbase: 1
    advskew: 240
    addresses: ["192.0.2.101"]
    demotion: 0
    preempt: true
commands:
  description:
    - The commands run, each an argument list; in check mode, the commands that would run.
    - A key after C(pass) shows as C(********).
  returned: success
  type: list
  elements: list
  sample: [["/sbin/ifconfig", "em0", "vhid", "1", "advskew", "240"], ["/sbin/ifconfig", "em0", "vhid", "1", "state", "backup"]]
"""

import os
import platform
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floatip.ha.plugins.module_utils.carp import (
    UCARP_ENV_DIR,
    UCARP_STATE_DIR,
    CarpError,
    Host,
    Paths,
    check_backend,
    make_want,
    resolve_backend,
    sync,
)


def _program(module: AnsibleModule, given: str | None, name: str) -> str:
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise CarpError(f"{name}_path {given} is not an executable file")
        return given
    found = module.get_bin_path(name, opt_dirs=["/sbin", "/usr/sbin", "/bin", "/usr/bin"])
    if not found:
        raise CarpError(f"cannot find {name} on this host: set {name}_path")
    return found


def _host(module: AnsibleModule) -> Host:
    def run(argv: list) -> tuple:
        return module.run_command(argv)

    def read_text(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CarpError(f"cannot read {path}: {exc.strerror}") from None

    def write_text(path: str, text: str) -> None:
        # A temporary file beside it, then atomic_move: the unit never reads half a file.
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".carp_state.")
        except OSError as exc:
            raise CarpError(f"cannot write {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            os.unlink(tmp)
            raise CarpError(f"cannot write {path}: {exc.strerror}") from None
        module.atomic_move(tmp, path)

    return Host(run=run, read_text=read_text, write_text=write_text, sleep=time.sleep, clock=time.monotonic)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            vhid=dict(type="int", required=True),
            interface=dict(type="str"),
            state=dict(type="str", choices=["master", "backup"]),
            advskew=dict(type="int"),
            advbase=dict(type="int"),
            demotion=dict(type="int"),
            key=dict(type="str", no_log=True),
            backend=dict(type="str", choices=["auto", "freebsd", "ucarp"], default="auto"),
            timeout=dict(type="float", default=10),
            ifconfig_path=dict(type="path"),
            sysctl_path=dict(type="path"),
            systemctl_path=dict(type="path"),
            ucarp_env_dir=dict(type="path", default=UCARP_ENV_DIR),
            ucarp_state_dir=dict(type="path", default=UCARP_STATE_DIR),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        want = make_want(params["vhid"], params["interface"], params["state"], params["advskew"],
                         params["advbase"], params["demotion"], params["key"])
        if params["timeout"] < 0:
            raise CarpError(f"timeout must be 0 or more seconds, got {params['timeout']:g}")
        backend = resolve_backend(params["backend"], platform.system())
        check_backend(want, backend)
        if backend == "freebsd":
            paths = Paths(ifconfig=_program(module, params["ifconfig_path"], "ifconfig"),
                          sysctl=_program(module, params["sysctl_path"], "sysctl"))
        else:
            paths = Paths(systemctl=_program(module, params["systemctl_path"], "systemctl"),
                          ucarp_env_dir=params["ucarp_env_dir"], ucarp_state_dir=params["ucarp_state_dir"])
        result = sync(want, backend, _host(module), paths, check_mode=module.check_mode, timeout=params["timeout"])
    except CarpError as exc:
        module.fail_json(msg=str(exc))

    for warning in result.pop("warnings"):
        module.warn(warning)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
