"""paas.yaml: text → validated ``Manifest`` → ``DesiredEnvironment`` for one environment.

Pure: no I/O beyond the text given (and, for ``compose:``, the reader passed
to ``load_compose``), no clock, no Docker.
"""

from controller.spec.compose import load_compose
from controller.spec.loader import parse_manifest
from controller.spec.models import Manifest
from controller.spec.render import RenderContext, build_sources, image_for, render_environment

__all__ = [
    "Manifest",
    "RenderContext",
    "build_sources",
    "image_for",
    "load_compose",
    "parse_manifest",
    "render_environment",
]
