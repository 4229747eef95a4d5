"""The guard of the optional compiled masking core: used only when built from the current
sources and not turned off by ``REPLAYGATE_PURE_PYTHON``."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from replaygate.stages import _mask_accel, _mask_fp


def test_compiled_core_is_not_used_when_pure_python_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLAYGATE_PURE_PYTHON", "1")
    assert _mask_accel.load_core() is None


def test_compiled_core_is_not_used_when_built_from_other_sources(tmp_path: pathlib.Path) -> None:
    if _mask_fp.CORE is None:
        pytest.skip("the compiled core is not built (make accel) or not in use")
    here = pathlib.Path(_mask_accel.__file__).parent
    for name in _mask_accel.CORE_SOURCES:
        shutil.copy(here / name, tmp_path / name)
    assert _mask_accel.load_core(str(tmp_path)) is not None
    for name in _mask_accel.CORE_SOURCES:
        edited = tmp_path / "edited"
        shutil.copytree(tmp_path, edited, ignore=shutil.ignore_patterns("edited"))
        with open(edited / name, "a", encoding="utf-8") as f:
            f.write("\n// edited since the build\n" if name.endswith(".c") else "\n# edited\n")
        assert _mask_accel.load_core(str(edited)) is None, name
        shutil.rmtree(edited)


def test_source_hash_covers_every_core_source(tmp_path: pathlib.Path) -> None:
    here = pathlib.Path(_mask_accel.__file__).parent
    for name in _mask_accel.CORE_SOURCES:
        shutil.copy(here / name, tmp_path / name)
    before = _mask_accel.source_hash(str(tmp_path))
    assert before == _mask_accel.source_hash(str(here))
    (tmp_path / "_mask_fp.py").write_text("changed")
    assert _mask_accel.source_hash(str(tmp_path)) != before


_DIGESTS = """
import hashlib, hmac, sys
from replaygate.stages._mask_fp import CORE
k = CORE.Keyed(b"a key")
for n in (0, 1, 54, 55, 56, 63, 64, 65, 119, 120, 200):
    v = "v" * n
    assert k.digest(v, "fp/0") == hmac.new(b"a key", b"fp/0\\x00" + v.encode(), hashlib.sha256).digest(), n
print("ok")
"""


@pytest.mark.parametrize("no_sha_ni", ["0", "1"])
def test_both_sha256_block_functions_give_hmac_sha256(no_sha_ni: str) -> None:
    """The compiled core hashes with the x86 SHA extensions when the CPU has them, else in
    plain C (``REPLAYGATE_NO_SHA_NI=1`` forces that): both give HMAC-SHA256."""
    if _mask_fp.CORE is None:
        pytest.skip("the compiled core is not built (make accel) or not in use")
    import os
    import subprocess
    import sys

    env = {**os.environ, "REPLAYGATE_NO_SHA_NI": no_sha_ni}
    out = subprocess.run(
        [sys.executable, "-c", _DIGESTS], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
