"""The Python API: one function per `edgeforge` command, each returning what `--json` prints.

The CLI (edgeforge.cli) calls exactly these functions and only adds printing, so a script
and a shell session get the same data and the same errors (edgeforge.errors.EdgeforgeError
and its subclasses). Arrays stay numpy arrays here; the CLI turns them into lists.
Imports are lazy so `import edgeforge` stays cheap and a missing optional dependency only
affects the function that needs it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeforge.errors import EdgeforgeError

if TYPE_CHECKING:
    from edgeforge.ir import Graph

# html_report, not report: edgeforge.report is the inspect module (a package attribute
# named after a submodule is replaced when that submodule is imported)
__all__ = ["boards", "build", "compile", "deploy", "flash", "html_report", "inspect", "load",
           "profile", "run", "validate"]


def load(path: str | Path, **kw: Any) -> Graph:
    """Read a model file (.tflite or .onnx) into the IR (raises ModelError/UnsupportedOpError)."""
    from edgeforge.frontends import load as _load
    return _load(path, **kw)


def inspect(path: str | Path) -> dict[str, Any]:
    """`edgeforge inspect MODEL --json`: ops, tensors, params, MACs, weight/activation bytes."""
    from edgeforge.report import inspect as _inspect
    return _inspect(path)


def compile(model: str | Path, out: str | Path, *, calib: Any = None, board: str | None = None,
            numerics: str = "tflm", name: str = "model", observer: str | None = None,
            per_channel: bool = True, prune: float | None = None,
            prune_channels: float | None = None, distill: bool | None = None,
            val_data: Any = None, max_sqnr_drop: float | None = None,
            min_accuracy: float | None = None, target_macs: int | None = None,
            target_flash: int | None = None, verbose: int = 0, activations: str = "int8",
            ram_budget: int | None = None, cluster: int | None = None,
            prune_blocks: bool = False) -> dict[str, Any]:
    """`edgeforge compile MODEL -o OUT --json`: write the compiled DIR, return its summary.

    The full per-op report is OUT/report.json; the manifest is OUT/manifest.json."""
    from edgeforge.compiler import compile_model
    if board:                          # an unknown board fails here, not at `build`
        from edgeforge.targets.board import load_board
        load_board(board)
    opts: dict[str, Any] = {"observer": observer, "prune": prune,
                            "prune_channels": prune_channels, "distill": distill,
                            "val_data": val_data, "max_sqnr_drop": max_sqnr_drop,
                            "min_accuracy": min_accuracy, "target_macs": target_macs,
                            "target_flash": target_flash, "prune_blocks": prune_blocks}
    if not per_channel:
        opts["per_channel"] = False
    res = compile_model(model, out, calib=calib, board=board, numerics=numerics, name=name,
                        verbose=verbose, activations=activations, ram_budget=ram_budget,
                        cluster=cluster, **opts)
    return res.summary()


def _top(y: np.ndarray) -> int | None:
    """argmax of a classifier-shaped output ([K] or [1, K], K > 1), else None."""
    flat = y.reshape(-1) if y.ndim == 1 or (y.ndim == 2 and y.shape[0] == 1) else None
    return int(np.argmax(flat)) if flat is not None and flat.size > 1 else None


def _summary(g: Graph, xs: list[np.ndarray], y: np.ndarray) -> dict[str, Any]:
    """What fits the first output: an autoencoder's reconstruction error against its input
    (output shaped like the input), a classifier's top class and score (a softmax, or a
    [1, K] output), else the values' min / mean / max. Int8 is dequantized first."""
    from edgeforge.qmath import dequantize

    def real(a: np.ndarray, name: str) -> np.ndarray:
        q = g.tensors[name].quant
        if q is None or a.dtype.kind == "f":
            return np.asarray(a, np.float64)
        return dequantize(a, float(q.scale[0]), int(q.zero_point[0])).astype(np.float64)

    yf = real(y, g.outputs[0])
    last = g.producers().get(g.outputs[0])
    if len(xs) == 1 and xs[0].size == y.size and y.size > 1 and \
            (last is None or last.op.value != "SOFTMAX"):
        err = yf.ravel() - real(xs[0], g.inputs[0]).ravel()
        return {"kind": "reconstruction", "mse": float(np.mean(err ** 2)),
                "max_abs_error": float(np.max(np.abs(err)))}
    top = _top(y)
    if top is not None and (last is not None and last.op.value == "SOFTMAX" or y.size <= 1000):
        return {"kind": "classifier", "top": top, "score": float(yf.ravel()[top])}
    return {"kind": "values", "min": float(yf.min()), "mean": float(yf.mean()),
            "max": float(yf.max())}


