"""Planning: template + inputs → a DAG of steps (pure; no database, no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.plan import Plan, PlanError, StepKind, build_plan
from orchestrator.tosca import Template, validate_path

DATA = Path(__file__).resolve().parent.parent / "data" / "tosca"


def template(path: str) -> Template:
    report = validate_path(DATA / path)
    assert report.deployable, report.problems
    assert report.template is not None
    return report.template


def test_three_tier_orders_by_requirements_and_runs_independent_steps_together() -> None:
    plan = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password"})
    levels = [[s.key for s in level] for level in plan.levels()]
    assert levels[0] == ["network", "db_data.volume", "db_password.secret", "db.image", "web.image"]
    assert levels[1] == ["db.service"]
    assert levels[2] == ["db.wait"]
    assert levels[3] == ["web.service"]
    assert plan.step("web.service").requires == ("network", "web.image", "db_password.secret", "db.wait")
    assert plan.step("db.service").params["mounts"] == [{"volume": "db_data", "path": "/var/lib/postgresql/data"}]


def test_inputs_and_defaults_are_resolved_in_the_plan() -> None:
    plan = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password", "replicas": 3})
    web = plan.step("web.service").params
    assert web["replicas"] == 3
    assert web["environment"]["SITE_TITLE"] == "Citizen requests"
    assert web["cpu_limit"] == 1.0 and web["mem_limit"] == "512 MB"
    assert plan.step("db.service").params["cpu_limit"] == 0.5  # the profile's default


def test_secret_inputs_never_appear_in_the_plan() -> None:
    plan = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password"})
    dumped = json.dumps(plan.to_dict())
    assert "a-long-password" not in dumped
    assert plan.step("db_password.secret").params["value"] == {"get_input": "db_password"}


def test_attributes_stay_expressions_until_deployment() -> None:
    plan = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password"})
    assert plan.outputs == {"url": {"get_attribute": ["web", "public_address"]}}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "db_password is required."),
        ({"db_password": "short"}, "at least 12 characters"),
        ({"db_password": "a-long-password", "replicas": 9}, "between 1 and 5"),
    ],
)
def test_each_input_violation_is_refused_with_its_message(values: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(template("single/agora_web.yaml"), values)
    assert message in str(caught.value)


def test_compute_with_lifecycle_scripts_runs_them_in_order_in_its_container() -> None:
    plan = build_plan(template("csar/compute_scripts/service.yaml"), {})
    keys = [s.key for s in plan.steps]
    assert "server.service" in keys and plan.step("server.service").params["image"] == "debian:bookworm-slim"
    assert plan.step("web_server.create").requires == ("server.wait",)
    assert plan.step("web_server.start").requires == ("web_server.create",)
    assert plan.step("portal.create").requires == ("server.wait", "web_server.start")
    configure = plan.step("portal.configure")
    assert configure.kind is StepKind.OPERATION
    assert configure.params["inputs"] == {"root": "/portal"}
    assert configure.params["host"] == "server"


def test_normative_docker_runtime_and_compute_are_the_target_not_containers() -> None:
    plan = build_plan(template("single/docker_app_1_3.yaml"), {})
    assert {s.node for s in plan.steps if s.kind is StepKind.SERVICE} <= {
        n.name for n in template("single/docker_app_1_3.yaml").nodes if n.is_a("tosca.nodes.Container.Application")
    }


def test_plan_is_deterministic_and_round_trips_through_json() -> None:
    first = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password"})
    second = build_plan(template("single/agora_web.yaml"), {"db_password": "a-long-password"})
    assert first == second
    assert Plan.from_dict(json.loads(json.dumps(first.to_dict()))).to_dict() == first.to_dict()
    assert "Level 1 (5 steps in parallel):" in first.render()
