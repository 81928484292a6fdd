"""What each kind of step does, through crane; and the values steps and outputs are evaluated with.

Secret input values are decrypted here, at the moment a step needs them, and never
written back: not into params, results, events nor errors (orchestrator.redact masks
them in what is written).
"""

from __future__ import annotations

import functools
import io
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from config.crypto import decrypt_json
from config.errors import AgoraError
from crane import driver
from crane import services as crane_services
from crane.specs import BuildContext, HealthCheck, Mount, Port, SecretMount, ServiceSpec
from orchestrator.functions import Context, FunctionError, Unresolved, resolve_fully
from orchestrator.limits import template_limits
from orchestrator.models import Deployment, Step
from orchestrator.plan import StepKind
from orchestrator.redact import masked_outputs, redactor_for
from orchestrator.tosca import Report, Template, validate_bytes
from orchestrator.tosca.csar import extract_csar, is_zip
from orchestrator.tosca.model import Limits
from orchestrator.tosca.units import size_in_bytes, time_in_seconds


class StepError(AgoraError):
    code = "step_failed"


@functools.lru_cache(maxsize=64)
def _report(sha256: str, data: bytes, filename: str, limits: Limits) -> Report:
    return validate_bytes(data, filename=filename, limits=limits)


def template_of(deployment: Deployment) -> Template:
    limits = template_limits()
    report = _report(deployment.template_sha256, bytes(deployment.template), deployment.template_filename, limits)
    if report.template is None:
        reasons = " ".join(p.message for p in report.problems)
        raise StepError(f"The deployment's template can no longer be read. {reasons}".strip())
    return report.template


def context_for(deployment: Deployment, steps: list[Step]) -> Context:
    template = template_of(deployment)
    nodes = {n.name: n for n in template.nodes}
    inputs = {i.name: i.default for i in template.inputs if i.has_default}
    inputs.update(deployment.inputs)
    inputs.update(decrypt_json(deployment.secret_inputs) if deployment.secret_inputs else {})
    attributes: dict[str, dict[str, Any]] = {}
    for step in steps:
        if step.state == Step.State.DONE and step.node and step.result.get("attributes"):
            attributes.setdefault(step.node, {}).update(step.result["attributes"])

    def attribute(node: str, name: str) -> Any:
        try:
            return attributes[node][name]
        except KeyError:
            raise Unresolved(f"{node}.{name}") from None

    return Context(
        inputs=inputs,
        property=lambda node, prop: nodes[node].properties[prop],
        artifact=lambda node, name: next(a.file for a in nodes[node].artifacts if a.name == name),
        attribute=attribute,
    )


def _resolved(value: Any, deployment: Deployment, steps: list[Step], node: str) -> Any:
    try:
        return resolve_fully(value, context_for(deployment, steps), node)
    except Unresolved as exc:
        raise StepError(f"{exc} is not known yet; the plan should have waited for it.") from None
    except FunctionError as exc:
        raise StepError(str(exc)) from None


def evaluate_outputs(deployment: Deployment, steps: list[Step]) -> dict[str, Any]:
    """The outputs as they are stored and shown: an output that can carry a secret is masked (a plan made
    before validation refused those still has them)."""
    outputs = deployment.plan.get("outputs", {})
    values = {name: _resolved(value, deployment, steps, "") for name, value in outputs.items()}
    return masked_outputs(values, outputs, deployment)


