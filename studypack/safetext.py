"""Text from a bundle, made safe to show: control characters escaped.

A bundle comes from a stranger. Its names, titles, authors and messages may hold
terminal escape sequences (clear the screen, print a fake green "intact"), carriage
returns that overwrite a line, or bidirectional overrides that show a name reversed.
Everything studypack shows from a bundle — in the terminal, the HTML report and the
GUI — goes through :func:`printable` first, which spells such characters out as
``\\x1b``, ``\\r``, ``\\u202e``. Ordinary text, accents and CJK included, is unchanged.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL; zero-width and bidirectional formatting characters;
# line and paragraph separators; the byte-order mark; Unicode tag characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069"
                     "\ufeff\U000e0000-\U000e007f]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f"
                                "\u2028-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f]")


def _spell(match: re.Match) -> str:
    c = ord(match.group())
    if c == 0x0D:
        return "\\r"
    if c == 0x0A:
        return "\\n"
    if c == 0x09:
        return "\\t"
    return f"\\x{c:02x}" if c < 0x100 else (f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}")


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` (anything; ``None`` is ``""``) with every control character escaped.
    ``keep_newlines`` leaves line feeds alone for text shown as several lines."""
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_spell, text)
