"""TFLite Micro as a peer, rebuilt from source checkouts and measured like our firmware.

    python benchmarks/peers/tflm.py MODEL.tflite --tflm DIR --cmsis-nn DIR --cmsis DIR \
        --flatbuffers DIR --gemmlowp DIR [--kernels ref|cmsis_nn] [--out BUILD] [--json]

Nothing is downloaded: the five checkouts are the caller's (TFLM pins its dependencies in
tensorflow/lite/micro/tools/make/*download*; check out those commits). The build compiles
TFLM's own source lists (sources.inc: tensorflow/lite/micro/*.cc, arena_allocator,
memory_planner, tflite_bridge, the tensorflow/ sources outside micro/ and experimental/;
every kernels/*.cc, replaced by kernels/cmsis_nn/<same name> for --kernels cmsis_nn, plus
CMSIS-NN's Source/) with the board profile's compiler and flags, -O2 for kernels and -Os for
the rest, exactly as targets/build.py builds ours (no LTO: TFLM is C++ and is not built with
it upstream either). TFLM's flatbuffers.patch is applied to a copy of the flatbuffers headers.

The image is our firmware template (protocol loop, SysTick counter, stack paint) with TFLM
behind its model.h glue (harness/tflm_glue.cc): TFLM's per-op profiler events drive the same
EF_OP_BEGIN/END hooks. So instructions per inference, per-op counts, code size, arena
(MicroInterpreter::arena_used_bytes), .data/.bss and peak stack all come from the same
counter, serial harness and linker script as `edgeforge profile` on qemu://mps2-an386.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.targets import build as fw
from edgeforge.targets import commands
from edgeforge.targets.protocol import Device

HERE = Path(__file__).resolve().parent
BOARD = "mps2-an386"
ARENA_MAX = 512 * 1024          # the static buffer TFLM allocates from; the used part is reported
# TFLM's Makefile flags that change code generation (COMMON_FLAGS / CXXFLAGS, release build)
TFLM_DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DNDEBUG",
                "-DTF_LITE_STRIP_ERROR_STRINGS", "-DTF_LITE_MCU_DEBUG_LOG",
                "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0", "-DCMSIS_NN"]
CXX_ONLY = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
            "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-fno-use-cxa-atexit"]
# builtin op name -> MicroMutableOpResolver method, where CamelCase of the name is not it
METHOD = {"BATCH_MATMUL": "AddBatchMatMul", "PADV2": "AddPadV2",
          "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM"}


class PeerError(EdgeforgeError):
    """A peer build or run that cannot go on (missing checkout, compile error, bad model)."""


@dataclass(frozen=True)
class Sources:
    tflm: Path
    cmsis_nn: Path
    cmsis: Path
    flatbuffers: Path
    gemmlowp: Path

    def check(self) -> None:
        must = {"tflm": "tensorflow/lite/micro/micro_interpreter.h",
                "cmsis_nn": "Include/arm_nnfunctions.h", "cmsis": "CMSIS/Core/Include",
                "flatbuffers": "include/flatbuffers/flatbuffers.h",
                "gemmlowp": "fixedpoint/fixedpoint.h"}
        for name, rel in must.items():
            if not (getattr(self, name) / rel).exists():
                raise PeerError(f"--{name.replace('_', '-')} {getattr(self, name)}: no {rel} "
                                "(not a checkout of it)")

    def commits(self) -> dict[str, str]:
        """Each checkout's git commit (or "unknown": an exported tree has no .git)."""
        out = {}
        for name in ("tflm", "cmsis_nn", "cmsis", "flatbuffers", "gemmlowp"):
            r = subprocess.run(["git", "-C", str(getattr(self, name)), "rev-parse", "HEAD"],
                               capture_output=True, text=True, check=False)
            marker = getattr(self, name) / "COMMIT"
            out[name] = (r.stdout.strip() if r.returncode == 0 and r.stdout.strip()
                         else marker.read_text().strip() if marker.is_file() else "unknown")
        return out


def op_names(model: Path) -> list[str]:
    """Builtin op names of the model's subgraph 0, in execution order."""
    from edgeforge.frontends.tflite import builtin_names, schema
    if schema is None:
        raise PeerError("ai-edge-litert (the TFLite schema) is not installed")
    m = schema.ModelT.InitFromPackedBuf(bytearray(model.read_bytes()), 0)
    names = builtin_names()
    codes = [max(int(c.builtinCode), int(c.deprecatedBuiltinCode)) for c in m.operatorCodes]
    return [names[codes[o.opcodeIndex]] for o in m.subgraphs[0].operators]


