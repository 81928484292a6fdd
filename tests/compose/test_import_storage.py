"""Volumes, secrets and built images on import, and a realistic file with all of them."""

from __future__ import annotations

import pytest

from orchestrator.compose import compose_to_tosca
from tests.compose.conftest import accepted, inputs, node, props, refused, warnings_about


def mount(node_name: str, location: str) -> dict[str, object]:
    return {
        "volume": {
            "node": node_name,
            "relationship": {"type": "agora.relationships.MountsVolume", "properties": {"location": location}},
        }
    }


@pytest.mark.parametrize(
    "volume",
    [
        '"data:/var/lib/data"',
        '"data:/var/lib/data:rw"',
        "{type: volume, source: data, target: /var/lib/data}",
        "{source: data, target: /var/lib/data, volume: {nocopy: true}}",
    ],
)
def test_a_named_volume_becomes_a_volume_node_mounted_at_its_location(volume: str) -> None:
    template, _ = accepted(
        f"""
        services:
          app:
            image: nginx:1.25
            volumes:
              - {volume}
        volumes:
          data:
        """
    )
    assert node(template, "data") == {"type": "agora.nodes.Volume"}
    assert node(template, "app")["requirements"] == [mount("data", "/var/lib/data")]


def test_a_read_only_mount_is_mounted_read_write_with_a_warning() -> None:
    template, result = accepted(
        """
        services:
          app:
            image: nginx:1.25
            volumes: ["data:/srv:ro", {type: volume, source: data, target: /more, read_only: true}]
        volumes:
          data: {}
        """
    )
    assert node(template, "app")["requirements"] == [mount("data", "/srv"), mount("data", "/more")]
    assert "no longer read-only" in warnings_about(result, "volumes[0]")[0]
    assert "no longer read-only" in warnings_about(result, "volumes[1]")[0]


def test_anonymous_volumes_become_volumes_of_the_deployment() -> None:
    template, result = accepted(
        """
        services:
          db:
            image: postgres:16
            volumes: ["/var/lib/postgresql/data", {type: volume, target: /backups}]
        """
    )
    assert node(template, "db")["requirements"] == [
        mount("db-data", "/var/lib/postgresql/data"),
        mount("db-backups", "/backups"),
    ]
    assert node(template, "db-data") == {"type": "agora.nodes.Volume"}
    assert "becomes the volume db-data" in warnings_about(result, "volumes[0]")[0]


def test_volume_and_secret_nodes_never_take_a_services_name_and_are_names_crane_accepts() -> None:
    template, _ = accepted(
        """
        services:
          db:
            image: postgres:16
            volumes: ["db:/var/lib/postgresql/data"]
            secrets: [db]
        volumes:
          db: {}
        secrets:
          db: {file: ./db.txt}
        """
    )
    nodes = template["topology_template"]["node_templates"]
    assert nodes["db_volume"] == {"type": "agora.nodes.Volume"}
    assert nodes["db_secret"]["type"] == "agora.nodes.Secret"
    assert node(template, "db")["requirements"] == [
        mount("db_volume", "/var/lib/postgresql/data"),
        {
            "secret": {
                "node": "db_secret",
                "relationship": {"type": "agora.relationships.UsesSecret", "properties": {"target": "db"}},
            }
        },
    ]


def test_a_service_name_with_a_dot_is_refused_but_an_upper_case_volume_is_renamed() -> None:
    assert refused("services:\n  Cache.Store:\n    image: redis:7\n")
    template, _ = accepted(
        "services:\n  app:\n    image: nginx:1.25\n    volumes: ['My.Data:/data']\nvolumes:\n  My.Data: {}\n"
    )
    assert node(template, "app")["requirements"] == [mount("my-data", "/data")]


def test_tmpfs_mounts_are_dropped_with_a_warning() -> None:
    _, result = accepted(
        "services:\n  app:\n    image: nginx:1.25\n    volumes: [{type: tmpfs, target: /tmp}]\n    tmpfs: /run\n"
    )
    assert warnings_about(result, "volumes[0]")
    assert warnings_about(result, "tmpfs")


def test_a_path_mounted_twice_is_refused() -> None:
    (problem,) = refused(
        "services:\n  app:\n    image: nginx:1.25\n    volumes: ['a:/data', 'b:/data']\nvolumes:\n  a: {}\n  b: {}\n"
    )
    assert problem.key == "volumes[1]"


