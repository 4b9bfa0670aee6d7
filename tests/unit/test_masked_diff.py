"""The masked diff of a config that holds secrets: module_utils/masked_diff.py,
the mask_secrets filter and the masked_diff module end to end, on the lines
our templates write (haproxy.cfg's password hashes, keepalived's auth_pass)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floatip.ha.plugins.filter.mask_secrets import mask_secrets
from ansible_collections.floatip.ha.plugins.module_utils.masked_diff import MASK, MaskError, mask, masked_diff

COLLECTIONS = Path(__file__).resolve().parents[2] / ".build" / "collections"
MODULE = "ansible_collections.floatip.ha.plugins.modules.masked_diff"
HAPROXY = [r"\bpassword (\S+)"]
KEEPALIVED = [r"^\s*auth_pass (\S+)"]
HASH = "$6$c3RhdHM6b3Bz$Zm9vYmFyYmF6cXV4"

HAPROXY_CFG = f"""userlist floatip_stats
    user ops password {HASH} groups admin
frontend web
    bind 172.30.80.101:80
"""
KEEPALIVED_CONF = """vrrp_instance vip_1 {
    authentication {
        auth_type PASS
        auth_pass Xy7pQ2ab
    }
}
"""


def test_a_password_hash_and_an_auth_pass_are_masked_and_nothing_else() -> None:
    masked = mask(HAPROXY_CFG, HAPROXY)
    assert HASH not in masked
    assert f"user ops password {MASK} groups admin" in masked
    assert "bind 172.30.80.101:80" in masked
    masked = mask(KEEPALIVED_CONF, KEEPALIVED, ["Xy7pQ2ab"])
    assert "Xy7pQ2ab" not in masked and f"auth_pass {MASK}" in masked and "auth_type PASS" in masked


def test_a_literal_secret_is_masked_wherever_it_is_the_longest_first() -> None:
    assert mask("a=s3cret b=s3cret-and-more", [], ["s3cret", "s3cret-and-more"]) == f"a={MASK} b={MASK}"
    assert mask("nothing here", [], [None, ""]) == "nothing here"


@pytest.mark.parametrize(("patterns", "message"), [
    ("password (\\S+)", "mask_patterns must be a list"),
    (["password (\\S+"], r"mask_patterns\[0\] 'password \(\\\\S\+' is not a regular expression"),
    ([r"password \S+"], r"mask_patterns\[0\] .* must have exactly one group, the part to mask; it has 0"),
    ([r"(user) password (\S+)"], r"mask_patterns\[0\] .* it has 2"),
    ([""], r"mask_patterns\[0\] must be a regular expression"),
])
def test_a_pattern_that_cannot_mask_is_named(patterns: object, message: str) -> None:
    with pytest.raises(MaskError, match=message):
        mask("text", patterns)
    with pytest.raises(AnsibleFilterError, match="floatip.ha mask_secrets: " + message.replace("mask_patterns", "patterns", 1)):
        mask_secrets("text", patterns)


def test_the_diff_shows_a_change_beside_a_secret_but_never_the_secret() -> None:
    wanted = mask(HAPROXY_CFG.replace(":80", ":8080"), HAPROXY)
    result = masked_diff("/etc/haproxy/haproxy.cfg", HAPROXY_CFG, wanted, HAPROXY)
    assert result["changed"] is True
    assert HASH not in json.dumps(result)
    assert "172.30.80.101:80\n" in result["diff"]["before"] and "172.30.80.101:8080\n" in result["diff"]["after"]


def test_a_changed_secret_alone_masks_to_no_change() -> None:
    # The role's template task reports that change (without a diff).
    wanted = mask(HAPROXY_CFG.replace(HASH, "$6$other$hash"), HAPROXY)
    assert masked_diff("/etc/haproxy/haproxy.cfg", HAPROXY_CFG, wanted, HAPROXY)["changed"] is False


def test_a_missing_file_is_shown_empty_and_changed() -> None:
    result = masked_diff("/etc/keepalived/keepalived.conf", None, mask(KEEPALIVED_CONF, KEEPALIVED), KEEPALIVED)
    assert result["changed"] is True
    assert result["diff"]["before"] == "" and result["diff"]["before_header"].endswith("(absent)")


def _module(args: dict, check: bool = False) -> dict:
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=True)}
    proc = subprocess.run([sys.executable, "-m", MODULE], input=json.dumps(payload), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)), timeout=120, check=False)
    result = json.loads(proc.stdout)
    assert (proc.returncode != 0) == bool(result.get("failed")), result
    return result


@pytest.mark.parametrize("check", [False, True])
def test_the_module_diffs_the_live_file_masked_and_never_writes_it(tmp_path: Path, check: bool) -> None:
    live = tmp_path / "keepalived.conf"
    live.write_text(KEEPALIVED_CONF)
    wanted = mask(KEEPALIVED_CONF.replace("auth_type PASS", "auth_type AH"), KEEPALIVED, ["Xy7pQ2ab"])
    result = _module({"path": str(live), "content": wanted, "mask_patterns": KEEPALIVED}, check=check)
    assert result["changed"] is True
    assert "auth_type PASS" in result["diff"]["before"] and "auth_type AH" in result["diff"]["after"]
    assert "Xy7pQ2ab" not in json.dumps(result)
    assert live.read_text() == KEEPALIVED_CONF
    same = _module({"path": str(live), "content": mask(KEEPALIVED_CONF, KEEPALIVED), "mask_patterns": KEEPALIVED})
    assert same["changed"] is False


def test_the_module_names_a_bad_pattern(tmp_path: Path) -> None:
    result = _module({"path": str(tmp_path / "absent.conf"), "content": "", "mask_patterns": ["no group"]})
    assert result["failed"] and "mask_patterns[0] 'no group' must have exactly one group" in result["msg"]
