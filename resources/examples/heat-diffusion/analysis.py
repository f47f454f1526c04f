"""Heat diffusion on a rod: explicit finite differences.

Reads the initial temperature profile and the material parameters from data/,
simulates --steps time steps and writes the final profile (CSV) and summary
statistics (JSON) to results/.
"""

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def load_profile(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([float(r["x"]) for r in rows])
    temperature = np.array([float(r["temperature"]) for r in rows])
    return x, temperature


def simulate(temperature: np.ndarray, alpha: float, dx: float, dt: float, steps: int) -> np.ndarray:
    r = alpha * dt / dx**2
    if r > 0.5:
        raise SystemExit(f"unstable scheme: alpha*dt/dx^2 = {r:.3f} > 0.5")
    u = temperature.copy()
    for _ in range(steps):
        u[1:-1] = u[1:-1] + r * (u[2:] - 2 * u[1:-1] + u[:-2])
    return u


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--data", default="data")
    parser.add_argument("--out", default="results")
    args = parser.parse_args()

    data = Path(args.data)
    params = json.loads((data / "material.json").read_text())
    x, t0 = load_profile(data / "initial.csv")
    dx = float(x[1] - x[0])
    final = simulate(t0, params["alpha"], dx, params["dt"], args.steps)

    out = Path(args.out)
    out.mkdir(exist_ok=True)
    with open(out / "profile.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "temperature"])
        for xi, ti in zip(x, final):
            writer.writerow([f"{xi:.4f}", f"{ti:.10f}"])
    summary = {
        "steps": args.steps,
        "mean_temperature": round(float(final.mean()), 10),
        "max_temperature": round(float(final.max()), 10),
        "energy_change": round(float(final.sum() - t0.sum()) * dx, 10),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"simulated {args.steps} steps on {len(x)} points; mean temperature "
          f"{summary['mean_temperature']:.4f}")


if __name__ == "__main__":
    main()
