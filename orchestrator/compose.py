"""Compose import: a publisher's docker-compose.yml as an Agora TOSCA template.

    result = compose_to_tosca(text, name="citizen-forms")
    result.template   # the template's YAML, or None when the compose file asks for what Agora refuses
    result.problems   # each with the compose service, the key and what to do

The compose file is read with the templates' bounded loader. Every key is on an
allowlist: mapped onto Agora's profile, dropped with a warning, or refused with
the reason (docs/decisions/0005). What the publisher left to the environment
(`${VAR}`, `${VAR:-default}`, bare environment variables, secrets' files) becomes
TOSCA inputs, so that each subscriber sets their own values. The template is
validated before it is returned: a template comes back only when Agora would
accept it. Pure: no Django, no Docker.
"""

from __future__ import annotations

import io
import posixpath
import re
import shlex
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from crane import names, policy
from orchestrator.tosca import AGORA_PROFILE_IMPORT, Limits, Severity, validate_bytes
from orchestrator.tosca.policy import ENVIRONMENT_NAME, MAX_REPLICAS
from orchestrator.tosca.safe_yaml import YamlDocument, YamlError, load_yaml

TOSCA_VERSION = "tosca_simple_yaml_1_3"
DEFAULT_NAME = "compose-import"
COMPOSE_LIMITS = Limits(max_bytes=1024 * 1024, max_node_templates=200)
MAX_PORTS = 20  # what crane publishes per node
CONTAINER = "agora.nodes.Container"
VOLUME = "agora.nodes.Volume"
SECRET = "agora.nodes.Secret"  # noqa: S105 - a type name
BUILD_CONTEXT = "agora.artifacts.BuildContext"
MOUNTS_VOLUME = "agora.relationships.MountsVolume"
USES_SECRET = "agora.relationships.UsesSecret"  # noqa: S105 - a type name

# What crane accepts of names, labels and paths; an import refuses the rest before anything is deployed.
NODE_NAME = names.NODE
SECRET_FILE = policy.SECRET_FILE
RESERVED_LABEL_PREFIXES = names.RESERVED_LABEL_PREFIXES
RESERVED_PATHS = policy.FORBIDDEN_CONTAINER_PATHS

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NANOS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp])?i?b?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_URLISH = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git@|github\.com/)")
# A scalar as written on its line, for the values YAML 1.1 reads differently from compose (YAML 1.2):
# `- 22:22` is the number 1342 to PyYAML, `DEBUG: yes` is true.
_LIST_LINE = re.compile(r"^\s*-\s+(?P<value>[^\s'\"#\[{&*!|>][^#]*?)\s*(?:#.*)?$")
_SEXAGESIMAL = re.compile(r"(?<![\w.:$-])[0-9][0-9_]*(?::[0-5]?[0-9])+(?![\w.:])")
_MAP_LINE = re.compile(r"^\s*[^\s#:'\"][^#:]*:\s+(?P<value>[^\s'\"#\[{&*!|>][^#]*?)\s*(?:#.*)?$")

_TOSCA_SHAPE = "a TOSCA template is a mapping that starts with tosca_definitions_version"
_TOSCA_START = "a TOSCA template starts with tosca_definitions_version"
_TOP_LEVEL = {"version", "name", "services", "volumes", "secrets", "networks", "configs", "include"}

# Keys Agora never grants a publisher's container: each reaches the host or other tenants.
_FORBIDDEN: dict[str, str] = {
    "privileged": "privileged mode hands the container the whole Docker host",
    "network_mode": "host or other containers' networks break the deployment's isolation",
    "pid": "sharing the host's or another container's processes exposes them",
    "ipc": "sharing the host's or another container's IPC exposes its shared memory",
    "uts": "the host's UTS namespace lets the container rename the host",
    "userns_mode": "leaving the daemon's user namespace is the operator's decision",
    "cgroup": "the cgroup namespace is the host's",
    "cgroup_parent": "the cgroup parent decides which limits apply; Agora sets the limits",
    "cap_add": "added capabilities widen what the container may do to the host",
    "devices": "host devices give direct access to the hardware",
    "device_cgroup_rules": "device access is the host's",
    "gpus": "host devices (GPUs included) are not offered to services",
    "security_opt": "security options (seccomp, AppArmor, SELinux) are Agora's",
    "sysctls": "kernel parameters are the host's",
    "volumes_from": "other containers' volumes belong to other deployments",
    "external_links": "containers outside the deployment belong to other tenants",
    "logging": "logging is the platform's: Agora's monitoring reads the logs Docker keeps",
    "extra_hosts": "host entries can point at the Docker host (host-gateway) or other tenants",
    "dns": "name resolution is the deployment network's",
    "dns_search": "name resolution is the deployment network's",
    "dns_opt": "name resolution is the deployment network's",
    "mac_address": "addresses are the network's",
    "runtime": "the container runtime is the host's",
    "isolation": "the isolation technology is the host's",
    "oom_kill_disable": "a container the kernel may not kill can take the host down",
    "oom_score_adj": "out-of-memory priorities are the host's",
    "storage_opt": "storage options are the host's",
    "use_api_socket": "the Docker API socket gives control over the whole host",
    "credential_spec": "credentials are the host's",
}
# Keys the profile has no property for, with what to do instead.
_UNSUPPORTED: dict[str, str] = {
    "entrypoint": "Agora's profile has no entrypoint; set ENTRYPOINT in the image's Dockerfile and put the "
    "arguments in command",
    "env_file": "values in files would be the same for every subscriber; write the variables under environment, "
    "with ${VAR} for those each subscriber sets (they become inputs)",
    "configs": "Agora has no configs; copy the file into the image (build), or make it a secret",
    "user": "Agora's profile has no user; set USER in the image's Dockerfile",
    "working_dir": "Agora's profile has no working directory; set WORKDIR in the image's Dockerfile",
    "profiles": "Agora deploys every service of the template; remove the profiles, or the services not to deploy",
    "extends": "Agora imports one file; write the service out in full",
    "group_add": "Agora's profile has no supplementary groups; set them in the image",
    "ulimits": "Agora sets the resource limits itself; remove ulimits",
    "shm_size": "Agora's profile has no shared memory size; remove it",
    "blkio_config": "Agora sets the resource limits itself; remove blkio_config",
    "links": "links with an alias rename services; reach the service by its own name",
    "post_start": "Agora runs lifecycle scripts from a CSAR (Standard interface) instead; remove the hook",
    "pre_stop": "Agora runs lifecycle scripts from a CSAR (Standard interface) instead; remove the hook",
    "develop": "development settings do not apply to a deployment; remove them",
    "attach": "remove it",
    "label_file": "labels are dropped on import; remove it",
    "provider": "Agora deploys containers only",
    "models": "Agora deploys containers only",
}
# Keys dropped with a warning: Agora decides these itself, or they do not change what runs.
_DROPPED: dict[str, str] = {
    "container_name": "Agora names the containers itself; other services reach this one by its service name",
    "hostname": "the container's host name is Agora's; other services reach it by its service name",
    "domainname": "the container's domain name is Agora's",
    "restart": "Agora always restarts a service that stops",
    "init": "Agora's profile has no init setting",
    "tty": "a deployed service has no terminal",
    "stdin_open": "a deployed service has no input",
    "stop_signal": "Agora's profile has no stop signal; Docker sends SIGTERM (set STOPSIGNAL in the image)",
    "stop_grace_period": "Agora's profile has no stop grace period",
    "platform": "the target's platform is used",
    "pull_policy": "Agora pulls images that are missing on the target",
    "read_only": "Agora's profile has no read-only root file system",
    "cap_drop": "Agora drops its own set of capabilities",
    "tmpfs": "Agora mounts no tmpfs; the paths stay in the container's writable layer",
    "annotations": "Agora's profile has no annotations",
    "cpu_shares": "Agora sets CPU limits (cpus), not shares",
    "cpu_quota": "Agora sets CPU limits (cpus)",
    "cpu_period": "Agora sets CPU limits (cpus)",
    "cpu_count": "Agora sets CPU limits (cpus)",
    "cpu_percent": "Agora sets CPU limits (cpus)",
    "cpuset": "Agora does not pin services to CPUs",
    "cpu_rt_runtime": "Agora sets CPU limits (cpus)",
    "cpu_rt_period": "Agora sets CPU limits (cpus)",
    "mem_reservation": "Agora reserves no memory",
    "memswap_limit": "Agora gives no swap beyond the memory limit",
    "mem_swappiness": "swap is the host's",
    "pids_limit": "Agora sets its own process limit",
    "stop_timeout": "Agora's profile has no stop timeout",
}
_PORT_KEYS = {"target", "published", "host_ip", "protocol", "mode", "app_protocol", "name"}
_HEALTH_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
_DEPLOY_KEYS = {
    "mode",
    "replicas",
    "resources",
    "restart_policy",
    "placement",
    "update_config",
    "rollback_config",
    "endpoint_mode",
    "labels",
}


