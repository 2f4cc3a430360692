"""edgeforge: compress neural networks to int8 and run them on small devices.

The Python API is the `edgeforge` command's twin: each function returns what the command
prints with --json, and raises what it reports (EdgeforgeError and its subclasses).

    import edgeforge
    info = edgeforge.compile("kws.tflite", "out/kws")
    edgeforge.build("out/kws", "mps2-an386")
    r = edgeforge.profile("out/kws", "qemu://mps2-an386")
"""
from __future__ import annotations

from edgeforge.api import build, compile, deploy, flash, inspect, load, profile, run, validate
from edgeforge.errors import (
    BuildError,
    DeviceError,
    EdgeforgeError,
    ModelError,
    QuantizeError,
    UnsupportedOpError,
)
from edgeforge.version import __version__

__all__ = ["BuildError", "DeviceError", "EdgeforgeError", "ModelError", "QuantizeError",
           "UnsupportedOpError", "__version__", "build", "compile", "deploy", "flash",
           "inspect", "load", "profile", "run", "validate"]
