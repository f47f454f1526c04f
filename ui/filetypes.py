"""The file type a double-click opens, for each desktop, derived from the format
registry (:mod:`studypack.bundle.format`) so that installers never disagree with
the code: macOS Info.plist entries, Windows registry keys. (Linux uses the
freedesktop files in ``packaging/``; see :mod:`studypack_gui.register`.)
"""

from __future__ import annotations

from .backend import bundle_format as fmt

UTI = "org.studypack.bundle"
APP_ID = "org.studypack.gui"
DESCRIPTION = "Research study bundle"
WINDOWS_PROG_ID = "studypack.bundle.1"


def document_types() -> list[dict]:
    """Info.plist ``CFBundleDocumentTypes``: the app opens (owns) .studypack files."""
    return [{
        "CFBundleTypeName": DESCRIPTION,
        "CFBundleTypeRole": "Viewer",
        "LSHandlerRank": "Owner",
        "LSItemContentTypes": [UTI],
        "CFBundleTypeExtensions": [fmt.EXTENSION.lstrip(".")],
        "CFBundleTypeMIMETypes": [fmt.MIME_TYPE],
        "CFBundleTypeIconFile": "studypack.icns",
    }]


def exported_types() -> list[dict]:
    """Info.plist ``UTExportedTypeDeclarations``: what a .studypack file is."""
    return [{
        "UTTypeIdentifier": UTI,
        "UTTypeDescription": DESCRIPTION,
        "UTTypeConformsTo": ["public.data", "public.archive"],
        "UTTypeIconFile": "studypack.icns",
        "UTTypeTagSpecification": {
            "public.filename-extension": [fmt.EXTENSION.lstrip(".")],
            "public.mime-type": [fmt.MIME_TYPE],
        },
    }]


def info_plist(version: str) -> dict:
    return {
        "CFBundleIdentifier": APP_ID,
        "CFBundleName": "studypack",
        "CFBundleDisplayName": "studypack",
        "CFBundleShortVersionString": version,
        "NSHighResolutionCapable": True,
        "CFBundleDocumentTypes": document_types(),
        "UTExportedTypeDeclarations": exported_types(),
    }


def windows_registry(exe_path: str) -> str:
    """A .reg file associating .studypack with ``exe_path`` for the current user
    (what an installer such as Inno Setup or NSIS writes; importable by hand too)."""
    exe = exe_path.replace("\\", "\\\\")
    ext = fmt.EXTENSION
    return "\r\n".join([
        "Windows Registry Editor Version 5.00",
        "",
        f"[HKEY_CURRENT_USER\\Software\\Classes\\{ext}]",
        f'@="{WINDOWS_PROG_ID}"',
        f'"Content Type"="{fmt.MIME_TYPE}"',
        "",
        f"[HKEY_CURRENT_USER\\Software\\Classes\\{WINDOWS_PROG_ID}]",
        f'@="{DESCRIPTION}"',
        "",
        f"[HKEY_CURRENT_USER\\Software\\Classes\\{WINDOWS_PROG_ID}\\DefaultIcon]",
        f'@="\\"{exe}\\",0"',
        "",
        f"[HKEY_CURRENT_USER\\Software\\Classes\\{WINDOWS_PROG_ID}\\shell\\open\\command]",
        f'@="\\"{exe}\\" \\"%1\\""',
        "",
    ])
