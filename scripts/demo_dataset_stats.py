"""Recompute the bundled demo dataset's statistics and keep its README in sync.

Run from a checkout:
    python scripts/demo_dataset_stats.py            # print the Markdown statistics block
    python scripts/demo_dataset_stats.py --json     # print the raw statistics as JSON
    python scripts/demo_dataset_stats.py --write    # rewrite the block in harness_ext/resources/demo/README.md
    python scripts/demo_dataset_stats.py --check    # exit 1 if that block is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Run as a plain script from a checkout: make the package importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness_ext.core.artifacts import atomic_write_text  # noqa: E402
from harness_ext.data import demo as demo_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the statistics block."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="demo folder (default: the bundled one)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print the statistics as JSON")
    mode.add_argument("--write", action="store_true", help="update the README block in place")
    mode.add_argument("--check", action="store_true", help="fail if the README block is out of date")
    args = parser.parse_args(argv)

    folder = args.dir or demo_data.demo_dir()
    stats = demo_data.dataset_stats(folder)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    block = demo_data.render_stats_markdown(stats)
    if not (args.write or args.check):
        print(block)
        return 0
    readme = folder / "README.md"
    current = readme.read_text(encoding="utf-8")
    updated = demo_data.replace_stats_block(current, block)
    if args.check:
        if updated != current:
            print(f"{readme}: statistics are stale; run python scripts/demo_dataset_stats.py --write", file=sys.stderr)
            return 1
        print(f"{readme}: statistics are up to date")
        return 0
    atomic_write_text(readme, updated)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
