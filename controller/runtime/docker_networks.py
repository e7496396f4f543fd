"""Each environment's Docker network: found by its labels, created once, joined by name.

Each environment gets one labelled bridge network, ``ry-<slug>``; a replica joins it
under its service's name, so ``http://<service>:<port>`` reaches the service from
inside the environment and from nowhere else. During a rolling deploy that name
resolves to old and new replicas alike, so a release task can be pinned to the new
ones by their addresses on the network (``peer_addresses``, ``extra_hosts``). These
functions run in the runtime's worker threads with an SDK client in hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import docker.errors

from controller import labels
from controller.errors import RuntimeUnavailable
from controller.runtime.docker_options import environment_of, label_filters, network_name
from controller.state import EnvironmentKey

log = logging.getLogger(__name__)


def ensure_network(client: Any, key: EnvironmentKey) -> str:
    """The id of the environment's network, created if missing.

    The engine does not keep network names unique under concurrent creates (20.10
    makes two), so the caller serialises creates per name in its process; across
    processes (best effort) the oldest network of the name wins and a loser removes
    its own. A new network adopts the environment's running replicas: those started
    before environments had networks are reachable by name without a restart."""
    name = network_name(key)
    existing = networks_of(client, key, name)
    if existing:
        return str(existing[0]["Id"])
    created: dict[str, Any] | None = None
    try:
        created = client.api.create_network(
            name, driver="bridge", labels=key.labels(), check_duplicate=True
        )
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: another process created it since we looked
            raise
    existing = networks_of(client, key, name)
    if not existing:
        raise RuntimeUnavailable(f"network {name} vanished as it was created")
    winner = str(existing[0]["Id"])
    if created is not None and created.get("Id") != winner:
        _discard_network(client, str(created["Id"]))
    elif created is not None:
        _adopt_replicas(client, key, winner)
    return winner


def network_options(client: Any, network_id: str, *, alias: str | None) -> dict[str, Any]:
    """Join only the environment's network (by id: a name may briefly be ambiguous)."""
    aliases = [alias] if alias is not None else None
    endpoint = client.api.create_endpoint_config(aliases=aliases)
    return {"network": network_id, "networking_config": {network_id: endpoint}}


def peer_addresses(
    client: Any, network_id: str, peers: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """Per service name, the addresses of its ``peers`` containers on the network. A peer
    that is gone, stopped or not on the network has no address there and is skipped."""
    pinned: dict[str, tuple[str, ...]] = {}
    for service, container_ids in peers.items():
        found = [address for cid in container_ids if (address := _address(client, cid, network_id))]
        if found:
            pinned[service] = tuple(found)
    return pinned


def extra_hosts(pinned: Mapping[str, Sequence[str]]) -> list[str]:
    """``containers.create``'s ``extra_hosts`` as ``"name:ip"`` lines: one per address, as a
    dict could not repeat a name. ``/etc/hosts`` is read before Docker's DNS."""
    return [f"{name}:{address}" for name, addresses in pinned.items() for address in addresses]


def _address(client: Any, container_id: str, network_id: str) -> str | None:
    try:
        attrs = client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return None
    attached = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for endpoint in attached.values():
        if (endpoint or {}).get("NetworkID") == network_id:
            address = endpoint.get("IPAddress") or endpoint.get("GlobalIPv6Address")
            return str(address) if address else None
    return None


def networks_of(client: Any, key: EnvironmentKey, name: str | None = None) -> list[Any]:
    """The environment's networks (of that name, if given), oldest first."""
    found = client.api.networks(filters=label_filters(key.labels()))
    own = [
        network
        for network in found
        if environment_of(network.get("Labels") or {}) == key
        and (name is None or network.get("Name") == name)
    ]
    return sorted(own, key=lambda network: (_created(network), network.get("Id", "")))


def remove_network(client: Any, network_id: str) -> None:
    try:
        client.api.remove_network(network_id)
    except docker.errors.NotFound:
        return


def _created(network: dict[str, Any]) -> datetime:
    try:
        created = datetime.fromisoformat(str(network.get("Created", "")))
    except ValueError:
        created = datetime.max
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _discard_network(client: Any, network_id: str) -> None:
    """Remove a duplicate we created in a race; if someone joined it already, keep it."""
    try:
        remove_network(client, network_id)
    except docker.errors.APIError as exc:
        log.warning("kept duplicate network %s: %s", network_id, exc.explanation or exc)


def _adopt_replicas(client: Any, key: EnvironmentKey, network_id: str) -> None:
    for container in client.api.containers(filters=label_filters(key.labels())):
        own = container.get("Labels") or {}
        attached = (container.get("NetworkSettings") or {}).get("Networks") or {}
        if environment_of(own) != key or own.get(labels.SPEC_HASH) == "task":
            continue
        if any(net.get("NetworkID") == network_id for net in attached.values()):
            continue
        try:
            client.api.connect_container_to_network(
                container["Id"], network_id, aliases=[own.get(labels.SERVICE, "")]
            )
        except docker.errors.NotFound:
            continue
