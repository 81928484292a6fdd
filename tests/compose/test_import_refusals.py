"""What a compose file must not ask of Agora: each refusal names the service, the key and what to do."""

from __future__ import annotations

import pytest

from orchestrator.compose import compose_to_tosca
from tests.compose.conftest import refused

FORBIDDEN = [
    ("privileged", "true"),
    ("network_mode", "host"),
    ("network_mode", '"container:other"'),
    ("network_mode", '"service:other"'),
    ("pid", "host"),
    ("ipc", "host"),
    ("uts", "host"),
    ("userns_mode", "host"),
    ("cap_add", "[NET_ADMIN]"),
    ("devices", '["/dev/sda:/dev/sda"]'),
    ("device_cgroup_rules", '["c 1:3 mr"]'),
    ("gpus", "all"),
    ("security_opt", '["seccomp:unconfined"]'),
    ("sysctls", "{net.core.somaxconn: 1024}"),
    ("cgroup_parent", "m-executor"),
    ("volumes_from", "[other]"),
    ("logging", "{driver: syslog}"),
    ("extra_hosts", '["host.docker.internal:host-gateway"]'),
    ("dns", "8.8.8.8"),
    ("dns_search", "example.org"),
    ("external_links", "[redis]"),
    ("runtime", "runc"),
    ("oom_kill_disable", "true"),
    ("oom_score_adj", "-500"),
    ("storage_opt", "{size: 1G}"),
    ("use_api_socket", "true"),
    ("mac_address", "02:42:ac:11:65:43"),
]


@pytest.mark.parametrize(("key", "value"), FORBIDDEN, ids=[f"{k}={v}" for k, v in FORBIDDEN])
def test_settings_that_reach_the_host_are_refused_with_the_service_and_key(key: str, value: str) -> None:
    (problem,) = refused(
        f"""
        services:
          web:
            image: nginx:1.25
            {key}: {value}
          other:
            image: nginx:1.25
        """
    )
    assert (problem.service, problem.key) == ("web", key)
    assert "Agora never grants it" in problem.message
    assert problem.message.endswith(f"Remove {key}.")
    assert problem.line == 5


UNSUPPORTED = [
    ("entrypoint", "[/bin/sh]", "ENTRYPOINT in the image"),
    ("env_file", ".env", "they become inputs"),
    ("user", '"1000"', "USER in the image"),
    ("working_dir", "/app", "WORKDIR in the image"),
    ("profiles", "[debug]", "remove the profiles"),
    ("configs", "[site]", "make it a secret"),
    ("extends", "{service: base}", "write the service out in full"),
    ("ulimits", "{nofile: 1024}", "remove ulimits"),
    ("shm_size", "1g", "remove it"),
]


@pytest.mark.parametrize(("key", "value", "advice"), UNSUPPORTED, ids=[k for k, _, _ in UNSUPPORTED])
def test_settings_the_profile_cannot_express_are_refused_with_what_to_do_instead(
    key: str, value: str, advice: str
) -> None:
    (problem,) = refused(
        f"""
        services:
          web:
            image: nginx:1.25
            {key}: {value}
        """
    )
    assert (problem.service, problem.key) == ("web", key)
    assert advice in problem.message


def test_an_unknown_key_is_refused_rather_than_ignored() -> None:
    (problem,) = refused(
        """
        services:
          web:
            image: nginx:1.25
            frobnicate: true
        """
    )
    assert (problem.service, problem.key) == ("web", "frobnicate")
    assert "not a compose key Agora imports" in problem.message


def test_unknown_top_level_keys_and_includes_are_refused() -> None:
    problems = refused(
        """
        include: [other.yml]
        services:
          web: {image: nginx:1.25}
        whatever: {}
        """
    )
    assert {(p.service, p.key) for p in problems} == {(None, "include"), (None, "whatever")}


def test_extension_keys_are_ignored() -> None:
    result = compose_to_tosca(
        "x-common: &common {image: nginx:1.25}\nservices:\n  web:\n    <<: *common\n    x-note: hi\n"
    )
    assert result.errors == ()


BINDS = [
    "/etc:/etc",
    "/srv/data:/data:ro",
    "./data:/data",
    "../shared:/shared",
    "~/cache:/cache",
    ".:/app",
]


