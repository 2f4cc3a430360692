"""Pictures of a compiled DIR: one self-contained HTML page, and Chrome/Perfetto trace events.

    html = report_html(manifest, report, profile)   # dicts of manifest.json, report.json and
                                                    # the last `edgeforge profile` (or None)
    events = trace_events(profile)                  # {"traceEvents": [...]}: ui.perfetto.dev,
                                                    # chrome://tracing

The page has no script and no external reference: inline SVG and CSS only, so it opens from a
file, an e-mail or a CI artifact. Its sections:
  * the arena timeline: each tensor a box, its arena offset against the steps it is live
    (first..last), as TFLM's PrintMemoryPlan and Vela's memory reports draw it;
  * per-op instruction (or latency) bars from the last profile;
  * per-layer SQNR bars (float vs int8, from compile's calibration);
  * the op list.
"""
from __future__ import annotations

import hashlib
import math
import re
from html import escape
from typing import Any

PLOT_W = 960          # px of the timeline's step axis
PLOT_H = 380          # px of the timeline's offset axis
BAR_H = 16            # px per bar row
SQNR_WARN_DB = 20.0   # a layer under this is drawn in red (quantize's warning threshold)


def op_label(row: dict[str, Any]) -> str:
    """An op's name as the model file has it: a .tflite op has none, so its output tensor's
    (the first of TFLite's ';'-joined fused names) rather than our index name `conv2d_0`."""
    name, tensor = row.get("name") or "", row.get("tensor") or ""
    if tensor and re.fullmatch(rf"{str(row.get('op', '')).lower()}_\d+", name):
        return tensor.split(";")[0]
    return name


def _short(tensor: str) -> str:
    return tensor.split(";")[0]


def _colour(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)
    return f"hsl({h % 360}, 60%, {55 + (h >> 9) % 20}%)"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def arena_svg(plan: list[dict[str, Any]], steps: int, arena: int) -> str:
    """Each tensor a box: x = steps first..last, y = offset..offset + size (0 at the top)."""
    steps = max(steps, max((r["last"] + 1 for r in plan), default=1), 1)
    arena = max(arena, max((r["offset"] + r["size"] for r in plan), default=1), 1)
    left, top = 70, 20
    sx, sy = PLOT_W / steps, PLOT_H / arena
    out = [(f'<svg id="arena" xmlns="http://www.w3.org/2000/svg" width="{PLOT_W + left + 20}" '
           f'height="{PLOT_H + top + 40}" role="img" aria-label="arena timeline">'),
           f'<rect x="{left}" y="{top}" width="{PLOT_W}" height="{PLOT_H}" class="frame"/>']
    for r in sorted(plan, key=lambda r: (r["first"], r["offset"])):
        x = left + r["first"] * sx
        w = (r["last"] - r["first"] + 1) * sx
        y, h = top + r["offset"] * sy, max(r["size"] * sy, 1.0)
        tip = (f'{r["tensor"]}: {r["size"]:,} B at offset {r["offset"]:,}, steps '
               f'{r["first"]}..{r["last"]}')
        out.append(f'<rect class="tensor" x="{x:.1f}" y="{y:.1f}" width="{max(w - 1, 1):.1f}" '
                   f'height="{h:.1f}" fill="{_colour(r["tensor"])}"><title>{escape(tip)}'
                   "</title></rect>")
        label = _short(r["tensor"])[-24:]
        if h >= 12 and w >= 7 * len(label):
            out.append(f'<text x="{x + 3:.1f}" y="{y + 11:.1f}" class="label">'
                       f"{escape(label)}</text>")
    for k in range(steps + 1):       # step ticks, about ten labels whatever the step count
        if k % max(1, steps // 10) == 0 or k == steps:
            x = left + k * sx
            out.append(f'<text x="{x:.1f}" y="{top + PLOT_H + 14}" class="tick" '
                       f'text-anchor="middle">{k}</text>')
    for k in range(5):
        off = arena * k / 4
        y = top + off * sy
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                   f'{off / 1024:,.1f}K</text>')
    out.append(f'<text x="{left + PLOT_W / 2}" y="{top + PLOT_H + 32}" class="axis" '
               'text-anchor="middle">step (op index)</text>')
    out.append(f'<text x="12" y="{top + PLOT_H / 2}" class="axis" text-anchor="middle" '
               f'transform="rotate(-90 12 {top + PLOT_H / 2})">arena offset (bytes)</text>')
    out.append("</svg>")
    return "\n".join(out)


