"""The 16x8 C kernels (runtime/c/kernels/ref/nn_s16.c) against runtime.reference, bit-exact,
in both numerics profiles, on the TFLite converter's 16x8 models (tests/models/int16).

Each model is wrapped in QUANTIZE int8 -> int16 at the input and int16 -> int8 at the
output (the requantize ops of a mixed graph); the int16 result itself is read from the arena
(every tensor has its own slot in SeqPlan), so no int16 LSB hides behind the int8 output."""
from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen.c import KERNEL_FILES_S16, RUNTIME_C
from edgeforge.frontends import load
from edgeforge.ir import OPS, Graph, Node, Op, QuantParams, Tensor, verify
from edgeforge.qmath import quantize
from edgeforge.qparams16 import SIGMOID_TABLE_U16
from edgeforge.runtime import reference
from tests.c.cbuild import MultiLib, SeqPlan
from tests.conftest import require

MODELS = sorted((Path(__file__).resolve().parents[1] / "models" / "int16").glob("*.tflite"))


def int8_io(g: Graph) -> Graph:
    """g with QUANTIZE int8 -> int16 before its input and int16 -> int8 after its output."""
    g = g.copy()
    (i,), (o,) = g.inputs, g.outputs
    ti, to = g.tensors[i], g.tensors[o]
    g.add_tensor(Tensor("in8", ti.shape, "int8", QuantParams(ti.quant.scale * 256, 0)))
    g.add_tensor(Tensor("out8", to.shape, "int8", QuantParams(to.quant.scale * 256, 0)))
    q = OPS[Op.QUANTIZE].attrs()
    g.nodes = ([Node(Op.QUANTIZE, ("in8",), (i,), q, "q_in")] + g.nodes
               + [Node(Op.QUANTIZE, (o,), ("out8",), q, "q_out")])
    g.inputs, g.outputs = ["in8"], ["out8"]
    g.meta["int16_out"] = o
    verify(g)
    return g


GRAPHS = {p.stem: int8_io(load(p)) for p in MODELS}


@pytest.fixture(scope="module", params=["tflm", "litert", "single"])
def lib(request, tmp_path_factory):
    require("gcc")
    root = tmp_path_factory.mktemp(f"s16_{request.param}")
    return request.param, MultiLib(GRAPHS, root, request.param)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_s16_kernels_match_reference(lib, name):
    numerics, ml = lib
    g = GRAPHS[name]
    o16 = g.meta["int16_out"]
    arena = getattr(ml.lib, f"ef_{name}_arena")
    arena.restype = ctypes.c_void_p
    off, n = SeqPlan(g).offsets[o16], g.tensors[o16].nbytes
    rng = np.random.default_rng(5)
    for k in range(4):
        x = rng.integers(-128, 128, g.tensors["in8"].shape).astype(np.int8)
        (y8,), = ml.run(name, [[x]])
        got16 = np.frombuffer(ctypes.string_at(arena() + off, n), np.int16)
        ref = reference.run(g, [x], numerics=numerics, intermediate=True)
        np.testing.assert_array_equal(got16, ref[o16].ravel(), err_msg=f"{name} {k}")
        np.testing.assert_array_equal(y8.ravel(), ref["out8"].ravel())


def test_c_sigmoid_table_is_the_python_one():
    text = (RUNTIME_C / "kernels" / "ref" / "nn_s16.c").read_text()
    body = text[text.index("sigmoid_u16[256] = {"):]
    vals = [int(v) for v in re.findall(r"\d+", body[body.index("{"):body.index("}")])]
    assert vals == SIGMOID_TABLE_U16.tolist()


def test_every_s16_symbol_is_declared_documented_and_defined():
    header = (RUNTIME_C / "ef_kernels_s16.h").read_text()
    for sym, src in KERNEL_FILES_S16.items():
        assert re.search(rf"\b{sym}\(", (RUNTIME_C / "kernels" / "ref" / src).read_text()), sym
        decl = header.index(f"ef_status {sym}(")
        assert header.rfind("*/", 0, decl) > header.rfind(";", 0, decl), f"{sym}: no doc block"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """resnet_tiny.onnx compiled as int8, int16 and auto (at 1.25x the int8 arena)."""
    from edgeforge.compiler import compile_model
    root = tmp_path_factory.mktemp("act16")
    src = Path(__file__).resolve().parents[1] / "models" / "resnet_tiny.onnx"
    g = load(src)
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (64,) + tuple(g.tensors[g.inputs[0]].shape[1:])).astype(np.float32)
    np.savez(root / "calib.npz", x=calib)
    out = {"int8": compile_model(src, root / "int8", calib=root / "calib.npz")}
    budget = int(out["int8"].manifest.arena_bytes * 1.25)
    for mode in ("int16", "auto"):
        out[mode] = compile_model(src, root / mode, calib=root / "calib.npz",
                                  activations=mode, ram_budget=budget)
    return out, budget


