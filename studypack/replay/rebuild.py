"""The rebuild mode: the image built again, offline, from the bundle's Dockerfile and
vendored packages (its base image must be on this machine, pinned by digest)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ..errors import BuildError
from ..progress import CancelToken, Reporter
from .container import IMAGE_PREFIX, ContainerRunner


class RebuildRunner(ContainerRunner):
    name = "rebuild"
    summary = "the image rebuilt offline from the bundle's Dockerfile and vendored packages"
    why_chosen = ("the bundle carries a Dockerfile with vendored packages and the Docker "
                  "daemon answers")
    needs = "Dockerfile with vendored packages"
    from_traced_files = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_dockerfile

    @classmethod
    def available(cls, bundle, host) -> str | None:
        reason = super().available(bundle, host)
        if reason is None and bundle is not None and bundle.base_image \
                and not host.image_here(bundle.base_image):
            return (f"its base image {bundle.base_image} is not on this machine "
                    "(rebuilds are offline)")
        return reason

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        context = self.bag_dir / "data"     # the Dockerfile COPYs env/ and study/
        base = dockerfile_base(context / "env" / "Dockerfile")
        if base and not self.engine.image_exists(base):
            raise BuildError(f"The base image {base} is not on this machine, and a rebuild "
                             "is done offline.",
                             "Load it (docker load), or use --mode image or --mode trace.")
        tag = f"{IMAGE_PREFIX}-rebuild:{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.created_image = True
        from ..environment import bundle_build_context

        # Only env/ and study/: the traced files and a saved image are not needed to build.
        built = self.engine.build(bundle_build_context(context), tag=tag,
                                  dockerfile="env/Dockerfile", report=report, cancel=cancel)
        self.image = built.tag


def dockerfile_base(dockerfile: Path) -> str | None:
    """The image of the first FROM line (None for FROM scratch)."""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            refs = [w for w in words[1:] if not w.startswith("--")]
            return None if not refs or refs[0] == "scratch" else refs[0]
    return None
