"""The ``railyard`` command: run the controller (``up``) and ask it what runs where, and why."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from controller.client import ApiClient
from controller.errors import RailyardError
from controller.spec.cli import validate_command

app = typer.Typer(
    help="Railyard: git push -> containers behind routes, with zero downtime.",
    no_args_is_help=True,
    add_completion=False,
)
apps_app = typer.Typer(help="Register and list apps.", no_args_is_help=True)
app.add_typer(apps_app, name="apps")
domains_app = typer.Typer(help="Domains your apps may route hosts under.", no_args_is_help=True)
app.add_typer(domains_app, name="domains")
secrets_app = typer.Typer(help="An app's secrets (values are never shown).", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
app.command("validate")(validate_command)

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Show Railyard errors as one readable message and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RailyardError as exc:
            errors.print(f"[red]error:[/red] {exc.message}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _short(revision: str | None) -> str:
    return revision[:12] if revision else "-"


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


@apps_app.command("add")
@friendly
def apps_add(
    name: str,
    repo: Annotated[
        str | None, typer.Option(help="Git URL: file://, /path, git://, http(s)://")
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option(
            help="A working tree on this machine (need not be a git repo): every save "
            "redeploys. Instead of --repo; for a Railyard running on this machine."
        ),
    ] = None,
    branch: Annotated[str, typer.Option(help="Branch to deploy (not used with --path).")] = "main",
    manifest: Annotated[str, typer.Option(help="Manifest path in the repo.")] = "paas.yaml",
    json_output: JsonOption = False,
) -> None:
    """Register an app; prints its id, webhook URL and webhook secret (shown once)."""
    from controller.source.routing import working_tree_url

    if (repo is None) == (path is None):
        raise typer.BadParameter(
            "give exactly one of --repo URL or --path DIR", param_hint="'--repo' / '--path'"
        )
    if path is not None:
        directory = path.expanduser().resolve()
        if not directory.is_dir():
            raise typer.BadParameter(f"{path} is not a directory", param_hint="--path")
        repo, branch = working_tree_url(directory), "main"
    client = ApiClient.from_environment()
    body = {"name": name, "repo_url": repo, "branch": branch, "manifest_path": manifest}
    created = client.post("/apps", json=body)
    if json_output:
        _print_json(created)
        return
    console.print(f"[green]app {created['name']} registered[/green] (id {created['id']})")
    if path is not None:
        console.print(f"  working tree   {directory}  (watched: every save redeploys)")
    else:
        console.print(f"  repository     {created['repo_url']} @ {created['branch']}")
        console.print(f"  webhook URL    {created['webhook_url']}")
        console.print(f"  webhook secret {created['webhook_secret']}  (shown once; keep it)")
    console.print("  a first deployment has been queued: `railyard status " + name + "`")


@apps_app.command("list")
@friendly
def apps_list(json_output: JsonOption = False) -> None:
    """List the apps of your tenant."""
    apps = ApiClient.from_environment().get("/apps")
    if json_output:
        _print_json(apps)
        return
    table = Table("name", "repository", "branch", "last seen", "source error")
    for item in apps:
        table.add_row(
            item["name"],
            item["repo_url"],
            item["branch"],
            _short(item.get("last_seen_revision")),
            item.get("source_error") or "",
        )
    console.print(table)


@apps_app.command("set")
@friendly
def apps_set(
    name: str,
    self_heal: Annotated[
        bool | None,
        typer.Option("--self-heal/--no-self-heal", help="Repair drift, or only report it."),
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Deploy another branch.")] = None,
) -> None:
    """Change an app's settings."""
    body = {"self_heal": self_heal, "branch": branch}
    changed = ApiClient.from_environment().request(
        "PATCH", f"/apps/{name}", json={k: v for k, v in body.items() if v is not None}
    )
    console.print(f"{name}: branch {changed['branch']}, self_heal {changed['self_heal']}")


