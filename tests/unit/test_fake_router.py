"""FakeRouter behaves like the real routers where the executor can tell the difference."""

from __future__ import annotations

import pytest

from controller.errors import RouterError
from controller.router.fake import FakeRouter
from controller.state import EnvironmentKey, RouteTarget

KEY = EnvironmentKey("acme", "shop", "production")
OTHER = EnvironmentKey("acme", "shop", "pr-3")
V1 = [RouteTarget("shop.example.com", "/", "web", ("127.0.0.1:40001",))]
V2 = [RouteTarget("shop.example.com", "/", "web", ("127.0.0.1:40002",))]


async def test_apply_replaces_the_route_set_and_is_recorded() -> None:
    router = FakeRouter()
    await router.apply(KEY, V1)
    await router.apply(OTHER, V1)
    await router.apply(KEY, V2)

    assert await router.observe(KEY) == V2
    assert router.applies_for(KEY) == [V1, V2]
    assert [key for key, _ in router.applied] == [KEY, OTHER, KEY]


async def test_injected_failure_raises_and_changes_nothing() -> None:
    router = FakeRouter()
    await router.apply(KEY, V1)
    router.fail_apply = 1

    with pytest.raises(RouterError):
        await router.apply(KEY, V2)
    await router.apply(KEY, V2)

    assert router.applies_for(KEY) == [V1, V2]
    assert await router.observe(KEY) == V2


async def test_permanent_failure_keeps_failing() -> None:
    router = FakeRouter()
    router.fail_apply = -1

    for _ in range(3):
        with pytest.raises(RouterError):
            await router.apply(KEY, V1)
    assert await router.observe(KEY) == []


async def test_remove_forgets_the_environment_and_missing_is_fine() -> None:
    router = FakeRouter()
    await router.apply(KEY, V1)
    await router.apply(OTHER, V2)

    await router.remove(KEY)
    await router.remove(KEY)

    assert await router.observe(KEY) == []
    assert await router.environments() == [OTHER]
    assert router.removed == [KEY]


async def test_observe_returns_a_copy() -> None:
    router = FakeRouter()
    await router.apply(KEY, V1)

    (await router.observe(KEY)).clear()

    assert await router.observe(KEY) == V1
