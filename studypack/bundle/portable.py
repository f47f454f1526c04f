"""Names that every platform can hold: the rules a bundle meets to unpack on macOS and
Windows as well as on Linux.

Windows cannot create a file named ``CON``, ``NUL``, ``COM1``… (with any extension), a
name ending in a dot or a space, a name holding ``: < > " | ? *`` or a control
character, nor (without long-path support) a path over 260 characters. macOS and
Windows file systems ignore case and Unicode normalisation, so ``Data.csv`` and
``data.csv``, or ``é`` composed (NFC) and decomposed (NFD), are the same file there:
one would overwrite the other. ``create`` warns about such names
(:func:`portability_warnings`); ``unpack`` on macOS or Windows refuses them by name
(:class:`PlatformNames`) before a byte of them is written.
"""

from __future__ import annotations

import re
import sys
import unicodedata

from ..errors import UnsafeBundleError
from ..safetext import printable

WINDOWS, MACOS = "win32", "darwin"
PLATFORM_NAMES = {WINDOWS: "Windows", MACOS: "macOS"}
MAX_WINDOWS_PATH = 260
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
            *(f"LPT{i}" for i in range(1, 10)), "COM\u00b9", "COM\u00b2", "COM\u00b3",
            "LPT\u00b9", "LPT\u00b2", "LPT\u00b3"}
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f]')
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def is_plain_name(name: str) -> bool:
    """A bag folder name: letters, digits, ``.``, ``_``, ``-`` — nothing a shell or a
    glob pattern reads specially, nothing hidden, and a legal name on every platform."""
    return bool(_PLAIN.fullmatch(name)) and not name.endswith(".") and \
        name.split(".")[0].upper() not in RESERVED


def fold(path: str) -> str:
    """The key under which case-insensitive, normalisation-insensitive file systems
    (macOS, Windows) see ``path`` (Unicode canonical caseless matching)."""
    key = unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())
    return path if key == path else key


def platform_key(platform: str) -> str | None:
    if platform.startswith(("win", "cygwin")):
        return WINDOWS
    if platform == MACOS:
        return MACOS
    return None


def name_problem(path: str, platform: str) -> str | None:
    """Why ``path`` (POSIX, relative) cannot be written on ``platform``, or None."""
    key = platform_key(platform)
    if key is None:
        return None
    for part in path.split("/"):
        if key == MACOS:
            if ":" in part:
                return f"the name {printable(part)!r} holds ':', which macOS shows as '/'"
            continue
        if part.endswith((".", " ")):
            return f"the name {printable(part)!r} ends with a dot or a space"
        if _WINDOWS_FORBIDDEN.search(part):
            return f"the name {printable(part)!r} holds a character Windows forbids (: < > \" | ? *)"
        if part.split(".")[0].rstrip(" ").upper() in RESERVED:
            return f"{printable(part)!r} is a name Windows reserves for a device"
    if key == WINDOWS and len(path) > MAX_WINDOWS_PATH:
        return f"the path is {len(path)} characters long, over Windows' {MAX_WINDOWS_PATH}"
    return None


class PlatformNames:
    """Checks each name ``unpack`` is about to write on ``platform``: a name the
    platform cannot hold, or one that folds onto an earlier name, is refused."""

    def __init__(self, platform: str | None = None):
        self.key = platform_key(platform or sys.platform)
        self.folded: dict[str, str] = {}

    def check(self, path: str, is_dir: bool = False) -> None:
        if self.key is None:
            return
        where = PLATFORM_NAMES[self.key]
        problem = name_problem(path, self.key)
        if problem:
            raise UnsafeBundleError(
                f"The bundle's member {printable(path)!r} cannot be unpacked on {where}: "
                f"{problem}.", "Unpack it on Linux, or ask its author for a portable bundle.")
        if is_dir:
            return      # folders that fold together merge; files would overwrite
        key = fold(path)
        other = self.folded.setdefault(key, path)
        if other != path:
            raise UnsafeBundleError(
                f"The bundle holds {printable(other)!r} and {printable(path)!r}, names that "
                f"differ only by case or Unicode normalisation: on {where} one would "
                "overwrite the other.", "Unpack it on Linux, or ask its author to rename one.")


def portability_warnings(bag: str, names: list[str], limit: int = 10) -> list[str]:
    """Sentences for ``create``: which names cannot be unpacked on macOS or Windows."""
    found: list[str] = []
    folded: dict[str, str] = {}
    for name in names:
        path = f"{bag}/{name}"
        for key in (WINDOWS, MACOS):
            problem = name_problem(path, key)
            if problem:
                found.append(f"{name} cannot be unpacked on {PLATFORM_NAMES[key]}: {problem}")
                break
        other = folded.setdefault(fold(name), name)
        if other != name:
            found.append(f"{other} and {name} differ only by case or Unicode normalisation: "
                         "on macOS and Windows one would overwrite the other")
    if len(found) > limit:
        found = found[:limit] + [f"… and {len(found) - limit} more names that macOS or "
                                 "Windows cannot hold"]
    return found