@pytest.mark.parametrize("mount", BINDS)
def test_short_bind_mounts_of_host_folders_are_refused(mount: str) -> None:
    (problem,) = refused(
        f"""
        services:
          web:
            image: nginx:1.25
            volumes:
              - "{mount}"
        """
    )
    assert (problem.service, problem.key) == ("web", "volumes[0]")
    assert "a folder of the Docker host (a bind mount)" in problem.message
    assert "named volume" in problem.message


def test_long_bind_mounts_are_refused() -> None:
    (problem,) = refused(
        """
        services:
          web:
            image: nginx:1.25
            volumes:
              - type: bind
                source: ./site
                target: /usr/share/nginx/html
        """
    )
    assert (problem.service, problem.key) == ("web", "volumes[0]")
    assert "bind mount" in problem.message


@pytest.mark.parametrize(
    "options",
    ["{type: none, o: bind, device: /srv/data}", "{o: 'bind,rw', device: /srv/data}", "{device: /srv/data}"],
)
def test_local_volumes_that_bind_a_host_folder_are_refused(options: str) -> None:
    problems = refused(
        f"""
        services:
          db:
            image: postgres:16
            volumes: [data:/var/lib/postgresql/data]
        volumes:
          data:
            driver: local
            driver_opts: {options}
        """
    )
    # The volume's own problem only: the service's use of it is not reported again.
    ((problem),) = problems
    assert (problem.service, problem.key) == (None, "volumes.data.driver_opts")
    assert "o: bind" in problem.message


def test_volumes_of_other_drivers_or_options_are_refused() -> None:
    problems = refused(
        """
        services:
          db: {image: postgres:16}
        volumes:
          shared:
            driver: nfs
          remote:
            driver_opts: {type: nfs, o: "addr=10.0.0.1", device: ":/export"}
        """
    )
    assert {p.key for p in problems} == {"volumes.shared.driver", "volumes.remote.driver_opts"}


@pytest.mark.parametrize(
    "mount",
    [
        '"/var/run/docker.sock:/var/run/docker.sock"',
        '"/run/docker.sock:/docker.sock:ro"',
        "{type: bind, source: /var/run/docker.sock, target: /var/run/docker.sock}",
    ],
)
def test_the_docker_socket_is_refused_by_name(mount: str) -> None:
    (problem,) = refused(
        f"""
        services:
          ci:
            image: docker:27
            volumes:
              - {mount}
        """
    )
    assert problem.key == "volumes[0]"
    assert "Docker socket" in problem.message


@pytest.mark.parametrize("section", ["volumes", "secrets", "networks"])
@pytest.mark.parametrize("setting", ["external: true", "name: shared-thing"])
def test_objects_made_outside_the_deployment_are_refused(section: str, setting: str) -> None:
    extra = "    file: ./x.txt\n" if section == "secrets" else ""
    problems = refused(
        f"""
services:
  web: {{image: nginx:1.25}}
{section}:
  thing:
    {setting}
{extra}"""
    )
    key = setting.partition(":")[0]
    assert [(p.service, p.key) for p in problems] == [(None, f"{section}.thing.{key}")]
    assert "outside the deployment" in problems[0].message


@pytest.mark.parametrize("path", ["/proc/sys", "/sys", "/dev/shm", "/run/secrets/x", "/", "relative/path"])
def test_mounts_at_reserved_or_relative_paths_are_refused(path: str) -> None:
    (problem,) = refused(
        f"""
        services:
          web:
            image: nginx:1.25
            volumes: ["data:{path}"]
        volumes:
          data: {{}}
        """
    )
    assert problem.key == "volumes[0]"


def test_an_undeclared_named_volume_is_refused() -> None:
    (problem,) = refused(
        """
        services:
          web:
            image: nginx:1.25
            volumes: ["data:/data"]
        """
    )
    assert "not declared under the top-level volumes" in problem.message


def test_placement_on_managers_is_refused() -> None:
    (problem,) = refused(
        """
        services:
          web:
            image: nginx:1.25
            deploy:
              placement:
                constraints: ["node.role == manager"]
        """
    )
    assert problem.key == "deploy.placement.constraints[0]"
    assert "swarm manager" in problem.message


