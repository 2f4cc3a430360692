"""Every Op has a row in every stage that must handle it, or a stated reason why not.

A new op touches frontends, reference, quantize, scratch, codegen (C and .tflite) and the
C library; this test is the checklist, so a missing row fails here rather than on a user's
model.
"""
from __future__ import annotations

import re

import pytest

from edgeforge.codegen.c import EMITTERS
from edgeforge.codegen.tflite import EXPORTERS
from edgeforge.frontends.tflite import IMPORTERS as TFLITE_IMPORTERS
from edgeforge.ir import OPS, Op
from edgeforge.plan.scratch import SCRATCH
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
    """Ops an ONNX importer can produce: read from the importer module's source."""
    src = (ROOT / "sdk" / "frontends" / "onnx.py").read_text()
    return {op for op in Op if f"Op.{op.name}" in src}


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
