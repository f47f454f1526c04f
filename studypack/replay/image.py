"""The image mode: the image saved in the bundle (``docker load``), exact and offline."""

from __future__ import annotations

from ..progress import CancelToken, Reporter
from .container import ContainerRunner


class ImageRunner(ContainerRunner):
    name = "image"
    summary = "the image saved in the bundle (docker load): exact and offline"
    why_chosen = "the bundle carries a saved image and the Docker daemon answers"
    needs = "saved image"
    from_traced_files = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_image

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        # One call: listing image objects inspects each, and fails when another program
        # removes an image meanwhile.
        before = set(self.client.api.images(all=True, quiet=True))
        ids = self.engine.load(self.bag_dir / "data/image/image.tar", report=report,
                               cancel=cancel)
        self.image = ids[0]
        # An image that was here before the replay is the user's: never remove it.
        self.created_image = self.image not in before
