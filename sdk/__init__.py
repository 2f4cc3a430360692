"""edgeforge: compress neural networks to int8 and run them on small devices.

The Python API mirrors the `edgeforge` command; each function returns what the CLI prints.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "compile", "inspect", "load", "run"]


def load(path: str, **kw):
    """Read a model file (.tflite or .onnx) into the IR."""
    from edgeforge.frontends import load as _load
    return _load(path, **kw)


def inspect(path: str, **kw) -> dict:
    from edgeforge.report import inspect as _inspect
    return _inspect(path, **kw)


def run(path: str, x, **kw):
    from edgeforge.runner import run as _run
    return _run(path, x, **kw)


def compile(path: str, out_dir: str, **kw):
    from edgeforge.compiler import compile_model
    return compile_model(path, out_dir, **kw)
