"""Every Op has a row in every stage that must handle it, or a stated reason why not.

A new op touches frontends, reference, quantize, scratch, codegen (C and .tflite) and the
C library; this test is the checklist, so a missing row fails here rather than on a user's
model.
"""
from __future__ import annotations

import ast
import re

import pytest

from edgeforge.codegen.c import EMITTERS
from edgeforge.codegen.tflite import EXPORTERS
from edgeforge.frontends.tflite import IMPORTERS as TFLITE_IMPORTERS
from edgeforge.ir import OPS, Op
from edgeforge.plan.scratch import SCRATCH
from edgeforge.qmath import Numerics
from edgeforge.qparams import PREPARE
from edgeforge.quantize.rules import RULES
from edgeforge.runtime.reference import REFERENCE, REFERENCE_S8
from tests.conftest import ROOT

# The one explicit skip list: (stage, op) -> why. Keep a reason on every entry.
UNSUPPORTED: dict[tuple[str, Op], str] = {
    # float-only ops: passes fold or fuse them away before quantization
    **{(stage, op): "float only; removed by sdk/passes before int8 stages"
       for op, info in OPS.items() if not info.int8
       for stage in ("reference_s8", "prepare", "rule", "scratch", "emit", "c")},
    ("tflite_import", Op.BATCHNORM): "TFLite has no BATCHNORM builtin",
    ("tflite_import", Op.CLIP): "TFLite has no CLIP builtin (RELU6/RELU_N1_TO_1 instead)",
    ("tflite_import", Op.HARD_SIGMOID): "TFLite has no HARD_SIGMOID builtin",
    ("tflite_export", Op.BATCHNORM): "TFLite has no BATCHNORM builtin; folded first",
    ("tflite_export", Op.CLIP): "TFLite has no CLIP builtin; fused as an activation first",
    ("tflite_export", Op.HARD_SIGMOID): "TFLite has no HARD_SIGMOID builtin",
    ("onnx_import", Op.QUANTIZE): "float ONNX only; QDQ models are not imported",
    ("onnx_import", Op.DEQUANTIZE): "float ONNX only; QDQ models are not imported",
    ("onnx_import", Op.RELU6): "comes from Clip(0, 6)",
    # QUANTIZE/DEQUANTIZE with float sides are dropped at the graph edges by the compiler
    ("rule", Op.QUANTIZE): "inserted by the quantizer itself, never quantized again",
    ("rule", Op.DEQUANTIZE): "inserted by the quantizer itself, never quantized again",
    ("emit", Op.DEQUANTIZE): "float output: the compiler drops it at the graph edge",
    ("c", Op.DEQUANTIZE): "float output: the compiler drops it at the graph edge",
}

C_SYMBOL = re.compile(r"\bef_([a-z0-9_]+?)_s8\(")


def _c_symbols() -> set[str]:
    header = (ROOT / "runtime" / "c" / "ef_kernels.h").read_text()
    return set(C_SYMBOL.findall(header))


def _onnx_ops() -> set[Op]:
    """Ops an ONNX importer can produce: every `Op.NAME` the importer module's code names
    (read with ast: a substring search would find Op.RELU inside Op.RELU6)."""
    tree = ast.parse((ROOT / "sdk" / "frontends" / "onnx.py").read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "Op"}
    return {op for op in Op if op.name in names}


STAGES = {
    "tflite_import": lambda op: op in TFLITE_IMPORTERS,
    "tflite_export": lambda op: op in EXPORTERS,
    "onnx_import": lambda op: op in _onnx_ops(),
    "reference": lambda op: op in REFERENCE,
    "reference_s8": lambda op: op in REFERENCE_S8,
    "prepare": lambda op: op in PREPARE,
    "rule": lambda op: op in RULES,
    "scratch": lambda op: op in SCRATCH,
    "emit": lambda op: op in EMITTERS,
    "c": lambda op: op.value.lower() in _c_symbols(),      # Op.CONV2D -> ef_conv2d_s8
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_op_has_a_row_or_a_reason(stage):
    missing = [op for op in Op if not STAGES[stage](op) and (stage, op) not in UNSUPPORTED]
    assert not missing, f"{stage}: no row and no UNSUPPORTED reason for {missing}"


def test_skip_list_has_no_stale_entries():
    """An op that gained support must leave the skip list, or the list lies."""
    stale = [(s, op) for (s, op) in UNSUPPORTED if STAGES[s](op)]
    assert not stale, f"supported now, remove from UNSUPPORTED: {stale}"


def test_op_table_is_complete():
    assert set(OPS) == set(Op)
    for op, info in OPS.items():
        lo, hi = info.n_inputs
        assert 1 <= lo <= hi, op
        if info.fixed_out_q is not None:
            assert info.int8, f"{op}: fixed int8 output quant on a float-only op"


# ---------------------------------------------------------------- side lists that repeat op facts
def test_onnx_op_scan_matches_whole_names():
    """The ONNX scan is by name: an op only named as part of a longer one is not found."""
    tree = ast.parse("x = Op.RELU6\ny = Op.RELU6.value")
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "Op"}
    assert names == {"RELU6"}


