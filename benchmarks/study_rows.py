"""Benchmark rows about a study's environment: bundle size, replay latency, rebuild.

Used by run.py (steps ``size``, ``scisize``, ``replay``, ``rebuild``). These rows need
the Docker daemon (a trace image, a built image, `docker save`) and the base image the
Dockerfile is pinned to (``--base-image``, by default the test suite's local
Debian + Python image).

- size: the example study's bundle (``create`` with its Dockerfile, no saved image)
  against `reprozip pack` of the same run (.rpz) and `docker save | zstd -T0 -3` of the
  image built from the bundle's Dockerfile; and against the bound "the vendored
  environment compressed + the traced files no package reproduces, compressed"
  (`tar | zstd -3` of data/env and of data/rootfs of the bag);
- scisize: the same for a study using numpy, scipy, pandas and matplotlib from PyPI;
- replay: each mode the replay registry says can run the bundle here (trace, directory,
  sandbox, image, rebuild; the bundle is made with ``--save-image`` so that image mode
  can), against its floor measured in the same round on the same bundle — trace, image
  and rebuild: `studypack verify` + `docker run --rm` of one container + the plain run
  of the command (image mode's `docker load` of the saved image and rebuild mode's
  cached build are above that floor, not in it); directory and sandbox: `studypack
  verify` + the plain run. Directory and sandbox also on the bundle `create` makes by
  default (no saved image), against that bundle's own verify. The trace rows are a first
  replay (which imports the image) and a repeated one (which reuses it); likewise
  directory and sandbox: a first replay (which unpacks, rebuilds the files stored once
  and keeps the traced files, in a cache folder of the benchmark's own, emptied first)
  and a repeated one (which reuses them); first replays are measured in every round;
- rebuild: studypack's image build of the bundle's Dockerfile and context with no
  cache against `docker build --no-cache` of the same Dockerfile and context.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
STUDYPACK = [PY, "-m", "studypack"]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
BASE_IMAGE = "127.0.0.1:5000/studypack-test/debian-python:bookworm"
BEFORE_MB = 45.2      # the example study's bundle before store-once (issue #17)

SCI_SCRIPT = '''"""Fit a damped oscillation to noisy samples and plot it."""
import json, os
import numpy as np
import pandas as pd
from scipy.optimize import curve_fit
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

frame = pd.read_csv("data/samples.csv")
model = lambda t, a, k, w: a * np.exp(-k * t) * np.cos(w * t)
params, _ = curve_fit(model, frame.t, frame.y, p0=(1.0, 0.1, 2.0))
os.makedirs("results", exist_ok=True)
with open("results/fit.json", "w") as fh:
    json.dump({"a": round(params[0], 6), "k": round(params[1], 6), "w": round(params[2], 6)}, fh)
frame.assign(fit=model(frame.t, *params)).to_csv("results/fit.csv", index=False)
plt.plot(frame.t, frame.y, ".", frame.t, model(frame.t, *params), "-")
plt.savefig("results/fit.png", dpi=72)
'''

SCI_SPEC = '''[study]
name = "damped-fit"
title = "A damped oscillation fitted with SciPy"
license = "CC-BY-4.0"
[[study.authors]]
name = "Ada Lovelace"
[run]
command = ["python", "analysis.py"]
[data]
paths = ["data/"]
[outputs]
paths = ["results/"]
[environment]
kind = "venv"
python = "{python}"
'''


def sci_study(base: Path) -> tuple[Path, Path]:
    """A venv with numpy, scipy, pandas, matplotlib (PyPI) and a study using all four."""
    venv = base / "scivenv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "numpy", "scipy", "pandas", "matplotlib"], check=True)
    study = base / "damped-fit"
    if not study.exists():
        (study / "data").mkdir(parents=True)
        (study / "analysis.py").write_text(SCI_SCRIPT)
        (study / "studypack.toml").write_text(SCI_SPEC.format(python=python))
        import math
        import random
        rnd = random.Random(17)
        rows = ["t,y"] + [f"{t / 50:.4f},{math.exp(-0.2 * t / 50) * math.cos(3 * t / 50) + rnd.gauss(0, 0.05):.6f}"
                          for t in range(2000)]
        (study / "data" / "samples.csv").write_text("\n".join(rows) + "\n")
    return study, python


def example_study(base: Path, python: Path) -> Path:
    study = base / "heat-diffusion"
    if not study.exists():
        shutil.copytree(REPO / "resources/examples/heat-diffusion", study,
                        ignore=shutil.ignore_patterns(".venv", "results"))
        spec = study / "studypack.toml"
        spec.write_text(spec.read_text().replace('python = ".venv/bin/python"',
                                                 f'python = "{python}"'))
    return study


def sh(command: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True,
                          env=ENV, executable="/bin/bash", **kw)


def q(value) -> str:
    return "'" + str(value).replace("'", "'\\''") + "'"


def zstd_size_of(folder: Path) -> int:
    if not folder.exists():
        return 0
    out = sh(f"tar -cf - -C {q(folder.parent)} {q(folder.name)} | zstd -T0 -3 -q -c | wc -c")
    return int(out.stdout)


def create(study: Path, out: Path, base_image: str | None, *extra: str) -> Path:
    args = STUDYPACK + ["create", str(study), "-o", str(out), "--force", "-q", *extra]
    args += ["--base-image", base_image] if base_image else ["--no-image"]
    subprocess.run(args, check=True, env=ENV, capture_output=True)
    return out


def size_rows(name: str, study: Path, python: Path, work: Path, base_image: str | None) -> list[str]:
    """Markdown lines: bundle vs .rpz vs docker save | zstd, and vs the store-once bound."""
    work.mkdir(parents=True, exist_ok=True)
    bundle = create(study, work / f"{name}.studypack", base_image)
    bag_root = work / f"{name}-bag"
    shutil.rmtree(bag_root, ignore_errors=True)
    bag_root.mkdir()
    sh(f"zstd -dcq {q(bundle)} | tar -xf - -C {q(bag_root)}")
    (bag,) = list(bag_root.iterdir())
    env_z, rootfs_z = zstd_size_of(bag / "data/env"), zstd_size_of(bag / "data/rootfs")
    size = bundle.stat().st_size
    import json
    meta = json.loads((bag / "studypack.json").read_text())
    refs = (meta.get("traced_files") or {}).get("from_packages") or {}
    lines = [f"| {name}: bundle | {size / 1e6:.1f} MB | env {env_z / 1e6:.1f} MB + traced files "
             f"not reproduced {rootfs_z / 1e6:.1f} MB (each `tar \\| zstd -3`) = "
             f"{(env_z + rootfs_z) / 1e6:.1f} MB | {size / (env_z + rootfs_z):.3f}× | "
             f"{refs.get('files', 0)} traced files ({refs.get('bytes', 0) / 1e6:.1f} MB) "
             "stored once, in their package |"]
    # reprozip pack of the same command
    trace_dir = work / f"{name}-reprozip"
    shutil.rmtree(trace_dir, ignore_errors=True)
    command = json.loads((bag / "data/runs/1/run.json").read_text())["command"]
    reprozip = str(Path(PY).parent / "reprozip")
    env = {**ENV, "PATH": f"{python.parent}{os.pathsep}{ENV['PATH']}"}
    subprocess.run([reprozip, "trace", "-d", str(trace_dir), *command], cwd=study, check=True,
                   capture_output=True, env=env)
    rpz = work / f"{name}.rpz"
    rpz.unlink(missing_ok=True)
    subprocess.run([reprozip, "pack", "-d", str(trace_dir), str(rpz)], check=True,
                   capture_output=True, env=env)
    lines.append(f"| {name}: `reprozip pack` (.rpz) | {rpz.stat().st_size / 1e6:.1f} MB | "
                 f"bundle / .rpz | {size / rpz.stat().st_size:.2f}× | the same run traced |")
    image = (meta.get("environment") or {}).get("image") or {}
    if image.get("id"):
        saved = int(sh(f"docker save {image['id']} | zstd -T0 -3 -q -c | wc -c").stdout)
        lines.append(f"| {name}: `docker save \\| zstd -T0 -3` of its image | "
                     f"{saved / 1e6:.1f} MB | bundle / image | {size / saved:.2f}× | the image "
                     "built from the bundle's Dockerfile (base image included) |")
    return lines


# ---------------------------------------------------------------------- latency

def timed(argv: list[str] | str, cwd: Path | None = None, env=None) -> float:
    # (cwd: `python -m studypack` imports the studypack of its working folder first,
    # whatever PYTHONPATH says: by default, the one beside these benchmarks)
    t0 = time.perf_counter()
    done = subprocess.run(argv, shell=isinstance(argv, str), cwd=cwd or REPO,
                          env=env or ENV,
                          capture_output=True, text=True, executable="/bin/bash"
                          if isinstance(argv, str) else None)
    wall = time.perf_counter() - t0
    if done.returncode not in (0,):
        raise SystemExit(f"benchmark command failed ({done.returncode}): {argv}\n"
                         f"{done.stderr[-2000:]}")
    return wall


def modes_here(bundle: Path) -> list[str]:
    """The replay modes that can run this bundle on this machine (the replay registry's
    own check, from the bundle's metadata)."""
    code = ("import json, sys\n"
            "from studypack.bundle.reader import read_info\n"
            "from studypack.replay.registry import BundleFacts, check_modes\n"
            "facts = BundleFacts.from_metadata(read_info(sys.argv[1]).metadata)\n"
            "print(json.dumps([c.mode for c in check_modes(facts) if c.possible]))\n")
    out = subprocess.run([PY, "-c", code, str(bundle)], capture_output=True, text=True,
                         env=ENV, check=True).stdout
    import json
    known = json.loads(out)
    return [m for m in ("trace", "directory", "sandbox", "image", "rebuild") if m in known]


def replay_rows(study: Path, python: Path, work: Path, base_image: str | None,
                repeat: int) -> list[str]:
    """Two bundles of the example: made with ``--save-image`` (every mode can run it)
    and as ``create`` makes it by default (no saved image: what a reviewer most often
    gets). Each mode against its floor measured on the same bundle in the same round.
    First replays (trace: imports the image; directory and sandbox: unpack, rebuild the
    files stored once and keep them) are measured in every round, after removing what
    the round before kept."""
    work.mkdir(parents=True, exist_ok=True)
    bundles = {"saved": create(study, work / "replay.studypack", base_image,
                               *(["--save-image"] if base_image else []))}
    if base_image:
        bundles["plain"] = create(study, work / "replay-plain.studypack", base_image)
    plain = work / "plain"
    shutil.rmtree(plain, ignore_errors=True)
    shutil.copytree(study, plain, ignore=shutil.ignore_patterns("results"))
    command = f"{q(python)} analysis.py --steps 100 > /dev/null"
    modes = modes_here(bundles["saved"])
    cached = [m for m in ("directory", "sandbox") if m in modes]
    rows: dict[str, list[float]] = defaultdict(list)
    cache = work / "cache"     # the traced files kept by directory and sandbox: this run's own
    env = {**ENV, "XDG_CACHE_HOME": str(cache)}

    def replay(mode: str, bundle: Path) -> float:
        return timed(STUDYPACK + ["replay", "--mode", mode, str(bundle)], env=env)

    for round_ in range(repeat):
        print(f"replay round {round_ + 1}/{repeat} (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr)
        rows["container"].append(timed(f"docker run --rm --network none {q(base_image)} true")
                                 if base_image else 0.0)
        rows["plain"].append(timed(command, cwd=plain))
        for key, bundle in bundles.items():
            rows[f"verify/{key}"].append(timed(STUDYPACK + ["verify", "-q", str(bundle)]))
            if key == "saved" and "trace" in modes:   # the first imports the image
                drop_trace_images()
                rows["trace-first/saved"].append(replay("trace", bundle))
            for mode in cached:                       # the first keeps the traced files
                shutil.rmtree(cache, ignore_errors=True)
                rows[f"{mode}-first/{key}"].append(replay(mode, bundle))
            for mode in modes if key == "saved" else cached:
                rows[f"{mode}/{key}"].append(replay(mode, bundle))
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    lines = []
    for key, bundle in bundles.items():
        what = ("with a saved image" if key == "saved" else "as `create` makes it (no saved "
                "image)") + f", {bundle.stat().st_size / 1e6:.0f} MB"
        lines.append(f"| floor parts, bundle {what} | verify {med[f'verify/{key}']:.2f} s, one "
                     f"container (`docker run --rm`) {med['container']:.2f} s, plain run "
                     f"{med['plain']:.2f} s | | | |")
        floor_trace = med[f"verify/{key}"] + med["container"] + med["plain"]
        floor_dir = med[f"verify/{key}"] + med["plain"]
        targets = {"trace": (floor_trace, 1.5, "verify + one container + plain run"),
                   "directory": (floor_dir, 1.2, "verify + plain run"),
                   "sandbox": (floor_dir, 1.2, "verify + plain run"),
                   "image": (floor_trace, None, "verify + one container + plain run"),
                   "rebuild": (floor_trace, None, "verify + one container + plain run")}
        for mode in ["trace", "directory", "sandbox", "image", "rebuild"]:
            for first in (True, False):
                name = f"{mode}{'-first' if first else ''}/{key}"
                if name not in med:
                    continue
                floor, target, what = targets[mode]
                state = {"trace": ("first replay (imports the image)", "image reused"),
                         "directory": ("first replay (keeps the traced files)",
                                       "traced files kept"),
                         "sandbox": ("first replay (keeps the traced files)",
                                     "traced files kept")}.get(mode)
                label = f"{mode}, {state[0] if first else state[1]}" if state else mode
                goal = f" (target {target}×)" if target else ""
                which = "saved image" if key == "saved" else "no saved image"
                lines.append(f"| replay --mode {label}, {which} | {med[name]:.2f} s | "
                             f"{what}: {floor:.2f} s | {med[name] / floor:.2f}×{goal} | "
                             f"median of {len(rows[name])} |")
    return lines


def drop_trace_images() -> None:
    out = subprocess.run(["docker", "images", "-q", "studypack-trace"], capture_output=True,
                         text=True).stdout.split()
    if out:
        subprocess.run(["docker", "rmi", "-f", *out], capture_output=True)


def rebuild_rows(study: Path, work: Path, base_image: str, repeat: int) -> list[str]:
    """Cold builds: studypack's build path (the same call `replay --mode rebuild` makes)
    with no cache, and `docker build --no-cache` of the same Dockerfile and context."""
    work.mkdir(parents=True, exist_ok=True)
    bundle = create(study, work / "rebuild.studypack", base_image, "--no-image")
    if not bundle.exists():
        return []
    unpacked = work / "rebuild-bag"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir()
    sh(f"zstd -dcq {q(bundle)} | tar -xf - -C {q(unpacked)}")
    (bag,) = list(unpacked.iterdir())
    context = work / "rebuild-context"     # the same files studypack sends: env/ and study/
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    for part in ("env", "study"):
        shutil.copytree(bag / "data" / part, context / part)
    ours, refs = [], []
    driver = (f"from studypack.engine import Engine\n"
              f"from studypack.environment import bundle_build_context\n"
              f"e = Engine.connect()\n"
              f"e.build(bundle_build_context(__import__('pathlib').Path({str(bag / 'data')!r})),"
              f" tag='studypack-bench-rebuild:ours', dockerfile='env/Dockerfile', nocache=True)\n")
    for round_ in range(repeat):
        ours.append(timed([PY, "-c", driver]))
        refs.append(timed(f"docker build -q --no-cache --network none -f env/Dockerfile "
                          f"-t studypack-bench-rebuild:ref .", cwd=context,
                          env={**ENV, "DOCKER_BUILDKIT": "0"}))
    subprocess.run(["docker", "rmi", "-f", "studypack-bench-rebuild:ours",
                    "studypack-bench-rebuild:ref"], capture_output=True)
    o, r = statistics.median(ours), statistics.median(refs)
    return [f"| cold rebuild of the example (no cache) | {o:.2f} s | `docker build --no-cache` "
            f"of the same Dockerfile and context: {r:.2f} s | {o / r:.2f}× (target 1.2×) | "
            f"median of {repeat} |"]
