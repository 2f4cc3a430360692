"""`edgeforge validate MODEL_OR_DIR --data D.npz [--target URI] [--json]`: edgeforge.api.validate,
printed as plain lines."""
from __future__ import annotations

import json
import math
from typing import Any

from edgeforge import api


def _num(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def _matrix(m: list[list[int]]) -> list[str]:
    w = max(len(str(v)) for row in m for v in row)
    w = max(w, len(str(len(m) - 1)))
    head = " " * (w + 5) + " ".join(f"{c:>{w}}" for c in range(len(m)))
    return [head] + [f"  {r:>{w}} | " + " ".join(f"{v:>{w}}" for v in row)
                     for r, row in enumerate(m)]


def render(r: dict[str, Any]) -> list[str]:
    """The report as plain lines (no wrapping, no colour: safe to pipe)."""
    src = f" (float model {r['float_model']})" if r["float_model"] else " (no float model)"
    out = [(f"{r['model']}: {r['samples']} samples, output {r['output']} ({r['task']}), "
            f"{r.get('quantized', 'int8')} numerics {r['numerics']}{src}")]
    for name, c in r["comparisons"].items():
        line = (f"{name} vs {c['vs']}: SQNR {_num(c['sqnr_db'])} dB, RMSE {_num(c['rmse'])}, "
                f"MAE {_num(c['mae'])}, cosine {c['cosine']:.6f}")
        if "top1_agreement" in c:
            line += f", top-1 agreement {c['top1_agreement']:.1%}"
        out.append(line)
    d = r.get("device")
    if d:
        out.append(f"device {d['target']}: {d['byte_equal_samples']}/{r['samples']} samples "
                   f"byte-equal to the host {r.get('quantized', 'int8')} reference "
                   f"({d['numerics']})")
    for name, v in (r.get("vs_labels") or {}).items():
        if "accuracy" in v:
            out.append(f"{name} accuracy vs labels: {v['accuracy']:.2%}")
        else:
            out.append(f"{name} vs labels: RMSE {_num(v['rmse'])}, MAE {_num(v['mae'])}")
    conf = {k: v["confusion"] for k, v in (r.get("vs_labels") or {}).items() if "confusion" in v}
    title = "rows: label, columns: predicted"
    if not conf and r.get("confusion_vs_float"):
        conf, title = r["confusion_vs_float"], "rows: float top-1, columns: predicted"
    for name, m in conf.items():
        if len(m) <= 20:
            out += [f"confusion matrix, {name} ({title}):", *_matrix(m)]
    dis = r["disagreements"]
    out.append(f"disagreeing samples: {len(dis)}" + (" (first 50)" if len(dis) >= 50 else ""))
    for row in dis:
        extra = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("sample", "why"))
        out.append(f"  sample {row['sample']}: {', '.join(row['why'])}  {extra}".rstrip())
    return out


def _finite(x: Any) -> Any:
    """JSON has no Infinity: an infinite SQNR (identical outputs) is written as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def main(args: Any) -> int:
    opts = {k: getattr(args, k) for k in ("identity", "known_hosts", "accept_new_host_key")
            if getattr(args, k, None)}
    r = api.validate(args.model, args.data, target=args.target, calib=args.calib,
                     numerics=args.numerics, **opts)
    if args.json:
        print(json.dumps(_finite(r), default=str))
    else:
        print("\n".join(render(r)))
    return 0