def test_compile_activations_report_and_budget(compiled):
    out, budget = compiled
    p16, pauto = out["int16"].report["precision"], out["auto"].report["precision"]
    assert "precision" not in out["int8"].report
    assert p16["int16_layers"] == len(p16["layers"]) and p16["arena_bytes"] > budget
    assert 0 < pauto["int16_layers"] < len(pauto["layers"]) + 1
    assert pauto["arena_bytes"] <= budget == pauto["ram_budget"]
    # auto measured its layer orders (by damage, by arena) and kept one; int16 takes all
    assert p16["order"] == "all" and pauto["order"] in ("damage", "arena")
    assert 1 <= pauto["orders_tried"] <= 2
    for p in (p16, pauto):          # what it bought: the output SQNR over int8's
        assert p["output_sqnr_db"] > p["output_sqnr_int8_db"] + 2.0
    ops = out["auto"].report["ops"]
    assert {o["precision"] for o in ops} == {"int8", "int16"}
    # graph I/O takes the precision of its layers: int16 end to end for --activations int16
    assert [t.dtype for t in out["int16"].manifest.inputs + out["int16"].manifest.outputs] \
        == ["int16", "int16"]
    g = load(out["auto"].dir / "model.tflite")
    assert [t.dtype for t in out["auto"].manifest.outputs] == \
        [g.tensors[n].dtype for n in g.outputs]


@pytest.mark.parametrize("mode", ["int16", "auto"])
def test_compiled_16x8_dir_c_equals_reference_and_runtimes(compiled, mode):
    require("gcc", "tflite_micro", "ai_edge_litert")
    from edgeforge.codegen.host import CModel
    from edgeforge.runtime import peers
    res = compiled[0][mode]
    path = res.dir / "model.tflite"
    g = load(path)
    t = g.tensors[g.inputs[0]]
    lim = np.iinfo(t.dtype)                        # int16 graph input under int16
    xs = np.random.default_rng(2).integers(lim.min, lim.max + 1, (4,) + t.shape).astype(t.dtype)
    c = CModel(res.dir).run_batch([xs])[0]
    tflm, lit = peers.TflmRunner(path), peers.LitertRunner(path)
    for k, x in enumerate(xs):
        want = reference.run(g, [x])[g.outputs[0]]
        np.testing.assert_array_equal(c[k].reshape(want.shape), want)
        np.testing.assert_array_equal(tflm.run([x])[0].reshape(want.shape), want)
        lw = reference.run(g, [x], numerics="litert")[g.outputs[0]]
        np.testing.assert_array_equal(lit.run([x])[0].reshape(want.shape), lw)


@pytest.mark.parametrize("numerics", ["tflm", "litert", "single"])
def test_cli_compiled_int16_digits_c_equals_reference(numerics, tmp_path):
    """The integrator's check: `edgeforge compile digits.onnx --activations int16`, then the
    C package and the reference on the first 64 test digits, byte for byte."""
    require("gcc")
    from edgeforge.codegen.host import CModel
    from tests.unit.test_cli_errors import cli
    digits = Path(__file__).resolve().parents[2] / "examples" / "digits"
    r = cli("compile", digits / "digits.onnx", "--calib", digits / "calib.npz", "-o",
            tmp_path / "d", "--activations", "int16", "--numerics", numerics)
    assert r.returncode == 0, r.stderr
    g = load(tmp_path / "d" / "model.tflite")
    assert any(g.tensors[n.outputs[0]].dtype == "int16" for n in g.nodes)
    t = np.load(digits / "test.npz")["x"][:64]
    ti = g.tensors[g.inputs[0]]
    assert ti.dtype == "int16"                  # the first layer is 16x8: so is the input
    x = quantize(t, float(ti.quant.scale[0]), 0, "int16").reshape((64,) + ti.shape)
    c = CModel(tmp_path / "d").run_batch([x])[0]
    for k in range(64):
        want = reference.run(g, [x[k]], numerics=numerics)[g.outputs[0]]
        np.testing.assert_array_equal(c[k].reshape(want.shape), want, err_msg=f"digit {k}")


def test_c_requantize64_over_its_whole_range(tmp_path):
    """ef_requantize64 against the integer formula, wrapped to int32 as the C result is, over
    its documented range: |acc| < 2^47, every shift in [-31, 7] (total shifts 8..46),
    multipliers past 0x7FFF0000 (reduced to 0x7FFF) and the extremes."""
    require("gcc")
    from edgeforge.codegen.c import _copy_runtime
    rng = np.random.default_rng(12)
    n = 4000
    acc = rng.integers(-(1 << 47) + 1, 1 << 47, n)
    acc[:8] = [0, -1, 1, (1 << 47) - 1, -(1 << 47) + 1, 1 << 31, -(1 << 31), 12345]
    acc[8:n // 2] >>= rng.integers(0, 40, n // 2 - 8)          # small sums too
    mult = rng.integers(0, 1 << 31, n)
    mult[:40] = 0x7FFF0000 + rng.integers(0, 0xFFFF, 40)
    shift = np.resize(np.arange(-31, 8), n)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    _copy_runtime(pkg, ["ef_conv2d_s16"], "tflm")
    rows = ",\n".join(f"{{{a}LL, {m}, {s}}}" for a, m, s in zip(acc, mult, shift))
    (tmp_path / "t.c").write_text(
        '#include <stdio.h>\n#include "ef_kernels_s16.h"\n'
        f"static const struct {{ long long a; int m, s; }} c[{n}] = {{\n{rows}}};\n"
        f'int main(void) {{ for (int i = 0; i < {n}; ++i) '
        'printf("%ld\\n", (long)ef_requantize64(c[i].a, c[i].m, c[i].s)); return 0; }\n')
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Werror", f"-I{pkg}",
                    str(tmp_path / "t.c"), "-o", str(exe)], check=True, timeout=120)
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    for a, m, s, y in zip(acc, mult, shift, got):
        red = (int(m) + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
        total = 15 - int(s)
        want = (int(a) * red + (1 << (total - 1))) >> total
        assert int(y) == (want + (1 << 31)) % (1 << 32) - (1 << 31), (a, m, s)
