"""Constants of the ``.studypack`` format (version 1). See docs/format.md."""

from __future__ import annotations

import struct

FORMAT_NAME = "studypack"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = {1}
EXTENSION = ".studypack"
MIME_TYPE = "application/x-studypack"

# The stream starts with a zstd *skippable frame* carrying this marker: every zstd
# decoder ignores it, and file(1)/shared-mime-info can match it as the magic.
SKIPPABLE_MAGIC = 0x184D2A5E
MARKER_PAYLOAD = b"studypack\nformat-version: 1\n"
MARKER = struct.pack("<II", SKIPPABLE_MAGIC, len(MARKER_PAYLOAD)) + MARKER_PAYLOAD
MAGIC_BYTES = MARKER[:4]            # 5E 2A 4D 18
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"

# Tag files at the start of the stream, in this order, then the payload, then manifests.
BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
METADATA = "studypack.json"
FETCH_TXT = "fetch.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
HEAD_TAG_FILES = (BAGIT_TXT, BAG_INFO, METADATA)

# Payload layout, relative to the bag directory.
PAYLOAD = "data"
RO_CRATE = "data/ro-crate-metadata.json"
REPLAY_MD = "data/REPLAY.md"
REPLAY_SH = "data/replay.sh"
SPEC_COPY = "data/studypack.toml"
RUNS_DIR = "data/runs"
TRACE_DIR = "data/trace"
SYMLINKS = "data/trace/symlinks.json"
STUDY_DIR = "data/study"
OUTPUTS_DIR = "data/outputs"
ROOTFS_DIR = "data/rootfs"
ENV_DIR = "data/env"
IMAGE_TAR = "data/image/image.tar"

# Limits a reader enforces on bundles it did not write itself.
MAX_TAG_FILE_BYTES = 64 * 1024 * 1024
MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
HEAD_MEMBERS_MAX = 8     # studypack.json must come within the first members

SIDECAR_SUFFIX = ".sha256"
SIGNATURE_SUFFIX = ".minisig"

# Members whose bytes are already compressed: packed with a fast zstd level so the
# CPU is not spent twice (the container image, wheels, archives, images).
PRECOMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".whl", ".conda",
                          ".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".npz", ".7z",
                          ".parquet", ".h5", ".tar.bz2")


def sidecar_path(bundle_path) -> str:
    return str(bundle_path) + SIDECAR_SUFFIX
