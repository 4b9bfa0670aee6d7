# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to the floatip.ha collection: the interface may change at any time.
"""Config sync, the controller's part: the files that seed the central repository.

The program that the nodes and the repository host run (pull, check,
apply, roll back; serve and wait) is a file of the config_sync role,
roles/config_sync/files/config_sync.py. The layout below is its: a target's
shared files under ``<target>/``, a node's own under
``<target>/nodes/<node>/``.
"""

from __future__ import annotations


class SyncError(Exception):
    """What stops the seed from being laid out; its message says what to look at."""


def split_seed(rendered: dict, basenames: dict) -> dict:
    """Repository files that reproduce what every node serves now.

    ``rendered`` is ``{node: {target: text}}``, ``basenames`` ``{target:
    file name}``. A target whose text is the same on every node becomes one
    shared file; otherwise each node gets its own file under
    ``<target>/nodes/<node>/``."""
    files = {}
    targets = sorted({target for texts in rendered.values() for target in texts})
    for target in targets:
        texts = {node: texts[target] for node, texts in rendered.items() if target in texts}
        if len(texts) != len(rendered):
            missing = sorted(set(rendered) - set(texts))
            raise SyncError(f"{target}: no configuration read from {', '.join(missing)}")
        name = basenames[target]
        if len(set(texts.values())) == 1:
            files[f"{target}/{name}"] = next(iter(texts.values()))
        else:
            for node, text in texts.items():
                files[f"{target}/nodes/{node}/{name}"] = text
    return files
