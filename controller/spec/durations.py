"""Durations as people write them in manifests: ``500ms``, ``10s``, ``2m``, ``1h30m``, ``7d``.

A bare number is refused: ``10`` could mean milliseconds or seconds, and a
manifest should not make the reader guess.
"""

from __future__ import annotations

import json
import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+)$"
_WHOLE = re.compile(PATTERN)
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` with a message meant for a person."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f'expected a duration like "10s", got {json.dumps(text)}')
    return sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 0.5 -> ``500ms``, 90 -> ``90s``, 7200 -> ``2h``."""
    if seconds == 0:
        return "0"
    for unit in ("d", "h", "m", "s"):
        count = seconds / UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    milliseconds = seconds * 1000
    if milliseconds == int(milliseconds):
        return f"{int(milliseconds)}ms"
    return f"{seconds:g}s"
