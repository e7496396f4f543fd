"""PURE: which hosts an environment may route. A tenant may only claim hosts under the
shared base domain or under domains it owns (``railyard domains add``)."""

from __future__ import annotations

from collections.abc import Iterable

from controller.errors import ManifestIssue
from controller.state import DesiredEnvironment


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def host_issues(
    desired: DesiredEnvironment, base_domain: str, owned: Iterable[str], *, filename: str
) -> list[ManifestIssue]:
    allowed = [base_domain, *owned]
    issues = []
    for service in desired.services:
        for index, route in enumerate(service.routes):
            if not any(_under(route.host, domain) for domain in allowed):
                issues.append(
                    ManifestIssue(
                        f"services.{service.name}.routes[{index}].host",
                        f"{route.host!r} is not under {base_domain!r} or a domain this "
                        f"tenant owns (add it: railyard domains add <domain>)",
                        filename=filename,
                    )
                )
    return issues
