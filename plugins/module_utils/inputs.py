# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""Checks of single inputs: the pieces every check of the collection is made of.

Every string that reaches a daemon's configuration is matched whole
(``re.fullmatch``; ``^...$`` would let a trailing newline through), so no
input can add a line, a quote or a comment to a config file. Each function
returns the checked value or raises ``InputError`` with a message that names
the variable as the inventory spells it (``haproxy_stats_users[1].password``)
and says what is allowed. A secret is never repeated in a message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence


class InputError(ValueError):
    """An input is not what the collection can use; the message names it."""


# C0 and C1 control characters, DEL, and Unicode's line and paragraph
# separators: each may end a line in some reader.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PATH = re.compile(r"/[A-Za-z0-9._/@%+=:,~-]*")
PATH_ALLOWED = "an absolute path of letters, digits and . _ - / @ % + = : , ~ (no spaces, quotes, $ or control characters)"
_URL_PATH = re.compile(r"/[A-Za-z0-9._/~!*+,=:@%-]*")
URL_PATH_ALLOWED = "a URL path: / then letters, digits and . _ - / ~ ! * + , = : @ % (no spaces, quotes, ; # $ or control characters)"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
HOSTNAME_ALLOWED = "a host name such as mail.example.org (labels of letters, digits and -, at most 253 characters)"
_DIGITS = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")

# The widest network a list of clients may name.
WIDEST_PREFIX = {4: 8, 6: 16}
NETWORKS_ALLOWED = "a list of addresses or networks in CIDR form, each at most /8 wide (IPv4) or /16 (IPv6)"
# IPv6 ranges that hold every IPv4 address in their last 32 bits
# (IPv4-mapped, IPv4-compatible, NAT64): as wide as all of IPv4.
_EMBEDDED_IPV4 = tuple(ipaddress.ip_network(net) for net in ("::ffff:0:0/96", "::/96", "64:ff9b::/96"))


def _got(value: object, secret: bool) -> str:
    return "" if secret else f", got {value!r}"