@apps_app.command("credentials")
@friendly
def apps_credentials(
    name: str,
    username: Annotated[
        str | None, typer.Option(help="HTTPS user (e.g. x-access-token), or the SSH user.")
    ] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--ssh-key", help="Deploy key file (OpenSSH private key).")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Forget stored credentials.")] = False,
) -> None:
    """Credentials of a private repository: an HTTPS token read from standard input,
    or an SSH deploy key file. Stored encrypted; never shown again."""
    client = ApiClient.from_environment()
    if remove:
        client.request("DELETE", f"/apps/{name}/credentials")
        console.print(f"{name}: repository credentials removed")
        return
    body: dict[str, str] = {}
    if ssh_key is not None:
        body["ssh_private_key"] = ssh_key.read_text()
        if username:
            body["username"] = username
    else:
        token = sys.stdin.readline().strip()
        if not username or not token:
            errors.print(
                "[red]error:[/red] give --ssh-key FILE, or --username with the token on "
                "standard input (echo $TOKEN | railyard apps credentials NAME --username U)"
            )
            raise typer.Exit(1)
        body = {"username": username, "token": token}
    client.request("PUT", f"/apps/{name}/credentials", json=body)
    console.print(f"{name}: repository credentials stored (encrypted; used from the next fetch)")


@apps_app.command("delete")
@friendly
def apps_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an app: its records, and (within one resync) its containers and routes."""
    if not yes:
        typer.confirm(f"Delete app {name} and everything it runs?", abort=True)
    ApiClient.from_environment().request("DELETE", f"/apps/{name}")
    console.print(f"app {name} deleted; its containers and routes are removed at the next resync")


@app.command()
@friendly
def status(name: str, json_output: JsonOption = False) -> None:
    """What runs for an app, per environment: services, replicas, revision, URL, last deployment."""
    body = ApiClient.from_environment().get(f"/apps/{name}/status")
    if json_output:
        _print_json(body)
        return
    console.print(f"[bold]{body['app']['name']}[/bold]  {body['app']['repo_url']}")
    for environment in body["environments"]:
        deployment = environment.get("latest_deployment") or {}
        console.print(
            f"\n[bold]{environment['name']}[/bold]  revision {_short(environment.get('revision'))}"
            f"  last deployment: {deployment.get('status', '-')}"
            f" ({_short(deployment.get('id'))}, {_short(deployment.get('revision'))})"
        )
        if deployment.get("error"):
            console.print(f"  [red]{deployment['error']}[/red]", highlight=False)
        for url in environment.get("urls", []):
            console.print(f"  url  {url}")
        table = Table("service", "running", "container", "state", "address")
        for service in environment["services"]:
            containers = service["containers"] or [{"name": "-", "state": "-", "address": "-"}]
            for index, container in enumerate(containers):
                table.add_row(
                    service["name"] if index == 0 else "",
                    f"{service['running']}/{len(service['containers'])}" if index == 0 else "",
                    container["name"],
                    container["state"],
                    container.get("address") or "-",
                )
        console.print(table)


@app.command()
@friendly
def deployments(
    name: str,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Deployment history of an app, newest first."""
    rows = ApiClient.from_environment().get(f"/apps/{name}/deployments", params={"limit": limit})
    if json_output:
        _print_json(rows)
        return
    table = Table("id", "created", "revision", "trigger", "status", "summary / error")
    for row in rows:
        table.add_row(
            row["id"][:8],
            str(row["created_at"])[5:19].replace("T", " "),
            _short(row.get("revision")),
            row.get("trigger", ""),
            row["status"],
            (row.get("error") or row.get("plan_summary") or "").splitlines()[0]
            if (row.get("error") or row.get("plan_summary"))
            else "",
        )
    console.print(table)


