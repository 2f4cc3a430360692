"""Every C `ef_<kernel>_scratch_size()` agrees with its Python mirror in sdk/plan/scratch.py,
for both kernel sets (kernels/ref, and kernels/dsp built with EF_DSP_EMULATE so the DSP
sizes are compiled on the host), on a few hundred seeded shapes around every limit the sizes
depend on (EF_DSP_COL_MAX, EF_DSP_TMP_MAX, C_IN % 4, EF_DSP_OC_BLOCK, EF_DSP_SHALLOW_MAX,
EF_DSP_DW_CH_MAX, EF_DSP_DW_PAD_BYTES, EF_DSP_DW_RQ_MAX, the ADD table thresholds). The plan
sizes a node's scratch as the larger of the two sets (`generic`), which is checked too.
"""
from __future__ import annotations

import random
import subprocess

import numpy as np
import pytest

from edgeforge.ir import BinaryAttrs, Conv2dAttrs, DwConv2dAttrs, Graph, Node, Op, Tensor
from edgeforge.plan import scratch
from tests.conftest import ROOT, require

INC = ROOT / "runtime" / "c"
SETS = {"ref": (INC / "kernels" / "ref", []),
        "dsp": (INC / "kernels" / "dsp", ["-DEF_DSP_EMULATE"])}
FILES = ["conv2d_s8.c", "conv2d_1x1_s8.c", "conv2d_shallow_s8.c", "dwconv2d_3x3_s8.c",
         "add_s8.c", "dwconv2d_inplace_s8.c", "conv2d_1x1_inplace_s8.c"]
ENGINE = {"dsp": ["ef_dsp_conv.c"]}           # the DSP conv engine the conv kernels share


