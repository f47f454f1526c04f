"""Step 2 of the pipeline: reads what step 1 wrote and writes a one-line report."""

import csv

with open("results/sum.csv", newline="") as fh:
    row = next(csv.DictReader(fh))
with open("results/report.txt", "w") as fh:
    fh.write(f"{row['count']} values, total {row['total']}\n")
print(open("results/report.txt").read(), end="")
