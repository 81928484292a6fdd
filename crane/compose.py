"""Compose export: a deployment's Docker objects as a compose file for `docker stack deploy -c`.

    text = export_compose(target, "d42")

Read from what the target runs (swarm services, or engine containers), not from
the template: the export is what a subscriber has, with the values their inputs
gave. Services keep their node names, so they still reach each other by name on
the stack's overlay network; ports stay in host mode with DNS round robin (the
setup Agora uses where there is no IPVS), with the host ports Agora published.
Secret values never leave the target: the file names a `./secrets/<name>` file
the subscriber fills in. Agora's own labels are left out.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors  # type: ignore[import-untyped]
import yaml

from crane import names, targets
from crane.errors import CraneError, docker_errors
from crane.models import Target
from crane.specs import Kind

NS = 1_000_000_000
NETWORK = "private"  # the deployment's network, as the export names it
SECRETS_FOLDER = "./secrets"
_MAX_SECRET_ARCHIVE = 64 * 1024 * 1024  # what is read back from an engine container's /run/secrets


class DeploymentNotFound(CraneError):
    code = "deployment_not_found"
    http_status = 404


@dataclass(frozen=True)
class _Service:
    """One node as the export writes it: compose keys, in the order a person reads them."""

    name: str
    definition: dict[str, Any]
    secrets: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Objects:
    services: tuple[_Service, ...]
    volumes: Mapping[str, str] = field(default_factory=dict)  # Docker name → the deployment's name
    secrets: Mapping[str, str] = field(default_factory=dict)  # Docker name → the deployment's name
    built_images: tuple[str, ...] = ()


def export_compose(target: Target, deployment: str) -> str:
    """The deployment as compose specification YAML; DeploymentNotFound when the target has nothing of it."""
    names.check_deployment(deployment)
    client = targets.client_for(target)
    with docker_errors(target.name, f"read deployment {deployment}"):
        objects = _read(client, target, deployment)
    if not objects.services and not objects.volumes and not objects.secrets:
        raise DeploymentNotFound(
            f'Target "{target.name}" has no services, volumes or secrets of deployment {deployment}; check the '
            "deployment id and the target."
        )
    return _render(target, deployment, objects)


def _read(client: Any, target: Target, deployment: str) -> _Objects:
    selector = names.deployment_filter(deployment)
    volumes = {
        v["Name"]: (v.get("Labels") or {}).get(names.LABEL_NAME) or _short(deployment, v["Name"])
        for v in client.api.volumes(filters=selector).get("Volumes") or []
    }
    images = client.api.images(filters={"label": f"{names.LABEL_DEPLOYMENT}={deployment}"})
    built = tuple(sorted(tag for image in images for tag in image.get("RepoTags") or []))
    if target.mode == Target.Mode.SWARM:
        secrets = {
            s["Spec"]["Name"]: (s["Spec"].get("Labels") or {}).get(names.LABEL_NAME) or s["Spec"]["Name"]
            for s in client.api.secrets(filters=selector)
        }
        found = client.api.services(filters=names.deployment_filter(deployment, f"{names.LABEL_KIND}={Kind.SERVICE}"))
        services = [_swarm_service(s, deployment, volumes, secrets) for s in found]
    else:
        holders = client.api.containers(
            all=True, filters=names.deployment_filter(deployment, f"{names.LABEL_KIND}={Kind.SECRET}")
        )
        # An engine secret lives in a holder container labelled with its name and the hash of its content.
        by_hash = {
            (h.get("Labels") or {}).get(names.LABEL_HASH, ""): (h.get("Labels") or {}).get(names.LABEL_NAME, "")
            for h in holders
        }
        secrets = {h["Names"][0].lstrip("/"): (h.get("Labels") or {}).get(names.LABEL_NAME, "") for h in holders}
        found = client.api.containers(
            all=True, filters=names.deployment_filter(deployment, f"{names.LABEL_KIND}={Kind.SERVICE}")
        )
        services = _engine_services(client, found, deployment, volumes, by_hash)
    return _Objects(tuple(sorted(services, key=lambda s: s.name)), volumes, secrets, built)


def _short(deployment: str, docker_name: str) -> str:
    return docker_name.removeprefix(names.volume(deployment, ""))


# --- swarm services


def _swarm_service(
    service: dict[str, Any], deployment: str, volumes: Mapping[str, str], secrets: Mapping[str, str]
) -> _Service:
    spec = service["Spec"]
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    node = (spec.get("Labels") or {}).get(names.LABEL_NODE) or spec["Name"].removeprefix(names.service(deployment, ""))
    definition: dict[str, Any] = {"image": container.get("Image", "")}
    if container.get("Command"):
        definition["entrypoint"] = list(container["Command"])
    if container.get("Args"):
        definition["command"] = list(container["Args"])
    environment = _environment(container.get("Env") or [])
    if environment:
        definition["environment"] = environment
    used_secrets = []
    secret_refs = []
    for ref in container.get("Secrets") or []:
        name = secrets.get(ref.get("SecretName", ""), ref.get("SecretName", ""))
        used_secrets.append(name)
        secret_refs.append({"source": name, "target": (ref.get("File") or {}).get("Name") or name})
    used_volumes = []
    mounts = []
    for mount in container.get("Mounts") or []:
        if mount.get("Type", "volume") != "volume":
            continue
        name = volumes.get(mount.get("Source", ""), _short(deployment, mount.get("Source", "")))
        used_volumes.append(name)
        mounts.append(_volume_mount(name, mount.get("Target", ""), bool(mount.get("ReadOnly"))))
    ports = [
        _port(p.get("TargetPort"), p.get("PublishedPort"), p.get("Protocol", "tcp"))
        for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
    ]
    _options(
        definition,
        user=container.get("User"),
        working_dir=container.get("Dir"),
        read_only=container.get("ReadOnly"),
        init=container.get("Init"),
        stop_signal=container.get("StopSignal"),
        stop_grace_period=container.get("StopGracePeriod"),
        cap_drop=container.get("CapabilityDrop"),
        labels=container.get("Labels"),
        healthcheck=container.get("Healthcheck"),
    )
    _attachments(definition, ports, mounts, secret_refs)
    resources = task.get("Resources") or {}
    limits, reservations = resources.get("Limits") or {}, resources.get("Reservations") or {}
    mode = spec.get("Mode") or {}
    update = spec.get("UpdateConfig") or {}
    restart = task.get("RestartPolicy") or {}
    definition["deploy"] = _deploy(
        replicas=None if "Global" in mode else int((mode.get("Replicated") or {}).get("Replicas", 1)),
        cpus=limits.get("NanoCPUs"),
        memory=limits.get("MemoryBytes"),
        pids=limits.get("Pids"),
        cpu_reservation=reservations.get("NanoCPUs"),
        memory_reservation=reservations.get("MemoryBytes"),
        restart=restart.get("Condition"),
        restart_delay=restart.get("Delay"),
        update=update,
    )
    return _Service(node, definition, tuple(used_secrets), tuple(used_volumes))


# --- engine containers


def _engine_services(
    client: Any,
    containers: Iterable[dict[str, Any]],
    deployment: str,
    volumes: Mapping[str, str],
    secrets_by_hash: Mapping[str, str],
) -> list[_Service]:
    by_node: dict[str, list[dict[str, Any]]] = {}
    for item in containers:
        by_node.setdefault((item.get("Labels") or {}).get(names.LABEL_NODE, ""), []).append(item)
    result = []
    for node, members in by_node.items():
        # Replicas of a node share one definition; the first replica stands for all.
        first = min(members, key=lambda c: int((c.get("Labels") or {}).get(names.LABEL_REPLICA, "0") or 0))
        replicas = int((first.get("Labels") or {}).get(names.LABEL_REPLICAS, len(members)))
        result.append(_engine_service(client, node, first["Id"], replicas, deployment, volumes, secrets_by_hash))
    return result


def _engine_service(
    client: Any,
    node: str,
    container_id: str,
    replicas: int,
    deployment: str,
    volumes: Mapping[str, str],
    secrets_by_hash: Mapping[str, str],
) -> _Service:
    info = client.api.inspect_container(container_id)
    config, host = info.get("Config") or {}, info.get("HostConfig") or {}
    # Docker merges the image's settings into the container's: keep only what differs from the image.
    image = _image_config(client, info.get("Image", ""))
    definition: dict[str, Any] = {"image": config.get("Image", "")}
    entrypoint_changed = (config.get("Entrypoint") or None) != (image.get("Entrypoint") or None)
    if entrypoint_changed and config.get("Entrypoint"):
        definition["entrypoint"] = list(config["Entrypoint"])
    if config.get("Cmd") and (entrypoint_changed or config.get("Cmd") != image.get("Cmd")):
        definition["command"] = list(config["Cmd"])
    image_env = set(image.get("Env") or [])
    environment = _environment([e for e in config.get("Env") or [] if e not in image_env])
    if environment:
        definition["environment"] = environment
    image_labels = image.get("Labels") or {}
    used_volumes = []
    mounts = []
    for mount in host.get("Mounts") or []:
        if mount.get("Type", "volume") != "volume" or mount.get("Source") not in volumes:
            continue
        name = volumes[mount["Source"]]
        used_volumes.append(name)
        mounts.append(_volume_mount(name, mount.get("Target", ""), bool(mount.get("ReadOnly"))))
    secret_refs = [
        {"source": name, "target": file} for file, name in _engine_secrets(client, container_id, secrets_by_hash)
    ]
    ports = []
    for key, bindings in sorted((host.get("PortBindings") or {}).items()):
        number, _, protocol = key.partition("/")
        for binding in bindings or []:
            ports.append(_port(int(number), int(binding.get("HostPort") or 0) or None, protocol or "tcp"))
    health = config.get("Healthcheck")
    _options(
        definition,
        user=config.get("User") if config.get("User") != image.get("User") else None,
        working_dir=config.get("WorkingDir") if config.get("WorkingDir") != image.get("WorkingDir") else None,
        read_only=host.get("ReadonlyRootfs"),
        init=host.get("Init"),
        stop_signal=config.get("StopSignal") if config.get("StopSignal") != image.get("StopSignal") else None,
        stop_grace_period=int(config["StopTimeout"]) * NS if config.get("StopTimeout") is not None else None,
        cap_drop=host.get("CapDrop"),
        labels={k: v for k, v in (config.get("Labels") or {}).items() if image_labels.get(k) != v},
        healthcheck=health if health != image.get("Healthcheck") else None,
    )
    _attachments(definition, ports, mounts, secret_refs)
    restart = (host.get("RestartPolicy") or {}).get("Name")
    definition["deploy"] = _deploy(
        replicas=replicas,
        cpus=host.get("NanoCpus"),
        memory=host.get("Memory"),
        pids=host.get("PidsLimit"),
        cpu_reservation=None,
        memory_reservation=host.get("MemoryReservation"),
        restart="any" if restart in ("always", "unless-stopped") else restart or None,
        restart_delay=None,
        update={},
    )
    return _Service(node, definition, tuple(ref["source"] for ref in secret_refs), tuple(used_volumes))


def _image_config(client: Any, image_id: str) -> dict[str, Any]:
    try:
        return dict(client.api.inspect_image(image_id).get("Config") or {})
    except docker.errors.NotFound:
        return {}


def _engine_secrets(client: Any, container_id: str, by_hash: Mapping[str, str]) -> list[tuple[str, str]]:
    """(file, secret) for each file in the container's /run/secrets, told apart by the hash of its content.

    Engine containers get copies of the secrets, and no record of which; the holders carry the hash of
    what they hold. The content is only hashed here, never kept or returned.
    """
    if not by_hash:
        return []
    try:
        stream, _ = client.api.get_archive(container_id, "/run/secrets")
    except docker.errors.NotFound:
        return []
    data = b""
    for chunk in stream:
        data += chunk
        if len(data) > _MAX_SECRET_ARCHIVE:
            return []
    found = []
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            digest = hashlib.sha256(handle.read()).hexdigest() if handle is not None else ""
            name = by_hash.get(digest)
            if name:
                found.append((member.name.rsplit("/", 1)[-1], name))
    return sorted(found)


# --- shared pieces


def _environment(entries: Iterable[str]) -> dict[str, str]:
    result = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        result[key] = value
    return dict(sorted(result.items()))


def _port(target: Any, published: Any, protocol: str) -> dict[str, Any]:
    port: dict[str, Any] = {"target": int(target)}
    if published:
        port["published"] = int(published)
    port["protocol"] = protocol or "tcp"
    port["mode"] = "host"  # no routing mesh: the port is bound on the node that runs the task
    return port


def _volume_mount(name: str, path: str, read_only: bool) -> dict[str, Any]:
    mount: dict[str, Any] = {"type": "volume", "source": name, "target": path}
    if read_only:
        mount["read_only"] = True
    return mount


def _duration(nanos: int) -> str:
    for unit, scale in (("h", 3600 * NS), ("m", 60 * NS), ("s", NS), ("ms", NS // 1000), ("us", 1000)):
        if nanos and nanos % scale == 0:
            return f"{nanos // scale}{unit}"
    return f"{nanos}ns"


def _size(size: int) -> str:
    for unit, scale in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def _options(
    definition: dict[str, Any],
    *,
    user: Any,
    working_dir: Any,
    read_only: Any,
    init: Any,
    stop_signal: Any,
    stop_grace_period: Any,
    cap_drop: Any,
    labels: Any,
    healthcheck: Any,
) -> None:
    if user:
        definition["user"] = user
    if working_dir:
        definition["working_dir"] = working_dir
    if read_only:
        definition["read_only"] = True
    if init:
        definition["init"] = True
    if stop_signal:
        definition["stop_signal"] = stop_signal
    if stop_grace_period:
        definition["stop_grace_period"] = _duration(int(stop_grace_period))
    if cap_drop:
        definition["cap_drop"] = list(cap_drop)
    kept = {k: v for k, v in (labels or {}).items() if not str(k).lower().startswith(names.RESERVED_LABEL_PREFIXES)}
    if kept:
        definition["labels"] = dict(sorted(kept.items()))
    check = _healthcheck(healthcheck)
    if check is not None:
        definition["healthcheck"] = check


def _healthcheck(health: Any) -> dict[str, Any] | None:
    if not isinstance(health, dict) or not health.get("Test"):
        return None
    test = list(health["Test"])
    if test == ["NONE"]:
        return {"disable": True}
    check: dict[str, Any] = {"test": test}
    for key, name in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period")):
        if health.get(key):
            check[name] = _duration(int(health[key]))
    if health.get("Retries"):
        check["retries"] = int(health["Retries"])
    return check


def _attachments(
    definition: dict[str, Any], ports: list[dict[str, Any]], mounts: list[dict[str, Any]], secrets: list[dict[str, str]]
) -> None:
    if ports:
        definition["ports"] = ports
    if mounts:
        definition["volumes"] = mounts
    if secrets:
        definition["secrets"] = sorted(secrets, key=lambda s: (s["source"], s["target"]))
    definition["networks"] = [NETWORK]


def _deploy(
    *,
    replicas: int | None,
    cpus: Any,
    memory: Any,
    pids: Any,
    cpu_reservation: Any,
    memory_reservation: Any,
    restart: Any,
    restart_delay: Any,
    update: Mapping[str, Any],
) -> dict[str, Any]:
    deploy: dict[str, Any] = {"mode": "global"} if replicas is None else {"replicas": replicas}
    # No IPVS where Agora runs: no virtual IPs, so services are found by DNS round robin.
    deploy["endpoint_mode"] = "dnsrr"
    limits: dict[str, Any] = {}
    if cpus:
        limits["cpus"] = f"{int(cpus) / NS:g}"
    if memory:
        limits["memory"] = _size(int(memory))
    if pids and int(pids) > 0:
        limits["pids"] = int(pids)
    reservations: dict[str, Any] = {}
    if cpu_reservation:
        reservations["cpus"] = f"{int(cpu_reservation) / NS:g}"
    if memory_reservation:
        reservations["memory"] = _size(int(memory_reservation))
    resources = {k: v for k, v in (("limits", limits), ("reservations", reservations)) if v}
    if resources:
        deploy["resources"] = resources
    if restart:
        policy: dict[str, Any] = {"condition": restart}
        if restart_delay:
            policy["delay"] = _duration(int(restart_delay))
        deploy["restart_policy"] = policy
    if update.get("Parallelism") or update.get("Order"):
        deploy["update_config"] = {
            k: v for k, v in (("parallelism", update.get("Parallelism")), ("order", update.get("Order"))) if v
        }
    return deploy


# --- the file


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _escaped(value: Any) -> Any:
    """Compose interpolates $ in every value; a literal $ is written $$."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _render(target: Target, deployment: str, objects: _Objects) -> str:
    volume_names = sorted(set(objects.volumes.values()) | {v for s in objects.services for v in s.volumes})
    secret_names = sorted({n for n in objects.secrets.values() if n} | {n for s in objects.services for n in s.secrets})
    document: dict[str, Any] = {
        "services": {s.name: _escaped(s.definition) for s in objects.services},
        "networks": {NETWORK: {"driver": "overlay"}},
    }
    if volume_names:
        document["volumes"] = {name: {} for name in volume_names}
    if secret_names:
        document["secrets"] = {name: {"file": f"{SECRETS_FOLDER}/{name}"} for name in secret_names}
    header = [
        f"# Agora deployment {deployment} on target {target.name}, as a compose file.",
        "# Deploy it on a Docker swarm: docker stack deploy -c docker-compose.yml NAME",
        "# Ports are published in host mode on the host ports the deployment had; change them if those are taken.",
    ]
    if secret_names:
        header += [
            "# Secret values are not exported: before deploying, write each secret's value into its file",
            f"# ({', '.join(f'{SECRETS_FOLDER}/{n}' for n in secret_names)}).",
        ]
    if objects.built_images:
        header += [
            "# Agora built these images on the target; push them to a registry the swarm can reach:",
            *(f"#   {image}" for image in objects.built_images),
        ]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    return "\n".join(header) + "\n" + body
