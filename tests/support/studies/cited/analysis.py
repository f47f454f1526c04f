"""The long-run values of the logistic map for a few r."""
for i in range(5):
    r, x = 2.5 + i * 0.3, 0.5
    for _ in range(500):
        x = r * x * (1 - x)
    print(f"{r:.2f} {x:.6f}")
