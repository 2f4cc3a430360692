"""Weight clustering (compile --cluster 16|4) and the C package's packed weights: a value
table + 4-/2-bit indices unpacked by ef_unpack_s8 into the node's arena scratch."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeforge.codegen.c import RUNTIME_C, pack_indices
from edgeforge.compress.cluster import cluster_values, kmeans_int8
from edgeforge.errors import EdgeforgeError
from tests.conftest import fixture, require

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _weights(seed: int, n: int, zeros: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.clip(np.round(rng.laplace(0, 25, n)), -127, 127).astype(np.int8)
    w[rng.random(n) < zeros] = 0
    return w


@pytest.mark.parametrize("k", [16, 4])
@pytest.mark.parametrize("zeros", [0.0, 0.5, 0.75])
def test_kmeans_keeps_k_values_and_pruned_zeros(k, zeros):
    w = _weights(k + int(zeros * 100), 2001, zeros)
    c = cluster_values(w, k)
    assert c.dtype == np.int8 and c.shape == w.shape
    assert np.unique(c).size <= k
    if zeros:
        assert (c[w == 0] == 0).all(), "a pruned zero moved"
    # each weight took its nearest centre
    centres = np.unique(c).astype(np.int64)
    near = centres[np.argmin(np.abs(w.astype(np.int64)[:, None] - centres[None]), axis=1)]
    assert np.array_equal(np.abs(near - w), np.abs(c.astype(np.int64) - w))
    # and the centres are worth having: better than a uniform grid of as many levels
    grid = np.round(np.linspace(w.min(), w.max(), k)).astype(np.int64)
    snapped = grid[np.argmin(np.abs(w.astype(np.int64)[:, None] - grid[None]), axis=1)]
    assert ((c.astype(np.int64) - w) ** 2).sum() <= ((snapped - w) ** 2).sum()


def test_kmeans_few_values_unchanged():
    w = np.array([3, -7, 3, 0, 0, 127, -128], np.int8)
    assert np.array_equal(cluster_values(w, 16), w)
    assert kmeans_int8(np.array([5, 5, 5], np.int8), 4).tolist() == [5]


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 97])
def test_pack_indices_layout(bits, n):
    rng = np.random.default_rng(n)
    table_vals = np.array([-90, -3, 0, 44] + ([7, 9, 11, 13, -1, -2, -5, -60, 60, 100, -127, 127]
                                              if bits == 4 else []), np.int8)
    w = rng.choice(table_vals, n).astype(np.int8)
    table, packed = pack_indices(w, bits)
    assert table.size == 1 << bits and packed.size == -(-n * bits // 8)
    idx = np.unpackbits(packed[:, None], axis=1, bitorder="little").reshape(-1, bits)
    idx = (idx * (1 << np.arange(bits))).sum(axis=1)[:n]
    assert np.array_equal(table[idx], w)


def test_unpack_kernel_matches_python(tmp_path):
    """ef_unpack_s8 (runtime/c/kernels/ref/unpack_s8.c) undoes pack_indices, odd lengths
    included, and refuses a bit width it does not know."""
    require("gcc")
    cases = []
    rng = np.random.default_rng(0)
    for bits in (4, 2):
        for n in (1, 3, 6, 7, 33):
            w = rng.choice(np.array([-128, -5, 0, 9, 127, 1, 2, 3][:1 << min(bits, 3)],
                                    np.int8), n).astype(np.int8)
            cases.append((bits, w, *pack_indices(w, bits)))

    def arr(a: np.ndarray) -> str:
        return ", ".join(str(int(v)) for v in a)
    body = []
    for k, (bits, w, table, packed) in enumerate(cases):
        body.append(f"{{ static const int8_t t[] = {{{arr(table)}}}; "
                    f"static const uint8_t p[] = {{{arr(packed)}}}; "
                    f"static const int8_t want[] = {{{arr(w)}}}; int8_t got[{w.size + 1}]; "
                    f"got[{w.size}] = 99; "
                    f"if (ef_unpack_s8(t, p, {w.size}, {bits}, got) != EF_OK) return 10 + {k}; "
                    f"if (memcmp(got, want, {w.size}) || got[{w.size}] != 99) return 100 + {k}; }}")
    src = tmp_path / "t.c"
    src.write_text('#include <string.h>\n#include "ef_kernels.h"\n'
                   "int main(void) {\n    int8_t o[4]; const int8_t t[4] = {0};\n"
                   "    const uint8_t p[1] = {0};\n"
                   "    if (ef_unpack_s8(t, p, 4, 3, o) != EF_ERR_ARG) return 1;\n    "
                   + "\n    ".join(body) + "\n    return 0;\n}\n")
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(RUNTIME_C),
                    "-I", str(RUNTIME_C / "kernels" / "ref"), str(src),
                    str(RUNTIME_C / "kernels" / "ref" / "unpack_s8.c"), "-o", str(exe)],
                   check=True)
    assert subprocess.run([str(exe)], check=False).returncode == 0


def _c_equals_reference(out: Path, n: int = 8) -> None:
    from edgeforge.codegen.host import CModel
    from edgeforge.frontends import load
    from edgeforge.runtime.reference import run
    g = load(out / "model.tflite")
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (n, *g.tensors[g.inputs[0]].shape), dtype=np.int8)
    ys = CModel(out).run_batch([x])
    for i in range(n):
        ref = run(g, [x[i]], numerics="tflm")[g.outputs[0]]
        assert np.array_equal(ys[0][i].ravel(), ref.ravel()), f"sample {i}"


@pytest.mark.slow
def test_cluster_compile_packs_weights_c_equals_reference(tmp_path):
    """digits_residual (MobileNetV2-style) at 50% magnitude sparsity + 16 values: the
    conv / depthwise / FC weights are stored packed at <= 0.55x their int8 bytes, the report
    gives each layer's flash, and the C package's outputs equal the reference's bytes."""
    require("gcc")
    from edgeforge.compiler import compile_model
    res = compile_model(DIGITS / "digits_residual.onnx", tmp_path / "c16",
                        calib=DIGITS / "calib.npz", prune=0.5, cluster=16)
    rep = res.report["cluster"]
    assert rep["k"] == 16 and len(rep["layers"]) >= 10
    assert all(r["values"] <= 16 and r["bits"] == 4 for r in rep["layers"])
    assert all(r["saved_bytes"] > 0 for r in rep["layers"] if r["dense_bytes"] >= 64)
    assert rep["stored_bytes"] <= 0.55 * rep["dense_bytes"]
    assert rep["output_sqnr_db"]["after"] > 20          # measured 32.8 dB (46.6 before)
    assert res.summary()["cluster"]["saved_bytes"] == rep["saved_bytes"]
    drop = rep["output_sqnr_db"]["before"] - rep["output_sqnr_db"]["after"]
    assert ("warnings" in res.summary()["cluster"]) == (drop > 6.0)
    model_c = (tmp_path / "c16" / "c" / "model.c").read_text()
    # conv / depthwise unpack before their kernel; the FC unpacks its rows in chunks
    assert model_c.count("ef_unpack_s8(") + model_c.count("ef_fc_lut_s8(") == \
        len(rep["layers"])
    assert model_c.count("ef_fc_lut_s8(") == 1 and "ef_fc_packed_s8(" not in model_c
    _c_equals_reference(res.dir)


