"""`compile` writes our non-overlapping arena plan into model.tflite as TFLM's
"OfflineMemoryAllocation" metadata (micro_allocation_info.cc: int32 [version, subgraphs, n,
one offset per tensor], -1 = TFLM plans it). Checked from the written file alone: the
header, -1 for every weight, 16-byte aligned offsets, no two tensors TFLM holds at once
(its lifetimes: from the op that writes a tensor to the last op that reads it, graph
inputs from the start, outputs to the end) sharing a byte except a RESHAPE's view; and
tflite-micro's own interpreter runs the file byte-equal with and without the metadata, in
an arena head no larger than our plan (TFLM honours the offsets).
"""
from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from edgeforge.codegen.tflite import OFFLINE_METADATA
from edgeforge.compiler import compile_model
from edgeforge.frontends import load
from edgeforge.frontends.tflite import schema
from edgeforge.plan.memory import tflm_offline_plan
from edgeforge.runtime import reference
from edgeforge.runtime.peers import run_tflm, tflm_arena_bytes
from tests.conftest import ROOT, fixture

MODELS = {"kws": fixture("kws_ds_cnn_int8.tflite"),
          "fc_autoencoder": ROOT / "tests" / "models" / "fc_autoencoder_int8.tflite"}


def _model(data: bytes):
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _words(m) -> np.ndarray:
    meta = [x for x in m.metadata or [] if x.name == OFFLINE_METADATA.encode()]
    assert len(meta) == 1
    return np.frombuffer(bytes(m.buffers[meta[0].buffer].data), "<i4")


def _without_metadata(data: bytes) -> bytes:
    m = _model(data)
    m.metadata = None
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="module", params=sorted(MODELS))
def compiled(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param) / "out"
    compile_model(MODELS[request.param], d)
    return d / "model.tflite"


def test_offline_plan_header_and_offsets(compiled):
    m = _model(compiled.read_bytes())
    sg = m.subgraphs[0]
    w = _words(m)
    version, subgraphs, n = (int(v) for v in w[:3])
    assert (version, subgraphs, n) == (1, 1, len(sg.tensors)) and len(w) == 3 + n
    offs = w[3:]
    for i, t in enumerate(sg.tensors):
        if m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data):
            assert offs[i] == -1, f"weight tensor {i} got an offset"
    planned = [i for i in range(n) if offs[i] >= 0]
    assert planned and all(offs[i] % 16 == 0 for i in planned)
    # TFLM's lifetimes, from the file: op k writes at scope k + 1, inputs exist at scope 0
    life = {int(i): [0, 0] for i in sg.inputs}
    nops = len(sg.operators)
    views = set()
    for k, op in enumerate(sg.operators):
        for i in op.inputs:
            if i >= 0 and i in life:
                life[i][1] = k + 1
        for o in op.outputs:
            life[o] = [k + 1, k + 1]
        name = schema.BuiltinOperator
        if m.operatorCodes[op.opcodeIndex].builtinCode == name.RESHAPE:
            views.add((int(op.inputs[0]), int(op.outputs[0])))
    for o in sg.outputs:
        life[int(o)][1] = nops + 1
    assert set(planned) <= set(life)

    def nbytes(i: int) -> int:
        return int(np.prod(sg.tensors[i].shape)) * 1   # int8 activations

    for a in planned:
        for b in planned:
            if a >= b or (a, b) in views or (b, a) in views:
                continue
            if life[a][0] <= life[b][1] and life[b][0] <= life[a][1]:
                assert (offs[a] + nbytes(a) <= offs[b] or offs[b] + nbytes(b) <= offs[a]), \
                    f"tensors {a} and {b} are live together and share bytes"


def test_tflm_runs_the_file_byte_equal_with_the_metadata(compiled):
    g = load(compiled)
    data = compiled.read_bytes()
    rng = np.random.default_rng(3)
    x = [rng.integers(-128, 128, g.tensors[i].shape).astype(np.int8) for i in g.inputs]
    with_meta = run_tflm(data, x)
    plain = run_tflm(_without_metadata(data), x)
    want = reference.run(g, x)
    for k, name in enumerate(g.outputs):
        assert with_meta[k].tobytes() == plain[k].tobytes()
        assert with_meta[k].tobytes() == np.asarray(want[name], np.int8).tobytes()
    # TFLM places the tensors where the metadata says: its head is our plan's size
    ours = tflm_offline_plan(g)
    assert tflm_arena_bytes(data)["head"] <= max(ours.arena_size, 16)
