"""`edgeforge compile`: model file -> a compiled DIR (int8 .tflite + C package + manifest).

    res = compile_model("kws.tflite", "out/kws")                  # int8 model: no calibration
    res = compile_model("net.onnx", "out/net", calib="calib.npz")  # float model: quantize first

DIR/model.tflite   the int8 model as LiteRT / TFLM run it (edgeforge.codegen.tflite.write_tflite)
DIR/model_tflm_lut.tflite  (--cluster only) model.tflite with the clustered weights in TFLM's
                   LUT compression (COMPRESSION_METADATA), for TFLM built with
                   USE_TFLM_COMPRESSION; LiteRT cannot read it
DIR/model_qdq.onnx the same graph as float ONNX with our scales as QuantizeLinear /
                   DequantizeLinear pairs, for TensorRT / onnxruntime / OpenVINO (codegen.qdq)
DIR/c/             model.h model.c weights.c + the kernels and headers they use (NAME.h with
                   --name), README.md, examples/main.c, CMakeLists.txt, edgeforge.mk,
                   library.json (PlatformIO), zephyr/ (a Zephyr module): edgeforge.codegen.package
DIR/arduino/       ef_NAME/: the same package as an Arduino library (library.properties, src/)
DIR/manifest.json  edgeforge.manifest.Manifest; model_sha256 = sha256 of DIR/model.tflite
DIR/report.json    per-op MACs, weight / activation bytes, arena in use per step

Everything is written into a temporary directory beside DIR and swapped in at the end, so a
failed compile leaves no DIR (and an existing DIR is replaced only by a complete one). An
existing -o is replaced only if it is a DIR holding nothing but what edgeforge wrote
(edgeforge.outdir): a user's file in it, or a folder that is not a DIR, is refused.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeforge import outdir
from edgeforge.errors import EdgeforgeError, QuantizeError
from edgeforge.ir import Graph
from edgeforge.manifest import Manifest, TensorSpec, sha256_file
from edgeforge.qmath import Numerics

if TYPE_CHECKING:
    from edgeforge.plan.memory import GraphPlan

# float-model compression options, handed to edgeforge.compress.prune.compress before quantizing
COMPRESS_OPTS = ("prune", "prune_channels", "distill", "val_data", "max_sqnr_drop",
                 "min_accuracy", "target_macs", "target_flash", "prune_blocks")
TFLM_LUT_FILE = "model_tflm_lut.tflite"   # --cluster: for a TFLM built with compression
SQNR_SAMPLES = 64           # the per-layer SQNR report's samples (the first of --calib)
TAIL_FRACTION = 16          # auto: output-path tensors up to arena / 16 widen first


@dataclass
class CompileResult:
    dir: Path
    manifest: Manifest
    report: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {"dir": str(self.dir), "name": m.name, "numerics": m.numerics,
                "model_sha256": m.model_sha256, "ops": len(m.ops),
                "arena_bytes": m.arena_bytes,
                "arena_lower_bound_bytes": m.arena_lower_bound_bytes,
                "weight_bytes": m.weight_bytes, "macs": self.report["totals"]["macs"],
                "inputs": [asdict(t) for t in m.inputs],
                "outputs": [asdict(t) for t in m.outputs],
                **({"compress": _compress_summary(self.report["compress"])}
                   if "compress" in self.report else {}),
                **({"cluster": _jsonable({k: v for k, v in self.report["cluster"].items()
                                          if k != "layers"})}
                   if "cluster" in self.report else {})}


def _compress_summary(rep: dict[str, Any]) -> dict[str, Any]:
    """What --json shows of compression: per-step cost, the search, the warnings."""
    return _jsonable({k: rep[k] for k in ("baseline", "steps", "search", "warnings", "before",
                                          "after") if k in rep})     # inf dB -> "inf"


# ---------------------------------------------------------------- the steps
def _quantize(g: Graph, path: str, calib: Any, numerics: Numerics, verbose: int,
              opts: dict[str, Any]) -> Graph:
    if calib is None:
        raise QuantizeError(f"{path}: a float model; pass --calib DATA.npz (representative "
                            "inputs) so it can be quantized to int8")
    from edgeforge.quantize import quantize_model
    return quantize_model(g, calib, numerics=str(numerics), verbose=verbose,
                          sqnr_samples=SQNR_SAMPLES, **opts)


def fold_int8_constants(g: Graph, numerics: Numerics) -> int:
    """Run once, by the int8 reference under `numerics`, every node whose inputs are all
    constants (a batch-None Keras RNN's zero initial state through its first steps), and make
    its outputs constants: the same bytes a runtime computes, without an arena tensor."""
    import dataclasses

    from edgeforge.runtime.reference import run
    folded = 0
    for node in list(g.nodes):
        names = [n for n in node.inputs if n]
        if not names or any(g.tensors[n].data is None for n in names) or \
                any(o in g.outputs for o in node.outputs) or \
                any(g.tensors[o].dtype != "int8" for o in node.outputs):
            continue
        sub = Graph(tensors={n: g.tensors[n] for n in names + list(node.outputs)},
                    nodes=[node], inputs=[], outputs=list(node.outputs), name="fold")
        values = run(sub, {}, numerics=numerics)
        for o in node.outputs:
            g.tensors[o] = dataclasses.replace(g.tensors[o], data=values[o])
        g.nodes.remove(node)
        folded += 1
    return folded


def int8_io(g: Graph) -> list[str]:
    """Make a float-I/O int8 model int8 end to end: drop a leading QUANTIZE (float32 -> int8)
    whose output becomes the graph input, and a trailing DEQUANTIZE (int8 -> float32) whose
    input becomes the graph output, as TFLite converters leave them. The int8 tensors keep
    their scale / zero point, which model.h and the manifest publish. Returns what was
    dropped, e.g. ["QUANTIZE input_1 -> input_1_int8"]."""
    from edgeforge.ir import Op
    dropped: list[str] = []
    consumers = g.consumers()
    producers = g.producers()
    for k, name in enumerate(list(g.inputs)):
        users = consumers.get(name, [])
        if (g.tensors[name].dtype == "float32" and len(users) == 1
                and users[0].op == Op.QUANTIZE and name not in g.outputs
                and g.tensors[users[0].outputs[0]].dtype == "int8"):
            q = users[0].outputs[0]
            g.nodes.remove(users[0])
            g.inputs[k] = q
            dropped.append(f"QUANTIZE {name} -> {q}")
    for k, name in enumerate(list(g.outputs)):
        node = producers.get(name)
        if (node is not None and node.op == Op.DEQUANTIZE and g.tensors[name].dtype == "float32"
                and g.tensors[node.inputs[0]].dtype == "int8" and node.inputs[0] not in g.inputs
                and len(consumers.get(name, [])) == 0):
            g.nodes.remove(node)
            g.outputs[k] = node.inputs[0]
            dropped.append(f"DEQUANTIZE {node.inputs[0]} -> {name}")
    if dropped:
        g.prune()
    return dropped


def _plan(g: Graph) -> GraphPlan:
    """The arena plan with the true in-place kernel variants (the ones codegen emits)."""
    from edgeforge.plan.memory import plan_graph
    return plan_graph(g, inplace_kernels=True)


def _mixed(float_g: Graph, g8: Graph, calib: Any, mode: str, ram_budget: int | None,
           board: str | None, numerics: Numerics, sqnr8: list[dict]
           ) -> tuple[Graph, list[dict]]:
    """--activations int16 / auto: widen layers of the int8 graph to 16x8 (quantize.mixed).
    auto ranks layers by the SQNR each loses in int8 and keeps each that still fits the RAM
    budget (planned arena); the chosen graph must beat int8 at the output, else int8 stays.
    Returns the graph (meta["precision"]: the choice and what it bought) and its SQNR rows."""
    from edgeforge.quantize import sqnr_report
    from edgeforge.quantize.calibrate import calibrate, load_calib
    from edgeforge.quantize.mixed import (
        choose_layers,
        correct_bias16,
        output_tail,
        rank_layers,
        widen,
        widenable,
    )
    from edgeforge.quantize.quantize import prepare_float
    if mode not in ("int16", "auto"):
        raise EdgeforgeError(f"--activations {mode!r}: choose int8, int16 or auto")
    fg = prepare_float(float_g)
    if g8.meta.get("quantize", {}).get("equalize"):
        from edgeforge.quantize.equalize import equalize_graph
        fg = equalize_graph(fg)
    arrays = load_calib(calib, fg)
    ranges = calibrate(fg, arrays, observer="minmax")
    budget = ram_budget
    if budget is None and board:
        from edgeforge.targets.board import load_board
        budget = int(load_board(board).ram["size"])
    arena8 = int(_plan(g8).size)
    if mode == "int16":
        candidates = [("all", set(widenable(g8)))]
    else:
        def fits(chosen: set[str]) -> bool:
            return budget is None or \
                _plan(widen(fg, g8, ranges, chosen)).size <= budget
        # the output's own path first (its int8 grid caps the output), then by damage;
        # and a second order: after that path, the layers whose int16 form alone costs the
        # least arena first (more layers fit when a big one would block several). Both are
        # measured below and the better output SQNR is kept.
        tail = output_tail(g8, arena8 // TAIL_FRACTION)
        ranked = rank_layers(g8, sqnr8, tail_bytes=arena8 // TAIL_FRACTION)
        candidates = [("damage", choose_layers(ranked, fits))]
        if budget is not None:
            alone = {t: _plan(widen(fg, g8, ranges, {t})).size for t in ranked[len(tail):]}
            cheap = ranked[:len(tail)] + sorted(alone, key=lambda t: (alone[t], ranked.index(t)))
            second = choose_layers(cheap, fits)
            if second != candidates[0][1]:
                candidates.append(("arena", second))
    out8 = {r["tensor"]: r["sqnr_db"] for r in sqnr8}
    last = g8.outputs[0]
    best = None
    for order, layers in candidates:
        g = widen(fg, g8, ranges, layers)   # int16 graph I/O where its layers are int16
        correct_bias16(fg, g, arrays, numerics=str(numerics))
        sqnr = sqnr_report(float_g, g, calib, numerics=str(numerics), max_samples=SQNR_SAMPLES)
        outs = {r["tensor"]: r["sqnr_db"] for r in sqnr}
        if best is None or (outs.get(last) or 0.0) > (best[4].get(last) or 0.0):
            best = (order, layers, g, sqnr, outs)
    order, layers, g, sqnr, outs = best
    if mode == "auto" and layers and (outs.get(last) or 0.0) < (out8.get(last) or 0.0):
        layers, g, sqnr = set(), g8, sqnr8          # nothing bought: int8 stays
    rows = [{"tensor": t, "precision": "int16" if t in layers else "int8",
             "sqnr_int8_db": out8.get(t), "sqnr_db": outs.get(t, outs.get(f"{t}/int16"))}
            for t in widenable(g8)]
    g.meta["precision"] = {"mode": mode, "ram_budget": budget, "int16_layers": len(layers),
                           "order": order, "orders_tried": len(candidates),
                           "layers": rows, "arena_int8_bytes": arena8,
                           "arena_bytes": int(_plan(g).size),
                           "output_sqnr_int8_db": out8.get(last),
                           "output_sqnr_db": outs.get(last)}
    return g, sqnr


def _int8_accuracy(float_g: Graph, g: Graph, ev: Any, numerics: Numerics) -> float | None:
    """Top-1 accuracy of int8 `g` on the labelled eval set (inputs quantized as compiled)."""
    import numpy as np

    from edgeforge.compress.guard import accuracy
    from edgeforge.quantize.bias_correction import run_int8_float_pairs
    out = g.outputs[0]
    outs = [q[out] for _, q in run_int8_float_pairs(float_g, g, ev.arrays, [out],
                                                   numerics=str(numerics), batch_size=64)]
    return accuracy(np.concatenate(outs), ev.labels)


def _cluster(g: Graph, k: int, float_g: Graph | None, calib: Any, numerics: Numerics,
             sqnr: list[dict] | None, val_data: Any = None) -> dict[str, Any]:
    """--cluster K on the int8 graph (in place), with the output SQNR it costs vs float
    when the model was quantized here, and the accuracy on --val-data when it has labels."""
    from edgeforge.compress.cluster import cluster_weights
    from edgeforge.compress.guard import WARN_ACCURACY_DROP, eval_set
    ev = eval_set(float_g, val_data) if float_g is not None and val_data is not None else None
    acc_before = _int8_accuracy(float_g, g, ev, numerics) if ev and ev.labels is not None \
        else None
    rows = cluster_weights(g, k)
    rep: dict[str, Any] = {"k": k, "layers": rows}
    if acc_before is not None:
        acc = _int8_accuracy(float_g, g, ev, numerics)
        rep["accuracy"] = {"before": acc_before, "after": acc, "data": ev.source}
        if acc is not None and acc_before - acc > WARN_ACCURACY_DROP:
            rep["warnings"] = [(f"--cluster {k} costs {100 * (acc_before - acc):.1f} points "
                                f"of int8 accuracy on {ev.source} ({100 * acc_before:.1f}% -> "
                                f"{100 * acc:.1f}%), more than {100 * WARN_ACCURACY_DROP:g}; "
                                "cluster to 16 values rather than 4, or drop --cluster")]
    if float_g is not None and sqnr:
        from edgeforge.quantize import sqnr_report
        after = sqnr_report(float_g, g, calib, numerics=str(numerics),
                            max_samples=SQNR_SAMPLES)
        out = g.outputs[0]
        rep["output_sqnr_db"] = {"before": next((r["sqnr_db"] for r in sqnr
                                                 if r["tensor"] == out), None),
                                 "after": next((r["sqnr_db"] for r in after
                                                if r["tensor"] == out), None)}
        from edgeforge.compress.guard import WARN_SQNR_DROP_DB
        b, a = rep["output_sqnr_db"]["before"], rep["output_sqnr_db"]["after"]
        if b is not None and a is not None and b - a > WARN_SQNR_DROP_DB and \
                "accuracy" not in rep:                 # labels measured it: they decide
            rep.setdefault("warnings", []).append(
                f"--cluster {k} costs {b - a:.1f} dB of output SQNR ({b:.1f} -> {a:.1f} dB vs "
                f"the float model), more than {WARN_SQNR_DROP_DB:g} dB; check accuracy with "
                "edgeforge validate, or cluster to 16 values rather than 4")
    return rep


def _cluster_bytes(rep: dict[str, Any], packed: list[dict]) -> dict[str, Any]:
    """The cluster report with each layer's flash: dense int8 vs stored (table + indices)."""
    by_tensor: dict[str, dict] = {}
    for p in packed:                      # a tensor two nodes share is stored twice
        d = by_tensor.setdefault(p["tensor"], {"bits": p["bits"], "dense_bytes": 0,
                                               "stored_bytes": 0, "saved_bytes": 0})
        for key in ("dense_bytes", "stored_bytes", "saved_bytes"):
            d[key] += p[key]
    layers = [{**r, **by_tensor.get(r["tensor"], {"bits": 0})} for r in rep["layers"]]
    for r in layers:
        if not r["bits"]:          # kept plain by _fit_packed, or more values than K
            r["stored"] = "plain int8 (its unpacked bytes do not fit the RAM budget)"
    dense = sum(p["dense_bytes"] for p in packed)
    stored = sum(p["stored_bytes"] for p in packed)
    return {**rep, "layers": layers, "dense_bytes": dense, "stored_bytes": stored,
            "saved_bytes": dense - stored}


def _fit_packed(g: Graph, budget: int | None) -> GraphPlan:
    """The arena plan of clustered `g`. Packed weights unpack into the arena before their
    layer, so the arena grows by the largest one: with a RAM `budget` (bytes of arena; the
    board's RAM by default) a tensor stays packed only where its unpacked bytes fit beside
    the tensors live at its step within max(budget, the all-plain arena), confirmed by
    planning (the largest dropped until it holds); the rest stay plain int8
    (g.meta["cluster_dense"]). No budget: every clustered tensor is packed."""
    from edgeforge.plan.scratch import packed_bits, unpacked_bytes
    g.meta.pop("cluster_dense", None)
    if budget is None:
        return _plan(g)
    need: dict[str, int] = {}
    for n in g.nodes:
        if packed_bits(n, g):
            need[n.inputs[1]] = unpacked_bytes(n, g)
    g.meta["cluster_dense"] = sorted(need)
    dense = _plan(g)
    limit = max(int(budget), int(dense.size))
    sched = dense.schedule(g)
    keep = set(need)
    for row, n in zip(_arena_use(sched, dense), sched.nodes):
        t = n.inputs[1] if len(n.inputs) > 1 else ""
        if t in keep and row["live_bytes"] + need[t] > limit:
            keep.discard(t)
    while keep:
        g.meta["cluster_dense"] = sorted(set(need) - keep)
        plan = _plan(g)
        if plan.size <= limit:
            return plan
        keep.discard(max(keep, key=lambda t: need[t]))
    g.meta["cluster_dense"] = sorted(need)
    return dense


def _check_litert(model: Path, src: str) -> None:
    """The int8 model we ship must pass LiteRT's Prepare (allocate_tensors runs every op's
    checks, e.g. kernel_util.cc's bias scale vs input * filter scale): else one error with
    LiteRT's reason, instead of a DIR that LiteRT / TFLM refuse later."""
    from edgeforge.errors import ModelError
    from edgeforge.runtime.peers import LitertRunner
    try:
        LitertRunner(model)
    except ModelError as e:                        # named after the user's file, not DIR's
        raise ModelError(src, e.why) from None


def _check_limits(plan: GraphPlan, g: Graph, src: str, board: str | None) -> None:
    """Every size / offset in the plan fits the C types and the board's RAM (one error)."""
    from edgeforge.plan.memory import check_limits
    ram = None
    if board:
        from edgeforge.targets.board import load_board
        ram = int(load_board(board).ram["size"])
    check_limits(plan, g, src, ram=ram, board=board or "")


def _arena_use(g: Graph, plan: GraphPlan) -> list[dict[str, int]]:
    """Per step: bytes of live tensors and the highest arena byte they reach."""
    rows = []
    for s in range(len(g.nodes)):
        live = [t for t in plan.tensors.values() if t.first <= s <= t.last]
        rows.append({"step": s, "live_bytes": int(sum(t.size for t in live)),
                     "high_water": int(max((t.offset + t.size for t in live), default=0))})
    return rows


def _spec(g: Graph, name: str, plan: Any) -> TensorSpec:
    t = g.tensors[name]
    q = t.quant
    return TensorSpec(name, list(t.shape), t.dtype,
                      float(q.scale[0]) if q is not None else None,
                      int(q.zero_point[0]) if q is not None else None,
                      int(plan.offsets[name]))


def compile_model(path: str | Path, out_dir: str | Path, *, calib: Any = None,
                  board: str | None = None, numerics: str | Numerics = "tflm",
                  name: str = "model", verbose: int = 0, activations: str = "int8",
                  ram_budget: int | None = None, cluster: int | None = None,
                  **quant_opts: Any) -> CompileResult:
    """Compile a .tflite / .onnx model into `out_dir` (see the module docstring).

    `activations`: int8, int16 (16x8: every layer with a 16x8 kernel) or auto (per layer,
    the most damaged layers first while the planned arena stays within `ram_budget` bytes,
    default the board's RAM); a graph input / output is int16 where the layer next to it
    is (model.h, the manifest and model.tflite say so). Float models only.
    `cluster` (16 or 4): each CONV2D / DWCONV2D / FC's int8 weights take at most that many
    values per tensor (compress.cluster), stored in the C package as a value table + 4- or
    2-bit indices; the .tflite holds the same int8 values. A layer's packed weights unpack into
    the arena before it runs: with `ram_budget` (or a board) only those that keep the arena
    within it stay packed."""
    from edgeforge.codegen.c import check_supported, emit_c
    from edgeforge.codegen.qdq import try_write_qdq
    from edgeforge.codegen.tflite import write_tflite
    from edgeforge.frontends import load
    from edgeforge.plan.memory import tflm_offline_plan
    from edgeforge.report import inspect_graph
    from edgeforge.version import __version__

    numerics = Numerics(numerics)
    if not name.isidentifier():
        raise EdgeforgeError(f"--name {name!r}: must be a C identifier")
    src, out = Path(path), Path(out_dir)
    outdir.recover(out)
    outdir.check_out(out)                          # before any work: -o is ours to replace
    stage = logging.getLogger("edgeforge.stage").info   # shown on a terminal (cli)
    stage("compile: reading %s", src)
    g = load(src)
    # an ONNX model's own input layouts (NCHW), by input position: profile takes them too
    authored = [g.meta.get("onnx_layout", {}).get(n) for n in g.inputs]
    comp = {k: quant_opts.pop(k) for k in COMPRESS_OPTS if quant_opts.get(k) is not None}
    val_data = comp.get("val_data")               # the --cluster step reports on it too
    for k in COMPRESS_OPTS:
        quant_opts.pop(k, None)
    if not any(comp.get(k) for k in COMPRESS_OPTS if k != "val_data"):
        comp = {}                                  # e.g. --no-distill alone: nothing to do
    compress_report = None
    if comp and g.is_int8():
        raise EdgeforgeError(f"{src}: --{next(iter(comp)).replace('_', '-')} works on float "
                             "models (prune before quantizing); this one is already int8")
    if comp:
        from edgeforge.compress.prune import compress
        stage("compile: compressing (%s)", ", ".join(comp))
        g, compress_report = compress(g, calib, verbose=verbose, **comp)
        for w in compress_report["warnings"]:     # a DIR is still written, as asked
            logging.getLogger("edgeforge.compile").warning("warning: %s: %s", src, w)
    sqnr = None
    float_g: Graph | None = None
    if not g.is_int8() and not any(g.tensors[t].dtype == "int16" for t in g.activations()):
        float_g = g
        stage("compile: quantizing %d ops to int8 (calibrating the float model)", len(g.nodes))
        g = _quantize(g, str(src), calib, numerics, verbose,
                      {k: v for k, v in quant_opts.items() if v is not None})
        # per-layer SQNR of the int8 outputs vs float: shows the user which layer hurts
        # (measured during bias correction when it ran over those samples)
        sqnr = g.meta.pop("sqnr", None)
        if sqnr is None:
            from edgeforge.quantize import sqnr_report
            stage("compile: per-layer SQNR, float vs int8")
            sqnr = sqnr_report(float_g, g, calib, numerics=str(numerics),
                               max_samples=SQNR_SAMPLES)
        from edgeforge.quantize.checks import calibration_warnings
        calib_warnings = calibration_warnings(float_g, calib, sqnr)
        for w in calib_warnings:        # warnings, not errors: the DIR is still written
            logging.getLogger("edgeforge.compile").warning("warning: %s: %s", src, w)
        if activations != "int8":
            stage("compile: choosing activation precision (%s)", activations)
            g, sqnr = _mixed(float_g, g, calib, activations, ram_budget, board, numerics,
                             sqnr)
    elif activations != "int8":
        raise EdgeforgeError(f"{src}: --activations {activations} works on float models "
                             "(it quantizes them); this one is already quantized")
    g = g.copy()
    cluster_rep = None
    if cluster:
        cluster_rep = _cluster(g, cluster, float_g, calib, numerics, sqnr, val_data)
        for w in cluster_rep.get("warnings", []):
            logging.getLogger("edgeforge.compile").warning("warning: %s: %s", src, w)
    dropped = int8_io(g)
    fold_int8_constants(g, numerics)
    if not g.nodes:
        raise EdgeforgeError(f"{src}: the model has no operators to compile")
    check_supported(g, str(src))                   # one clear error before any file exists
    stage("compile: planning the arena (%d ops)", len(g.nodes))
    if cluster:
        budget = ram_budget
        if budget is None and board:
            from edgeforge.targets.board import load_board
            budget = int(load_board(board).ram["size"])
        plan = _fit_packed(g, budget)
    else:
        plan = _plan(g)
    _check_limits(plan, g, str(src), board)
    sched = plan.schedule(g)                       # nodes in plan order

    with outdir.staged(out) as tmp:
        stage("compile: writing %s (model.tflite, C package, build files)", out)
        # our non-overlapping plan as TFLM's OfflineMemoryAllocation, for TFLM users
        offline = tflm_offline_plan(sched).offsets
        model_path = write_tflite(sched, tmp / "model.tflite", offline=offline)
        model_sha = sha256_file(model_path)
        _check_litert(model_path, str(src))       # LiteRT's own Prepare checks (scale_diff, ...)
        if cluster_rep is not None:         # the same weights in TFLM's LUT compression
            from edgeforge.plan.scratch import packed_bits
            lut = {n.inputs[1]: packed_bits(n, sched) for n in sched.nodes
                   if packed_bits(n, sched)}
            lut_path = write_tflite(sched, tmp / TFLM_LUT_FILE, lut=lut)
            cluster_rep["tflm_lut_tflite_bytes"] = lut_path.stat().st_size
            cluster_rep["tflite_bytes"] = model_path.stat().st_size
        header = "model.h" if name == "model" else f"{name}.h"
        pkg = emit_c(g, plan, tmp / "c", name=name, numerics=numerics, model_hash=model_sha,
                     header=header)
        from edgeforge.codegen.package import write_all  # CMake, Make, Zephyr, PIO, Arduino
        write_all(tmp / "c", tmp, name, header, numerics, pkg.files,
                  max(g.tensors[t].nbytes for t in [*g.inputs, *g.outputs]))
        report = inspect_graph(sched, str(src))
        report["qdq_onnx"] = try_write_qdq(sched, tmp / "model_qdq.onnx", name, numerics)
        report["arena"] = {"bytes": int(plan.size),
                           "lower_bound_bytes": int(plan.lower_bound),
                           "per_step": _arena_use(sched, plan)}
        report["c"] = {"kernels": pkg.kernels, "files": pkg.files,
                       "const_bytes": pkg.weight_bytes}
        if cluster_rep is not None:
            report["cluster"] = _cluster_bytes(cluster_rep, pkg.packed)
            stage("compile: --cluster %d: int8 weights %d -> %d bytes in the C package",
                  cluster, report["cluster"]["dense_bytes"], report["cluster"]["stored_bytes"])
        if compress_report is not None:
            report["compress"] = compress_report
        if sqnr is not None:
            report["sqnr"] = sqnr
            report["calibration_warnings"] = calib_warnings
            by_tensor = {r["tensor"]: r["sqnr_db"] for r in sqnr}
            for row, node in zip(report["ops"], sched.nodes):
                row["sqnr_db"] = by_tensor.get(node.outputs[0])
        step = {n.outputs[0]: i for i, n in enumerate(sched.nodes)}
        for pair in (getattr(plan, "fused", None) or {}).values():
            for conv in (pair.conv1, pair.conv2):   # plan.fuse: they run inside the add's step
                report["ops"][step[conv.outputs[0]]]["runs_in"] = step[pair.add.outputs[0]]
        if "precision" in g.meta:
            report["precision"] = g.meta["precision"]
            for row, node in zip(report["ops"], sched.nodes):
                row["precision"] = sched.tensors[node.outputs[0]].dtype
        manifest = Manifest(
            name=name, model_sha256=model_sha, source_sha256=sha256_file(src),
            sdk_version=__version__, numerics=str(numerics),
            inputs=[_spec(g, n, plan) for n in g.inputs],
            outputs=[_spec(g, n, plan) for n in g.outputs],
            arena_bytes=int(plan.size), arena_lower_bound_bytes=int(plan.lower_bound),
            weight_bytes=int(g.weight_bytes()), ops=[n.op.value for n in sched.nodes],
            plan=plan.rows(), board=board,
            extra={"source": str(src), "kernels": pkg.kernels, "io_dropped": dropped,
                   "macs": int(report["totals"]["macs"]),
                   "onnx_layout": {n: list(p) for n, p in zip(g.inputs, authored)
                                   if p and list(p) != list(range(len(p)))}})
        (tmp / "report.json").write_text(json.dumps(_jsonable(report), indent=1) + "\n")
        manifest.files = outdir.hash_tree(tmp)
        manifest.save(tmp)
        try:
            outdir.swap_in(tmp, out)
        except OSError as e:
            raise EdgeforgeError(f"{out}: cannot put the new DIR in place ({e.strerror})") from None
    return CompileResult(out, manifest, report)


def _jsonable(x: Any) -> Any:
    from edgeforge.report import jsonable
    return jsonable(x)
