"""The node-side contract (plugins/module_utils/contract.py) is the one home of every node path.

Module documentation and the config sync program (a file copied onto the
nodes, which cannot import the collection) repeat some of its paths; these
tests hold them to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from ansible_collections.floatip.ha.plugins.module_utils import carp, vip_info
from ansible_collections.floatip.ha.plugins.module_utils.contract import PATHS

ROOT = Path(__file__).resolve().parents[2]


def module_doc_defaults(name: str) -> dict:
    tree = ast.parse((ROOT / "plugins" / "modules" / f"{name}.py").read_text())
    doc = next(node.value.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION")
    return {key: option.get("default") for key, option in yaml.safe_load(doc)["options"].items()}


def test_vip_info_reads_the_contracts_files() -> None:
    assert (vip_info.LAYOUT_PATH, vip_info.STATE_DIR) == (PATHS["layout"], PATHS["state"])
    assert (vip_info.KEEPALIVED_STANDBY, vip_info.UCARP_STANDBY) == (PATHS["keepalived_standby"], PATHS["ucarp_standby"])
    documented = module_doc_defaults("vip_info")
    assert documented["layout_path"] == PATHS["layout"]
    assert documented["state_dir"] == PATHS["state"]
    assert documented["keepalived_standby_file"] == PATHS["keepalived_standby"]
    assert documented["ucarp_standby_file"] == PATHS["ucarp_standby"]


def test_carp_state_reads_the_contracts_ucarp_files() -> None:
    assert carp.UCARP_ENV_DIR == PATHS["ucarp"]
    assert carp.UCARP_STATE_DIR == f"{PATHS['state']}/ucarp"
    assert module_doc_defaults("carp_state")["ucarp_env_dir"] == PATHS["ucarp"]


def test_the_config_sync_program_finds_its_configuration_where_the_role_writes_it() -> None:
    source = (ROOT / "roles" / "config_sync" / "files" / "config_sync.py").read_text()
    assert f'default="{PATHS["config_sync_config"]}"' in source


def test_every_path_is_under_a_directory_the_collection_owns() -> None:
    owned = ("/etc/floatip", "/usr/local/lib/floatip", "/run/floatip", "/run/haproxy/", "/etc/keepalived/floatip-")
    assert all(path.startswith(owned) for path in PATHS.values()), PATHS
