"""`edgeforge inspect MODEL`: the report of edgeforge.api.inspect as JSON or rich tables."""
from __future__ import annotations

import json
from typing import Any

from edgeforge import api
from edgeforge.codegen.visual import op_label


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
    from rich.table import Table

    from edgeforge.cli import console
    con = console()
    t = report["totals"]
    con.print(f"[bold]{report['model']}[/bold]  ({report['format']}, "
              f"{'int8' if report['int8'] else 'float'})  {report['path']}")
    io = Table(title="inputs / outputs", show_edge=False)
    for col in ("", "name", "shape", "dtype", "quant"):
        io.add_column(col)
    for kind in ("inputs", "outputs"):
        for d in report[kind]:
            shape = _shape(d["shape"])
            if d.get("authored_shape"):         # the model file's own layout beside ours
                shape += f" (file: {_shape(d['authored_shape'])})"
            io.add_row(kind[:-1], d["name"], shape, d["dtype"], _quant_short(d["quant"]))
    con.print(io)
    tab = Table(title="ops", show_edge=False)
    for col, just in (("#", "right"), ("op", "left"), ("name", "left"), ("in", "left"),
                      ("out", "left"), ("MACs", "right"), ("weights B", "right"),
                      ("act B", "right"), ("attrs", "left")):
        tab.add_column(col, justify=just, no_wrap=col != "attrs")
    for o in report["ops"]:
        tab.add_row(str(o["index"]), o["op"], op_label(o)[:48],
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


def main(args: Any) -> int:
    report = api.inspect(args.model)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        render(report, getattr(args, "verbose", 0))
    return 0
