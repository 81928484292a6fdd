"""Crane's writes to the database: published ports and targets' TLS keys.

Ports come from the target's range, one PublishedPort row each. The unique
constraint on (target, port) is the guarantee; locking the target row
serialises allocations on PostgreSQL so that they rarely collide, and a
collision (or SQLite, which has no row locks) retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.db import IntegrityError, transaction

from config.crypto import encrypt_json
from crane.errors import CraneError, InvalidSpec, PortsExhausted
from crane.models import PublishedPort, Target
from crane.specs import Endpoint, Port
from crane.targets import forget_clients

_ATTEMPTS = 8


def ports_allocate(
    *, target: Target, deployment: str, requests: Mapping[str, Sequence[Port]]
) -> dict[str, tuple[Endpoint, ...]]:
    """Host ports for each node's ports ({node: ports}); a port the node already holds is kept."""
    for _ in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                return _allocate(target, deployment, requests)
        except IntegrityError:
            continue  # a concurrent allocation took the same port first: look again
    raise CraneError(f'Target "{target.name}": published ports kept colliding; try again.', code="port_contention")


def _allocate(
    target: Target, deployment: str, requests: Mapping[str, Sequence[Port]]
) -> dict[str, tuple[Endpoint, ...]]:
    locked = Target.objects.select_for_update().get(pk=target.pk)
    rows = list(PublishedPort.objects.filter(target=locked))
    used = {row.port for row in rows}
    held = {(row.node, row.target_port, row.protocol): row.port for row in rows if row.deployment == deployment}
    free = (p for p in range(locked.port_range_start, locked.port_range_end + 1) if p not in used)
    created: list[PublishedPort] = []
    result: dict[str, tuple[Endpoint, ...]] = {}
    for node, ports in requests.items():
        endpoints = []
        for port in ports:
            number = held.get((node, port.target, port.protocol))
            if number is None:
                number = next(free, None)
                if number is None:
                    raise PortsExhausted(
                        f'Target "{locked.name}" has no free published port left in '
                        f"{locked.port_range_start}-{locked.port_range_end}; widen its range or remove deployments."
                    )
                created.append(
                    PublishedPort(
                        target=locked,
                        port=number,
                        deployment=deployment,
                        node=node,
                        target_port=port.target,
                        protocol=port.protocol,
                    )
                )
            endpoints.append(Endpoint(port.target, port.protocol, locked.public_host, number))
        result[node] = tuple(endpoints)
    PublishedPort.objects.bulk_create(created)
    return result


def ports_release(*, target: Target, deployment: str, node: str | None = None, keep: Iterable[Port] = ()) -> int:
    """Give back a deployment's ports (or one node's, except those in `keep`); the number released."""
    rows = PublishedPort.objects.filter(target=target, deployment=deployment)
    if node is not None:
        rows = rows.filter(node=node)
        for port in keep:
            rows = rows.exclude(target_port=port.target, protocol=port.protocol)
    deleted, _ = rows.delete()
    return deleted


def ports_of(*, target: Target, deployment: str) -> list[PublishedPort]:
    return list(PublishedPort.objects.filter(target=target, deployment=deployment).order_by("node", "target_port"))


def tls_key_check(key_pem: str) -> str:
    """The key, stripped, when it is an unencrypted PEM private key; else InvalidSpec."""
    key_pem = key_pem.strip()
    try:
        load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidSpec(
            "The TLS client key is not an unencrypted PEM private key (-----BEGIN ... PRIVATE KEY-----)."
        ) from None
    return key_pem


def target_set_tls_key(*, target: Target, key_pem: str) -> Target:
    """Store a TLS client key (PEM, unencrypted) encrypted at rest; an empty text removes the key."""
    if key_pem.strip():
        target.tls_client_key_encrypted = encrypt_json({"pem": tls_key_check(key_pem) + "\n"})
    else:
        target.tls_client_key_encrypted = ""
    target.save(update_fields=["tls_client_key_encrypted", "updated_at"])
    forget_clients()
    return target
