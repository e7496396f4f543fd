"""Byte sizes: ``256Mi`` and ``1Gi`` (binary), ``512M`` and ``1G`` (decimal), or a byte count.

Lower-case ``m``/``g`` are refused: Docker reads ``512m`` as mebibytes while
Kubernetes reads ``512m`` as milli-bytes, so the spelling is ambiguous. The
Compose importer has its own reader (``parse_docker_bytes``) because Compose
files follow Docker's meaning.
"""

from __future__ import annotations

import json
import re

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
DECIMAL = {"K": 10**3, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|k|M|G|T)?$"
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|k|M|G|T)?$")
_DOCKER = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
_DOCKER_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_size(text: str) -> int:
    """Bytes in ``text``; raises ``ValueError`` with a message meant for a person."""
    match = _SIZE.fullmatch(text)
    if match is None:
        lowered = re.fullmatch(r"([0-9.]+)([mg])b?", text)
        if lowered:
            number, unit = lowered.groups()
            raise ValueError(
                f"{json.dumps(text)} is ambiguous: write {number}{unit.upper()}i "
                f"(binary) or {number}{unit.upper()} (decimal)"
            )
        raise ValueError(f'expected a size like "256Mi", "1Gi" or "512M", got {json.dumps(text)}')
    number, unit = match.groups()
    factor = BINARY.get(unit or "", DECIMAL.get(unit or "", 1))
    return int(float(number) * factor)


def parse_docker_bytes(text: str) -> int:
    """Docker's reading of a size (``512m`` = 512 MiB), as found in Compose files."""
    match = _DOCKER.match(text.strip())
    if match is None:
        raise ValueError(f'expected a size like "512m" or "1g", got {json.dumps(text)}')
    number, unit = match.groups()
    return int(float(number) * _DOCKER_UNITS[(unit or "b")[0].lower()])


def format_size(size: int) -> str:
    for unit in ("Gi", "Mi", "Ki"):
        if size >= BINARY[unit] and size % BINARY[unit] == 0:
            return f"{size // BINARY[unit]}{unit}"
    return str(size)
