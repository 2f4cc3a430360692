"""`edgeforge inspect`: what a model is made of -- ops, tensors, params, MACs, bytes.

`inspect(path)` returns a JSON-safe dict; `cmd_inspect(args)` prints it as JSON (`--json`)
or as rich tables. MACs come from the one op table (`OPS[op].macs`); weight bytes count
constant operands; activation bytes count the non-constant tensors an op writes.
"""
from __future__ import annotations

import dataclasses
import enum
import json
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
            "index": i, "op": n.op.value, "name": n.name,
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
        "inputs": [tensor_dict(g.tensors[n]) for n in g.inputs],
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


# ---------------------------------------------------------------- text rendering
def _shape(s: list[int]) -> str:
    return "x".join(str(d) for d in s) if s else "scalar"


_ABBREV = {"stride": "s", "pad": "p", "dilation": "d", "depth_multiplier": "dm", "kernel": "k",
           "keep_num_dims": "keep", "act": ""}


def _attrs_short(a: dict[str, Any]) -> str:
    """Compact attrs, defaults left out: `k3,3 s2,2 p0,0,1,1 RELU`."""
    parts = []
    for k, v in a.items():
        if v in ([1, 1], [0, 0, 0, 0], "NONE", False) or (k == "depth_multiplier" and v == 1):
            continue
        if isinstance(v, list):
            v = ",".join(str(x) if not isinstance(x, list) else "/".join(map(str, x)) for x in v)
        parts.append(f"{_ABBREV.get(k, k + '=')}{v}" if k != "act" else str(v))
    return " ".join(parts)


def _quant_short(q: dict[str, Any] | None) -> str:
    if q is None:
        return "-"
    if len(q["scale"]) > 1:
        return f"per-channel[{len(q['scale'])}] axis {q.get('axis', 0)}"
    return f"scale {q['scale'][0]:.6g} zp {q['zero_point'][0]}"


def _human(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def render(report: dict[str, Any], verbose: int = 0) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console()
    if not con.is_terminal:   # piped or captured: do not wrap at 80 columns
        con = Console(width=160)
    t = report["totals"]
    con.print(f"[bold]{report['model']}[/bold]  ({report['format']}, "
              f"{'int8' if report['int8'] else 'float'})  {report['path']}")
    io = Table(title="inputs / outputs", show_edge=False)
    for col in ("", "name", "shape", "dtype", "quant"):
        io.add_column(col)
    for kind in ("inputs", "outputs"):
        for d in report[kind]:
            io.add_row(kind[:-1], d["name"], _shape(d["shape"]), d["dtype"],
                       _quant_short(d["quant"]))
    con.print(io)
    tab = Table(title="ops", show_edge=False)
    for col, just in (("#", "right"), ("op", "left"), ("name", "left"), ("in", "left"),
                      ("out", "left"), ("MACs", "right"), ("weights B", "right"),
                      ("act B", "right"), ("attrs", "left")):
        tab.add_column(col, justify=just, no_wrap=col != "attrs")
    for o in report["ops"]:
        tab.add_row(str(o["index"]), o["op"], o["name"][:40],
                    ", ".join(_shape(s) for s in o["inputs"]),
                    ", ".join(_shape(s) for s in o["outputs"]),
                    f"{o['macs']:,}", f"{o['weight_bytes']:,}", f"{o['activation_bytes']:,}",
                    _attrs_short(o["attrs"]) if verbose or len(report["ops"]) < 200 else "")
    con.print(tab)
    if verbose:
        tt = Table(title="tensors", show_edge=False)
        for col in ("name", "shape", "dtype", "kind", "bytes", "quant"):
            tt.add_column(col, no_wrap=col != "name")
        for d in report["tensors"]:
            tt.add_row(d["name"], _shape(d["shape"]), d["dtype"],
                       "const" if d["const"] else "act", f"{d['bytes']:,}",
                       _quant_short(d["quant"]))
        con.print(tt)
    con.print(f"ops {t['ops']}  params {t['params']:,}  MACs {t['macs']:,} "
              f"({_human(t['macs'])})  weights {t['weight_bytes']:,} B  activations "
              f"{t['activation_bytes']:,} B (peak live {t['peak_activation_bytes']:,} B)")
    if "dequantized_weights" in report:
        con.print(f"note: {len(report['dequantized_weights'])} hybrid int8 weight tensor(s) "
                  "were dequantized to float32")
    if "passes" in report:
        changed = [p for p in report["passes"] if _pass_changed(p)]
        con.print(f"[bold]passes[/bold]: {len(report['passes'])} run, {len(changed)} changed "
                  "the graph" + ("" if verbose else " (-v lists all)"))
        for p in report["passes"] if verbose else changed:
            con.print(f"  {_pass_line(p)}")


def _pass_changed(p: dict[str, Any]) -> bool:
    return p["changes"] != 0


def _pass_line(p: dict[str, Any]) -> str:
    """One edgeforge.passes log entry (name, changes, ops_before, ops_after) as text."""
    before, after = p["ops_before"], p["ops_after"]
    delta = [f"{op} {before.get(op, 0)}->{after.get(op, 0)}"
             for op in sorted(set(before) | set(after)) if before.get(op, 0) != after.get(op, 0)]
    return f"{p['name']}: changes={p['changes']}" + ("; " + ", ".join(delta) if delta else "")


def cmd_inspect(args: Any) -> int:
    report = inspect(args.model)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        render(report, getattr(args, "verbose", 0))
    return 0
