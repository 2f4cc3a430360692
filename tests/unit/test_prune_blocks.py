"""--prune-blocks: magnitude pruning of whole 4x4 FC weight blocks (smallest L2 norm), so the
zeros line up for the block-sparse kernel (ef_fc_bsr_s8) that codegen then picks."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeforge.compress.prune import BLOCK, PruneError, block_prune, compress
from edgeforge.frontends import load
from tests.conftest import ROOT, require
from tests.unit.test_cluster import _c_equals_reference

DIGITS = ROOT / "examples" / "digits"


@pytest.mark.parametrize("shape", [(12, 20), (10, 64), (1, 8)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.75])
def test_block_prune_drops_the_smallest_blocks(shape, sparsity):
    rng = np.random.default_rng(shape[0])
    w = rng.normal(0, 1, shape).astype(np.float32)
    out = block_prune(w, sparsity)
    pad = np.pad(out, ((0, -shape[0] % BLOCK), (0, 0)))
    blocks = pad.reshape(pad.shape[0] // BLOCK, BLOCK, -1, BLOCK).transpose(0, 2, 1, 3)
    zero = ~blocks.any(axis=(2, 3)).ravel()
    assert zero.sum() == int(sparsity * zero.size)
    kept = out != 0
    assert np.array_equal(out[kept], w[kept])          # the rest untouched
    src = np.pad(w, ((0, -shape[0] % BLOCK), (0, 0)))
    norms = np.sqrt((src.reshape(-1, BLOCK, blocks.shape[1], BLOCK) ** 2).sum(axis=(1, 3)))
    if zero.any() and (~zero).any():
        assert norms.ravel()[zero].max() <= norms.ravel()[~zero].min()


def test_prune_blocks_needs_prune():
    g = load(DIGITS / "digits.onnx")
    with pytest.raises(PruneError, match="--prune-blocks"):
        compress(g, prune_blocks=True)


def test_prune_blocks_compile_uses_the_sparse_kernel(tmp_path):
    """The zoo's FC autoencoder with --prune 0.75 --prune-blocks through the CLI: its inner
    FC layers keep a quarter of their blocks and run ef_fc_bsr_s8, the output layer stays
    dense (whole blocks of it cost the most), the C package has fewer constant bytes than a
    plain --prune 0.75, and its outputs equal the reference."""
    require("gcc")
    zoo = ROOT / "tests" / "zoo" / "models"
    consts = {}
    for extra in ([], ["--prune-blocks"]):
        out = tmp_path / ("blocks" if extra else "plain")
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile",
                            str(zoo / "ad_autoencoder.onnx"), "-o", str(out), "--calib",
                            str(zoo / "ad_autoencoder_calib.npz"), "--prune", "0.75",
                            "--no-distill", *extra],
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        model_c = (out / "c" / "model.c").read_text()
        fcs = model_c.count("ef_fc_bsr_s8(")
        assert (fcs > 0) == bool(extra)
        consts[bool(extra)] = json.loads((out / "report.json").read_text())["c"]["const_bytes"]
        if extra:                   # every FC but the output layer
            g = load(out / "model.tflite")
            assert fcs == sum(n.op.value == "FC" for n in g.nodes) - 1, fcs
    assert consts[True] < consts[False], consts
    _c_equals_reference(tmp_path / "blocks", n=3)


def test_prune_blocks_spares_the_classifier_and_small_pointwise_convs():
    """digits_residual, --prune 0.75 blocks: its 1x1 convs with C_IN 72 lose whole 4x4 blocks
    (they then run ef_fc_bsr_s8), those with C_IN <= 48 only single weights (there the dense
    engine is faster anyway), and the classifier FC keeps every weight."""
    from edgeforge.compress.prune import bsr_conv_density, magnitude_prune
    from edgeforge.ir import Op
    g = load(DIGITS / "digits_residual.onnx")
    out = magnitude_prune(g, sparsity=0.75, blocks=True)
    blocked = 0
    for n in out.nodes:
        w = out.tensors[n.inputs[1]].data if n.op in (Op.CONV2D, Op.FC) else None
        if w is None:
            continue
        w2 = w.reshape(w.shape[0], -1)
        pad = np.pad(w2, ((0, -w2.shape[0] % BLOCK), (0, -w2.shape[1] % BLOCK)))
        nz = pad.reshape(pad.shape[0] // BLOCK, BLOCK, -1, BLOCK).any(axis=(1, 3))
        if n.op == Op.FC:
            assert np.array_equal(w, g.tensors[n.inputs[1]].data)        # the classifier
        elif w.shape[1:3] == (1, 1) and 0.25 <= bsr_conv_density(w.shape[3]):
            assert nz.mean() <= 0.25
            blocked += 1
        else:
            assert nz.mean() > 0.5                                       # weights, not blocks
    assert blocked >= 2
