"""Double-click on a Linux desktop: after `studypack-gui --register`, the desktop's own
tools say that a .studypack file is a studypack bundle and opens with studypack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.desktop import (assert_registered, bundle_like as _bundle_like,
                                   desktop_env, needs_desktop_tools, query as _query)  # noqa: F401

pytestmark = needs_desktop_tools

REPO = Path(__file__).resolve().parents[2]


def test_register_makes_studypack_the_default_for_bundles(desktop_env, tmp_path):
    bundle = _bundle_like(tmp_path / "heat.studypack")
    assert _query(desktop_env, "filetype", str(bundle)) != "application/x-studypack"

    proc = subprocess.run([sys.executable, "-m", "studypack_gui", "--register"],
                          env=desktop_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

    assert_registered(desktop_env, tmp_path / "data", bundle)


def test_a_renamed_bundle_is_recognised_by_its_magic_but_plain_zstd_is_not(desktop_env, tmp_path):
    from studypack_gui.register import register
    import zstandard
    register(command="studypack-gui")
    renamed = _bundle_like(tmp_path / "download.bin")
    assert _query(desktop_env, "filetype", str(renamed)) == "application/x-studypack"
    plain = tmp_path / "archive.bin"
    plain.write_bytes(zstandard.ZstdCompressor().compress(b"not a bundle" * 100))
    assert _query(desktop_env, "filetype", str(plain)) == "application/zstd"


def test_unregister_removes_only_what_register_installed(desktop_env, tmp_path):
    from studypack_gui.register import register, unregister
    keep = tmp_path / "data" / "applications" / "other.desktop"
    keep.parent.mkdir(parents=True)
    keep.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    installed = register(command="studypack-gui").installed
    removed = unregister().removed
    assert sorted(removed) == sorted(installed)
    assert keep.exists()
    bundle = _bundle_like(tmp_path / "heat.studypack")
    assert _query(desktop_env, "filetype", str(bundle)) != "application/x-studypack"


def test_packaging_files_are_the_ones_shipped_in_the_package():
    for name in ("studypack.desktop", "studypack-mime.xml"):
        shipped = REPO / "ui" / "freedesktop" / name
        assert shipped.read_bytes() == (REPO / "packaging" / name).read_bytes()
    desktop = (REPO / "packaging" / "studypack.desktop").read_text()
    assert "Exec=studypack-gui %f" in desktop
    assert "MimeType=application/x-studypack;" in desktop


def test_installers_declare_the_file_type_the_code_reads():
    """macOS Info.plist and the Windows association come from the format registry,
    and agree with the freedesktop MIME definition."""
    import plistlib
    import xml.etree.ElementTree as ET

    from studypack.bundle import format as fmt
    from studypack_gui import filetypes

    plist = plistlib.loads(plistlib.dumps(filetypes.info_plist("1.0")))
    doc = plist["CFBundleDocumentTypes"][0]
    assert doc["CFBundleTypeExtensions"] == [fmt.EXTENSION.lstrip(".")]
    assert doc["CFBundleTypeMIMETypes"] == [fmt.MIME_TYPE]
    uti = plist["UTExportedTypeDeclarations"][0]
    assert doc["LSItemContentTypes"] == [uti["UTTypeIdentifier"]]
    assert uti["UTTypeTagSpecification"] == {
        "public.filename-extension": [fmt.EXTENSION.lstrip(".")],
        "public.mime-type": [fmt.MIME_TYPE]}
    assert plist["CFBundleIdentifier"] == filetypes.APP_ID and doc["CFBundleTypeRole"] == "Viewer"

    reg = filetypes.windows_registry(r"C:\Program Files\studypack\studypack.exe")
    assert f"[HKEY_CURRENT_USER\\Software\\Classes\\{fmt.EXTENSION}]" in reg
    assert '\\"%1\\"' in reg
    assert f'"Content Type"="{fmt.MIME_TYPE}"' in reg
    assert reg.count(filetypes.WINDOWS_PROG_ID) == 4     # the extension points at its ProgID

    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    mime = ET.parse(REPO / "packaging" / "studypack-mime.xml").getroot().find("m:mime-type", ns)
    assert mime.get("type") == fmt.MIME_TYPE
    assert mime.find("m:glob", ns).get("pattern") == "*" + fmt.EXTENSION

    spec = (REPO / "packaging" / "studypack.spec").read_text()
    compile(spec, "studypack.spec", "exec")
    assert "filetypes.info_plist(" in spec
    assert "filetypes.windows_registry(" in spec and 'name="studypack-gui"' in spec
