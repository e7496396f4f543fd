"""``railyard validate [paas.yaml] [--json]``: check a manifest before pushing it.

Exit 0 with a short summary of services and routes, or exit 1 with every
problem as ``file:line:column: path: message`` (``--json``: a list of issue
objects). A Compose manifest's ``compose:`` file is read from the folder that
holds paas.yaml, which is taken to be the top of the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from controller.errors import ManifestError, ManifestIssue
from controller.spec.compose import load_compose
from controller.spec.durations import format_duration
from controller.spec.loader import parse_manifest
from controller.spec.models import Manifest, ServiceSpec
from controller.spec.sizes import format_size
from controller.spec.yaml_loader import MAX_FILE_BYTES


def validate_command(
    path: Annotated[
        Path, typer.Argument(help="The manifest to check, or a folder holding paas.yaml.")
    ] = Path("paas.yaml"),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print machine-readable results.")
    ] = False,
) -> None:
    """Check paas.yaml (and its Compose file) and print what it would deploy."""
    if path.is_dir():
        path = path / "paas.yaml"
    try:
        manifest = load_manifest_file(path)
    except ManifestError as exc:
        if json_output:
            typer.echo(json.dumps({"valid": False, "errors": [i.to_dict() for i in exc.issues]}))
        else:
            for issue in exc.issues:
                typer.echo(str(issue))
            typer.echo(f"{len(exc.issues)} problem(s) in {path}")
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps({"valid": True, **summary_data(manifest)}))
    else:
        typer.echo(summary_text(path, manifest))


def load_manifest_file(path: Path) -> Manifest:
    """Read, parse and (for ``compose:``) resolve a manifest on disk; errors as ManifestError."""
    name = path.name
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _single(name, "the file is larger than 1 MiB")
        text = path.read_bytes()
    except OSError as exc:
        raise _single(name, f"cannot read {path}: {exc.strerror or exc}") from None
    manifest = parse_manifest(text, filename=name)
    root = path.resolve().parent
    return load_compose(manifest, lambda relative: _read_inside(root, relative))


def _single(filename: str, message: str) -> ManifestError:
    return ManifestError([ManifestIssue("", message, filename=filename)], filename=filename)


def _read_inside(root: Path, relative: str) -> bytes | None:
    """A file of the repository; nothing outside it, even through a symlink."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    if target.stat().st_size > MAX_FILE_BYTES:
        raise _single(relative, "the file is larger than 1 MiB")
    return target.read_bytes()


def summary_data(manifest: Manifest) -> dict[str, object]:
    previews = manifest.previews
    return {
        "services": {
            name: {
                "source": _source(svc),
                "port": svc.port,
                "replicas": svc.replicas,
                "routes": [route.host + route.path for route in svc.routes],
                "depends_on": list(svc.depends_on),
            }
            for name, svc in manifest.service_specs().items()
        },
        "previews": {
            "enabled": previews.enabled,
            "host": previews.host,
            "services": list(previews.services or manifest.service_specs()),
            "ttl": format_duration(previews.ttl),
        },
    }


def summary_text(path: Path, manifest: Manifest) -> str:
    specs = manifest.service_specs()
    lines = [f"{path}: valid, {len(specs)} service(s)"]
    for name, svc in specs.items():
        details = [_source(svc)]
        if svc.port is not None:
            details.append(f"port {svc.port}")
        details.append(f"{svc.replicas} replica(s)")
        if svc.resources is not None and svc.resources.memory is not None:
            details.append(f"memory {format_size(svc.resources.memory)}")
        lines.append(f"  {name}: {', '.join(details)}")
        lines.extend(f"    route {route.host}{route.path}" for route in svc.routes)
        if svc.depends_on:
            lines.append(f"    after {', '.join(svc.depends_on)}")
    previews = manifest.previews
    if previews.enabled:
        lines.append(f"  previews: {previews.host} (expire after {format_duration(previews.ttl)})")
    else:
        lines.append("  previews: disabled")
    return "\n".join(lines)


def _source(svc: ServiceSpec) -> str:
    if svc.build is not None:
        return f"build {svc.build.context}"
    return f"image {svc.image}"


app = typer.Typer(add_completion=False, help="Check a Railyard manifest.")
app.command("validate")(validate_command)

if __name__ == "__main__":
    app()
