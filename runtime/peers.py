"""The runtimes our int8 bytes must match: TFLM (tflite-micro) and LiteRT (ai-edge-litert).

Each runner loads a model once and runs many inputs (`TflmRunner(path).run(inputs)`), so a
test over 100 inputs does not re-parse the flatbuffer 100 times. The one-shot functions
(`run_tflm`, `run_litert`) wrap them. Inputs/outputs are lists in the model's I/O order.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import ModelError

ModelSrc = str | Path | bytes


def _model_bytes(src: ModelSrc) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    p = Path(src)
    if not p.is_file():
        raise ModelError(str(p), "no such file")
    return p.read_bytes()


def _check_inputs(inputs: list[np.ndarray], details: list[dict], where: str) -> list[np.ndarray]:
    if len(inputs) != len(details):
        raise ValueError(f"{where}: {len(inputs)} inputs given, model has {len(details)}")
    out = []
    for i, (x, d) in enumerate(zip(inputs, details)):
        x = np.asarray(x)
        shape, dtype = tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"])
        if x.shape != shape or x.dtype != dtype:
            raise ValueError(f"{where}: input {i} is {x.dtype}{list(x.shape)}, "
                             f"model wants {dtype}{list(shape)}")
        out.append(np.ascontiguousarray(x))
    return out


# ---------------------------------------------------------------- LiteRT (ai-edge-litert)
def litert_error(e: Exception, where: str) -> ModelError:
    """LiteRT's own RuntimeError / ValueError (a multi-line C++ reason) as one ModelError."""
    return ModelError(where, "LiteRT refuses the model: " + " ".join(str(e).split()))


class LitertRunner:
    """ai-edge-litert Interpreter; `reference_kernels` picks BUILTIN_REF (the reference
    kernels, what our `litert` numerics profile mirrors) over the optimized BUILTIN ones."""

    def __init__(self, src: ModelSrc, reference_kernels: bool = True, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        self.where = "<bytes>" if isinstance(src, (bytes, bytearray)) else str(src)
        data = _model_bytes(src)
        try:
            self.interp = Interpreter(model_content=data, num_threads=num_threads,
                                      experimental_op_resolver_type=resolver)
            self.interp.allocate_tensors()     # every op's Prepare: LiteRT's checks run here
        except (RuntimeError, ValueError) as e:
            raise litert_error(e, self.where) from None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()
        self.stateful = _has_variables(data)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        checked = _check_inputs(inputs, self.inputs, "litert")
        try:
            if self.stateful:     # LSTM states: every run starts fresh, as ours and the C do
                self.interp.reset_all_variables()
            for d, x in zip(self.inputs, checked):
                self.interp.set_tensor(d["index"], x)
            self.interp.invoke()
        except (RuntimeError, ValueError) as e:
            raise litert_error(e, self.where) from None
        return [self.interp.get_tensor(d["index"]).copy() for d in self.outputs]


def run_litert(src: ModelSrc, inputs: list[np.ndarray], reference_kernels: bool = True,
               num_threads: int = 1) -> list[np.ndarray]:
    return LitertRunner(src, reference_kernels, num_threads).run(inputs)


# ---------------------------------------------------------------- TFLM (tflite-micro)
def _tflm(data: bytes, arena_size: int | None, preserve: bool) -> Any:
    from tflite_micro import runtime
    cfg = (runtime.InterpreterConfig.kPreserveAllTensors if preserve
           else runtime.InterpreterConfig.kAllocationRecording)
    return runtime.Interpreter.from_bytes(data, arena_size=arena_size, intrepreter_config=cfg)


class TflmRunner:
    """tflite-micro's Python interpreter (its reference kernels)."""

    def __init__(self, src: ModelSrc, arena_size: int | None = None, preserve: bool = False):
        self.data = _model_bytes(src)
        self.interp = _tflm(self.data, arena_size, preserve)
        sg = _subgraph0(self.data)
        self.n_tensors = len(sg.tensors)
        self.inputs = [self.interp.get_input_details(i) for i in range(len(sg.inputs))]
        self.outputs = [self.interp.get_output_details(i) for i in range(len(sg.outputs))]
        self.stateful = any(t.isVariable for t in sg.tensors or [])

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self.stateful:         # LSTM states: every run starts fresh (variables reset)
            self.interp.reset()
        for i, x in enumerate(_check_inputs(inputs, self.inputs, "tflm")):
            self.interp.set_input(x, i)
        self.interp.invoke()
        return [np.array(self.interp.get_output(i)) for i in range(len(self.outputs))]


def _subgraph0(data: bytes) -> Any:
    from ai_edge_litert import schema_py_generated as schema
    return schema.SubGraphT.InitFromObj(schema.Model.GetRootAsModel(data, 0).Subgraphs(0))


def _has_variables(data: bytes) -> bool:
    """Whether subgraph 0 has variable tensors (LSTM states), which TFLite keeps across
    invokes until reset."""
    try:
        return any(t.isVariable for t in _subgraph0(data).tensors or [])
    except Exception:  # noqa: BLE001 - a file the interpreter accepted but the schema cannot read
        return False


def run_tflm(src: ModelSrc, inputs: list[np.ndarray], arena_size: int | None = None
             ) -> list[np.ndarray]:
    return TflmRunner(src, arena_size).run(inputs)


def tflm_intermediates(src: ModelSrc, inputs: list[np.ndarray],
                       arena_size: int | None = None) -> dict[int, np.ndarray]:
    """Every tensor of subgraph 0 after one inference, keyed by its index in the file
    (kPreserveAllTensors keeps them all alive; constants are included)."""
    r = TflmRunner(src, arena_size, preserve=True)
    r.run(inputs)
    out: dict[int, np.ndarray] = {}
    for i in range(r.n_tensors):
        try:
            t = r.interp._interpreter.GetTensor(i, 0)   # {"tensor_data", "shape", "dtype"}
        except (RuntimeError, ValueError):  # optional/absent tensors have no data
            continue
        if isinstance(t, dict) and t.get("tensor_data") is not None:
            out[i] = np.array(t["tensor_data"])
    return out


_ALLOC_RE = re.compile(r"Arena allocation (head|tail|total) (\d+) bytes")


def tflm_arena_bytes(src: ModelSrc) -> dict[str, int]:
    """TFLM's arena use after one inference: {"head", "tail", "total"} in bytes.

    RecordingMicroAllocator prints from C++ to fd 2, so fd 2 is redirected to a temp file
    around the call (Python's sys.stderr would not see it)."""
    r = TflmRunner(src)
    r.run([np.zeros(tuple(d["shape"]), d["dtype"]) for d in r.inputs])
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            r.interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    found = {k: int(v) for k, v in _ALLOC_RE.findall(text)}
    if set(found) != {"head", "tail", "total"}:
        raise RuntimeError(f"could not parse TFLM print_allocations output: {text[:200]!r}")
    return found
