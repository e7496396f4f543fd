"""The logs the Docker engine streams back: build and pull progress, and container logs.

Both arrive as blocking streams the event loop must not wait on: progress chunks are
read one per worker-thread hop (``progress_chunks``); a followed container's lines
come from a thread of their own through a bounded queue (``follow_stream``, which the
engine's event stream in ``docker_events`` shares).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from functools import partial
from typing import Any, Generic, TypeVar

import docker.errors

from controller.errors import RailyardError
from controller.runtime.docker_calls import call_engine, engine_error

log = logging.getLogger(__name__)

T = TypeVar("T")

FOLLOW_BUFFER_LINES = 1000
"""Items (log lines, engine events) a follower holds for a slow reader before its thread
waits."""
FOLLOW_POLL_SECONDS = 0.2
FOLLOW_JOIN_SECONDS = 5.0


async def progress_chunks(
    what: str, start: Callable[[], Iterator[dict[str, Any]]]
) -> AsyncGenerator[dict[str, Any], None]:
    """The engine's JSON progress stream, one chunk per thread hop so that the
    caller's log callback runs on the event loop. The engine refusing the request
    (its status is only checked once the stream is read) ends the stream with an
    error chunk, like a failure reported inside the stream."""

    def open_sync() -> Iterator[dict[str, Any]]:
        try:
            return start()
        except docker.errors.APIError as exc:
            return iter([_refusal(exc)])

    def next_sync(stream: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return next(stream, None)
        except docker.errors.APIError as exc:
            return _refusal(exc)

    stream = await call_engine(what, open_sync)
    while (chunk := await call_engine(what, partial(next_sync, stream))) is not None:
        yield chunk


def stream_lines(chunk: dict[str, Any]) -> list[str]:
    text = chunk.get("stream") or chunk.get("status") or ""
    return [line.rstrip() for line in str(text).splitlines() if line.strip()]


def stream_error(chunk: dict[str, Any]) -> str | None:
    detail = chunk.get("errorDetail") or {}
    message = detail.get("message") or chunk.get("error")
    return str(message).strip() if message else None


class Ended:
    """The reader thread's last word: the stream ended, normally or with ``error``."""

    def __init__(self, error: RailyardError | None) -> None:
        self.error = error


class StreamFollower(Generic[T]):
    """Reads a blocking SDK stream in a thread and hands its items to the event loop.

    ``items`` turns the raw stream into what the caller wants (complete log lines, the
    container exits among engine events), in the thread. The queue is bounded, so a slow
    reader makes the thread wait instead of filling memory. ``stop`` closes the stream
    (which ends the thread's blocking read), frees a hand-over the thread may be waiting
    in, and joins the thread.
    """

    def __init__(
        self,
        open_stream: Callable[[], Iterator[Any]],
        items: Callable[[Iterator[Any]], Iterable[T]],
        what: str,
    ) -> None:
        self._open = open_stream
        self._items = items
        self._what = what
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[T | Ended] = asyncio.Queue(FOLLOW_BUFFER_LINES)
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._pump, name=what, daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        self._close_stream()
        while not self.queue.empty():
            self.queue.get_nowait()
        await asyncio.to_thread(self._thread.join, FOLLOW_JOIN_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "%s: reader thread still blocked after %gs", self._what, FOLLOW_JOIN_SECONDS
            )

    def _pump(self) -> None:
        error: RailyardError | None = None
        try:
            self._pump_items()
        except RailyardError as exc:
            error = exc
        finally:
            self._close_stream()
            self._hand_over(Ended(error))

    def _pump_items(self) -> None:
        try:
            stream = self._open()
            with self._guard:
                self._stream = stream
            if self._stopping.is_set():
                return
            for item in self._items(stream):
                if not self._hand_over(item):
                    return
        except (docker.errors.DockerException, OSError) as exc:
            raise engine_error(self._what, exc) from exc

    def _hand_over(self, item: T | Ended) -> bool:
        """Put ``item`` on the queue, waiting while it is full; False once stopping."""
        put = self.queue.put(item)
        try:
            handed = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            put.close()
            return False
        while not self._stopping.is_set():
            try:
                handed.result(timeout=FOLLOW_POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                continue
            except concurrent.futures.CancelledError:
                return False
            return True
        handed.cancel()
        return False

    def _close_stream(self) -> None:
        with self._guard:
            stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.close()
        except (docker.errors.DockerException, OSError) as exc:
            log.debug("closing %s: %s", self._what, exc)


async def follow_stream(
    open_stream: Callable[[], Iterator[Any]],
    items: Callable[[Iterator[Any]], Iterable[T]],
    what: str,
) -> AsyncGenerator[T, None]:
    """The items of a blocking stream, read by a thread named ``what``, until the stream
    ends (raising what ended it, a ``RailyardError``) or the caller closes this generator
    (``contextlib.aclosing``), which closes the stream and joins the thread."""
    follower = StreamFollower(open_stream, items, what)
    follower.start()
    try:
        while not isinstance(item := await follower.queue.get(), Ended):
            yield item
        if item.error is not None:
            raise item.error
    finally:
        await follower.stop()


def log_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Complete lines of a byte stream whose chunks may split a line (or a character)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace")


def _refusal(exc: Any) -> dict[str, Any]:
    return {"error": str(exc.explanation or exc)}
