"""What a compose service becomes in Agora's profile; every template here passes validate_bytes."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.compose import compose_to_tosca
from orchestrator.tosca import AGORA_PROFILE_IMPORT
from tests.compose.conftest import accepted, inputs, node, props, refused, warnings_about


def test_a_service_with_an_image_becomes_an_agora_container() -> None:
    template, result = accepted("services:\n  web:\n    image: nginx:1.25\n")
    assert template["tosca_definitions_version"] == "tosca_simple_yaml_1_3"
    assert template["imports"] == [AGORA_PROFILE_IMPORT]
    assert template["metadata"] == {"template_name": "compose-import"}
    assert node(template, "web") == {"type": "agora.nodes.Container", "properties": {"image": "nginx:1.25"}}
    assert "outputs" not in template["topology_template"]
    # No limits in the file: Agora's defaults apply, and the publisher is told.
    assert "Agora's defaults apply" in warnings_about(result, "")[0]


def test_the_template_is_named_by_the_argument_else_by_the_compose_file() -> None:
    named, _ = accepted("name: forms\nservices:\n  web: {image: nginx:1.25}\n", name="citizen-forms")
    assert named["metadata"]["template_name"] == "citizen-forms"
    own, _ = accepted("name: forms\nservices:\n  web: {image: nginx:1.25}\n")
    assert own["metadata"]["template_name"] == "forms"


PORTS: list[tuple[str, list[dict[str, Any]], bool]] = [
    ('"80"', [{"target": 80}], False),
    ("80", [{"target": 80}], False),
    ('"8080:80"', [{"target": 80}], True),
    ("8080:80", [{"target": 80}], True),
    ("22:22", [{"target": 22}], True),  # PyYAML reads 22:22 as the number 1342; compose does not
    ('"127.0.0.1:8080:80"', [{"target": 80}], True),
    ('"[::1]:8080:80"', [{"target": 80}], True),
    ('"53/udp"', [{"target": 53, "protocol": "udp"}], False),
    ('"5353:53/udp"', [{"target": 53, "protocol": "udp"}], True),
    ('"8000-8001:80-81"', [{"target": 80}, {"target": 81}], True),
    ("{target: 80, published: 8080, protocol: tcp, mode: host}", [{"target": 80}], True),
    ('{target: 80, published: "8080", host_ip: 0.0.0.0, app_protocol: http, name: web}', [{"target": 80}], True),
    ("{target: 53, protocol: udp}", [{"target": 53, "protocol": "udp"}], False),
    ('"${WEB_PORT:-8080}:80"', [{"target": 80}], True),
]


@pytest.mark.parametrize(("port", "expected", "host_dropped"), PORTS, ids=[p for p, _, _ in PORTS])
def test_ports_in_every_syntax_keep_the_container_side(
    port: str, expected: list[dict[str, Any]], host_dropped: bool
) -> None:
    template, result = accepted(f"services:\n  web:\n    image: nginx:1.25\n    ports:\n      - {port}\n")
    assert props(template, "web")["ports"] == expected
    dropped = [m for m in warnings_about(result, "ports") if "host side" in m]
    assert bool(dropped) == host_dropped
    assert "WEB_PORT" not in inputs(template)  # the host side is not kept, so neither is its variable


def test_exposed_ports_are_reachable_inside_the_deployment_only() -> None:
    template, _ = accepted(
        """
        services:
          db:
            image: postgres:16
            expose: ["5432", 9187, "6000-6001/udp"]
            ports: ["9187:9187"]
        """
    )
    assert props(template, "db")["ports"] == [
        {"target": 9187},
        {"target": 5432, "published": False},
        {"target": 6000, "protocol": "udp", "published": False},
        {"target": 6001, "protocol": "udp", "published": False},
    ]
    assert "outputs" in template["topology_template"]


@pytest.mark.parametrize(
    ("port", "words"),
    [
        ('"8080:${PORT}"', "container port is a literal"),
        ('"80/sctp"', "tcp and udp"),
        ('"70000"', "from 1 to 65535"),
        ('"1-100"', "more than the 20 ports"),
        ('"a:b:c:d"', "not a port such as 8080:80"),
        ("{published: 8080}", "target port is a literal"),
        ("{target: 22:22}", "'22:22' is not a port number"),  # as compose (YAML 1.2) reads it, not 1342
        ("{target: 80, x_mode: y}", "not a port setting"),
    ],
)
def test_ports_agora_cannot_publish_are_refused(port: str, words: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    ports:\n      - {port}\n")
    assert problem.key == "ports[0]"
    assert words in problem.message


def test_a_published_port_becomes_the_services_url_output() -> None:
    template, _ = accepted("services:\n  web:\n    image: nginx:1.25\n    ports: ['8080:80']\n")
    assert template["topology_template"]["outputs"] == {
        "web_url": {
            "description": "The URL of web (container port 80).",
            "value": {
                "concat": [
                    "http://",
                    {"get_attribute": ["web", "public_address"]},
                    ":",
                    {"get_attribute": ["web", "public_port"]},
                ]
            },
        }
    }


def test_the_url_of_a_service_with_several_published_ports_is_its_first_port() -> None:
    template, result = accepted(
        "services:\n  web:\n    image: nginx:1.25\n    ports: ['8443:443', '8080:80']\n  api:\n    image: nginx:1.25\n"
    )
    outputs = template["topology_template"]["outputs"]
    assert list(outputs) == ["web_url"]
    assert outputs["web_url"]["value"]["concat"][0] == "https://"
    assert any("one public port per service" in m and "80/tcp" in m for m in warnings_about(result, "ports"))


def test_a_udp_only_service_gets_an_address_output_without_a_scheme() -> None:
    template, _ = accepted("services:\n  dns:\n    image: nginx:1.25\n    ports: ['53/udp']\n")
    value = template["topology_template"]["outputs"]["dns_address"]["value"]["concat"]
    assert value[0] == {"get_attribute": ["dns", "public_address"]}


def test_environment_as_a_list_and_as_a_map() -> None:
    template, _ = accepted(
        """
        services:
          a:
            image: nginx:1.25
            environment:
              - PLAIN=text
              - EMPTY=
              - WITH_EQUALS=a=b
          b:
            image: nginx:1.25
            environment:
              PLAIN: text
              NUMBER: 8080
              FLOAT: 1.50
              YES_WORD: yes
              BOOL: true
              OCTAL: 0755
        """
    )
    assert props(template, "a")["environment"] == {"PLAIN": "text", "EMPTY": "", "WITH_EQUALS": "a=b"}
    # Values as compose (YAML 1.2) reads them, not as PyYAML (YAML 1.1) would.
    assert props(template, "b")["environment"] == {
        "PLAIN": "text",
        "NUMBER": "8080",
        "FLOAT": "1.50",
        "YES_WORD": "yes",
        "BOOL": "true",
        "OCTAL": "0755",
    }


def test_a_variable_without_a_value_becomes_an_input_for_the_subscriber() -> None:
    template, _ = accepted(
        """
        services:
          app:
            image: nginx:1.25
            environment: [API_TOKEN]
          worker:
            image: nginx:1.25
            environment:
              API_TOKEN:
        """
    )
    assert props(template, "app")["environment"] == {"API_TOKEN": {"get_input": "API_TOKEN"}}
    assert props(template, "worker")["environment"] == {"API_TOKEN": {"get_input": "API_TOKEN"}}
    assert inputs(template) == {
        "API_TOKEN": {"type": "string", "description": "The environment variable API_TOKEN of app in the compose file."}
    }


@pytest.mark.parametrize("name", ["BAD-NAME", "1ST", "with space"])
def test_environment_names_agora_does_not_pass_on_are_refused(name: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    environment:\n      - {name}=x\n")
    assert problem.key == "environment[0]"


INTERPOLATION: list[tuple[str, Any, dict[str, Any]]] = [
    ("${TITLE}", {"get_input": "TITLE"}, {"TITLE": {"type": "string"}}),
    ("$TITLE", {"get_input": "TITLE"}, {"TITLE": {"type": "string"}}),
    ("${TITLE:-Citizen forms}", {"get_input": "TITLE"}, {"TITLE": {"type": "string", "default": "Citizen forms"}}),
    ("${TITLE-Citizen forms}", {"get_input": "TITLE"}, {"TITLE": {"type": "string", "default": "Citizen forms"}}),
    ("${TITLE:-}", {"get_input": "TITLE"}, {"TITLE": {"type": "string", "default": ""}}),
    (
        "postgres://forms@${DB_HOST:-db}:5432/${DB_NAME}",
        {"concat": ["postgres://forms@", {"get_input": "DB_HOST"}, ":5432/", {"get_input": "DB_NAME"}]},
        {"DB_HOST": {"type": "string", "default": "db"}, "DB_NAME": {"type": "string"}},
    ),
    ("costs $$5", "costs $5", {}),
    ("$${NOT_A_VARIABLE}", "${NOT_A_VARIABLE}", {}),
]


@pytest.mark.parametrize(("value", "expected", "declared"), INTERPOLATION, ids=[v for v, _, _ in INTERPOLATION])
def test_interpolation_becomes_inputs(value: str, expected: Any, declared: dict[str, Any]) -> None:
    template, _ = accepted(f"services:\n  web:\n    image: nginx:1.25\n    environment:\n      VALUE: '{value}'\n")
    assert props(template, "web")["environment"] == {"VALUE": expected}
    found = {name: {k: v for k, v in spec.items() if k != "description"} for name, spec in inputs(template).items()}
    assert found == declared


def test_a_required_variable_keeps_the_publishers_message() -> None:
    template, _ = accepted(
        "services:\n  web:\n    image: nginx:1.25\n    environment: ['T=${TITLE:?Shown on every page}']\n"
    )
    assert inputs(template)["TITLE"]["description"] == "${TITLE} in the compose file. Shown on every page"
    assert "default" not in inputs(template)["TITLE"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("${DEBUG:+--debug}", "only when DEBUG is set"),
        ("${A:-${B}}", "nests a variable"),
        ("${A", "not closed"),
        ("price: $ 5", "starts no variable"),
        ("${1A}", "names no variable"),
    ],
)
def test_interpolation_tosca_cannot_express_is_refused(value: str, words: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    environment:\n      VALUE: '{value}'\n")
    assert problem.key == "environment.VALUE"
    assert words in problem.message


def test_a_variable_image_and_numbers_become_typed_inputs() -> None:
    template, _ = accepted(
        """
        services:
          app:
            image: registry.example.org/forms:${TAG:-1.2}
            deploy:
              replicas: ${REPLICAS:-2}
              resources:
                limits:
                  cpus: ${CPUS:-0.5}
                  memory: ${MEMORY:-512m}
        """
    )
    assert props(template, "app") == {
        "image": {"concat": ["registry.example.org/forms:", {"get_input": "TAG"}]},
        "replicas": {"get_input": "REPLICAS"},
        "cpu_limit": {"get_input": "CPUS"},
        "mem_limit": {"get_input": "MEMORY"},
    }
    declared = inputs(template)
    assert (declared["TAG"]["type"], declared["TAG"]["default"]) == ("string", "1.2")
    assert (declared["REPLICAS"]["type"], declared["REPLICAS"]["default"]) == ("integer", 2)
    assert (declared["CPUS"]["type"], declared["CPUS"]["default"]) == ("float", 0.5)
    assert (declared["MEMORY"]["type"], declared["MEMORY"]["default"]) == ("scalar-unit.size", "512 MiB")


def test_a_variable_used_as_text_and_as_a_number_is_refused() -> None:
    (problem,) = refused(
        """
        services:
          app:
            image: nginx:1.25
            environment: ["COPIES=${N}"]
            deploy: {replicas: "${N}"}
        """
    )
    assert problem.key == "deploy.replicas"
    assert "use two variables" in problem.message


def test_a_number_mixed_with_text_is_refused() -> None:
    (problem,) = refused('services:\n  app:\n    image: nginx:1.25\n    deploy: {replicas: "${N}0"}\n')
    assert "mixes a variable with text" in problem.message


def test_a_variables_first_default_wins_and_the_publisher_is_told() -> None:
    template, result = accepted(
        "services:\n  a:\n    image: nginx:1.25\n    environment: ['X=${V:-one}', 'Y=${V:-two}']\n"
    )
    assert inputs(template)["V"]["default"] == "one"
    assert any("another default elsewhere" in m for m in warnings_about(result, "environment[1]"))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("nginx -g 'daemon off;'", ["nginx", "-g", "daemon off;"]),
        ('sh -c "echo hello && sleep 1"', ["sh", "-c", "echo hello && sleep 1"]),
        ("[gunicorn, --workers, 4, forms.wsgi]", ["gunicorn", "--workers", "4", "forms.wsgi"]),
        ("serve --port ${PORT:-8000}", ["serve", "--port", {"get_input": "PORT"}]),
        ("echo '${GREETING:-hello world}'", ["echo", {"get_input": "GREETING"}]),
        ("echo $$HOME", ["echo", "$HOME"]),
    ],
)
def test_commands_as_strings_or_lists_become_lists_of_words(command: str, expected: list[Any]) -> None:
    template, _ = accepted(f"services:\n  web:\n    image: nginx:1.25\n    command: {command}\n")
    assert props(template, "web")["command"] == expected


def test_a_command_with_unbalanced_quotes_is_refused() -> None:
    (problem,) = refused("services:\n  web:\n    image: nginx:1.25\n    command: echo 'oops\n")
    assert "write it as a list" in problem.message


def test_a_health_check_keeps_its_test_durations_and_retries() -> None:
    template, result = accepted(
        """
        services:
          web:
            image: nginx:1.25
            healthcheck:
              test: ["CMD", "wget", "-q", "-O-", "http://localhost/"]
              interval: 1m30s
              timeout: 500ms
              retries: 5
              start_period: 40s
        """
    )
    assert props(template, "web")["healthcheck"] == {
        "test": ["CMD", "wget", "-q", "-O-", "http://localhost/"],
        "interval": "90 s",
        "timeout": "500 ms",
        "retries": 5,
    }
    assert warnings_about(result, "healthcheck.start_period")


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("{test: curl -f http://localhost/}", {"test": ["CMD-SHELL", "curl -f http://localhost/"]}),
        ("{test: [CMD-SHELL, 'nc -z localhost 80']}", {"test": ["CMD-SHELL", "nc -z localhost 80"]}),
        ("{disable: true}", {"test": ["NONE"]}),
        ("{test: [NONE]}", {"test": ["NONE"]}),
        ("{test: [CMD, check], interval: 1.5s}", {"test": ["CMD", "check"], "interval": "1500 ms"}),
    ],
)
def test_health_check_forms(check: str, expected: dict[str, Any]) -> None:
    template, _ = accepted(f"services:\n  web:\n    image: nginx:1.25\n    healthcheck: {check}\n")
    assert props(template, "web")["healthcheck"] == expected


@pytest.mark.parametrize(
    ("check", "key"),
    [
        ("{test: [wget, localhost]}", "healthcheck.test"),
        ("{test: [CMD, x], interval: 30}", "healthcheck.interval"),
        ("{test: [CMD, x], timeout: soon}", "healthcheck.timeout"),
        ("{test: [CMD, x], retries: '${R}'}", "healthcheck.retries"),
        ("{interval: 5s}", "healthcheck"),
    ],
)
def test_health_checks_agora_cannot_read_are_refused(check: str, key: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    healthcheck: {check}\n")
    assert problem.key == key


def test_replicas_and_limits_from_deploy_or_the_older_keys() -> None:
    template, result = accepted(
        """
        services:
          new:
            image: nginx:1.25
            deploy:
              replicas: 3
              resources:
                limits: {cpus: "1.5", memory: 1g, pids: 100}
                reservations: {cpus: "0.25", memory: 64M}
              restart_policy: {condition: on-failure}
              update_config: {parallelism: 2}
              endpoint_mode: vip
              placement:
                constraints: [node.labels.zone == a]
          old:
            image: nginx:1.25
            scale: 2
            cpus: 0.25
            mem_limit: 128000k
            restart: unless-stopped
        """
    )
    assert props(template, "new") == {"image": "nginx:1.25", "replicas": 3, "cpu_limit": 1.5, "mem_limit": "1 GiB"}
    assert props(template, "old") == {"image": "nginx:1.25", "replicas": 2, "cpu_limit": 0.25, "mem_limit": "125 MiB"}
    dropped = {p.key for p in result.warnings}
    assert {
        "deploy.resources.limits.pids",
        "deploy.resources.reservations.cpus",
        "deploy.resources.reservations.memory",
        "deploy.restart_policy",
        "deploy.update_config",
        "deploy.endpoint_mode",
        "deploy.placement",
        "restart",
    } <= dropped


@pytest.mark.parametrize(
    ("deploy", "key"),
    [
        ("{replicas: 50}", "deploy.replicas"),
        ("{replicas: -1}", "deploy.replicas"),
        ("{replicas: many}", "deploy.replicas"),
        ("{resources: {limits: {cpus: lots}}}", "deploy.resources.limits.cpus"),
        ("{resources: {limits: {memory: 12 parsecs}}}", "deploy.resources.limits.memory"),
        ("{resources: {limits: {memory: 64G}}}", "mem_limit"),
        ("{resources: {limits: {cpus: 64}}}", "cpu_limit"),
    ],
)
def test_replicas_and_limits_agora_refuses(deploy: str, key: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    deploy: {deploy}\n")
    assert problem.service == "web"
    assert problem.key == key


def test_depends_on_as_a_list_or_a_map_becomes_dependency_requirements() -> None:
    template, result = accepted(
        """
        services:
          web:
            image: nginx:1.25
            depends_on: [app, cache]
          app:
            image: nginx:1.25
            depends_on:
              db: {condition: service_healthy, restart: true}
              cache: {condition: service_started, required: false}
            links: [db]
          db: {image: postgres:16}
          cache: {image: redis:7}
        """
    )
    assert node(template, "web")["requirements"] == [{"dependency": "app"}, {"dependency": "cache"}]
    assert node(template, "app")["requirements"] == [{"dependency": "db"}, {"dependency": "cache"}]
    assert warnings_about(result, "depends_on.cache.required")
    assert warnings_about(result, "links[0]")


@pytest.mark.parametrize(
    "depends",
    ["[ghost]", "[web]", "{ghost: {condition: service_started}}"],
)
def test_a_dependency_on_no_other_service_is_refused(depends: str) -> None:
    (problem,) = refused(f"services:\n  web:\n    image: nginx:1.25\n    depends_on: {depends}\n")
    assert problem.key == "depends_on"


def test_a_link_under_another_name_is_refused() -> None:
    (problem,) = refused("services:\n  web:\n    image: nginx:1.25\n    links: ['db:database']\n  db:\n    image: x\n")
    assert problem.key == "links[0]"
    assert "use db, not database" in problem.message


def test_networks_collapse_into_the_deployments_network_with_a_warning() -> None:
    template, result = accepted(
        """
        services:
          web:
            image: nginx:1.25
            networks:
              front:
                aliases: [www]
              back: {}
          db:
            image: postgres:16
            networks: [back]
        networks:
          front: {driver: overlay}
          back:
        """
    )
    assert "networks" not in props(template, "web")
    assert "front, back" in warnings_about(result, "networks")[0]
    assert "as web only" in warnings_about(result, "networks.front.aliases")[0]


def test_other_labels_are_dropped_with_a_warning() -> None:
    _, result = accepted("services:\n  web:\n    image: nginx:1.25\n    labels: {org.example.team: forms}\n")
    assert warnings_about(result, "labels") == ["Agora's profile has no labels; they are dropped."]


@pytest.mark.parametrize("key", ["container_name: web1", "hostname: web", "restart: always", "init: true", "tty: true"])
def test_settings_agora_decides_itself_are_dropped_with_a_warning(key: str) -> None:
    _, result = accepted(f"services:\n  web:\n    image: nginx:1.25\n    {key}\n")
    assert warnings_about(result, key.partition(":")[0])


def test_the_version_key_is_accepted_and_ignored() -> None:
    accepted("version: '3.8'\nservices:\n  web:\n    image: nginx:1.25\n")


def test_problems_carry_the_line_and_format_as_the_cli_prints_them() -> None:
    result = compose_to_tosca("services:\n  web:\n    image: nginx:1.25\n    privileged: true\n")
    (problem,) = result.errors
    assert problem.line == 4
    assert problem.format("compose.yml") == (
        "compose.yml: service web: privileged: privileged mode hands the container the whole Docker host; Agora "
        "never grants it. Remove privileged."
    )


def test_base_60_ports_in_flow_lists_keep_their_text() -> None:
    template, _ = accepted("services:\n  ssh:\n    image: nginx:1.25\n    ports: [22:22, '8080:80', 2222:22]\n")
    assert props(template, "ssh")["ports"] == [{"target": 22}, {"target": 80}]
