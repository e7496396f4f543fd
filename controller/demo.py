"""``railyard up --demo``: publish examples/hello to a local git repo, register it, deploy it.

Uses the ``git`` command (argument lists, never a shell) so a newcomer's first run
exercises exactly the path a real push takes: bare repo -> fetch -> build -> route.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from controller.api.deps import ReconcileQueue
from controller.errors import NotFoundError
from controller.settings import Settings
from controller.store.crypto import SecretBox
from controller.store.db import Database
from controller.store.models import App, Environment
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
DEMO_APP = "hello"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Railyard demo",
    "GIT_AUTHOR_EMAIL": "demo@railyard.localhost",
    "GIT_COMMITTER_NAME": "Railyard demo",
    "GIT_COMMITTER_EMAIL": "demo@railyard.localhost",
}


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def publish_example(home: Path, example: Path = EXAMPLE) -> str:
    """Commit the example into HOME/demo/hello.git (bare) and return its file:// URL.

    Re-running commits only when the example changed, so restarts do not redeploy."""
    demo = home.resolve() / "demo"
    bare = demo / "hello.git"
    work = demo / "hello"
    if not bare.exists():
        bare.mkdir(parents=True)
        _git("init", "--bare", "--initial-branch=main", "-q", str(bare), cwd=demo)
    if not work.exists():
        _git("clone", "-q", str(bare), str(work), cwd=demo)
        _git("checkout", "-q", "-B", "main", cwd=work)
    for item in example.iterdir():
        target = work / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    _git("add", "-A", cwd=work)
    if _git("status", "--porcelain", cwd=work):
        _git("commit", "-q", "-m", "Deploy the hello example", cwd=work)
        _git("push", "-q", "origin", "main", cwd=work)
    return f"file://{bare}"


async def register_demo(
    database: Database, settings: Settings, queue: ReconcileQueue
) -> tuple[App, Environment]:
    repo_url = await asyncio.to_thread(publish_example, settings.home)
    async with database.session() as session:
        tenant = await TenantRepository(session, None).get_by_name("default")
        if tenant is None:
            raise NotFoundError("tenant 'default' not found: bootstrap did not run")
        apps = AppRepository(session, tenant.id)
        app = await apps.get_by_name(DEMO_APP)
        if app is None:
            secret = SecretBox(settings.signing_key()).encrypt(os.urandom(24).hex())
            app = await apps.create(DEMO_APP, repo_url, webhook_secret_encrypted=secret)
        environment = await EnvironmentRepository(session, tenant.id).get_by_name(
            app.id, "production"
        )
    if environment is None:
        raise NotFoundError("the demo app has no production environment")
    await queue.enqueue(environment.id, reason="redeploy")
    return app, environment
