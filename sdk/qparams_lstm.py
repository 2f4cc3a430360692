"""Prepare of the fused int8 LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, "8x8_16": int8 activations
and weights, int16 gates and cell state, int32 biases), for the reference and the C kernel.

Both runtimes compute every gate pre-activation in Q3.12 (scale 2^-12), its sigmoid / tanh in
Q0.15 (2^-15), and keep the cell state in int16 with a power-of-two scale 2^cell_power. Where
they differ (TFLM lstm_eval.cc vs LiteRT's EvalInteger8x8_16, measured op by op against
ai-edge-litert on converter-made and random LSTMs), LstmQuant.litert picks the side:
  * activations: TFLM interpolates a 256-entry sigmoid table (reference_integer_ops::Logistic
    / Tanh); LiteRT runs gemmlowp FixedPoint<int16_t, 3> logistic / tanh for the gates and
    FixedPoint<int16_t, 15 + cell_power> tanh for the cell (none for cell scales below 2^-15:
    its output buffer keeps the input gate, which runtime/lstm.py reproduces);
  * gate multipliers: TFLM double(x_s) * double(w_s) / 2^-12, LiteRT the same in float;
  * gate sum: TFLM saturates the input and the recurrent FC outputs to int16 each, then their
    sum; LiteRT adds the recurrent product (unsaturated) to the saturated first one;
  * forget * cell and input * cell-gate: TFLM MultiplyByQuantizedMultiplier (Q31 double
    rounding), LiteRT one rounding shift by 15 and 30 + cell_power;
  * hidden multiplier 2^-30 / h_scale: TFLM in double, LiteRT in float; cell clip likewise.

The sigmoid table (sigmoid(i / 24) in Q0.16, tuned for interpolation) is not a formula: it is
read once from LiteRT's own int16 TANH kernel (sigmoid_table below), so no copy of it lives
here and the C kernel gets the same 256 numbers from codegen.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from edgeforge.errors import QuantizeError
from edgeforge.ir import LSTM_B, LSTM_C, LSTM_H, LSTM_R, LSTM_W, LSTM_X, Graph, Node
from edgeforge.qmath import Numerics, Rounding, quantize_multiplier

GATE_SCALE = 2.0 ** -12        # gate pre-activations, Q3.12
ACT_SCALE = 2.0 ** -15         # sigmoid / tanh outputs, Q0.15


@dataclass(frozen=True)
class LstmQuant:
    in_offset: int               # -input zero point
    h_offset: int                # -hidden state (= output) zero point
    out_zp: int
    in_mult: tuple[int, ...]     # per gate i, f, c, o: input FC to Q3.12
    in_shift: tuple[int, ...]
    rec_mult: tuple[int, ...]    # per gate: recurrent FC to Q3.12
    rec_shift: tuple[int, ...]
    fc_mult: int                 # forget (Q0.15) * cell -> cell
    fc_shift: int
    ig_mult: int                 # input gate * cell gate (Q0.15 * Q0.15) -> cell
    ig_shift: int
    h_mult: int                  # output gate * tanh(cell) -> int8 hidden
    h_shift: int
    cell_power: int              # cell scale = 2^cell_power
    cell_clip: int               # quantized clip, 0: none
    tanh_mult: int               # tanh(cell) input rescale: (c * tanh_mult + rnd) >> tanh_shift
    tanh_shift: int
    litert: bool                 # LiteRT's gate sum and power-of-two cell products
    single: bool                 # every requantization rounds once (TFLITE_SINGLE_ROUNDING)
    n_cell: int
    n_input: int
    table: np.ndarray            # uint16[256]


@functools.lru_cache(maxsize=1)
def sigmoid_table() -> np.ndarray:
    """The uint16[256] table TFLite's int16 LOGISTIC/TANH interpolate (common.h), measured from
    LiteRT's reference int16 TANH: with input scale 2^-12 it computes v = 3x, then
    ((t[v >> 8] << 8) + (v & 255) * (t[(v >> 8) + 1] - t[v >> 8]) - 2^23 + 2^7) >> 8; over
    every x >= 0 that pins each t[k] and step t[k+1] - t[k] uniquely (checked here)."""
    import flatbuffers
    from ai_edge_litert import interpreter as litert
    from ai_edge_litert import schema_py_generated as schema

    x = np.arange(0, 1 << 15, dtype=np.int16)
    m = schema.ModelT()
    m.version, m.buffers = 3, [schema.BufferT()]
    sg = schema.SubGraphT()
    tensors = []
    for name, scale in ((b"x", GATE_SCALE), (b"y", ACT_SCALE)):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array([1, x.size], np.int32), 7, 0
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = np.array([scale], np.float32), np.array([0], np.int64)
        t.quantization = q
        tensors.append(t)
    sg.tensors, sg.inputs, sg.outputs = tensors, np.array([0], np.int32), np.array([1], np.int32)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0], np.int32), np.array([1], np.int32)
    sg.operators = [op]
    oc = schema.OperatorCodeT()
    oc.builtinCode = oc.deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    oc.version = 3
    m.operatorCodes, m.subgraphs = [oc], [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    it = litert.Interpreter(model_content=bytes(b.Output()),
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x[None])
    it.invoke()
    y = it.get_tensor(it.get_output_details()[0]["index"])[0].astype(np.int64)
    v = 3 * x.astype(np.int64)
    uh, ut = v >> 8, v & 255
    table = np.zeros(256, np.int64)
    steps = np.arange(0, 1 << 11)
    for k in range(255):
        r, g = ut[uh == k], y[uh == k]
        off = g[None, :] - ((r[None, :] * steps[:, None] + 128) >> 8)
        fits = (off == off[:, :1]).all(axis=1)
        heads = set((off[fits][:, 0] + (1 << 15)).tolist())
        if len(heads) != 1:
            raise QuantizeError("LiteRT's int16 TANH does not interpolate TFLite's sigmoid "
                                f"table as expected (entry {k}): cannot prepare an int8 LSTM")
        table[k] = heads.pop()
        if fits.sum() == 1:
            table[k + 1] = table[k] + int(steps[fits][0])
    if not (np.diff(table) >= 0).all() or table[0] != 1 << 15:
        raise QuantizeError("the sigmoid table read from LiteRT is not monotone from 0.5")
    return table.astype(np.uint16)


def _sz(g: Graph, name: str) -> tuple[float, int]:
    t = g.tensors[name]
    if t.quant is None:
        raise QuantizeError(f"LSTM tensor {name!r} has no quantization parameters")
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _f32(x: float) -> float:
    return float(np.float32(x))


def prepare_lstm(node: Node, g: Graph, numerics: Numerics) -> LstmQuant:
    litert = Numerics(numerics) is Numerics.LITERT
    single = Numerics(numerics) is Numerics.SINGLE       # TFLM built with single rounding
    rnd = Rounding.SINGLE if single else Rounding.DOUBLE
    x_s, x_z = _sz(g, node.inputs[LSTM_X])
    h_s, h_z = _sz(g, node.inputs[LSTM_H])
    y_s, y_z = _sz(g, node.outputs[0])
    c_s, c_z = _sz(g, node.inputs[LSTM_C])
    if (h_s, h_z) != (y_s, y_z):
        raise QuantizeError("the hidden state and the output must share one quantization")
    power = math.log2(c_s)
    if c_z != 0 or power != int(power) or not -30 <= power <= 0:
        raise QuantizeError(f"cell state scale {c_s} (zero point {c_z}): both runtimes need a "
                            "power of two <= 1 and zero point 0")
    power = int(power)
    if litert and power > -9:
        raise QuantizeError(f"cell state scale 2^{power}: LiteRT's integer LSTM has tanh for "
                            "cell scales 2^-15 .. 2^-9 only (or below 2^-15)")
    for k in (*LSTM_W, *LSTM_R):
        t = g.tensors[node.inputs[k]]
        if t.dtype != "int8" or t.quant is None or t.quant.per_channel or t.quant.zero_point.any():
            raise QuantizeError(f"LSTM weight {t.name!r}: int8, one scale, zero point 0 needed")
    for k in LSTM_B:
        if g.tensors[node.inputs[k]].dtype != "int32":
            raise QuantizeError(f"LSTM bias {node.inputs[k]!r} must be int32")

    def gate_mult(in_s: float, w_name: str) -> tuple[int, int]:
        w_s = float(g.tensors[w_name].quant.scale[0])
        real = _f32(_f32(w_s * in_s) / GATE_SCALE) if litert else in_s * w_s / GATE_SCALE
        return quantize_multiplier(real, rnd)

    ins = [gate_mult(x_s, node.inputs[k]) for k in LSTM_W]
    recs = [gate_mult(h_s, node.inputs[k]) for k in LSTM_R]
    fc = quantize_multiplier(ACT_SCALE * c_s / c_s, rnd)
    ig = quantize_multiplier(ACT_SCALE * ACT_SCALE / c_s, rnd)
    h_real = (_f32(_f32(ACT_SCALE / h_s) * ACT_SCALE) if litert
              else ACT_SCALE * ACT_SCALE / h_s)
    hm = quantize_multiplier(h_real, rnd)
    clip = float(node.attrs.cell_clip)
    qclip = 0
    if clip > 0:
        v = _f32(clip / c_s) if litert else clip / c_s
        qclip = int(min(max(v, -32768.0), 32767.0))
    shift = 15 + power - 3                # tanh(cell) wants Q3.12 inputs, times 3
    tmult, tshift = (3 << shift, 0) if shift >= 0 else (3, -shift)
    n_cell = g.tensors[node.inputs[LSTM_W[0]]].shape[0]
    return LstmQuant(-x_z, -h_z, y_z, tuple(m for m, _ in ins), tuple(s for _, s in ins),
                     tuple(m for m, _ in recs), tuple(s for _, s in recs), *fc, *ig, *hm,
                     power, qclip, tmult, tshift, litert, single, n_cell,
                     g.tensors[node.inputs[LSTM_X]].shape[-1], sigmoid_table())