def test_a_file_secret_becomes_a_secret_node_filled_from_a_secret_input() -> None:
    template, result = accepted(
        """
        services:
          db:
            image: postgres:16
            environment:
              POSTGRES_PASSWORD_FILE: /run/secrets/db_password
            secrets:
              - db_password
        secrets:
          db_password:
            file: ./secrets/db_password.txt
        """
    )
    assert node(template, "db_password") == {
        "type": "agora.nodes.Secret",
        "properties": {"value": {"get_input": "db_password"}},
    }
    assert node(template, "db")["requirements"] == [{"secret": "db_password"}]
    assert inputs(template)["db_password"] == {
        "type": "string",
        "description": "The value of the secret db_password (in the compose file, the file ./secrets/db_password.txt).",
        "metadata": {"secret": True},
    }
    assert "which each subscriber sets" in warnings_about(result, "secrets.db_password")[0]


def test_a_secret_read_under_another_file_name_keeps_that_name() -> None:
    template, result = accepted(
        """
        services:
          app:
            image: nginx:1.25
            secrets:
              - source: api_key
                target: key.txt
                mode: 0400
              - source: token
                target: /run/secrets/token_file
        secrets:
          api_key: {environment: API_KEY}
          token: {file: token.txt}
        """
    )
    uses = node(template, "app")["requirements"]
    assert [u["secret"]["relationship"]["properties"]["target"] for u in uses] == ["key.txt", "token_file"]
    assert warnings_about(result, "secrets[0].mode")
    assert "the environment variable API_KEY" in inputs(template)["api_key"]["description"]


@pytest.mark.parametrize(
    ("use", "words"),
    [
        ("{source: token, target: /etc/token}", "Agora puts secrets in /run/secrets"),
        ("{source: token, target: ../escape}", "not a file name under /run/secrets"),
        ("ghost", "not declared under the top-level secrets"),
        ("{source: token, uid: '1000', extra: 1}", '"extra" is not a secret setting'),
    ],
)
def test_secret_uses_agora_cannot_give_are_refused(use: str, words: str) -> None:
    problems = refused(
        f"services:\n  app:\n    image: nginx:1.25\n    secrets: [{use}]\nsecrets:\n  token: {{file: t.txt}}\n"
    )
    assert any(words in p.message for p in problems), [p.message for p in problems]


def test_a_secret_without_a_source_is_refused() -> None:
    (problem,) = refused("services:\n  app: {image: nginx:1.25}\nsecrets:\n  token: {labels: {a: b}}\n")
    assert problem.key == "secrets.token"


def test_a_variable_named_like_a_secret_is_refused() -> None:
    (problem,) = refused(
        "services:\n  app:\n    image: nginx:1.25\n    environment: ['X=${token}']\nsecrets:\n  token: {file: t}\n"
    )
    assert "name of a secret's input" in problem.message


def test_a_build_context_inside_the_project_becomes_a_build_artifact_for_a_csar() -> None:
    template, result = accepted(
        """
        services:
          api:
            build: ./api
            image: example/api:dev
          worker:
            build:
              context: services/worker
              dockerfile: Dockerfile
              labels: {a: b}
        """
    )
    assert node(template, "api") == {
        "type": "agora.nodes.Container",
        "artifacts": {"build": {"type": "agora.artifacts.BuildContext", "file": "api"}},
    }
    assert node(template, "worker")["artifacts"]["build"]["file"] == "services/worker"
    assert result.build_contexts == ("api", "services/worker")
    assert "pack the template and that folder" in warnings_about(result, "build")[0]
    assert warnings_about(result, "image")  # Agora names the images it builds
    assert warnings_about(result, "build.labels")


def test_a_build_of_the_project_folder_itself_is_accepted() -> None:
    _, result = accepted("services:\n  app:\n    build: .\n")
    assert result.build_contexts == (".",)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        ("../elsewhere", "outside the compose project"),
        ("/srv/src", "outside the compose project"),
        ("https://github.com/example/app.git#main", "never downloads build contexts"),
        ("{context: ., dockerfile: docker/Dockerfile.prod}", "rename docker/Dockerfile.prod to Dockerfile"),
        ("{context: ., args: {VERSION: '1'}}", "ARG defaults in the Dockerfile"),
        ("{context: ., target: prod}", "make the stage the last"),
        ("{context: ., network: host}", 'does not build with "network"'),
        ("'${SRC}'", "literal folder path"),
    ],
)
def test_build_contexts_agora_cannot_pack_are_refused(build: str, words: str) -> None:
    (problem,) = refused(f"services:\n  app:\n    build: {build}\n")
    assert problem.key.startswith("build")
    assert words in problem.message


