"""Write fc_autoencoder_int8.tflite: the MLPerf Tiny anomaly-detection network's shape with
seeded weights (committed; tests never run this).

    python tests/models/make_fc_autoencoder.py

The MLPerf Tiny AD01 autoencoder: 640 inputs (5 frames x 128 log-mel bins), FULLY_CONNECTED
128 x4 with ReLU, a bottleneck of 8 with ReLU, FULLY_CONNECTED 128 x4 with ReLU, then 640
outputs with no activation (264,192 MACs). Weights are N(0, 1/fan_in) draws (seed 0),
int8 symmetric per tensor like the TFLite converter's FC; activations use asymmetric
per-tensor scales from a float forward pass over 64 seeded inputs. Written with edgeforge's
own .tflite writer, so re-running reproduces the same bytes.
"""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np

from edgeforge.codegen.tflite import write_tflite
from edgeforge.ir import Act, FcAttrs, Graph, Node, Op, QuantParams, Tensor, verify

HERE = Path(__file__).resolve().parent
WIDTHS = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]


def _range_q(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 over [lo, hi] widened to hold 0, as TFLite quantizes activations."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-6) / 255.0
    return QuantParams(np.float32(scale), int(np.clip(np.round(-128 - lo / scale), -128, 127)))


def build() -> Graph:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (64, WIDTHS[0])).astype(np.float32)
    g = Graph(name="fc_autoencoder")
    q = _range_q(float(x.min()), float(x.max()))
    g.add_tensor(Tensor("input", (1, WIDTHS[0]), "int8", q))
    prev = "input"
    for i, (cin, cout) in enumerate(pairwise(WIDTHS)):
        w = rng.normal(0.0, 1.0 / np.sqrt(cin), (cout, cin)).astype(np.float32)
        b = rng.normal(0.0, 0.05, cout).astype(np.float32)
        last = i == len(WIDTHS) - 2
        x = x @ w.T + b
        if not last:
            x = np.maximum(x, 0.0)
        ws = np.float32(np.abs(w).max() / 127.0)
        wq = np.clip(np.round(w / ws), -127, 127).astype(np.int8)
        bs = np.float32(q.scale[0] * ws)
        g.const(f"w{i}", wq, QuantParams(np.array([ws], np.float32), 0))
        g.const(f"b{i}", np.round(b / bs).astype(np.int32), QuantParams(np.array([bs]), 0))
        q = _range_q(float(x.min()), float(x.max()))
        out = "output" if last else f"h{i}"
        g.add_tensor(Tensor(out, (1, cout), "int8", q))
        g.nodes.append(Node(Op.FC, (prev, f"w{i}", f"b{i}"), (out,),
                            FcAttrs(act=Act.NONE if last else Act.RELU), f"fc_{i}"))
        prev = out
    g.inputs, g.outputs = ["input"], ["output"]
    verify(g)
    return g


if __name__ == "__main__":
    write_tflite(build(), HERE / "fc_autoencoder_int8.tflite")
    print("wrote", HERE / "fc_autoencoder_int8.tflite")
