"""What the tests of every kind share: Molecule's checks, tests/ and the benchmarks under bench/.

- ``lab``: the lab's containers from the host (docker, a frozen or crashed
  node, which addresses a node holds, waiting for a boot, a stranger on the
  network, an inventory moved to another network).
- ``load``: the real-client load of the clients/ folder run on a lab client,
  and the mail sink that tells which messages arrived.
- ``playbook``: ansible-playbook with the json callback: rc, failures, changes.
- ``haproxy``: a local HAProxy process and its runtime API.
- ``clients/``: scripts that run inside the lab's containers, standard
  library only (the load, the VIP probes, a stranger's VRRP adverts).

Molecule's checks and tests/ import it through pytest.ini's pythonpath; the
benchmarks through bench/_results.py.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).resolve().parent / "clients"


def client_script(name: str) -> Path:
    """The path of a script of clients/ (``load.py``, ``probe.py``, ...), to copy into a container."""
    path = CLIENTS / name
    if not path.is_file():
        raise FileNotFoundError(f"no client script {name!r} in {CLIENTS}")
    return path
