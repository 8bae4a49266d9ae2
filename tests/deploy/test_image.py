"""The container image, built and run for real with buildah (no engine, no registry).

No registry is reachable from the test machines, so the base is made here:
``debootstrap --variant=minbase bookworm`` (from deb.debian.org, as apt-get
uses), kept as a tarball in the cache directory for the day
(``$USERMGMT_TEST_CACHE``, default ``~/.cache/usermgmt-tests``) and imported
as ``debian:bookworm-slim`` into a buildah storage of the test's own. The
Containerfile is built unchanged from a context of its wheelhouse
(deploy/wheelhouse.sh) with ``buildah bud --isolation chroot``, and run with
``buildah run --isolation chroot`` in a network namespace of its own (so its
port 8000 is its own): the image's command serves, its health check passes,
``usermgmt --version`` and compose.yaml's commands work, and SIGTERM ends the
server with exit 0.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from usermgmt import __version__

from .components import DEPLOY, REPO, need_binary

# starts_first: the longest test (minutes) starts at once on its xdist worker,
# so the rest of the suite runs beside it instead of after it.
pytestmark = [pytest.mark.slow, pytest.mark.starts_first]

# Read at import: every test's environment is cleared of USERMGMT_* (tests/conftest.py).
MIRROR = os.environ.get("USERMGMT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = os.environ.get("USERMGMT_TEST_CACHE")
BASE_TAG = "debian:bookworm-slim"
IMAGE = "localhost/usermgmt:test"
TIMINGS: dict[str, float] = {}


def cache_dir() -> Path:
    folder = Path(CACHE) if CACHE else Path.home() / ".cache" / "usermgmt-tests"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(argv: list[str], *, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{shlex.join(argv)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def debian_base(debootstrap: str) -> Path:
    """Today's minbase bookworm as a tarball: made once a day, older ones removed."""
    folder = cache_dir()
    tarball = folder / f"debian-bookworm-minbase-{datetime.date.today():%Y%m%d}.tar"
    if tarball.exists():
        TIMINGS["debootstrap (cached)"] = 0.0
        return tarball
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=folder) as work:
        rootfs = Path(work) / "rootfs"
        run([debootstrap, "--variant=minbase", "bookworm", str(rootfs), MIRROR], timeout=1800)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = Path(work) / "base.tar"
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)
    for old in folder.glob("debian-bookworm-minbase-*.tar"):
        if old != tarball:
            old.unlink()
    TIMINGS["debootstrap"] = time.monotonic() - started
    return tarball


class Buildah:
    """buildah on a storage of its own (vfs: works wherever overlay mounts do not)."""

    def __init__(self, binary: str, root: Path) -> None:
        self.argv = [
            binary,
            "--storage-driver=vfs",
            f"--root={root / 'storage'}",
            f"--runroot={root / 'run'}",
        ]

    def __call__(self, *args: str, timeout: float = 900, **kwargs) -> str:
        return run([*self.argv, *args], timeout=timeout, **kwargs).stdout.strip()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    buildah = Buildah(
        need_binary("/usr/bin/buildah", "buildah"), tmp_path_factory.mktemp("buildah")
    )
    base = debian_base(need_binary("/usr/sbin/debootstrap", "debootstrap"))
    started = time.monotonic()
    scratch = buildah("from", "scratch")
    buildah("add", scratch, str(base), "/")
    buildah("commit", "--quiet", "--rm", scratch, BASE_TAG)
    TIMINGS["base import"] = time.monotonic() - started

    started = time.monotonic()
    context = tmp_path_factory.mktemp("context")
    shutil.copy(REPO / "Containerfile", context / "Containerfile")
    shutil.copy(REPO / ".containerignore", context / ".containerignore")
    run([str(DEPLOY / "wheelhouse.sh"), sys.executable, str(context / "dist")])
    TIMINGS["wheelhouse"] = time.monotonic() - started

    started = time.monotonic()
    buildah(
        "bud", "--isolation=chroot", "--format=docker", "--pull-never", "--quiet",
        "--tag", IMAGE, "--file", str(context / "Containerfile"), str(context),
        timeout=1800,
    )  # fmt: skip
    TIMINGS["build"] = time.monotonic() - started
    yield buildah
    # The storage (a copy of every layer, with vfs) goes with the temporary directory.
    buildah("rm", "--all")
    buildah("rmi", "--all", "--force")
    print("image test timings (s):", {k: round(v, 1) for k, v in TIMINGS.items()})


def image_config(buildah: Buildah) -> dict:
    return json.loads(buildah("inspect", "--type", "image", IMAGE))["Docker"]["config"]


def test_the_image_serves_by_default_and_runs_the_cli_and_the_compose_commands(image):
    """One test, so that pytest-xdist never builds the image twice."""
    config = image_config(image)
    assert config["Cmd"] == ["usermgmt", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert config["User"] == "usermgmt"
    assert config["StopSignal"] == "SIGTERM"
    assert not [e for e in config["Env"] if "SECRET" in e or "PASSWORD" in e]
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "/health/live" in " ".join(health)
    migrate = compose["migrate"]["command"]
    purge_loop = compose["purge"]["command"][-1]
    assert "usermgmt tokens purge" in purge_loop
    script = f"""
set -u
echo "WHOAMI=$(id -un)"
echo "VERSION=$(usermgmt --version)"
{shlex.join(migrate)} && echo MIGRATED
{shlex.join(config["Cmd"])} > /tmp/serve.log 2>&1 &
server=$!
for i in $(seq 300); do
  if {shlex.join(health[1:])} 2>/dev/null; then echo HEALTHY; break; fi
  sleep 0.2
done
printf 'Corr3ct-Horse-Battery\\n' | usermgmt users create --email ann@example.com \\
  --role admin --password-stdin -q >/dev/null && echo CREATED
usermgmt users list -o json
usermgmt tokens purge >/dev/null && echo PURGED
kill -TERM $server
wait $server
echo "SERVER_EXIT=$?"
tail -n 3 /tmp/serve.log
"""
    container = image("from", "--pull-never", IMAGE)
    try:
        started = time.monotonic()
        ip = need_binary("/usr/sbin/ip", "iproute2")
        inner = shlex.join(
            [*image.argv, "run", "--isolation=chroot", container, "--", "sh", "-c", script]
        )
        result = run(
            ["unshare", "--net", "sh", "-c", f"{ip} link set lo up && {inner}"], timeout=300
        )
        TIMINGS["run"] = time.monotonic() - started
    finally:
        image("rm", container)
    out = result.stdout
    assert "WHOAMI=usermgmt" in out
    assert f"VERSION=usermgmt {__version__}" in out
    for step in ("MIGRATED", "HEALTHY", "CREATED", "PURGED", "SERVER_EXIT=0"):
        assert step in out, out + result.stderr
    assert '"email": "ann@example.com"' in out
    assert "usermgmt API stopped" in out  # drained and said so
