"""The one native part of microisp: the LMMSE bases as a C kernel for the OpenVINO engine
(src/microisp_cli/_native_base.c). Everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("microisp_cli._native_base", ["src/microisp_cli/_native_base.c"],
                             extra_compile_args=["-O3"])])
