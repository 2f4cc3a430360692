"""Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019) for
depthwise -> pointwise pairs, on the float graph before calibration.

For a DWCONV2D (depth multiplier 1, activation NONE or RELU: positively homogeneous, so
relu(x / s) = relu(x) / s for s > 0) whose output feeds only a CONV2D, channel i is scaled:

    W_dw[..., i] /= s_i,  b_dw[i] /= s_i,  W_pw[:, :, :, i] *= s_i,
    s_i = sqrt(r_dw[i] / r_pw[i])     (r = max |w| of channel i in each layer)

which leaves the function unchanged and gives both layers the range sqrt(r_dw * r_pw) on
channel i: depthwise filters with tiny ranges no longer waste the pointwise layer's int8
grid, and the shared per-tensor activation between them is balanced across channels.
"""
from __future__ import annotations

import numpy as np

from edgeforge.ir import Act, Graph, Node, Op

S_MIN, S_MAX = 1e-2, 1e2        # bound the rescale: a dead channel must not explode the other


def equalize_pairs(g: Graph) -> list[tuple[Node, Node]]:
    """(depthwise, pointwise) node pairs that equalization can rescale."""
    cons = g.consumers()
    pairs = []
    for n in g.nodes:
        if n.op != Op.DWCONV2D or n.attrs.depth_multiplier != 1:
            continue
        if n.attrs.act not in (Act.NONE, Act.RELU) or not g.tensors[n.inputs[1]].is_const:
            continue
        users = cons.get(n.outputs[0], [])
        if (len(users) != 1 or users[0].op != Op.CONV2D or n.outputs[0] in g.outputs
                or users[0].inputs[0] != n.outputs[0]
                or not g.tensors[users[0].inputs[1]].is_const):
            continue
        pairs.append((n, users[0]))
    return pairs


def equalize_graph(graph: Graph) -> Graph:
    """A copy of `graph` with every depthwise -> pointwise pair equalized."""
    g = graph.copy()
    done = []
    for dw, pw in equalize_pairs(g):
        w1 = g.tensors[dw.inputs[1]].data.astype(np.float32)     # [1, KH, KW, C]
        w2 = g.tensors[pw.inputs[1]].data.astype(np.float32)     # [C_OUT, KH, KW, C]
        r1 = np.abs(w1).max(axis=(0, 1, 2))
        r2 = np.abs(w2).max(axis=(0, 1, 2))
        ok = (r1 > 0) & (r2 > 0)
        s = np.ones_like(r1)
        s[ok] = np.sqrt(r1[ok] / r2[ok])
        s = np.clip(s, S_MIN, S_MAX).astype(np.float32)
        _set(g, dw.inputs[1], w1 / s)
        if len(dw.inputs) > 2 and dw.inputs[2]:
            _set(g, dw.inputs[2], g.tensors[dw.inputs[2]].data.astype(np.float32) / s)
        _set(g, pw.inputs[1], w2 * s)
        done.append(dw.name or dw.outputs[0])
    g.meta["equalized"] = done
    return g


def _set(g: Graph, name: str, data: np.ndarray) -> None:
    """Replace a constant's data (the graph is a copy: tensors are its own)."""
    g.tensors[name].data = data.astype(np.float32)
