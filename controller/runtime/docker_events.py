"""The Docker engine's event stream, narrowed to what the reconciler cares about: a
replica of ours that stopped running.

``client.events`` blocks like a followed log, so it is read the same way
(``follow_stream``: a thread of its own, a bounded queue, closed promptly). The engine
filters by type, label and action; ``exit_of`` then leaves out release tasks (spec hash
``task``, see ``docker_options.task_options``: they exit by design) and anything whose
labels name no environment.

The stream starts at the moment the watch does (``since``): an exit that happens while the
subscription is still being set up is replayed by the engine rather than lost. A stream
that the engine ends (it stopped or restarted) raises ``RuntimeUnavailable``; watching
again is the caller's decision.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from contextlib import aclosing
from typing import Any

import docker

from controller import labels
from controller.errors import RuntimeUnavailable
from controller.runtime.base import ContainerExit
from controller.runtime.docker_logs import follow_stream
from controller.runtime.docker_options import environment_of

EXIT_EVENTS = ("die", "oom", "stop", "destroy")
"""Container actions after which a replica no longer runs (``kill`` is only a signal sent)."""
WATCH_THREAD = "watch container exits"


def event_filters() -> dict[str, Any]:
    """The engine's ``filters`` argument: exits of containers carrying our label."""
    return {"type": "container", "label": [f"{labels.MANAGED}=true"], "event": list(EXIT_EVENTS)}


def exit_of(event: Mapping[str, Any]) -> ContainerExit | None:
    """The replica exit an engine event reports, or None when it reports anything else."""
    action = str(event.get("Action") or event.get("status") or "")
    attributes: Mapping[str, str] = (event.get("Actor") or {}).get("Attributes") or {}
    if event.get("Type") != "container" or action not in EXIT_EVENTS:
        return None
    if attributes.get(labels.MANAGED) != "true" or attributes.get(labels.SPEC_HASH) == "task":
        return None
    environment = environment_of(dict(attributes))
    if environment is None:
        return None
    return ContainerExit(environment, str(attributes.get("name", "")), action)


def exits_of(events: Iterable[Mapping[str, Any]]) -> Iterator[ContainerExit]:
    for event in events:
        found = exit_of(event)
        if found is not None:
            yield found


async def watch_exits(
    client: Callable[[], docker.DockerClient],
) -> AsyncGenerator[ContainerExit, None]:
    """``Runtime.watch_exits`` on the engine ``client()`` returns (called in the thread)."""
    since = time.time()

    def open_sync() -> Iterator[Any]:
        stream: Iterator[Any] = client().events(since=since, filters=event_filters(), decode=True)
        return stream

    async with aclosing(follow_stream(open_sync, exits_of, WATCH_THREAD)) as exits:
        async for found in exits:
            yield found
    raise RuntimeUnavailable("Docker engine ended its event stream")
