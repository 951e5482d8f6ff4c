"""The one native part of microisp: the LMMSE bases as a C kernel for the OpenVINO engine
(src/microisp_cli/_native_base.c). Everything else is declared in pyproject.toml.

``optional``: without a C compiler the install goes on without it, and the engine computes the
base in its OpenVINO graph instead (the same numbers, more CPU time)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("microisp_cli._native_base", ["src/microisp_cli/_native_base.c"],
                             extra_compile_args=["-O3"], optional=True)])
