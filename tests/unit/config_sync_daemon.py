"""config sync's node program, imported by path for its tests.

It is a program that the config_sync role copies to the nodes and the
repository host, not a module of the collection: the tests load the very
file the role installs, as ``cs``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PROGRAM = Path(__file__).resolve().parents[2] / "roles" / "config_sync" / "files" / "config_sync.py"

_spec = importlib.util.spec_from_file_location("floatip_config_sync", PROGRAM)
cs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cs
_spec.loader.exec_module(cs)