def text(value: object, what: str, allowed: str, pattern: re.Pattern[str] | None = None, *, secret: bool = False) -> str:
    """A string without control characters, matched whole by ``pattern``.

    ``allowed`` says what the variable may hold; with ``secret`` the value
    is never shown."""
    if not isinstance(value, str):
        kind = type(value).__name__ if secret else repr(value)
        raise InputError(f"{what} must be {allowed}, got {kind}")
    if _CONTROL.search(value):
        raise InputError(f"{what} must be {allowed}; it holds a control character (a newline, tab or the like){_got(value, secret)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise InputError(f"{what} must be {allowed}{_got(value, secret)}")
    return value


def secret(value: object, what: str, allowed: str, pattern: re.Pattern[str], min_length: int, max_length: int | None = None) -> str:
    """A secret: checked like ``text`` and for its length, never shown."""
    checked = text(value, what, allowed, pattern, secret=True)
    if len(checked) < min_length or (max_length is not None and len(checked) > max_length):
        raise InputError(f"{what} must be {allowed}")
    return checked


def path(value: object, what: str) -> str:
    """An absolute path that every config syntax takes unquoted."""
    return text(value, what, PATH_ALLOWED, _PATH)


def url_path(value: object, what: str) -> str:
    """A URL path that HAProxy and nginx take unquoted."""
    return text(value, what, URL_PATH_ALLOWED, _URL_PATH)


def hostname(value: object, what: str) -> str:
    """A host name (RFC 1123), fully qualified or not."""
    name = text(value, what, HOSTNAME_ALLOWED, _HOSTNAME)
    if len(name) > 253:
        raise InputError(f"{what} must be {HOSTNAME_ALLOWED}, got {len(name)} characters")
    return name


def integer(value: object, what: str, low: int, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high``, given as a number or as digits."""
    allowed = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise InputError(f"{what} must be {allowed}, got {value!r}")
    if number < low or (high is not None and number > high):
        raise InputError(f"{what} must be {allowed}, got {value!r}")
    return number


def port(value: object, what: str) -> int:
    return integer(value, what, 1, 65535)


def number(value: object, what: str, low: float, high: float, *, above: bool = False) -> float:
    """A number from ``low`` (or above it) to ``high``, given as a number or as digits."""
    allowed = f"a number {'above' if above else 'from'} {low} {'and at most' if above else 'to'} {high}"
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        checked: float = float(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        checked = value
    else:
        raise InputError(f"{what} must be {allowed}, got {value!r}")
    # NaN fails both comparisons, infinity the second.
    if not ((checked > low if above else checked >= low) and checked <= high):
        raise InputError(f"{what} must be {allowed}, got {value!r}")
    return checked


def boolean(value: object, what: str) -> bool:
    """true or false, not a string that merely looks like one (the string "false" is true in a template)."""
    if not isinstance(value, bool):
        raise InputError(f"{what} must be true or false, got {value!r}")
    return value


def choice(value: object, allowed: Sequence, what: str) -> object:
    if isinstance(value, (list, dict)) or value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(str(each) for each in allowed)}, got {value!r}")
    return value


def items(value: object, what: str, kind: str, *, secret: bool = False) -> list:
    """A list (a string or a mapping is not one); its items are checked by the caller."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InputError(f"{what} must be a list of {kind}{_got(value, secret)}")
    return list(value)


def mapping(value: object, what: str, keys: Sequence[str], required: Sequence[str] = (), *, secret: bool = False) -> Mapping:
    """A mapping with only ``keys``, among them every key of ``required``."""
    shape = f"a mapping with {', '.join(required) or 'no required key'}" + (
        f" and optionally {', '.join(key for key in keys if key not in required)}" if set(keys) - set(required) else "")
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must be {shape}{_got(value, secret)}")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise InputError(f"{what} has unknown keys {', '.join(unknown)}; it must be {shape}")
    missing = [key for key in required if key not in value]
    if missing:
        raise InputError(f"{what} lacks {', '.join(missing)}; it must be {shape}")
    return value


def address(value: object, what: str) -> str:
    """An IP address, as a string."""
    text(value, what, "an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InputError(f"{what} must be an IP address, got {value!r}") from None


def _embeds_ipv4(net: ipaddress.IPv6Network) -> int | None:
    """The IPv4 prefix length that ``net`` matches through an embedded-IPv4 range, or None."""
    for embedded in _EMBEDDED_IPV4:
        if net.overlaps(embedded):
            return max(net.prefixlen, embedded.prefixlen) - embedded.prefixlen
    return None


def _source_network(item: object, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    item = text(item, what, "an address or a network in CIDR form, as a string")
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise InputError(f"{what} must be an address or a network in CIDR form such as 192.0.2.0/24, got {item!r}") from None
    try:
        ipaddress.ip_network(item, strict=True)
    except ValueError:
        one = item.split("/", 1)[0]
        raise InputError(f"{what} {item!r} has host bits set: write the network as {net} or the one address as {one}") from None
    widest = WIDEST_PREFIX[net.version]
    if net.prefixlen == 0:
        raise InputError(f"{what} {item!r} matches every address; name the clients, in networks at most /{widest} wide")
    if net.prefixlen < widest:
        raise InputError(f"{what} {item!r} is wider than /{widest}; name the clients, in networks at most /{widest} wide")
    if net.version == 6:
        ipv4_prefix = _embeds_ipv4(net)
        if ipv4_prefix is not None and ipv4_prefix < WIDEST_PREFIX[4]:
            raise InputError(f"{what} {item!r} holds IPv4 addresses as IPv6 ones, more than a /{WIDEST_PREFIX[4]} of them; "
                             "name the IPv4 clients as IPv4 networks")
    return net


def source_networks(values: object, what: str) -> list[str]:
    """Addresses or CIDR networks that name some clients (to trust, relay for
    or route), as networks.

    Each must be a string; an address, or a network without host bits
    (10.0.0.1/8 is a mistake, not 10.0.0.0/8); no wider than /8 (IPv4) or /16
    (IPv6), nor an IPv6 range holding wider IPv4 networks. Together they may
    not match every address either."""
    networks = []
    for index, item in enumerate(items(values, what, "addresses or networks in CIDR form, each at most /8 wide (IPv4) or /16 (IPv6)")):
        networks.append(_source_network(item, f"{what}[{index}]"))
    for version, bits in ((4, 32), (6, 128)):
        covered = sum(net.num_addresses for net in ipaddress.collapse_addresses(n for n in networks if n.version == version))
        if covered == 2**bits:
            raise InputError(f"{what} together match every IPv{version} address; name the clients")
    return [str(net) for net in networks]
