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
    """digits (FC 512 -> 10) with --prune 0.75 --prune-blocks through the CLI: the FC keeps a
    quarter of its blocks, the C package calls ef_fc_bsr_s8 with fewer constant bytes than a
    plain --prune 0.75, and its outputs equal the reference."""
    require("gcc")
    consts = {}
    for extra in ([], ["--prune-blocks"]):
        out = tmp_path / ("blocks" if extra else "plain")
        r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile",
                            str(DIGITS / "digits.onnx"), "-o", str(out), "--calib",
                            str(DIGITS / "calib.npz"), "--prune", "0.75", "--no-distill",
                            *extra], capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        model_c = (out / "c" / "model.c").read_text()
        assert ("ef_fc_bsr_s8(" in model_c) == bool(extra)
        consts[bool(extra)] = json.loads((out / "report.json").read_text())["c"]["const_bytes"]
    assert consts[True] < consts[False] - 3000         # 5,120 B FC weights -> ~1.5 KB
    _c_equals_reference(tmp_path / "blocks")
    r = subprocess.run([sys.executable, "-m", "edgeforge.cli", "compile",
                        str(DIGITS / "digits.onnx"), "-o", str(tmp_path / "bad"),
                        "--prune-blocks"], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--prune-blocks" in r.stderr
    assert not (tmp_path / "bad").exists()
