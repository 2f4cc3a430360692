"""`edgeforge compile MODEL -o DIR`: edgeforge.api.compile, then a per-op table (or --json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeforge import api
from edgeforge.manifest import Manifest


def main(args: Any) -> int:
    summary = api.compile(args.model, args.out, calib=args.calib, board=args.board,
                          numerics=args.numerics, name=args.name,
                          observer=getattr(args, "observer", None),
                          per_channel=not getattr(args, "per_tensor", False),
                          prune=getattr(args, "prune", None),
                          prune_channels=getattr(args, "prune_channels", None),
                          distill=getattr(args, "distill", None),
                          val_data=getattr(args, "val_data", None),
                          max_sqnr_drop=getattr(args, "max_sqnr_drop", None),
                          min_accuracy=getattr(args, "min_accuracy", None),
                          target_macs=getattr(args, "target_macs", None),
                          target_flash=getattr(args, "target_flash", None),
                          verbose=getattr(args, "verbose", 0),
                          activations=getattr(args, "activations", "int8"),
                          ram_budget=getattr(args, "ram_budget", None),
                          cluster=getattr(args, "cluster", None),
                          prune_blocks=getattr(args, "prune_blocks", False))
    if args.json:
        print(json.dumps(summary, indent=1, default=_np_default))
    else:
        _print_table(Path(summary["dir"]))
    return 0


def _print_table(directory: Path) -> None:
    """The compiled DIR's report.json and manifest as a table."""
    from rich.table import Table

    rep = json.loads((directory / "report.json").read_text())
    m = Manifest.load(directory)
    t = Table(title=f"{m.name}: {len(m.ops)} ops, numerics {m.numerics}")
    cols = ["#", "op", "output", "MACs", "weights", "act bytes", "arena hw"]
    if "sqnr" in rep:
        cols.append("SQNR dB")
    if "precision" in rep:
        cols.append("act")
    for col in cols:
        t.add_column(col, justify="right" if col not in ("op", "output") else "left")
    steps = rep["arena"]["per_step"]
    for row, st in zip(rep["ops"], steps):
        cells = [str(row["index"]), row["op"], "x".join(map(str, row["outputs"][0])),
                 f"{row['macs']:,}", f"{row['weight_bytes']:,}",
                 f"{row['activation_bytes']:,}", f"{st.get('high_water', 0):,}"]
        if "sqnr" in rep:
            db = row.get("sqnr_db")       # report.json writes +/-inf as a string
            cells.append("-" if db is None else db if isinstance(db, str) else f"{db:.1f}")
        if "precision" in rep:
            cells.append(row.get("precision", "-"))
        t.add_row(*cells)
    from edgeforge.cli import console
    from edgeforge.codegen.visual import arena_wording
    con = console()
    con.print(t)
    con.print(f"{arena_wording(m.arena_bytes, m.arena_lower_bound_bytes)}, "
              f"weights {m.weight_bytes:,} B, MACs {rep['totals']['macs']:,}")
    from pathlib import Path
    names = sorted(p.name + "/" * p.is_dir() for p in Path(directory).iterdir())
    con.print(f"wrote {directory}/ ({', '.join(names)}); model sha256 {m.model_sha256[:16]}")


def _np_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)
