"""`edgeforge report DIR [-o report.html]`: edgeforge.api.html_report, then where it wrote."""
from __future__ import annotations

import json
from typing import Any

from edgeforge import api


def main(args: Any) -> int:
    r = api.html_report(args.dir, args.out)
    if args.json:
        print(json.dumps(r))
    else:
        drawn = ", ".join(r["sections"])
        print(f"wrote {r['path']} ({r['bytes']:,} B: {drawn})")
        if r["profile"] is None:
            print("no profile of this DIR yet: `edgeforge profile DIR` adds per-op bars")
    return 0
