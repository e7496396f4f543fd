"""``railyard status|deployments|deploy|plan|logs|rollback ...``: what runs where, and why."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from controller.cli.common import JsonOption, console, errors, friendly, print_json, short
from controller.client import ApiClient

app = typer.Typer()
"""Merged into the top-level ``railyard`` command."""

UNFINISHED = ("pending", "running")


@app.command()
@friendly
def status(name: str, json_output: JsonOption = False) -> None:
    """What runs for an app, per environment: services, replicas, revision, URL, last deployment."""
    body = ApiClient.from_environment().get(f"/apps/{name}/status")
    if json_output:
        print_json(body)
        return
    console.print(f"[bold]{body['app']['name']}[/bold]  {body['app']['repo_url']}")
    for environment in body["environments"]:
        deployment = environment.get("latest_deployment") or {}
        console.print(
            f"\n[bold]{environment['name']}[/bold]  revision {short(environment.get('revision'))}"
            f"  last deployment: {deployment.get('status', '-')}"
            f" ({short(deployment.get('id'))}, {short(deployment.get('revision'))})"
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
        print_json(rows)
        return
    table = Table("id", "created", "revision", "trigger", "status", "summary / error")
    for row in rows:
        table.add_row(
            row["id"][:8],
            str(row["created_at"])[5:19].replace("T", " "),
            short(row.get("revision")),
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
        print_json(body)
        return
    revision = short(body.get("revision"))
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
        print_json(body)
        return
    console.print(f"{name}/{body['environment']} at {short(body['revision'])}: {body['summary']}")
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
    finished = {
        row["id"]
        for row in client.get(f"/apps/{name}/deployments", params={"limit": 20})
        if row["status"] not in UNFINISHED
    }
    client.post(f"/apps/{name}/redeploy")
    if not follow:
        console.print(f"deploy of {name} queued: `railyard deployments {name}`")
        return
    deadline = time.monotonic() + timeout
    current = _await_deployment(client, name, finished, deadline)
    if current is not None:
        _follow(client, current, deadline, timeout)


def _await_deployment(
    client: ApiClient, name: str, finished: set[str], deadline: float
) -> dict[str, Any] | None:
    """The deployment under way (this deploy's, or a push's already running), or None when
    the plan shows that what runs is already the branch head."""
    next_plan_check = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        rows = client.get(f"/apps/{name}/deployments", params={"limit": 5})
        fresh = [row for row in rows if row["id"] not in finished]
        if fresh:
            current: dict[str, Any] = fresh[-1]
            console.print(f"deployment {current['id'][:8]} of {short(current['revision'])}")
            return current
        if time.monotonic() >= next_plan_check:
            plan = client.get(f"/apps/{name}/plan")
            if not plan["steps"]:
                console.print(f"nothing to deploy: {name} already runs {short(plan['revision'])}")
                return None
            next_plan_check = time.monotonic() + 2.0
        time.sleep(0.3)
    errors.print(f"no deployment started within the timeout: `railyard deployments {name}`")
    raise typer.Exit(1)


def _follow(client: ApiClient, current: dict[str, Any], deadline: float, timeout: float) -> None:
    """Print each event as it is recorded, with the seconds since the deployment began."""
    printed = 0
    began: datetime | None = None
    while time.monotonic() < deadline:
        detail = client.get(f"/deployments/{current['id']}")
        for event in detail["events"][printed:]:
            at = datetime.fromisoformat(str(event["created_at"]))
            began = began or at
            style = {"error": "red", "warning": "yellow"}.get(event["level"], "")
            message = event["message"].splitlines() or [""]
            elapsed = (at - began).total_seconds()
            text = f"  {elapsed:5.1f}s  {event['reason']:<16} {message[0]}"
            console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False)
        printed = len(detail["events"])
        if detail["status"] not in UNFINISHED:
            colour = "green" if detail["status"] == "succeeded" else "red"
            console.print(f"[{colour}]{detail['status']}[/{colour}]", highlight=False)
            if detail["status"] != "succeeded":
                raise typer.Exit(1)
            return
        time.sleep(0.3)
    errors.print(f"still running after {timeout:g}s: `railyard deployment {current['id']}`")
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
        f"rolling {name}/{env} back to {short(body['revision'])} "
        f"(deployment {body['from_deployment'][:8]}): `railyard deployments {name}`"
    )


@app.command()
@friendly
def deliveries(name: str, json_output: JsonOption = False) -> None:
    """Webhook deliveries of an app, newest first, with what each one caused (or why not)."""
    rows = ApiClient.from_environment().get(f"/apps/{name}/deliveries")
    if json_output:
        print_json(rows)
        return
    table = Table("received", "provider", "event", "ref", "revision", "outcome")
    for row in rows:
        table.add_row(
            str(row.get("received_at", ""))[5:19].replace("T", " "),
            row.get("provider", ""),
            row.get("event", ""),
            row.get("ref") or "",
            short(row.get("revision")),
            row.get("outcome", ""),
        )
    console.print(table)
