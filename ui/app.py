"""``studypack-gui``: the desktop application.

    studypack-gui                  the start window (open a bundle / create one)
    studypack-gui BUNDLE           open a bundle (what a double-click runs)
    studypack-gui --create FOLDER  the bundle wizard for a study folder
    studypack-gui --register       make .studypack files open with studypack (Linux)
    studypack-gui --unregister     undo --register

macOS delivers a double-clicked file as a ``QEvent.FileOpen`` rather than argv;
:class:`StudypackApplication` handles both the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from . import dialogs, tasks
from .backend import StudypackError, __version__

ICON_PATH = Path(__file__).resolve().parent / "icons" / "studypack.svg"
# One app per user: a second double-click hands its file to the running app (a local
# socket of this user), which opens it in a window it already has when it can.
SERVER_NAME = f"studypack-gui-{os.getuid() if hasattr(os, 'getuid') else os.getlogin()}"


def forward_to_running(paths: list[str], name: str = SERVER_NAME) -> bool:
    """Hand the files to a studypack already running for this user; True if it took them."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(500):
        return False
    socket.write(("\n".join(str(Path(p).expanduser().absolute()) for p in paths) + "\n")
                 .encode("utf-8"))
    socket.waitForBytesWritten(2000)
    socket.disconnectFromServer()
    return True


class StudypackApplication(QApplication):
    def __init__(self, argv: list[str]):
        super().__init__(argv)
        self.setApplicationName("studypack")
        self.setApplicationDisplayName("studypack")
        self.setApplicationVersion(__version__)
        self.setOrganizationName("studypack")
        self.setDesktopFileName("studypack")
        if ICON_PATH.is_file():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.windows: list = []  # keep top-level windows alive
        self.server: QLocalServer | None = None
        self.aboutToQuit.connect(self._stop_tasks)

    def listen(self, name: str = SERVER_NAME) -> bool:
        """Take the files later launches hand over (see forward_to_running)."""
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(name):
            probe = QLocalSocket()
            probe.connectToServer(name)
            if probe.waitForConnected(300):   # another studypack serves this user
                probe.disconnectFromServer()
                return False
            QLocalServer.removeServer(name)   # left by an app that did not end cleanly
            if not server.listen(name):
                return False
        server.newConnection.connect(self._handed_over)
        self.server = server
        return True

    def _handed_over(self) -> None:
        while self.server is not None and self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            received = bytearray()

            def read(connection=connection, received=received):
                received.extend(bytes(connection.readAll()))

            def done(connection=connection, received=received):
                read()
                for line in received.decode("utf-8", "replace").splitlines():
                    if line.strip():
                        self.open_bundle(line.strip())
                connection.deleteLater()

            connection.readyRead.connect(read)
            connection.disconnected.connect(done)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen:
            path = event.file() or event.url().toLocalFile()
            if path:
                self.open_bundle(path)
            return True
        return super().event(event)

    def open_bundle(self, path: str | Path):
        """Open in the window that already shows it, else in an empty window (the start
        window, or one where a file could not be opened), else in a new window: opening
        a bad file again never leaves another empty window behind."""
        from .replay_window import ReplayWindow
        path = Path(path).expanduser().absolute()
        windows = [w for w in self.windows if isinstance(w, ReplayWindow)]
        chosen = next((w for w in windows if w.bundle_path == path), None)
        if chosen is not None:
            chosen.raise_()
            chosen.activateWindow()
            return chosen
        chosen = next((w for w in windows if w.bundle_path is None and not w.busy), None)
        if chosen is None:
            chosen = self.new_replay_window()
        chosen.open_bundle(path)
        chosen.raise_()
        chosen.activateWindow()
        return chosen

    def new_replay_window(self):
        from .replay_window import ReplayWindow
        window = ReplayWindow()
        self._track(window)
        window.show()
        return window

    def new_wizard(self, folder: str | Path | None = None):
        from .wizard import BundleWizard
        wizard = BundleWizard(Path(folder) if folder else None)
        wizard.on_done_open = self.open_bundle
        self._track(wizard)
        wizard.show()
        return wizard

    def _track(self, window) -> None:
        self.windows.append(window)
        window.destroyed.connect(lambda *_: self.windows.remove(window)
                                 if window in self.windows else None)

    def _stop_tasks(self) -> None:
        tasks.cancel_all()
        tasks.wait_all(5000)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="studypack-gui",
        description="Create, verify and replay research study bundles (.studypack).")
    parser.add_argument("bundle", nargs="?", help="a .studypack bundle to open")
    parser.add_argument("--create", metavar="FOLDER",
                        help="open the bundle wizard for this study folder")
    parser.add_argument("--register", action="store_true",
                        help="make .studypack files open with studypack (this user, Linux)")
    parser.add_argument("--unregister", action="store_true", help="undo --register")
    parser.add_argument("--version", action="version", version=f"studypack-gui {__version__}")
    # Qt's own options (-platform, -style, ...) stay in argv for QApplication.
    args, _unknown = parser.parse_known_args(argv)
    return args


def _register(undo: bool) -> int:
    from . import register
    try:
        result = register.unregister() if undo else register.register()
    except StudypackError as exc:
        print(f"studypack-gui: {exc.full_text()}", file=sys.stderr)
        return exc.exit_code
    for path in result.installed:
        print(f"installed {path}")
    for path in result.removed:
        print(f"removed {path}")
    for line in result.messages:
        print(line, file=sys.stderr)
    if not undo:
        print("Double-clicking a .studypack file now opens it with studypack.")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    if args.register or args.unregister:
        return _register(undo=args.unregister)
    app = StudypackApplication([sys.argv[0], *argv])
    if args.bundle and not args.create and forward_to_running([args.bundle]):
        return 0              # the running app opens it, in a window it already has if it can
    if not args.create:
        app.listen()
    dialogs.install_excepthook()
    if args.create:
        app.new_wizard(args.create)
    elif args.bundle:
        app.open_bundle(args.bundle)
    else:
        app.new_replay_window()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
