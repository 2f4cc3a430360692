"""How the TFLite converter spells Keras layers (tests/models/keras, one tiny converter-made
model per spelling: dilated Conv1D/Conv2D/DepthwiseConv, UpSampling1D/2D of several factors,
tf.tile broadcasts, LayerNormalization variants, GRU/SimpleRNN unrolled, GRU sequences) and
the import rewrites that turn them into IR ops (sdk/frontends/tflite_patterns.py).

Each compiles under both numerics and our int8 reference gives the bytes TFLM / LiteRT give
on the written model.tflite and on the converter's original file (where the runtime can run
it), on random and extreme int8 inputs. Spellings that cannot be rewritten exactly fail with
one line naming the op and why.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require
from tests.zoo.test_zoo import assert_equals_peer

KERAS = Path(__file__).resolve().parents[1] / "models" / "keras"
VARIANTS = sorted(p.stem for p in KERAS.glob("*.tflite"))
# the converter's original file, run by TFLM, is not the model's meaning here (the compiled
# model.tflite is still compared): SPACE_TO_BATCH_ND's output is recorded with batch 1
TFLM_MISRUNS = {"conv1d_dil3_valid", "conv1d_dil2_causal", "conv1d_dil4_same_odd",
                "sepconv1d_dil2", "conv2d_dil2", "conv2d_dil_1x3", "dwconv2d_dil2"}
# ... or cannot be run by them at all (the int8 TILE v3 Keras 3 writes: neither runtime;
# REDUCE_PROD of a dynamic-batch Dense's reshape: not in TFLM; a batch-None RNN's zero state
# is FILL with computed dims, which TFLM refuses: "Non-constant >dims< tensor")
NO_TILE_KERNEL = {"upsample_3x2", "upsample_h_only", "upsample1d_3", "tile_broadcast"}
NOT_IN_TFLM = {"layernorm_plain", "gru_reset_before", "simple_rnn", "gru_sequences"}
# spelling -> why it does not compile yet (xfail, not strict)
NOT_YET: dict[str, str] = {}


def _inputs(res) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(7)
    out = []
    for kind in ("uniform", "normal", "low", "high"):
        xs = []
        for s in res.manifest.inputs:
            if kind == "uniform":
                xs.append(rng.integers(-128, 128, s.shape).astype(np.int8))
            elif kind == "normal":
                x = rng.standard_normal(s.shape) / s.scale + s.zero_point
                xs.append(np.clip(np.round(x), -128, 127).astype(np.int8))
            else:
                xs.append(np.full(s.shape, -128 if kind == "low" else 127, np.int8))
        out.append(xs)
    return out


@pytest.mark.parametrize("numerics", ["tflm", "litert"])
@pytest.mark.parametrize("name", [
    pytest.param(v, marks=pytest.mark.xfail(reason=NOT_YET[v], strict=False)) if v in NOT_YET
    else v for v in VARIANTS])
def test_keras_spelling_compiles_byte_equal(name, numerics, tmp_path):
    from edgeforge.compiler import compile_model
    from edgeforge.frontends import load
    src = KERAS / f"{name}.tflite"
    res = compile_model(src, tmp_path / "out", numerics=numerics)
    # every pattern op became an IR op: none is left for a runtime to mis-run
    assert not {"TILE", "SPACE_TO_BATCH_ND", "NEG", "UNPACK", "PACK"} & set(res.manifest.ops)
    samples = _inputs(res)
    tfl = res.dir / "model.tflite"
    g = load(tfl)
    assert_equals_peer(g, tfl, samples, numerics, name)
    if name in NO_TILE_KERNEL or numerics == "tflm" and name in TFLM_MISRUNS | NOT_IN_TFLM:
        return
    assert_equals_peer(g, src, samples, numerics, f"{name} (original file)")


def _mutated(src: Path, dst: Path, edit) -> Path:
    """src with edit(model) applied to its schema object, written to dst."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    m = schema.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    edit(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(bytes(b.Output()))
    return dst


def _const_of(m, builtin: str, operand: int):
    names = {v: k for k, v in vars(__import__(
        "ai_edge_litert.schema_py_generated", fromlist=["x"]).BuiltinOperator).items()
        if isinstance(v, int)}
    sg = m.subgraphs[0]
    for o in sg.operators:
        oc = m.operatorCodes[o.opcodeIndex]
        if names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode)) == builtin:
            return m.buffers[sg.tensors[o.inputs[operand]].buffer]
    raise AssertionError(builtin)


@pytest.mark.parametrize("name,builtin,operand,values,named,why", [
    # a TILE that repeats a non-unit axis is no resize
    ("tile_broadcast", "TILE", 1, [1, 8, 8, 2], "TILE", "only a broadcast of size-1 axes"),
    # a BATCH_TO_SPACE_ND block other than SPACE_TO_BATCH_ND's
    ("conv1d_dil3_valid", "BATCH_TO_SPACE_ND", 1, [2], "SPACE_TO_BATCH_ND", "the file records"),
])
def test_unmatched_spelling_is_one_clear_error(name, builtin, operand, values, named, why,
                                               tmp_path):
    require("ai_edge_litert")
    from edgeforge.errors import UnsupportedOpError
    from edgeforge.frontends import load

    def edit(m):
        buf = _const_of(m, builtin, operand)
        buf.data = np.asarray(values, np.int32).view(np.uint8)

    bad = _mutated(KERAS / f"{name}.tflite", tmp_path / "bad.tflite", edit)
    with pytest.raises(UnsupportedOpError) as err:
        load(bad)
    line = next(x for x in str(err.value).splitlines() if f"({named})" in x)
    assert why in line and "supported only as part of" in line, line


def test_neg_island_rewrite_is_checked_on_all_256_inputs():
    """The float NEG island's table vs int8 SUB(zero point, x): equal for the scales the
    converter writes (the same scale, and LayerNormalization's calibrated two)."""
    from edgeforge.frontends.tflite_patterns import _float_neg_table, _sub_table
    for sx, zx, sy, zy in [(0.003817199, -9, 0.003817199, 8),
                           (0.004335417, -14, 0.004972238, -5)]:
        want = _float_neg_table(sx, zx, sy, zy)
        assert want[0] != want[-1]
        for numerics in ("tflm", "litert"):
            assert np.array_equal(_sub_table(sx, zx, sy, zy, numerics), want)


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_keras_spelling_c_equals_reference(name, tmp_path):
    """The rewritten ops (dilated convs, resizes, SUB for NEG, folded RNN states) in the
    generated C, built by gcc, give the int8 reference's bytes."""
    require("gcc")
    from edgeforge.compiler import compile_model
    from tests.zoo.test_zoo import assert_c_equals_reference
    res = compile_model(KERAS / f"{name}.tflite", tmp_path / "out", numerics="tflm")
    assert_c_equals_reference(res.dir, _inputs(res), name)
