"""Runs one command under ReproZip's tracer, in a child process of studypack.

Calling the tracer through its Python API (not the ``reprozip`` CLI) keeps the study's
own stdout/stderr clean: ReproZip's log lines go to a file of their own.

usage: python -m studypack._tracerun TRACE_DIR APPEND(0|1) LOGFILE STATUSFILE -- CMD...
"""

import json
import logging
import sys


def main(argv: list[str]) -> int:
    trace_dir, append, logfile, statusfile, sep, *command = argv
    assert sep == "--" and command
    handler = logging.FileHandler(logfile)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    root = logging.getLogger("reprozip")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False

    from rpaths import Path
    from reprozip.tracer import trace

    appending = append == "1"
    status = trace.trace(command[0], command, Path(trace_dir), appending)
    # write_configuration print()s advice for the reprozip CLI: keep it out of the
    # study's recorded stdout, in the tracer's log.
    import contextlib
    with open(logfile, "a") as log, contextlib.redirect_stdout(log):
        trace.write_configuration(Path(trace_dir), True, True, overwrite=not appending)
    exit_code = status & 0xFF
    signal = status & 0xFF if status & 0x0100 else None
    with open(statusfile, "w") as fh:
        json.dump({"exit_code": None if signal else exit_code, "signal": signal}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
