"""model_qdq.onnx in onnxruntime against our int8 reference, per model and numerics profile.

    python benchmarks/qdq_fidelity.py [MODEL ...] [--numerics tflm litert single] [--json]

Default models: the MLPerf Tiny fixtures, the ONNX zoo (tests/zoo/models) and the Keras zoo
(tests/zoo/keras), HEAVY zoo models left out (minutes to compile). Each is compiled under each
profile; the same measure as tests/unit/test_qdq_onnx.py on at least 320 output elements:
e2e = share of output elements within 1 LSB end to end, layerwise / exact = every node fed the
reference's inputs (within 1 LSB / bit-exact), top1 = inputs whose top class agrees.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit import test_qdq_onnx as qdq  # the test's own measure
from tests.zoo.test_zoo import HEAVY


def default_models() -> list[Path]:
    mlperf = sorted((ROOT / "tests/fixtures/mlperf_tiny").glob("*_int8.tflite"))
    zoo = [*sorted(qdq.ZOO.glob("*.onnx")), *sorted(qdq.KERAS.glob("*.tflite"))]
    return mlperf + [p for p in zoo if p.stem not in HEAVY]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--numerics", nargs="+", default=list(qdq.NUMERICS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qdq-fidelity-") as root:
        for path in args.models or default_models():
            for numerics in args.numerics:
                t0 = time.perf_counter()
                res = qdq._compiled(str(path.resolve()), root, numerics)
                row = {"model": f"{path.parent.name}/{path.stem}", "numerics": numerics}
                if "error" in res.report["qdq_onnx"]:
                    row["error"] = res.report["qdq_onnx"]["error"]
                else:
                    row.update({k: round(v, 4) for k, v in
                                qdq._measure(res, path.resolve()).items()})
                row["seconds"] = round(time.perf_counter() - t0, 1)
                rows.append(row)
                if not args.json:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
