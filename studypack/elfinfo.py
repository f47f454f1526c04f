"""The two facts replay needs from an ELF program, read with ``struct`` only.

- :func:`interpreter`: the dynamic loader a program asks for (``PT_INTERP``), so the
  directory mode can start it through the traced loader instead of this machine's;
- :func:`machine` and :func:`minimum_kernel`: the CPU a binary is for, and the oldest
  Linux kernel its C library accepts (the ``.note.ABI-tag``), so a replay can say
  up front that it cannot work here.
"""

from __future__ import annotations

import struct
from pathlib import Path

PT_INTERP = 3
PT_NOTE = 4
NT_GNU_ABI_TAG = 1

MACHINES = {0x03: "i686", 0x28: "arm", 0x3E: "x86_64", 0xB7: "aarch64", 0x08: "mips",
            0x14: "ppc", 0x15: "ppc64le", 0x16: "s390x", 0xF3: "riscv64"}


def _header(fh):
    ident = fh.read(16)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        return None
    is64 = ident[4] == 2
    order = "<" if ident[5] == 1 else ">"
    if is64:
        fields = struct.unpack(order + "HHIQQQIHHHHHH", fh.read(48))
    else:
        fields = struct.unpack(order + "HHIIIIIHHHHHH", fh.read(36))
    _type, machine, _version, _entry, phoff, _shoff, _flags, _ehsize, phentsize, phnum = fields[:10]
    return is64, order, machine, phoff, phentsize, phnum


def _segments(fh, header):
    is64, order, _machine, phoff, phentsize, phnum = header
    for i in range(min(phnum, 256)):
        fh.seek(phoff + i * phentsize)
        if is64:
            p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack(
                order + "IIQQQQ", fh.read(40))
        else:
            p_type, offset, _vaddr, _paddr, filesz = struct.unpack(order + "IIIII", fh.read(20))
        yield p_type, offset, filesz


def interpreter(path: Path) -> str | None:
    """``/lib64/ld-linux-x86-64.so.2`` for a dynamic program; None for static or non-ELF."""
    try:
        with open(path, "rb") as fh:
            header = _header(fh)
            if header is None:
                return None
            for p_type, offset, size in _segments(fh, header):
                if p_type == PT_INTERP and 0 < size < 4096:
                    fh.seek(offset)
                    return fh.read(size).rstrip(b"\0").decode("utf-8", "replace")
    except (OSError, struct.error):
        return None
    return None


def machine(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            header = _header(fh)
    except (OSError, struct.error):
        return None
    return None if header is None else MACHINES.get(header[2], f"machine {header[2]:#x}")


def minimum_kernel(path: Path) -> tuple[int, int, int] | None:
    """The oldest Linux kernel a glibc (or a program linked with it) runs on."""
    try:
        with open(path, "rb") as fh:
            header = _header(fh)
            if header is None:
                return None
            order = header[1]
            for p_type, offset, size in list(_segments(fh, header)):
                if p_type != PT_NOTE or size > 65536:
                    continue
                fh.seek(offset)
                data = fh.read(size)
                pos = 0
                while pos + 12 <= len(data):
                    namesz, descsz, n_type = struct.unpack(order + "III", data[pos:pos + 12])
                    name = data[pos + 12:pos + 12 + namesz]
                    desc_at = pos + 12 + ((namesz + 3) & ~3)
                    desc = data[desc_at:desc_at + descsz]
                    if n_type == NT_GNU_ABI_TAG and name.rstrip(b"\0") == b"GNU" and descsz >= 16:
                        os_id, major, minor, sub = struct.unpack(order + "IIII", desc[:16])
                        if os_id == 0:  # Linux
                            return major, minor, sub
                    pos = desc_at + ((descsz + 3) & ~3)
    except (OSError, struct.error):
        return None
    return None
