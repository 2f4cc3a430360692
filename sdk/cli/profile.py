"""`edgeforge profile DIR --target URI`: edgeforge.api.profile, then the report (or --json).
Exit 1 when the device's outputs differ from the host reference."""
from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from edgeforge import api


def print_report(r: dict[str, Any]) -> None:
    from rich.table import Table

    from edgeforge.cli import console
    con = console()
    ok = r["outputs_match_reference"]
    con.print(f"[bold]{r['target']}[/]  {r['dir']}  model {r['model_sha256'][:16]}  "
              f"numerics {r['numerics']}")
    dev = r.get("device") or {}
    if "firmware" in dev:            # an MCU: what INFO said
        hz = dev.get("clock_hz") or 0
        con.print(f"device {dev.get('board')} ({dev.get('cpu')}), firmware {dev['firmware']}, "
                  f"arena {dev.get('arena_bytes', 0):,} B, {dev.get('num_ops')} ops, counts "
                  f"{dev.get('counter_unit')}, clock {hz / 1e6:g} MHz (as the firmware "
                  "measured it)")
    con.print(f"outputs vs host reference on {r['samples']} sample(s): "
              + ("[green]byte-equal[/]" if ok else f"[red]MISMATCH[/] {r['mismatches'][:3]}"))
    unit = r.get("count_unit")
    cols = [("latency (us)", r["latency_us"])] + ([(unit, r[unit])] if unit else [])
    t = Table(title=f"{r['runs']} runs after {r['warmup']} warmup")
    t.add_column("stat")
    for name, _ in cols:
        t.add_column(name, justify="right")
    if r["latency_us"].get("count"):
        for k in ("mean", "std", "min", "p50", "p90", "p99", "max", "first"):
            t.add_row(k, *(f"{s[k]:,.1f}" for _, s in cols))
    con.print(t)
    if r.get("latency_basis"):
        con.print(f"latency from {r['latency_basis']}")
    est = r.get("cycles")
    if est:
        n = est["instructions"] or 1
        con.print(f"Cortex-M4 estimate ({est['source']}): {est['cycles']:,} cycles "
                  f"(bounds {est['cycles_low']:,}-{est['cycles_high']:,}) for "
                  f"{est['instructions']:,} instructions, {est['cycles'] / n:.2f} cycles/instr; "
                  f"{est['cycles'] / 120e3:,.2f} ms at 120 MHz (MLPerf Tiny's M4 clock)")
        hot = est.get("hot_functions") or []
        if hot and est["cycles"]:
            con.print("estimated cycles by function: " + ", ".join(
                f"{h['function']} {100 * h['cycles'] / est['cycles']:.0f}%" for h in hot[:6]))
    cold = r.get("cold_first_inference_us")
    con.print(f"kernels {r['kernels']['set']}; open (boot/load/connect) "
              f"{r['init_ms']:,.0f} ms; cold first inference "
              + (f"{cold:,.1f} us" if cold is not None else "not measured")
              + " (the table's 'first' is the first run after warm-up)")
    if r["per_op"]:
        key = unit or "latency_us"
        total = sum(p.get(key, 0) for p in r["per_op"]) or 1
        pt = Table(title="per op (last run)")
        est_col = any("cycles_estimated" in p for p in r["per_op"])
        for c in ("#", "op", "name", key, "%", f"{key[:5]}/MAC",
                  *(["est. cycles"] if est_col else [])):
            pt.add_column(c, justify="left" if c in ("op", "name") else "right")
        for p in r["per_op"]:
            v = p.get(key, 0)
            macs = p.get("macs") or 0
            fused = "runs_in" in p              # plan.fuse: counted on its ADD's row
            pt.add_row(str(p["index"]), str(p["op"]), str(p.get("name", "")),
                       f"in #{p['runs_in']}" if fused else f"{v:,}",
                       f"{100 * v / total:.1f}", f"{v / macs:.2f}" if macs and not fused else "",
                       *([f"{p.get('cycles_estimated', 0):,}"] if est_col else []))
        con.print(pt)


def _write_trace(path: str, r: dict[str, Any]) -> None:
    """--trace OUT.json: Chrome trace events (open in ui.perfetto.dev or chrome://tracing)."""
    import os

    from edgeforge.codegen.visual import trace_events
    from edgeforge.errors import EdgeforgeError
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(trace_events(r), f)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise EdgeforgeError(f"{path}: cannot write the trace ({e.strerror or e})") from None


def main(args: Any) -> int:
    options = {}
    for k in ("identity", "known_hosts", "accept_new_host_key", "native", "runtime", "threads",
              "kernels"):
        v = getattr(args, k, None)
        if v not in (None, False):
            options[k] = v
    r = api.profile(args.dir, args.target, runs=args.runs, warmup=args.warmup,
                    inputs=args.inputs, trace=args.trace, verbose=args.verbose,
                    clock_mhz=getattr(args, "clock_mhz", None),
                    cycles=bool(getattr(args, "cycles", False)), **options)
    if getattr(args, "trace_out", None):
        _write_trace(args.trace_out, r)
    if args.json:
        json.dump(r, sys.stdout, indent=2)
        print()
    else:
        print_report(r)
    return 0 if r["outputs_match_reference"] else 1
