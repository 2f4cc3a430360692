"""The generated C package as text (no compiler needed): API and glue macros, one
EF_OP_BEGIN/EF_OP_END per op in schedule order, namespaced weights, only the kernels used,
and the profile's per-op rounding written into the shipped ef_requantize.h."""
from __future__ import annotations

import re

import pytest

from edgeforge.codegen.c import EMITTERS, KERNEL_FILES, emit_c
from edgeforge.frontends import load
from edgeforge.ir import OPS, Op
from edgeforge.qmath import Numerics
from edgeforge.qparams import SINGLE_ROUNDING_OPS
from tests.c.cbuild import SeqPlan
from tests.conftest import fixture

GLUE = ("EF_MODEL_INVOKE()", "EF_MODEL_INPUT(i)", "EF_MODEL_OUTPUT(i)", "EF_MODEL_NUM_INPUTS",
        "EF_MODEL_NUM_OUTPUTS", "EF_MODEL_INPUT_BYTES(i)", "EF_MODEL_OUTPUT_BYTES(i)",
        "EF_MODEL_NUM_OPS", "EF_MODEL_HASH", "EF_MODEL_ARENA_BYTES")


@pytest.fixture(scope="module")
def kws():
    return load(fixture("kws_ds_cnn_int8.tflite"))


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
def test_package_text(kws, numerics, tmp_path):
    sha = "ab" * 32
    pkg = emit_c(kws, SeqPlan(kws), tmp_path, name="kws", numerics=numerics, model_hash=sha)
    h = (tmp_path / "model.h").read_text()
    for macro in GLUE:
        assert f"#define {macro} " in h, macro
    assert "#define EF_MODEL_HASH {0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab}" in h
    assert f"#define EF_MODEL_NUM_OPS {len(kws.nodes)}" in h
    assert "int ef_kws_invoke(void);" in h and "int8_t *ef_kws_input(int i);" in h
    c = (tmp_path / "model.c").read_text()
    begins = [int(i) for i in re.findall(r"EF_OP_BEGIN\((\d+)\);", c)]
    ends = [int(i) for i in re.findall(r"EF_OP_END\((\d+)\);", c)]
    assert begins == ends == list(range(len(kws.nodes)))
    w = (tmp_path / "weights.c").read_text()
    assert all(name.startswith("ef_kws_") for name in re.findall(r"const \w+ (\w+)\[", w))
    shipped = {p.name for p in tmp_path.glob("*_s8.c")}
    assert shipped == {KERNEL_FILES[k] for k in pkg.kernels}
    rq = (tmp_path / "ef_requantize.h").read_text()
    for op in ("FC", "CONV2D", "SOFTMAX"):
        single = int(any(o.value == op for o in SINGLE_ROUNDING_OPS[Numerics(numerics)]))
        assert f"#define EF_{op}_SINGLE_ROUNDING {single}" in rq


def test_emitters_cover_the_int8_ops():
    missing = {op for op, info in OPS.items() if info.int8} - set(EMITTERS)
    # int8 -> float32 lives only at the graph boundary, where compile drops it
    assert missing <= {Op.DEQUANTIZE}, missing


def test_each_constant_value_is_declared_once(kws, tmp_path):
    """A node's output dims are the next node's input dims and layers repeat their params:
    model.c declares each distinct (type, value) once and every call names that one."""
    emit_c(kws, SeqPlan(kws), tmp_path, name="kws")
    c = (tmp_path / "model.c").read_text()
    decls = re.findall(r"^static const (\w+) (\w+) = (.*);$", c, re.MULTILINE)
    values = [(t, v) for t, _, v in decls]
    assert len(values) == len(set(values)), "a constant value is declared twice"
    dims = [v for t, _, v in decls if t == "ef_dims"]
    assert len(dims) < 3 * len(kws.nodes) - 5, "dims are not shared between nodes"
    names = {n for _, n, _ in decls}
    used = set(re.findall(r"&(\w+)", c.split("int ef_kws_invoke(void)")[1]))
    assert used & names and not {u for u in used if u.endswith(("_in", "_out", "_p"))} - names
