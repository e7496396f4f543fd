"""Linux capabilities a service may add back, and how their names are written.

Every container starts with all capabilities dropped (``cap_drop: ALL``); a
service may ask for a few back with ``capabilities:``, only from
``ALLOWED_CAPABILITIES``. Names are read the way Docker reads them: with or
without ``CAP_``, in any case, and kept as the bare upper-case name.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from controller.spec.fields import fail, show

# What a conventional image needs when it starts as root and then steps down: take
# ownership of and write its own files (CHOWN, DAC_OVERRIDE, FOWNER, FSETID), switch to
# its unprivileged user (SETUID, SETGID), signal its workers (KILL), and listen on a port
# below 1024 (NET_BIND_SERVICE). All are in Docker's default set, and none reaches past
# the container: no mounts, devices, kernel settings, tracing or raw network access
# (SYS_ADMIN, NET_ADMIN, SYS_PTRACE...). SETPCAP is left out because it lets a process
# hand capabilities around; AUDIT_WRITE because it writes to the host's audit log.
ALLOWED_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
)
KNOWN_NAMES = frozenset(
    {
        *ALLOWED_CAPABILITIES,
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "DAC_READ_SEARCH",
        "IPC_LOCK",
        "IPC_OWNER",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETPCAP",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
        "ALL",
    }
)
"""Names Docker knows (``ALL`` included): refused as not allowed, rather than as typos."""
ALLOWED_TEXT = ", ".join(ALLOWED_CAPABILITIES)


def capability_name(value: str) -> str:
    """``cap_chown`` -> ``CHOWN``."""
    return value.upper().removeprefix("CAP_")


def is_allowed(value: Any) -> bool:
    return isinstance(value, str) and capability_name(value) in ALLOWED_CAPABILITIES


def suggestion(value: Any) -> str:
    """``; did you mean "CHOWN"?`` for a misspelt allowed name, else nothing."""
    if not isinstance(value, str):
        return ""
    name = capability_name(value)
    if name in KNOWN_NAMES:
        return ""
    close = difflib.get_close_matches(name, ALLOWED_CAPABILITIES, n=1, cutoff=0.6)
    return f"; did you mean {show(close[0])}?" if close else ""


def _capability(value: Any) -> str:
    if not isinstance(value, str):
        fail("capability", f'expected a capability name like "CHOWN", got {show(value)}')
    name = capability_name(value)
    if name in ALLOWED_CAPABILITIES:
        return name
    if name in KNOWN_NAMES:
        fail(
            "capability",
            f"capability {show(value)} is not allowed; a service may add only {ALLOWED_TEXT}",
        )
    hint = suggestion(value) or f"; a service may add only {ALLOWED_TEXT}"
    fail("capability", f"unknown capability {show(value)}{hint}")


def _sorted_unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(names)))


def _any_case(word: str) -> str:
    """A JSON Schema pattern for ``word`` in any case (schemas have no ``(?i)``)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


CAPABILITY_PATTERN = (
    f"^(?:{_any_case('CAP_')})?(?:{'|'.join(_any_case(n) for n in ALLOWED_CAPABILITIES)})$"
)
Capability = Annotated[str, BeforeValidator(_capability)]
Capabilities = Annotated[
    tuple[Capability, ...],
    AfterValidator(_sorted_unique),
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"enum": list(ALLOWED_CAPABILITIES)},
                    {"type": "string", "pattern": CAPABILITY_PATTERN},
                ]
            },
            "examples": [["CHOWN", "NET_BIND_SERVICE"]],
        }
    ),
]