def run(model: str | Path, x: np.ndarray | list[np.ndarray], *, backend: str = "reference",
        numerics: str | None = None) -> dict[str, Any]:
    """`edgeforge run MODEL -i IN --json`: {"outputs": [arrays], names, shapes, dtypes, top, ...}.

    x is one array (single-input model) or one per input, batch dimension included.
    numerics None: a compiled DIR's own profile (its manifest), else tflm."""
    from edgeforge.frontends import load as _load
    from edgeforge.runner import model_file, resolve_numerics
    from edgeforge.runner import run as _run
    numerics = str(resolve_numerics(model, numerics))
    outs = _run(model, x, backend=backend, numerics=numerics)
    g = _load(model_file(Path(model)))
    from edgeforge.runner import check_graph_inputs
    xs = check_graph_inputs(g, x if isinstance(x, list) else [x], "input")
    summary = _summary(g, xs, outs[0]) if outs else {}
    return {"outputs": outs, "names": list(g.outputs), "shapes": [list(o.shape) for o in outs],
            "dtypes": [o.dtype.name for o in outs], "top": summary.get("top"),
            "summary": summary, "backend": backend, "numerics": str(numerics)}


def build(directory: str | Path, board: str, *, kernels: str | None = None) -> dict[str, Any]:
    """`edgeforge build DIR --board B --json`: firmware image, size table and warnings."""
    from edgeforge.manifest import Manifest
    from edgeforge.targets.build import build as _build
    Manifest.load(directory).check_model(directory)   # firmware must carry the model it claims
    return _build(directory, board, kernels=kernels)


def validate(model: str | Path, data: str | Path | dict[str, np.ndarray], *,
             target: str | None = None, calib: Any = None, numerics: str | None = None,
             **target_options: Any) -> dict[str, Any]:
    """`edgeforge validate MODEL_OR_DIR --data D.npz [--target URI] --json`: float vs int8 on
    the host (and int8 on the target): SQNR, RMSE, MAE, cosine, top-1 agreement, accuracy
    and confusion matrices vs the labels y, and the samples that disagree."""
    from edgeforge.validation import validate as _validate
    return _validate(model, data, target=target, calib=calib, numerics=numerics,
                     **target_options)


def boards() -> list[dict[str, Any]]:
    """`edgeforge boards --json`: every board profile (targets/boards/*.toml) with what a
    user picks by: CPU, DSP kernels, clock, flash / RAM, how it is flashed, and whether QEMU
    emulates it (then `--target qemu://NAME` needs no hardware)."""
    import shutil
    import tomllib

    from edgeforge.targets.board import board_names, load_board
    out = []
    for name in board_names():
        b = load_board(name)
        raw = tomllib.loads(b.path.read_text())
        out.append({"name": b.name, "description": b.description, "cpu": b.cpu,
                    "arch": b.arch, "kernels": b.kernels if b.dsp else "ref",
                    "clock_mhz": b.clock_hz / 1e6, "flash_bytes": int(b.flash["size"]),
                    "ram_bytes": int(b.ram["size"]), "flasher": b.flasher.get("tool", ""),
                    "qemu": "emulator" in raw, "toolchain": b.gcc,
                    "toolchain_installed": shutil.which(b.gcc) is not None})
    return out


def flash(directory: str | Path, board: str, port: str | None = None) -> dict[str, Any]:
    """`edgeforge flash DIR --board B`: {board, flashed, command | note}."""
    from edgeforge.targets.flash import flash as _flash
    return _flash(directory, board, port)


