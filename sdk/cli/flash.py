"""`edgeforge flash DIR --board B [--port P]`: edgeforge.api.flash, one line of outcome."""
from __future__ import annotations

from typing import Any

from edgeforge import api


def main(args: Any) -> int:
    r = api.flash(args.dir, args.board, args.port)
    if r["flashed"]:
        print(f"flashed {args.dir} onto {args.board}: {' '.join(r['command'])}")
    else:
        print(f"{args.board}: nothing to flash ({r['note']})")
    return 0
