"""``railyard apps|secrets|domains ...``: register apps and set what they are allowed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from controller.cli.common import JsonOption, console, errors, friendly, print_json, short
from controller.client import ApiClient

apps_app = typer.Typer(help="Register and list apps.", no_args_is_help=True)
domains_app = typer.Typer(help="Domains your apps may route hosts under.", no_args_is_help=True)
secrets_app = typer.Typer(help="An app's secrets (values are never shown).", no_args_is_help=True)


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
        print_json(created)
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
        print_json(apps)
        return
    table = Table("name", "repository", "branch", "last seen", "source error")
    for item in apps:
        table.add_row(
            item["name"],
            item["repo_url"],
            item["branch"],
            short(item.get("last_seen_revision")),
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


@apps_app.command("rotate-secret")
@friendly
def apps_rotate_secret(name: str, json_output: JsonOption = False) -> None:
    """Replace the app's webhook secret; prints the new one (shown once)."""
    body = ApiClient.from_environment().post(f"/apps/{name}/webhook-secret/rotate")
    if json_output:
        print_json(body)
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
        print_json(rows)
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
        print_json(rows)
        return
    for row in rows:
        console.print(row["name"])


@domains_app.command("remove")
@friendly
def domains_remove(name: str) -> None:
    """Give a domain up (routes under it fail their next deploy)."""
    ApiClient.from_environment().request("DELETE", f"/domains/{name}")
    console.print(f"domain {name} removed")
