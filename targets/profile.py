"""`edgeforge profile DIR --target URI`: run a compiled DIR on any Target and measure it.

The driver is generic over targets.base.Target (QEMU, serial boards, SSH boards, local):
open (the target checks the model hash), send each input, compare every output byte for
byte with the host reference (`runtime.reference.run` on DIR/model.tflite with the
manifest's numerics), then time `runs` invocations after `warmup` and collect per-op counts.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.arrays import read_npy
from edgeforge.codegen.visual import op_label
from edgeforge.errors import EdgeforgeError
from edgeforge.manifest import Manifest
from edgeforge.runner import check_inputs
from edgeforge.targets import open_target
from edgeforge.targets.base import Measurement, stats

MAX_RUNS = 1_000_000    # the targets' reply timeouts grow with runs; beyond this they overflow
NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
      "float32": np.float32}


def load_samples(m: Manifest, inputs: str | Path | np.ndarray | None, seed: int = 0
                 ) -> np.ndarray:
    """[N, *input_shape] samples for the model's (single) input; random if none given."""
    if len(m.inputs) != 1:
        raise EdgeforgeError(f"profile drives single-input models; {m.name} has {len(m.inputs)}")
    spec = m.inputs[0]
    shape, dt = tuple(spec.shape), NP[spec.dtype]
    if inputs is None:
        info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else None
        rng = np.random.default_rng(seed)
        if info is None:
            return rng.standard_normal((1, *shape)).astype(dt)
        return rng.integers(info.min, info.max + 1, size=(1, *shape)).astype(dt)
    if isinstance(inputs, np.ndarray):
        x = inputs
    else:
        x = read_npy(inputs)
        if isinstance(x, dict):
            if len(x) != 1:
                raise EdgeforgeError(f"{inputs}: has arrays {list(x)}; --inputs wants one "
                                     "array of samples (a .npy)")
            [x] = x.values()
    perm = (m.extra.get("onnx_layout") or {}).get(spec.name)
    if perm and x.ndim in (len(shape), len(shape) + 1):    # the ONNX model's own layout
        lead = x.ndim - len(shape)          # 1: [N, *sample]; 0: N on the batch axis
        t = x.transpose(*range(lead), *(lead + p for p in perm))
        if t.shape[lead + 1:] == shape[1:] and x.shape[lead + 1:] != shape[1:]:
            x = np.ascontiguousarray(t)
    if tuple(x.shape) == shape:
        x = x[None]
    elif shape and shape[0] == 1 and tuple(x.shape[1:]) == shape[1:]:
        x = x[:, None]                 # N samples on the batch axis, as --calib takes them
    if tuple(x.shape[1:]) != shape:
        raise EdgeforgeError(f"{inputs}: shape {list(x.shape)}; expected [N, *{list(shape)}] "
                             "(samples stacked on a new leading axis)")
    if len(x) == 0:
        raise EdgeforgeError(f"{inputs}: no samples (shape {list(x.shape)}); nothing to verify")
    # the one input check run, serve and bridge use too: dtype, finiteness, quantization hint
    where = "inputs" if isinstance(inputs, np.ndarray) else str(inputs)
    return np.stack([check_inputs([spec], [s], f"{where} sample {n}")[0]
                     for n, s in enumerate(x)])


def reference_outputs(directory: Path, m: Manifest, x: np.ndarray,
                      numerics: str | None = None) -> list[np.ndarray]:
    """Host reference outputs for one sample, bit-exact to `numerics` (default: the manifest's)."""
    from edgeforge.frontends import load
    from edgeforge.runtime import reference

    cache = _GRAPHS.setdefault(str(directory), load(directory / "model.tflite"))
    out = reference.run(cache, [x], numerics=numerics or m.numerics)
    return [np.asarray(out[name]) for name in cache.outputs]


_GRAPHS: dict[str, Any] = {}


def _name_ops(directory: Path, per_op: list[dict[str, Any]]) -> None:
    """Add each op's node name and MACs from DIR/report.json when its op list lines up."""
    try:
        ops = json.loads((directory / "report.json").read_text())["ops"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for p in per_op:
        i = p.get("index")
        if isinstance(i, int) and i < len(ops) and ops[i].get("op") == p.get("op"):
            p.setdefault("name", op_label(ops[i]))     # the model file's name for it
            if ops[i].get("macs") is not None:
                p.setdefault("macs", ops[i]["macs"])
            if ops[i].get("runs_in") is not None:
                p.setdefault("runs_in", ops[i]["runs_in"])  # a fused step: its work is there


def _compare(got: list[np.ndarray], want: list[np.ndarray], tolerance: int = 0
             ) -> list[dict[str, Any]]:
    """Outputs that differ from the reference by more than `tolerance` LSB (0: byte-equal)."""
    bad = []
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w).reshape(np.asarray(g).shape)
        if g.dtype != w.dtype or g.tobytes() != w.tobytes():
            diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
            if g.dtype == w.dtype and int(diff.max()) <= tolerance:
                continue
            bad.append({"output": k, "bytes_differing": int((diff != 0).sum()),
                        "max_abs_diff": int(diff.max())})
    return bad


def _kernel_set(t: Any, device: dict[str, Any]) -> str:
    """Which kernels ran: an MCU image's set (ref | dsp, as built), the C package compiled on
    a Linux board, or the TFLite runtime a Linux board timed."""
    board = getattr(t, "board", None)
    if board is not None:
        return str(getattr(t, "kernels", None) or board.kernels if board.dsp else "ref")
    if getattr(t, "native", False):
        return "ref (C package, compiled on the device)"
    return str(device.get("runtime") or "tflite runtime")


