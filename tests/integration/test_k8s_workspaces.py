"""The production overlay gives the executors one ReadWriteMany volume for mission workspaces,
mounted where the executor keeps them (issue 15); dev keeps them in the executor's home volume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_k8s_manifests import (
    Rendered,
    container,
    k8s_tree,  # noqa: F401 - the fixture: a copy of k8s/ with the dev secrets written
    literal_env,
    render,
)

HOME_VARIABLE = "RUSTCHAIN_HOME"


def _workspaces_claim(rendered: Rendered) -> str | None:
    executor = rendered.named("Deployment", "executor")
    home = literal_env(executor, HOME_VARIABLE)
    mounts = {m["mountPath"]: m["name"] for m in container(executor)["volumeMounts"]}
    volume = mounts.get(f"{home}/workspaces")
    if volume is None:
        return None
    volumes = {v["name"]: v for v in executor["spec"]["template"]["spec"]["volumes"]}
    return str(volumes[volume]["persistentVolumeClaim"]["claimName"])


@pytest.fixture(scope="module")
def production(k8s_tree: Path) -> Rendered:  # noqa: F811
    return render(k8s_tree, "production")


@pytest.fixture(scope="module")
def dev(k8s_tree: Path) -> Rendered:  # noqa: F811
    return render(k8s_tree, "dev")


def test_production_executors_share_a_read_write_many_volume_for_workspaces(
    production: Rendered,
) -> None:
    claim_name = _workspaces_claim(production)
    assert claim_name is not None, "no volume at $RUSTCHAIN_HOME/workspaces"
    claim = production.named("PersistentVolumeClaim", claim_name)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "rustchain-workspaces"
    assert claim["metadata"]["namespace"] == "rustchain"


def test_dev_keeps_workspaces_in_the_executors_home_volume(dev: Rendered) -> None:
    assert _workspaces_claim(dev) is None
