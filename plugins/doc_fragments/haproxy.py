# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The runtime API's address, shared by the modules that talk to HAProxy."""

    DOCUMENTATION = r"""
options:
  socket:
    description:
      - HAProxy's runtime API. A unix socket path (for example V(/run/haproxy/admin.sock)), or a TCP address
        V(tcp://host:port) or V(host:port) (IPv6 addresses in brackets).
      - All commands of a run go over one connection to it.
    type: str
    required: true
attributes:
  platform:
    description: The targets it runs on.
    support: full
    platforms: posix
"""