def resolver_calls(ops: list[str], tflm: Path) -> list[str]:
    header = (tflm / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    calls, missing = [], []
    for name in dict.fromkeys(ops):
        method = METHOD.get(name, "Add" + "".join(w if w[:1].isdigit() else w.capitalize()
                                                  for w in name.split("_")))   # CONV_2D: Conv2D
        (calls if f"TfLiteStatus {method}(" in header else missing).append(method)
    if missing:
        raise PeerError(f"TFLM has no resolver method for {', '.join(missing)}")
    return calls


def _sources(src: Sources, kernels: str) -> tuple[list[Path], list[Path], list[Path]]:
    """(core .cc/.c at -Os, kernel .cc at -O2, CMSIS-NN .c at -O2), TFLM's sources.inc lists."""
    t = src.tflm
    tf = t / "tensorflow"
    core = []
    for sub in ("lite/micro", "lite/micro/arena_allocator", "lite/micro/memory_planner",
                "lite/micro/tflite_bridge"):
        core += sorted((tf / sub).glob("*.cc"))
    for root, dirs, files in os.walk(tf):
        r = Path(root)
        dirs[:] = [d for d in dirs if r / d not in (tf / "lite/micro", tf / "lite/experimental")]
        core += sorted(r / f for f in files if f.endswith((".cc", ".c")))
    skip = ("_test.cc", "debug_log.cc", "array.cc")      # DebugLog: harness/tflm_glue.cc
    core = [p for p in core if not p.name.endswith(skip)
            and "benchmark" not in p.name and p.name not in ("fake_micro_context.cc",
                                                            "mock_micro_graph.cc")]
    kdir = tf / "lite/micro/kernels"
    kern = [p for p in sorted(kdir.glob("*.cc")) if not p.name.endswith("_test.cc")]
    nn: list[Path] = []
    if kernels == "cmsis_nn":
        opt = {p.name: p for p in (kdir / "cmsis_nn").glob("*.cc")}
        kern = [opt.get(p.name, p) for p in kern]
        # ext_libs/cmsis_nn.inc: the float kernels are left out (ARM_NN_ENABLE_F16/F32=0)
        nn = [p for p in sorted((src.cmsis_nn / "Source").rglob("*.c"))
              if not p.name.endswith(("_f16.c", "_f32.c")) and p.name != "arm_nntables_flt.c"]
    return core, kern, nn


def _compile(jobs: list[tuple[Path, Path, list[str]]], gcc: str, gxx: str) -> None:
    def one(job: tuple[Path, Path, list[str]]) -> str | None:
        s, o, flags = job
        if o.exists() and o.stat().st_mtime >= s.stat().st_mtime:
            return None
        o.parent.mkdir(parents=True, exist_ok=True)
        cc = gxx if s.suffix == ".cc" else gcc
        r = subprocess.run([cc, *flags, "-c", str(s), "-o", str(o) + ".tmp"],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            return f"{s}: {r.stderr.strip()[-1500:]}"
        os.replace(str(o) + ".tmp", o)
        return None

    with ThreadPoolExecutor(max_workers=2) as ex:       # 2 cores are shared: do not take more
        errors = [e for e in ex.map(one, jobs) if e]
    if errors:
        raise PeerError(f"{len(errors)} TFLM sources did not compile; first:\n{errors[0]}")


def _headers(src: Sources, out: Path) -> Path:
    """A copy of the flatbuffers headers with TFLM's patch applied (the checkout stays as is)."""
    inc = out / "flatbuffers-include"
    stamp = inc / ".patched"
    if not stamp.exists():
        shutil.rmtree(inc, ignore_errors=True)
        shutil.copytree(src.flatbuffers / "include", inc / "include")
        patch = src.tflm / "tensorflow/lite/micro/tools/make/flatbuffers.patch"
        undo = ["patch", "-p1", "-R", "--dry-run", "-s", "-f", "-i", str(patch)]
        if patch.is_file() and subprocess.run(undo, cwd=inc, capture_output=True,
                                              check=False).returncode != 0:   # not yet applied
            r = subprocess.run(["patch", "-p1", "-f", "-i", str(patch)], cwd=inc,
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise PeerError(f"TFLM's flatbuffers.patch does not apply to {src.flatbuffers}"
                                f" (check out the release TFLM pins): {r.stdout[-500:]}")
        stamp.write_text("ok\n")
    return inc / "include"


def _model_files(model: Path, manifest_hash8: bytes, io: dict[str, list[int]], ops: list[str],
                 calls: list[str], d: Path) -> None:
    data = model.read_bytes()
    rows = ",\n".join("    " + ", ".join(str(b) for b in data[i:i + 24])
                      for i in range(0, len(data), 24))
    (d / "tflm_weights.c").write_text(     # named *weights.c: the .weights section (link.ld)
        "/* the .tflite flatbuffer, 16-byte aligned as TFLM requires */\n"
        f"const unsigned char ef_peer_model[{len(data)}] __attribute__((aligned(16))) = {{\n"
        f"{rows}\n}};\n")
    adds = " ".join(f"(r)->{c}();" for c in calls)
    (d / "peer_ops.h").write_text(
        f"#define EF_PEER_NUM_OP_KINDS {max(len(calls), 1)}\n"
        f"#define EF_PEER_ARENA_MAX {ARENA_MAX}\n"
        f"#define EF_PEER_ADD_OPS(r) do {{ {adds} }} while (0)\n")
    ins, outs = io["inputs"], io["outputs"]
    tab = lambda v: "{" + ", ".join(f"{x}u" for x in v) + "}"
    (d / "model.h").write_text(
        "/* model.h glue for the firmware: TFLM (benchmarks/peers/harness/tflm_glue.cc) */\n"
        "#ifndef EF_PEER_MODEL_H\n#define EF_PEER_MODEL_H\n#include <stdint.h>\n"
        "int ef_peer_invoke(void);\nint8_t *ef_peer_input(int i);\n"
        "int8_t *ef_peer_output(int i);\nuint32_t ef_peer_arena_used(void);\n"
        f"#define EF_MODEL_HASH {{{', '.join(f'0x{b:02x}' for b in manifest_hash8)}}}\n"
        "#define EF_MODEL_ARENA_BYTES ef_peer_arena_used()\n"
        f"#define EF_MODEL_NUM_OPS {len(ops)}\n"
        f"#define EF_MODEL_NUM_INPUTS {len(ins)}\n#define EF_MODEL_NUM_OUTPUTS {len(outs)}\n"
        f"static const uint32_t ef_peer_in_bytes[] = {tab(ins)};\n"
        f"static const uint32_t ef_peer_out_bytes[] = {tab(outs)};\n"
        "#define EF_MODEL_INPUT_BYTES(i) ef_peer_in_bytes[i]\n"
        "#define EF_MODEL_OUTPUT_BYTES(i) ef_peer_out_bytes[i]\n"
        "#define EF_MODEL_INPUT(i) ef_peer_input(i)\n"
        "#define EF_MODEL_OUTPUT(i) ef_peer_output(i)\n"
        "#define EF_MODEL_INVOKE() ef_peer_invoke()\n#endif\n")


def build(model: Path, directory: Path, src: Sources, kernels: str, out: Path) -> dict[str, Any]:
    """TFLM firmware for `model` (whose `edgeforge compile` DIR gives the I/O and hash);
    returns {elf, sizes, commits, ops}. Objects are cached in `out` per kernel set."""
    from edgeforge.manifest import Manifest
    if kernels not in ("ref", "cmsis_nn"):
        raise PeerError(f"--kernels {kernels!r}: ref or cmsis_nn")
    src.check()
    board = fw.load_board(BOARD)
    m = Manifest.load(directory)
    ops = op_names(model)
    calls = resolver_calls(ops, src.tflm)
    out = Path(out)
    inc_fb = _headers(src, out)
    incs = [src.tflm, inc_fb, HERE / "harness", src.gemmlowp, src.cmsis_nn, src.cmsis_nn / "Include",
            src.cmsis / "CMSIS" / "Core" / "Include"]
    base = [*board.cflags, "-ffunction-sections", "-fdata-sections", "-g0", *TFLM_DEFINES,
            *[f"-I{p}" for p in incs]]
    core, kern, nn = _sources(src, kernels)
    cxx = CXX_ONLY
    jobs = []
    for s in core:
        jobs.append((s, out / "obj-core" / (s.relative_to(src.tflm).with_suffix(".o")),
                     [*base, "-Os", *(cxx if s.suffix == ".cc" else ["-std=c17"])]))
    for s in kern:
        jobs.append((s, out / f"obj-{kernels}" / (s.relative_to(src.tflm).with_suffix(".o")),
                     [*base, "-O2", *cxx]))
    for s in nn:
        jobs.append((s, out / "obj-cmsis-nn" / (s.relative_to(src.cmsis_nn).with_suffix(".o")),
                     [*base, "-O2", "-std=c17"]))
    gcc = board.gcc
    gxx = gcc[:-3] + "g++" if gcc.endswith("gcc") else gcc
    _compile(jobs, gcc, gxx)

    d = out / f"fw-{model.stem}-{kernels}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    io = {"inputs": [int(np.prod(t.shape)) for t in m.inputs],
          "outputs": [int(np.prod(t.shape)) for t in m.outputs]}
    _model_files(model, m.hash8, io, ops, calls, d)
    tdir, tsrcs = fw._template_sources(board)
    (d / "ef_fw_info.h").write_text(fw._info_header(m, board))
    fw_base = [*fw._cflags(board, "-O2"), f"-I{tdir}", f"-I{d}"]
    glue = [(s, d / f"fw_{s.stem}.o", [*fw_base, "-Os", "-fno-tree-loop-distribute-patterns"])
            for s in tsrcs]
    glue.append((d / "tflm_weights.c", d / "tflm_weights.o", [*fw_base, "-Os"]))
    glue.append((HERE / "harness" / "tflm_glue.cc", d / "tflm_glue.o",
                 [*base, "-Os", *cxx, f"-I{d}"]))
    _compile(glue, gcc, gxx)
    (d / "link.ld").write_text(fw._linker_script(tdir, board, board.flash["size"],
                                                 board.ram["size"]))
    objs = [str(j[1]) for j in jobs] + [str(j[1]) for j in glue]
    elf = d / "firmware.elf"
    r = subprocess.run([gxx, *board.cflags, "-O2", "-nostartfiles", "--specs=nano.specs",
                        "--specs=nosys.specs", "-Wl,--gc-sections", f"-Wl,-Map={d / 'map'}",
                        f"-T{d / 'link.ld'}", *objs, "-lm", "-o", str(elf)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise PeerError(f"linking the TFLM image failed:\n{r.stderr[-3000:]}")
    # the static TFLM arena buffer is .bss like our model.c arena: size_table takes it out
    sizes = fw.size_table(fw._section_sizes(board, elf), ARENA_MAX)
    return {"elf": str(elf), "kernels": kernels, "ops": ops, "sizes": sizes,
            "commits": src.commits()}


def measure(elf: Path, directory: Path, inputs: list[np.ndarray], runs: int = 3
            ) -> dict[str, Any]:
    """Run the TFLM image on QEMU through our protocol: outputs per input, instructions per
    inference (median of `runs`), per-op counts, arena used, peak stack."""
    from edgeforge.manifest import Manifest
    from edgeforge.targets.qemu import QemuTarget
    m = Manifest.load(directory)
    t = QemuTarget(BOARD, elf=Path(elf))
    try:
        transport, expect_boot = t._start(Path(directory))
        dev = Device(transport, timeout=30.0)
        if expect_boot:
            dev.wait_boot()
        info = commands.info(dev)
        outputs = []
        for x in inputs:
            commands.write_input(dev, 0, np.ascontiguousarray(x, np.int8).tobytes())
            commands.invoke(dev, 1, 0)
            outputs.append([np.frombuffer(commands.read_output(dev, k), np.int8).reshape(
                s.shape) for k, s in enumerate(m.outputs)])
        counts = commands.invoke(dev, runs, 1)
        per_op = commands.layer_profile(dev)
        stack = commands.stack_usage(dev)
        dev.close()
    finally:
        t.close()
    # TFLM's per-op profiler events are compiled out in its release build
    # (TF_LITE_STRIP_ERROR_STRINGS, micro_interpreter_graph.cc): then every count is 0
    return {"instructions": float(np.median(counts)), "counts": counts,
            "per_op": per_op if any(per_op) else None, "arena": info.arena_bytes,
            "stack_peak": stack[1] if stack else None, "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    for name in ("tflm", "cmsis-nn", "cmsis", "flatbuffers", "gemmlowp"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    ap.add_argument("--kernels", choices=["ref", "cmsis_nn"], default="cmsis_nn")
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "edgeforge" / "peers")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args(argv)
    src = Sources(a.tflm, a.cmsis_nn, a.cmsis, a.flatbuffers, a.gemmlowp)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "c"
            r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile", str(a.model),
                                "-o", str(d)], capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise PeerError(f"edgeforge compile {a.model}: {r.stderr.strip()[-500:]}")
            b = build(a.model, d, src, a.kernels, a.out)
            from edgeforge.manifest import Manifest
            shape = Manifest.load(d).inputs[0].shape
            x = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
            res = measure(Path(b["elf"]), d, [x], a.runs)
    except EdgeforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res.pop("outputs")
    print(json.dumps({**b, **res}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
