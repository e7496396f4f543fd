"""The Router port: how requests reach containers. ``make_router(settings)`` picks the adapter."""

from __future__ import annotations

from controller.router.base import Router
from controller.settings import Settings

__all__ = ["Router", "make_router"]


def make_router(settings: Settings) -> Router:
    if settings.router == "traefik":
        from controller.router.traefik import TraefikRouter

        return TraefikRouter(settings.traefik_dynamic_dir)
    from controller.router.nginx import NginxRouter

    return NginxRouter(
        settings.nginx_dir,
        listen_host=settings.edge_host,
        listen_port=settings.edge_port,
        binary=settings.nginx_binary,
    )