@app.command()
@friendly
def deployment(deployment_id: str, json_output: JsonOption = False) -> None:
    """One deployment with its events: why it did, or did not, deploy."""
    body = ApiClient.from_environment().get(f"/deployments/{deployment_id}")
    if json_output:
        _print_json(body)
        return
    revision = _short(body.get("revision"))
    console.print(
        f"[bold]deployment {body['id']}[/bold]  {body['status']}  revision {revision}"
        f"  trigger {body.get('trigger')}"
    )
    if body.get("error"):
        console.print(f"[red]{body['error']}[/red]", highlight=False)
    for event in body.get("events", []):
        console.print(
            f"  {str(event['created_at'])[11:19]}  {event['level']:<7} {event['reason']:<16} "
            f"{event['message']}",
            highlight=False,
        )


@app.command()
@friendly
def redeploy(name: str) -> None:
    """Reconcile the app's production environment now, at its branch head."""
    ApiClient.from_environment().post(f"/apps/{name}/redeploy")
    console.print(f"redeploy of {name} queued: `railyard deployments {name}`")


@app.command()
@friendly
def plan(
    name: str,
    env: Annotated[str, typer.Option(help="production or pr-N")] = "production",
    json_output: JsonOption = False,
) -> None:
    """What a reconcile would do now, without doing it (a dry run for review)."""
    body = ApiClient.from_environment().get(f"/apps/{name}/plan", params={"env": env})
    if json_output:
        _print_json(body)
        return
    console.print(f"{name}/{body['environment']} at {_short(body['revision'])}: {body['summary']}")
    for index, step in enumerate(body["steps"], start=1):
        console.print(f"  {index}. {step}", highlight=False)


