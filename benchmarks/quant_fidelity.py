"""Quantization fidelity, side by side: edgeforge's int8 vs onnxruntime's quantize_static vs
the TFLite converter, on the same calibration and evaluation data.

    python benchmarks/quant_fidelity.py [--json] [--observers] [--timing] [--prune]
    python benchmarks/quant_fidelity.py --int16 --tf-python TF_PY --keras-dir H5_DIR [--json]

Per model, output SQNR (dB) of each int8 model vs the float model (the float reference on
the same inputs), agreement of its top-1 class with the float model's, and top-1 accuracy
on the digits test split. Ratios are error-power ratios, peer / edgeforge (> 1: edgeforge's
error is that many times smaller). Note the output grids differ: TFLite requires int8
softmax outputs on (1/256, -128), onnxruntime's QDQ puts them on (1/255, -128) and keeps the
FC bias in float -- both favour onnxruntime slightly.

Data (all shipped with installed packages, nothing downloaded):
  ResNet-8   calibration 300 / evaluation 300 crops of scikit-learn's two sample photographs
             (load_sample_images), resized to 32x32, pixels 0..255;
  KWS DS-CNN the fixtures ship ONE real MFCC input (int8): it is dequantized, and 200/200
             perturbed variants (time shift, gain, 10% noise) calibrate/evaluate -- a weak
             stand-in for real speech, said here so nobody mistakes it for more;
  digits     examples/digits/calib.npz (256 training images) / test.npz (450 test images).

Peers:
  onnxruntime  quantize_static, QDQ, per-channel int8 weights, int8 activations, MinMax
               calibration on the same data. The float .tflite fixtures are converted to ONNX
               by a small writer below (NHWC in, NCHW inside); digits uses its own .onnx.
  TFLite       the converter needs tensorflow; when it is not importable the converter row
               is skipped with a note, and the MLPerf int8 fixtures (made by the TFLite
               converter, calibrated by MLCommons on their own data) are shown instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeforge.frontends.tflite import read_tflite
from edgeforge.ir import Act, Graph, Op
from edgeforge.qmath import dequantize
from edgeforge.quantize import prepare_float, quantize_model, sqnr_db
from edgeforge.quantize.bias_correction import deq, quantize_inputs
from edgeforge.quantize.calibrate import batch_runner
from edgeforge.quantize.samples import kws_variants, photo_crops
from edgeforge.runtime import reference

FIX = ROOT / "tests" / "fixtures" / "mlperf_tiny"
DIGITS = ROOT / "examples" / "digits"


# ---------------------------------------------------------------- data
def datasets() -> list[dict[str, Any]]:
    x = photo_crops(600, seed=1)
    gi = read_tflite(FIX / "kws_ds_cnn_int8.tflite")
    q = gi.tensors[gi.inputs[0]].quant
    x8 = np.load(FIX / "kws_ds_cnn_sample_inputs_int8.npy").reshape(1, 49, 10, 1)
    v = kws_variants(dequantize(x8, q.scale[0], q.zero_point[0]), 400, seed=2)
    test = np.load(DIGITS / "test.npz")
    return [
        {"name": "resnet8", "float": FIX / "ic_resnet8_float32.tflite",
         "int8_fixture": FIX / "ic_resnet8_int8.tflite", "calib": x[:300], "eval": x[300:]},
        {"name": "kws", "float": FIX / "kws_ds_cnn_float32.tflite",
         "int8_fixture": FIX / "kws_ds_cnn_int8.tflite", "calib": v[:200], "eval": v[200:]},
        {"name": "digits", "float": DIGITS / "digits_float.tflite",
         "onnx": DIGITS / "digits.onnx", "calib": np.load(DIGITS / "calib.npz")["input"],
         "eval": test["x"], "labels": test["y"]},
    ]


# ---------------------------------------------------------------- float IR -> ONNX (peer)
def to_onnx(g: Graph, path: Path) -> Path:
    """Float IR -> ONNX: NHWC graph input, one Transpose to NCHW, NCHW convs/pools, back to
    NHWC before a flatten so FC weights keep their column order."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], []
    layout: dict[str, str] = {}                  # 4-D tensor -> its name in NCHW

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def act(y: str, a: Act, final: str) -> str:
        if a == Act.NONE:
            nodes.append(helper.make_node("Identity", [y], [final]))
        elif a == Act.RELU:
            nodes.append(helper.make_node("Relu", [y], [final]))
        else:
            lo, hi = {Act.RELU6: (0.0, 6.0), Act.RELU_N1_TO_1: (-1.0, 1.0)}[a]
            nodes.append(helper.make_node("Clip", [y, const(f"{final}_lo", np.float32(lo)),
                                                   const(f"{final}_hi", np.float32(hi))],
                                          [final]))
        return final

    def nchw(t: str) -> str:
        return layout.get(t, t)

    for i, name in enumerate(g.inputs):
        if len(g.tensors[name].shape) == 4:
            nodes.append(helper.make_node("Transpose", [name], [f"t{i}_nchw"], perm=[0, 3, 1, 2]))
            layout[name] = f"t{i}_nchw"
    for k, n in enumerate(g.nodes):
        a, o = n.attrs, n.outputs[0]
        x = nchw(n.inputs[0])
        if n.op in (Op.CONV2D, Op.DWCONV2D):
            w = g.tensors[n.inputs[1]].data
            if n.op == Op.CONV2D:
                wo, group = w.transpose(0, 3, 1, 2), 1
            else:
                wo = w.transpose(3, 0, 1, 2)
                group = g.tensors[n.inputs[0]].shape[3]
            ins = [x, const(f"w{k}", wo)]
            if len(n.inputs) > 2 and n.inputs[2]:
                ins.append(const(f"b{k}", g.tensors[n.inputs[2]].data))
            nodes.append(helper.make_node("Conv", ins, [f"y{k}"], group=group,
                                          kernel_shape=list(wo.shape[2:]),
                                          strides=list(a.stride), dilations=list(a.dilation),
                                          pads=[a.pad[0], a.pad[1], a.pad[2], a.pad[3]]))
            layout[o] = act(f"y{k}", a.act, f"n{k}")
        elif n.op in (Op.AVGPOOL2D, Op.MAXPOOL2D):
            kw = {"kernel_shape": list(a.kernel), "strides": list(a.stride),
                  "pads": [a.pad[0], a.pad[1], a.pad[2], a.pad[3]]}
            if n.op == Op.AVGPOOL2D:
                kw["count_include_pad"] = int(a.count_include_pad)
            nodes.append(helper.make_node("AveragePool" if n.op == Op.AVGPOOL2D else "MaxPool",
                                          [x], [f"y{k}"], **kw))
            layout[o] = act(f"y{k}", a.act, f"n{k}")
        elif n.op == Op.ADD:
            nodes.append(helper.make_node("Add", [x, nchw(n.inputs[1])], [f"y{k}"]))
            out = act(f"y{k}", a.act, f"n{k}")
            if len(g.tensors[o].shape) == 4:
                layout[o] = out
            else:
                nodes.append(helper.make_node("Identity", [out], [o]))
        elif n.op == Op.RESHAPE:
            src = n.inputs[0]
            if src in layout:               # back to NHWC so the flatten order matches
                nodes.append(helper.make_node("Transpose", [layout[src]], [f"h{k}"],
                                              perm=[0, 2, 3, 1]))
                src = f"h{k}"
            shape = const(f"s{k}", np.array(a.shape, np.int64))
            nodes.append(helper.make_node("Reshape", [src, shape], [o]))
        elif n.op == Op.FC:
            ins = [x, const(f"w{k}", g.tensors[n.inputs[1]].data)]
            if len(n.inputs) > 2 and n.inputs[2]:
                ins.append(const(f"b{k}", g.tensors[n.inputs[2]].data))
            nodes.append(helper.make_node("Gemm", ins, [f"y{k}"], transB=1))
            act(f"y{k}", a.act, o)
        elif n.op == Op.SOFTMAX:
            nodes.append(helper.make_node("Softmax", [x], [o], axis=-1))
        else:
            raise NotImplementedError(f"to_onnx: {n.op}")
    for name in g.outputs:
        if name in layout:
            nodes.append(helper.make_node("Transpose", [layout[name]], [name + "_nhwc"],
                                          perm=[0, 2, 3, 1]))
    ins = [helper.make_tensor_value_info(i, TensorProto.FLOAT, list(g.tensors[i].shape))
           for i in g.inputs]
    outs = [helper.make_tensor_value_info(o + ("_nhwc" if o in layout else ""),
                                          TensorProto.FLOAT, list(g.tensors[o].shape))
            for o in g.outputs]
    model = helper.make_model(helper.make_graph(nodes, g.name, ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_quantize(float_onnx: Path, calib: np.ndarray, nhwc_to_nchw: bool, out: Path
                 ) -> tuple[Path, str]:
    from onnxruntime import InferenceSession
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    name = InferenceSession(str(float_onnx)).get_inputs()[0].name
    samples = calib.transpose(0, 3, 1, 2) if nhwc_to_nchw else calib

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(samples)

        def get_next(self) -> dict | None:
            s = next(self.it, None)
            return None if s is None else {name: s[None].astype(np.float32)}

    quantize_static(str(float_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return out, name


def ort_run(path: Path, name: str, x: np.ndarray, nchw: bool, logits: bool = False
            ) -> np.ndarray:
    from onnxruntime import InferenceSession, SessionOptions
    so = SessionOptions()
    so.intra_op_num_threads = 1
    s = InferenceSession(str(path), so)
    outs = [o.name for o in s.get_outputs()]
    feed = x.transpose(0, 3, 1, 2) if nchw else x
    return np.concatenate([s.run(outs[:1], {name: feed[i:i + 1]})[0] for i in range(len(x))])


def _logits_name(g: Graph) -> str:
    return next(n.inputs[0] for n in g.nodes if n.outputs[0] == g.outputs[0])


def float_outputs(fg: Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    run, lg = batch_runner(fg), _logits_name(fg)
    res = [run([x[i:i + 50]]) for i in range(0, len(x), 50)]
    return (np.concatenate([r[fg.outputs[0]] for r in res]),
            np.concatenate([r[lg] for r in res]))


def int8_outputs(qg: Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    run, lg = batch_runner(qg), _logits_name(qg)
    res = [run(quantize_inputs(qg, [x[i:i + 50]])) for i in range(0, len(x), 50)]
    return (np.concatenate([deq(qg, qg.outputs[0], r[qg.outputs[0]]) for r in res]),
            np.concatenate([deq(qg, lg, r[lg]) for r in res]))


# ---------------------------------------------------------------- one model
def measure(d: dict[str, Any], tmp: Path, verbose: int = 0) -> dict[str, Any]:
    g = read_tflite(d["float"])
    fg = prepare_float(g)
    f_out, _ = float_outputs(fg, d["eval"])
    row: dict[str, Any] = {"model": d["name"], "eval_samples": len(d["eval"])}

    def score(tag: str, out: np.ndarray, logits: np.ndarray | None = None) -> None:
        row[tag] = {"out_db": sqnr_db(f_out, out),
                    "top1_agree": float(np.mean(out.argmax(1) == f_out.argmax(1)))}
        if "labels" in d:
            row[tag]["accuracy"] = float(np.mean(out.argmax(1) == d["labels"]))

    if "labels" in d:
        row["float_accuracy"] = float(np.mean(f_out.argmax(1) == d["labels"]))
    t = time.perf_counter()
    qg = quantize_model(g, d["calib"], verbose=verbose)
    row["edgeforge_quantize_s"] = time.perf_counter() - t
    score("edgeforge", *int8_outputs(qg, d["eval"]))
    # onnxruntime
    if "onnx" in d:
        src, nchw = Path(d["onnx"]), True
    else:
        src, nchw = to_onnx(fg, tmp / f"{d['name']}_float.onnx"), False
    qpath, name = ort_quantize(src, d["calib"], nchw, tmp / f"{d['name']}_ort_qdq.onnx")
    score("onnxruntime", ort_run(qpath, name, d["eval"], nchw))
    # TFLite converter
    try:
        import tensorflow  # noqa: F401
        row["tflite_converter"] = {"note": "tensorflow importable but not wired here"}
    except ImportError:
        row["tflite_converter"] = {"note": "skipped: tensorflow is not importable"}
    if "int8_fixture" in d:
        fx = read_tflite(d["int8_fixture"])
        score("tflite_fixture", *int8_outputs(fx, d["eval"]))
    return row


def observer_table(ds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for d in ds:
        g = read_tflite(d["float"])
        f_out, _ = float_outputs(prepare_float(g), d["eval"])
        for obs in ("minmax", "percentile", "entropy", "mse"):
            qg = quantize_model(g, d["calib"], observer=obs, equalize=False,
                                bias_correction=False, verbose=0)
            out, _ = int8_outputs(qg, d["eval"])
            rows.append({"model": d["name"], "observer": obs, "out_db": sqnr_db(f_out, out)})
    return rows


def prune_table(fractions: tuple[float, ...] = (0.3, 0.5, 0.7)) -> list[dict[str, Any]]:
    """digits: channel pruning to each MAC fraction, before/after distillation, then int8."""
    from edgeforge.compress.prune import channel_prune, compress, compression_stats
    g = read_tflite(DIGITS / "digits_float.tflite")
    fg = prepare_float(g)
    calib = np.load(DIGITS / "calib.npz")["input"]
    test = np.load(DIGITS / "test.npz")
    x, y = test["x"], test["y"]
    f_out, _ = float_outputs(fg, x)

    def row(tag: str, graph: Graph, out: np.ndarray) -> dict[str, Any]:
        st = compression_stats(graph)
        return {"model": tag, "macs": st["macs"], "weight_params": st["weights"],
                "accuracy": float(np.mean(out.argmax(1) == y)),
                "out_db": sqnr_db(f_out, out)}

    rows = [row("float", fg, f_out)]
    for frac in fractions:
        pruned = channel_prune(fg, frac)
        rows.append(row(f"-{frac:.0%} MACs", pruned, float_outputs(pruned, x)[0]))
        dist, _ = compress(g, calib, prune_channels=frac, distill=True)
        rows.append(row("  + distill", dist, float_outputs(dist, x)[0]))
        qg = quantize_model(dist, calib, verbose=0)
        rows.append(row("  + int8", dist, int8_outputs(qg, x)[0]))
    return rows


def calib_timing() -> dict[str, float]:
    from edgeforge.quantize.calibrate import calibrate
    fg = prepare_float(read_tflite(FIX / "ic_resnet8_float32.tflite"))
    x = photo_crops(1000, seed=3)
    out = {}
    for obs in ("minmax", "mse"):
        t = time.perf_counter()
        calibrate(fg, x, observer=obs, verbose=0)
        out[obs] = time.perf_counter() - t
    return out


# ---------------------------------------------------------------- 16x8 and mixed precision
# --int16 --tf-python PY: the same float model, calibration and evaluation set in one run.
# The TFLite converter's float .tflite and its own 16x8 come from benchmarks/peers/tflite16.py
# run under PY (TensorFlow); edgeforge quantizes that float .tflite.
INT16_MODELS = [
    # name, Keras source (peers/tflite16.py MODEL; a bare file name is looked up in
    # --keras-dir, MLPerf Tiny's benchmark/training/*/trained_models), input side, pixel scale
    ("resnet8", "pretrainedResnet.h5", 32, 1.0),
    ("vww_mobilenet", "vww_96.h5", 96, 1.0 / 255),
    ("mobilenet_0.25_64", "mobilenet:0.25:64", 64, 1.0 / 255),
]


def _run_graph(g: Graph, x: np.ndarray) -> np.ndarray:
    """Float inputs -> the graph's dequantized output, quantized at its input's type."""
    from edgeforge.qmath import quantize
    t = g.tensors[g.inputs[0]]
    run = batch_runner(g)
    outs = []
    for i in range(0, len(x), 50):
        xq = quantize(x[i:i + 50], float(t.quant.scale[0]), int(t.quant.zero_point[0]),
                      t.dtype)
        outs.append(deq(g, g.outputs[0], run([xq])[g.outputs[0]]))
    return np.concatenate(outs)


def measure16(name: str, spec: str, side: int, pixel: float, tf_python: str, tmp: Path
              ) -> dict[str, Any]:
    import subprocess

    from edgeforge.compiler import compile_model
    from edgeforge.errors import ModelError
    from edgeforge.frontends import load
    from edgeforge.quantize.calibrate import calibrate, load_calib
    from edgeforge.quantize.equalize import equalize_graph
    from edgeforge.quantize.mixed import correct_bias16, widen
    from edgeforge.runtime.peers import LitertRunner
    x = photo_crops(400, size=side, seed=4) * np.float32(pixel)
    calib, ev = x[:200], x[200:]
    d = tmp / name
    d.mkdir()
    np.save(d / "calib.npy", calib)
    np.savez(d / "calib.npz", x=calib)
    subprocess.run([tf_python, str(ROOT / "benchmarks" / "peers" / "tflite16.py"),
                    spec, str(d / "calib.npy"), str(d)], check=True, capture_output=True)
    g = read_tflite(d / "float.tflite")
    fg = prepare_float(g)
    f_out = float_outputs(fg, ev)[0]
    row: dict[str, Any] = {"model": name, "calib": len(calib), "eval": len(ev)}
    try:
        peer = LitertRunner(d / "tflite_16x8.tflite")
        row["tflite_16x8_db"] = sqnr_db(f_out, np.concatenate([peer.run([s[None]])[0]
                                                               for s in ev]))
    except ModelError as e:          # the converter's model may not even pass Prepare
        row["tflite_16x8_db"], row["note"] = None, str(e)
    qg = quantize_model(g, calib)
    row["edgeforge_int8_db"] = sqnr_db(f_out, _run_graph(qg, ev))
    fq = equalize_graph(fg) if qg.meta["quantize"]["equalize"] else fg
    ranges = calibrate(fq, load_calib(calib, fq), observer="minmax")
    g16 = widen(fq, qg, ranges)
    correct_bias16(fq, g16, [calib])
    row["edgeforge_16x8_db"] = sqnr_db(f_out, _run_graph(g16, ev))
    c8 = compile_model(d / "float.tflite", d / "c8", calib=d / "calib.npz")
    budget = int(c8.manifest.arena_bytes * 1.25)
    ca = compile_model(d / "float.tflite", d / "cauto", calib=d / "calib.npz",
                       activations="auto", ram_budget=budget)
    for tag, res in (("compiled_int8", c8), ("compiled_auto", ca)):
        row[f"{tag}_db"] = sqnr_db(f_out, _run_graph(load(res.dir / "model.tflite"), ev))
        row[f"{tag}_arena"] = res.manifest.arena_bytes
    p = ca.report.get("precision", {})
    row["auto_int16_layers"] = f"{p.get('int16_layers', 0)}/{len(p.get('layers', []))}"
    return row


def int16_table(tf_python: str, keras_dir: str | None) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec, side, pixel in INT16_MODELS:
            if not spec.startswith("mobilenet:"):
                if not keras_dir or not (Path(keras_dir) / spec).is_file():
                    rows.append({"model": name, "note": f"skipped: no {spec} in --keras-dir"})
                    continue
                spec = str(Path(keras_dir) / spec)
            rows.append(measure16(name, spec, side, pixel, tf_python, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr)      # progress: a row at a time
    return rows


def print_int16(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':18s} {'tflite 16x8':>11s} {'ef 16x8':>8s} {'ef int8':>8s} "
          f"{'int8 DIR':>9s} {'auto DIR':>9s} {'arena int8':>10s} {'arena auto':>10s} "
          f"{'int16':>6s}  (output SQNR dB vs float)")
    for r in rows:
        if "edgeforge_int8_db" not in r:
            print(f"{r['model']:18s} {r['note']}")
            continue
        peer = "-" if r["tflite_16x8_db"] is None else f"{r['tflite_16x8_db']:.2f}"
        print(f"{r['model']:18s} {peer:>11s} {r['edgeforge_16x8_db']:8.2f} "
              f"{r['edgeforge_int8_db']:8.2f} {r['compiled_int8_db']:9.2f} "
              f"{r['compiled_auto_db']:9.2f} {r['compiled_int8_arena']:10,d} "
              f"{r['compiled_auto_arena']:10,d} {r['auto_int16_layers']:>6s}")
        if r.get("note"):
            print(f"{'':18s} tflite 16x8: {r['note']}")


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None:
        return "-"
    return f"{10 ** ((ours - peer) / 10):.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--observers", action="store_true", help="also compare the observers")
    ap.add_argument("--prune", action="store_true",
                    help="also prune the digits model (channels) and distill, with accuracy")
    ap.add_argument("--timing", action="store_true",
                    help="also time calibration of 1,000 ResNet-8 samples")
    ap.add_argument("--int16", action="store_true",
                    help="only the 16x8 / mixed-precision table (needs --tf-python)")
    ap.add_argument("--tf-python", metavar="PY",
                    help="a Python with TensorFlow, for the TFLite converter's 16x8")
    ap.add_argument("--keras-dir", metavar="DIR",
                    help="MLPerf Tiny's trained .h5 models (pretrainedResnet.h5, vww_96.h5)")
    args = ap.parse_args()
    if args.int16:
        if not args.tf_python:
            ap.error("--int16 needs --tf-python PY (a Python with TensorFlow)")
        rows = int16_table(args.tf_python, args.keras_dir)
        print(json.dumps(rows, indent=1)) if args.json else print_int16(rows)
        return 0
    _ = reference  # the float and int8 numbers all come from the reference runtime
    ds = datasets()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        result["models"] = [measure(d, Path(tmp)) for d in ds]
    if args.observers:
        result["observers"] = observer_table(ds)
    if args.timing:
        result["calibration_1000_resnet8_s"] = calib_timing()
    if args.prune:
        result["prune"] = prune_table()
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{'model':8s} {'metric':10s} {'edgeforge':>10s} {'onnxrt':>10s} {'tflite*':>10s}"
          f"   err ratio ort/ef  tflite*/ef")
    for r in result["models"]:
        for metric in ("out_db", "top1_agree", "accuracy"):
            vals = [r.get(k, {}).get(metric) for k in ("edgeforge", "onnxruntime",
                                                       "tflite_fixture")]
            if all(v is None for v in vals):
                continue
            cells = " ".join(f"{v:10.2f}" if v is not None else f"{'-':>10s}" for v in vals)
            ratios = ("" if metric != "out_db" else
                      f"   {_ratio(vals[0], vals[1]):>16s}  {_ratio(vals[0], vals[2]):>10s}")
            print(f"{r['model']:8s} {metric:10s} {cells}{ratios}")
        if "float_accuracy" in r:
            print(f"{r['model']:8s} {'float acc':10s} {r['float_accuracy']:10.4f}")
    print("tflite* = the MLPerf int8 fixture (TFLite converter, MLCommons' own calibration "
          "data); " + result["models"][0]["tflite_converter"]["note"])
    print("onnxrt = onnxruntime quantize_static QDQ per-channel MinMax, run by onnxruntime")
    for r in result.get("observers", []):
        print(f"observer {r['model']:8s} {r['observer']:10s} out {r['out_db']:6.2f} dB")
    for r in result.get("prune", []):
        print(f"prune digits {r['model']:14s} MACs {r['macs']:8,d}  params "
              f"{r['weight_params']:6,d}  accuracy {r['accuracy']:.4f}  "
              f"out SQNR {r['out_db']:6.2f} dB")
    if "calibration_1000_resnet8_s" in result:
        print("calibrating 1,000 ResNet-8 samples: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in result["calibration_1000_resnet8_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
