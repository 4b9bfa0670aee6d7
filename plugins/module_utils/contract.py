# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""The node-side contract: where the collection keeps things on a node.

Roles read these through the cluster model (``cluster_model.paths``),
modules import them, and the config sync program gets the ones it needs in
its configuration file: each path is written here and nowhere else.
"""

from __future__ import annotations

ETC = "/etc/floatip"
LIB = "/usr/local/lib/floatip"

PATHS = {
    # The collection's own configuration and scripts.
    "etc": ETC,
    "lib": LIB,
    # This node's part of the VIP layout, written by the VIP layer and read
    # by vip_info (format: layout_record / vip_info.parse_layout).
    "layout": f"{ETC}/layout.json",
    # Each VIP's state as the VIP layer last reported it.
    "state": "/run/floatip",
    # Hooks other roles install, run on every VIP state change.
    "notify": f"{ETC}/notify.d",
    # Markers of the files config sync serves from its repository.
    "synced": f"{ETC}/synced",
    # Maintenance standby of keepalived (a number) and of ucarp (a file).
    "keepalived_standby": "/etc/keepalived/floatip-standby",
    "ucarp": f"{ETC}/ucarp",
    "ucarp_standby": f"{ETC}/ucarp/standby",
    # The config sync program on a node, its configuration and its keys.
    "config_sync": f"{LIB}/config_sync.py",
    "config_sync_config": f"{ETC}/config-sync.json",
    "config_sync_keys": f"{ETC}/config-sync",
    # The cluster's firewall: its table and the roles' parts.
    "firewall": f"{ETC}/firewall",
    # HAProxy's runtime API (level admin), unless haproxy_runtime_api_socket says.
    "haproxy_socket": "/run/haproxy/admin.sock",
}


def synced_marker(target: str) -> str:
    """The marker that says config sync serves ``target``'s file."""
    return f"{PATHS['synced']}/{target}"
