"""edgeforge: compress neural networks to int8 and run them on small devices.

The Python API is the `edgeforge` command's twin: each function returns what the command
prints with --json, and raises what it reports (EdgeforgeError and its subclasses).

    import edgeforge
    info = edgeforge.compile("kws.tflite", "out/kws")
    edgeforge.build("out/kws", "mps2-an386")
    r = edgeforge.profile("out/kws", "qemu://mps2-an386")
"""
from __future__ import annotations

from typing import Any

from edgeforge.errors import (
    BuildError,
    DeviceError,
    EdgeforgeError,
    ModelError,
    QuantizeError,
    UnsupportedOpError,
)
from edgeforge.version import __version__

# the API functions are loaded on first use: edgeforge.api imports numpy, LiteRT and the
# compiler, which `import edgeforge.cli` (the command's start-up) must not pay for up front
_API = ("build", "compile", "deploy", "flash", "inspect", "load", "profile", "run", "validate")


def __getattr__(name: str) -> Any:
    if name in _API:
        from edgeforge import api
        return getattr(api, name)
    raise AttributeError(f"module 'edgeforge' has no attribute {name!r}")


__all__ = ["BuildError", "DeviceError", "EdgeforgeError", "ModelError", "QuantizeError",
           "UnsupportedOpError", "__version__", "build", "compile", "deploy", "flash",
           "inspect", "load", "profile", "run", "validate"]
