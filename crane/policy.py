"""The driver-side security policy: what a node may ask of a Docker host.

Checked right before Docker is called, on every create and update, with the
values the subscriber's inputs produced. It is an allowlist: a ServiceSpec has
fields only for what Agora supports, each field's value is checked by a rule
below, and of the free-form `options` only those in ALLOWED_OPTIONS pass;
anything else is refused by name, with the reason when Agora knows it.

What Agora always sets itself, whatever the spec says, is in the driver:
CPU, memory and process limits, no-new-privileges, dropped capabilities,
placement, restart policy, the network and the port publishing mode.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crane import conf, names
from crane.errors import PolicyViolation
from crane.models import Target
from crane.specs import ServiceSpec, UpdateOrder

# Docker's default capabilities that ordinary services do not need; dropping them narrows what a
# compromised container can do (raw sockets, device nodes, file capabilities, chroot escapes).
# CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID, KILL and NET_BIND_SERVICE stay: images that start as
# root and drop to a user (nginx, postgres) need them.
DROPPED_CAPABILITIES = ("AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT")
MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less
MAX_HEALTH_SECONDS = 3600.0
MAX_PORTS = 20

_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$")
_SIGNAL = re.compile(r"^(?:SIG[A-Z0-9+-]{2,12}|[0-9]{1,2})$")
SECRET_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
# Docker's reference grammar, simplified: [domain[:port]/]path[:tag][@digest].
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?/)"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_HOST_PATH = re.compile(r"^\s*(?:/|~|\.)|[/:\\]")
FORBIDDEN_CONTAINER_PATHS = ("/proc", "/sys", "/dev", "/run/secrets")


# --- options: the allowlist, and the reasons for what Agora knows it refuses


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _user(value: Any) -> str | None:
    ok = isinstance(value, str) and _USER.match(value)
    return None if ok else "must be a user name or id, optionally with :group"


def _absolute_path(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith("/") and "\0" not in value and len(value) <= 1024
    return None if ok else "must be an absolute path in the container"


def _grace_period(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 300
    return None if ok else "must be a number of seconds from 0 to 300"


def _signal(value: Any) -> str | None:
    ok = isinstance(value, str) and _SIGNAL.match(value)
    return None if ok else "must be a signal name such as SIGTERM"


ALLOWED_OPTIONS: Mapping[str, Callable[[Any], str | None]] = {
    "user": _user,
    "working_dir": _absolute_path,
    "read_only": _boolean,  # read-only root file system
    "init": _boolean,  # Docker's init as PID 1, so that signals reach the service
    "stop_grace_period": _grace_period,
    "stop_signal": _signal,
}

FORBIDDEN_OPTIONS: Mapping[str, str] = {
    "privileged": "privileged mode hands the container the whole host",
    "network_mode": "host or foreign networks break the deployment's isolation; Agora attaches its own network",
    "networks": "Agora attaches the deployment's own network",
    "pid_mode": "sharing the host's process namespace exposes every process on the host",
    "ipc_mode": "sharing the host's IPC namespace exposes other tenants' shared memory",
    "uts_mode": "the host's UTS namespace lets the container rename the host",
    "userns_mode": "leaving the user namespace set up by the daemon is an operator's decision",
    "cgroup_parent": "the cgroup parent decides which limits apply; Agora sets the limits",
    "cgroupns": "the cgroup namespace is the daemon's",
    "cap_add": "added capabilities widen what the container may do to the host",
    "cap_drop": "Agora decides which capabilities are dropped",
    "security_opt": "security options (seccomp, AppArmor, SELinux, no-new-privileges) are Agora's",
    "sysctls": "kernel parameters are the host's",
    "devices": "host devices give direct access to the hardware",
    "device_cgroup_rules": "device access is the host's",
    "device_requests": "host devices (GPUs included) are not offered to templates",
    "binds": "bind mounts expose host paths; mount the deployment's volumes instead",
    "volumes": "bind mounts expose host paths; mount the deployment's volumes instead",
    "volumes_from": "other containers' volumes belong to other deployments",
    "tmpfs": "not offered; mount a volume of the deployment",
    "placement": "Agora places services itself (and never on manager nodes)",
    "constraints": "Agora places services itself (and never on manager nodes)",
    "preferences": "Agora places services itself",
    "log_driver": "logging is the platform's: monitoring reads the logs Docker keeps",
    "log_config": "logging is the platform's: monitoring reads the logs Docker keeps",
    "logging": "logging is the platform's: monitoring reads the logs Docker keeps",
    "runtime": "the container runtime is the host's",
    "isolation": "the isolation technology is the host's",
    "oom_kill_disable": "a container the kernel may not kill can take the host down",
    "oom_score_adj": "out-of-memory priorities are the host's",
    "pids_limit": "Agora sets the process limit",
    "ulimits": "resource limits are Agora's",
    "restart_policy": "Agora sets the restart policy",
    "endpoint_mode": "Agora sets the endpoint mode",
    "publish_mode": "Agora publishes ports in host mode from the target's range",
    "mode": "Agora runs replicated services",
    "hosts": "name resolution is the deployment network's",
    "extra_hosts": "name resolution is the deployment network's",
    "dns": "name resolution is the deployment network's",
    "dns_config": "name resolution is the deployment network's",
    "mac_address": "addresses are the network's",
}


# --- the rules over the spec's fields

Violation = tuple[str, str]  # (setting, what is wrong)


@dataclass(frozen=True)
class _Context:
    deployment: str
    target: Target
    cpus: float  # the limit the node gets
    memory: int


def _name(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    if not isinstance(spec.name, str) or not names.NODE.match(spec.name):
        yield (
            "name",
            f"{spec.name!r} cannot name Docker objects: use 1 to 32 letters, digits, _ and -, starting and ending "
            "with a letter or digit",
        )


def _image(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    if not isinstance(spec.image, str) or len(spec.image) > 255 or not IMAGE_REFERENCE.match(spec.image):
        yield "image", f"{spec.image!r} is not an image reference such as registry.example.org/team/app:1.2"


def _command(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    for setting, value in (("command", spec.command), ("entrypoint", spec.entrypoint or ())):
        if not isinstance(value, tuple) or not all(isinstance(a, str) and "\0" not in a for a in value):
            yield setting, "must be a list of strings"


def _environment(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    for key, value in spec.environment.items():
        if not isinstance(key, str) or not _ENVIRONMENT_NAME.match(key):
            yield (
                f"environment.{key}",
                "is not a valid variable name (letters, digits and _, not starting with a digit)",
            )
        elif not isinstance(value, str) or "\0" in value:
            yield f"environment.{key}", "must be a string"


def _ports(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    if len(spec.ports) > MAX_PORTS:
        yield "ports", f"at most {MAX_PORTS} ports are published per node"
    seen: set[tuple[int, str]] = set()
    for port in spec.ports:
        number = port.target
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
            yield "ports", f"{number!r} is not a port number (1 to 65535)"
        elif port.protocol not in ("tcp", "udp"):
            yield "ports", f"protocol {port.protocol!r} must be tcp or udp"
        elif (number, port.protocol) in seen:
            yield "ports", f"{number}/{port.protocol} is listed twice"
        seen.add((number, port.protocol))


def _replicas(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    limit = conf.max_replicas()
    if isinstance(spec.replicas, bool) or not isinstance(spec.replicas, int) or not 0 <= spec.replicas <= limit:
        yield "replicas", f"{spec.replicas!r} must be a whole number from 0 to {limit}"


def _limits(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    target = ctx.target
    if not ctx.cpus > 0:
        yield "cpu_limit", f"{ctx.cpus!r} must be above 0"
    elif target.max_cpus is not None and ctx.cpus > target.max_cpus:
        yield "cpu_limit", f"{ctx.cpus:g} CPUs is more than target {target.name} offers ({target.max_cpus:g})"
    if ctx.memory < MIN_MEMORY:
        yield "memory_limit", f"{ctx.memory} bytes is below Docker's minimum ({MIN_MEMORY})"
    elif target.max_memory is not None and ctx.memory > target.max_memory:
        yield "memory_limit", f"{ctx.memory} bytes is more than target {target.name} offers ({target.max_memory})"
    if not 0 <= spec.cpu_reservation <= ctx.cpus:
        yield "cpu_reservation", f"{spec.cpu_reservation!r} must be from 0 to the CPU limit ({ctx.cpus:g})"
    if not 0 <= spec.memory_reservation <= ctx.memory:
        yield "memory_reservation", f"{spec.memory_reservation!r} must be from 0 to the memory limit ({ctx.memory})"


def _healthcheck(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    check = spec.healthcheck
    if check is None:
        return
    test = check.test
    shapes_ok = isinstance(test, tuple) and all(isinstance(t, str) for t in test) and len(test) >= 1
    if not shapes_ok or not (
        (test[0] == "CMD" and len(test) >= 2) or (test[0] == "CMD-SHELL" and len(test) == 2) or test == ("NONE",)
    ):
        yield "healthcheck.test", 'must be ("CMD", program, args...), ("CMD-SHELL", "command") or ("NONE",)'
    for field_name in ("interval", "timeout", "start_period"):
        value = getattr(check, field_name)
        lowest = 0.0 if field_name == "start_period" else 0.001
        if isinstance(value, bool) or not isinstance(value, int | float) or not lowest <= value <= MAX_HEALTH_SECONDS:
            yield f"healthcheck.{field_name}", f"{value!r} must be seconds from {lowest:g} to {MAX_HEALTH_SECONDS:g}"
    if isinstance(check.retries, bool) or not isinstance(check.retries, int) or not 0 <= check.retries <= 100:
        yield "healthcheck.retries", f"{check.retries!r} must be from 0 to 100"


def _mounts(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    paths: set[str] = set()
    for mount in spec.mounts:
        source = mount.volume
        if not isinstance(source, str) or "docker.sock" in source.lower():
            yield "mounts", f"{source!r}: the Docker socket is never mounted into a container"
        elif _HOST_PATH.search(source):
            yield "mounts", f"{source!r} is a host path; only the deployment's volumes can be mounted"
        elif not names.OBJECT.match(source):
            yield "mounts", f"{source!r} is not a volume name of this deployment"
        path = mount.path
        if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
            yield "mounts", f"{path!r} must be a normalised absolute path below / in the container"
        elif any(path == p or path.startswith(p + "/") for p in FORBIDDEN_CONTAINER_PATHS):
            yield "mounts", f"{path!r} is reserved (/proc, /sys, /dev, /run/secrets)"
        elif path in paths:
            yield "mounts", f"{path!r} is mounted twice"
        else:
            paths.add(path)
        if not isinstance(mount.read_only, bool):
            yield "mounts", "read_only must be true or false"


def _secrets(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    files: set[str] = set()
    for secret in spec.secrets:
        if not isinstance(secret.secret, str) or not names.OBJECT.match(secret.secret):
            yield "secrets", f"{secret.secret!r} is not a secret name of this deployment"
        if not isinstance(secret.file, str) or not SECRET_FILE.match(secret.file) or secret.file in files:
            yield "secrets", f"{secret.file!r} must be a distinct file name (no directories) under /run/secrets"
        else:
            files.add(secret.file)


def _labels(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    for key, value in spec.labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            yield f"labels.{key}", "is not a label name (letters, digits, '.', '-', '_', '/')"
        elif key.lower().startswith(names.RESERVED_LABEL_PREFIXES):
            yield f"labels.{key}", "uses a prefix reserved for Agora and Docker (agora., com.docker.)"
        elif not isinstance(value, str) or len(value) > 1024:
            yield f"labels.{key}", "must be a string of at most 1024 characters"


def _update(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    if spec.update_order not in tuple(UpdateOrder):
        yield "update_order", f"{spec.update_order!r} must be start-first or stop-first"
    if isinstance(spec.update_parallelism, bool) or not 1 <= spec.update_parallelism <= 100:
        yield "update_parallelism", f"{spec.update_parallelism!r} must be from 1 to 100"


def _options(spec: ServiceSpec, ctx: _Context) -> Iterator[Violation]:
    for key, value in spec.options.items():
        check = ALLOWED_OPTIONS.get(key)
        if check is not None:
            problem = check(value)
            if problem:
                yield key, f"{value!r} {problem}"
        elif key in FORBIDDEN_OPTIONS:
            yield key, f"refused: {FORBIDDEN_OPTIONS[key]}"
        else:
            yield key, "is not a setting Agora knows; it refuses what it does not know"


RULES: tuple[Callable[[ServiceSpec, _Context], Iterator[Violation]], ...] = (
    _name,
    _image,
    _command,
    _environment,
    _ports,
    _replicas,
    _limits,
    _healthcheck,
    _mounts,
    _secrets,
    _labels,
    _update,
    _options,
)


def _default_cpus(target: Target) -> float:
    cpus = target.default_cpus if target.default_cpus is not None else conf.default_cpus()
    return min(cpus, target.max_cpus) if target.max_cpus is not None else cpus


def _default_memory(target: Target) -> int:
    memory = target.default_memory if target.default_memory is not None else conf.default_memory()
    return min(memory, target.max_memory) if target.max_memory is not None else memory


def check_service(spec: ServiceSpec, *, target: Target, deployment: str) -> ServiceSpec:
    """The spec with its limits filled in, or PolicyViolation naming the node and every refused setting."""
    names.check_deployment(deployment)
    cpus = spec.cpu_limit if spec.cpu_limit is not None else _default_cpus(target)
    memory = spec.memory_limit if spec.memory_limit is not None else _default_memory(target)
    context = _Context(deployment=deployment, target=target, cpus=cpus, memory=memory)
    violations = [v for rule in RULES for v in rule(spec, context)]
    if violations:
        node = spec.name if isinstance(spec.name, str) else repr(spec.name)
        listed = "; ".join(f"{setting} {message}" for setting, message in violations)
        raise PolicyViolation(
            f'Node "{node}" of deployment {deployment}: {listed}.',
            node=node,
            setting=violations[0][0],
            details=[{"node": node, "setting": s, "message": m} for s, m in violations],
        )
    return dataclasses.replace(spec, cpu_limit=float(cpus), memory_limit=int(memory))