def _conv_cases(rng: random.Random) -> list[tuple[int, ...]]:
    """(h, w, cin, cout, kh, kw, stride, pad_top, pad_left) around the engine's limits."""
    out = []
    for _ in range(160):
        kh, kw = rng.choice([(1, 1), (3, 3), (5, 5), (10, 4), (3, 1), (1, 7), (7, 7)])
        cin = rng.choice([1, 2, 3, 4, 5, 8, 12, 16, 28, 29, 32, 64, 113, 114, 128, 256])
        cout = rng.choice([1, 2, 3, 8, 16, 63, 64, 65, 96, 128, 129])
        stride = rng.choice([1, 2])
        pad = rng.choice([0, kh // 2])
        h, w = rng.randint(kh, kh + 9), rng.randint(kw, kw + 9)
        out.append((h, w, cin, cout, kh, kw, stride, pad, pad if kw > 1 else 0))
    return out


def _dw_cases(rng: random.Random) -> list[tuple[int, ...]]:
    """(h, w, c, stride, pad_top, pad_left) for 3x3 depthwise."""
    return [(rng.randint(3, 50), rng.choice([3, 4, 5, 6, 12, 25, 48, 96, 150]),
             rng.choice([1, 3, 4, 8, 16, 60, 64, 68, 96, 128, 256, 260]),
             rng.choice([1, 2]), rng.choice([0, 1]), rng.choice([0, 1])) for _ in range(120)]


def _add_cases(rng: random.Random) -> list[tuple[int, ...]]:
    """(h, w, c, broadcast): element counts on both sides of 512 and 1024."""
    return [(rng.randint(1, 20), rng.randint(1, 20), rng.choice([1, 4, 8, 16, 32, 64]),
             rng.choice([0, 0, 1])) for _ in range(80)]


def _inplace_cases(rng: random.Random) -> list[tuple[int, ...]]:
    """(h, w, c, pad_top, pad_left): depthwise in place (3x3, stride 1) and 1x1 in place."""
    return [(rng.randint(1, 30), rng.randint(1, 30), rng.choice([1, 4, 8, 64, 96, 256, 300]),
             rng.choice([0, 1]), rng.choice([0, 1])) for _ in range(80)]


CASES = _conv_cases(random.Random(7)), _dw_cases(random.Random(8)), \
    _add_cases(random.Random(9)), _inplace_cases(random.Random(10))


def _rows(cases: list[tuple[int, ...]]) -> str:
    return ",\n".join("{" + ", ".join(map(str, c)) + "}" for c in cases)


def _out(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


def _program(conv, dw, add, inplace) -> str:
    return r"""
#include <stdio.h>
#include "ef_kernels.h"
#include "ef_inplace.h"
static const int C[][9] = {CONV};
static const int D[][6] = {DW};
static const int A[][4] = {ADD};
static const int I[][5] = {INPLACE};
int main(void)
{
    for (unsigned k = 0; k < sizeof C / sizeof C[0]; ++k) {
        const int *c = C[k];
        const int oh = (c[0] + 2 * c[7] - c[4]) / c[6] + 1, ow = (c[1] + 2 * c[8] - c[5]) / c[6] + 1;
        ef_dims in = {1, c[0], c[1], c[2]}, wd = {c[3], c[4], c[5], c[2]}, out = {1, oh, ow, c[3]};
        printf("conv %u %d %d %d\n", k, (int)ef_conv2d_s8_scratch_size(&in, &wd, &out),
               (int)ef_conv2d_1x1_s8_scratch_size(&in, &wd, &out),
               (int)ef_conv2d_shallow_s8_scratch_size(&in, &wd, &out));
    }
    for (unsigned k = 0; k < sizeof D / sizeof D[0]; ++k) {
        const int *d = D[k];
        const int oh = (d[0] + 2 * d[4] - 3) / d[3] + 1, ow = (d[1] + 2 * d[5] - 3) / d[3] + 1;
        ef_dims in = {1, d[0], d[1], d[2]}, out = {1, oh, ow, d[2]};
        ef_dw_params p = {0, 0, 1, {d[3], d[3]}, {d[4], d[5]}, {1, 1}, {-128, 127}};
        printf("dw %u %d\n", k, (int)ef_dwconv2d_3x3_s8_scratch_size(&p, &in, &out));
    }
    for (unsigned k = 0; k < sizeof A / sizeof A[0]; ++k) {
        const int *a = A[k];
        ef_dims y = {1, a[0], a[1], a[2]}, b = {1, 1, 1, a[3] ? 1 : a[2]};
        printf("add %u %d\n", k, (int)ef_add_s8_scratch_size(&y, a[3] ? &b : &y, &y));
    }
    for (unsigned k = 0; k < sizeof I / sizeof I[0]; ++k) {
        const int *c = I[k];
        ef_dims in = {1, c[0], c[1], c[2]};
        ef_dw_params p = {0, 0, 1, {1, 1}, {c[3], c[4]}, {1, 1}, {-128, 127}};
        printf("inplace %u %d %d\n", k, (int)ef_dwconv2d_inplace_s8_scratch_size(&p, &in),
               (int)ef_conv2d_1x1_inplace_s8_scratch_size(&in));
    }
    return 0;
}
""".replace("{CONV}", "{" + _rows(conv) + "}").replace("{DW}", "{" + _rows(dw) + "}") \
        .replace("{ADD}", "{" + _rows(add) + "}").replace("{INPLACE}", "{" + _rows(inplace) + "}")


@pytest.fixture(scope="module")
def c_sizes(tmp_path_factory) -> dict[str, dict[str, list[int]]]:
    """kernel set -> printed line key ("conv 3") -> sizes."""
    require("gcc")
    d = tmp_path_factory.mktemp("scratch_sizes")
    (d / "t.c").write_text(_program(*CASES))
    got = {}
    for isa, (src, defs) in SETS.items():
        exe = d / f"t_{isa}"
        r = subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", *defs,
                            "-I", str(INC), "-I", str(INC / "kernels" / "ref"), "-I", str(src),
                            str(d / "t.c"), *(str(src / f) for f in FILES + ENGINE.get(isa, [])),
                            "-o", str(exe)],
                           check=False, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-3000:]
        r = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60)
        got[isa] = {" ".join(ln.split()[:2]): [int(v) for v in ln.split()[2:]]
                    for ln in r.stdout.splitlines()}
    return got


def _graph(x: tuple[int, ...], y: tuple[int, ...], w: tuple[int, ...] | None = None,
           x2: tuple[int, ...] | None = None) -> Graph:
    g = Graph()
    g.add_tensor(Tensor("x", x, "int8"))
    g.add_tensor(Tensor("y", y, "int8"))
    if w is not None:
        g.const("w", np.ones(w, np.int8))    # all-zero 1x1 weights would run block-sparse
    if x2 is not None:
        g.add_tensor(Tensor("x2", x2, "int8"))
    return g


KERNEL_COLUMN = {"ef_conv2d_s8": 0, "ef_conv2d_1x1_s8": 1, "ef_conv2d_shallow_s8": 2}


