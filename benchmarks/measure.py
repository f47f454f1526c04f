"""Run one command in a fresh child and print its wall time and peak RSS as JSON.

Used by run.py, one process per measurement, so that ``ru_maxrss`` of
RUSAGE_CHILDREN is the peak of this one command (the largest process of a pipeline).
Lines on the child's stderr that start with ``[phase]`` (studypack's plain progress
output) are timestamped, so the packing phase of `studypack create` can be timed apart
from the traced run.

    python measure.py [--shell] -- COMMAND...
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    shell = argv[0] == "--shell"
    if shell:
        argv = argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    command = argv[0] if shell else argv
    start = time.perf_counter()
    child = subprocess.Popen(command, shell=shell, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             executable="/bin/bash" if shell else None)
    phases: dict[str, float] = {}
    err_lines = []
    for line in child.stderr:
        err_lines.append(line)
        if line.startswith("[") and "]" in line:
            phases.setdefault(line[1:line.index("]")], time.perf_counter() - start)
    out = child.stdout.read()
    rc = child.wait()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "rss_mb": usage.ru_maxrss / 1024, "rc": rc, "phases": phases,
               "stdout": out[-4000:], "stderr": "".join(err_lines)[-4000:]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