def bars_svg(svg_id: str, rows: list[tuple[str, float | None]], unit: str,
             warn_below: float | None = None) -> str:
    """Horizontal bars, one per row (label, value); None draws no bar ("-")."""
    longest = max((len(label[:56]) for label, _ in rows), default=10)
    left, width = min(16 + 7 * longest, 420), 620      # ~7 px per 11 px monospace character
    vals = [v for _, v in rows if v is not None and math.isfinite(v)]
    top_v = max(vals, default=1.0) or 1.0
    out = [(f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{left + width + 110}" '
           f'height="{BAR_H * len(rows) + 10}" role="img" aria-label="{escape(unit)}">')]
    for k, (label, v) in enumerate(rows):
        y = 4 + k * BAR_H
        out.append(f'<text x="{left - 6}" y="{y + 12}" class="tick" text-anchor="end">'
                   f"{escape(label[:56])}</text>")
        if v is None or not math.isfinite(v):
            text = "-" if v is None else ("inf" if v > 0 else "-inf")
            out.append(f'<text x="{left + 4}" y="{y + 12}" class="tick">{text}</text>')
            continue
        w = max(width * max(v, 0.0) / top_v, 1.0)
        cls = "bar warn" if warn_below is not None and v < warn_below else "bar"
        out.append(f'<rect class="{cls}" x="{left}" y="{y}" width="{w:.1f}" '
                   f'height="{BAR_H - 3}"><title>{escape(label)}: {_fmt(v)} {escape(unit)}'
                   "</title></rect>")
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}" class="tick">{_fmt(v)}</text>')
    out.append("</svg>")
    return "\n".join(out)


