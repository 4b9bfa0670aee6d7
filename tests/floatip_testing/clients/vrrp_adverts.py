"""Runs on a stranger: VRRP adverts of the highest priority (255) for one VIP,
as a host on the cluster network that no inventory names could send them.

    python3 vrrp_adverts.py VERSION VRID VIP SECONDS [PASSWORD [TARGET ...]]

Sends adverts every 50 ms for SECONDS, then prints how many it sent:
VRRPv2 or VRRPv3, TTL 255, the VIP in the address list, VRRPv2's simple
PASSWORD when one is given ('' for none), to 224.0.0.18 (multicast) or,
when TARGETs are given, to each of them (as a node in unicast mode sends to
its peers). Apart from its source address each advert is one that a
keepalived of the group accepts. Needs NET_RAW and Debian's python3-scapy.
"""

from __future__ import annotations

import sys
import time

from scapy.all import IP, conf
from scapy.layers.vrrp import VRRP, VRRPv3

INTERVAL = 0.05
MULTICAST = "224.0.0.18"
# RFC 3768: auth type 1 is the simple password, 8 bytes padded with zeros.
AUTH_NONE, AUTH_SIMPLE = 0, 1


def advert(version: int, vrid: int, vip: str, password: str):
    if version == 3:
        # VRRPv3 counts its interval in centiseconds and has no password.
        return VRRPv3(version=3, vrid=vrid, priority=255, ipcount=1, adv=5, addrlist=[vip])
    key = password.encode().ljust(8, b"\0")[:8]
    return VRRP(version=2, type=1, vrid=vrid, priority=255, ipcount=1, adv=1, addrlist=[vip],
                authtype=AUTH_SIMPLE if password else AUTH_NONE,
                auth1=int.from_bytes(key[:4], "big"), auth2=int.from_bytes(key[4:], "big"))


def main() -> int:
    version, vrid, vip, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    password = sys.argv[5] if len(sys.argv) > 5 else ""
    targets = sys.argv[6:] or [MULTICAST]
    packets = [IP(dst=target, ttl=255) / advert(version, vrid, vip, password) for target in targets]
    sock = conf.L3socket()
    sent = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            for packet in packets:
                sock.send(packet)
                sent += 1
            time.sleep(INTERVAL)
    finally:
        sock.close()
    print(sent)
    return 0 if sent else 1


if __name__ == "__main__":
    sys.exit(main())
