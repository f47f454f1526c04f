"""studypack unpack BUNDLE DEST: extract safely, verifying while extracting."""

from __future__ import annotations

from ..bundle.reader import unpack
from ..fsutil import human_size
from ._console import out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "unpack", help="extract a bundle safely into a folder",
        description="Extract the bundle into DEST/NAME/, checking every member first (no "
                    "absolute paths, no '..', no links or devices, bounded sizes) and every "
                    "checksum while extracting. A damaged bundle leaves nothing behind; an "
                    "existing folder is never overwritten.")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("dest", metavar="DEST", help="the folder to extract into")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    with progress_bar(quiet=args.quiet) as (report, cancel):
        result = unpack(args.bundle, args.dest, report, cancel)
    out_console.print(f"Unpacked {result.files} files ({human_size(result.bytes)}) into "
                      f"{result.bag_dir}; every checksum matches.")
    return 0