def _at_clock(meas: Measurement, mhz: float) -> None:
    """--clock-mhz: turn a count-based measurement into time at this clock instead of the
    board profile's (QEMU's counts are instructions; the real part may run at 80 or 480 MHz)."""
    if not meas.count_unit:
        raise EdgeforgeError("--clock-mhz needs a target that counts cycles or instructions "
                             "(qemu://, serial://); this one measures time")
    hz = mhz * 1e6
    meas.latency_us = [c / hz * 1e6 for c in meas.counts]
    meas.extra["clock_hz"] = hz
    meas.extra["latency_basis"] = (f"{meas.count_unit} at {mhz:g} MHz (--clock-mhz)"
                                   + (", 1 instruction per cycle"
                                      if meas.count_unit == "instructions" else ""))


def profile(directory: str | Path, uri: str, *, runs: int = 10, warmup: int = 1,
            inputs: str | Path | np.ndarray | None = None, trace: bool = False,
            verbose: int = 0, keep_outputs: bool = False, clock_mhz: float | None = None,
            cycles: bool = False, **target_options: Any) -> dict[str, Any]:
    """Open `uri` on DIR, verify outputs on every sample, benchmark; return the JSON report.

    keep_outputs=True adds "outputs": the device's outputs per sample (arrays, not JSON).
    cycles=True (qemu:// only) adds "cycles": a Cortex-M4 cycle estimate of one inference
    from QEMU's execution log (targets/cycles.py), in total and per op."""
    directory = Path(directory)
    m = Manifest.load(directory)
    m.check_model(directory)      # else the device and the host reference run different models
    if not (1 <= runs <= MAX_RUNS and 0 <= warmup <= MAX_RUNS):
        raise EdgeforgeError(f"--runs must be in [1, {MAX_RUNS:,}] and --warmup in "
                             f"[0, {MAX_RUNS:,}]")
    samples = load_samples(m, inputs)
    mismatches: list[dict[str, Any]] = []
    outputs: list[list[np.ndarray]] = []
    if clock_mhz is not None and not 0 < clock_mhz <= 100_000:
        raise EdgeforgeError(f"--clock-mhz {clock_mhz:g}: give the part's clock in MHz (> 0)")
    if cycles and not uri.startswith("qemu://"):
        raise EdgeforgeError(f"--cycles estimates from QEMU's execution log: use a qemu:// "
                             f"target (a board at {uri} counts real cycles with its own counter)")
    stage = logging.getLogger("edgeforge.stage").info    # shown on a terminal (cli)
    stage("profile: opening %s (builds and boots firmware if needed)", uri)
    with open_target(uri, trace=trace, verbose=verbose, **target_options) as t:
        t0 = time.monotonic()
        device = t.open(directory, m)
        open_ms = (time.monotonic() - t0) * 1e3
        cold_us: float | None = None
        stage("profile: checking %d sample(s) against the host reference", len(samples))
        # a target that runs the .tflite in LiteRT computes with LiteRT's rounding, whatever
        # profile the C package was compiled for; it says so in `.numerics`
        numerics = getattr(t, "numerics", None) or m.numerics
        for n, x in enumerate(samples):
            got = t.infer([x])
            if n == 0:             # the first inference after open: nothing warm yet
                cold_us = getattr(t, "last_latency_us", None)
            if keep_outputs:
                outputs.append(got)
            # TensorRT rescales in float: held to 1 LSB of LiteRT's kernels, not to bytes
            tol = 1 if numerics == "tensorrt" else 0
            want = reference_outputs(directory, m, x, "litert" if tol else numerics)
            mismatches += [{"sample": n, **b} for b in _compare(got, want, tol)]
        stage("profile: timing %d run(s) after %d warm-up", runs, warmup)
        meas: Measurement = t.benchmark(runs, warmup)
        kernel_set = _kernel_set(t, device)
        machine, kernels = getattr(t, "machine", None), getattr(t, "kernels", None)
    estimate = None
    if cycles:             # a second QEMU run with the execution log on
        from edgeforge.targets.cycles import estimate as _estimate
        stage("profile: estimating Cortex-M4 cycles from QEMU's execution log")
        estimate = _estimate(directory, samples[0], board=machine or "mps2-an386",
                             kernels=kernels)
        for p, e in zip(meas.per_op, estimate["per_op"]):
            p["cycles_estimated"] = e["cycles"]
    if clock_mhz is not None:
        board_hz = meas.extra.get("clock_hz")
        _at_clock(meas, clock_mhz)
        hz = clock_mhz * 1e6
        unit = meas.count_unit
        if cold_us is not None and board_hz:      # the device's count, at the new clock
            cold_us = cold_us * board_hz / hz
        for p in meas.per_op:
            if unit and p.get(unit) is not None:
                p["latency_us"] = p[unit] / hz * 1e6
    _name_ops(directory, meas.per_op)
    report: dict[str, Any] = {
        "target": uri, "dir": str(directory), "model_sha256": m.model_sha256,
        "numerics": numerics, "samples": len(samples),
        "outputs_match_reference": not mismatches, "mismatches": mismatches[:20],
        "runs": runs, "warmup": warmup, "latency_us": stats(meas.latency_us),
        "per_op": meas.per_op, "device": device,
        "kernels": {"set": kernel_set, "symbols": list(m.extra.get("kernels", []))},
        # benchmark_model's split: opening (boot / load / connect, on the host's clock) and
        # the cold first inference (before any warm-up), beside the warm runs' statistics
        "init_ms": open_ms, "cold_first_inference_us": cold_us, **meas.extra,
    }
    if estimate is not None:
        report["cycles"] = {k: v for k, v in estimate.items() if k != "per_op"}
    if keep_outputs:
        report["outputs"] = outputs
    if meas.count_unit:
        report["count_unit"] = meas.count_unit
        report[meas.count_unit] = stats(meas.counts)
    return report