def test_cluster_4_on_an_int8_tflite_c_equals_reference(tmp_path):
    """An int8 .tflite (MLPerf Tiny KWS) clustered to 4 values (2-bit indices): the C
    package equals the reference, and an unclustered compile unpacks nothing."""
    require("gcc")
    from edgeforge.compiler import compile_model
    src = fixture("kws_ds_cnn_int8.tflite")
    res = compile_model(src, tmp_path / "c4", cluster=4)
    rep = res.report["cluster"]
    assert all(r["values"] <= 4 and r["bits"] == 2 for r in rep["layers"])
    assert rep["stored_bytes"] <= 0.3 * rep["dense_bytes"]
    _c_equals_reference(res.dir, n=4)
    plain = compile_model(src, tmp_path / "plain")
    assert "cluster" not in plain.report
    assert "ef_unpack_s8" not in (tmp_path / "plain" / "c" / "model.c").read_text()
    assert not (tmp_path / "plain" / "model_tflm_lut.tflite").exists()
    assert "cluster" not in plain.summary()
    assert plain.report["c"]["const_bytes"] > res.report["c"]["const_bytes"]


def test_cluster_refuses_other_k(tmp_path):
    from edgeforge.compiler import compile_model
    with pytest.raises(EdgeforgeError, match="--cluster 8"):
        compile_model(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "x", cluster=8)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("k", [16, 4])