@dataclass(frozen=True)
class ComposeProblem:
    """What Agora refuses (an error) or changes (a warning) in the compose file, and what to do."""

    service: str | None  # None for the file's top level (volumes, secrets, networks...)
    key: str  # where under the service (or the top level): "ports[0]", "deploy.resources.limits.memory"
    message: str
    severity: Severity = Severity.ERROR
    line: int | None = None

    def format(self, file: str) -> str:
        """`FILE: service NAME: key: sentence`, as the CLI prints it."""
        parts = [file]
        if self.service is not None:
            parts.append(f"service {self.service}")
        if self.key:
            parts.append(self.key)
        if self.severity is Severity.WARNING:
            parts.append("warning")
        return ": ".join([*parts, self.message])


@dataclass(frozen=True)
class ComposeImport:
    template: str | None  # None whenever a problem is an error
    problems: tuple[ComposeProblem, ...]
    build_contexts: tuple[str, ...] = ()  # folders to pack next to the template in a CSAR

    @property
    def errors(self) -> tuple[ComposeProblem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[ComposeProblem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


def compose_to_tosca(text: str, *, name: str | None = None) -> ComposeImport:
    """The Agora TOSCA template for a compose file; `name` (else the file's own `name`) names the template."""
    return _Importer(text, name).run()


# --- interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, $VAR, $$


@dataclass(frozen=True)
class _Variable:
    name: str
    default: str | None = None
    message: str | None = None  # ${VAR:?message}: required, with the publisher's words


class _Unreadable(ValueError):
    """A value Agora cannot take as it is; the message says what to write instead."""


def _interpolation(text: str) -> list[str | _Variable]:
    parts: list[str | _Variable] = []
    literal: list[str] = []

    def variable(found: _Variable) -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()
        parts.append(found)

    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            literal.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            literal.append("$")
            i += 2
        elif following == "{":
            end = text.find("}", i + 2)
            if end < 0:
                raise _Unreadable("a ${ is not closed; close it with }, or write $$ for a literal $")
            variable(_braced(text[i + 2 : end]))
            i = end + 1
        else:
            match = _VARIABLE.match(text, i + 1)
            if match is None:
                raise _Unreadable("a $ starts no variable; write $$ for a literal $")
            variable(_Variable(match.group()))
            i = match.end()
    if literal:
        parts.append("".join(literal))
    return parts


def _braced(body: str) -> _Variable:
    match = _VARIABLE.match(body)
    if match is None:
        raise _Unreadable(f"${{{body}}} names no variable; variables are letters, digits and _")
    name, rest = match.group(), body[match.end() :]
    if "$" in rest:
        raise _Unreadable(f"${{{body}}} nests a variable in a default; write the default out")
    if not rest:
        return _Variable(name)
    for operator in (":-", "-"):
        if rest.startswith(operator):
            return _Variable(name, default=rest[len(operator) :])
    for operator in (":?", "?"):
        if rest.startswith(operator):
            return _Variable(name, message=rest[len(operator) :])
    if rest.startswith((":+", "+")):
        raise _Unreadable(
            f"${{{body}}} gives a value only when {name} is set, which a TOSCA input cannot; use ${{{name}}}"
        )
    raise _Unreadable(f"${{{body}}} is not an interpolation compose defines")


# --- units


def _memory_bytes(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _MEMORY.match(value) if isinstance(value, str) else None
    if match is None:
        raise _Unreadable(f"{value!r} is not a size such as 512m or 1g")
    unit = match.group(2).lower() if match.group(2) else None
    return int(float(match.group(1)) * _MEMORY_UNITS[unit])


def _tosca_size(size: int) -> str:
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def _duration_nanos(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else ""
    pieces = list(_DURATION.finditer(text))
    if not text or "".join(m.group() for m in pieces) != text:
        raise _Unreadable(f"{value!r} is not a duration such as 30s, 1m30s or 500ms")
    return sum(round(float(m.group(1)) * _NANOS[m.group(2)]) for m in pieces)


def _tosca_time(nanos: int) -> str:
    for unit, scale in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if nanos % scale == 0:
            return f"{nanos // scale} {unit}"
    return f"{nanos} ns"


def _cpus(value: Any) -> float:
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise _Unreadable(f"{value!r} is not a number of CPUs such as 0.5") from None
    if isinstance(value, bool) or not 0 < cpus < float("inf"):
        raise _Unreadable(f"{value!r} is not a number of CPUs such as 0.5")
    return cpus


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        raise _Unreadable(f"{value!r} is not a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _Unreadable(f"{value!r} is not a whole number") from None
    if number < 0:
        raise _Unreadable(f"{value!r} is below 0")
    return number


_CONVERTERS = {
    "integer": _whole,
    "float": _cpus,
    "scalar-unit.size": lambda value: _tosca_size(_memory_bytes(value)),
}


# --- the import


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors, even where the same value appears twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass(frozen=True)
class _Port:
    target: int
    protocol: str
    published: bool


class _Importer:
    def __init__(self, text: str, name: str | None) -> None:
        self.text = text
        self.name = name
        self.problems: list[ComposeProblem] = []
        self.document: YamlDocument | None = None
        self.source_lines: list[str] = []
        self.inputs: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.services: dict[str, Any] = {}
        self.volumes: dict[str, str] = {}  # compose volume → node
        self.secrets: dict[str, str] = {}  # compose secret → node
        self.refused: set[tuple[str, str]] = set()  # ("volumes" or "secrets", name): already reported
        self.taken: set[str] = set()  # node names
        self.owners: dict[str, tuple[str | None, str]] = {}  # node → (service, key) for validation problems
        self.contexts: list[str] = []

    # problems

    def _add(self, severity: Severity, service: str | None, path: tuple[Any, ...], message: str) -> None:
        line = None
        if self.document is not None:
            line = self.document.line("services", service, *path) if service is not None else self.document.line(*path)
        self.problems.append(ComposeProblem(service, _key(path), message, severity, line))

    def error(self, service: str | None, path: tuple[Any, ...], message: str) -> None:
        self._add(Severity.ERROR, service, path, message)

    def warn(self, service: str | None, path: tuple[Any, ...], message: str) -> None:
        self._add(Severity.WARNING, service, path, message)

    # the whole file

    def run(self) -> ComposeImport:
        data = self.load()
        if data is not None:
            self.top_level(data)
        if any(p.severity is Severity.ERROR for p in self.problems):
            return self.result(None)
        template = self.dump()
        self.validate(template)
        if any(p.severity is Severity.ERROR for p in self.problems):
            return self.result(None)
        return self.result(template)

    def result(self, template: str | None) -> ComposeImport:
        # In the order of the file, as a person fixes them; those without a line (from validation) last.
        ordered = sorted(self.problems, key=lambda p: (p.line is None, p.line or 0))
        return ComposeImport(template, tuple(ordered), tuple(dict.fromkeys(self.contexts)) if template else ())

    def load(self) -> dict[Any, Any] | None:
        if not self.text.strip():
            self.error(None, (), "The compose file is empty; it needs services.")
            return None
        try:
            document = load_yaml(self.text.encode(), limits=COMPOSE_LIMITS)
        except YamlError as exc:
            # The loader speaks of templates; only what the file should be differs for a compose file.
            message = exc.message.replace(_TOSCA_SHAPE, "a compose file is a mapping with services").replace(
                _TOSCA_START, "a compose file starts with services"
            )
            self.problems.append(ComposeProblem(None, "", message, Severity.ERROR, exc.line))
            return None
        self.document = document
        self.source_lines = self.text.splitlines()
        for warning in document.warnings:
            self.problems.append(ComposeProblem(None, "", warning.message, Severity.WARNING, warning.line))
        return document.data

    def top_level(self, data: dict[Any, Any]) -> None:
        for key in data:
            if isinstance(key, str) and key.startswith("x-"):
                continue
            if key not in _TOP_LEVEL:
                self.error(None, (key,), f'"{key}" is not a compose key Agora imports; remove it.')
        if data.get("include"):
            self.error(None, ("include",), "Agora imports one compose file; write the included services into it.")
        if data.get("configs"):
            self.error(None, ("configs",), _UNSUPPORTED["configs"] + ".")
        if self.name is None:
            own = data.get("name")
            self.name = own if isinstance(own, str) and own and "$" not in own else DEFAULT_NAME
        services = data.get("services")
        if not isinstance(services, dict) or not services:
            self.error(None, ("services",), "The compose file has no services; Agora needs at least one to deploy.")
            return
        total = len(services) + len(_mapping(data.get("volumes"))) + len(_mapping(data.get("secrets")))
        if total > COMPOSE_LIMITS.max_node_templates:
            self.error(
                None,
                ("services",),
                f"The file defines {total} services, volumes and secrets; Agora imports at most "
                f"{COMPOSE_LIMITS.max_node_templates}.",
            )
            return
        self.services = services
        for service in services:
            if not isinstance(service, str) or not NODE_NAME.match(service):
                self.error(
                    str(service),
                    (),
                    "Agora names the service's containers after it and other services reach it by this name: use "
                    "1 to 32 letters, digits, _ and -, starting and ending with a letter or digit, and rename it "
                    "wherever other services use it.",
                )
            else:
                self.taken.add(service)
        self.top_volumes(_section(self, data, "volumes"))
        self.top_secrets(_section(self, data, "secrets"))
        self.top_networks(_section(self, data, "networks"))
        for service, definition in services.items():
            if isinstance(service, str) and NODE_NAME.match(service):
                self.service(service, definition)

    def unique(self, base: str, suffix: str) -> str:
        """A node name crane can name a volume or secret with, unlike every other node's."""
        name = re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-_")[:32].strip("-_") or suffix
        if name in self.taken:
            name = f"{name[: 31 - len(suffix)]}_{suffix}"
        candidate, counter = name, 2
        while candidate in self.taken:
            candidate = f"{name[: 30 - len(str(counter))]}_{counter}"
            counter += 1
        self.taken.add(candidate)
        return candidate

    def top_volumes(self, volumes: dict[Any, Any]) -> None:
        for volume, spec in volumes.items():
            path: tuple[Any, ...] = ("volumes", volume)
            spec = spec if spec is not None else {}
            if not isinstance(spec, dict):
                self.error(None, path, "A volume is a mapping (or empty); write it as `name: {}`.")
                continue
            ok = True
            for key, value in spec.items():
                if key in ("external", "name"):
                    if key == "external" and value is False:
                        continue
                    self.error(
                        None,
                        (*path, key),
                        "A volume made outside the deployment would be shared between subscribers; remove "
                        f"{key}: Agora makes a volume of each deployment's own.",
                    )
                    ok = False
                elif key == "driver" and value != "local":
                    self.error(
                        None, (*path, key), f"Agora's volumes use the target's local driver; remove driver: {value}."
                    )
                    ok = False
                elif key == "driver_opts" and value:
                    options = value if isinstance(value, dict) else {}
                    host = "bind" in str(options.get("o", "")).split(",") or options.get("type") == "none"
                    self.error(
                        None,
                        (*path, key),
                        "This volume is a folder of the Docker host (o: bind), which a template never gets; remove "
                        "driver_opts and keep the volume."
                        if host or "device" in options
                        else "Driver options reach storage outside the deployment; remove driver_opts.",
                    )
                    ok = False
                elif key == "labels":
                    self.warn(None, (*path, key), "Agora's volumes carry only Agora's labels; these are dropped.")
                elif key != "driver" and not (isinstance(key, str) and key.startswith("x-")):
                    self.error(None, (*path, key), f'"{key}" is not a volume setting Agora imports; remove it.')
                    ok = False
            if not ok:
                self.refused.add(("volumes", str(volume)))
            elif isinstance(volume, str):
                node = self.unique(volume, "volume")
                self.volumes[volume] = node
                self.nodes[node] = {"type": VOLUME}
                self.owners[node] = (None, f"volumes.{volume}")

    def top_secrets(self, secrets: dict[Any, Any]) -> None:
        for secret, spec in secrets.items():
            path: tuple[Any, ...] = ("secrets", secret)
            if not isinstance(spec, dict):
                self.error(None, path, "A secret is a mapping with file: or environment:.")
                continue
            refused = [k for k in spec if k in ("external", "name") and spec[k] is not False]
            for key in refused:
                self.error(
                    None,
                    (*path, key),
                    f"A secret made outside the deployment would be shared between subscribers; remove {key} and "
                    "give the secret a file: each subscriber then sets its value.",
                )
            unknown = [k for k in spec if k not in ("file", "environment", "external", "name", "labels")]
            for key in unknown:
                if not (isinstance(key, str) and key.startswith("x-")):
                    self.error(None, (*path, key), f'"{key}" is not a secret setting Agora imports; remove it.')
            if refused or [k for k in unknown if not str(k).startswith("x-")]:
                self.refused.add(("secrets", str(secret)))
                continue
            source = spec.get("file") or spec.get("environment")
            if not isinstance(source, str) or not isinstance(secret, str):
                self.error(None, path, "A secret needs a file: (or environment:) for Agora to know it exists.")
                continue
            if "labels" in spec:
                self.warn(None, (*path, "labels"), "Agora's secrets carry only Agora's labels; these are dropped.")
            node = self.unique(secret, "secret")
            value_input = self.new_input(secret, "secret")
            where = "the file " + source if "file" in spec else "the environment variable " + source
            self.inputs[value_input] = {
                "type": "string",
                "description": f"The value of the secret {secret} (in the compose file, {where}).",
                "metadata": {"secret": True},
            }
            self.nodes[node] = {"type": SECRET, "properties": {"value": {"get_input": value_input}}}
            self.secrets[secret] = node
            self.owners[node] = (None, f"secrets.{secret}")
            self.warn(
                None,
                path,
                f"The secret's value is not imported: it becomes the secret input {value_input}, which each "
                "subscriber sets.",
            )

    def new_input(self, wanted: str, suffix: str) -> str:
        name, counter = wanted, 1
        while name in self.inputs:
            name = f"{wanted}_{suffix}" if counter == 1 else f"{wanted}_{suffix}_{counter}"
            counter += 1
        return name

    def top_networks(self, networks: dict[Any, Any]) -> None:
        kept = []
        for network, spec in networks.items():
            spec = spec if isinstance(spec, dict) else {}
            refused = False
            for key in ("external", "name"):
                if spec.get(key) not in (None, False):
                    self.error(
                        None,
                        ("networks", network, key),
                        "A network made outside the deployment would join it to other tenants' services; remove "
                        f"{key}: Agora gives each deployment its own network.",
                    )
                    refused = True
            if not refused:
                kept.append(str(network))
        if kept:
            self.warn(
                None,
                ("networks",),
                f"Agora puts every service on the deployment's own private network, where each reaches every other "
                f"by its service name; the networks {', '.join(kept)} and the separation between them are dropped.",
            )

    # one service

    def service(self, service: str, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.error(service, (), "A service is a mapping with at least an image (or a build).")
            return
        for key in spec:
            if not isinstance(key, str):
                self.error(service, (), f"{key!r} is not a compose key.")
            elif key in _FORBIDDEN:
                self.error(service, (key,), f"{_FORBIDDEN[key]}; Agora never grants it. Remove {key}.")
            elif key in _UNSUPPORTED:
                if key == "links":
                    continue  # handled with depends_on
                self.error(service, (key,), _UNSUPPORTED[key] + ".")
            elif key in _DROPPED:
                self.warn(service, (key,), f"{_DROPPED[key]}; {key} is dropped.")
            elif key not in _SERVICE_KEYS and not key.startswith("x-"):
                self.error(
                    service,
                    (key,),
                    f'"{key}" is not a compose key Agora imports; remove it (Agora refuses what it does not know).',
                )
        properties: dict[str, Any] = {}
        node: dict[str, Any] = {"type": CONTAINER, "properties": properties}
        requirements: list[dict[str, Any]] = []
        self.image(service, spec, node)
        command = self.command(service, spec.get("command"))
        if command is not None:
            properties["command"] = command
        environment = self.environment(service, spec.get("environment"))
        if environment:
            properties["environment"] = environment
        ports = self.ports(service, spec)
        if ports:
            properties["ports"] = [
                {"target": p.target}
                | ({"protocol": p.protocol} if p.protocol != "tcp" else {})
                | ({} if p.published else {"published": False})
                for p in ports
            ]
        self.deploy(service, spec, properties)
        healthcheck = self.healthcheck(service, spec.get("healthcheck"))
        if healthcheck is not None:
            properties["healthcheck"] = healthcheck
        requirements.extend(self.mounts(service, spec.get("volumes")))
        requirements.extend(self.service_secrets(service, spec.get("secrets")))
        requirements.extend(self.dependencies(service, spec))
        self.service_networks(service, spec.get("networks"))
        self.labels(service, ("labels",), spec.get("labels"))
        if requirements:
            node["requirements"] = requirements
        if not properties:
            del node["properties"]
        self.nodes[service] = node
        self.owners[service] = (service, "")
        self.output(service, ports)

    def image(self, service: str, spec: dict[Any, Any], node: dict[str, Any]) -> None:
        build = spec.get("build")
        image = spec.get("image")
        if build is not None:
            context = self.build(service, build)
            if context is not None:
                node["artifacts"] = {"build": {"type": BUILD_CONTEXT, "file": context}}
                if image is not None:
                    self.warn(
                        service,
                        ("image",),
                        "Agora builds the image from the build context and names it itself; the image name is dropped.",
                    )
            return
        if image is None:
            self.error(service, (), "The service has neither an image nor a build; give it one of them.")
            return
        if not isinstance(image, str) or not image.strip():
            self.error(service, ("image",), "The image is an image reference such as nginx:1.25.")
            return
        value = self.text_value(service, ("image",), image)
        if value is not None:
            node["properties"]["image"] = value

    def build(self, service: str, build: Any) -> str | None:
        path: tuple[Any, ...] = ("build",)
        if isinstance(build, str):
            context = build
        elif isinstance(build, dict):
            context = build.get("context", ".")
            for key, value in build.items():
                if key in ("context",) or (isinstance(key, str) and key.startswith("x-")):
                    continue
                if key == "dockerfile":
                    if posixpath.normpath(str(value)) != "Dockerfile":
                        self.error(
                            service,
                            (*path, key),
                            f"Agora builds the Dockerfile at the root of the build context; rename {value} to "
                            "Dockerfile (or move the context).",
                        )
                elif key in ("args", "target"):
                    self.error(
                        service,
                        (*path, key),
                        f"Agora's build artifact takes no build {key}; "
                        + ("set the ARG defaults in the Dockerfile." if key == "args" else "make the stage the last."),
                    )
                elif key in ("labels", "cache_from", "cache_to", "no_cache", "pull", "tags", "platforms"):
                    self.warn(
                        service, (*path, key), f"Agora builds on the target with its own settings; {key} is dropped."
                    )
                else:
                    self.error(service, (*path, key), f'Agora does not build with "{key}"; remove it.')
        else:
            self.error(service, path, "build is the path of the build context, or a mapping with context.")
            return None
        if not isinstance(context, str) or "$" in context:
            self.error(service, path, "The build context is a literal folder path inside the compose project.")
            return None
        if _URLISH.match(context):
            self.error(
                service,
                path,
                "Agora never downloads build contexts; put the folder inside the compose project and pack it in "
                "the CSAR.",
            )
            return None
        folder = posixpath.normpath(context)
        if context.startswith(("/", "~")) or folder == ".." or folder.startswith("../"):
            self.error(
                service,
                path,
                f"The build context {context} is outside the compose project; move it inside, so that it can be "
                "packed in the CSAR.",
            )
            return None
        self.contexts.append(folder)
        self.warn(
            service,
            path,
            f"The image is built from the folder {folder}: pack the template and that folder (with its Dockerfile) "
            f"in a CSAR, the folder at {folder} next to the template, and upload the CSAR.",
        )
        return folder

    def command(self, service: str, command: Any) -> list[Any] | None:
        path: tuple[Any, ...] = ("command",)
        if command is None:
            return None
        if isinstance(command, str):
            return self.split_command(service, path, command)
        if not isinstance(command, list):
            self.error(service, path, "command is a string or a list of strings.")
            return None
        words: list[Any] = []
        for index, word in enumerate(command):
            if isinstance(word, dict | list):
                self.error(service, (*path, index), "command's items are strings.")
                return None
            value = self.text_value(service, (*path, index), self.literal(word, service, *path, index))
            if value is None:
                return None
            words.append(value)
        return words

    def split_command(self, service: str, path: tuple[Any, ...], command: str) -> list[Any] | None:
        # Interpolations stand as placeholders while the shell words are split, so a default with
        # spaces stays one word, as the value will be.
        placeholders: list[str] = []

        def hold(match: re.Match[str]) -> str:
            placeholders.append(match.group())
            return f"\x00{len(placeholders) - 1}\x00"

        held = re.sub(r"\$\{[^}]*\}", hold, command.replace("$$", "\x01"))
        try:
            words = shlex.split(held)
        except ValueError as exc:
            self.error(service, path, f"The command cannot be split into words ({exc}); write it as a list.")
            return None
        result = []
        for word in words:
            restored = re.sub(r"\x00(\d+)\x00", lambda m: placeholders[int(m.group(1))], word).replace("\x01", "$$")
            value = self.text_value(service, path, restored)
            if value is None:
                return None
            result.append(value)
        return result

    def environment(self, service: str, environment: Any) -> dict[str, Any]:
        path: tuple[Any, ...] = ("environment",)
        pairs: list[tuple[Any, Any, tuple[Any, ...]]] = []
        if environment is None:
            return {}
        if isinstance(environment, list):
            for index, item in enumerate(environment):
                if not isinstance(item, str):
                    self.error(service, (*path, index), "An environment item is NAME=value or NAME.")
                    continue
                key, sep, value = item.partition("=")
                pairs.append((key, value if sep else None, (*path, index)))
        elif isinstance(environment, dict):
            for key, value in environment.items():
                if isinstance(value, dict | list):
                    self.error(service, (*path, key), "An environment value is a string.")
                    continue
                pairs.append((key, None if value is None else self.literal(value, service, *path, key), (*path, key)))
        else:
            self.error(service, path, "environment is a list of NAME=value or a mapping.")
            return {}
        result: dict[str, Any] = {}
        for key, value, where in pairs:
            if not isinstance(key, str) or not ENVIRONMENT_NAME.match(key):
                self.error(
                    service,
                    where,
                    f"{key!r} is not a variable name Agora passes on (letters, digits and _, not starting with a "
                    "digit); rename it.",
                )
                continue
            if value is None:
                # Compose takes it from the shell that runs compose: in Agora, the subscriber sets it.
                name = self.variable_input(service, where, _Variable(key), "string", origin=f"{key} of {service}")
                if name is not None:
                    result[key] = {"get_input": name}
                continue
            converted = self.text_value(service, where, value)
            if converted is not None:
                result[key] = converted
        return result

    def ports(self, service: str, spec: dict[Any, Any]) -> list[_Port]:
        found: list[_Port] = []
        dropped: list[str] = []
        ports = spec.get("ports")
        if ports is not None and not isinstance(ports, list):
            self.error(service, ("ports",), "ports is a list.")
            ports = []
        for index, item in enumerate(ports or []):
            where: tuple[Any, ...] = ("ports", index)
            try:
                parsed, host = self.port(service, where, item)
            except _Unreadable as exc:
                self.error(service, where, f"{exc}.")
                continue
            found.extend(parsed)
            if host:
                dropped.append(host)
        expose = spec.get("expose")
        if expose is not None and not isinstance(expose, list):
            self.error(service, ("expose",), "expose is a list.")
            expose = []
        for index, item in enumerate(expose or []):
            where = ("expose", index)
            text = self.literal(item, service, *where)
            try:
                if "$" in text:
                    raise _Unreadable("a port number is literal; write it out")
                number, _, protocol = text.partition("/")
                found.extend(_Port(t, _protocol(protocol), False) for t in _port_range(number))
            except _Unreadable as exc:
                self.error(service, where, f"{exc}.")
        unique: dict[tuple[int, str], _Port] = {}
        for port in found:
            known = unique.get((port.target, port.protocol))
            if known is None:
                unique[(port.target, port.protocol)] = port
            elif port.published:
                unique[(port.target, port.protocol)] = _Port(port.target, port.protocol, True)
        if len(unique) > MAX_PORTS:
            self.error(service, ("ports",), f"Agora publishes at most {MAX_PORTS} ports per service.")
        if dropped:
            self.warn(
                service,
                ("ports",),
                f"Agora publishes ports on host ports it picks from the target's pool; the host side "
                f"({', '.join(dropped)}) is dropped. Subscribers find the service at its URL output.",
            )
        return list(unique.values())

    def port(self, service: str, where: tuple[Any, ...], item: Any) -> tuple[list[_Port], str]:
        if isinstance(item, dict):
            for key in item:
                if key not in _PORT_KEYS and not str(key).startswith("x-"):
                    raise _Unreadable(f'"{key}" is not a port setting Agora imports; remove it')
            target = self.literal(item.get("target"), service, *where, "target")
            if "$" in target or not target:
                raise _Unreadable("the target port is a literal number; write it out")
            published = item.get("published")
            host = "" if published is None else self.literal(published, service, *where, "published")
            if item.get("host_ip"):
                host = f"{item['host_ip']}:{host}" if host else str(item["host_ip"])
            if item.get("mode") == "ingress" and host:
                host += " (ingress)"
            protocol = _protocol(str(item.get("protocol") or ""))
            return [_Port(t, protocol, True) for t in _port_range(target)], host
        text = self.literal(item, service, *where)
        if not text:
            raise _Unreadable("a port is a number, HOST:CONTAINER or a mapping with target")
        body, _, protocol_text = text.partition("/")
        host = ""
        if body.startswith("["):  # [IPv6]:published:target
            address, bracket, rest = body[1:].partition("]:")
            if not bracket:
                raise _Unreadable(f"{text!r} is not a port such as 8080:80")
            host, body = f"[{address}]", rest
        pieces = body.split(":")
        if len(pieces) > 3 or (host and len(pieces) > 2):
            raise _Unreadable(f"{text!r} is not a port such as 8080:80")
        target = pieces[-1]
        if "$" in target:
            raise _Unreadable("the container port is a literal number; write it out")
        if len(pieces) > 1:
            host = ":".join(p for p in [host, *pieces[:-1]] if p) or host
        return [_Port(t, _protocol(protocol_text), True) for t in _port_range(target)], host

    def deploy(self, service: str, spec: dict[Any, Any], properties: dict[str, Any]) -> None:
        deploy = spec.get("deploy")
        if deploy is not None and not isinstance(deploy, dict):
            self.error(service, ("deploy",), "deploy is a mapping.")
            deploy = None
        deploy = deploy or {}
        for key in deploy:
            if key not in _DEPLOY_KEYS and not str(key).startswith("x-"):
                self.error(service, ("deploy", key), f'"{key}" is not a deploy setting Agora imports; remove it.')
        mode = deploy.get("mode")
        if mode not in (None, "replicated"):
            self.error(
                service,
                ("deploy", "mode"),
                f"Agora runs replicated services only; remove mode: {mode} and set replicas.",
            )
        replicas_at: tuple[Any, ...] | None = None
        if "replicas" in deploy:
            replicas_at = ("deploy", "replicas")
            if "scale" in spec:
                self.warn(service, ("scale",), "deploy.replicas is used; scale is dropped.")
        elif "scale" in spec:
            replicas_at = ("scale",)
        if replicas_at is not None:
            raw = deploy["replicas"] if replicas_at[0] == "deploy" else spec["scale"]
            value = self.typed_value(service, replicas_at, raw, "integer")
            if isinstance(value, int) and value > MAX_REPLICAS:
                self.error(service, replicas_at, f"Agora runs at most {MAX_REPLICAS} replicas of a service.")
            elif value is not None:
                properties["replicas"] = value
        resources = _mapping(deploy.get("resources"))
        limits = _mapping(resources.get("limits"))
        for key in resources:
            if key not in ("limits", "reservations"):
                self.error(service, ("deploy", "resources", key), f'"{key}" is not a resource setting; remove it.')
        for key in limits:
            if key in ("devices", "generic_resources"):
                self.error(
                    service,
                    ("deploy", "resources", "limits", key),
                    f"{_FORBIDDEN['devices']}; Agora never grants it. Remove {key}.",
                )
            elif key == "pids":
                self.warn(
                    service, ("deploy", "resources", "limits", key), f"{_DROPPED['pids_limit']}; pids is dropped."
                )
            elif key not in ("cpus", "memory"):
                self.error(service, ("deploy", "resources", "limits", key), f'"{key}" is not a limit Agora imports.')
        reservations = _mapping(resources.get("reservations"))
        for key in reservations:
            if key in ("devices", "generic_resources"):
                self.error(
                    service,
                    ("deploy", "resources", "reservations", key),
                    f"{_FORBIDDEN['devices']}; Agora never grants it. Remove {key}.",
                )
            else:
                self.warn(
                    service,
                    ("deploy", "resources", "reservations", key),
                    "Agora reserves nothing beyond the limits; the reservation is dropped.",
                )
        for prop, kind, deploy_key, legacy in (
            ("cpu_limit", "float", "cpus", "cpus"),
            ("mem_limit", "scalar-unit.size", "memory", "mem_limit"),
        ):
            if deploy_key in limits:
                at: tuple[Any, ...] = ("deploy", "resources", "limits", deploy_key)
                raw = limits[deploy_key]
                if legacy in spec:
                    self.warn(service, (legacy,), f"deploy.resources.limits.{deploy_key} is used; {legacy} is dropped.")
            elif legacy in spec:
                at, raw = (legacy,), spec[legacy]
            else:
                continue
            value = self.typed_value(service, at, raw, kind)
            if value is not None:
                properties[prop] = value
        missing = [what for what, prop in (("CPUs", "cpu_limit"), ("memory", "mem_limit")) if prop not in properties]
        if missing:
            self.warn(
                service,
                ("deploy", "resources", "limits") if deploy.get("resources") else (),
                f"The service sets no {' and no '.join(missing)} limit; Agora's defaults apply (0.5 CPUs, "
                "256 MB); set deploy.resources.limits for what it needs.",
            )
        if "restart_policy" in deploy:
            self.warn(service, ("deploy", "restart_policy"), f"{_DROPPED['restart']}; restart_policy is dropped.")
        for key in ("update_config", "rollback_config"):
            if key in deploy:
                self.warn(service, ("deploy", key), f"Agora updates services its own way; {key} is dropped.")
        if "endpoint_mode" in deploy:
            self.warn(
                service,
                ("deploy", "endpoint_mode"),
                "Agora resolves services by DNS round robin (dnsrr); endpoint_mode is dropped.",
            )
        self.placement(service, deploy.get("placement"))
        self.labels(service, ("deploy", "labels"), deploy.get("labels"))

    def placement(self, service: str, placement: Any) -> None:
        if placement is None:
            return
        path: tuple[Any, ...] = ("deploy", "placement")
        constraints = _mapping(placement).get("constraints") or []
        for index, constraint in enumerate(constraints if isinstance(constraints, list) else []):
            compact = re.sub(r"\s+", "", str(constraint))
            if compact in ("node.role==manager", "node.role!=worker"):
                self.error(
                    service,
                    (*path, "constraints", index),
                    "Agora never runs a publisher's service on a swarm manager; remove the constraint.",
                )
                return
        self.warn(service, path, "Agora places services itself; placement is dropped.")

    def labels(self, service: str, path: tuple[Any, ...], labels: Any) -> None:
        if not labels:
            return
        names = [str(item).partition("=")[0] for item in labels] if isinstance(labels, list) else list(labels)
        reserved = [n for n in names if str(n).lower().startswith(RESERVED_LABEL_PREFIXES)]
        if reserved:
            self.error(
                service,
                path,
                f"The labels {', '.join(map(str, reserved))} use a prefix reserved for Agora and Docker (agora., "
                "com.docker.); rename or remove them.",
            )
        else:
            self.warn(service, path, "Agora's profile has no labels; they are dropped.")

    def healthcheck(self, service: str, check: Any) -> dict[str, Any] | None:
        path: tuple[Any, ...] = ("healthcheck",)
        if check is None:
            return None
        if not isinstance(check, dict):
            self.error(service, path, "healthcheck is a mapping with test, interval, timeout and retries.")
            return None
        for key in check:
            if key not in _HEALTH_KEYS and not str(key).startswith("x-"):
                self.error(service, (*path, key), f'"{key}" is not a health check setting Agora imports.')
        if check.get("disable") is True:
            return {"test": ["NONE"]}
        result: dict[str, Any] = {}
        test = check.get("test")
        if isinstance(test, str):
            value = self.text_value(service, (*path, "test"), test)
            words: list[Any] | None = ["CMD-SHELL", value] if value is not None else None
        elif isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE"):
            words = [test[0]]
            for index, word in enumerate(test[1:], start=1):
                value = self.text_value(
                    service, (*path, "test", index), self.literal(word, service, *path, "test", index)
                )
                if value is None:
                    words = None
                    break
                words.append(value)
        elif test is None:
            self.error(service, path, "The health check has no test; give it one, or remove the health check.")
            return None
        else:
            self.error(
                service, (*path, "test"), 'The test is a shell command, or a list starting with "CMD" or "CMD-SHELL".'
            )
            return None
        if words is None:
            return None
        result["test"] = words
        for key in ("interval", "timeout"):
            if key in check:
                try:
                    result[key] = _tosca_time(_duration_nanos(check[key]))
                except _Unreadable as exc:
                    self.error(service, (*path, key), f"{exc}.")
        if "retries" in check:
            retries = self.typed_value(service, (*path, "retries"), check["retries"], "integer", literal_only=True)
            if retries is not None:
                result["retries"] = retries
        for key in ("start_period", "start_interval"):
            if key in check:
                self.warn(service, (*path, key), f"Agora's profile has no {key}; it is dropped.")
        return result

    def mounts(self, service: str, volumes: Any) -> Iterator[dict[str, Any]]:
        if volumes is None:
            return
        if not isinstance(volumes, list):
            self.error(service, ("volumes",), "volumes is a list.")
            return
        locations: set[str] = set()
        for index, item in enumerate(volumes):
            where: tuple[Any, ...] = ("volumes", index)
            mount = self.mount(service, where, item)
            if mount is None:
                continue
            source, location = mount
            if location in locations:
                self.error(service, where, f"{location} is mounted twice; keep one.")
                continue
            locations.add(location)
            if source is None:
                node = self.unique(f"{service}-{posixpath.basename(location)}", "volume")
                self.nodes[node] = {"type": VOLUME}
                self.owners[node] = (service, _key(where))
                self.warn(
                    service,
                    where,
                    f"The anonymous volume at {location} becomes the volume {node} of the deployment.",
                )
            else:
                node = self.volumes[source]
            yield {
                "volume": {
                    "node": node,
                    "relationship": {"type": MOUNTS_VOLUME, "properties": {"location": location}},
                }
            }

    def mount(self, service: str, where: tuple[Any, ...], item: Any) -> tuple[str | None, str] | None:
        """(compose volume or None when anonymous, path in the container), or None when refused."""
        read_only = False
        source: Any
        target: Any
        if isinstance(item, str):
            if "docker.sock" in item:
                self.error(service, where, _SOCKET)
                return None
            pieces = item.split(":")
            if len(pieces) > 3:
                self.error(service, where, f"{item!r} is not a volume such as data:/var/lib/data.")
                return None
            source = pieces[0] if len(pieces) > 1 else None
            target = pieces[1] if len(pieces) > 1 else pieces[0]
            modes = pieces[2].split(",") if len(pieces) == 3 else []
            read_only = "ro" in modes
            unknown = [
                m for m in modes if m not in ("ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent")
            ]
            if unknown:
                self.error(service, where, f"The mount option {unknown[0]} is not one compose defines.")
                return None
            if source is not None and _host_path(source):
                self.error(service, where, _bind_message(source))
                return None
        elif isinstance(item, dict):
            kind = item.get("type", "volume")
            source_value, target = item.get("source"), item.get("target")
            if "docker.sock" in f"{source_value} {target}":
                self.error(service, where, _SOCKET)
                return None
            if kind == "bind":
                self.error(service, where, _bind_message(str(source_value)))
                return None
            if kind == "tmpfs":
                self.warn(service, where, f"{_DROPPED['tmpfs']}; the tmpfs mount is dropped.")
                return None
            if kind != "volume":
                self.error(service, where, f"Agora mounts the deployment's volumes only; a {kind} mount is not one.")
                return None
            for key, value in item.items():
                if key == "volume" and isinstance(value, dict) and value.get("subpath"):
                    self.error(service, (*where, key), "Agora mounts whole volumes; remove subpath.")
                    return None
                if key not in ("type", "source", "target", "read_only", "volume", "consistency") and not str(
                    key
                ).startswith("x-"):
                    self.error(service, (*where, key), f'"{key}" is not a mount setting Agora imports.')
                    return None
            source = source_value if source_value not in (None, "") else None
            read_only = item.get("read_only") is True
        else:
            self.error(service, where, "A volume is a string such as data:/var/lib/data, or a mapping.")
            return None
        if not isinstance(target, str) or "$" in target or (source is not None and not isinstance(source, str)):
            self.error(service, where, "The mount's paths and names are literal; write them out.")
            return None
        if source is not None and "$" in source:
            self.error(service, where, "The volume's name is literal; write it out.")
            return None
        location = posixpath.normpath(target)
        if not target.startswith("/") or location == "/" or location.startswith("//"):
            self.error(service, where, f"{target!r} is not an absolute path below / in the container.")
            return None
        if any(location == p or location.startswith(p + "/") for p in RESERVED_PATHS):
            self.error(service, where, f"{location} is reserved (/proc, /sys, /dev, /run/secrets); mount elsewhere.")
            return None
        if source is not None and ("volumes", source) in self.refused:
            return None
        if source is not None and source not in self.volumes:
            self.error(
                service,
                where,
                f"The volume {source} is not declared under the top-level volumes (or was refused there); declare it.",
            )
            return None
        if read_only:
            self.warn(service, where, f"Agora mounts volumes read-write; {location} is no longer read-only.")
        return source, location

    def service_secrets(self, service: str, secrets: Any) -> Iterator[dict[str, Any]]:
        if secrets is None:
            return
        if not isinstance(secrets, list):
            self.error(service, ("secrets",), "secrets is a list.")
            return
        for index, item in enumerate(secrets):
            where: tuple[Any, ...] = ("secrets", index)
            source: Any
            target: Any
            if isinstance(item, str):
                source, target = item, item
            elif isinstance(item, dict):
                source, target = item.get("source"), item.get("target") or item.get("source")
                for key in item:
                    if key in ("uid", "gid", "mode"):
                        self.warn(service, (*where, key), f"Agora gives secrets its own {key}; {key} is dropped.")
                    elif key not in ("source", "target") and not str(key).startswith("x-"):
                        self.error(service, (*where, key), f'"{key}" is not a secret setting Agora imports.')
            else:
                self.error(service, where, "A secret is a name, or a mapping with source and target.")
                continue
            if ("secrets", str(source)) in self.refused:
                continue
            if not isinstance(source, str) or source not in self.secrets:
                self.error(
                    service,
                    where,
                    f"The secret {source} is not declared under the top-level secrets (or was refused there); "
                    "declare it with a file.",
                )
                continue
            file = str(target)
            if file.startswith("/"):
                if posixpath.dirname(posixpath.normpath(file)) != "/run/secrets":
                    self.error(
                        service,
                        where,
                        f"Agora puts secrets in /run/secrets; read it from /run/secrets/{source} instead of {file}.",
                    )
                    continue
                file = posixpath.basename(file)
            if not SECRET_FILE.match(file):
                self.error(service, where, f"{file!r} is not a file name under /run/secrets.")
                continue
            node = self.secrets[source]
            if file == node:
                yield {"secret": node}
            else:
                yield {
                    "secret": {
                        "node": node,
                        "relationship": {"type": USES_SECRET, "properties": {"target": file}},
                    }
                }

    def dependencies(self, service: str, spec: dict[Any, Any]) -> Iterator[dict[str, Any]]:
        needed: list[str] = []
        depends = spec.get("depends_on")
        if isinstance(depends, list):
            entries: list[tuple[Any, Any, tuple[Any, ...]]] = [
                (item, None, ("depends_on", index)) for index, item in enumerate(depends)
            ]
        elif isinstance(depends, dict):
            entries = [(name, value, ("depends_on", name)) for name, value in depends.items()]
        elif depends is None:
            entries = []
        else:
            self.error(service, ("depends_on",), "depends_on is a list of services, or a mapping.")
            entries = []
        for other, options, where in entries:
            options = options if isinstance(options, dict) else {}
            if options.get("condition") == "service_completed_successfully":
                self.error(
                    service,
                    (*where, "condition"),
                    f"Agora runs services that keep running, so {other} would never complete; run its work in a "
                    "Standard lifecycle script (in a CSAR) or in the image's entrypoint.",
                )
                continue
            if options.get("required") is False:
                self.warn(service, (*where, "required"), f"Agora deploys {other} first all the same.")
            needed.append(str(other))
        links = spec.get("links")
        for index, link in enumerate(links if isinstance(links, list) else []):
            other, _, alias = str(link).partition(":")
            if alias and alias != other:
                self.error(service, ("links", index), _UNSUPPORTED["links"] + f": use {other}, not {alias}.")
                continue
            self.warn(service, ("links", index), "links are legacy; the link becomes a dependency.")
            needed.append(other)
        if links is not None and not isinstance(links, list):
            self.error(service, ("links",), "links is a list of services.")
        for other in dict.fromkeys(needed):
            if other == service or other not in self.services:
                self.error(service, ("depends_on",), f"{other} is not another service of this file.")
                continue
            yield {"dependency": other}

    def service_networks(self, service: str, networks: Any) -> None:
        if networks is None:
            return
        entries = networks.items() if isinstance(networks, dict) else ((n, None) for n in _list(networks))
        for network, options in entries:
            options = options if isinstance(options, dict) else {}
            for key in ("ipv4_address", "ipv6_address", "link_local_ips", "mac_address"):
                if key in options:
                    self.error(
                        service,
                        ("networks", network, key),
                        "Addresses are the deployment network's; remove the fixed address and use the service name.",
                    )
            if options.get("aliases"):
                self.warn(
                    service,
                    ("networks", network, "aliases"),
                    f"Network aliases are dropped; other services reach this one as {service} only.",
                )

    def output(self, service: str, ports: list[_Port]) -> None:
        published = [p for p in ports if p.published]
        if not published:
            return
        first = published[0]
        host_and_port: list[Any] = [
            {"get_attribute": [service, "public_address"]},
            ":",
            {"get_attribute": [service, "public_port"]},
        ]
        if first.protocol == "tcp":
            scheme = "https://" if first.target in (443, 8443) else "http://"
            name, value, what = f"{service}_url", [scheme, *host_and_port], "URL"
        else:
            name, value, what = f"{service}_address", host_and_port, "address (host:port, UDP)"
        self.outputs[name] = {
            "description": f"The {what} of {service} (container port {first.target}).",
            "value": {"concat": value},
        }
        if len(published) > 1:
            others = ", ".join(f"{p.target}/{p.protocol}" for p in published[1:])
            self.warn(
                service,
                ("ports",),
                f"Agora reports one public port per service: the output {name} is for container port {first.target}; "
                f"the ports {others} are published too, without an output.",
            )

    # values

    def literal(self, value: Any, service: str | None, *path: Any) -> str:
        """The value as compose (YAML 1.2) reads it: the text on its line where PyYAML made a number or a bool."""
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, bool | int | float) and self.document is not None:
            full = ("services", service, *path) if service is not None else path
            line = self.document.lines.get(full)
            if line is not None and line <= len(self.source_lines):
                pattern = _LIST_LINE if isinstance(path[-1], int) else _MAP_LINE
                match = pattern.match(self.source_lines[line - 1])
                # Only when the text on the line is that very value (not part of a flow collection).
                if match is not None and len(match.group("value")) < 100 and _reads_as(match.group("value"), value):
                    return match.group("value")
                if isinstance(value, int) and not isinstance(value, bool):
                    # In a flow collection ([22:22]): the base-60 token on the line that made this number.
                    for token in _SEXAGESIMAL.findall(self.source_lines[line - 1][:1000]):
                        if _reads_as(token, value):
                            return str(token)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def text_value(self, service: str, path: tuple[Any, ...], text: str) -> Any:
        """A string property's value: the text, a get_input, or a concat; None when refused."""
        try:
            parts = _interpolation(text)
        except _Unreadable as exc:
            self.error(service, path, f"{exc}.")
            return None
        values: list[Any] = []
        for part in parts:
            if isinstance(part, str):
                values.append(part)
                continue
            name = self.variable_input(service, path, part, "string")
            if name is None:
                return None
            values.append({"get_input": name})
        if not values:
            return ""
        if len(values) == 1:
            return values[0]
        return {"concat": values}

    def typed_value(
        self, service: str, path: tuple[Any, ...], raw: Any, kind: str, *, literal_only: bool = False
    ) -> Any:
        """A number or size property: a literal, or one whole ${VAR} that becomes an input of that type."""
        text = self.literal(raw, service, *path) if not isinstance(raw, int | float) else None
        convert = _CONVERTERS[kind]
        try:
            if text is None or "$" not in text:
                return convert(raw)
            if literal_only:
                raise _Unreadable("this value is literal; write it out")
            parts = _interpolation(text)
            if len(parts) != 1 or not isinstance(parts[0], _Variable):
                raise _Unreadable(
                    f"{text!r} mixes a variable with text where Agora needs one value; use ${{VAR}} alone"
                )
        except _Unreadable as exc:
            self.error(service, path, f"{exc}.")
            return None
        name = self.variable_input(service, path, parts[0], kind)
        return {"get_input": name} if name is not None else None

    def variable_input(
        self, service: str, path: tuple[Any, ...], variable: _Variable, kind: str, *, origin: str | None = None
    ) -> str | None:
        """The input standing for a variable; the first use declares it, later uses must agree on its type."""
        spec = self.inputs.get(variable.name)
        if spec is not None and spec.get("metadata", {}).get("secret"):
            self.error(
                service,
                path,
                f"The variable {variable.name} has the name of a secret's input; rename the variable or the secret.",
            )
            return None
        default: Any = variable.default
        if default is not None and kind != "string":
            try:
                default = _CONVERTERS[kind](default)
            except _Unreadable as exc:
                self.error(service, path, f"The default of ${{{variable.name}}}: {exc}.")
                return None
        if spec is None:
            description = (
                f"The environment variable {origin} in the compose file."
                if origin
                else f"${{{variable.name}}} in the compose file."
            )
            if variable.message:
                description += f" {variable.message}"
            spec = {"type": kind, "description": description}
            if default is not None:
                spec["default"] = default
            self.inputs[variable.name] = spec
            return variable.name
        if spec["type"] != kind:
            self.error(
                service,
                path,
                f"The variable {variable.name} is used as {_KIND_WORDS[spec['type']]} elsewhere and as "
                f"{_KIND_WORDS[kind]} here; use two variables.",
            )
            return None
        if default is not None and "default" not in spec:
            spec["default"] = default
        elif default is not None and spec["default"] != default:
            self.warn(
                service,
                path,
                f"${{{variable.name}}} has another default elsewhere ({spec['default']!r}); the input keeps that one.",
            )
        return variable.name

    # the template

    def dump(self) -> str:
        topology: dict[str, Any] = {}
        if self.inputs:
            topology["inputs"] = self.inputs
        topology["node_templates"] = self.nodes
        if self.outputs:
            topology["outputs"] = self.outputs
        template = {
            "tosca_definitions_version": TOSCA_VERSION,
            "description": "Imported from a compose file by Agora.",
            "metadata": {"template_name": self.name or DEFAULT_NAME},
            "imports": [AGORA_PROFILE_IMPORT],
            "topology_template": topology,
        }
        return yaml.dump(template, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)

    def validate(self, template: str) -> None:
        """Validate as Agora validates an upload: a single YAML, or a CSAR when images are built."""
        data = template.encode()
        if self.contexts:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("service.yaml", data)
                for folder in dict.fromkeys(self.contexts):
                    dockerfile = "Dockerfile" if folder == "." else f"{folder}/Dockerfile"
                    archive.writestr(dockerfile, "FROM scratch\n")
            report = validate_bytes(buffer.getvalue(), filename="service.csar")
        else:
            report = validate_bytes(data, filename="service.yaml")
        for problem in report.problems:
            service, key = self.owners.get(problem.node or "", (None, ""))
            prop = problem.property or ""
            self.problems.append(
                ComposeProblem(
                    service,
                    ".".join(k for k in (key, prop) if k),
                    f"Agora refuses the template made from this: {problem.message}",
                    problem.severity,
                )
            )


_SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "environment",
    "ports",
    "expose",
    "volumes",
    "secrets",
    "depends_on",
    "networks",
    "healthcheck",
    "deploy",
    "labels",
    "scale",
    "cpus",
    "mem_limit",
}
_KIND_WORDS = {"string": "text", "integer": "a whole number", "float": "a number", "scalar-unit.size": "a size"}
_SOCKET = "The Docker socket gives control over the whole host; Agora never mounts it. Remove the mount."


def _bind_message(source: str) -> str:
    return (
        f"{source} is a folder of the Docker host (a bind mount), which a template never gets; use a named volume "
        "(declared under the top-level volumes), or copy the files into the image."
    )


def _host_path(source: str) -> bool:
    # Compose's rule: a source starting with ".", "/" or "~" is a path on the host, anything else a volume name.
    return source.startswith((".", "/", "~")) or "/" in source or "\\" in source


def _protocol(text: str) -> str:
    protocol = text.strip().lower() or "tcp"
    if protocol not in ("tcp", "udp"):
        raise _Unreadable(f"Agora publishes tcp and udp ports; {protocol} is neither")
    return protocol


def _port_range(text: str) -> list[int]:
    start, sep, end = text.strip().partition("-")
    try:
        first, last = int(start), int(end) if sep else int(start)
    except ValueError:
        raise _Unreadable(f"{text!r} is not a port number") from None
    if not 1 <= first <= last <= 65535:
        raise _Unreadable(f"{text!r} is not a port number from 1 to 65535")
    if last - first >= MAX_PORTS:
        raise _Unreadable(f"the range {text} has more than the {MAX_PORTS} ports Agora publishes per service")
    return list(range(first, last + 1))


def _reads_as(text: str, value: Any) -> bool:
    try:
        found = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return type(found) is type(value) and found == value


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _section(importer: _Importer, data: dict[Any, Any], key: str) -> dict[Any, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        importer.error(None, (key,), f"{key} is a mapping of names to settings.")
        return {}
    return value


def _key(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
