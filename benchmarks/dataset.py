"""Generate the benchmark data set: the example study plus ~400 MB of data.

The data is deterministic (seeded) so bundle sizes compare across runs:
- ``big.csv``: CSV-like text of measurements (256 MB x size factor),
- ``random.bin``: incompressible bytes (128 MB x size factor),
- ``small/``: 2,000 small text files (0.5-8 KB each).
It goes into ``<dir>/study/data/bench/``, beside a copy of the example study, so that
`studypack create` packs it as the study's data.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

MB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "resources" / "examples" / "heat-diffusion"
SMALL_FILES = 2000
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
         "omicron pi rho sigma tau upsilon phi chi psi omega rod heat flux sample "
         "station reading calibrated sensor drift").split()


def write_csv(path: Path, size: int, seed: int = 1) -> None:
    """Rows of a sensor log: realistic text that zstd compresses about 2.5x.

    A 16 MB block of rows is generated, then written again and again with its lines
    shuffled: every block differs (zstd's window at level 3 is far smaller than a
    block), and a 4 GB file takes seconds, not minutes, to make."""
    rng = random.Random(seed)
    lines = []
    n = 0
    while n < 16 * MB:
        row = len(lines) + 1
        line = (f"{row},{1700000000 + row * 7},st{rng.randrange(400):03d},"
                f"{rng.gauss(18, 6):.4f},{rng.gauss(1013, 9):.2f},"
                f"{rng.random():.5f},{rng.choice('ABCD')}\n")
        lines.append(line)
        n += len(line)
    written = 0
    with open(path, "w", buffering=8 * MB) as fh:
        while written < size:
            block = "".join(lines)[:size - written]
            fh.write(block)
            written += len(block)
            rng.shuffle(lines)


def write_random(path: Path, size: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(8 * MB, left)
            fh.write(rng.randbytes(n))
            left -= n


def write_small(folder: Path, count: int = SMALL_FILES, seed: int = 3) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = rng.randrange(512, 8192)
        text, n = [], 0
        while n < size:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 14))) + "\n"
            text.append(line)
            n += len(line)
        (folder / f"note-{i:04d}.txt").write_text("".join(text)[:size])


def make_study(base: Path, python: Path, size: float = 1.0) -> Path:
    """``base/study``: the example study with the bench data; reused when it matches."""
    study = base / "study"
    bench = study / "data" / "bench"
    stamp = base / "dataset.json"
    wanted = {"size": size, "small_files": SMALL_FILES, "python": str(python)}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted and bench.is_dir():
        return study
    shutil.rmtree(study, ignore_errors=True)
    shutil.copytree(EXAMPLE, study, ignore=shutil.ignore_patterns(".venv", "results"))
    spec = study / "studypack.toml"
    spec.write_text(spec.read_text().replace('python = ".venv/bin/python"',
                                             f'python = "{python}"'))
    bench.mkdir(parents=True)
    write_csv(bench / "big.csv", int(256 * MB * size))
    write_random(bench / "random.bin", int(128 * MB * size))
    write_small(bench / "small")
    # the outputs a `--no-trace` create packs as they are
    subprocess.run([str(python), "analysis.py", "--steps", "100"], cwd=study, check=True,
                   stdout=subprocess.DEVNULL)
    stamp.write_text(json.dumps(wanted))
    return study
