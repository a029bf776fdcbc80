/* SPDX-License-Identifier: MIT */
/* Deterministic pseudo-random numbers for unit tests that build synthetic floors: xorshift64,
 * uniform in [0, 1), and roughly standard normal ones (the sum of 12 uniforms less 6: mean 0,
 * variance 1, bounded by +-6, so a test's worst case is known). Same seed, same numbers, on
 * every machine. */
#pragma once

static inline unsigned long long next_random(unsigned long long *state) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        return *state;
}

static inline double uniform(unsigned long long *state) {
        return (double) (next_random(state) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static inline double gauss(unsigned long long *state) {
        double sum = 0;

        for (int i = 0; i < 12; i++)
                sum += uniform(state);
        return sum - 6;
}
