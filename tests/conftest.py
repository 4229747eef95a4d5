"""Shared fixtures. Real servers, real files; nothing mocked that can be run for real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from replaygate.testing.servers import NginxServer, is_root, nginx_binary

# Property tests judge data, never speed: on a busy 2-core machine generating or running one
# example may take seconds, so neither the per-example deadline nor the "generation is slow"
# health check may fail a test. Tests that set their own settings inherit this profile.
settings.register_profile("replaygate", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("replaygate")

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared real-traffic corpus; skips the test when it is not next to the checkout."""
    env = os.environ.get("REPLAYGATE_CORPUS")
    path = Path(env) if env else CORPUS
    if not path.is_dir():
        pytest.skip(f"corpus not found at {path} (set REPLAYGATE_CORPUS)")
    return path


@pytest.fixture(scope="session")
def nginx() -> Iterator[NginxServer]:
    """A real nginx on 127.0.0.1 (default locations of replaygate.testing.servers)."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    with NginxServer() as ng:
        yield ng


@pytest.fixture
def needs_root() -> None:
    """Skip (saying why) unless running as root, for raw-socket capture tests."""
    if not is_root():
        pytest.skip("needs root for raw sockets (CI runs as root)")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a tiny tmpfs that is already full (root only: mounts it), for the
    disk-full paths of every writer. Skips, saying why, when it cannot be mounted."""
    import subprocess

    if not is_root():
        pytest.skip("needs root to mount a tiny tmpfs")
    d = tmp_path / "full"
    d.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode(errors='replace').strip()}")
    try:
        fd = os.open(d / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)
