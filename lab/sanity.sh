#!/usr/bin/env bash
# Runs `ansible-test sanity` on the collection as it would be installed:
# built with ansible-galaxy, installed into a temporary tree (ansible-test
# skips everything below a hidden folder such as .build), each test in its
# own virtualenv (--venv), with the pip bootstrap seeded from ensurepip.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/floatip-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work/dist" "$top" >/dev/null
ansible-galaxy collection install --force -p "$work" "$work"/dist/floatip-ha-*.tar.gz >/dev/null 2>&1

# The pip version ansible-test bootstraps, and where it caches the script.
at=$(python3 -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(grep -oE "pip='[0-9.]+'" "$at/_internal/python_requirements.py" | head -n 1 | cut -d"'" -f2)
[ -n "$pip_version" ] || { echo "floatip: cannot tell which pip ansible-test bootstraps" >&2; exit 1; }
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cp "$top/lab/get_pip_standin.py" "$cache"

python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cd "$work/ansible_collections/floatip/ha"
ansible-test sanity --venv --python "$python" --color no "$@"
