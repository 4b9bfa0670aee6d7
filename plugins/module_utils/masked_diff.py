# Copyright: floatip.ha contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What ``--diff`` shows of a config file that holds secrets: both sides with
every secret masked.

The roles render such a file on the controller, mask it there
(``floatip.ha.mask_secrets``) and hand only the masked text to the node,
where ``floatip.ha.masked_diff`` masks the live file with the same patterns
and compares. A secret therefore never travels in a module's arguments nor
comes back in its result. A change of a secret alone masks to the same text:
the role's own template task still reports the file changed (without a diff).
"""

from __future__ import annotations

import re

MASK = "********"


class MaskError(ValueError):
    """A mask pattern that cannot mask: the message names the argument."""


def compile_patterns(patterns: object, name: str = "mask_patterns") -> list[re.Pattern[str]]:
    """Each pattern compiled (multi-line), with exactly one group: the part to mask."""
    if not isinstance(patterns, (list, tuple)):
        raise MaskError(f"{name} must be a list of regular expressions, got {patterns!r}")
    compiled = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise MaskError(f"{name}[{index}] must be a regular expression, got {pattern!r}")
        try:
            regex = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise MaskError(f"{name}[{index}] {pattern!r} is not a regular expression: {exc}") from None
        if regex.groups != 1:
            raise MaskError(f"{name}[{index}] {pattern!r} must have exactly one group, the part to mask; it has {regex.groups}")
        compiled.append(regex)
    return compiled


def _masked(match: re.Match[str]) -> str:
    start, end = match.span(1)
    if start < 0 or start == end:
        return match.group(0)
    offset = match.start(0)
    return match.group(0)[: start - offset] + MASK + match.group(0)[end - offset:]


def mask(text: str, patterns: object, secrets: object = (), name: str = "mask_patterns") -> str:
    """``text`` with every literal secret of ``secrets`` and every first group
    of ``patterns`` (the argument ``name``, for the messages) replaced by MASK."""
    if not isinstance(text, str):
        raise MaskError(f"the text to mask must be a string, got {type(text).__name__}")
    if not isinstance(secrets, (list, tuple)):
        raise MaskError("secrets must be a list of strings")
    compiled = compile_patterns(patterns, name)
    # The longest first, so that a secret that contains another is masked whole.
    for secret in sorted((str(each) for each in secrets if each not in (None, "")), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for regex in compiled:
        text = regex.sub(_masked, text)
    return text


def masked_diff(path: str, live: str | None, wanted: str, patterns: object) -> dict:
    """``changed`` (would the masked file differ) and the ``diff`` of the live
    file (None: there is none), masked with ``patterns``, against ``wanted``,
    which is masked already."""
    compile_patterns(patterns)
    before = "" if live is None else mask(live, patterns)
    return {
        "changed": live is None or before != wanted,
        "diff": {
            "before": before,
            "after": wanted,
            "before_header": f"{path} (absent)" if live is None else f"{path} (secrets masked)",
            "after_header": f"{path} (secrets masked)",
        },
    }