@app.command()
@friendly
def logs(
    name: str,
    service: Annotated[str | None, typer.Argument(help="Only this service.")] = None,
    env: Annotated[str, typer.Option(help="production or pr-N")] = "production",
    tail: Annotated[int, typer.Option(help="Lines per container.")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """The containers' logs, each line prefixed with service/replica."""
    client = ApiClient.from_environment()
    params: dict[str, str | int] = {"env": env, "tail": tail}
    if service:
        params["service"] = service
    if not follow:
        text: str = client.request_text("GET", f"/apps/{name}/logs", params=params)
        sys.stdout.write(text)
        return
    params["follow"] = "true"
    try:
        for line in client.stream_lines("GET", f"/apps/{name}/logs", params=params):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return


@app.command()
@friendly
def deploy(
    name: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show the deployment's steps as they happen.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up.")] = 600,
) -> None:
    """Deploy the branch head now (like a push would); --follow shows progress until done."""
    client = ApiClient.from_environment()
    before = {row["id"] for row in client.get(f"/apps/{name}/deployments", params={"limit": 20})}
    client.post(f"/apps/{name}/redeploy")
    if not follow:
        console.print(f"deploy of {name} queued: `railyard deployments {name}`")
        return
    deadline = time.monotonic() + timeout
    printed = 0
    current: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if current is None:
            rows = client.get(f"/apps/{name}/deployments", params={"limit": 5})
            fresh = [row for row in rows if row["id"] not in before]
            if not fresh:
                time.sleep(0.3)
                continue
            current = fresh[-1]
            console.print(f"deployment {current['id'][:8]} of {_short(current['revision'])}")
        detail = client.get(f"/deployments/{current['id']}")
        for event in detail["events"][printed:]:
            style = {"error": "red", "warning": "yellow"}.get(event["level"], "")
            message = event["message"].splitlines() or [""]
            text = f"  {event['reason']:<16} {message[0]}"
            console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False)
        printed = len(detail["events"])
        if detail["status"] not in ("pending", "running"):
            colour = "green" if detail["status"] == "succeeded" else "red"
            console.print(f"[{colour}]{detail['status']}[/{colour}]", highlight=False)
            if detail["status"] != "succeeded":
                raise typer.Exit(1)
            return
        time.sleep(0.3)
    errors.print(
        f"still running after {timeout:g}s: `railyard deployment {current and current['id']}`"
    )
    raise typer.Exit(1)


@app.command()
@friendly
def rollback(
    name: str,
    to: Annotated[
        str | None, typer.Option("--to", help="Deployment id (default: the previous good one).")
    ] = None,
    env: Annotated[str, typer.Option(help="production or pr-N")] = "production",
) -> None:
    """Return to an earlier deployment's revision; it holds until the next push or redeploy."""
    client = ApiClient.from_environment()
    if to and len(to) < 36:
        rows = client.get(f"/apps/{name}/deployments", params={"limit": 200})
        matches = [row["id"] for row in rows if row["id"].startswith(to)]
        if len(matches) != 1:
            errors.print(f"[red]error:[/red] {len(matches)} deployments start with {to!r}")
            raise typer.Exit(1)
        to = matches[0]
    body = client.post(f"/apps/{name}/rollback", json={"to": to, "env": env})
    console.print(
        f"rolling {name}/{env} back to {_short(body['revision'])} "
        f"(deployment {body['from_deployment'][:8]}): `railyard deployments {name}`"
    )


@app.command()
@friendly
def deliveries(name: str, json_output: JsonOption = False) -> None:
    """Webhook deliveries of an app, newest first, with what each one caused (or why not)."""
    rows = ApiClient.from_environment().get(f"/apps/{name}/deliveries")
    if json_output:
        _print_json(rows)
        return
    table = Table("received", "provider", "event", "ref", "revision", "outcome")
    for row in rows:
        table.add_row(
            str(row.get("received_at", ""))[5:19].replace("T", " "),
            row.get("provider", ""),
            row.get("event", ""),
            row.get("ref") or "",
            _short(row.get("revision")),
            row.get("outcome", ""),
        )
    console.print(table)


@apps_app.command("rotate-secret")
@friendly
def apps_rotate_secret(name: str, json_output: JsonOption = False) -> None:
    """Replace the app's webhook secret; prints the new one (shown once)."""
    body = ApiClient.from_environment().post(f"/apps/{name}/webhook-secret/rotate")
    if json_output:
        _print_json(body)
        return
    console.print(f"new webhook secret for {name}: {body['webhook_secret']}  (shown once)")


@secrets_app.command("set")
@friendly
def secrets_set(
    name: str,
    assignments: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs")],
) -> None:
    """Set secrets (referenced in paas.yaml as ${{ secrets.NAME }}); takes effect next deploy."""
    client = ApiClient.from_environment()
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator:
            errors.print(f"[red]error:[/red] expected NAME=VALUE, got {key!r}")
            raise typer.Exit(1)
        client.request("PUT", f"/apps/{name}/secrets/{key}", json={"value": value})
        console.print(f"set {key}")


@secrets_app.command("list")
@friendly
def secrets_list(name: str, json_output: JsonOption = False) -> None:
    """The names of an app's secrets."""
    rows = ApiClient.from_environment().get(f"/apps/{name}/secrets")
    if json_output:
        _print_json(rows)
        return
    for row in rows:
        console.print(f"{row['name']}  (updated {str(row['updated_at'])[:19]})")


@secrets_app.command("unset")
@friendly
def secrets_unset(name: str, keys: list[str]) -> None:
    """Remove secrets."""
    client = ApiClient.from_environment()
    for key in keys:
        client.request("DELETE", f"/apps/{name}/secrets/{key}")
        console.print(f"removed {key}")


@domains_app.command("add")
@friendly
def domains_add(name: str) -> None:
    """Claim a domain: your apps may then route hosts under it."""
    added = ApiClient.from_environment().post("/domains", json={"name": name})
    console.print(f"domain {added['name']} is yours; apps may route hosts under it")


@domains_app.command("list")
@friendly
def domains_list(json_output: JsonOption = False) -> None:
    """The domains you own (hosts under the base domain are open to every app)."""
    rows = ApiClient.from_environment().get("/domains")
    if json_output:
        _print_json(rows)
        return
    for row in rows:
        console.print(row["name"])


@domains_app.command("remove")
@friendly
def domains_remove(name: str) -> None:
    """Give a domain up (routes under it fail their next deploy)."""
    ApiClient.from_environment().request("DELETE", f"/domains/{name}")
    console.print(f"domain {name} removed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