def test_tflm_reads_the_lut_compressed_tflite(k, tmp_path):
    """--cluster also writes DIR/model_tflm_lut.tflite: the clustered weights in TFLM's LUT
    compression (COMPRESSION_METADATA, index bits packed high to low, a value table per
    quantization channel). tflite-micro's interpreter (built with compression) decodes it to
    the reference's bytes; it is smaller than model.tflite; a corrupted value table changes
    the outputs (so TFLM really reads the tables, not raw weights)."""
    require("tflite_micro")
    import edgeforge.codegen.tflite as T
    from edgeforge.compiler import TFLM_LUT_FILE, compile_model
    from edgeforge.frontends import load
    from edgeforge.plan.scratch import packed_bits
    from edgeforge.runtime.peers import TflmRunner
    from edgeforge.runtime.reference import run
    res = compile_model(fixture("kws_ds_cnn_int8.tflite"), tmp_path / "d", cluster=k)
    path = res.dir / TFLM_LUT_FILE
    rep = res.report["cluster"]
    assert rep["tflm_lut_tflite_bytes"] == path.stat().st_size < rep["tflite_bytes"]
    g = load(res.dir / "model.tflite")
    x = np.random.default_rng(k).integers(-128, 128, (3, *g.tensors[g.inputs[0]].shape),
                                           dtype=np.int8)
    tflm = TflmRunner(path)
    for i in range(len(x)):
        assert np.array_equal(tflm.run([x[i]])[0].ravel(),
                              run(g, [x[i]], numerics="tflm")[g.outputs[0]].ravel()), i
    g.meta["cluster"] = k
    lut = {n.inputs[1]: packed_bits(n, g) for n in g.nodes if packed_bits(n, g)}
    good = T.tflite_bytes(g, lut=lut)
    assert len(good) < len(T.tflite_bytes(g))
    real = T.tflm_lut

    def corrupt(w, bits, axis):
        p = real(w, bits, axis)
        return None if p is None else (p[0], bytes((256 - b) % 256 for b in p[1]), p[2])
    T.tflm_lut = corrupt
    try:
        bad = T.tflite_bytes(g, lut=lut)
    finally:
        T.tflm_lut = real
    ys = [TflmRunner(bad).run([x[i]])[0] for i in range(len(x))]
    assert any(not np.array_equal(y.ravel(), run(g, [x[i]], numerics="tflm")[g.outputs[0]]
                                  .ravel()) for i, y in enumerate(ys))


@pytest.mark.parametrize("axis,shape,few", [(0, (8, 5, 5, 16), False), (3, (1, 7, 7, 8), False),
                                            (0, (4, 1, 1, 64), True), (3, (1, 4, 4, 8), True)])
def test_tflm_lut_layouts(axis, shape, few):
    """tflm_lut's two per-channel layouts (the tensor's table repeated, 4 bits; each
    channel's own 2 values, 1 bit) decode back to the weights (the inverse of TFLM's
    decoder: channel c's index i -> table[c * stride + i])."""
    from edgeforge.codegen.tflite import tflm_lut
    rng = np.random.default_rng(axis)
    w = cluster_values(rng.integers(-127, 128, shape).astype(np.int8), 16).reshape(shape)
    if few:             # each channel holds 2 of the tensor's 16 values
        w = np.moveaxis(w, axis, 0).copy()
        for c in range(w.shape[0]):
            w[c] = np.where(rng.random(w[c].shape) < 0.5, w[c].flat[0], w[c].flat[1])
        w = np.moveaxis(w, 0, axis)
    packed, tables, bits = tflm_lut(w, 4, axis)
    assert bits == (1 if few else 4)
    ch = w.shape[axis]
    stride = len(tables) // ch
    bitsarr = np.unpackbits(np.frombuffer(packed, np.uint8))
    n = w.size
    idx = (bitsarr[:n * bits].reshape(n, bits) * (1 << np.arange(bits - 1, -1, -1))).sum(1)
    tab = np.frombuffer(tables, np.int8).reshape(ch, stride)
    chan = np.moveaxis(np.broadcast_to(np.arange(ch).reshape(
        [-1 if d == axis else 1 for d in range(4)]), shape), 0, 0).ravel()
    assert np.array_equal(tab[chan, idx], w.ravel())


def test_cluster_ram_budget_keeps_the_arena(tmp_path):
    """Packed weights unpack into the arena; with a RAM budget (here 0: no growth at all)
    only the layers whose unpacked bytes fit beside the live tensors stay packed, the arena
    is the plain compile's, and the C package still equals the reference."""
    require("gcc")
    from edgeforge.compiler import compile_model
    src = fixture("kws_ds_cnn_int8.tflite")
    plain = compile_model(src, tmp_path / "plain")
    free = compile_model(src, tmp_path / "free", cluster=16)
    tight = compile_model(src, tmp_path / "tight", cluster=16, ram_budget=0)
    assert free.report["arena"]["bytes"] > plain.report["arena"]["bytes"]
    assert tight.report["arena"]["bytes"] == plain.report["arena"]["bytes"]
    layers = tight.report["cluster"]["layers"]
    assert any(r["bits"] for r in layers) and any(not r["bits"] for r in layers)
    assert all("stored" in r for r in layers if not r["bits"])
    assert 0 < tight.report["cluster"]["saved_bytes"] < free.report["cluster"]["saved_bytes"]
    _c_equals_reference(tight.dir, n=2)


