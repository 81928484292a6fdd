"""The Docker driver: converging calls that make a target hold what a deployment needs.

Every call is keyed by labels (`agora.deployment`, `agora.node`) and names
(`agora-<deployment>-...`), so calling it again finds what the first call
made. What Agora computed for an object is hashed into its `agora.spec-hash`
label: an ensure call that finds the same hash changes nothing and says
"unchanged"; a different hash updates the object (swarm services in place,
engine containers by replacing them one replica at a time).

Swarm targets get services (dnsrr endpoints, host-mode ports, because these
hosts have no IPVS); engine targets get the equivalent plain containers. Only
the docker SDK is used, never the docker CLI. Every spec passes
crane/policy.py before the first Docker call of an ensure.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import re
import tarfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]

from crane import conf, names, policy, services, targets
from crane.errors import (
    CapacityExceeded,
    DockerRefused,
    HealthTimeout,
    ImageNotFound,
    InvalidSpec,
    NameConflict,
    NodeUnhealthy,
    PolicyViolation,
    docker_errors,
)
from crane.models import Target
from crane.specs import (
    Action,
    BuildContext,
    ContainerStats,
    DeploymentObjects,
    Endpoint,
    Ensured,
    Kind,
    LogLine,
    NodeStatus,
    ServiceSpec,
    UpdateOrder,
)

logger = logging.getLogger(__name__)

NS = 1_000_000_000  # Docker counts durations and CPUs in nanos
MAX_SECRET_BYTES = 500 * 1024  # swarm's limit, applied in both modes
# A node whose tasks failed this often (per replica) will not come up by waiting longer.
FAILURES_BEFORE_GIVING_UP = 3
# Without a health check, "running" is only believed after this long: a crashing command runs for an instant.
SETTLE_SECONDS = 1.0
# A wait polls quickly at first, then this often: what a deployment waits beyond its tasks' readiness.
WAIT_POLL_SECONDS = 0.25
SECRET_HOLDER_IMAGE = "agora/secret-holder:1"  # noqa: S105 - an image name
_T = TypeVar("_T")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _swarm(target: Target) -> bool:
    return target.mode == Target.Mode.SWARM


def _not_found(call: Callable[[], _T]) -> _T | None:
    try:
        return call()
    except docker.errors.NotFound:
        return None


def _conflict(what: str, target: Target, deployment: str) -> NameConflict:
    return NameConflict(
        f'Target "{target.name}": {what} exists but was not made by Agora for deployment {deployment}; '
        "rename or remove it, Agora will not adopt it."
    )


# --- networks, volumes, secrets


def ensure_network(target: Target, deployment: str) -> Ensured:
    """The deployment's private network: overlay (attachable) on swarm, bridge on engine."""
    names.check_deployment(deployment)
    name = names.network(deployment)
    driver = "overlay" if _swarm(target) else "bridge"
    labels = names.labels(deployment, Kind.NETWORK)
    digest = _digest({"driver": driver, "attachable": _swarm(target), "labels": labels})
    client = targets.client_for(target)
    with docker_errors(target.name, f"create network {name}"):
        for _ in range(2):
            current = _not_found(lambda: client.api.inspect_network(name))
            if current is not None:
                found = current.get("Labels") or {}
                if found.get(names.LABEL_DEPLOYMENT) != deployment:
                    raise _conflict(f"network {name}", target, deployment)
                if found.get(names.LABEL_HASH) != digest:
                    raise NameConflict(
                        f'Target "{target.name}": network {name} exists with other settings (was the target\'s mode '
                        "changed?); remove the deployment and deploy it again."
                    )
                return Ensured(Kind.NETWORK, name, current["Id"], Action.UNCHANGED)
            try:
                created = client.api.create_network(
                    name,
                    driver=driver,
                    attachable=_swarm(target) or None,
                    check_duplicate=True,
                    labels={**labels, names.LABEL_HASH: digest},
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                continue  # created concurrently: inspect it
            return Ensured(Kind.NETWORK, name, created["Id"], Action.CREATED)
    raise NameConflict(f'Target "{target.name}": network {name} could not be created or found.')


def ensure_volume(target: Target, deployment: str, name: str) -> Ensured:
    """A named volume of the deployment (local driver), `agora-<deployment>-<name>`."""
    names.check_deployment(deployment)
    names.check_object_name("volume", name)
    docker_name = names.volume(deployment, name)
    labels = names.labels(deployment, Kind.VOLUME, **{names.LABEL_NAME: name})
    client = targets.client_for(target)
    with docker_errors(target.name, f"create volume {docker_name}"):
        current = _not_found(lambda: client.api.inspect_volume(docker_name))
        if current is not None:
            if (current.get("Labels") or {}).get(names.LABEL_DEPLOYMENT) != deployment:
                raise _conflict(f"volume {docker_name}", target, deployment)
            return Ensured(Kind.VOLUME, docker_name, docker_name, Action.UNCHANGED)
        client.api.create_volume(docker_name, driver="local", labels=labels)
    return Ensured(Kind.VOLUME, docker_name, docker_name, Action.CREATED)


def ensure_secret(target: Target, deployment: str, name: str, data: bytes) -> Ensured:
    """A secret of the deployment, named after its content: `agora-<deployment>-<name>-<hash>`.

    Swarm secrets cannot change, so new content is a new secret; services pick it up when
    ensure_service runs next, and versions no service uses any more are removed. Engine
    targets have no secrets: the content waits in a container that never runs, and is
    copied into the node's containers before they start.
    """
    names.check_deployment(deployment)
    names.check_object_name("secret", name)
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_SECRET_BYTES:
        raise InvalidSpec(f'Secret "{name}" must hold 1 byte to {MAX_SECRET_BYTES // 1024} KiB.')
    digest = hashlib.sha256(data).hexdigest()
    docker_name = names.secret(deployment, name, digest)
    if len(docker_name) > 64:
        raise InvalidSpec(f'Secret "{name}" of deployment {deployment}: the Docker name {docker_name} is too long.')
    labels = names.labels(deployment, Kind.SECRET, **{names.LABEL_NAME: name, names.LABEL_HASH: digest})
    client = targets.client_for(target)
    with docker_errors(target.name, f"create secret {docker_name}"):
        versions = _secret_versions(client, target, deployment, name)
        current = next((v for v in versions if v.docker_name == docker_name), None)
        if current is not None:
            action, object_id = Action.UNCHANGED, current.id
        elif _swarm(target):
            object_id = client.api.create_secret(docker_name, data, labels=labels)["ID"]
            action = Action.CREATED
        else:
            object_id = _create_secret_holder(client, docker_name, labels, data)
            action = Action.CREATED
        _prune_secrets(client, target, (v for v in versions if v.docker_name != docker_name))
    return Ensured(Kind.SECRET, docker_name, object_id, action)


@dataclass(frozen=True)
class _SecretVersion:
    name: str
    docker_name: str
    id: str
    created: str


def _secret_versions(client: Any, target: Target, deployment: str, name: str | None = None) -> list[_SecretVersion]:
    terms = [f"{names.LABEL_KIND}={Kind.SECRET}"] + ([f"{names.LABEL_NAME}={name}"] if name else [])
    selector = names.deployment_filter(deployment, *terms)
    found: list[_SecretVersion] = []
    if _swarm(target):
        for item in client.api.secrets(filters=selector):
            spec = item.get("Spec") or {}
            labels = spec.get("Labels") or {}
            found.append(_SecretVersion(labels.get(names.LABEL_NAME, ""), spec["Name"], item["ID"], item["CreatedAt"]))
    else:
        for item in client.api.containers(all=True, filters=selector):
            labels = item.get("Labels") or {}
            found.append(
                _SecretVersion(
                    labels.get(names.LABEL_NAME, ""), item["Names"][0].lstrip("/"), item["Id"], item["Created"]
                )
            )
    return found


def _prune_secrets(client: Any, target: Target, versions: Iterable[_SecretVersion]) -> None:
    for version in versions:
        try:
            if _swarm(target):
                client.api.remove_secret(version.id)
            else:
                client.api.remove_container(version.id, force=True)
        except docker.errors.APIError as exc:
            # Still used by a service: it goes when the service has moved to the new version.
            logger.debug("secret %s kept: %s", version.docker_name, exc)


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar of {path: (content, mode)}, with the parent folders it needs."""
    buffer = io.BytesIO()
    folders: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, (content, mode) in files.items():
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    archive.addfile(info)
                    folders.add(folder)
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _ensure_holder_image(client: Any) -> None:
    """An empty image: secret holders are containers that are created, never started."""
    if _not_found(lambda: client.api.inspect_image(SECRET_HOLDER_IMAGE)) is None:
        repository, tag = SECRET_HOLDER_IMAGE.split(":")
        client.api.import_image_from_data(_tar({}), repository=repository, tag=tag)


def _create_secret_holder(client: Any, docker_name: str, labels: dict[str, str], data: bytes) -> str:
    _ensure_holder_image(client)
    holder = client.api.create_container(
        SECRET_HOLDER_IMAGE, command=["/never-started"], name=docker_name, labels=labels, network_disabled=True
    )["Id"]
    client.api.put_archive(holder, "/", _tar({"secret": (data, 0o400)}))
    return str(holder)


def _read_secret_holder(client: Any, holder: str) -> bytes:
    stream, _ = client.api.get_archive(holder, "/secret")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile("secret")
        if member is None:
            raise InvalidSpec(f"Secret holder {holder[:12]} is damaged; ensure the secret again.")
        return member.read()


# --- images


def ensure_image(target: Target, deployment: str, image: str, *, build: BuildContext | None = None) -> Ensured:
    """An image present on the target.

    Without `build`, `image` is a reference: present locally, or pulled. With `build`,
    `image` is the name of an image of the deployment, built from the directory (which the
    caller has extracted) and tagged `agora-<deployment>-<image>:<content hash>`, so that
    the same content is built once.
    """
    names.check_deployment(deployment)
    if build is None:
        if not policy.IMAGE_REFERENCE.match(image):
            raise InvalidSpec(f"{image!r} is not an image reference such as registry.example.org/team/app:1.2")
        return _ensure_pulled(target, image)
    names.check_object_name("image", image)
    context, dockerfile = _build_paths(image, build)
    tag = names.image(deployment, image, _context_digest(context))
    client = targets.client_for(target)
    with docker_errors(target.name, f"look for image {tag}"):
        current = _not_found(lambda: client.api.inspect_image(tag))
    if current is not None:
        return Ensured(Kind.IMAGE, tag, current["Id"], Action.UNCHANGED)
    builder = targets.client_for(target, timeout=conf.build_timeout())
    lines: list[str] = []
    with docker_errors(target.name, f"build image {tag}"):
        for chunk in builder.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            labels=names.labels(deployment, Kind.IMAGE, **{names.LABEL_NAME: image}),
            decode=True,
        ):
            if "error" in chunk:
                output = "".join(lines[-5:]).strip()
                raise InvalidSpec(
                    f'Target "{target.name}": building image {image} failed: {chunk["error"].strip()}'
                    + (f"\n{output}" if output else "")
                )
            if "stream" in chunk:
                lines.append(str(chunk["stream"]))
        built = client.api.inspect_image(tag)
    return Ensured(Kind.IMAGE, tag, built["Id"], Action.CREATED)


def _ensure_pulled(target: Target, reference: str) -> Ensured:
    client = targets.client_for(target)
    with docker_errors(target.name, f"look for image {reference}"):
        current = _not_found(lambda: client.api.inspect_image(reference))
    if current is not None:
        return Ensured(Kind.IMAGE, reference, current["Id"], Action.UNCHANGED)
    repository, tag = docker.utils.parse_repository_tag(reference)
    puller = targets.client_for(target, timeout=conf.build_timeout())
    with docker_errors(target.name, f"pull image {reference}"):
        for chunk in puller.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in chunk:
                raise ImageNotFound(
                    f'Target "{target.name}" could not pull image {reference}: {chunk["error"].strip()}. Check the '
                    "reference, or that the target can reach its registry."
                )
        pulled = client.api.inspect_image(reference)
    return Ensured(Kind.IMAGE, reference, pulled["Id"], Action.CREATED)


def _build_paths(image: str, build: BuildContext) -> tuple[Path, str]:
    try:
        context = Path(build.directory).resolve(strict=True)
    except OSError:
        raise InvalidSpec(f'Image "{image}": build context {build.directory} does not exist.') from None
    if not context.is_dir():
        raise InvalidSpec(f'Image "{image}": build context {build.directory} is not a directory.')
    dockerfile = (context / build.dockerfile).resolve()
    if not dockerfile.is_relative_to(context):
        raise PolicyViolation(
            f'Image "{image}": the Dockerfile {build.dockerfile!r} is outside its build context.',
            node=image,
            setting="dockerfile",
        )
    if not dockerfile.is_file():
        raise InvalidSpec(f'Image "{image}": there is no Dockerfile {build.dockerfile!r} in the build context.')
    return context, dockerfile.relative_to(context).as_posix()


def _context_digest(context: Path) -> str:
    """What the build sees: every path, its kind and mode, and its content (or link target)."""
    digest = hashlib.sha256()
    for folder, subfolders, files in os.walk(context):
        subfolders.sort()
        for entry in sorted(files) + subfolders:
            path = Path(folder) / entry
            relative = path.relative_to(context).as_posix()
            stat = path.lstat()
            digest.update(f"{relative}\0{stat.st_mode:o}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


# --- services


def ensure_service(target: Target, deployment: str, spec: ServiceSpec) -> Ensured:
    """One node of the deployment running as `spec` says (see ensure_services)."""
    return ensure_services(target, deployment, [spec])[0]


def ensure_services(
    target: Target, deployment: str, specs: Sequence[ServiceSpec], *, max_workers: int = 8
) -> tuple[Ensured, ...]:
    """Nodes of the deployment running as their specs say, created or updated concurrently.

    Before Docker sees anything: every spec passes the policy (limits filled in), published
    ports are allocated, and the secrets and volumes the specs name must belong to the
    deployment. The deployment's network must exist (ensure_network).
    """
    names.check_deployment(deployment)
    checked = [policy.check_service(spec, target=target, deployment=deployment) for spec in specs]
    duplicates = {s.name for s in checked if [c.name for c in checked].count(s.name) > 1}
    if duplicates:
        raise InvalidSpec(f"Deployment {deployment}: nodes {sorted(duplicates)} are given twice.")
    if not _swarm(target):
        for spec in checked:
            if spec.replicas > 1 and spec.ports:
                raise InvalidSpec(
                    f'Node "{spec.name}": an engine target publishes a port for one container only; run one '
                    "replica, or deploy to a swarm target."
                )
    client = targets.client_for(target)
    with docker_errors(target.name, f"prepare the services of deployment {deployment}"):
        _check_capacity(client, target, deployment, checked)
        secrets = _resolve_secrets(client, target, deployment, checked)
        _check_volumes(client, deployment, checked)
    endpoints = services.ports_allocate(
        target=target, deployment=deployment, requests={s.name: s.ports for s in checked}
    )
    api = targets.api_version(client)

    def one(spec: ServiceSpec) -> Ensured:
        if _swarm(target):
            return _ensure_swarm_service(client, target, deployment, spec, endpoints[spec.name], secrets, api)
        return _ensure_engine_node(client, target, deployment, spec, endpoints[spec.name], secrets)

    results = _concurrently(one, checked, max_workers)
    for spec in checked:
        services.ports_release(target=target, deployment=deployment, node=spec.name, keep=spec.ports)
    return results


def _concurrently(
    work: Callable[[ServiceSpec], Ensured], specs: Sequence[ServiceSpec], workers: int
) -> tuple[Ensured, ...]:
    if len(specs) <= 1 or workers <= 1:
        return tuple(work(spec) for spec in specs)
    with ThreadPoolExecutor(max_workers=min(workers, len(specs)), thread_name_prefix="crane") as pool:
        futures = [pool.submit(work, spec) for spec in specs]
        errors = [f.exception() for f in futures]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return tuple(f.result() for f in futures)


def used_capacity(
    client: Any, target: Target, *, excluding: Collection[tuple[str, str]] = (), swarm: bool | None = None
) -> tuple[int, float, int]:
    """Agora's services on the target and what their limits take: (services, CPUs, bytes of memory).
    `excluding` names (deployment, node) pairs to leave out, such as the ones about to be replaced;
    `swarm` False counts the daemon's own containers (a swarm endpoint that is not a manager)."""
    count, cpus, memory = 0, 0.0, 0
    if _swarm(target) if swarm is None else swarm:
        for item in client.api.services(filters={"label": [f"{names.LABEL_TARGET}={target.name}"]}):
            spec = item["Spec"]
            labels = spec.get("Labels") or {}
            if (labels.get(names.LABEL_DEPLOYMENT), labels.get(names.LABEL_NODE)) in excluding:
                continue
            replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
            limits = (spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}
            count += 1
            cpus += replicas * limits.get("NanoCPUs", 0) / NS
            memory += replicas * int(limits.get("MemoryBytes", 0))
    else:
        seen: set[tuple[str, str]] = set()
        for item in client.api.containers(all=True, filters={"label": [f"{names.LABEL_TARGET}={target.name}"]}):
            labels = item.get("Labels") or {}
            key = (labels.get(names.LABEL_DEPLOYMENT, ""), labels.get(names.LABEL_NODE, ""))
            if key in excluding:
                continue
            if key not in seen:
                seen.add(key)
                count += 1
            cpus += float(labels.get(names.LABEL_CPUS, 0))
            memory += int(labels.get(names.LABEL_MEMORY, 0))
    return count, cpus, memory


def _check_capacity(client: Any, target: Target, deployment: str, specs: Sequence[ServiceSpec]) -> None:
    """The target's capacity (max services, CPUs, memory) over every Agora service on it."""
    if target.max_services is None and target.max_cpus is None and target.max_memory is None:
        return
    count, cpus, memory = used_capacity(client, target, excluding={(deployment, s.name) for s in specs})
    count += len(specs)
    cpus += sum((s.cpu_limit or 0) * s.replicas for s in specs)
    memory += sum((s.memory_limit or 0) * s.replicas for s in specs)
    for limit, used, what in (
        (target.max_services, count, "services"),
        (target.max_cpus, cpus, "CPUs"),
        (target.max_memory, memory, "bytes of memory"),
    ):
        if limit is not None and used > limit:
            raise CapacityExceeded(
                f'Target "{target.name}" has room for {limit:g} {what}; deployment {deployment} would bring it to '
                f"{used:g}. Choose another target, or raise the target's capacity."
            )


@dataclass(frozen=True)
class _SecretUse:
    file: str
    docker_name: str
    id: str


def _resolve_secrets(
    client: Any, target: Target, deployment: str, specs: Sequence[ServiceSpec]
) -> dict[str, tuple[_SecretUse, ...]]:
    """Each node's secrets as the newest version of each named secret of the deployment."""
    if not any(spec.secrets for spec in specs):
        return {}
    newest: dict[str, _SecretVersion] = {}
    for version in sorted(_secret_versions(client, target, deployment), key=lambda v: str(v.created)):
        newest[version.name] = version
    result: dict[str, tuple[_SecretUse, ...]] = {}
    for spec in specs:
        uses = []
        for mount in spec.secrets:
            chosen = newest.get(mount.secret)
            if chosen is None:
                raise PolicyViolation(
                    f'Node "{spec.name}": secrets "{mount.secret}" is not a secret of deployment {deployment} '
                    "(ensure_secret makes it).",
                    node=spec.name,
                    setting="secrets",
                )
            uses.append(_SecretUse(mount.file, chosen.docker_name, chosen.id))
        result[spec.name] = tuple(uses)
    return result


def _check_volumes(client: Any, deployment: str, specs: Sequence[ServiceSpec]) -> None:
    if not any(spec.mounts for spec in specs):
        return
    found = client.api.volumes(filters={"label": f"{names.LABEL_DEPLOYMENT}={deployment}"}).get("Volumes") or []
    present = {v["Name"] for v in found}
    for spec in specs:
        for mount in spec.mounts:
            if names.volume(deployment, mount.volume) not in present:
                raise PolicyViolation(
                    f'Node "{spec.name}": mounts "{mount.volume}" is not a volume of deployment {deployment} '
                    "(ensure_volume makes it).",
                    node=spec.name,
                    setting="mounts",
                )


def _healthcheck(spec: ServiceSpec) -> dict[str, Any] | None:
    check = spec.healthcheck
    if check is None:
        return None
    return {
        "Test": list(check.test),
        "Interval": int(check.interval * NS),
        "Timeout": int(check.timeout * NS),
        "Retries": check.retries,
        "StartPeriod": int(check.start_period * NS),
    }


def _engine_healthcheck(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same check in the spelling docker-py's create_container takes."""
    if health is None:
        return None
    spelling = {"Test": "test", "Interval": "interval", "Timeout": "timeout", "Retries": "retries"}
    return {spelling.get(key, "start_period"): value for key, value in health.items()}


def _swarm_definition(
    target: Target,
    deployment: str,
    spec: ServiceSpec,
    endpoints: Sequence[Endpoint],
    secrets: Sequence[_SecretUse],
    api: tuple[int, int],
) -> dict[str, Any]:
    assert spec.cpu_limit is not None and spec.memory_limit is not None  # filled in by the policy
    options = spec.options
    base = names.labels(deployment, Kind.SERVICE, **{names.LABEL_NODE: spec.name, names.LABEL_TARGET: target.name})
    container_spec = docker.types.ContainerSpec(
        image=spec.image,
        command=list(spec.entrypoint) if spec.entrypoint is not None else None,
        args=list(spec.command) or None,
        env=[f"{key}={value}" for key, value in sorted(spec.environment.items())] or None,
        labels={**spec.labels, **base},
        mounts=[
            docker.types.Mount(
                target=m.path,
                source=names.volume(deployment, m.volume),
                type="volume",
                read_only=m.read_only,
                labels=names.labels(deployment, Kind.VOLUME, **{names.LABEL_NAME: m.volume}),
            )
            for m in spec.mounts
        ]
        or None,
        secrets=[docker.types.SecretReference(s.id, s.docker_name, filename=s.file) for s in secrets] or None,
        user=options.get("user"),
        workdir=options.get("working_dir"),
        read_only=options.get("read_only"),
        init=options.get("init"),
        stop_signal=options.get("stop_signal"),
        stop_grace_period=int(options["stop_grace_period"] * NS) if "stop_grace_period" in options else None,
        cap_drop=list(policy.DROPPED_CAPABILITIES),
    )
    health = _healthcheck(spec)
    if health is not None:
        container_spec["Healthcheck"] = health
    if api >= targets.NO_NEW_PRIVILEGES_API:
        # docker-py's Privileges predates this field; older daemons reject it (see `crane check`).
        container_spec["Privileges"] = {"NoNewPrivileges": True}
    resources = docker.types.Resources(
        cpu_limit=int(spec.cpu_limit * NS),
        mem_limit=spec.memory_limit,
        cpu_reservation=int(spec.cpu_reservation * NS) or None,
        mem_reservation=spec.memory_reservation or None,
    )
    resources["Limits"]["Pids"] = conf.pids_limit()  # API 1.41
    # Workers run the services when there are any; a single-node swarm has only its manager.
    placement = docker.types.Placement(constraints=["node.role==worker"]) if target.swarm_workers else None
    task_template = docker.types.TaskTemplate(
        container_spec,
        resources=resources,
        restart_policy=docker.types.RestartPolicy(condition="any", delay=2 * NS),
        placement=placement,
        networks=[docker.types.NetworkAttachmentConfig(names.network(deployment), aliases=[spec.name])],
    )
    endpoint_spec = docker.types.EndpointSpec(
        mode="dnsrr",
        ports=[
            {"Protocol": e.protocol, "TargetPort": e.target_port, "PublishedPort": e.port, "PublishMode": "host"}
            for e in endpoints
        ],
    )
    # A host port is bound by one task per node: start-first would wait for a port its predecessor holds.
    order = UpdateOrder.STOP_FIRST if endpoints else spec.update_order
    # Tasks carry the digest of what they run, so that wait_healthy counts only tasks of this version.
    container_spec["Labels"][names.LABEL_HASH] = _digest([task_template, endpoint_spec])
    return {
        "name": names.service(deployment, spec.name),
        "task_template": task_template,
        "labels": base,
        "mode": docker.types.ServiceMode("replicated", replicas=spec.replicas),
        "update_config": docker.types.UpdateConfig(
            parallelism=spec.update_parallelism,
            failure_action="rollback",
            # A task with a health check is "running" only once healthy: a short watch after that is enough.
            monitor=(2 if spec.healthcheck else 5) * NS,
            order=str(order),
        ),
        "rollback_config": docker.types.RollbackConfig(
            parallelism=spec.update_parallelism, failure_action="pause", order=str(order)
        ),
        "endpoint_spec": endpoint_spec,
    }


def _ensure_swarm_service(
    client: Any,
    target: Target,
    deployment: str,
    spec: ServiceSpec,
    endpoints: Sequence[Endpoint],
    secrets: dict[str, tuple[_SecretUse, ...]],
    api: tuple[int, int],
) -> Ensured:
    definition = _swarm_definition(target, deployment, spec, endpoints, secrets.get(spec.name, ()), api)
    digest = _digest(definition)
    definition["labels"] = {**definition["labels"], names.LABEL_HASH: digest}
    name = definition["name"]
    with docker_errors(target.name, f"create or update service {name}"):
        for _ in range(2):
            current = _not_found(lambda: client.api.inspect_service(name))
            if current is None:
                try:
                    created = client.api.create_service(**definition)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:
                        raise
                    continue  # created concurrently: compare with it
                return Ensured(Kind.SERVICE, name, created["ID"], Action.CREATED, tuple(endpoints))
            labels = current["Spec"].get("Labels") or {}
            if labels.get(names.LABEL_DEPLOYMENT) != deployment or labels.get(names.LABEL_NODE) != spec.name:
                raise _conflict(f"service {name}", target, deployment)
            if labels.get(names.LABEL_HASH) == digest:
                return Ensured(Kind.SERVICE, name, current["ID"], Action.UNCHANGED, tuple(endpoints))
            client.api.update_service(
                current["ID"], current["Version"]["Index"], fetch_current_spec=False, **definition
            )
            _prune_unused_secrets(client, target, deployment)
            return Ensured(Kind.SERVICE, name, current["ID"], Action.UPDATED, tuple(endpoints))
    raise NameConflict(f'Target "{target.name}": service {name} could not be created or found.')


def _prune_unused_secrets(client: Any, target: Target, deployment: str) -> None:
    """Older versions of a secret go once no service refers to them (Docker refuses otherwise)."""
    versions = _secret_versions(client, target, deployment)
    newest: dict[str, _SecretVersion] = {}
    for version in sorted(versions, key=lambda v: str(v.created)):
        newest[version.name] = version
    _prune_secrets(client, target, (v for v in versions if newest.get(v.name) is not v))


def _engine_definition(
    client: Any,
    target: Target,
    deployment: str,
    spec: ServiceSpec,
    endpoints: Sequence[Endpoint],
    replica: int,
) -> dict[str, Any]:
    assert spec.cpu_limit is not None and spec.memory_limit is not None  # filled in by the policy
    options = spec.options
    network = names.network(deployment)
    labels = {
        **spec.labels,
        **names.labels(
            deployment,
            Kind.SERVICE,
            **{
                names.LABEL_NODE: spec.name,
                names.LABEL_TARGET: target.name,
                names.LABEL_REPLICA: str(replica),
                names.LABEL_REPLICAS: str(spec.replicas),
                names.LABEL_CPUS: f"{spec.cpu_limit:g}",
                names.LABEL_MEMORY: str(spec.memory_limit),
            },
        ),
    }
    host_config = client.api.create_host_config(
        port_bindings={f"{e.target_port}/{e.protocol}": ("0.0.0.0", e.port) for e in endpoints} or None,  # noqa: S104
        nano_cpus=int(spec.cpu_limit * NS),
        mem_limit=spec.memory_limit,
        memswap_limit=spec.memory_limit,  # no swap on top of the limit
        mem_reservation=spec.memory_reservation or None,
        pids_limit=conf.pids_limit(),
        restart_policy={"Name": "unless-stopped"},
        security_opt=["no-new-privileges"],
        cap_drop=list(policy.DROPPED_CAPABILITIES),
        read_only=options.get("read_only"),
        init=options.get("init"),
        mounts=[
            docker.types.Mount(
                target=m.path, source=names.volume(deployment, m.volume), type="volume", read_only=m.read_only
            )
            for m in spec.mounts
        ]
        or None,
        network_mode=network,
    )
    health = _healthcheck(spec)
    return {
        "image": spec.image,
        "command": list(spec.command) or None,
        "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "environment": [f"{key}={value}" for key, value in sorted(spec.environment.items())] or None,
        "labels": labels,
        "name": names.container(deployment, spec.name, replica),
        "host_config": host_config,
        "networking_config": client.api.create_networking_config(
            {network: client.api.create_endpoint_config(aliases=[spec.name])}
        ),
        "healthcheck": _engine_healthcheck(health),
        "user": options.get("user"),
        "working_dir": options.get("working_dir"),
        "stop_signal": options.get("stop_signal"),
        "stop_timeout": int(options["stop_grace_period"]) if "stop_grace_period" in options else None,
        "ports": [(e.target_port, e.protocol) for e in endpoints] or None,
        "detach": True,
    }


def _ensure_engine_node(
    client: Any,
    target: Target,
    deployment: str,
    spec: ServiceSpec,
    endpoints: Sequence[Endpoint],
    secrets: dict[str, tuple[_SecretUse, ...]],
) -> Ensured:
    uses = secrets.get(spec.name, ())
    if uses and spec.options.get("read_only"):
        raise InvalidSpec(
            f'Node "{spec.name}": an engine target copies secrets into the container, which a read-only root '
            "file system forbids; drop read_only or deploy to a swarm target."
        )
    selector = names.deployment_filter(deployment, f"{names.LABEL_NODE}={spec.name}", f"{names.LABEL_KIND}=service")
    service_name = names.service(deployment, spec.name)
    actions: list[Action] = []
    containers: list[str] = []
    with docker_errors(target.name, f"create or replace the containers of node {spec.name}"):
        existing = {c["Names"][0].lstrip("/"): c for c in client.api.containers(all=True, filters=selector)}
        secret_files = {f"run/secrets/{u.file}": (_read_secret_holder(client, u.id), 0o444) for u in uses}
        for replica in range(1, spec.replicas + 1):
            definition = _engine_definition(client, target, deployment, spec, endpoints, replica)
            digest = _digest([definition, [(u.file, u.docker_name) for u in uses]])
            definition["labels"][names.LABEL_HASH] = digest
            name = definition["name"]
            current = existing.pop(name, None)
            if current is not None and (current.get("Labels") or {}).get(names.LABEL_HASH) == digest:
                if current["State"] != "running":
                    client.api.start(current["Id"])
                    actions.append(Action.UPDATED)
                else:
                    actions.append(Action.UNCHANGED)
                containers.append(name)
                continue
            if current is not None:
                # Replicas are replaced one at a time, stop-first: a container's name and host port are its own.
                grace = int(spec.options.get("stop_grace_period", 10))
                client.api.stop(current["Id"], timeout=grace)
                client.api.remove_container(current["Id"], force=True)
            created = client.api.create_container(**definition)["Id"]
            if secret_files:
                client.api.put_archive(created, "/", _tar(secret_files))
            client.api.start(created)
            actions.append(Action.CREATED if current is None else Action.UPDATED)
            containers.append(name)
        for extra in existing.values():
            client.api.remove_container(extra["Id"], force=True)
            actions.append(Action.UPDATED)
    if all(a == Action.UNCHANGED for a in actions):
        action = Action.UNCHANGED
    elif all(a == Action.CREATED for a in actions):
        action = Action.CREATED
    else:
        action = Action.UPDATED
    first = containers[0] if containers else ""
    return Ensured(Kind.SERVICE, service_name, first, action, tuple(endpoints), tuple(containers))


# --- waiting


def wait_healthy(target: Target, deployment: str, node: str, timeout: float = 120.0) -> NodeStatus:
    """Wait until every task (container) of the node runs, and is healthy when it has a health check."""
    return wait_deployment_healthy(target, deployment, [node], timeout=timeout)[0]


def wait_deployment_healthy(
    target: Target, deployment: str, nodes: Sequence[str] | None = None, *, timeout: float = 120.0
) -> tuple[NodeStatus, ...]:
    """wait_healthy for several nodes (all of the deployment's when `nodes` is None) at once.

    Polls quickly at first and then every WAIT_POLL_SECONDS; raises HealthTimeout naming the first node
    that is not ready, with the last error Docker reported for it.
    """
    names.check_deployment(deployment)
    client = targets.client_for(target)
    deadline = time.monotonic() + timeout
    pause = 0.05
    seen: dict[str, float] = {}
    while True:
        with docker_errors(target.name, f"read the state of deployment {deployment}"):
            statuses = _statuses(client, target, deployment, nodes, seen, errors=False)
        if all(s.ready for s in statuses):  # also when the deployment has no service at all
            return statuses
        if time.monotonic() >= deadline:
            break
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, WAIT_POLL_SECONDS)
    with docker_errors(target.name, f"read the state of deployment {deployment}"):
        statuses = _statuses(client, target, deployment, nodes, seen, errors=True)
    late = next((s for s in statuses if not s.ready), None)
    if late is None:
        return statuses
    raise HealthTimeout(
        f'Node "{late.node}" of deployment {deployment} on target "{target.name}": {late.running} of {late.desired} '
        f"tasks running and healthy after {timeout:g} s. Last error: {late.last_error or 'none reported'}",
        node=late.node,
        last_error=late.last_error,
    )


def _statuses(
    client: Any, target: Target, deployment: str, nodes: Sequence[str] | None, seen: dict[str, float], *, errors: bool
) -> tuple[NodeStatus, ...]:
    if _swarm(target):
        return _swarm_statuses(client, deployment, nodes, seen, errors=errors)
    return _engine_statuses(client, deployment, nodes, seen, errors=errors)


def _settled(seen: dict[str, float], key: str, checked: bool) -> bool:
    """Running and proven: by a health check, or by having been seen running for SETTLE_SECONDS."""
    if checked:
        return True
    now = time.monotonic()
    return now - seen.setdefault(key, now) >= SETTLE_SECONDS


def _has_healthcheck(check: dict[str, Any] | None) -> bool:
    return bool(check and check.get("Test") and check["Test"][0] != "NONE")


def _swarm_statuses(
    client: Any, deployment: str, nodes: Sequence[str] | None, seen: dict[str, float], *, errors: bool
) -> tuple[NodeStatus, ...]:
    found = client.api.services(filters=names.deployment_filter(deployment, f"{names.LABEL_KIND}=service"))
    by_node = {s["Spec"]["Labels"][names.LABEL_NODE]: s for s in found}
    wanted = list(nodes) if nodes is not None else sorted(by_node)
    ids = [by_node[n]["ID"] for n in wanted if n in by_node]
    # One call for every task of these services, current and past: counts and errors come from it.
    tasks = client.api.tasks(filters={"service": ids}) if ids else []
    result = []
    for node in wanted:
        service = by_node.get(node)
        if service is None:
            result.append(NodeStatus(node, 1, 0, "no such service: ensure_service has not made it"))
            continue
        spec = service["Spec"]
        desired = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
        version = spec["TaskTemplate"]["ContainerSpec"].get("Labels", {}).get(names.LABEL_HASH)
        current = [
            t
            for t in tasks
            if t["ServiceID"] == service["ID"]
            and t["Spec"]["ContainerSpec"].get("Labels", {}).get(names.LABEL_HASH) == version
        ]
        running = sum(
            1
            for t in current
            if t.get("DesiredState") == "running"
            and t["Status"]["State"] == "running"
            and _settled(seen, t["ID"], _has_healthcheck(t["Spec"]["ContainerSpec"].get("Healthcheck")))
        )
        failures = sum(1 for t in current if t["Status"]["State"] in ("failed", "rejected"))
        update = (service.get("UpdateStatus") or {}).get("State", "")
        if update in ("rollback_completed", "paused", "rollback_paused"):
            message = (service.get("UpdateStatus") or {}).get("Message", "")
            raise NodeUnhealthy(
                f'Node "{node}" of deployment {deployment}: the update failed and Docker {update.replace("_", " ")} '
                f"it ({message}). Last error: {_last_task_error(current)}",
                node=node,
                last_error=_last_task_error(current),
            )
        if update in ("updating", "rollback_started"):
            running = min(running, desired - 1) if desired else running
        if running < desired and failures >= FAILURES_BEFORE_GIVING_UP * max(desired, 1):
            error = _last_task_error(current)
            raise NodeUnhealthy(
                f'Node "{node}" of deployment {deployment}: its tasks failed {failures} times. Last error: {error}',
                node=node,
                last_error=error,
            )
        last_error = _last_task_error(current) if errors and running < desired else ""
        result.append(NodeStatus(node, desired, running, last_error))
    return tuple(result)


def _last_task_error(tasks: Sequence[dict[str, Any]]) -> str:
    ordered = sorted(tasks, key=lambda t: t["Status"].get("Timestamp", ""), reverse=True)
    for task in ordered:
        if task["Status"].get("Err"):
            return str(task["Status"]["Err"])
    if ordered:
        latest = ordered[0]["Status"]
        return f"task {latest.get('State')}: {latest.get('Message', '')}"
    return "no task was scheduled"


def _engine_statuses(
    client: Any, deployment: str, nodes: Sequence[str] | None, seen: dict[str, float], *, errors: bool
) -> tuple[NodeStatus, ...]:
    found = client.api.containers(all=True, filters=names.deployment_filter(deployment, f"{names.LABEL_KIND}=service"))
    by_node: dict[str, list[dict[str, Any]]] = {}
    for item in found:
        by_node.setdefault(item["Labels"][names.LABEL_NODE], []).append(item)
    wanted = list(nodes) if nodes is not None else sorted(by_node)
    result = []
    for node in wanted:
        members = by_node.get(node, [])
        if not members:
            result.append(NodeStatus(node, 1, 0, "no container: ensure_service has not made it"))
            continue
        desired = int(members[0]["Labels"].get(names.LABEL_REPLICAS, len(members)))
        running = 0
        last_error = ""
        for item in members:
            details = client.api.inspect_container(item["Id"])
            state = details["State"]
            health = (state.get("Health") or {}).get("Status")
            up = state.get("Running") and not state.get("Restarting") and health in (None, "healthy")
            if up and _settled(seen, f"{item['Id']}:{state.get('StartedAt')}", health is not None):
                running += 1
                continue
            if up:
                continue  # running for an instant only: look again
            restarts = int(details.get("RestartCount", 0))
            if errors or restarts >= FAILURES_BEFORE_GIVING_UP:
                last_error = last_error or _container_error(details)
            if restarts >= FAILURES_BEFORE_GIVING_UP:
                raise NodeUnhealthy(
                    f'Node "{node}" of deployment {deployment}: its container restarted {restarts} times. '
                    f"Last error: {last_error}",
                    node=node,
                    last_error=last_error,
                )
        result.append(NodeStatus(node, desired, running, last_error))
    return tuple(result)


def _container_error(details: dict[str, Any]) -> str:
    state = details["State"]
    health = state.get("Health") or {}
    last_check = (health.get("Log") or [{}])[-1]
    if last_check.get("ExitCode"):
        output = str(last_check.get("Output", "")).strip()
        return f"health check {health.get('Status')} ({health.get('FailingStreak', 0)} failures): {output}"[:500]
    if state.get("Error"):
        return str(state["Error"])
    restarts = int(details.get("RestartCount", 0))
    if state.get("ExitCode"):
        return f"exited with code {state['ExitCode']}" + (f", restarted {restarts} times" if restarts else "")
    if not state.get("Running"):
        return f"container {state.get('Status')}"
    return f"health: {health.get('Status', 'starting')}"


# --- reading and removing


def list_objects(target: Target, deployment: str) -> DeploymentObjects:
    """Everything on the target that carries the deployment's label."""
    names.check_deployment(deployment)
    client = targets.client_for(target)
    with docker_errors(target.name, f"list the objects of deployment {deployment}"):
        return _objects(client, target, deployment)


def _objects(client: Any, target: Target, deployment: str) -> DeploymentObjects:
    selector = names.deployment_filter(deployment)
    containers = client.api.containers(all=True, filters=selector)

    def named(item: dict[str, Any]) -> str:
        return str(item["Names"][0].lstrip("/"))

    holders = [named(c) for c in containers if c.get("Labels", {}).get(names.LABEL_KIND) == Kind.SECRET]
    swarm = _swarm(target)
    images = client.api.images(filters={"label": f"{names.LABEL_DEPLOYMENT}={deployment}"})
    return DeploymentObjects(
        services=tuple(sorted(s["Spec"]["Name"] for s in client.api.services(filters=selector))) if swarm else (),
        containers=tuple(sorted(named(c) for c in containers if named(c) not in holders)),
        networks=tuple(sorted(n["Name"] for n in client.api.networks(filters=selector))),
        volumes=tuple(sorted(v["Name"] for v in client.api.volumes(filters=selector).get("Volumes") or [])),
        secrets=tuple(sorted([s["Spec"]["Name"] for s in client.api.secrets(filters=selector)] if swarm else holders)),
        images=tuple(sorted(tag for image in images for tag in image.get("RepoTags") or [image["Id"]])),
    )


def remove_deployment(target: Target, deployment: str, *, timeout: float = 60.0) -> DeploymentObjects:
    """Remove everything carrying the deployment's label and release its ports; what was found is returned.

    Idempotent: removing a removed deployment finds nothing and succeeds. Services and
    containers go first; networks, secrets and volumes follow as soon as nothing uses them.
    """
    names.check_deployment(deployment)
    client = targets.client_for(target)
    selector = names.deployment_filter(deployment)
    with docker_errors(target.name, f"remove deployment {deployment}"):
        found = _objects(client, target, deployment)
        for service in found.services:
            _ignore_gone(client.api.remove_service, service)
        deadline = time.monotonic() + timeout
        pause = 0.1
        while True:
            for container in client.api.containers(all=True, filters=selector):
                _ignore_gone(client.api.remove_container, container["Id"], force=True)
            left = _objects(client, target, deployment)
            for network in left.networks:
                _ignore_gone(client.api.remove_network, network)
            for volume in left.volumes:
                _ignore_gone(client.api.remove_volume, volume)
            if _swarm(target):
                for secret in left.secrets:
                    _ignore_gone(client.api.remove_secret, secret)
            for image in left.images:
                _ignore_gone(client.api.remove_image, image, force=True)
            if _objects(client, target, deployment).empty:
                break
            if time.monotonic() > deadline:
                left = _objects(client, target, deployment)
                raise DockerRefused(
                    f'Target "{target.name}": deployment {deployment} is not fully removed after {timeout:g} s; '
                    f"still there: {_describe(left)}. Removing it again continues."
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
    services.ports_release(target=target, deployment=deployment)
    return found


def remove_node(target: Target, deployment: str, node: str, *, timeout: float = 60.0) -> DeploymentObjects:
    """Remove one node's service or containers and release its ports; idempotent like remove_deployment."""
    names.check_deployment(deployment)
    client = targets.client_for(target)
    selector = names.deployment_filter(deployment, f"{names.LABEL_NODE}={node}", f"{names.LABEL_KIND}=service")
    with docker_errors(target.name, f"remove node {node} of deployment {deployment}"):
        removed_services = (
            tuple(s["Spec"]["Name"] for s in client.api.services(filters=selector)) if _swarm(target) else ()
        )
        for service in removed_services:
            _ignore_gone(client.api.remove_service, service)
        removed_containers: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            containers = client.api.containers(all=True, filters=selector)
            if not containers:
                break
            for container in containers:
                removed_containers.append(container["Names"][0].lstrip("/"))
                _ignore_gone(client.api.remove_container, container["Id"], force=True)
            if time.monotonic() > deadline:
                raise DockerRefused(
                    f'Target "{target.name}": node {node} of deployment {deployment} still has containers after '
                    f"{timeout:g} s. Removing it again continues."
                )
            time.sleep(0.2)
    services.ports_release(target=target, deployment=deployment, node=node)
    return DeploymentObjects(services=removed_services, containers=tuple(sorted(set(removed_containers))))


def exec_in_node(
    target: Target,
    deployment: str,
    node: str,
    script: bytes,
    *,
    interpreter: tuple[str, ...] = ("sh", "-s"),
    environment: dict[str, str] | None = None,
    timeout: float = 600.0,
) -> tuple[int, str]:
    """Runs a script inside the node's first running container (lifecycle operations); returns (exit code, output).

    The script goes in on the interpreter's standard input, so nothing is written to the host; output is capped.
    """
    names.check_deployment(deployment)
    client = targets.client_for(target, timeout=timeout)
    with docker_errors(target.name, f"run a script in node {node}"):
        containers = [c for c in _node_containers(client, deployment, node) if c.get("State") == "running"]
        if not containers:
            raise DockerRefused(
                f'Node "{node}" of deployment {deployment} has no running container to run a script in.'
            )
        exec_id = client.api.exec_create(
            containers[0]["Id"], list(interpreter), stdin=True, environment=environment or {}, privileged=False
        )["Id"]
        sock = client.api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        raw.sendall(script)
        raw.shutdown(1)  # end of standard input: the script runs to its end
        chunks: list[bytes] = []
        size = 0
        while True:
            data = raw.recv(65536)
            if not data:
                break
            if size < 256 * 1024:
                chunks.append(data)
            size += len(data)
        sock.close()
        code = client.api.exec_inspect(exec_id).get("ExitCode")
    output = b"".join(_demultiplex(b"".join(chunks))).decode("utf-8", "replace")
    return (code if isinstance(code, int) else -1), output


def _demultiplex(raw: bytes) -> Iterator[bytes]:
    """Docker's stream framing (8-byte headers) when the exec has no TTY."""
    position = 0
    while position + 8 <= len(raw):
        length = int.from_bytes(raw[position + 4 : position + 8], "big")
        yield raw[position + 8 : position + 8 + length]
        position += 8 + length


def _ignore_gone(remove: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Removal that tolerates what is already gone, or still in use (the next round retries)."""
    try:
        remove(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code not in (400, 403, 409, 500):
            raise
        logger.debug("not removed yet: %s", exc)


def _describe(objects: DeploymentObjects) -> str:
    parts = [
        f"{kind} {', '.join(items)}"
        for kind, items in (
            ("services", objects.services),
            ("containers", objects.containers),
            ("networks", objects.networks),
            ("volumes", objects.volumes),
            ("secrets", objects.secrets),
            ("images", objects.images),
        )
        if items
    ]
    return "; ".join(parts)


def _node_containers(client: Any, deployment: str, node: str) -> list[dict[str, Any]]:
    selector = names.deployment_filter(deployment, f"{names.LABEL_NODE}={node}", f"{names.LABEL_KIND}=service")
    return list(client.api.containers(filters=selector))


def service_stats(target: Target, deployment: str, node: str) -> tuple[ContainerStats, ...]:
    """A sample of the resource use of the node's running containers on this daemon (the swarm manager's
    node for swarm targets: containers on other nodes are read by the collectors there)."""
    names.check_deployment(deployment)
    client = targets.client_for(target)
    with docker_errors(target.name, f"read the statistics of node {node}"):
        containers = _node_containers(client, deployment, node)

        def sample(item: dict[str, Any]) -> ContainerStats:
            with docker_errors(target.name, f"read the statistics of node {node}"):
                return _stats(item["Names"][0].lstrip("/"), client.api.stats(item["Id"], stream=False))

        if len(containers) <= 1:
            return tuple(sample(c) for c in containers)
        with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
            return tuple(pool.map(sample, containers))


def memory_used(memory_stats: dict[str, Any]) -> int:
    """Memory a container uses, from the stats API's memory_stats."""
    detail = memory_stats.get("stats") or {}
    # Page cache is reclaimable; Docker's CLI leaves it out too (cgroup v1 "cache", v2 "inactive_file").
    return max(0, int(memory_stats.get("usage", 0)) - int(detail.get("cache", detail.get("inactive_file", 0))))


def network_bytes(raw_stats: dict[str, Any]) -> tuple[int, int]:
    """Bytes received and sent over all the container's networks."""
    networks = (raw_stats.get("networks") or {}).values()
    return sum(int(n.get("rx_bytes", 0)) for n in networks), sum(int(n.get("tx_bytes", 0)) for n in networks)


def _stats(name: str, raw: dict[str, Any]) -> ContainerStats:
    cpu, previous = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (previous.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    system_delta = cpu.get("system_cpu_usage", 0) - previous.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    percent = cpu_delta / system_delta * cpus * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = raw.get("memory_stats") or {}
    received, sent = network_bytes(raw)
    return ContainerStats(
        container=name,
        cpu_percent=round(percent, 2),
        memory_bytes=memory_used(memory),
        memory_limit=int(memory.get("limit", 0)),
        network_rx_bytes=received,
        network_tx_bytes=sent,
        pids=int((raw.get("pids_stats") or {}).get("current", 0)),
        read_at=_timestamp(str(raw.get("read", ""))),
    )


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def _timestamp(text: str) -> datetime.datetime | None:
    match = _TIMESTAMP.match(text)
    if not match or text.startswith("0001-"):
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = match.group(3) or "Z"
    return datetime.datetime.fromisoformat(f"{match.group(1)}.{fraction}{'+00:00' if zone == 'Z' else zone}")


def service_logs(
    target: Target, deployment: str, node: str, *, tail: int = 100, since: datetime.datetime | None = None
) -> tuple[LogLine, ...]:
    """The last `tail` lines the node's containers wrote (stdout and stderr), oldest first."""
    names.check_deployment(deployment)
    client = targets.client_for(target)
    since_ts = int(since.timestamp()) if since is not None else None
    lines: list[LogLine] = []
    with docker_errors(target.name, f"read the logs of node {node}"):
        if _swarm(target):
            name = names.service(deployment, node)
            raw = client.api.service_logs(
                name, stdout=True, stderr=True, timestamps=True, tail=tail, since=since_ts or 0, is_tty=False
            )
            lines.extend(_log_lines(name, b"".join(raw)))
        else:
            for item in client.api.containers(
                all=True,
                filters=names.deployment_filter(
                    deployment, f"{names.LABEL_NODE}={node}", f"{names.LABEL_KIND}=service"
                ),
            ):
                name = item["Names"][0].lstrip("/")
                raw = client.api.logs(item["Id"], stdout=True, stderr=True, timestamps=True, tail=tail, since=since_ts)
                lines.extend(_log_lines(name, raw))
    lines.sort(key=lambda line: line.time or datetime.datetime.min.replace(tzinfo=datetime.UTC))
    return tuple(lines[-tail:]) if tail else tuple(lines)


def _log_lines(source: str, raw: bytes) -> Iterator[LogLine]:
    for line in raw.decode(errors="replace").splitlines():
        stamp, _, message = line.partition(" ")
        when = _timestamp(stamp)
        yield LogLine(source, when, message if when else line)
