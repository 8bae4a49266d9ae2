"""compose.yaml, checked by a real Compose implementation without an engine.

``docker-compose config`` (Debian's docker-compose 1.29, the Python
implementation) validates the file against its Compose schema, resolves the
anchors and env files, and prints the model it would run; no Docker engine is
involved. The image test (test_image.py) runs the file's commands in the image.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .components import DEPLOY, REPO, need_binary

COMPOSE = REPO / "compose.yaml"


def compose_config(folder: Path, name: str = "compose.yaml") -> subprocess.CompletedProcess:
    binary = need_binary("/usr/bin/docker-compose", "docker-compose")
    return subprocess.run(
        [binary, "--file", name, "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},  # no DOCKER_HOST or COMPOSE_* of the caller
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """compose.yaml beside its files, with the env files made from their examples."""
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE, folder / "compose.yaml")
    shutil.copytree(DEPLOY / "compose", folder / "deploy" / "compose")
    for name in ("usermgmt.env", "postgres.env"):
        shutil.copy(DEPLOY / "compose" / f"{name}.example", folder / name)
    return folder


@pytest.fixture(scope="module")
def model(project) -> dict:
    result = compose_config(project)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_api_runs_twice_after_the_migration_succeeded(model):
    services = model["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api-1", "api-2", "purge", "nginx"}
    assert services["migrate"]["command"] == ["usermgmt", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for api in ("api-1", "api-2", "purge"):
        assert services[api]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for api in ("api-1", "api-2"):
        assert services[api]["command"][:2] == ["usermgmt", "serve"]
        assert services["nginx"]["depends_on"][api]["condition"] == "service_healthy"
        # Longer than the server's 30 s drain after SIGTERM.
        assert services[api]["stop_grace_period"] == "45s"


def test_every_usermgmt_container_uses_redis_and_trusts_only_nginx(model):
    services = model["services"]
    nginx_ip = services["nginx"]["networks"]["backend"]["ipv4_address"]
    for name in ("migrate", "api-1", "api-2", "purge"):
        env = services[name]["environment"]
        assert env["USERMGMT_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
        assert env["USERMGMT_TRUSTED_PROXIES"] == nginx_ip
        assert services[name]["image"] == "usermgmt:latest"


def test_secrets_come_from_env_files_only():
    text = COMPOSE.read_text()
    raw = yaml.safe_load(text)
    for service in raw["services"].values():
        env = service.get("environment") or {}
        for key in env:
            assert "SECRET" not in key and "PASSWORD" not in key and key != "USERMGMT_DATABASE_URL"
    assert "CHANGE-ME" not in text
    ignored = (REPO / ".gitignore").read_text().split()
    assert "/usermgmt.env" in ignored and "/postgres.env" in ignored


def test_the_purge_job_runs_tokens_purge(model):
    command = model["services"]["purge"]["command"]
    assert "usermgmt tokens purge" in command[-1]


def test_the_parser_is_a_real_check(project):
    """A misspelt option or condition is refused: the test above would notice a drift."""
    bad = (project / "compose.yaml").read_text()
    bad = bad.replace("service_completed_successfully", "service_completed", 1)
    (project / "bad.yaml").write_text(bad)
    result = compose_config(project, "bad.yaml")
    assert result.returncode != 0
    assert "service_completed" in result.stderr
