"""`edgeforge run`: one input through a model on one backend.

    from edgeforge.runner import run
    [y] = run("kws.tflite", x)                              # host reference (numpy)
    [y] = run("kws.tflite", x, backend="litert")            # ai-edge-litert BUILTIN_REF
    [y] = run("out/kws", x, backend="c")                    # the compiled C package

A backend is a function (model_path, inputs, numerics) -> outputs in BACKENDS; "c" imports
edgeforge.codegen.host lazily so the other backends work without a C toolchain.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError, ModelError
from edgeforge.ir import Graph
from edgeforge.qmath import DEFAULT_NUMERICS, Numerics

Backend = Callable[[Path, list[np.ndarray], Numerics], list[np.ndarray]]


def model_file(model: Path) -> Path:
    """A model file, or the model.tflite of a compiled DIR."""
    if model.is_dir():
        inner = model / "model.tflite"
        if not inner.is_file():
            raise ModelError(str(model), "a directory but not a compiled DIR (no model.tflite)")
        if (model / "manifest.json").is_file():    # its C package was made from that model
            from edgeforge.manifest import Manifest
            Manifest.load(model).check_model(model)
        return inner
    if not model.is_file():
        raise ModelError(str(model), "no such file")
    return model


def _load(model: Path) -> Graph:
    from edgeforge.frontends import load
    return load(model_file(model))


def _reference(model: Path, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    from edgeforge.runtime.reference import run as ref_run
    g = _load(model)
    out = ref_run(g, inputs, numerics=numerics)
    return [out[name] for name in g.outputs]


def _litert(model: Path, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    from edgeforge.runtime.peers import run_litert
    path = model_file(model)
    if path.suffix == ".onnx":
        raise ModelError(str(path), "backend litert needs a .tflite (compile the model first)")
    return run_litert(path, inputs, reference_kernels=True)


def _c(model: Path, inputs: list[np.ndarray], numerics: Numerics) -> list[np.ndarray]:
    from edgeforge.codegen.host import CModel
    if not model.is_dir():             # a model file: compile it to a temporary DIR first
        if not _load(model).is_quantized():
            raise EdgeforgeError(f"{model}: a float model; backend c runs int8: compile it "
                                 f"with calibration data (edgeforge compile {model} --calib "
                                 "DATA.npz -o DIR), then run DIR")
        import tempfile

        from edgeforge.compiler import compile_model
        with tempfile.TemporaryDirectory(prefix="edgeforge-run-") as tmp:
            res = compile_model(model, Path(tmp) / "dir", numerics=numerics)
            return [np.asarray(y) for y in CModel(res.dir).run(inputs)]
    from edgeforge.manifest import Manifest
    compiled = Manifest.load(model).numerics
    if compiled != str(numerics):      # the C package's rounding is fixed at compile time
        raise EdgeforgeError(f"{model}: compiled for --numerics {compiled}; run it with "
                             f"--numerics {compiled} or recompile")
    return [np.asarray(y) for y in CModel(model).run(inputs)]


BACKENDS: dict[str, Backend] = {"reference": _reference, "litert": _litert, "c": _c}


def check_inputs(specs: list[Any], inputs: list[np.ndarray], where: str,
                 layouts: dict[str, list[int]] | None = None) -> list[np.ndarray]:
    """THE input check of run, profile, serve and bridge: `specs` are the model's inputs
    (manifest TensorSpec: name, shape, dtype, scale, zero_point). Float data for a float input
    becomes float32; anything else must match dtype and shape exactly (float data for an int8
    input is refused with the quantization formula, never cast), and be finite."""
    if len(inputs) != len(specs):
        raise EdgeforgeError(f"{where}: {len(inputs)} input array(s), the model has "
                             f"{len(specs)} ({', '.join(s.name for s in specs)})")
    checked = []
    for spec, x in zip(specs, inputs):
        x = np.asarray(x)
        name, shape, dtype = spec.name, tuple(spec.shape), np.dtype(spec.dtype)
        if x.dtype.kind == "f" and dtype == np.float32:     # float64, big-endian: same numbers
            x = x.astype(np.float32)
        perm = (layouts or {}).get(name)
        if perm and x.ndim == len(perm) and tuple(x.shape) != shape \
                and x.transpose(perm).shape == shape:      # the ONNX model's own layout (NCHW)
            x = np.ascontiguousarray(x.transpose(perm))
        if tuple(x.shape) != shape or x.dtype != dtype:
            hint = ""
            if spec.scale and spec.zero_point is not None and x.dtype.kind == "f":
                s, z = float(spec.scale), int(spec.zero_point)   # float data for an int8 input
                hint = f"; quantize it: round(x / {s:g}) {'-' if z < 0 else '+'} {abs(z)}"
            raise EdgeforgeError(f"{where}: input {name!r} is {x.dtype}{list(x.shape)}, the "
                                 f"model wants {dtype}{list(shape)} (batch included){hint}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            at = np.unravel_index(np.argmax(~np.isfinite(x)), x.shape)
            raise EdgeforgeError(f"{where}: input {name!r} has NaN or Inf at index "
                                 f"{[int(i) for i in at]}")
        checked.append(x)
    return checked


def check_graph_inputs(g: Graph, inputs: list[np.ndarray], where: str) -> list[np.ndarray]:
    from edgeforge.manifest import TensorSpec
    specs = []
    for name in g.inputs:
        t = g.tensors[name]
        q = t.quant
        specs.append(TensorSpec(name, list(t.shape), t.dtype,
                                float(q.scale[0]) if q is not None else None,
                                int(q.zero_point[0]) if q is not None else None))
    return check_inputs(specs, [np.asarray(x) for x in inputs], where,
                        g.meta.get("onnx_layout", {}))


def resolve_numerics(model: str | Path, numerics: Numerics | str | None) -> Numerics:
    """The profile to run with: the one asked for, else a compiled DIR's own (its manifest
    records what its C package and model.tflite were made for), else the default."""
    if numerics is not None:
        return Numerics(numerics)
    d = Path(model)
    if d.is_dir() and (d / "manifest.json").is_file():
        from edgeforge.manifest import Manifest
        return Numerics(Manifest.load(d).numerics)
    return DEFAULT_NUMERICS


def run(model_path: str | Path, x: np.ndarray | list[np.ndarray], *, backend: str = "reference",
        numerics: Numerics | str | None = None) -> list[np.ndarray]:
    """Run one sample (every input with its batch dimension) and return the outputs.
    `numerics` None: a compiled DIR runs with the profile it was compiled for."""
    if backend not in BACKENDS:
        raise EdgeforgeError(f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    model = Path(model_path)
    numerics = resolve_numerics(model, numerics)
    inputs = [np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
    g = _load(model)
    inputs = check_graph_inputs(g, inputs, str(model))
    with np.errstate(all="ignore"):      # overflow shows as non-finite outputs, refused below
        outs = BACKENDS[backend](model, inputs, Numerics(numerics))
    return check_outputs(g, outs, str(model))


def check_outputs(g: Graph, outs: list[np.ndarray], where: str) -> list[np.ndarray]:
    """A NaN or Inf output is an error, never a result: the float model overflowed on this
    input (or holds such a constant)."""
    for name, y in zip(g.outputs, outs):
        y = np.asarray(y)
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            at = [int(i) for i in np.unravel_index(np.argmax(~np.isfinite(y)), y.shape)]
            raise EdgeforgeError(f"{where}: output {name!r} is NaN or Inf at index {at} "
                                 "(the model overflows float32 on this input)")
    return outs
