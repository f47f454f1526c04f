"""studypack base-image: a Debian base image made here, for machines that cannot pull one."""

from __future__ import annotations

import json

from ..environment import baseimage
from ._console import err_console, out_console, progress_bar


def register(sub) -> None:
    p = sub.add_parser(
        "base-image", help="make a Debian base image with Python from the Debian mirror",
        description="When no base image can be pulled (no Docker Hub), make one here: "
                    "debootstrap a minimal Debian with its python3 and python3-venv from "
                    "the Debian mirror, import it, and push it to a local registry so that "
                    "it has a digest to pin. `studypack create` then uses it when the "
                    "default python:X.Y-slim cannot be pulled. Needs root and debootstrap; "
                    "does nothing when the image is already here.")
    p.add_argument("--debian", default="bookworm", metavar="RELEASE",
                   choices=sorted(baseimage.SUITE_PYTHON),
                   help="the Debian release (bookworm: Python 3.11, trixie: 3.13, "
                        "bullseye: 3.9); default bookworm")
    p.add_argument("--mirror", default=baseimage.DEBIAN_MIRROR, metavar="URL",
                   help=f"the Debian mirror (default {baseimage.DEBIAN_MIRROR})")
    p.add_argument("--registry", default=baseimage.DEFAULT_REGISTRY, metavar="HOST:PORT",
                   help=f"the registry that gives the image its digest "
                        f"(default {baseimage.DEFAULT_REGISTRY})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine import Engine

    engine = Engine.connect()
    try:
        with progress_bar(quiet=args.quiet or args.json) as (report, cancel):
            made = baseimage.make_base_image(args.debian, engine=engine, mirror=args.mirror,
                                             registry=args.registry, report=report,
                                             cancel=cancel)
    finally:
        engine.close()
    if args.json:
        out_console.print_json(json.dumps({
            "ref": made.ref, "pinned": made.pinned, "suite": made.suite,
            "python_version": made.python_version, "made": made.made, "size": made.size}))
        return 0
    err_console.print(f"  · {made.summary()}", markup=False)
    out_console.print(made.pinned)
    return 0
