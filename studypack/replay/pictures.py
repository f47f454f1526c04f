"""Pictures for the HTML report: a differing image, original and replay side by side
with a difference image, each as a PNG ``data:`` URI so the page stays self-contained.

Made while the replay's work folder still exists; the report only embeds them.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Sequence

MAX_SIDE = 640          # pixels; larger pictures are scaled down for the page
MAX_PICTURES = 6        # differing images shown; the rest are only listed
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def difference_pictures(outputs: Sequence, expected_dir: Path, actual_dir: Path) -> dict:
    """``{path: {"original", "replay", "difference"}}`` (data URIs) for the differing
    images of ``outputs``."""
    differing = [o for o in outputs if o.status == "differs"
                 and o.path.lower().endswith(IMAGE_SUFFIXES)]
    if not differing:
        return {}     # (Pillow takes ~10 ms to load: not for a replay that reproduced)
    from PIL import Image, ImageChops, UnidentifiedImageError

    pictures = {}
    for output in differing:
        if len(pictures) >= MAX_PICTURES:
            break
        try:
            with Image.open(expected_dir / output.path) as e_img, \
                    Image.open(actual_dir / output.path) as a_img:
                original, replay = e_img.convert("RGB"), a_img.convert("RGB")
        except (OSError, UnidentifiedImageError, SyntaxError):
            continue
        entry = {"original": _uri(original), "replay": _uri(replay)}
        if original.size == replay.size:
            entry["difference"] = _uri(_highlight(original, replay, Image, ImageChops))
        pictures[output.path] = entry
    return pictures


def _highlight(original, replay, Image, ImageChops):
    """The original, faded, with every pixel that changed in red."""
    changed = ImageChops.difference(original, replay).convert("L").point(
        lambda v: 255 if v else 0)
    faded = Image.blend(original.convert("L").convert("RGB"),
                        Image.new("RGB", original.size, "white"), 0.7)
    faded.paste(Image.new("RGB", original.size, (220, 0, 0)), mask=changed)
    return faded


def _uri(image) -> str:
    image = image.copy()
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
