"""How Agora names and labels what a deployment creates: `agora-<deployment>-...`.

Names must fit Docker's rules everywhere they are used: a swarm service name is
a DNS label (63 characters), a secret name at most 64, an image repository
lower case. The checks here run before any Docker call.
"""

from __future__ import annotations

import re

from crane.errors import InvalidSpec

PREFIX = "agora"
LABEL_DEPLOYMENT = "agora.deployment"
LABEL_NODE = "agora.node"
LABEL_KIND = "agora.kind"
LABEL_TARGET = "agora.target"  # on services and their containers: capacity is counted per target
LABEL_NAME = "agora.name"  # a volume's or secret's name as the deployment knows it
LABEL_HASH = "agora.spec-hash"
LABEL_REPLICA = "agora.replica"
LABEL_REPLICAS = "agora.replicas"
LABEL_CPUS = "agora.cpus"
LABEL_MEMORY = "agora.memory"
RESERVED_LABEL_PREFIXES = ("agora.", "com.docker.")

DEPLOYMENT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
NODE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,30}[A-Za-z0-9])?$")
# Volumes, secrets and built images: lower case, so that image repositories accept them too.
OBJECT = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?$")


def check_deployment(deployment: str) -> str:
    if not isinstance(deployment, str) or not DEPLOYMENT.match(deployment):
        raise InvalidSpec(
            f"Deployment id {deployment!r} cannot name Docker objects: use 1 to 24 lower-case letters, digits "
            "and hyphens, not starting or ending with a hyphen."
        )
    return deployment


def check_object_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not OBJECT.match(name):
        raise InvalidSpec(
            f"{kind.capitalize()} name {name!r} is not valid: use 1 to 32 lower-case letters, digits, _ and -, "
            "starting and ending with a letter or digit."
        )
    return name


def network(deployment: str) -> str:
    return f"{PREFIX}-{deployment}-net"


def volume(deployment: str, name: str) -> str:
    return f"{PREFIX}-{deployment}-{name}"


def secret(deployment: str, name: str, digest: str) -> str:
    return f"{PREFIX}-{deployment}-{name}-{digest[:12]}"


def service(deployment: str, node: str) -> str:
    return f"{PREFIX}-{deployment}-{node}"


def container(deployment: str, node: str, replica: int) -> str:
    return f"{PREFIX}-{deployment}-{node}-{replica}"


def image(deployment: str, name: str, digest: str) -> str:
    return f"{PREFIX}-{deployment}-{name}:{digest[:12]}"


def labels(deployment: str, kind: str, **extra: str) -> dict[str, str]:
    return {LABEL_DEPLOYMENT: deployment, LABEL_KIND: kind, **extra}


def deployment_filter(deployment: str, *more: str) -> dict[str, list[str]]:
    """Docker's `filters` argument for objects labelled with the deployment (and `more` label=value terms)."""
    return {"label": [f"{LABEL_DEPLOYMENT}={deployment}", *more]}
