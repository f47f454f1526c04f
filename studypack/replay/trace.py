"""The trace mode: an image made ``FROM scratch`` out of the traced files (``docker
import`` of a tar studypack writes itself) plus Debian's static busybox; no base image, no
registry. The traced files keep their absolute layout, so the recorded PATH and
interpreter paths hold as they are."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Iterator

from ..errors import ImageLoadError
from ..progress import CancelToken, Progress, Reporter
from .container import ContainerRunner, _api_text
from .runners import Runner, RunPlan

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


class TraceRunner(ContainerRunner):
    """``docker import`` of the traced files: the same absolute layout as the recording
    machine, so the recorded PATH and interpreter paths hold as they are."""

    name = "trace"
    summary = "an image made FROM scratch out of the traced files: no base image, no registry"
    why_chosen = "the bundle carries the traced files and the Docker daemon answers"
    needs = "traced files"
    keep_image_env_path = False

    @classmethod
    def carried(cls, bundle) -> bool:
        return bundle.has_rootfs

    @classmethod
    def available(cls, bundle, host) -> str | None:
        return super().available(bundle, host) or host.cannot_run_traced(bundle)

    @classmethod
    def for_replay(cls, layout, work: Path, *, network: bool) -> "Runner":
        return cls(layout.bag_dir, layout.rootfs, work, network=network,
                   image=layout.trace_image, made=layout.trace_image_made)

    def __init__(self, bag_dir: Path, rootfs: Path, work: Path, *, network: bool,
                 image: str | None = None, made: bool = False):
        super().__init__(bag_dir, network=network)
        self.rootfs = rootfs
        self.work = work
        self.image = image    # already imported by an earlier replay of the same files
        self.made = made      # ... or by this one, during the unpack (trace_stream.py)

    @staticmethod
    def image_for(digest: str) -> str | None:
        """The image an earlier replay imported from traced files of this digest."""
        from .cache import trace_image_tag
        from .runners import connect_engine

        tag = trace_image_tag(digest, which_busybox())
        engine = connect_engine()
        try:
            return tag if engine.image_exists(tag) else None
        finally:
            engine.close()

    def mount_point(self, plan: RunPlan) -> str:
        return plan.original_root

    def command(self, plan: RunPlan) -> list[str]:
        # The recorded executable is what PATH found when traced; exec it directly.
        if plan.executable:
            return [plan.executable, *plan.argv[1:]]
        return list(plan.argv)

    def prepare(self, report: Reporter, cancel: CancelToken) -> None:
        from .cache import bag_traced_digest, trace_image_tag

        busybox = which_busybox()
        if busybox is None:
            self.notes.append("busybox-static is not installed here, so the trace image "
                              "has no shell of its own (apt install busybox-static).")
        if self.image is None:
            digest = bag_traced_digest(self.bag_dir)
            tag = trace_image_tag(digest, busybox)
            if self.engine.image_exists(tag):
                self.image = tag
            else:
                self._import(tag, digest, busybox, report, cancel)
                self.notes.append(f"trace mode imported the traced files as the image {tag}; "
                                  "a later replay of the same traced files reuses it "
                                  f"(`docker rmi {tag}` removes it)")
                return
        if self.made:
            self.notes.append(f"trace mode imported the traced files as the image "
                              f"{self.image} while the bundle unpacked; a later replay of "
                              f"the same traced files reuses it (`docker rmi {self.image}` "
                              "removes it)")
            return
        self.notes.append(f"trace mode reused the image {self.image}, imported by an "
                          "earlier replay from the same traced files (same digest)")

    def _import(self, tag: str, digest: str, busybox: str | None, report: Reporter,
                cancel: CancelToken) -> None:
        from docker.errors import APIError

        from ..engine import CONNECTION_LOST, daemon_stopped
        from .cache import DIGEST_LABEL

        # The files stored once, in their package, were rebuilt before (replay_bundle).
        layer = self.work / "trace-rootfs.tar"
        write_rootfs_tar(self.rootfs, layer, busybox, report, cancel)
        repository, name = tag.split(":")
        report(Progress("import", 0, None, "making the image FROM scratch (docker import)"))
        try:
            self.client.api.import_image_from_file(
                str(layer), repository=repository, tag=name,
                changes=[f"LABEL {DIGEST_LABEL}={digest}"])
        except APIError as exc:
            raise ImageLoadError(f"Docker could not import the traced files: {_api_text(exc)}.",
                                 "Try --mode directory.") from None
        except CONNECTION_LOST:
            raise daemon_stopped(self.engine.where, "importing the traced files") from None
        finally:
            with contextlib.suppress(OSError):
                layer.unlink()
        # Kept for the next replay of the same traced files: never removed by close().
        self.image, self.created_image = tag, False


def write_rootfs_tar(rootfs: Path, out: Path, busybox: str | None, report: Reporter,
                     cancel: CancelToken) -> None:
    """One filesystem layer: the traced files, /tmp, and busybox as /bin/busybox (plus
    /bin/sh when the trace has no shell). Owner root, modes as unpacked."""
    total = sum(p.stat().st_size for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink())
    done = 0
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, path in layer_entries(rootfs, busybox):
            cancel.check()
            if path is None:
                tar.addfile(info)
                continue
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
            if info.isreg() and path != busybox:
                done += info.size
                report(Progress("image", done, total, "packing the traced files"))


def layer_entries(rootfs: Path, busybox: str | None, sent: set[str] = frozenset()
                  ) -> Iterator[tuple[tarfile.TarInfo, str | None]]:
    """The layer's members (header, file to read or None), but for the regular files
    already ``sent`` (by their name in the layer): every entry under ``rootfs``,
    folders before what they hold, then /tmp and busybox when the trace lacks them."""
    for path in sorted(rootfs.rglob("*")):
        arcname = path.relative_to(rootfs).as_posix()
        info = layer_info(os.lstat(path), arcname, os.readlink(path) if path.is_symlink()
                          else "")
        if info.isreg() and arcname in sent:
            continue
        yield info, str(path) if info.isreg() else None
    if not (rootfs / "tmp").exists():
        tmp = tarfile.TarInfo("tmp")
        tmp.type = tarfile.DIRTYPE
        yield layer_info(None, "tmp", "", tmp), None
    bin_dir = _inside(rootfs, "bin")
    if busybox and not (rootfs / bin_dir / "busybox").exists():
        yield layer_info(os.stat(busybox), f"{bin_dir}/busybox", ""), busybox
        if not (rootfs / bin_dir / "sh").exists() and not (rootfs / bin_dir / "sh").is_symlink():
            sh = tarfile.TarInfo(f"{bin_dir}/sh")
            sh.type, sh.linkname = tarfile.SYMTYPE, "busybox"
            yield layer_info(None, sh.name, "busybox", sh), None


def layer_info(st: os.stat_result | None, arcname: str, link: str,
               info: tarfile.TarInfo | None = None) -> tarfile.TarInfo:
    """A layer member's header: owner root, the mode and time of ``st`` (a folder
    called tmp: anyone may write in it)."""
    if info is None:
        info = tarfile.TarInfo(arcname)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), st.st_mtime
        if stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, link
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        else:
            info.size = st.st_size
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.name == "tmp" and info.isdir():
        info.mode = 0o1777     # anyone may write temporary files
    return info


def _inside(rootfs: Path, name: str) -> str:
    """Where /name really is inside the rootfs (Debian: /bin -> usr/bin)."""
    path = rootfs / name
    if path.is_symlink():
        target = os.readlink(path)
        return target.lstrip("/") if target.startswith("/") else target
    return name


def which_busybox() -> str | None:
    return next((b for b in BUSYBOX_CANDIDATES if Path(b).is_file()), shutil.which("busybox"))
