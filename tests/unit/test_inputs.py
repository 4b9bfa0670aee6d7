"""The checks every input goes through: whole strings, strict networks, secrets never shown."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.cluster_model import narrow_networks
from ansible_collections.floatip.ha.plugins.module_utils.inputs import (
    InputError,
    boolean,
    hostname,
    integer,
    mapping,
    number,
    path,
    secret,
    source_networks,
    url_path,
)


def test_networks_are_normalised_and_keep_their_order() -> None:
    assert source_networks(["198.51.100.7", "192.0.2.0/24", "10.0.0.0/8", "2001::/16", "::1"], "x") == [
        "198.51.100.7/32", "192.0.2.0/24", "10.0.0.0/8", "2001::/16", "::1/128"]
    assert source_networks([], "x") == []
    # An IPv4-mapped range as narrow as a /8 of IPv4 is a client network too.
    assert source_networks(["::ffff:10.0.0.0/104"], "x") == ["::ffff:a00:0/104"]


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        (["0.0.0.0/0"], "trusted[0] '0.0.0.0/0' matches every address"),
        (["::/0"], "trusted[0] '::/0' matches every address"),
        # Two halves are everything: each is refused as too wide.
        (["0.0.0.0/1", "128.0.0.0/1"], "trusted[0] '0.0.0.0/1' is wider than /8"),
        (["192.0.2.0/24", "10.0.0.0/7"], "trusted[1] '10.0.0.0/7' is wider than /8"),
        (["2000::/15"], "trusted[0] '2000::/15' is wider than /16"),
        (["10.0.0.1/8"], "trusted[0] '10.0.0.1/8' has host bits set: write the network as 10.0.0.0/8 or the one address as 10.0.0.1"),
        (["2001:db8::1/64"], "trusted[0] '2001:db8::1/64' has host bits set"),
        (["::ffff:0.0.0.0/96"], "trusted[0] '::ffff:0.0.0.0/96' holds IPv4 addresses as IPv6 ones"),
        (["::/16"], "trusted[0] '::/16' holds IPv4 addresses as IPv6 ones"),
        (["64:ff9b::/100"], "trusted[0] '64:ff9b::/100' holds IPv4 addresses as IPv6 ones"),
        ([f"{first}.0.0.0/8" for first in range(256)], "trusted together match every IPv4 address"),
        ([None], "trusted[0] must be an address or a network in CIDR form, as a string, got None"),
        ([167772160], "trusted[0] must be an address or a network in CIDR form, as a string, got 167772160"),
        ([["10.0.0.0/8"]], "trusted[0] must be an address or a network in CIDR form, as a string"),
        (["10.0.0.0/8\n"], "trusted[0] must be an address or a network in CIDR form, as a string; it holds a control character"),
        (["10.0.0.0/33"], "trusted[0] must be an address or a network in CIDR form such as 192.0.2.0/24, got '10.0.0.0/33'"),
        ([" 10.0.0.0/8"], "trusted[0] must be an address or a network in CIDR form"),
        ("10.0.0.0/8", "trusted must be a list of addresses or networks in CIDR form, each at most /8 wide (IPv4) or /16 (IPv6)"),
        ({"10.0.0.0/8": True}, "trusted must be a list of addresses or networks"),
    ],
)
def test_networks_too_wide_with_host_bits_or_not_strings_are_refused(networks: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        source_networks(networks, "trusted")
    assert message in str(caught.value)
    with pytest.raises(AnsibleFilterError, match=re.escape(f"floatip.ha narrow_networks: {message}")):
        narrow_networks(networks, "trusted")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("etc/ssl/site.pem", "cert must be an absolute path"),
        ("/etc/ssl/site.pem\n", "cert must be an absolute path of letters, digits and . _ - / @ % + = : , ~ (no spaces, quotes, $ or "
                                "control characters); it holds a control character"),
        ("/etc/ssl/site.pem\nuser evil", "it holds a control character"),
        ("/etc/ssl/my site.pem", "cert must be an absolute path"),
        ('/etc/ssl/"site".pem', "cert must be an absolute path"),
        ("/etc/ssl/$site.pem", "cert must be an absolute path"),
        ("/etc/ssl/site.pem;", "cert must be an absolute path"),
        ("/etc/ssl/site\x00.pem", "it holds a control character"),
        (None, "cert must be an absolute path"),
    ],
)
def test_a_path_is_absolute_and_one_word_for_every_config(value: object, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        path(value, "cert")


def test_paths_that_every_config_takes_pass() -> None:
    for each in ("/", "/etc/ssl/private/site-1.pem", "/srv/www/example.org", "/run/haproxy/admin.sock", "/a/b@c%d+e=f:g,h~i"):
        assert path(each, "cert") == each


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("check.txt", "check_path must be a URL path"),
        ("/check.txt\n", "check_path must be a URL path: / then letters"),
        ("/check.txt;", "check_path must be a URL path"),
        ("/check#x", "check_path must be a URL path"),
        ("/check'x", "check_path must be a URL path"),
        ("/a b", "check_path must be a URL path"),
    ],
)
def test_a_url_path_has_no_character_haproxy_or_nginx_would_read_otherwise(value: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        url_path(value, "check_path")


@pytest.mark.parametrize(
    "value", ["mail.example.org\n", "mail_1.example.org", "-mail.example.org", "mail..example.org", "mail.example.org.", "a" * 64,
              "m" + ".m" * 127, "", 5],
)
def test_a_host_name_is_rfc_1123(value: object) -> None:
    with pytest.raises(InputError, match="myhostname must be a host name"):
        hostname(value, "myhostname")


def test_host_names_pass() -> None:
    for each in ("localhost", "pf-node1", "mail.example.org", "a" * 63 + ".example.org", "1.example.org"):
        assert hostname(each, "myhostname") == each


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: integer(True, "port", 1, 65535), "port must be a whole number from 1 to 65535, got True"),
        (lambda: integer("12a", "port", 1, 65535), "port must be a whole number from 1 to 65535, got '12a'"),
        (lambda: integer(0, "port", 1, 65535), "port must be a whole number from 1 to 65535, got 0"),
        (lambda: integer(1.5, "port", 1, 65535), "port must be a whole number"),
        (lambda: number(float("nan"), "timeout", 0, 60, above=True), "timeout must be a number above 0 and at most 60, got nan"),
        (lambda: number(float("inf"), "timeout", 0, 60, above=True), "timeout must be a number above 0"),
        (lambda: number(0, "timeout", 0, 60, above=True), "timeout must be a number above 0"),
        (lambda: boolean("false", "maintenance"), "maintenance must be true or false, got 'false'"),
        (lambda: boolean(0, "maintenance"), "maintenance must be true or false, got 0"),
        (lambda: mapping({"name": "x", "port": 1}, "vhost", ("name", "root"), ("name", "root")), "vhost has unknown keys port"),
        (lambda: mapping({"name": "x"}, "vhost", ("name", "root"), ("name", "root")), "vhost lacks root"),
    ],
)
def test_numbers_booleans_and_mappings_name_the_variable(call, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        call()


def test_numbers_may_come_as_digits_from_the_command_line() -> None:
    assert integer("8404", "port", 1, 65535) == 8404
    assert number("0.5", "advert", 0.01, 40.95) == 0.5


@pytest.mark.parametrize(
    ("value", "marker"),
    [("s3cr3t", "s3cr3t"), ("a long s3cr3t with spaces", "s3cr3t"), ("long-s3cr3t\nnewline", "s3cr3t"),
     (12345678901234, "12345678901234"), (["s3cr3t-in-a-list"], "s3cr3t")],
)
def test_a_secret_is_never_shown(value: object, marker: str) -> None:
    with pytest.raises(InputError) as caught:
        secret(value, "key", "a word of at least 12 characters", re.compile(r"[!-~]+"), 12)
    assert str(caught.value).startswith("key must be a word of at least 12 characters")
    assert marker not in str(caught.value)