def _scalar(value: Any, parse: Callable[[Any], float | None], what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    parsed = parse(value)
    if parsed is None:
        raise StepError(f"{what} {value!r} is not understood; write it like 512 MB or 30 s.")
    return parsed


def service_spec(node: str, params: dict[str, Any], image: str) -> ServiceSpec:
    """The crane spec of a container node, from its resolved step params."""
    health = params.get("healthcheck")
    ports = []
    for port in params.get("ports") or []:
        if isinstance(port, dict) and port.get("published", True):
            ports.append(Port(target=int(port["target"]), protocol=str(port.get("protocol", "tcp"))))
    return ServiceSpec(
        name=node,
        image=image,
        command=tuple(str(c) for c in params.get("command") or ()),
        environment={str(k): str(v) for k, v in (params.get("environment") or {}).items()},
        ports=tuple(ports),
        replicas=int(params.get("replicas", 1)),
        cpu_limit=float(params["cpu_limit"]) if params.get("cpu_limit") is not None else None,
        memory_limit=int(_scalar(params["mem_limit"], size_in_bytes, "Memory")) if params.get("mem_limit") else None,
        healthcheck=HealthCheck(
            test=tuple(str(t) for t in health.get("test") or ("NONE",)),
            interval=_scalar(health.get("interval", "30 s"), time_in_seconds, "Interval"),
            timeout=_scalar(health.get("timeout", "10 s"), time_in_seconds, "Timeout"),
            retries=int(health.get("retries", 3)),
            start_period=_scalar(health.get("start_period", "0 s"), time_in_seconds, "Start period"),
        )
        if isinstance(health, dict)
        else None,
        mounts=tuple(Mount(volume=m["volume"], path=m["path"]) for m in params.get("mounts") or ()),
        secrets=tuple(SecretMount(secret=s["secret"], file=s["file"]) for s in params.get("secrets") or ()),
    )


def execute_step(step: Step) -> dict[str, Any]:
    """Does what the step says, idempotently; returns what later steps and people may read."""
    deployment = step.deployment
    target = deployment.target
    steps = list(deployment.steps.filter(generation=deployment.generation))
    kind = StepKind(step.kind)
    params = step.params
    if kind is StepKind.NETWORK:
        return {"action": str(driver.ensure_network(target, deployment.pk).action)}
    if kind is StepKind.VOLUME:
        return {"action": str(driver.ensure_volume(target, deployment.pk, params["name"]).action)}
    if kind is StepKind.SECRET:
        value = _resolved(params["value"], deployment, steps, step.node)
        ensured = driver.ensure_secret(target, deployment.pk, params["name"], str(value).encode())
        return {"action": str(ensured.action)}
    if kind is StepKind.IMAGE:
        return _image(step, deployment)
    if kind is StepKind.SERVICE:
        resolved = _resolved(dict(params), deployment, steps, step.node)
        image_step = next((s for s in steps if s.key == f"{step.node}.image"), None)
        image = (image_step.result.get("image") if image_step else None) or resolved["image"]
        (ensured,) = driver.ensure_services(target, deployment.pk, [service_spec(step.node, resolved, image)])
        return {"action": str(ensured.action), "service": ensured.name}
    if kind is StepKind.WAIT:
        status = driver.wait_healthy(target, deployment.pk, step.node, timeout=settings.AGORA_WAIT_HEALTHY_SECONDS)
        published = {
            p.target_port: p.port
            for p in crane_services.ports_of(target=target, deployment=deployment.pk)
            if p.node == step.node
        }
        attributes: dict[str, Any] = {"private_address": step.node}
        # public_port is the first port the template publishes, in the template's order.
        service_step = next((s for s in steps if s.key == f"{step.node}.service"), None)
        wanted = [
            int(p["target"])
            for p in (service_step.params.get("ports") if service_step else None) or []
            if isinstance(p, dict) and p.get("published", True) and isinstance(p.get("target"), int)
        ]
        first = next((published[t] for t in wanted if t in published), None)
        if first is not None:
            attributes["public_address"] = target.public_host
            attributes["public_port"] = first
        return {"running": status.running, "attributes": attributes}
    if kind is StepKind.REMOVE:
        if step.node:
            found = driver.remove_node(target, deployment.pk, step.node)
        else:
            found = driver.remove_deployment(target, deployment.pk)
        return {"removed": sorted(found.services + found.containers + found.networks + found.volumes + found.secrets)}
    if kind is StepKind.OPERATION:
        return _operation(step, deployment, steps)
    raise StepError(f"Unknown step kind {step.kind!r}.")


def _image(step: Step, deployment: Deployment) -> dict[str, Any]:
    params = step.params
    if not params.get("build"):
        ensured = driver.ensure_image(deployment.target, deployment.pk, params["image"])
        return {"action": str(ensured.action), "image": ensured.name}
    data = bytes(deployment.template)
    if not is_zip(data):
        raise StepError("A build artifact needs the template to be a CSAR holding the build folder.")
    with tempfile.TemporaryDirectory(prefix="agora-build-") as tmp:
        root = Path(tmp)
        extract_csar(io.BytesIO(data), len(data), root, template_limits())
        context = (root / params["build"]).resolve()
        if not context.is_relative_to(root.resolve()) or not context.is_dir():
            raise StepError(f"The build folder {params['build']!r} is not a folder of the CSAR.")
        name = re.sub(r"[^a-z0-9_-]", "-", step.node.lower())[:32].strip("-_") or "image"
        ensured = driver.ensure_image(deployment.target, deployment.pk, name, build=BuildContext(directory=context))
    return {"action": str(ensured.action), "image": ensured.name}


_INTERPRETERS = {".py": ("python3", "-"), ".sh": ("sh", "-s"), ".bash": ("bash", "-s")}


def _csar_member(deployment: Deployment, member: str) -> bytes:
    data = bytes(deployment.template)
    if not is_zip(data):
        raise StepError(f"The script {member} must be packed in a CSAR with the template.")
    with tempfile.TemporaryDirectory(prefix="agora-op-") as tmp:
        root = Path(tmp).resolve()
        archive = extract_csar(io.BytesIO(data), len(data), root, template_limits())
        # Implementation paths are relative to the entry template's folder, as validation checked them.
        path = ((root / archive.entry).parent / member).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise StepError(f"The script {member} is not in the CSAR.")
        return path.read_bytes()


def _operation(step: Step, deployment: Deployment, steps: list[Step]) -> dict[str, Any]:
    params = step.params
    script_name = str(params["script"])
    script = _csar_member(deployment, script_name)
    inputs = _resolved(dict(params.get("inputs") or {}), deployment, steps, step.node)
    interpreter = _INTERPRETERS.get(Path(script_name).suffix, ("sh", "-s"))
    code, output = driver.exec_in_node(
        deployment.target,
        deployment.pk,
        params["host"],
        script,
        interpreter=interpreter,
        environment={str(k): str(v) for k, v in inputs.items()},
        timeout=settings.AGORA_WAIT_HEALTHY_SECONDS,
    )
    # A script may print what it was given: its output goes into the step's row and its error, so the
    # secrets are masked in all of it first (cutting it first could leave half a secret).
    output = redactor_for(deployment).text(output)
    if code != 0:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise StepError(
            f"The {params['operation']} script {script_name} of {step.node} ended with exit code {code}."
            + (f" Its last lines: {tail}" if tail else "")
        )
    return {"exit_code": code, "output": output[-4000:]}