def test_rounding_macros_are_one_list():
    """codegen's ROUNDING_OPS is read from ef_requantize.h; every EF_<OP>_SINGLE_ROUNDING a
    kernel tests is defined there, names a real op, and covers the ops qparams rounds."""
    from edgeforge.codegen.c import ROUNDING_OPS
    from edgeforge.qparams import SINGLE_ROUNDING_OPS
    used = set()
    for f in (ROOT / "runtime" / "c").rglob("*.[ch]"):
        used |= set(re.findall(r"\bEF_(\w+?)_SINGLE_ROUNDING\b", f.read_text()))
    used.discard("")
    assert {Op(m) for m in used} <= set(ROUNDING_OPS), used - {o.value for o in ROUNDING_OPS}
    assert len(set(ROUNDING_OPS)) == len(ROUNDING_OPS)
    for numerics, ops in SINGLE_ROUNDING_OPS.items():
        if numerics == Numerics.SINGLE:          # TFLITE_SINGLE_ROUNDING: every op, so
            assert set(ROUNDING_OPS) <= ops      # every macro is set to 1
        else:
            assert ops <= set(ROUNDING_OPS), ops - set(ROUNDING_OPS)


def test_kernel_files_cover_every_kernel_symbol():
    """Each ef_*_s8 the kernel headers declare has a KERNEL_FILES row naming a file that
    exists in kernels/ref and defines it; no row names a symbol nobody declares."""
    from edgeforge.codegen.c import KERNEL_DIR, KERNEL_FILES, kernel_symbols
    symbols = {k for k in kernel_symbols() if k.endswith("_s8")}
    assert symbols == set(KERNEL_FILES), symbols ^ set(KERNEL_FILES)
    for sym, src in KERNEL_FILES.items():
        text = (KERNEL_DIR / src).read_text()
        defines = re.search(rf"^\w[\w ]*\b{sym}\s*\(", text, re.MULTILINE)
        assert defines, f"{src} does not define {sym}"


def test_exporters_write_the_op_rows_builtin():
    """The .tflite writer names each op's operator as OPS[op].tflite says (its last operator:
    an explicit pad is written as a PAD in front)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgeforge.codegen.tflite import tflite_bytes
    from tests.opcases import cases, float_only_cases
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    also = {Op.PAD: {"PADV2"}}         # a non-zero constant pad value needs PADV2
    seen = set()
    for case in [*cases("int8"), *cases("float32"), *float_only_cases()]:
        m = schema.ModelT.InitFromPackedBuf(tflite_bytes(case.graph), 0)
        code = m.operatorCodes[m.subgraphs[0].operators[-1].opcodeIndex]
        got = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        assert got in {OPS[case.op].tflite} | also.get(case.op, set()), (case.name, got)
        seen.add(case.op)
    assert set(EXPORTERS) <= seen, f"exporters with no op case: {set(EXPORTERS) - seen}"


def test_side_lists_follow_the_op_table():
    """Prune's CHANNELWISE and the ONNX reader's layout-free ops include every one-input
    elementwise op of OPS; the ONNX list names only ops the reader imports (Cast: layout)."""
    from edgeforge.compress.prune import CHANNELWISE
    from edgeforge.frontends.onnx import _TRANSPARENT
    from edgeforge.frontends.onnx import IMPORTERS as ONNX_IMPORTERS
    unary = {op for op, i in OPS.items() if i.elementwise and i.n_inputs == (1, 1)}
    assert unary <= CHANNELWISE
    assert _TRANSPARENT - set(ONNX_IMPORTERS) == {"Cast"}
    for name, imp in ONNX_IMPORTERS.items():
        if getattr(imp, "op", None) in unary:
            assert name in _TRANSPARENT, name
