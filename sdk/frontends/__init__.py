"""Model file -> IR. One importer per format, chosen by the file's content or extension."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeforge.errors import ModelError
from edgeforge.ir import Graph


def load(path: str | Path, **kw) -> Graph:
    """Read .tflite or .onnx into the IR (NHWC, attributes normalized)."""
    p = Path(path)
    if p.is_dir():
        inner = p / "model.tflite"
        raise ModelError(str(p), "is a directory, not a .tflite/.onnx file"
                         + (f" (a compiled DIR: its model is {inner})" if inner.is_file() else ""))
    if not p.is_file():
        raise ModelError(str(p), "no such file")
    head = p.open("rb").read(8)
    if p.suffix == ".tflite" and head[4:8] != b"TFL3" and head[:1] == b"\x08":
        # protobuf field 1 (ModelProto.ir_version) first: an ONNX file named .tflite
        raise ModelError(str(p), "not a .tflite file (no TFL3 identifier); it looks like an "
                         "ONNX model: rename it to .onnx")
    if p.suffix == ".tflite" or head[4:8] == b"TFL3":
        from edgeforge.frontends.tflite import read_tflite
        return check_finite(read_tflite(p, **kw), str(p))
    if p.suffix == ".onnx":
        from edgeforge.frontends.onnx import read_onnx
        return check_finite(read_onnx(p, **kw), str(p))
    raise ModelError(str(p), "unknown model format (expected .tflite or .onnx)")


def check_finite(g: Graph, path: str) -> Graph:
    """Every float constant the graph computes with is finite: a NaN or Inf weight makes
    every output NaN (and int8 scales NaN), so it is an error naming the tensor."""
    for name, t in g.tensors.items():
        d = t.data
        if d is not None and d.dtype.kind == "f" and not np.isfinite(d).all():
            at = [int(i) for i in np.unravel_index(np.argmax(~np.isfinite(d)), d.shape)]
            raise ModelError(path, f"constant tensor {name!r} has NaN or Inf at index {at}")
    return g