@pytest.mark.parametrize("k", [16, 4])
def test_packed_fc_unpacks_rows_in_chunks(k, tmp_path):
    """A packed FC (ef_fc_lut_s8) unpacks FC_LUT_CHUNK_BYTES of weight rows at a time, so a
    big FC layer does not need its whole matrix in the arena; chunks that start mid-byte
    (odd C_IN at 4 bits) take the per-index path. C equals the reference."""
    require("gcc")
    from edgeforge.codegen.tflite import write_tflite
    from edgeforge.compiler import compile_model
    from edgeforge.ir import FcAttrs, Graph, Node, Op, QuantParams, Tensor
    from edgeforge.plan.scratch import FC_LUT_CHUNK_BYTES
    rng = np.random.default_rng(k)
    cin, cout = 409, 23          # 5 rows a chunk: chunks 2, 4 start mid-byte
    t = {"x": Tensor("x", (3, cin), "int8", QuantParams([0.05], [-3])),
         "w": Tensor("w", (cout, cin), "int8", QuantParams([0.01], [0]),
                     rng.integers(-127, 128, (cout, cin)).astype(np.int8)),
         "b": Tensor("b", (cout,), "int32", QuantParams([0.0005], [0]),
                     rng.integers(-2000, 2000, cout).astype(np.int32)),
         "y": Tensor("y", (3, cout), "int8", QuantParams([0.4], [5]))}
    g = Graph(t, [Node(Op.FC, ("x", "w", "b"), ("y",), FcAttrs())], ["x"], ["y"], "fc")
    src = write_tflite(g, tmp_path / "fc.tflite")
    res = compile_model(src, tmp_path / "d", cluster=k)
    model_c = (tmp_path / "d" / "c" / "model.c").read_text()
    assert "ef_fc_lut_s8(" in model_c
    assert res.report["arena"]["bytes"] < cin * cout
    assert res.report["cluster"]["stored_bytes"] < 0.55 * cin * cout
    assert (FC_LUT_CHUNK_BYTES // cin) * cin * 4 % 8 != 0
    _c_equals_reference(res.dir, n=3)


def test_cluster_cli(tmp_path):
    """`edgeforge compile --cluster 4 --json` as a user runs it: the summary's cluster bytes,
    the LUT .tflite beside model.tflite, `run --backend c` equal to the reference on the
    sample input; an unknown K is refused (exit 2) with nothing written."""
    import json
    import sys
    require("gcc")
    ef = [sys.executable, "-m", "edgeforge.cli"]
    out = tmp_path / "kws"
    r = subprocess.run([*ef, "compile", str(fixture("kws_ds_cnn_int8.tflite")), "-o", str(out),
                        "--cluster", "4", "--json"], capture_output=True, text=True,
                       check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["cluster"]
    assert s["k"] == 4 and 0 < s["stored_bytes"] < s["dense_bytes"]
    assert (out / "model_tflm_lut.tflite").stat().st_size == s["tflm_lut_tflite_bytes"]
    x = np.load(fixture("kws_ds_cnn_sample_inputs_int8.npy")).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    ys = []
    for backend in ("c", "reference"):
        r = subprocess.run([*ef, "run", str(out), "-i", str(tmp_path / "x.npy"), "--backend",
                            backend, "-o", str(tmp_path / f"{backend}.npy")],
                           capture_output=True, text=True, check=False, timeout=300)
        assert r.returncode == 0, r.stderr
        ys.append(np.load(tmp_path / f"{backend}.npy"))
    assert np.array_equal(ys[0], ys[1])
    r = subprocess.run([*ef, "compile", str(fixture("kws_ds_cnn_int8.tflite")), "-o",
                        str(tmp_path / "bad"), "--cluster", "8"], capture_output=True,
                       text=True, check=False, timeout=300)
    assert r.returncode == 2 and "--cluster" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cluster_reports_accuracy_on_labelled_val_data(tmp_path, caplog):
    """compile --cluster K --val-data V (labels): the cluster step reports int8 accuracy
    before and after on V, and warns (in report.json and the log) past one point; with
    labels the accuracy decides, so --cluster 16 (no loss) does not warn on SQNR alone."""
    from edgeforge.compiler import compile_model
    got = {}
    for k in (16, 4):
        res = compile_model(DIGITS / "digits_residual.onnx", tmp_path / f"k{k}",
                            calib=DIGITS / "calib.npz", cluster=k,
                            val_data=DIGITS / "val.npz")
        got[k] = res.report["cluster"]
        assert set(got[k]["accuracy"]) == {"before", "after", "data"}
    assert got[16]["accuracy"]["before"] - got[16]["accuracy"]["after"] <= 0.01
    assert not got[16].get("warnings")
    acc = got[4]["accuracy"]
    assert acc["after"] < acc["before"] - 0.5                  # 100% -> 15% measured
    assert any("points of int8 accuracy" in w for w in got[4]["warnings"])
    assert "points of int8 accuracy" in caplog.text
