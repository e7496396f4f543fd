"""paas.yaml: text → validated ``Manifest`` → ``DesiredEnvironment`` for one environment.

Pure: no I/O beyond the text given, no clock, no Docker.
"""

from controller.spec.loader import parse_manifest
from controller.spec.models import Manifest
from controller.spec.render import RenderContext, render_environment

__all__ = ["Manifest", "RenderContext", "parse_manifest", "render_environment"]
