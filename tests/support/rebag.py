"""Unpack a bundle with plain tar + zstd and write it again with fresh manifests: what
someone who changes a bundle and re-bags it (so that every checksum still holds)
would do. Used to show that the checks which do not rely on the manifests hold."""

from __future__ import annotations

import subprocess
from pathlib import Path

from studypack.bundle import format as fmt
from studypack.bundle.writer import Member, PackPlan, pack


def unbag(bundle: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(f"zstd -dcq '{bundle}' | tar -xf - -C '{dest}'", shell=True, check=True)
    (bag,) = [p for p in dest.iterdir() if p.is_dir()]
    return bag


def rebag(bag: Path, out: Path) -> Path:
    labels = {}
    for line in (bag / fmt.BAG_INFO).read_text().splitlines():
        key, _, value = line.partition(": ")
        if key not in ("Payload-Oxum", "Bagging-Date"):
            labels[key] = value
    payload = [Member.from_file(p.relative_to(bag).as_posix(), p)
               for p in sorted((bag / fmt.PAYLOAD).rglob("*")) if p.is_file()]
    plan = PackPlan(bag_name=bag.name, bag_info=labels,
                    metadata=(bag / fmt.METADATA).read_bytes(), payload=payload)
    pack(plan, out, overwrite=True)
    return out
