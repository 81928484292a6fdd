"""Images: present, pulled, or built once from a build context the caller extracted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from crane import driver
from crane.errors import DockerUnavailable, ImageNotFound, InvalidSpec, PolicyViolation
from crane.models import Target
from crane.specs import Action, BuildContext
from tests.crane.conftest import BUSYBOX, Deployments, needs_docker

pytestmark = [pytest.mark.docker, needs_docker, pytest.mark.django_db]


def _context(root: Path, dockerfile: str) -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "index.html").write_text("built by agora\n")
    return root


def test_present_image_is_used_and_a_missing_one_is_a_clear_error(engine_target: Target) -> None:
    present = driver.ensure_image(engine_target, "d1", BUSYBOX)
    assert (present.action, present.name) == (Action.UNCHANGED, BUSYBOX)
    started = time.monotonic()
    # No registry is reachable from this machine: the pull fails, and says which image and why.
    with pytest.raises((ImageNotFound, DockerUnavailable)) as caught:
        driver.ensure_image(engine_target, "d1", "agora-missing/nothing:1")
    assert time.monotonic() - started < 10
    assert "could not pull image agora-missing/nothing:1" in caught.value.message
    assert "registry" in caught.value.message
    with pytest.raises(InvalidSpec, match="not an image reference"):
        driver.ensure_image(engine_target, "d1", "Not An Image")


def test_image_is_built_once_per_content_and_removed_with_its_deployment(
    engine_target: Target, deployments: Deployments, tmp_path: Path, raw: Any
) -> None:
    deployment = deployments.new(engine_target)
    context = _context(tmp_path / "site", f"FROM {BUSYBOX}\nCOPY index.html /www/index.html\n")
    built = driver.ensure_image(engine_target, deployment, "site", build=BuildContext(context))
    assert built.action == Action.CREATED
    assert built.name.startswith(f"agora-{deployment}-site:")
    assert raw.images.get(built.name).labels["agora.deployment"] == deployment
    again = driver.ensure_image(engine_target, deployment, "site", build=BuildContext(context))
    assert (again.action, again.id, again.name) == (Action.UNCHANGED, built.id, built.name)

    (context / "index.html").write_text("changed\n")
    changed = driver.ensure_image(engine_target, deployment, "site", build=BuildContext(context))
    assert changed.action == Action.CREATED and changed.name != built.name
    assert set(driver.list_objects(engine_target, deployment).images) == {built.name, changed.name}

    driver.remove_deployment(engine_target, deployment)
    assert raw.api.images(filters={"label": f"agora.deployment={deployment}"}) == []


def test_dockerfile_outside_the_context_is_refused(engine_target: Target, tmp_path: Path) -> None:
    context = _context(tmp_path / "ctx", f"FROM {BUSYBOX}\n")
    (tmp_path / "Dockerfile.outside").write_text(f"FROM {BUSYBOX}\n")
    (context / "link").symlink_to(tmp_path / "Dockerfile.outside")
    for dockerfile in ("../Dockerfile.outside", str(tmp_path / "Dockerfile.outside"), "link"):
        with pytest.raises(PolicyViolation) as caught:
            driver.ensure_image(engine_target, "d1", "site", build=BuildContext(context, dockerfile))
        assert caught.value.setting == "dockerfile"
    with pytest.raises(InvalidSpec, match="no Dockerfile"):
        driver.ensure_image(engine_target, "d1", "site", build=BuildContext(context, "Missing"))


def test_failed_build_says_why(engine_target: Target, deployments: Deployments, tmp_path: Path) -> None:
    deployment = deployments.new(engine_target)
    context = _context(tmp_path / "bad", f"FROM {BUSYBOX}\nRUN echo about to fail && false\n")
    with pytest.raises(InvalidSpec, match="building image site failed") as caught:
        driver.ensure_image(engine_target, deployment, "site", build=BuildContext(context))
    assert "non-zero code" in caught.value.message
