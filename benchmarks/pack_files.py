"""A stand-alone pack of a folder with studypack's bundle writer (no trace, no
environment step): the same files `tar -cf - FOLDER | zstd` packs.

    python pack_files.py FOLDER OUT.studypack [--level N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from studypack.bundle import format as fmt
from studypack.bundle.writer import Member, PackPlan, pack


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--level", type=int, default=3)
    args = parser.parse_args()
    members = []
    for dirpath, dirnames, filenames in os.walk(args.folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            rel = path.relative_to(args.folder).as_posix()
            members.append(Member.from_file(f"data/{rel}", path))
    size = sum(m.size for m in members)
    metadata = {"format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION,
                "study": {"name": args.folder.name, "title": f"{args.folder.name} (benchmark)"},
                "runs": [], "counts": {"payload": {"files": len(members), "bytes": size}}}
    plan = PackPlan(bag_name=args.folder.name, payload=members,
                    metadata=json.dumps(metadata).encode())
    result = pack(plan, args.out, level=args.level, overwrite=True)
    print(result.size, result.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
