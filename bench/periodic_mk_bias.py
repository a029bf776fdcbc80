#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How far a periodic floor with no trend pushes Mann-Kendall's S (docs/detection.md step 7).

A periodic floor is weighed over whole periods (floor_acf_periodic_factor() in
daemon/detect-acf.c): there a periodic component's autocorrelation sums to about nothing, so its
variance factor is about 1. What no autocorrelation sees is the partial period at the end of a
horizon, which biases S one way or the other. This replays pure sawtooths (ramp then drop, no
trend, Gaussian noise of a tenth of the amplitude) of n points, periods of 4 points to a quarter
of n (the periods floor_acf_period() reports), 96 phases each, and prints the largest
standardised S, (S - sign S) / sqrt(Var S) with no inflation. A self-confirmation asks for
p < 1e-6, z > 4.75.

    python3 bench/periodic_mk_bias.py
"""
import math
import random


def mann_kendall_s(x):
    s = 0
    for i, xi in enumerate(x):
        for xj in x[i + 1:]:
            s += (xj > xi) - (xj < xi)
    return s


def largest_z(n, period, rng, phases=96, noise=0.1):
    worst = -math.inf
    var = n * (n - 1) * (2 * n + 5) / 18
    for k in range(phases):
        phase = k / phases
        x = [(t / period + phase) % 1.0 + rng.gauss(0, noise) for t in range(n)]
        s = mann_kendall_s(x)
        worst = max(worst, (s - math.copysign(1, s)) / math.sqrt(var) if s else 0)
    return worst


def main():
    rng = random.Random(1)
    print("| points | period (points) | largest z over 96 phases |")
    print("|---|---|---|")
    for n in (90, 120, 150):
        for period in (4, 6, 8, 10, 15, 20, 25, 30, 37.5):
            if period <= n / 4:
                print(f"| {n} | {period:g} | {largest_z(n, period, rng):.2f} |")


if __name__ == "__main__":
    main()
