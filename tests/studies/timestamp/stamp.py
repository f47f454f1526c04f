"""Sums the numbers of data/values.csv and writes the result with the time it ran.

The sum reproduces; the timestamp, by nature, does not."""

import csv
import datetime
import json
import os

with open("data/values.csv", newline="") as fh:
    values = [float(row["value"]) for row in csv.DictReader(fh)]
os.makedirs("results", exist_ok=True)
with open("results/sum.csv", "w") as fh:
    fh.write(f"count,total\n{len(values)},{sum(values)}\n")
with open("results/provenance.json", "w") as fh:
    json.dump({"total": sum(values),
               "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat()},
              fh, indent=2)