CSS = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.frame { fill: #fafafa; stroke: #999; } .tensor { stroke: #333; stroke-width: 0.5; }
.label { font: 10px monospace; fill: #111; } .tick { font: 11px monospace; fill: #333; }
.axis { font: 12px sans-serif; fill: #333; } .bar { fill: #4a7ebb; } .bar.warn { fill: #c0392b; }
table { border-collapse: collapse; font: 12px monospace; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td.l, th.l { text-align: left; } .note { color: #555; }
"""


def arena_wording(arena: int, bound: int) -> str:
    """The arena size beside the conventional no-overlap bound, named for what it is: the most
    bytes live at any one step when no two tensors share bytes. Ours can be smaller because
    in-place kernels write an output over the input bytes they have already read."""
    s = f"arena {arena:,} B"
    if not bound:
        return s
    s += f" (no-overlap bound {bound:,} B: the most bytes live at one step if tensors never share"
    if arena < bound:
        return s + f"; in-place kernels write outputs over inputs already read, saving " \
                   f"{bound - arena:,} B)"
    return s + ")"


def _per_op_rows(profile: dict[str, Any], labels: dict[int, str]
                 ) -> tuple[list[tuple[str, float | None]], str]:
    unit = profile.get("count_unit") or "latency_us"
    rows = [(f'#{p["index"]} {p["op"]} {labels.get(p["index"], p.get("name", ""))}'.strip(),
             float(p[unit]) if p.get(unit) is not None else None)
            for p in profile.get("per_op", [])]
    return rows, unit


def report_html(manifest: dict[str, Any], report: dict[str, Any],
                profile: dict[str, Any] | None = None) -> str:
    """The page (see the module docstring) as one HTML string."""
    name = manifest.get("name", "model")
    ops = report.get("ops", [])
    labels = {r["index"]: op_label(r) for r in ops}
    arena = int(manifest.get("arena_bytes", 0))
    bound = int(manifest.get("arena_lower_bound_bytes", 0) or 0)
    plan = manifest.get("plan", [])
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgeforge report: {escape(name)}</title>", f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>edgeforge report: {escape(name)}</h1>",
        (f'<p>{len(ops)} ops, numerics {escape(str(manifest.get("numerics", "")))}, '
        f'weights {int(manifest.get("weight_bytes", 0)):,} B, '
        f"{escape(arena_wording(arena, bound))}"
        f', model sha256 {escape(str(manifest.get("model_sha256", ""))[:16])}</p>'),
        "<h2>Arena timeline</h2>",
        ('<p class="note">Each box is a tensor: its offset in the arena against the steps it is '
        "live. Hover a box for its name and size.</p>"),
        arena_svg(plan, len(ops), arena),
    ]
    if profile and profile.get("per_op"):
        rows, unit = _per_op_rows(profile, labels)
        parts += [f"<h2>Per op: {escape(unit)} (last profile)</h2>",
                  (f'<p class="note">{escape(str(profile.get("target", "")))}, '
                  f'{profile.get("runs", "?")} runs; outputs byte-equal to the reference: '
                  f'{profile.get("outputs_match_reference")}</p>'),
                  bars_svg("per-op", rows, unit)]
    else:
        parts += ["<h2>Per op</h2>",
                  ('<p class="note">No profile yet: run <code>edgeforge profile DIR</code> and '
                  "make the report again.</p>")]
    sqnr = report.get("sqnr") or []
    if sqnr:
        rows = [(f'#{r["index"]} {r["op"]} {labels.get(r["index"], r.get("name", ""))}'.strip(),
                 r.get("sqnr_db")) for r in sqnr]
        parts += ["<h2>Per-layer SQNR (dB, float vs int8)</h2>",
                  f'<p class="note">Red: under {SQNR_WARN_DB:g} dB.</p>',
                  bars_svg("sqnr", rows, "dB", warn_below=SQNR_WARN_DB)]
    else:
        parts += ["<h2>Per-layer SQNR</h2>",
                  '<p class="note">The model was int8 already: no float model to compare.</p>']
    steps = report.get("arena", {}).get("per_step", [])
    parts += ["<h2>Ops</h2>", ('<table id="ops"><tr><th>#</th><th class="l">op</th>'
              '<th class="l">name</th><th class="l">output</th><th>MACs</th><th>weights B</th>'
              "<th>arena high water B</th><th>SQNR dB</th></tr>")]
    for k, r in enumerate(ops):
        hw = steps[k].get("high_water", "") if k < len(steps) else ""
        db = r.get("sqnr_db")
        shape = "x".join(map(str, r["outputs"][0])) if r.get("outputs") else ""
        parts.append(f'<tr><td>{r["index"]}</td><td class="l">{escape(str(r["op"]))}</td>'
                     f'<td class="l">{escape(labels[r["index"]])}</td>'
                     f'<td class="l">{escape(shape)}</td><td>{r.get("macs", 0):,}</td>'
                     f'<td>{r.get("weight_bytes", 0):,}</td><td>{hw:,}</td>'
                     f'<td>{"" if db is None else f"{db:.1f}"}</td></tr>')
    parts += ["</table>", "</body></html>", ""]
    return "\n".join(parts)


def trace_events(profile: dict[str, Any]) -> dict[str, Any]:
    """The per-op profile as Chrome trace events (JSON object format): one complete ("X")
    event per op, back to back, in microseconds; durations from latency_us, else from the
    count at the profile's clock (instructions at clock_hz, one per cycle)."""
    clock = float(profile.get("clock_hz") or 0)
    unit = profile.get("count_unit")
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 1,
         "args": {"name": f'edgeforge {profile.get("target", "")}'}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1,
         "args": {"name": str(profile.get("dir", "model"))}},
    ]
    ts = 0.0
    for p in profile.get("per_op", []):
        if p.get("latency_us") is not None:
            dur = float(p["latency_us"])
        elif unit and p.get(unit) is not None and clock > 0:
            dur = float(p[unit]) / clock * 1e6
        else:
            continue
        args = {k: v for k, v in p.items() if k not in ("index", "op", "name")}
        events.append({"name": f'{p["op"]} {p.get("name", "")}'.strip(), "cat": "op",
                       "ph": "X", "ts": round(ts, 3), "dur": round(dur, 3), "pid": 1, "tid": 1,
                       "args": {"index": p["index"], **args}})
        ts += dur
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model_sha256": profile.get("model_sha256", ""),
                          "latency_basis": profile.get("latency_basis", "")}}
