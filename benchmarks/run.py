"""Benchmark studypack's pack, verify and unpack against tar + zstd + sha256sum.

    .venv/bin/python benchmarks/run.py [--dir DIR] [--size F] [--repeat N] [--level L]

Generates the data set (see dataset.py) into DIR (default: a new folder under /tmp,
removed at the end; a DIR you give is kept and its data reused), then runs each
studypack command and its reference command alternately, each in a fresh child
(measure.py) so that its peak RSS is its own, and prints a Markdown table: median wall
time, ratio to the reference, peak RSS, bundle size against `tar | zstd` of the same
payload. Nothing here asserts a time: the table is for people (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
STUDYPACK = [PY, "-m", "studypack"]
# No container engine for the benchmark: the environment step must not depend on
# which images another process left in the daemon (nothing is built with --no-image).
ENV = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock",
       "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
STEPS = ("pack", "create", "traced", "longrun", "verify", "unpack", "info", "level",
         "reprozip")
LONG_RUN_S = 5   # the "longrun" study sleeps this long after its work
# Rows about the environment (study_rows.py); they need the Docker daemon.
STUDY_STEPS = ("size", "scisize", "replay", "rebuild")


def q(value) -> str:
    return "'" + str(value).replace("'", "'\\''") + "'"


def measure(command: list[str] | str) -> dict:
    """Run one command in a fresh measuring child; return wall, rss_mb, phases."""
    subprocess.run(["sync"], check=False)   # dirty pages of the last run: not ours
    shell = isinstance(command, str)
    argv = [PY, str(HERE / "measure.py")] + (["--shell", "--", command] if shell
                                             else ["--"] + command)
    # cwd: `python -m studypack` imports the studypack of its working folder first
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=True,
                          cwd=REPO)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"benchmark command failed ({result['rc']}): {command}\n"
                         f"{result['stderr']}{result['stdout']}")
    return result


class Row:
    def __init__(self, name: str, reference: str):
        self.name, self.reference = name, reference
        self.ours: list[dict] = []
        self.refs: list[dict] = []
        self.size = self.ref_size = None
        self.note = ""

    def line(self, key="wall") -> str:
        ours = statistics.median(r[key] if key in r else r["phases"][key] for r in self.ours) \
            if self.ours else None
        ref = statistics.median(r["wall"] for r in self.refs) if self.refs else None
        ratio = f"{ours / ref:.2f}×" if ours and ref else "—"
        rss = max(r["rss_mb"] for r in self.ours) if self.ours else None
        ref_rss = max(r["rss_mb"] for r in self.refs) if self.refs else None
        size = (f"{self.size / 1e6:.1f} / {self.ref_size / 1e6:.1f} MB = "
                f"{self.size / self.ref_size:.4f}" if self.size and self.ref_size else "—")
        cpu, ref_cpu = _median(self.ours, "cpu"), _median(self.refs, "cpu")
        cpu_cell = f"{fmt_s(cpu)} / {fmt_s(ref_cpu)}" if ref_cpu else fmt_s(cpu)
        cells = [self.name, fmt_s(ours), self.reference, fmt_s(ref), ratio, cpu_cell,
                 fmt_mb(rss), fmt_mb(ref_rss), size, self.note]
        return "| " + " | ".join(cells) + " |"


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt_s(v) -> str:
    return "—" if v is None else f"{v:.2f} s"


def fmt_mb(v) -> str:
    return "—" if v is None else f"{v:.0f} MB"


def machine() -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    zstd = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip()
    import zstandard
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "python-zstandard": zstandard.__version__,
            "zstd": zstd, "load": os.getloadavg()}


def disk_of(path: Path) -> str:
    out = subprocess.run(["df", "-h", "--output=source,fstype,size,avail", str(path)],
                         capture_output=True, text=True).stdout.splitlines()
    return out[-1].split() and " ".join(out[-1].split()) if out else "?"


def study_python(base: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    venv = base / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "numpy"], check=True)
    return python


def unpack_with_tar(bundle: Path, dest: Path) -> Path:
    """The bag of a bundle, unpacked by plain tools: the reference payload."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    subprocess.run(f"zstd -dcq {q(bundle)} | tar -xf - -C {q(dest)}", shell=True, check=True)
    (bag,) = list(dest.iterdir())
    return bag


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="work folder (kept; data reused)")
    parser.add_argument("--size", type=float, default=1.0,
                        help="scale the CSV and random files (10 ≈ 4 GB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--level", type=int, default=19,
                        help="also pack once at this zstd level (0: skip)")
    parser.add_argument("--only", default=",".join(STEPS),
                        help=f"comma-separated steps among {','.join(STEPS + STUDY_STEPS)}")
    parser.add_argument("--python", help="the study's Python (default: a venv with numpy)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--base-image", default=None,
                        help="base image for the Dockerfile of the size/replay/rebuild rows "
                             "(default: the test suite's local Debian + Python image)")
    args = parser.parse_args(argv)
    steps = set(args.only.split(","))

    base = args.dir or Path(tempfile.mkdtemp(prefix="studypack-bench-", dir="/tmp"))
    base = base.resolve()
    if base.is_relative_to(REPO):
        raise SystemExit("Give a --dir outside the repository.")
    base.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    import dataset

    started = time.time()
    python = study_python(base, args.python)
    print(f"preparing the data set in {base} (size factor {args.size}) …", file=sys.stderr)
    study = dataset.make_study(base, python, args.size)
    out = base / "out"
    out.mkdir(exist_ok=True)
    scratch = base / "x"
    facts = machine()
    facts["disk"] = disk_of(base)
    facts["data_bytes"] = sum(p.stat().st_size for p in study.rglob("*") if p.is_file())

    rows: dict[str, Row] = {}
    pack_out, ref_pack = out / "pack.studypack", out / "ref-pack.tar.zst"
    rows["pack"] = Row("pack (writer, same files)", "tar -cf - \\| zstd -T0 -3")
    rows["create"] = Row("create --no-trace: pack phase", "tar \\| zstd -T0 -3 of its bag")
    rows["create-total"] = Row("create --no-trace: whole command", "")
    rows["traced"] = Row("create (traced): pack phase", "tar \\| zstd -T0 -3 of its bag")
    rows["traced-total"] = Row("create (traced): whole − run", "tar \\| zstd -T0 -3 of its bag")
    rows["longrun"] = Row(f"create (traced, a run of ~{LONG_RUN_S} s): whole − run",
                          "tar \\| zstd -T0 -3 of its bag")
    rows["verify"] = Row("verify", "zstd -dc \\| tar -x + sha256sum -c")
    rows["unpack"] = Row("unpack", "zstd -dc \\| tar -x")
    rows["info"] = Row("info", "")
    bags: dict[str, Path] = {}
    run_durations: list[float] = []
    long_durations: list[float] = []
    long_study = slow_copy(study, base / "longrun") if "longrun" in steps else None

    def clean_scratch():
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()

    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat} (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr)
        if "pack" in steps or "verify" in steps or "unpack" in steps or "info" in steps:
            r = rows["pack"]
            r.ours.append(measure([PY, str(HERE / "pack_files.py"), str(study), str(pack_out)]))
            r.refs.append(measure(f"tar -cf - -C {q(study.parent)} {q(study.name)} "
                                  f"| zstd -T0 -3 -q -f -o {q(ref_pack)}"))
            r.size, r.ref_size = pack_out.stat().st_size, ref_pack.stat().st_size
        for key, extra in (("create", ["--no-trace"]), ("traced", [])):
            if key not in steps:
                continue
            bundle, ref = out / f"{key}.studypack", out / f"ref-{key}.tar.zst"
            got = measure(STUDYPACK + ["create", *extra, "--no-image", str(study), "-o",
                                       str(bundle), "--force"])
            got["pack_phase"] = got["wall"] - got["phases"]["pack"]
            if key not in bags:
                bags[key] = unpack_with_tar(bundle, out / f"bag-{key}")
            bag = bags[key]
            ref_run = measure(f"tar -cf - -C {q(bag.parent)} {q(bag.name)} "
                              f"| zstd -T0 -3 -q -f -o {q(ref)}")
            rows[key].ours.append({**got, "wall": got["pack_phase"], "cpu": None})
            rows[key].refs.append(ref_run)
            rows[key].size, rows[key].ref_size = bundle.stat().st_size, ref.stat().st_size
            if key == "create":
                rows["create-total"].ours.append(got)
            else:
                from studypack.bundle.reader import read_info
                duration = read_info(bundle).metadata["runs"][0]["duration_s"]
                run_durations.append(duration)
                rows["traced-total"].ours.append({**got, "wall": got["wall"] - duration,
                                                  "cpu": None})
                rows["traced-total"].refs.append(ref_run)
        if "longrun" in steps:   # the run hides what create does meanwhile
            from studypack.bundle.reader import read_info
            r = rows["longrun"]
            bundle, ref = out / "longrun.studypack", out / "ref-longrun.tar.zst"
            got = measure(STUDYPACK + ["create", "--no-image", str(long_study), "-o",
                                       str(bundle), "--force"])
            long_durations.append(read_info(bundle).metadata["runs"][0]["duration_s"])
            if "longrun" not in bags:
                bags["longrun"] = unpack_with_tar(bundle, out / "bag-longrun")
            r.ours.append({**got, "wall": got["wall"] - long_durations[-1], "cpu": None})
            r.refs.append(measure(f"tar -cf - -C {q(bags['longrun'].parent)} "
                                  f"{q(bags['longrun'].name)} | zstd -T0 -3 -q -f -o {q(ref)}"))
            r.size, r.ref_size = bundle.stat().st_size, ref.stat().st_size
        if "verify" in steps:
            r = rows["verify"]
            r.ours.append(measure(STUDYPACK + ["verify", "-q", str(pack_out)]))
            clean_scratch()
            r.refs.append(measure(f"zstd -dcq {q(pack_out)} | tar -xf - -C {q(scratch)} && "
                                  f"cd {q(scratch / study.name)} && "
                                  "sha256sum -c --quiet manifest-sha256.txt"))
        if "unpack" in steps:
            r = rows["unpack"]
            clean_scratch()
            r.ours.append(measure(STUDYPACK + ["unpack", "-q", str(pack_out), str(scratch)]))
            clean_scratch()
            r.refs.append(measure(f"zstd -dcq {q(pack_out)} | tar -xf - -C {q(scratch)}"))
            clean_scratch()
        if "info" in steps:
            rows["info"].ours.append(measure(STUDYPACK + ["info", str(pack_out)]))
        # so far, in case a long run is cut short
        print("\n".join(row.line() for row in rows.values() if row.ours), file=sys.stderr)

    if "traced" in steps and run_durations:
        rows["traced-total"].note = (f"run itself {statistics.median(run_durations):.2f} s, "
                                     "incl. pip download of the wheels")
    if long_durations:
        rows["longrun"].note = f"run itself {statistics.median(long_durations):.2f} s"
    if "create" in steps:
        rows["create-total"].note = "incl. the environment step (pip download of the wheels)"
    if "info" in steps:
        rows["info"].note = f"bundle of {pack_out.stat().st_size / 1e6:.0f} MB"

    if args.level and "level" in steps:
        row = rows["level"] = Row(f"pack --level {args.level}",
                                  f"tar \\| zstd -T0 -{args.level}")
        bundle, ref = out / f"level{args.level}.studypack", out / f"ref-level.tar.zst"
        row.ours.append(measure([PY, str(HERE / "pack_files.py"), str(study), str(bundle),
                                 "--level", str(args.level)]))
        row.refs.append(measure(f"tar -cf - -C {q(study.parent)} {q(study.name)} "
                                f"| zstd -T0 -{args.level} -q -f -o {q(ref)}"))
        row.size, row.ref_size = bundle.stat().st_size, ref.stat().st_size

    if "reprozip" in steps:
        rows["reprozip"] = reprozip_row(base, study, python, out)

    shutil.rmtree(scratch, ignore_errors=True)
    study_lines = study_tables(steps, base, python, args)
    facts["load_after"] = os.getloadavg()
    facts["minutes"] = round((time.time() - started) / 60, 1)
    print(render(rows, facts, args))
    if study_lines:
        print("\n| what | studypack | reference | ratio | note |\n|---|---|---|---|---|")
        print("\n".join(study_lines))
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "rows": {
            k: {"ours": r.ours, "refs": r.refs, "size": r.size, "ref_size": r.ref_size}
            for k, r in rows.items()}}, indent=1, default=str))
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def slow_copy(study: Path, dest: Path) -> Path:
    """The study again (its files hard-linked), its script sleeping LONG_RUN_S seconds
    after its work: a run long enough for create to do during it what it can."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(study, dest, copy_function=os.link,
                    ignore=shutil.ignore_patterns("results"))
    script = dest / "analysis.py"
    text = script.read_text()
    script.unlink()   # not the hard link: the original study stays as it is
    script.write_text(text + f"\nimport time\ntime.sleep({LONG_RUN_S})\n")
    return dest


def study_tables(steps: set[str], base: Path, python: Path, args) -> list[str]:
    """The rows of study_rows.py: sizes, replay latency per mode, cold rebuild."""
    import study_rows

    if not steps & set(STUDY_STEPS):
        return []
    image = args.base_image or study_rows.BASE_IMAGE
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        print(f"the base image {image} is not here: no Dockerfile, image or rebuild rows",
              file=sys.stderr)
        image = None
    work = base / "study-rows"
    example = study_rows.example_study(work, python)
    lines: list[str] = []

    def add(new: list[str]) -> None:
        lines.extend(new)
        print("\n".join(new), file=sys.stderr)    # so far, in case a long run is cut short

    if "size" in steps:
        add(study_rows.size_rows("example", example, python, work / "size", image))
    if "scisize" in steps:
        sci, sci_python = study_rows.sci_study(base)
        add(study_rows.size_rows("scientific stack", sci, sci_python, work / "sci", image))
    if "replay" in steps:
        add(study_rows.replay_rows(example, python, work / "replay", image, args.repeat))
    if "rebuild" in steps and image:
        add(study_rows.rebuild_rows(example, work / "rebuild", image, args.repeat))
    return lines


def reprozip_row(base: Path, study: Path, python: Path, out: Path) -> Row:
    """ReproZip's own packer (gzip via tarfile) on a run that reads the same data."""
    row = Row("reprozip pack (same study, run reads all data)", "tar -cf - \\| zstd -T0 -3")
    trace = base / "reprozip-trace"
    reprozip = str(Path(PY).parent / "reprozip")
    if not trace.exists():
        reads = "cat data/bench/big.csv data/bench/random.bin > /dev/null && " \
                "cat data/bench/small/* > /dev/null"
        subprocess.run([reprozip, "trace", "-d", str(trace), "sh", "-c",
                        f"{q(python)} analysis.py --steps 100 && {reads}"],
                       cwd=study, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=ENV)
    rpz = out / "study.rpz"
    rpz.unlink(missing_ok=True)
    row.ours.append(measure([reprozip, "pack", "-d", str(trace), str(rpz)]))
    ref = out / "ref-pack.tar.zst"
    row.refs.append(measure(f"tar -cf - -C {q(study.parent)} {q(study.name)} "
                            f"| zstd -T0 -3 -q -f -o {q(ref)}"))
    row.size, row.ref_size = rpz.stat().st_size, ref.stat().st_size
    row.note = "size: .rpz (gzip, + libraries) vs tar \\| zstd of the study"
    return row


def render(rows: dict[str, Row], facts: dict, args) -> str:
    lines = [
        f"Machine: {facts['nproc']} CPUs, {facts['cpu']}, kernel {facts['kernel']}; "
        f"disk {facts['disk']}; Python {facts['python']}, python-zstandard "
        f"{facts['python-zstandard']}, {facts['zstd']}.",
        f"Data: {facts['data_bytes'] / 1e6:.0f} MB in the study (size factor {args.size}); "
        f"median of {args.repeat} alternating runs; load average before "
        f"{facts['load'][0]:.2f}, after {facts['load_after'][0]:.2f}; "
        f"{facts['minutes']} min in all.",
        "",
        "| operation | studypack | reference | reference time | ratio | CPU (user+sys): "
        "studypack / reference | peak RSS | reference peak RSS | size: bundle / reference "
        "| note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row.line() for row in rows.values() if row.ours]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
