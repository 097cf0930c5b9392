"""List and roll back published model versions.

    python -m lib.versions list monailabel_app/model/ct_organs
    python -m lib.versions rollback monailabel_app/model/ct_organs 3

A rollback republishes the chosen version as the newest one; a running server serves it from the
next request on (it checks for a newer version on every inference).
"""

from __future__ import annotations

import argparse
import sys

import torch

from lib.io.model_store import ModelStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list").add_argument("dir")
    rollback = sub.add_parser("rollback")
    rollback.add_argument("dir")
    rollback.add_argument("version", type=int)
    args = parser.parse_args(argv)
    store = ModelStore(args.dir)
    if args.command == "list":
        for version in store.versions():
            meta = torch.load(store.path(version), map_location="cpu", weights_only=True).get("meta", {})
            dice, source = meta.get("best_dice", "-"), meta.get("source", "training")
            print(f"v{version:04d}  best_dice={dice}  source={source}")
        return 0
    try:
        print(f"republished v{args.version:04d} as v{store.rollback(args.version):04d}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
