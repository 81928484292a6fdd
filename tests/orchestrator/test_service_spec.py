"""From a container node's properties to crane's service spec: what Docker is told."""

from __future__ import annotations

from crane.specs import HealthCheck
from orchestrator.execute import service_spec
from orchestrator.services import plan_for

TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
imports: [agora/v1/profile.yaml]
topology_template:
  node_templates:
    web:
      type: agora.nodes.Container
      properties:
        image: agora/busybox:latest
        command: [httpd, -f, -p, "80"]
        ports: [{ target: 80 }]
        mem_limit: 64 MB
        healthcheck:
          test: [CMD-SHELL, "nc -w 1 127.0.0.1 80 </dev/null"]
          interval: 2 s
          timeout: 1 s
          retries: 4
          start_period: 1 m
"""


def _web_params(template: str) -> dict[str, object]:
    plan = plan_for(template.encode(), "web.yaml", {})
    (step,) = [s for s in plan.steps if s.kind == "service" and s.node == "web"]
    return dict(step.params)


def test_the_health_check_reaches_docker_with_its_start_period() -> None:
    spec = service_spec("web", _web_params(TEMPLATE), "agora/busybox:latest")

    assert spec.healthcheck == HealthCheck(
        test=("CMD-SHELL", "nc -w 1 127.0.0.1 80 </dev/null"), interval=2.0, timeout=1.0, retries=4, start_period=60.0
    )
    assert spec.memory_limit == 64 * 1000 * 1000
    assert spec.cpu_limit == 0.5  # the profile's default


def test_a_health_check_without_start_period_starts_counting_at_once() -> None:
    spec = service_spec("web", _web_params(TEMPLATE.replace("          start_period: 1 m\n", "")), "img")

    assert spec.healthcheck is not None
    assert spec.healthcheck.start_period == 0.0
