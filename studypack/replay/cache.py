"""What a replay mode reads from a bundle, and what it reuses from an earlier replay.

- :func:`unpack_skip` — the members a mode never reads (the saved image for trace mode,
  the traced files for an image or rebuild), so that unpacking for a replay checks them
  but does not write them;
- :func:`bag_traced_digest` — the digest of the traced files of an unpacked bag (every
  ``data/rootfs`` file by sha256, stored or rebuilt from a package, and the links), read
  from its verified manifest; it keys the image trace mode imports, so a second replay
  of the same traced files reuses that image instead of importing it again;
- :func:`trace_image_tag` — that image's name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from ..bundle import format as fmt
from ..bundle.tagfiles import parse_manifest
from ..errors import BundleError
from ..storeonce import LISTING, is_package_member, read_listing, traced_files_digest

TRACE_IMAGE_REPOSITORY = "studypack-trace"
# Bump when the trace image's recipe changes (what write_rootfs_tar adds to the files).
TRACE_IMAGE_RECIPE = "2"   # 2: files keep their recorded mtimes
DIGEST_LABEL = "io.studypack.traced-files"


def claimed_digest(metadata: dict) -> str | None:
    """The traced files' digest studypack.json announces (checked after unpacking)."""
    value = (metadata.get("traced_files") or {}).get("digest")
    return value if isinstance(value, str) and len(value) == 64 else None


def bag_traced_digest(bag_dir: Path) -> str:
    """The digest of an unpacked bag's traced files, from its manifest and listing."""
    bag_dir = Path(bag_dir)
    manifest = parse_manifest((bag_dir / fmt.MANIFEST).read_bytes(), fmt.MANIFEST)
    files = {name: digest for name, digest in manifest.items()
             if name.startswith(fmt.ROOTFS_DIR + "/")}
    for ref in read_listing(bag_dir):
        files[ref.file] = ref.sha256
    links = manifest.get(fmt.SYMLINKS) or hashlib.sha256(b"").hexdigest()
    return traced_files_digest(files, links)


def check_claimed_digest(bag_dir: Path, metadata: dict) -> str:
    """The bag's digest, which must be the one studypack.json announced (a replay that
    trusted the announcement skipped writing the traced files)."""
    actual = bag_traced_digest(bag_dir)
    claimed = claimed_digest(metadata)
    if claimed is not None and claimed != actual:
        raise BundleError("The traced files in the bundle do not match the digest its "
                          "studypack.json records.",
                          "The bundle was changed after it was made; fetch it again.")
    return actual


def trace_image_tag(digest: str, busybox: str | None) -> str:
    """The name of the image made from these traced files (plus this machine's
    busybox, which the image carries as its shell)."""
    sha = hashlib.sha256(f"{TRACE_IMAGE_RECIPE}\n{digest}\n".encode())
    if busybox:
        with open(busybox, "rb") as fh:
            sha.update(hashlib.sha256(fh.read()).digest())
    return f"{TRACE_IMAGE_REPOSITORY}:{sha.hexdigest()[:40]}"


def unpack_skip(mode: str, metadata: dict, *, trace_image_here: bool = False,
                rootfs_kept: bool = False) -> Callable[[str], bool] | None:
    """Members (names relative to the bag) that ``mode`` does not read, or None.

    ``trace`` with its image already imported does not read the traced files — but for
    those under the study folder, which the replay's study folder holds (a virtualenv
    inside the study; rebuilt from their packages when stored once); ``auto`` reads
    everything, since the mode is chosen from what was unpacked. With ``rootfs_kept``
    (an earlier replay kept the finished traced files, :mod:`.rootfs_cache`) neither the
    traced files nor the packages they are rebuilt from are written."""
    image = fmt.IMAGE_TAR
    rootfs = fmt.ROOTFS_DIR + "/"
    if mode in ("directory", "sandbox") and rootfs_kept:
        return lambda rel: rel == image or rel.startswith(rootfs) or is_package_member(rel)
    if mode in ("trace", "directory", "sandbox"):
        root = (metadata.get("traced_files") or {}).get("study_root")
        if mode == "trace" and trace_image_here and isinstance(root, str) and root.startswith("/"):
            study = rootfs + root.strip("/") + "/"
            # (the packages stay: files under the study root may be rebuilt from them)
            return lambda rel: rel == image or (rel.startswith(rootfs) and
                                                not rel.startswith(study))
        return lambda rel: rel == image
    if mode == "rebuild":
        return lambda rel: rel == image or rel.startswith(rootfs) or rel == LISTING
    if mode == "image":
        return lambda rel: rel.startswith(rootfs) or rel == LISTING or is_package_member(rel)
    return None


def references_needed(bag_dir: Path, mode: str, study_root: str, image_reused: bool):
    """The listed files ``mode`` needs on disk: all for directory and sandbox and a new
    trace image; with a reused trace image only those under the study folder (which
    the replay's study folder is made of)."""
    refs = read_listing(bag_dir)
    if mode == "trace" and image_reused:
        study = fmt.ROOTFS_DIR + "/" + study_root.strip("/") + "/"
        return [r for r in refs if r.file.startswith(study)]
    return refs if mode in ("trace", "directory", "sandbox") else []
