"""`edgeforge inspect`: what a model is made of -- ops, tensors, params, MACs, bytes.

`inspect(path)` returns a JSON-safe dict; edgeforge.cli.inspect prints it as JSON (`--json`)
or as rich tables. MACs come from the one op table (`OPS[op].macs`); weight bytes count
constant operands; activation bytes count the non-constant tensors an op writes.
"""
from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.ir import OPS, Graph, QuantParams, Tensor


def jsonable(x: Any) -> Any:
    """Plain JSON types for attrs, numpy values, enums and tuples."""
    if isinstance(x, enum.Enum):
        return x.value
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def quant_dict(q: QuantParams | None) -> dict[str, Any] | None:
    if q is None:
        return None
    d: dict[str, Any] = {"scale": [float(s) for s in q.scale],
                         "zero_point": [int(z) for z in q.zero_point]}
    if q.per_channel:
        d["axis"] = int(q.axis)
    return d


def tensor_dict(t: Tensor) -> dict[str, Any]:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "quant": quant_dict(t.quant),
            "bytes": t.nbytes}


def _authored(g: Graph, name: str) -> dict[str, Any]:
    """{"authored_shape": [...]} when the model file declares the input in another layout
    (an ONNX NCHW input the IR holds as NHWC; run, compile --calib and validate take both)."""
    perm = g.meta.get("onnx_layout", {}).get(name)
    shape = list(g.tensors[name].shape)
    if not perm or list(perm) == list(range(len(perm))) or len(perm) != len(shape):
        return {}
    authored = [0] * len(shape)
    for i, p in enumerate(perm):
        authored[p] = shape[i]
    return {"authored_shape": authored}


def _live_peak(g: Graph) -> int:
    """Peak bytes of activations alive at once, each live from its producer to its last use."""
    acts = [n for n in g.activations() if not g.tensors[n].is_const]
    born = {n: -1 for n in g.inputs}
    last = {n: len(g.nodes) for n in g.outputs}
    for i, node in enumerate(g.nodes):
        for o in node.outputs:
            born.setdefault(o, i)
        for x in node.inputs:
            if x in born:
                last[x] = max(last.get(x, i), i)
    peak = 0
    for i in range(len(g.nodes)):
        live = sum(g.tensors[n].nbytes for n in acts
                   if born.get(n, 0) <= i <= last.get(n, born.get(n, 0)))
        peak = max(peak, live)
    return peak


def inspect_graph(g: Graph, path: str = "", fmt: str = "") -> dict[str, Any]:
    """The inspect report of an IR graph (see module docstring)."""
    ops: list[dict[str, Any]] = []
    params = 0
    counts: dict[str, int] = {}
    for i, n in enumerate(g.nodes):
        consts = [g.tensors[x] for x in n.inputs if x and g.tensors[x].is_const]
        acts_in = [g.tensors[x] for x in n.inputs if x and not g.tensors[x].is_const]
        outs = [g.tensors[o] for o in n.outputs]
        macs = int(OPS[n.op].macs(n, g))
        w_params = sum(int(np.prod(t.shape, dtype=np.int64)) for t in consts)
        params += w_params
        counts[n.op.value] = counts.get(n.op.value, 0) + 1
        ops.append({
            "index": i, "op": n.op.value, "name": n.name, "tensor": n.outputs[0] if n.outputs else "",
            "inputs": [list(t.shape) for t in acts_in],
            "outputs": [list(t.shape) for t in outs],
            "dtype": outs[0].dtype if outs else "",
            "attrs": jsonable(n.attrs),
            "macs": macs, "params": w_params,
            "weight_bytes": sum(t.nbytes for t in consts),
            "activation_bytes": sum(t.nbytes for t in outs),
        })
    act_names = [n for n in g.activations() if not g.tensors[n].is_const]
    report: dict[str, Any] = {
        "model": g.name,
        "path": path,
        "format": fmt or str(g.meta.get("format", Path(path).suffix.lstrip("."))),
        "int8": g.is_int8(),
        "inputs": [dict(tensor_dict(g.tensors[n]), **_authored(g, n)) for n in g.inputs],
        "outputs": [tensor_dict(g.tensors[n]) for n in g.outputs],
        "ops": ops,
        "op_counts": counts,
        "tensors": [dict(tensor_dict(t), const=t.is_const) for t in g.tensors.values()],
        "totals": {
            "ops": len(g.nodes),
            "tensors": len(g.tensors),
            "params": params,
            "macs": int(sum(o["macs"] for o in ops)),
            "weight_bytes": int(g.weight_bytes()),
            "activation_bytes": int(sum(g.tensors[n].nbytes for n in act_names)),
            "peak_activation_bytes": int(_live_peak(g)),
        },
    }
    if path and Path(path).is_file():
        report["file_bytes"] = Path(path).stat().st_size
    for key in ("passes", "dequantized_weights", "ignored_subgraphs"):
        if key in g.meta:
            report[key] = jsonable(g.meta[key])
    return report


def inspect(path: str | Path, **load_kw: Any) -> dict[str, Any]:
    """Load a .tflite/.onnx model and report on it (raises ModelError/UnsupportedOpError)."""
    from edgeforge.frontends import load
    g = load(path, **load_kw)
    return inspect_graph(g, str(path))
