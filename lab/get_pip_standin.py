"""Stand-in for the get-pip script that ansible-test downloads.

ansible-test sanity --venv bootstraps pip in each of its virtual environments
with a script it fetches from a host that is not reachable here. This script
does the same job from what is at hand: pip from the interpreter's own
ensurepip, then the packages ansible-test asked for, from PyPI.
It is called as ``python get_pip.py [pip install options] [packages]``.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# Options of the real get-pip script that pip install does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    ensurepip.bootstrap(upgrade=True)
    # ensurepip hides the machine's pip configuration (index, certificate
    # bundle) from itself through these; the real install needs it back.
    os.environ.pop("PIP_CONFIG_FILE", None)
    os.environ.pop("ENSUREPIP_OPTIONS", None)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
