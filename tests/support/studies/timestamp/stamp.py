"""Step 1: sums the numbers of data/values.csv and notes when it ran.

The sum reproduces; the two timestamps (an ISO date in provenance.json, seconds since
the epoch in clock.csv), by nature, do not."""

import csv
import datetime
import json
import os
import sys
import time

print(f"python {sys.version.split()[0]} from {sys.prefix}")
with open("data/values.csv", newline="") as fh:
    values = [float(row["value"]) for row in csv.DictReader(fh)]
os.makedirs("results", exist_ok=True)
with open("results/sum.csv", "w") as fh:
    fh.write(f"count,total\n{len(values)},{sum(values)}\n")
with open("results/clock.csv", "w") as fh:
    fh.write(f"event,unix_time\nsummed,{time.time():.3f}\n")
with open("results/provenance.json", "w") as fh:
    json.dump({"total": sum(values),
               "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat()},
              fh, indent=2)