def profile(directory: str | Path, target: str = "qemu://mps2-an386", *, runs: int = 10,
            warmup: int = 1, inputs: str | Path | np.ndarray | None = None,
            trace: bool = False, verbose: int = 0, clock_mhz: float | None = None,
            cycles: bool = False, **target_options: Any) -> dict[str, Any]:
    """`edgeforge profile DIR --target URI --json`: outputs checked byte for byte against the
    host reference on every sample, then latency (and counts) over `runs` after `warmup`;
    cycles=True (qemu://): also the Cortex-M4 cycle estimate from QEMU's execution log.

    target_options: identity, known_hosts, accept_new_host_key (ssh), native, threads,
    kernels (qemu: "ref" | "dsp")."""
    from edgeforge.targets.profile import profile as _profile
    r = _profile(directory, target, runs=runs, warmup=warmup, inputs=inputs, trace=trace,
                 verbose=verbose, clock_mhz=clock_mhz, cycles=cycles, **target_options)
    _save_last_profile(Path(directory), r)
    return r


def _save_last_profile(directory: Path, r: dict[str, Any]) -> None:
    """DIR/profile.json: the last profile, which `edgeforge report` draws. A DIR we cannot
    write to (read-only media) costs the picture, not the profile."""
    import json
    import logging
    import os

    from edgeforge.outdir import LAST_PROFILE
    path = directory / LAST_PROFILE
    tmp = path.with_name(f".{LAST_PROFILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(r, indent=1, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        logging.getLogger("edgeforge").warning("%s: not saved (%s)", path, e.strerror or e)


def html_report(directory: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """`edgeforge report DIR -o report.html`: one self-contained HTML page (inline SVG) with
    the arena timeline, per-op bars from the last profile, per-layer SQNR bars and the op
    list; returns {path, bytes, sections}."""
    import json
    import os

    from edgeforge.codegen.visual import report_html
    from edgeforge.manifest import Manifest
    from edgeforge.outdir import LAST_PROFILE, REPORT_HTML

    directory = Path(directory)
    Manifest.load(directory)                   # one clear error for a folder that is no DIR
    try:
        man = json.loads((directory / "manifest.json").read_text())
        rep = json.loads((directory / "report.json").read_text())
    except (OSError, ValueError) as e:
        raise EdgeforgeError(f"{directory}: cannot read its manifest.json / report.json "
                             f"({e}); compile it again") from None
    prof = None
    if (directory / LAST_PROFILE).is_file():
        try:
            prof = json.loads((directory / LAST_PROFILE).read_text())
        except ValueError:
            prof = None                          # a torn file: draw without it
        if prof and prof.get("model_sha256") != man.get("model_sha256"):
            prof = None                          # profiled an earlier compile of DIR
    html = report_html(man, rep, prof)
    path = Path(out) if out is not None else directory / REPORT_HTML
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EdgeforgeError(f"{path}: cannot write ({e.strerror or e})") from None
    sections = ["arena", *(["per_op"] if prof else []), *(["sqnr"] if rep.get("sqnr") else []),
                "ops"]
    return {"path": str(path), "bytes": len(html.encode()), "sections": sections,
            "profile": prof.get("target") if prof else None}


def deploy(directory: str | Path, target: str, *, identity: str | None = None,
           known_hosts: str | None = None, accept_new_host_key: bool = False) -> dict[str, Any]:
    """`edgeforge deploy DIR --target ssh://user@host --json`: upload, skipping unchanged files;
    {name, model_sha256, target, dir, uploaded, removed, unchanged, device}."""
    from edgeforge.manifest import Manifest
    from edgeforge.targets import open_target
    from edgeforge.targets.agent import AgentTarget
    from edgeforge.targets.ssh import redact

    directory = Path(directory)
    manifest = Manifest.load(directory)
    t = open_target(target, identity=identity, known_hosts=known_hosts,
                    accept_new_host_key=accept_new_host_key)
    if not isinstance(t, AgentTarget):
        raise EdgeforgeError(f"deploy is for Linux boards (ssh://, local); for "
                             f"{redact(target)} use `edgeforge flash`")
    with t:
        res = t.deploy(directory, manifest)
    return {"name": manifest.name, "model_sha256": manifest.model_sha256, **res}
