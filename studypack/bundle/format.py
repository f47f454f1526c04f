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

# Limits a reader enforces on bundles it did not write itself. Each refusal names the
# bound it hit; docs/guarantees.md lists them with the test that shows each.
MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
HEAD_MEMBERS_MAX = 8     # studypack.json must come within the first members
MAX_MEMBERS = 300_000            # tar members (files and folders) in one bundle
MAX_EXTENDED_HEADER_BYTES = 64 * 1024   # one pax (or GNU long-name) header
MAX_PAX_RECORDS = 256            # key=value records that apply to one member
MAX_CHAINED_HEADERS = 3          # extended headers in a row before one member
MAX_PADDING_BYTES = 1024 * 1024  # zeros allowed after the archive's end-of-archive blocks
# Tag files are read into memory, so each has a size bound of its own; other tag files
# (outside data/) are streamed and share TAG_ALLOWANCE.
TAG_FILE_LIMITS = {
    BAGIT_TXT: 4 * 1024,
    BAG_INFO: 1024 * 1024,
    METADATA: 16 * 1024 * 1024,
    FETCH_TXT: 16 * 1024 * 1024,
    MANIFEST: 64 * 1024 * 1024,
    TAGMANIFEST: 1024 * 1024,
}
MAX_TAG_FILE_BYTES = max(TAG_FILE_LIMITS.values())
TAG_ALLOWANCE = 256 * 1024 * 1024   # all tag files together
MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 1_000_000
KNOWN_BAGIT_VERSIONS = ("0.93", "0.94", "0.95", "0.96", "0.97", "1.0")   # as bagit.py reads


def kib(n: int) -> str:
    """A bound as a sentence shows it."""
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


SIDECAR_SUFFIX = ".sha256"
SIGNATURE_SUFFIX = ".minisig"

# Members whose bytes are already compressed: packed with a fast zstd level so the
# CPU is not spent twice (the container image, wheels, archives, images).
PRECOMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".whl", ".conda",
                          ".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".npz", ".7z",
                          ".parquet", ".h5", ".tar.bz2")


def sidecar_path(bundle_path) -> str:
    return str(bundle_path) + SIDECAR_SUFFIX
