"""`make bench`: run every bench_*.py module in name order; each prints its own figures."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> None:
    """Run the benchmarks named on the command line, or all of them."""
    names = sys.argv[1:] or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n== {name} ==", flush=True)
        module.main()


if __name__ == "__main__":
    main()
