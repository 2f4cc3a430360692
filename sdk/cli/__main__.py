"""`python -m edgeforge.cli ...` is the `edgeforge` command."""
import sys

from edgeforge.cli import main

sys.exit(main())
