"""The actors on Dramatiq's own in-process broker and worker: an expected outage is retried
quietly, a permanent error is not retried, anything unexpected keeps its traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from controller.errors import ManifestError, RuntimeUnavailable
from controller.reconciler import Outcome
from controller.tasks.actors import Actors, Reconciles, register_actors


class ScriptedReconciler:
    """Raises the scripted errors in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, str]] = []

    async def reconcile(self, environment_id: str, *, trigger: str = "resync") -> Outcome:
        self.calls.append((environment_id, trigger))
        if self.errors:
            raise self.errors.pop(0)
        return Outcome("succeeded", message="done")

    async def prune_orphans(self) -> list[str]:
        return []


class Context:
    def __init__(self, reconciler: ScriptedReconciler) -> None:
        self._reconciler = reconciler

    async def reconciler(self) -> Reconciles:
        return self._reconciler


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    yield broker
    broker.emit_before("process_stop")
    broker.close()


def run(broker: StubBroker, reconciler: ScriptedReconciler) -> Actors:
    actors = register_actors(broker, Context(reconciler))
    # Millisecond backoff for the test; production messages use RETRY_OPTIONS.
    actors.reconcile.send_with_options(args=("env-1", "push"), min_backoff=1, max_backoff=5)
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join(actors.reconcile.queue_name, timeout=10_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    return actors


def test_an_outage_is_retried_with_one_warning_line_and_no_traceback(
    broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reconciler = ScriptedReconciler(RuntimeUnavailable("Docker engine not reachable"))
    run(broker, reconciler)
    assert reconciler.calls == [("env-1", "push"), ("env-1", "push")]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "reconcile env-1 (push): Docker engine not reachable; will retry"
    ]
    assert not any(r.exc_info for r in caplog.records), "no traceback for an expected outage"


def test_a_permanent_error_is_not_retried(
    broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    reconciler = ScriptedReconciler(ManifestError.single("bad manifest", filename="paas.yaml"))
    run(broker, reconciler)
    assert len(reconciler.calls) == 1


def test_an_unexpected_error_keeps_its_traceback_and_is_retried(
    broker: StubBroker, caplog: pytest.LogCaptureFixture
) -> None:
    reconciler = ScriptedReconciler(KeyError("bug"))
    run(broker, reconciler)
    assert len(reconciler.calls) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info is not None
