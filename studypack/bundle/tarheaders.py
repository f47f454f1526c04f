"""Tar headers parsed with bounds: tarfile's own parser, told when to stop.

:mod:`tarfile` reads a pax or GNU long-name header whole, whatever size it claims,
follows chained extended headers by recursion, and expands sparse maps of any length.
A bundle from a stranger could use each to make a few kilobytes cost gigabytes or a
``RecursionError``. :class:`BoundedTarInfo` checks every header before tarfile acts
on it and raises :class:`TarBoundError` with the bound it hit.
"""

from __future__ import annotations

import tarfile

from . import format as fmt

EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
            tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)


class TarBoundError(Exception):
    """A header went past a bound; the text completes "The bundle …"."""


class BoundedTarInfo(tarfile.TarInfo):

    @classmethod
    def fromtarfile(cls, tar):
        buf = tar.fileobj.read(tarfile.BLOCKSIZE)
        try:
            obj = cls.frombuf(buf, tar.encoding, tar.errors)
        except tarfile.InvalidHeaderError:
            if tar.offset == 0:
                raise            # not a tar archive at all: tarfile says so
            # tarfile would take a damaged block for the end of the archive and ignore
            # what follows: whatever it hides, it is refused.
            raise TarBoundError(
                f"has a damaged tar header at byte {tar.fileobj.tell() - len(buf)} of its "
                "archive, or data after the archive's end") from None
        obj.offset = tar.fileobj.tell() - tarfile.BLOCKSIZE
        return obj._proc_member(tar)

    def _proc_member(self, tar):
        if self.type in EXTENDED:
            chain = getattr(tar, "_studypack_chain", 0) + 1
            tar._studypack_chain = chain
            if chain > fmt.MAX_CHAINED_HEADERS:
                raise TarBoundError(
                    f"has chained pax headers: more than {fmt.MAX_CHAINED_HEADERS} extended "
                    "headers in a row before one member")
            if self.size > fmt.MAX_EXTENDED_HEADER_BYTES:
                raise TarBoundError(
                    f"has a pax header of {self.size:,} bytes, over the bound of "
                    f"{fmt.kib(fmt.MAX_EXTENDED_HEADER_BYTES)} per header")
        elif self.type == tarfile.GNUTYPE_SPARSE:
            raise _sparse()
        else:
            tar._studypack_chain = 0
        return super()._proc_member(tar)

    def _apply_pax_info(self, pax_headers, encoding, errors):
        if len(pax_headers) > fmt.MAX_PAX_RECORDS:
            raise TarBoundError(
                f"has {len(pax_headers):,} pax records for one member, over the bound of "
                f"{fmt.MAX_PAX_RECORDS}")
        return super()._apply_pax_info(pax_headers, encoding, errors)

    # A bundle never holds sparse files; their maps are unbounded lists.
    def _proc_gnusparse_00(self, *args):
        raise _sparse()

    def _proc_gnusparse_01(self, *args):
        raise _sparse()

    def _proc_gnusparse_10(self, *args):
        raise _sparse()


def _sparse() -> TarBoundError:
    return TarBoundError("has a sparse member (a file of holes, a classic decompression "
                         "bomb); studypack bundles never contain sparse files")
