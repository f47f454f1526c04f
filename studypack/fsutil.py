"""Writing files so that an interruption never leaves a half file that looks whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import WriteError, write_error

TEMP_MARK = ".studypack-partial-"
STALE_AFTER_S = 60


def temp_path_for(target: Path) -> Path:
    return target.with_name(f"{TEMP_MARK}{os.getpid()}-{target.name}")


def remove_stale_partials(folder: Path, name: str) -> None:
    """Remove temp files a killed earlier run left for ``name`` in ``folder``.

    A temp file belongs to a process; it is stale when that process is gone.
    """
    suffix = "-" + name
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        # matched by exact name, never by pattern: TEMP_MARK, a process id, "-", name
        if not (entry.name.startswith(TEMP_MARK) and entry.name.endswith(suffix)):
            continue
        pid_text = entry.name[len(TEMP_MARK):-len(suffix)]
        if not (pid_text.isascii() and pid_text.isdigit()) or pid_text.startswith("0"):
            continue
        if _alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue
        candidate = Path(entry.path)
        if candidate.is_dir() and not candidate.is_symlink():  # an unpack's staging folder
            shutil.rmtree(candidate, ignore_errors=True)
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def make_work_dir(kind: str) -> Path:
    """A scratch folder in the system temp dir named after this process, made after
    removing those of processes that are gone (a SIGKILL gives no chance to clean up)."""
    base = Path(tempfile.gettempdir())
    prefix = f"studypack-{kind}-"
    for old in base.glob(f"{prefix}*-*"):
        pid_text = old.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)) and old.is_dir() \
                and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it is fsynced and renamed onto ``target``.

    On any failure (including cancel and disk full) the temp file is removed and
    ``target`` is left untouched.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise WriteError(f"The folder {folder} does not exist.", "Create it first.")
    if target.exists() and not overwrite:
        raise WriteError(f"{target} already exists; it was left as it is.",
                         "Choose another name, or pass --force to replace it.")
    remove_stale_partials(folder, target.name)
    temp = temp_path_for(target)
    try:
        fh = open(temp, "wb")
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise write_error(target, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_output(target, overwrite=True) as fh:
        fh.write(text.encode("utf-8"))


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/studypack/<name>`` (``~/.cache`` by default): what studypack
    keeps between runs (wheels, .deb files, base image listings, kept traced files)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "studypack" / name


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
