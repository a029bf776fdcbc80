/* SPDX-License-Identifier: MIT */
/*
 * Synthetic-series benchmark of leak detection with ground truth (`make bench-detect`).
 * Thousands of memory series are generated deterministically from a seed: heaps of 100 MiB to
 * 2 GiB, leaks of 0.1 % to 10 % of the heap per hour on top of every non-leaking behaviour,
 * and the non-leaking behaviours alone: noise, GC sawtooth up to 50 % of the heap, warm-ups
 * (exponential approach to a plateau), one-time steps, bounded caches filling up, batch
 * spikes, steady churn, and (informational, outside the issue's set) a diurnal cycle. Each
 * series is replayed sample by sample through the daemon's SeriesDetector at its default
 * configuration — the code heapwatchd and `heapwatch analyze` run — and through a
 * Prometheus-style baseline on the same samples:
 *
 *     predict_linear(rss[1h], 4*3600) > 2 * starting heap, for: 10m, evaluated every 60 s
 *
 * The report (Markdown on stdout) gives precision, recall, false alarms per process-day and
 * median detection delay by leak-rate bucket for both, side by side, and the alarms per
 * series kind so that a missed goal points at the behaviour that causes it. `--emit INDEX`
 * prints one series as CSV for `heapwatch analyze`; `--per-series FILE` keeps every outcome.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "macro.h"

#define MiB (1024.0 * 1024.0)
#define HOUR 3600.0
/* Series start on a whole hour; the detector aligns windows to the epoch, as live. */
#define T0 1764028800.0

/* The baseline, precisely (docs/detection-benchmark.md repeats it). */
#define BASE_RANGE 3600.0       /* rss[1h]: samples in (T - 1h, T] */
#define BASE_PREDICT 14400.0    /* predict_linear(..., 4 * 3600) */
#define BASE_LIMIT_FACTOR 2.0   /* > 2 x the starting heap */
#define BASE_FOR 600.0          /* for: 10m */
#define BASE_INTERVAL 60.0      /* evaluation_interval: 1m */

/* ---- the generator ----------------------------------------------------------------------- */

typedef enum Kind {
        KIND_FLAT,      /* noise (and usually a small GC sawtooth) around a constant heap */
        KIND_SAWTOOTH,  /* a large GC sawtooth: 10-50 % of the heap */
        KIND_WARMUP,    /* exponential approach to a plateau */
        KIND_STEP,      /* a one-time step up */
        KIND_CACHE,     /* a bounded cache filling up, then a plateau */
        KIND_BATCH,     /* periodic batch spikes, released afterwards */
        KIND_CHURN,     /* a mean-reverting random walk (Ornstein-Uhlenbeck) */
        KIND_DIURNAL,   /* a 24 h cycle: not in the issue's set, reported apart */
        _KIND_MAX,
} Kind;

/* The kinds the issue names as "not leaks"; the headline figures are over these. */
#define KIND_ISSUE_MAX KIND_DIURNAL

/* Each kind's name in the report, and its short name for --kinds. */
static const struct {
        const char *name, *key;
} kind_info[_KIND_MAX] = {
        [KIND_FLAT] = { "flat + noise", "flat" },
        [KIND_SAWTOOTH] = { "GC sawtooth 10-50 %", "sawtooth" },
        [KIND_WARMUP] = { "warm-up to a plateau", "warmup" },
        [KIND_STEP] = { "one-time step", "step" },
        [KIND_CACHE] = { "bounded cache", "cache" },
        [KIND_BATCH] = { "batch spikes", "batch" },
        [KIND_CHURN] = { "steady churn", "churn" },
        [KIND_DIURNAL] = { "diurnal cycle (extra)", "diurnal" },
};

/* "churn,cache" -> a bit per kind; 0 on an unknown name. */
static unsigned kinds_parse(const char *list) {
        unsigned mask = 0;

        while (*list) {
                size_t len = strcspn(list, ",");
                unsigned bit = 0;

                for (int k = 0; k < _KIND_MAX; k++)
                        if (strlen(kind_info[k].key) == len && strncmp(list, kind_info[k].key, len) == 0)
                                bit = 1u << k;
                if (!bit)
                        return 0;
                mask |= bit;
                list += len;
                if (*list == ',')
                        list++;
        }
        return mask;
}

typedef struct Params {
        unsigned index;
        Kind kind;
        bool leaking;
        double heap;            /* H, bytes */
        double interval;        /* sampling, seconds */
        bool regular_sampling;  /* at the start of every interval (the agent before 2026-12-05),
                                 * not at a random moment of it as the agent samples now */
        uint64_t moments_seed;  /* another draw of those moments (0: the default one) */
        double duration;        /* seconds */
        double noise;           /* Gaussian sigma, share of H */
        double saw_amp, saw_period, saw_phase;  /* share of H, seconds, [0, 1) */
        double warm_amp, warm_tau;
        double step_at, step_size, step_ramp;
        double cache_size, cache_fill;
        double batch_period, batch_phase, batch_size, batch_rise, batch_hold;
        double churn_sigma, churn_tau;
        double diurnal_amp, diurnal_phase;
        double leak_rate;       /* share of H per hour */
        double leak_onset;      /* seconds after the start */
        double leak_quantum;    /* seconds between leak increments; 0: smooth */
        uint64_t noise_seed;
} Params;

