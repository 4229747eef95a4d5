"""Packaging is in pyproject.toml; this file only adds the optional compiled build.

``REPLAYGATE_COMPILE=1 python setup.py build_ext --inplace`` (``make accel``) compiles the
capture hot path listed in ``src/replaygate/protocol/_accel.py`` with mypyc, and the
pseudonym kernels of masking (``src/replaygate/stages/_mask_core.c``, a plain C extension;
see ``_mask_accel.py``). Without that variable nothing is compiled and the package is pure
Python.
"""

from __future__ import annotations

import os
import runpy

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("REPLAYGATE_COMPILE") == "1":
    from mypyc.build import mypycify

    accel = runpy.run_path(os.path.join("src", "replaygate", "protocol", "_accel.py"))
    ext_modules = mypycify(
        [f"src/replaygate/protocol/{name}.py" for name in accel["COMPILED_MODULES"]],
        opt_level="3",
        group_name=accel["GROUP"],
    )
    stages = os.path.join("src", "replaygate", "stages")
    mask = runpy.run_path(os.path.join(stages, "_mask_accel.py"))
    ext_modules.append(
        Extension(
            "replaygate.stages._mask_core",
            [os.path.join(stages, "_mask_core.c")],
            # rebuilt when any source in the hash changes (the hash is compiled in)
            depends=[os.path.join(stages, n) for n in mask["CORE_SOURCES"]],
            define_macros=[("SOURCE_HASH", '"%s"' % mask["source_hash"](stages))],
            extra_compile_args=["-O2"],
        )
    )

setup(ext_modules=ext_modules)
