"""Draws a random number without a seed: a replay cannot give the same value."""

import json
import os
import random

with open("data/scale.txt") as fh:
    scale = float(fh.read())
os.makedirs("results", exist_ok=True)
value = random.random() * scale
with open("results/draw.csv", "w") as fh:
    fh.write(f"draw,value\n1,{value!r}\n")
with open("results/draw.json", "w") as fh:
    json.dump({"scale": scale, "value": value}, fh)
