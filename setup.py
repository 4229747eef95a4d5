"""Packaging is in pyproject.toml; this file only adds the optional compiled build.

``REPLAYGATE_COMPILE=1 python setup.py build_ext --inplace`` (``make accel``) compiles the
capture hot path listed in ``src/replaygate/protocol/_accel.py`` with mypyc. Without that
variable nothing is compiled and the package is pure Python.
"""

from __future__ import annotations

import os
import runpy

from setuptools import setup

ext_modules = []
if os.environ.get("REPLAYGATE_COMPILE") == "1":
    from mypyc.build import mypycify

    accel = runpy.run_path(os.path.join("src", "replaygate", "protocol", "_accel.py"))
    ext_modules = mypycify(
        [f"src/replaygate/protocol/{name}.py" for name in accel["COMPILED_MODULES"]],
        opt_level="3",
        group_name=accel["GROUP"],
    )

setup(ext_modules=ext_modules)