@pytest.mark.parametrize("isa", list(SETS))
def test_conv_scratch_sizes_match_the_mirror(c_sizes, isa):
    kinds = set()
    for k, (h, w, cin, cout, kh, kw, s, pt, pl) in enumerate(CASES[0]):
        g = _graph((1, h, w, cin), (1, _out(h, kh, s, pt), _out(w, kw, s, pl), cout),
                   (cout, kh, kw, cin))
        node = Node(Op.CONV2D, ("x", "w"), ("y",),
                    Conv2dAttrs(stride=(s, s), pad=(pt, pl, pt, pl)))
        kern = scratch.conv_kernel(node, g)
        kinds.add(kern)
        want = c_sizes[isa][f"conv {k}"][KERNEL_COLUMN[kern]]
        assert scratch.conv2d_scratch(node, g, isa) == want, (isa, kern, CASES[0][k])
        gen = max(c_sizes[i][f"conv {k}"][KERNEL_COLUMN[kern]] for i in SETS)
        assert scratch.scratch_bytes(node, g) == gen
    assert kinds == set(KERNEL_COLUMN)            # the cases reach all three kernels
    if isa == "dsp":                              # and both sides of the engine's limits
        sizes = [v[0] for key, v in c_sizes[isa].items() if key.startswith("conv")]
        assert 0 in sizes and max(sizes) > 4 * 1000


@pytest.mark.parametrize("isa", list(SETS))
def test_depthwise_and_add_scratch_sizes_match_the_mirror(c_sizes, isa):
    for k, (h, w, c, s, pt, pl) in enumerate(CASES[1]):
        g = _graph((1, h, w, c), (1, _out(h, 3, s, pt), _out(w, 3, s, pl), c), (1, 3, 3, c))
        node = Node(Op.DWCONV2D, ("x", "w"), ("y",),
                    DwConv2dAttrs(stride=(s, s), pad=(pt, pl, pt, pl)))
        assert scratch.dw_kernel(node, g) == "ef_dwconv2d_3x3_s8"
        assert scratch.dwconv2d_scratch(node, g, isa) == c_sizes[isa][f"dw {k}"][0], CASES[1][k]
    for k, (h, w, c, bcast) in enumerate(CASES[2]):
        g = _graph((1, h, w, c), (1, h, w, c), x2=(1, 1, 1, 1) if bcast else (1, h, w, c))
        node = Node(Op.ADD, ("x", "x2"), ("y",), BinaryAttrs())
        assert scratch.addsub_scratch(node, g, isa) == c_sizes[isa][f"add {k}"][0], CASES[2][k]
    dw = [v[0] for key, v in c_sizes[isa].items() if key.startswith("dw")]
    add = [v[0] for key, v in c_sizes[isa].items() if key.startswith("add")]
    assert (0 in dw and max(dw) > 0) == (isa == "dsp") and (0 in add and 2048 in add)


@pytest.mark.parametrize("isa", list(SETS))
def test_inplace_scratch_sizes_match_the_mirror(c_sizes, isa):
    for k, (h, w, c, pt, pl) in enumerate(CASES[3]):
        g = _graph((1, h, w, c), (1, h, w, c), (1, 3, 3, c))
        node = Node(Op.DWCONV2D, ("x", "w"), ("y",), DwConv2dAttrs(pad=(pt, pl, 1, 1)))
        dw, pw = c_sizes[isa][f"inplace {k}"]
        assert scratch.dwconv2d_inplace_scratch(node, g, isa) == dw, CASES[3][k]
        g1 = _graph((1, h, w, c), (1, h, w, c), (c, 1, 1, c))
        node1 = Node(Op.CONV2D, ("x", "w"), ("y",), Conv2dAttrs())
        assert scratch.conv2d_1x1_inplace_scratch(node1, g1, isa) == pw, CASES[3][k]


def test_16x8_nodes_take_no_int8_kernel_scratch():
    """A node with int16 activations runs an ef_*_s16 kernel (no ctx): no arena scratch."""
    for dtype, want_some in (("int8", True), ("int16", False)):
        g = Graph()
        g.add_tensor(Tensor("x", (1, 8, 8, 16), dtype))
        g.add_tensor(Tensor("y", (1, 8, 8, 16), dtype))
        g.const("w", np.zeros((16, 3, 3, 16), np.int8))
        node = Node(Op.CONV2D, ("x", "w"), ("y",), Conv2dAttrs(pad=(1, 1, 1, 1)))
        assert (scratch.scratch_bytes(node, g) > 0) is want_some, dtype