REALISTIC = """\
# Citizen forms: a web front, the application and its database.
name: citizen-forms
services:
  web:
    image: nginx:1.25
    ports:
      - "8080:80"
    depends_on:
      - app
    environment:
      UPSTREAM: http://app:8000
    healthcheck:
      test: ["CMD-SHELL", "nc -z localhost 80"]
      interval: 10s
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.25", memory: 64M}
  app:
    image: registry.example.org/opencivic/forms:${FORMS_VERSION:-1.2.0}
    command: ["gunicorn", "--bind", "0.0.0.0:8000", "forms.wsgi"]
    environment:
      DATABASE_URL: postgres://forms@db:5432/forms
      DB_PASSWORD_FILE: /run/secrets/db_password
      SITE_TITLE: ${SITE_TITLE:-Citizen requests}
      SECRET_KEY: ${SECRET_KEY:?Django's secret key}
    expose: ["8000"]
    depends_on:
      db:
        condition: service_healthy
    secrets: [db_password]
    deploy:
      resources:
        limits: {cpus: "1", memory: 512M}
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: forms
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
    volumes:
      - db_data:/var/lib/postgresql/data
    secrets: [db_password]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "forms"]
      interval: 5s
      timeout: 3s
      retries: 10
    deploy:
      resources:
        limits: {cpus: "1", memory: 1G}
volumes:
  db_data:
secrets:
  db_password:
    file: ./db_password.txt
networks:
  default:
    name: forms_default_net_override_is_not_here
"""


def test_a_realistic_three_service_file_becomes_a_deployable_template() -> None:
    compose = REALISTIC.replace("networks:\n  default:\n    name: forms_default_net_override_is_not_here\n", "")
    template, result = accepted(compose)
    assert template["metadata"] == {"template_name": "citizen-forms"}
    assert list(template["topology_template"]["node_templates"]) == ["db_data", "db_password", "web", "app", "db"]
    assert props(template, "web") == {
        "image": "nginx:1.25",
        "environment": {"UPSTREAM": "http://app:8000"},
        "ports": [{"target": 80}],
        "replicas": 2,
        "cpu_limit": 0.25,
        "mem_limit": "64 MiB",
        "healthcheck": {"test": ["CMD-SHELL", "nc -z localhost 80"], "interval": "10 s"},
    }
    assert node(template, "web")["requirements"] == [{"dependency": "app"}]
    assert props(template, "app") == {
        "image": {"concat": ["registry.example.org/opencivic/forms:", {"get_input": "FORMS_VERSION"}]},
        "command": ["gunicorn", "--bind", "0.0.0.0:8000", "forms.wsgi"],
        "environment": {
            "DATABASE_URL": "postgres://forms@db:5432/forms",
            "DB_PASSWORD_FILE": "/run/secrets/db_password",
            "SITE_TITLE": {"get_input": "SITE_TITLE"},
            "SECRET_KEY": {"get_input": "SECRET_KEY"},
        },
        "ports": [{"target": 8000, "published": False}],
        "cpu_limit": 1.0,
        "mem_limit": "512 MiB",
    }
    assert node(template, "app")["requirements"] == [{"secret": "db_password"}, {"dependency": "db"}]
    assert node(template, "db")["requirements"] == [
        mount("db_data", "/var/lib/postgresql/data"),
        {"secret": "db_password"},
    ]
    assert props(template, "db")["healthcheck"] == {
        "test": ["CMD", "pg_isready", "-U", "forms"],
        "interval": "5 s",
        "timeout": "3 s",
        "retries": 10,
    }
    assert inputs(template) == {
        "db_password": {
            "type": "string",
            "description": "The value of the secret db_password (in the compose file, the file ./db_password.txt).",
            "metadata": {"secret": True},
        },
        "FORMS_VERSION": {"type": "string", "description": "${FORMS_VERSION} in the compose file.", "default": "1.2.0"},
        "SITE_TITLE": {
            "type": "string",
            "description": "${SITE_TITLE} in the compose file.",
            "default": "Citizen requests",
        },
        "SECRET_KEY": {"type": "string", "description": "${SECRET_KEY} in the compose file. Django's secret key"},
    }
    assert list(template["topology_template"]["outputs"]) == ["web_url"]
    # Only the secret's value and the dropped host port are worth a word.
    assert [(p.service, p.key) for p in result.warnings] == [("web", "ports"), (None, "secrets.db_password")]


def test_the_realistic_file_with_a_named_network_is_refused_for_that_alone() -> None:
    result = compose_to_tosca(REALISTIC)
    assert [(p.service, p.key) for p in result.errors] == [(None, "networks.default.name")]
