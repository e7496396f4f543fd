"""The ``railyard`` command: run the controller (``up``) and ask it what runs where, and why.

Commands live by subject: ``deploys`` (status, history, deploy, plan, logs, rollback),
``apps`` (apps, secrets, domains); ``common`` holds what they share.
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli import apps, deploys
from controller.spec.cli import validate_command

app = typer.Typer(
    help="Railyard: git push -> containers behind routes, with zero downtime.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(apps.apps_app, name="apps")
app.add_typer(apps.domains_app, name="domains")
app.add_typer(apps.secrets_app, name="secrets")
app.add_typer(deploys.app)
app.command("validate")(validate_command)


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option(help="Register and deploy examples/hello from a local git repo.")
    ] = False,
) -> None:
    """Run everything in one process: API, webhooks, poller, resync, worker and the nginx edge."""
    from controller.server import run

    run(demo=demo)


@app.command()
def worker() -> None:
    """Run only a worker (with RAILYARD_REDIS_URL set), to scale reconciles across processes."""
    from controller.server import run_worker

    run_worker()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