/* xoshiro256** seeded by splitmix64: fast, good, and the same everywhere. */
typedef struct Rng {
        uint64_t s[4];
} Rng;

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void rng_seed(Rng *r, uint64_t seed) {
        for (int i = 0; i < 4; i++)
                r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(Rng *r) {
        uint64_t result = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;

        r->s[2] ^= r->s[0];
        r->s[3] ^= r->s[1];
        r->s[1] ^= r->s[2];
        r->s[0] ^= r->s[3];
        r->s[2] ^= t;
        r->s[3] = rotl(r->s[3], 45);
        return result;
}

/* [0, 1) */
static double rng_uniform(Rng *r) {
        return (double) (rng_next(r) >> 11) * 0x1.0p-53;
}

static double uniform(Rng *r, double lo, double hi) {
        return lo + (hi - lo) * rng_uniform(r);
}

static double log_uniform(Rng *r, double lo, double hi) {
        return exp(uniform(r, log(lo), log(hi)));
}

static double gauss(Rng *r) {
        double u = 1.0 - rng_uniform(r), v = rng_uniform(r);
        return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/*
 * Draw series `index`'s parameters. Series come in pairs: 2k does not leak, 2k+1 is the very
 * same series (same kind, heap, sampling, sawtooth, noise samples) plus a leak. The leak-free
 * twin tells whether an alarm on the leaking one is due to the leak or would have happened
 * anyway. Kinds take turns over the pairs (equal counts). Everything comes from the pair's own
 * stream, so a series is the same whatever --series or --jobs say, and the first N series of
 * a longer run are the N of a shorter one.
 */
static void params_draw(uint64_t seed, unsigned index, double hours, bool regular_sampling, uint64_t moments_seed,
                        Params *ret) {
        unsigned pair = index / 2;
        Params p = { .index = index, .leaking = index % 2 == 1, .duration = hours * HOUR,
                     .regular_sampling = regular_sampling, .moments_seed = moments_seed };
        Rng r, rl;

        rng_seed(&r, seed * 0x100000001b3ULL + pair);
        p.kind = (Kind) (pair % _KIND_MAX);
        p.heap = log_uniform(&r, 100 * MiB, 2048 * MiB);
        p.interval = rng_uniform(&r) < 0.1 ? 1 : 10;
        p.noise = log_uniform(&r, 0.001, 0.02);

        /* Most services show some GC sawtooth (small, seconds to minutes); the sawtooth kind a
         * large one with periods up to an hour (a periodic job's working set). */
        if (p.kind == KIND_SAWTOOTH) {
                p.saw_amp = uniform(&r, 0.10, 0.50);
                p.saw_period = log_uniform(&r, 30, HOUR);
        } else if (rng_uniform(&r) < 0.7) {
                p.saw_amp = uniform(&r, 0.01, 0.15);
                p.saw_period = log_uniform(&r, 30, 10 * 60);
        }
        p.saw_phase = rng_uniform(&r);

        switch (p.kind) {
        case KIND_WARMUP:
                p.warm_amp = uniform(&r, 0.1, 0.8);
                p.warm_tau = log_uniform(&r, 5 * 60, 2 * HOUR);
                break;
        case KIND_STEP:
                p.step_at = uniform(&r, 1 * HOUR, p.duration - 2 * HOUR);
                p.step_size = uniform(&r, 0.05, 0.6);
                p.step_ramp = uniform(&r, 0, 10 * 60);
                break;
        case KIND_CACHE:
                p.cache_size = uniform(&r, 0.1, 0.6);
                p.cache_fill = uniform(&r, 0.5 * HOUR, 3 * HOUR);
                break;
        case KIND_BATCH:
                p.batch_period = uniform(&r, 15 * 60, 4 * HOUR);
                p.batch_phase = rng_uniform(&r);
                p.batch_size = uniform(&r, 0.2, 0.8);
                p.batch_rise = uniform(&r, 60, 10 * 60);
                p.batch_hold = uniform(&r, 0, 20 * 60);
                break;
        case KIND_CHURN:
                p.churn_sigma = uniform(&r, 0.005, 0.03);
                p.churn_tau = log_uniform(&r, 2 * 60, HOUR);
                break;
        case KIND_DIURNAL:
                p.diurnal_amp = uniform(&r, 0.05, 0.2);
                p.diurnal_phase = rng_uniform(&r);
                break;
        case KIND_FLAT:
        case KIND_SAWTOOTH:
        default:
                break;
        }
        p.noise_seed = rng_next(&r);

        if (p.leaking) {
                /* From a stream of its own: the twin's draws above stay identical. */
                rng_seed(&rl, ~(seed * 0x100000001b3ULL + pair));
                p.leak_rate = log_uniform(&rl, 0.001, 0.1);
                p.leak_onset = rng_uniform(&rl) < 0.7 ? 0 : uniform(&rl, 2 * HOUR, 12 * HOUR);
                p.leak_quantum = rng_uniform(&rl) < 0.5 ? 0 : uniform(&rl, 60, 30 * 60);
        }
        *ret = p;
}

static size_t params_points(const Params *p) {
        return (size_t) (p->duration / p->interval);
}

/* The series: out must hold params_points(p) points. */
static void generate(const Params *p, DetectPoint *out) {
        size_t n = params_points(p);
        double churn = 0, decay = 0, kick = 0;
        Rng r, moments;

        rng_seed(&r, p->noise_seed);
        /* The sampling moments from a stream of their own: every other draw stays what it was
         * with regular sampling, and twins are sampled at the same moments. */
        rng_seed(&moments, p->noise_seed ^ 0x9e3779b97f4a7c15ULL ^ p->moments_seed * 0x100000001b3ULL);
        if (p->kind == KIND_CHURN) {
                decay = exp(-p->interval / p->churn_tau);
                kick = p->churn_sigma * sqrt(1 - decay * decay);
                churn = p->churn_sigma * gauss(&r);
        }

        for (size_t i = 0; i < n; i++) {
                /* One sample at a random moment of every interval, as the agent takes them
                 * (agent/sampler.h: a period near a multiple of the interval must not alias). */
                double moment = p->regular_sampling ? 0 : rng_uniform(&moments);
                double t = ((double) i + moment) * p->interval, x = 1;

                if (p->saw_amp > 0)
                        x += p->saw_amp * fmod(t / p->saw_period + p->saw_phase, 1.0);
                switch (p->kind) {
                case KIND_WARMUP:
                        x += p->warm_amp * (1 - exp(-t / p->warm_tau));
                        break;
                case KIND_STEP:
                        if (t >= p->step_at + p->step_ramp)
                                x += p->step_size;
                        else if (t > p->step_at)
                                x += p->step_size * (t - p->step_at) / p->step_ramp;
                        break;
                case KIND_CACHE: {
                        /* Filling fast while most keys are new, then slower: ease-out to full. */
                        double f = t >= p->cache_fill ? 1 : t / p->cache_fill;
                        x += p->cache_size * (1 - (1 - f) * (1 - f));
                        break;
                }
                case KIND_BATCH: {
                        double u = fmod(t + p->batch_phase * p->batch_period, p->batch_period);
                        if (u < p->batch_rise)
                                x += p->batch_size * u / p->batch_rise;
                        else if (u < p->batch_rise + p->batch_hold)
                                x += p->batch_size;
                        break;
                }
                case KIND_CHURN:
                        x += churn;
                        churn = churn * decay + kick * gauss(&r);
                        break;
                case KIND_DIURNAL:
                        x += p->diurnal_amp * sin(2 * M_PI * (t / 86400 + p->diurnal_phase));
                        break;
                case KIND_FLAT:
                case KIND_SAWTOOTH:
                default:
                        break;
                }
                if (p->leaking && t >= p->leak_onset) {
                        double d = t - p->leak_onset;
                        if (p->leak_quantum > 0)
                                d = floor(d / p->leak_quantum) * p->leak_quantum;
                        x += p->leak_rate * d / HOUR;
                }
                x += p->noise * gauss(&r);
                out[i] = (DetectPoint) { .t = T0 + t, .v = fmax(0, x * p->heap) };
        }
}

/* ---- replay ------------------------------------------------------------------------------ */

typedef struct Outcome {
        double hw_suspect;   /* first time the detector's state was >= suspect, from the start; NAN: never */
        double hw_leak;      /* first time it was leak */
        unsigned hw_opened;  /* times the state became leak */
        double base_fire;    /* first time the baseline alert fired */
        unsigned base_fired; /* times it started firing */
        int error;
} Outcome;

static void replay_detector(const DetectConfig *c, const DetectPoint *pts, size_t n, Outcome *o) {
        SeriesDetector d;
        int r;

        o->hw_suspect = o->hw_leak = NAN;
        r = series_detector_init(&d, c);
        if (r < 0) {
                o->error = r;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                bool changed = false;

                r = series_detector_add(&d, pts[i].t, pts[i].v, &changed);
                if (r < 0) {
                        o->error = r;
                        break;
                }
                if (d.state >= VERDICT_SUSPECT && isnan(o->hw_suspect))
                        o->hw_suspect = pts[i].t - T0;
                if (d.state == VERDICT_LEAK) {
                        if (isnan(o->hw_leak))
                                o->hw_leak = pts[i].t - T0;
                        if (changed)
                                o->hw_opened++;
                }
        }
        series_detector_done(&d);
}

/* Prometheus' predict_linear: ordinary least squares over the range, evaluated at T + d with
 * the intercept taken at T (what promql/functions.go's linearRegression does). */
static double predict_linear(const DetectPoint *pts, size_t lo, size_t hi, double T, double d) {
        double mt = 0, mv = 0, stt = 0, stv = 0, n = (double) (hi - lo);

        for (size_t i = lo; i < hi; i++) {
                mt += pts[i].t - T;
                mv += pts[i].v;
        }
        mt /= n;
        mv /= n;
        for (size_t i = lo; i < hi; i++) {
                double dt = pts[i].t - T - mt;
                stt += dt * dt;
                stv += dt * (pts[i].v - mv);
        }
        if (!(stt > 0))
                return mv;
        /* value at T + d = mean + slope * (T + d - mean time) */
        return mv + stv / stt * (d - mt);
}

static void replay_baseline(const Params *p, const DetectPoint *pts, size_t n, Outcome *o) {
        double limit = BASE_LIMIT_FACTOR * p->heap, active = NAN;
        bool firing = false;
        size_t lo = 0, hi = 0;

        o->base_fire = NAN;
        for (double T = T0 + BASE_INTERVAL; T <= pts[n - 1].t; T += BASE_INTERVAL) {
                bool cond;

                while (hi < n && pts[hi].t <= T)
                        hi++;
                while (lo < hi && pts[lo].t <= T - BASE_RANGE)
                        lo++;
                /* predict_linear needs two samples. */
                cond = hi - lo >= 2 && predict_linear(pts, lo, hi, T, BASE_PREDICT) > limit;
                if (!cond) {
                        active = NAN;
                        firing = false;
                        continue;
                }
                if (isnan(active))
                        active = T;
                if (!firing && T - active >= BASE_FOR) {
                        firing = true;
                        o->base_fired++;
                        if (isnan(o->base_fire))
                                o->base_fire = T - T0;
                }
        }
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct Job {
        uint64_t seed;
        double hours;
        unsigned n;
        bool regular_sampling;
        uint64_t moments_seed;
        DetectConfig config;
        Params *params;
        Outcome *outcomes;
        atomic_uint next;
} Job;

static void *worker(void *userdata) {
        Job *job = userdata;
        size_t cap = (size_t) (job->hours * HOUR) + 1;
        _cleanup_free_ DetectPoint *pts = malloc(cap * sizeof *pts);

        if (!pts)
                return (void *) (intptr_t) -ENOMEM;
        for (;;) {
                unsigned i = atomic_fetch_add(&job->next, 1);
                size_t n;

                if (i >= job->n)
                        break;
                n = params_points(&job->params[i]);
                generate(&job->params[i], pts);
                replay_detector(&job->config, pts, n, &job->outcomes[i]);
                replay_baseline(&job->params[i], pts, n, &job->outcomes[i]);
        }
        return NULL;
}

/* ---- the report -------------------------------------------------------------------------- */

/* What makes each non-leaking kind hard, split in three ranges, so that an alarm points at the
 * behaviour (and the part of its range) that caused it. */
static const struct {
        const char *axis;
        double scale;        /* parameter -> display unit */
        const char *unit;
        double edges[2];     /* in the display unit */
} kind_axes[_KIND_MAX] = {
        [KIND_FLAT] = { "noise sigma", 100, "%", { 0.3, 1 } },
        [KIND_SAWTOOTH] = { "period", 1 / 60.0, "min", { 5, 20 } },
        [KIND_WARMUP] = { "time constant", 1 / 60.0, "min", { 20, 60 } },
        [KIND_STEP] = { "step", 100, "%", { 20, 40 } },
        [KIND_CACHE] = { "fill time", 1 / 60.0, "min", { 60, 120 } },
        [KIND_BATCH] = { "period", 1 / 60.0, "min", { 60, 120 } },
        [KIND_CHURN] = { "correlation time", 1 / 60.0, "min", { 10, 30 } },
        [KIND_DIURNAL] = { "amplitude", 100, "%", { 10, 15 } },
};

static double kind_axis_value(const Params *p) {
        switch (p->kind) {
        case KIND_FLAT:
                return p->noise;
        case KIND_SAWTOOTH:
                return p->saw_period;
        case KIND_WARMUP:
                return p->warm_tau;
        case KIND_STEP:
                return p->step_size;
        case KIND_CACHE:
                return p->cache_fill;
        case KIND_BATCH:
                return p->batch_period;
        case KIND_CHURN:
                return p->churn_tau;
        case KIND_DIURNAL:
        default:
                return p->diurnal_amp;
        }
}

/* 0, 1 or 2: the range of the kind's axis the series falls in. */
static int kind_axis_bucket(const Params *p) {
        double v = kind_axis_value(p) * kind_axes[p->kind].scale;
        return v < kind_axes[p->kind].edges[0] ? 0 : v < kind_axes[p->kind].edges[1] ? 1 : 2;
}

typedef struct Detector {
        const char *name;
        double (*first_alarm)(const Outcome *o);
} Detector;

static double hw_alarm(const Outcome *o) {
        return o->hw_leak;
}

static double base_alarm(const Outcome *o) {
        return o->base_fire;
}

static const Detector detectors[] = {
        { "heapwatch", hw_alarm },
        { "predict_linear", base_alarm },
};

static const struct {
        double lo, hi;
        const char *name;
} buckets[] = {
        { 0.001, 0.003, "0.1-0.3 %/h" },
        { 0.003, 0.01, "0.3-1 %/h" },
        { 0.01, 0.03, "1-3 %/h" },
        { 0.03, 0.1001, "3-10 %/h" },
};

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
        if (n == 0)
                return NAN;
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *fmt_minutes(char *buf, size_t size, double seconds) {
        if (isnan(seconds))
                snprintf(buf, size, "-");
        else if (seconds < 2 * HOUR)
                snprintf(buf, size, "%.0f min", seconds / 60);
        else
                snprintf(buf, size, "%.1f h", seconds / HOUR);
        return buf;
}

static const char *fmt_pct(char *buf, size_t size, size_t k, size_t n) {
        if (n == 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.1f %% (%zu/%zu)", 100.0 * (double) k / (double) n, k, n);
        return buf;
}

/* An alarm on a leaking series counts only at or after the leak's onset; before it, it is a
 * false alarm ("early"). Delay is from the onset. */
static bool alarm_detects(const Params *p, double alarm) {
        return !isnan(alarm) && alarm >= p->leak_onset;
}

/* When the leak-free background starts growing slower than the leak (seconds from the start):
 * a warm-up or a cache still filling faster than the leak grows is, until then, most of the
 * growth, and its leak-free twin shows the same; no detector that keeps the twin quiet can
 * call it a leak before it slows down. Warm-up: A/tau e^(-t/tau) = L; cache (ease-out over
 * F): 2 S (1 - t/F) / F = L. 0 for the other kinds, whose background does not grow. */
static double background_settled(const Params *p) {
        double L = p->leak_rate / HOUR, t = 0;

        if (!p->leaking || !(L > 0))
                return 0;
        if (p->kind == KIND_WARMUP)
                t = p->warm_tau * log(p->warm_amp / (p->warm_tau * L));
        else if (p->kind == KIND_CACHE)
                t = p->cache_fill * (1 - L * p->cache_fill / (2 * p->cache_size));
        return t > 0 ? t : 0;
}

/* The headline figures cover the issue's kinds; diurnal pairs are reported on their own. */
static bool in_headline(const Params *p) {
        return p->kind < KIND_ISSUE_MAX;
}

typedef struct Tally {
        size_t n, det, in2h;
        size_t in2h_settled; /* within 2 h of max(onset, background_settled()) */
        double median_delay;
} Tally;

/* Leaking series with a rate in [lo, hi) (of the headline kinds, or of one kind when kind >=
 * 0), optionally only those whose leak-free twin never alarmed for this detector. */
static void tally(const Job *job, size_t k, double lo, double hi, int kind, bool twin_silent, double *scratch,
                  Tally *ret) {
        Tally t = {};
        size_t nd = 0;

        for (unsigned i = 1; i < job->n; i += 2) {
                const Params *p = &job->params[i];
                double alarm = detectors[k].first_alarm(&job->outcomes[i]);

                if (p->leak_rate < lo || p->leak_rate >= hi)
                        continue;
                if (kind >= 0 ? p->kind != (Kind) kind : !in_headline(p))
                        continue;
                if (twin_silent && !isnan(detectors[k].first_alarm(&job->outcomes[i - 1])))
                        continue;
                t.n++;
                if (!alarm_detects(p, alarm))
                        continue;
                t.det++;
                if (alarm - p->leak_onset <= 2 * HOUR)
                        t.in2h++;
                if (alarm - fmax(p->leak_onset, background_settled(p)) <= 2 * HOUR)
                        t.in2h_settled++;
                scratch[nd++] = alarm - p->leak_onset;
        }
        t.median_delay = median(scratch, nd);
        *ret = t;
}

static void report(const Job *job, double wall, unsigned jobs) {
        const Params *P = job->params;
        const Outcome *O = job->outcomes;
        size_t n_leak = 0, n_clean = 0;
        double clean_days = 0;
        char a[64], b[64], c[64], d[64], e[64], f[64];
        _cleanup_free_ double *scratch = calloc(job->n, sizeof(double));
        Tally t[2];

        if (!scratch)
                return;
        for (unsigned i = 0; i < job->n; i++) {
                if (!in_headline(&P[i]))
                        continue;
                if (P[i].leaking)
                        n_leak++;
                else {
                        n_clean++;
                        clean_days += P[i].duration / 86400;
                }
        }

        printf("## Leak detection on synthetic series\n\n");
        printf("%u series of %.0f h (seed %" PRIu64 "), in leak-free/leaking twin pairs, sampled %s; headline "
               "figures over the %zu non-leaking and %zu leaking series of the issue's seven kinds (diurnal pairs "
               "apart). Replayed in %.0f s on %u threads.\n\n"
               "- heapwatch: SeriesDetector at its default configuration; alarm = its state after hysteresis "
               "reaches `leak`.\n"
               "- predict_linear: `predict_linear(rss[1h], 4*3600) > 2 * starting heap` with `for: 10m`, "
               "evaluated every 60 s on the same samples.\n\n",
               job->n, job->hours, job->seed,
               job->regular_sampling ? "at the start of every interval (--regular-sampling)"
               : job->moments_seed   ? "at a random moment of every interval, as the agent samples (--moments-seed)"
                                     : "at a random moment of every interval, as the agent samples",
               n_clean, n_leak, wall, jobs);

        printf("| figure | heapwatch | predict_linear |\n|---|---|---|\n");
        {
                size_t tp[2] = {}, fp[2] = {}, early[2] = {};

                for (unsigned i = 0; i < job->n; i++)
                        for (size_t k = 0; k < 2; k++) {
                                double alarm = detectors[k].first_alarm(&O[i]);

                                if (!in_headline(&P[i]))
                                        continue;
                                if (!P[i].leaking)
                                        fp[k] += !isnan(alarm);
                                else if (alarm_detects(&P[i], alarm))
                                        tp[k]++;
                                else if (!isnan(alarm))
                                        early[k]++;
                        }
                printf("| precision | %s | %s |\n", fmt_pct(a, sizeof a, tp[0], tp[0] + fp[0] + early[0]),
                       fmt_pct(b, sizeof b, tp[1], tp[1] + fp[1] + early[1]));
                printf("| recall, all leaks (0.1-10 %%/h) | %s | %s |\n", fmt_pct(a, sizeof a, tp[0], n_leak),
                       fmt_pct(b, sizeof b, tp[1], n_leak));
                for (size_t k = 0; k < 2; k++)
                        tally(job, k, 0.01, 1, -1, false, scratch, &t[k]);
                printf("| recall, leaks >= 1 %%/h, within 2 h | %s | %s |\n", fmt_pct(a, sizeof a, t[0].in2h, t[0].n),
                       fmt_pct(b, sizeof b, t[1].in2h, t[1].n));
                for (size_t k = 0; k < 2; k++)
                        tally(job, k, 0.01, 1, -1, true, scratch, &t[k]);
                printf("| same, where the leak-free twin never alarmed | %s | %s |\n",
                       fmt_pct(a, sizeof a, t[0].in2h, t[0].n), fmt_pct(b, sizeof b, t[1].in2h, t[1].n));
                for (size_t k = 0; k < 2; k++)
                        tally(job, k, 0.01, 1, -1, false, scratch, &t[k]);
                printf("| same, within 2 h of when the leak outgrows a warm-up or cache still filling | %s | %s |\n",
                       fmt_pct(a, sizeof a, t[0].in2h_settled, t[0].n),
                       fmt_pct(b, sizeof b, t[1].in2h_settled, t[1].n));
                printf("| non-leaking series that alarmed | %s | %s |\n", fmt_pct(a, sizeof a, fp[0], n_clean),
                       fmt_pct(b, sizeof b, fp[1], n_clean));
                printf("| false alarms per process-day | %.3f | %.3f |\n", (double) fp[0] / clean_days,
                       (double) fp[1] / clean_days);
                printf("| alarms before a late leak's onset | %zu | %zu |\n\n", early[0], early[1]);
        }

        for (int attributable = 0; attributable < 2; attributable++) {
                if (attributable)
                        printf("Only the leaks whose leak-free twin never alarmed (per detector: an alarm here is due to "
                               "the leak):\n\n");
                printf("| leak rate (of heap) | heapwatch recall | within 2 h | median delay | "
                       "predict_linear recall | within 2 h | median delay |\n|---|---|---|---|---|---|---|\n");
                for (size_t bk = 0; bk < ELEMENTSOF(buckets); bk++) {
                        for (size_t k = 0; k < 2; k++)
                                tally(job, k, buckets[bk].lo, buckets[bk].hi, -1, attributable, scratch, &t[k]);
                        printf("| %s | %s | %s | %s | %s | %s | %s |\n", buckets[bk].name,
                               fmt_pct(a, sizeof a, t[0].det, t[0].n), fmt_pct(b, sizeof b, t[0].in2h, t[0].n),
                               fmt_minutes(c, sizeof c, t[0].median_delay), fmt_pct(d, sizeof d, t[1].det, t[1].n),
                               fmt_pct(e, sizeof e, t[1].in2h, t[1].n), fmt_minutes(f, sizeof f, t[1].median_delay));
                }
                printf("\n");
        }

        /* Non-leaking series by kind, and by the range of what makes the kind hard. A series
         * that alarmed counts once; the findings it opened (and the baseline's firings) count
         * every time, which is what pages an operator again and again (a daily cycle over
         * several days: --hours 72). */
        printf("| not leaking: kind | range | series | heapwatch alarms | heapwatch suspect | heapwatch findings opened "
               "| predict_linear alarms | predict_linear firings |\n"
               "|---|---|---|---|---|---|---|---|\n");
        for (int kind = 0; kind < _KIND_MAX; kind++)
                for (int bk = -1; bk < 3; bk++) {
                        size_t n = 0, hw = 0, sus = 0, base = 0, opened = 0, fired = 0;
                        const char *u = kind_axes[kind].unit;
                        double e0 = kind_axes[kind].edges[0], e1 = kind_axes[kind].edges[1];
                        char range[64];

                        for (unsigned i = 0; i < job->n; i += 2) {
                                if (P[i].kind != (Kind) kind || (bk >= 0 && kind_axis_bucket(&P[i]) != bk))
                                        continue;
                                n++;
                                hw += !isnan(O[i].hw_leak);
                                sus += !isnan(O[i].hw_suspect);
                                base += !isnan(O[i].base_fire);
                                opened += O[i].hw_opened;
                                fired += O[i].base_fired;
                        }
                        if (bk < 0)
                                snprintf(range, sizeof range, "all");
                        else if (bk == 0)
                                snprintf(range, sizeof range, "%s < %g %s", kind_axes[kind].axis, e0, u);
                        else if (bk == 1)
                                snprintf(range, sizeof range, "%s %g-%g %s", kind_axes[kind].axis, e0, e1, u);
                        else
                                snprintf(range, sizeof range, "%s >= %g %s", kind_axes[kind].axis, e1, u);
                        if (bk < 0)
                                printf("| **%s** | %s | %zu | %zu | %zu | %zu | %zu | %zu |\n", kind_info[kind].name, range,
                                       n, hw, sus, opened, base, fired);
                        else
                                printf("|  | %s | %zu | %zu | %zu | %zu | %zu | %zu |\n", range, n, hw, sus, opened, base,
                                       fired);
                }
        printf("\n");

        /* Leaks >= 1 %/h by background. */
        printf("| leaks >= 1 %%/h on: kind | series | heapwatch within 2 h | median delay | within 2 h of outgrowing "
               "the background | predict_linear within 2 h | median delay |\n|---|---|---|---|---|---|---|\n");
        for (int kind = 0; kind < _KIND_MAX; kind++) {
                for (size_t k = 0; k < 2; k++)
                        tally(job, k, 0.01, 1, kind, false, scratch, &t[k]);
                printf("| %s | %zu | %s | %s | %s | %s | %s |\n", kind_info[kind].name, t[0].n,
                       fmt_pct(a, sizeof a, t[0].in2h, t[0].n), fmt_minutes(b, sizeof b, t[0].median_delay),
                       fmt_pct(e, sizeof e, t[0].in2h_settled, t[0].n), fmt_pct(c, sizeof c, t[1].in2h, t[1].n),
                       fmt_minutes(d, sizeof d, t[1].median_delay));
        }
        printf("\n");
}

static int write_per_series(const Job *job, const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "index,kind,leaking,heap_bytes,interval_s,noise,saw_amp,saw_period_s,leak_rate_per_h,"
                   "leak_onset_s,leak_quantum_s,hw_suspect_s,hw_leak_s,hw_opened,base_fire_s,base_fired,"
                   "kind_axis,background_settled_s\n");
        for (unsigned i = 0; i < job->n; i++) {
                const Params *p = &job->params[i];
                const Outcome *o = &job->outcomes[i];

                fprintf(f, "%u,%s,%d,%.0f,%.0f,%.4f,%.3f,%.0f,%.5f,%.0f,%.0f,%.0f,%.0f,%u,%.0f,%u,%.4g,%.0f\n",
                        p->index, kind_info[p->kind].name, p->leaking, p->heap, p->interval, p->noise, p->saw_amp,
                        p->saw_period, p->leak_rate, p->leak_onset, p->leak_quantum, o->hw_suspect, o->hw_leak,
                        o->hw_opened, o->base_fire, o->base_fired, kind_axis_value(p), background_settled(p));
        }
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}

static int emit(uint64_t seed, double hours, bool regular_sampling, uint64_t moments_seed, unsigned index) {
        _cleanup_free_ DetectPoint *pts = NULL;
        Params p;
        size_t n;

        params_draw(seed, index, hours, regular_sampling, moments_seed, &p);
        n = params_points(&p);
        pts = malloc(n * sizeof *pts);
        if (!pts)
                return -ENOMEM;
        generate(&p, pts);
        printf("# detect_bench --seed %" PRIu64 " --hours %g --emit %u", seed, hours, index);
        if (regular_sampling)
                printf(" --regular-sampling");
        else if (moments_seed)
                printf(" --moments-seed %" PRIu64, moments_seed);
        printf(": %s, %s, heap %.0f MiB, every %.0f s,"
               " noise %.2f %%, sawtooth %.0f %% / %.0f s",
               kind_info[p.kind].name, p.leaking ? "leaking" : "not leaking", p.heap / MiB,
               p.interval,
               100 * p.noise, 100 * p.saw_amp, p.saw_period);
        switch (p.kind) {
        case KIND_WARMUP:
                printf(", warm-up +%.0f %% tau %.0f min", 100 * p.warm_amp, p.warm_tau / 60);
                break;
        case KIND_STEP:
                printf(", step +%.0f %% at %.1f h", 100 * p.step_size, p.step_at / HOUR);
                break;
        case KIND_CACHE:
                printf(", cache +%.0f %% filled in %.0f min", 100 * p.cache_size, p.cache_fill / 60);
                break;
        case KIND_BATCH:
                printf(", batch +%.0f %% every %.0f min", 100 * p.batch_size, p.batch_period / 60);
                break;
        case KIND_CHURN:
                printf(", churn sigma %.2f %% tau %.0f min", 100 * p.churn_sigma, p.churn_tau / 60);
                break;
        default:
                break;
        }
        if (p.leaking)
                printf(", leak %.2f %%/h from %.1f h%s", 100 * p.leak_rate, p.leak_onset / HOUR,
                       p.leak_quantum > 0 ? " in steps" : "");
        printf("\ntimestamp,bytes\n");
        for (size_t i = 0; i < n; i++)
                printf("%.3f,%.0f\n", pts[i].t, pts[i].v);
        return 0;
}

static void help(void) {
        printf("Usage: detect_bench [--series N] [--hours H] [--seed S] [--jobs J] [--per-series FILE]\n"
               "                    [--kinds LIST] [--regular-sampling | --moments-seed S]\n"
               "       detect_bench --emit INDEX [--hours H] [--seed S] [--regular-sampling | --moments-seed S]\n"
               "\n"
               "Replay generated memory series with ground truth through heapwatch's leak detector and\n"
               "a predict_linear baseline; print the comparison as Markdown.\n"
               "\n"
               "  --series N          number of series, in leak-free/leaking pairs (default 320)\n"
               "  --hours H           length of each series (default 24)\n"
               "  --seed S            generator seed (default 1)\n"
               "  --jobs J            threads (default 2)\n"
               "  --per-series FILE   write every series' parameters and outcome as CSV\n"
               "  --kinds LIST        replay only these kinds' pairs among the N (comma-separated:\n"
               "                      flat,sawtooth,warmup,step,cache,batch,churn,diurnal): quick looks\n"
               "  --regular-sampling  sample at the start of every interval, as the agent did before\n"
               "                      2026-12-05 (default: at a random moment of it, as it does now)\n"
               "  --moments-seed S    another draw of those random moments, the rest of every series\n"
               "                      the same (default 0): how much a figure moves with sampling alone\n"
               "  --emit INDEX        print series INDEX as CSV (for heapwatch analyze) and exit\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "series", required_argument, NULL, 'n' },
                { "hours", required_argument, NULL, 'H' },
                { "seed", required_argument, NULL, 's' },
                { "jobs", required_argument, NULL, 'j' },
                { "per-series", required_argument, NULL, 'o' },
                { "emit", required_argument, NULL, 'e' },
                { "kinds", required_argument, NULL, 'k' },
                { "regular-sampling", no_argument, NULL, 'R' },
                { "moments-seed", required_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        Job job = { .seed = 1, .hours = 24, .n = 320 };
        unsigned jobs = 2, kinds = ~0u, n_all;
        long emit_index = -1;
        const char *per_series = NULL;
        _cleanup_free_ pthread_t *threads = NULL;
        struct timespec t0, t1;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                char *end;

                errno = 0;
                switch (c) {
                case 'n':
                        job.n = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || errno || job.n == 0 || job.n > 10000000)
                                goto bad;
                        break;
                case 'H':
                        job.hours = strtod(optarg, &end);
                        if (*end || !(job.hours >= 1 && job.hours <= 24 * 30))
                                goto bad;
                        break;
                case 's':
                        job.seed = strtoull(optarg, &end, 10);
                        if (*end || errno)
                                goto bad;
                        break;
                case 'j':
                        jobs = (unsigned) strtoul(optarg, &end, 10);
                        if (*end || errno || jobs == 0 || jobs > 256)
                                goto bad;
                        break;
                case 'o':
                        per_series = optarg;
                        break;
                case 'e':
                        emit_index = strtol(optarg, &end, 10);
                        if (*end || errno || emit_index < 0 || emit_index > 10000000)
                                goto bad;
                        break;
                case 'k':
                        kinds = kinds_parse(optarg);
                        if (kinds == 0)
                                goto bad;
                        break;
                case 'R':
                        job.regular_sampling = true;
                        break;
                case 'm':
                        job.moments_seed = strtoull(optarg, &end, 10);
                        if (*end || errno)
                                goto bad;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
                continue;
        bad:
                fprintf(stderr, "detect_bench: invalid value '%s'\n", optarg);
                return 2;
        }
        if (optind < argc) {
                fprintf(stderr, "detect_bench: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        if (emit_index >= 0) {
                r = emit(job.seed, job.hours, job.regular_sampling, job.moments_seed, (unsigned) emit_index);
                return r < 0 || fflush(stdout) != 0 ? 1 : 0;
        }

        detect_config_default(&job.config);
        job.params = calloc(job.n, sizeof *job.params);
        job.outcomes = calloc(job.n, sizeof *job.outcomes);
        threads = calloc(jobs, sizeof *threads);
        if (!job.params || !job.outcomes || !threads) {
                fprintf(stderr, "detect_bench: out of memory\n");
                return 1;
        }
        /* Series keep their index (and so their draws) when --kinds leaves others out. */
        n_all = job.n;
        job.n = 0;
        for (unsigned i = 0; i < n_all; i++) {
                params_draw(job.seed, i, job.hours, job.regular_sampling, job.moments_seed, &job.params[job.n]);
                if (kinds & (1u << job.params[job.n].kind))
                        job.n++;
        }
        atomic_init(&job.next, 0);

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0; i < jobs; i++)
                if (pthread_create(&threads[i], NULL, worker, &job) != 0) {
                        fprintf(stderr, "detect_bench: cannot start a thread\n");
                        return 1;
                }
        r = 0;
        for (unsigned i = 0; i < jobs; i++) {
                void *ret;
                pthread_join(threads[i], &ret);
                if (ret)
                        r = (int) (intptr_t) ret;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r < 0) {
                fprintf(stderr, "detect_bench: %s\n", strerror(-r));
                return 1;
        }
        for (unsigned i = 0; i < job.n; i++)
                if (job.outcomes[i].error < 0) {
                        fprintf(stderr, "detect_bench: series %u: detector failed: %s\n", i,
                                strerror(-job.outcomes[i].error));
                        return 1;
                }

        report(&job, (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9, jobs);
        if (per_series) {
                r = write_per_series(&job, per_series);
                if (r < 0) {
                        fprintf(stderr, "detect_bench: cannot write %s: %s\n", per_series, strerror(-r));
                        return 1;
                }
        }
        free(job.params);
        free(job.outcomes);
        return fflush(stdout) != 0 ? 1 : 0;
}