@pytest.mark.parametrize("mode", ["global", "replicated-job", "global-job"])
def test_services_that_are_not_replicated_are_refused(mode: str) -> None:
    (problem,) = refused(
        f"""
        services:
          agent:
            image: nginx:1.25
            deploy: {{mode: {mode}}}
        """
    )
    assert problem.key == "deploy.mode"


def test_devices_under_resources_are_refused() -> None:
    (problem,) = refused(
        """
        services:
          ml:
            image: nginx:1.25
            deploy:
              resources:
                reservations:
                  devices: [{capabilities: [gpu]}]
        """
    )
    assert problem.key == "deploy.resources.reservations.devices"


@pytest.mark.parametrize("label", ["agora.deployment", "com.docker.stack.namespace", "Agora.Node"])
def test_reserved_label_prefixes_are_refused(label: str) -> None:
    (problem,) = refused(
        f"""
        services:
          web:
            image: nginx:1.25
            labels:
              {label}: x
        """
    )
    assert problem.key == "labels"
    assert "reserved for Agora and Docker" in problem.message


def test_reserved_labels_are_refused_in_list_form_and_under_deploy() -> None:
    problems = refused(
        """
        services:
          web:
            image: nginx:1.25
            labels: ["agora.kind=service"]
            deploy:
              labels: {agora.node: web}
        """
    )
    assert [p.key for p in problems] == ["labels", "deploy.labels"]


def test_fixed_addresses_on_networks_are_refused() -> None:
    (problem,) = refused(
        """
        services:
          web:
            image: nginx:1.25
            networks:
              front: {ipv4_address: 172.16.238.10}
        networks:
          front: {}
        """
    )
    assert problem.key == "networks.front.ipv4_address"


def test_a_one_shot_dependency_is_refused() -> None:
    (problem,) = refused(
        """
        services:
          app:
            image: nginx:1.25
            depends_on:
              migrate: {condition: service_completed_successfully}
          migrate:
            image: nginx:1.25
        """
    )
    assert problem.key == "depends_on.migrate.condition"
    assert "Standard lifecycle script" in problem.message


@pytest.mark.parametrize("name", ["web.app", "-web", "a" * 33])
def test_service_names_crane_cannot_use_are_refused(name: str) -> None:
    (problem,) = refused(f"services:\n  {name}:\n    image: nginx:1.25\n")
    assert problem.service == name
    assert "rename it wherever other services use it" in problem.message


def test_a_service_needs_an_image_or_a_build() -> None:
    (problem,) = refused("services:\n  web:\n    command: [sh]\n")
    assert "neither an image nor a build" in problem.message


def test_an_invalid_image_reference_is_reported_from_the_templates_validation() -> None:
    (problem,) = refused("services:\n  web:\n    image: Not An Image\n")
    assert problem.service == "web"
    assert "not a Docker image reference" in problem.message


def test_every_problem_of_the_file_is_reported_at_once() -> None:
    problems = refused(
        """
        services:
          web:
            image: nginx:1.25
            privileged: true
            volumes: ["/etc:/etc"]
          db:
            image: postgres:16
            cap_add: [SYS_ADMIN]
        networks:
          host_net: {external: true}
        """
    )
    assert {(p.service, p.key) for p in problems} == {
        ("web", "privileged"),
        ("web", "volumes[0]"),
        ("db", "cap_add"),
        (None, "networks.host_net.external"),
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("# only a comment\n", "a compose file starts with services"),
        ("- a\n- list\n", "a compose file is a mapping with services"),
        ("services: [web]\n", "has no services"),
        ("services:\n  web: {image: nginx\n", "malformed"),
        ("version: '3'\n", "has no services"),
    ],
)
def test_files_that_are_not_compose_files_say_why(text: str, words: str) -> None:
    result = compose_to_tosca(text)
    assert result.template is None
    assert any(words in p.message for p in result.errors), [p.message for p in result.errors]


def test_a_yaml_bomb_stops_at_the_loaders_limits() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    result = compose_to_tosca("\n".join(lines) + "\nservices: {web: {image: nginx}}\n")
    assert result.template is None
    assert "aliases" in result.errors[0].message or "values" in result.errors[0].message
