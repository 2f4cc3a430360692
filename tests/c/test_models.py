"""The MLPerf Tiny int8 fixtures through `edgeforge compile`: the generated C gives the SAME
bytes as runtime.reference and as the runtime each numerics profile mirrors (TFLM for tflm,
LiteRT BUILTIN_REF for litert) on 100 random inputs; it compiles warning-free on gcc and
arm-none-eabi-gcc; the compiled DIR is complete and its manifest hash is model.tflite's."""
from __future__ import annotations

import json
import subprocess
import zlib

import numpy as np
import pytest

from edgeforge.codegen.host import CModel
from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.manifest import Manifest, sha256_file
from edgeforge.runtime import peers, reference
from tests.conftest import fixture, require

MODELS = ["kws_ds_cnn_int8", "ic_resnet8_int8"]
N = 100
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
ARM = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


@pytest.fixture(scope="module", params=[(m, n) for m in MODELS for n in ("tflm", "litert")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def compiled(request, tmp_path_factory):
    require("gcc")
    model, numerics = request.param
    out = tmp_path_factory.mktemp("compiled") / f"{model}_{numerics}"
    res = compile_model(fixture(f"{model}.tflite"), out, numerics=numerics)
    return model, numerics, res


def test_c_equals_reference_and_runtime(compiled):
    model, numerics, res = compiled
    m = CModel(res.dir)
    rng = np.random.default_rng(zlib.crc32(model.encode()))   # fixed per model, every run
    xs = rng.integers(-128, 128, size=(N, *m.input_shapes[0]), dtype=np.int64).astype(np.int8)
    got = m.run_batch([xs])[0]
    if numerics == "tflm":
        peer = peers.TflmRunner(res.dir / "model.tflite")
    else:
        peer = peers.LitertRunner(res.dir / "model.tflite", reference_kernels=True)
    want = np.stack([peer.run([x])[0] for x in xs])
    assert got.shape == want.shape
    bad = int((got != want).any(axis=tuple(range(1, got.ndim))).sum())
    assert bad == 0, f"{model} [{numerics}]: {bad}/{N} samples differ from the runtime"
    assert len({y.tobytes() for y in got}) > 1          # not a constant output
    if model == "kws_ds_cnn_int8":                       # the one real sample input
        x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).astype(np.int8)
        [y] = m.run([x])
        assert np.array_equal(y, peer.run([x])[0])
    graph = load(res.dir / "model.tflite")
    ref = np.stack([np.asarray(reference.run(graph, [x], numerics=numerics)[graph.outputs[0]])
                    for x in xs]).reshape(got.shape)
    assert np.array_equal(ref, got), f"{model} [{numerics}]: C != runtime.reference"


def test_compiled_dir_is_complete(compiled):
    _, numerics, res = compiled
    d = res.dir
    for f in ("model.tflite", "manifest.json", "report.json", "c/model.h", "c/model.c",
              "c/weights.c", "c/ef_kernels.h", "c/ef_types.h", "c/ef_requantize.h"):
        assert (d / f).is_file(), f
    man = Manifest.load(d)
    assert man.model_sha256 == sha256_file(d / "model.tflite")
    assert man.numerics == numerics
    assert man.arena_bytes > 0 and man.weight_bytes > 0 and man.ops
    assert man.inputs[0].offset is not None
    header = (d / "c" / "model.h").read_text()
    hash8 = ", ".join(f"0x{b:02x}" for b in man.hash8)
    assert f"#define EF_MODEL_HASH {{{hash8}}}" in header
    assert f"#define EF_MODEL_ARENA_BYTES {man.arena_bytes}" in header
    assert f"#define EF_MODEL_NUM_OPS {len(man.ops)}" in header
    rep = json.loads((d / "report.json").read_text())
    assert len(rep["ops"]) == len(man.ops)
    assert rep["arena"]["bytes"] == man.arena_bytes
    # only the kernels the model calls are shipped
    calls = (d / "c" / "model.c").read_text()
    for k in (d / "c").glob("*_s8.c"):
        assert "ef_" + k.stem in calls or k.name == "lut_s8.c" or k.name == "add_s8.c"


@pytest.mark.parametrize("cc,extra", [("gcc", []), ("arm-none-eabi-gcc", ARM)],
                         ids=["gcc", "arm-none-eabi-gcc"])
def test_generated_code_compiles_warning_free(compiled, cc, extra, tmp_path):
    require(cc)
    _, _, res = compiled
    c = res.dir / "c"
    for src in sorted(c.glob("*.c")):
        r = subprocess.run([cc, *extra, *WARN, "-I", str(c), "-c", str(src),
                            "-o", str(tmp_path / (src.stem + ".o"))],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, f"{cc} {src.name}:\n{r.stderr}"
        assert r.stderr == "", r.stderr


def test_user_arena_and_profile_guard(compiled, tmp_path):
    """EF_MODEL_USER_ARENA builds (set_arena API); kernels built for the other profile's
    rounding are refused at compile time."""
    require("gcc")
    _, numerics, res = compiled
    c = res.dir / "c"
    main = tmp_path / "main.c"
    # EF_OP_BEGIN/EF_OP_END hooks (firmware's per-op cycle counters) see every op in order
    (tmp_path / "hooks.h").write_text("extern int ef_begun, ef_ended, ef_order_ok;\n")
    main.write_text('#include "model.h"\nstatic uint8_t a[EF_MODEL_ARENA_BYTES];\n'
                    "int ef_begun, ef_ended, ef_order_ok = 1;\n"
                    "int main(void) { ef_model_set_arena(a);\n"
                    "  if (EF_MODEL_INVOKE() != 0) return 1;\n"
                    "  return (ef_begun == EF_MODEL_NUM_OPS && ef_ended == EF_MODEL_NUM_OPS\n"
                    "          && ef_order_ok) ? 0 : 2; }\n")
    hooks = ["-include", str(tmp_path / "hooks.h"),
             "-DEF_OP_BEGIN(i)=(ef_order_ok &= ((i) == ef_begun), ef_begun++)",
             "-DEF_OP_END(i)=(ef_ended++)"]
    srcs = [str(s) for s in c.glob("*.c")]
    r = subprocess.run(["gcc", *WARN, "-DEF_MODEL_USER_ARENA", *hooks, "-I", str(c), *srcs,
                        str(main), "-o", str(tmp_path / "a.out")], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(tmp_path / "a.out")], timeout=60, check=False).returncode == 0
    flip = "1" if numerics == "tflm" else "0"
    r = subprocess.run(["gcc", *WARN, f"-DEF_FC_SINGLE_ROUNDING={flip}", "-I", str(c), "-c",
                        str(c / "model.c"), "-o", str(tmp_path / "m.o")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode != 0 and "EF_FC_SINGLE_ROUNDING" in r.stderr


def test_host_per_op_timing(compiled):
    """CModel(per_op=True) builds the EF_OP_BEGIN/END hooks in: one time per op, and the
    hooked build still computes the same bytes."""
    _, _, res = compiled
    m = CModel(res.dir, per_op=True)
    x = np.random.default_rng(1).integers(-128, 128, size=(3, *m.input_shapes[0]))
    x = x.astype(np.int8)
    assert np.array_equal(m.run_batch([x])[0], CModel(res.dir).run_batch([x])[0])
    ns = m.time_ops(3)
    assert ns.shape == (len(res.manifest.ops),) and (ns >= 0).all() and ns.sum() > 0
