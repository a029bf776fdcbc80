/* SPDX-License-Identifier: MIT */
/*
 * Per-process leak findings (see leaks.h). The detectors decide; this file turns their states
 * into findings with a lifetime (open, escalate, close) and attaches what an operator needs to
 * act: growth in bytes, and when the memory limit will be reached at that rate.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "leaks.h"
#include "macro.h"

const char *leak_signal_to_string(LeakSignal s) {
        switch (s) {
        case LEAK_SIGNAL_RSS:
                return "rss_bytes";
        case LEAK_SIGNAL_PYTHON_BLOCKS:
                return "python_allocated_blocks";
        default:
                return NULL;
        }
}

const char *leak_signal_unit(LeakSignal s) {
        return s == LEAK_SIGNAL_PYTHON_BLOCKS ? "blocks" : "bytes";
}

const char *limit_source_to_string(LimitSource s) {
        switch (s) {
        case LIMIT_CGROUP:
                return "cgroup";
        case LIMIT_HOST:
                return "host";
        default:
                return NULL;
        }
}

int process_leaks_init(ProcessLeaks *l, const DetectConfig *config) {
        memset(l, 0, sizeof *l);
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++) {
                DetectConfig c = *config;
                int r;

                /* Python blocks are live objects: a step that holds is kept, not an
                 * allocator's high-water mark (docs/detection.md step 6). */
                if (i == LEAK_SIGNAL_PYTHON_BLOCKS) {
                        c.min_growth_absolute_per_hour /= LEAK_BYTES_PER_BLOCK;
                        c.high_water = false;
                }
                r = series_detector_init(&l->detectors[i], &c);
                if (r < 0) {
                        for (int j = 0; j < i; j++)
                                series_detector_done(&l->detectors[j]);
                        return r;
                }
        }
        return 0;
}

void process_leaks_set_thresholds(ProcessLeaks *l, const DetectConfig *config) {
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++) {
                DetectConfig *c = &l->detectors[i].config;

                c->min_growth_relative_per_hour = config->min_growth_relative_per_hour;
                c->min_growth_absolute_per_hour = config->min_growth_absolute_per_hour;
                /* As in process_leaks_init(): the Python heap is counted in blocks. */
                if (i == LEAK_SIGNAL_PYTHON_BLOCKS)
                        c->min_growth_absolute_per_hour /= LEAK_BYTES_PER_BLOCK;
        }
}

void process_leaks_done(ProcessLeaks *l) {
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++)
                series_detector_done(&l->detectors[i]);
}

LeakVerdict process_leaks_verdict(const ProcessLeaks *l) {
        return l->current.open ? l->current.verdict : VERDICT_NONE;
}

double process_leaks_open_since(const ProcessLeaks *l) {
        return l->current.open ? l->current.opened_at : 0;
}

/* Where the process's memory ends, and what grows towards it. A cgroup limit is the one the
 * OOM killer enforces for the process; without one, the machine's available memory is. */
static void finding_project(Finding *f, const SeriesDetector *rss, const HwSample *s, double host_available) {
        f->limit_source = LIMIT_NONE;
        f->limit_bytes = f->current_bytes = 0;
        f->has_time_to_limit = false;
        f->growth_bytes_per_second = f->growth_bytes_per_second_low = f->growth_bytes_per_second_high = 0;

        /* Growth in bytes comes from the RSS floor, whether or not RSS decided the verdict:
         * Python blocks have no size, and what the OOM killer counts is resident memory. When
         * the Python heap decides, only a growth of RSS its interval shows (lower bound above
         * 0): with RSS flat, any positive slope of its noise swung the growth and the time to
         * the limit between 7 kB/s (962 h) and 4 B/s (1.5 M h) from one window to the next. An
         * RSS finding keeps its slope (its state holds through an evaluation that wavers). */
        if (rss->evaluated && rss->last.slope > 0 && (f->signal == LEAK_SIGNAL_RSS || rss->last.slope_low > 0)) {
                f->growth_bytes_per_second = rss->last.slope;
                f->growth_bytes_per_second_low = rss->last.slope_low;
                f->growth_bytes_per_second_high = rss->last.slope_high;
        }

        if (s->has_cgroup && s->cgroup_memory_max_bytes >= 0) {
                /* against the limit that binds, what its cgroup uses that the kernel cannot
                 * reclaim (the agent's limit_usage_bytes: a slice's limit counts its other
                 * services too, and page cache is dropped before anything is killed); an older
                 * agent's memory.current instead */
                f->limit_source = LIMIT_CGROUP;
                f->limit_bytes = (double) s->cgroup_memory_max_bytes;
                f->current_bytes = (double) (s->cgroup_limit_usage_bytes > 0 ? s->cgroup_limit_usage_bytes
                                                                             : s->cgroup_memory_current_bytes);
        } else if (host_available >= 0) {
                f->limit_source = LIMIT_HOST;
                f->current_bytes = (double) s->rss_bytes;
                f->limit_bytes = (double) s->rss_bytes + host_available;
        } else
                return;

        if (f->growth_bytes_per_second > 0 &&
            detect_time_to_limit(f->current_bytes, f->growth_bytes_per_second, f->growth_bytes_per_second_low,
                                 f->growth_bytes_per_second_high, f->limit_bytes, &f->seconds_to_limit,
                                 &f->seconds_to_limit_low, &f->seconds_to_limit_high) >= 0)
                f->has_time_to_limit = true;
}

static void history_push(ProcessLeaks *l, const Finding *f) {
        if (l->n_history == LEAK_HISTORY_MAX) {
                memmove(&l->history[0], &l->history[1], (LEAK_HISTORY_MAX - 1) * sizeof(Finding));
                l->n_history--;
        }
        l->history[l->n_history++] = *f;
}

static void finding_close(ProcessLeaks *l, double t, bool process_ended, bool agent_stopped) {
        Finding *f = &l->current;

        f->open = false;
        f->closed_at = t;
        f->closed_at_end = process_ended;
        f->closed_at_stop = agent_stopped;
        f->verdict = VERDICT_NONE;
        history_push(l, f);
}

bool process_leaks_end(ProcessLeaks *l, double t, bool agent_stopped) {
        if (!l->current.open)
                return false;
        finding_close(l, t, true, agent_stopped);
        return true;
}

int process_leaks_add_sample(ProcessLeaks *l, const HwSample *s, double host_available, LeakEvent *ret_event) {
        double values[_LEAK_SIGNAL_MAX] = {
                [LEAK_SIGNAL_RSS] = (double) s->rss_bytes,
                [LEAK_SIGNAL_PYTHON_BLOCKS] = (double) s->python_allocated_blocks,
        };
        bool evaluated = false;
        LeakVerdict verdict = VERDICT_NONE;
        LeakSignal decider = LEAK_SIGNAL_RSS;
        LeakEvent event = LEAK_EVENT_NONE;
        Finding *f = &l->current;

        /* Peak RSS only ever rises; remember when it last did (some kernels do not report it:
         * then RSS stands in for it). */
        {
                double peak = s->rss_peak_bytes > 0 ? (double) s->rss_peak_bytes : (double) s->rss_bytes;
                /* The first sample only sets the level: that is not a rise. */
                if (peak > l->rss_peak) {
                        if (l->rss_peak > 0)
                                l->rss_peak_rose_at = s->time;
                        l->rss_peak = peak;
                } else if (s->rss_peak_bytes > 0 && peak < l->rss_peak) {
                        /* VmHWM below what it was: a new address space (the process exec'd
                         * itself: same pid and start time, same record) or an earlier value that
                         * was wrong. Remembered, the old peak held every later RSS growth under
                         * it for a fill of its room: no RSS finding for good. */
                        l->rss_peak = peak;
                        l->rss_peak_rose_at = s->time;
                }
        }

        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++) {
                bool changed = false;
                int r;

                /* 0 blocks: the interpreter does not count them (PYTHONMALLOC=malloc). */
                if (i == LEAK_SIGNAL_PYTHON_BLOCKS && s->python_allocated_blocks <= 0)
                        continue;
                r = series_detector_add(&l->detectors[i], s->time, values[i], &changed);
                if (r == -ENOMEM)
                        return r;
                if (r > 0)
                        evaluated = true;
        }
        if (!evaluated) {
                *ret_event = LEAK_EVENT_NONE;
                return 0;
        }

        /* The strongest state decides; on a tie RSS, which is in bytes and what runs out. */
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++) {
                LeakVerdict v = l->detectors[i].state;
                double since = l->detectors[i].last.since;

                /* An RSS floor rising while the peak stayed where it was since before the growth
                 * began is the allocator filling the room an earlier peak left (batch jobs,
                 * fragmentation): bounded by that peak, so not a leak. A leak raises the peak
                 * with the floor; one hiding under an old startup peak is seen by the Python
                 * heap signal, or once it passes that peak. The growth began at the finding's
                 * start when one is open (the earliest seen): a shorter horizon starting after
                 * a spike that raised the peak would otherwise close a leak going on under it,
                 * and a longer one reopen it. */
                if (f->open && f->since > 0 && f->since < since)
                        since = f->since;
                if (i == LEAK_SIGNAL_RSS && v > VERDICT_NONE && l->rss_peak_rose_at < since)
                        v = VERDICT_NONE;
                if (v > verdict) {
                        verdict = v;
                        decider = (LeakSignal) i;
                }
        }

        if (verdict >= VERDICT_SUSPECT) {
                if (!f->open) {
                        memset(f, 0, sizeof *f);
                        f->open = true;
                        f->opened_at = s->time;
                        l->findings_opened++;
                        event = LEAK_EVENT_OPENED;
                } else if (verdict > f->worst)
                        event = LEAK_EVENT_ESCALATED;
                f->verdict = verdict;
                if (verdict > f->worst)
                        f->worst = verdict;
                f->signal = decider;
                f->result = l->detectors[decider].last;
                /* Since when: the earliest start of growth seen while the finding is open (a
                 * shorter horizon deciding later does not make the leak younger). */
                if (f->since == 0 || f->result.since < f->since)
                        f->since = f->result.since;
                f->updated_at = s->time;
                finding_project(f, &l->detectors[LEAK_SIGNAL_RSS], s, host_available);
        } else if (f->open) {
                finding_close(l, s->time, false, false);
                event = LEAK_EVENT_CLOSED;
        }
        *ret_event = event;
        return 0;
}

int finding_compare_urgency(const Finding *a, const Finding *b) {
        double ta, tb, ra, rb;

        if (a->verdict != b->verdict)
                return a->verdict > b->verdict ? -1 : 1;
        ta = a->has_time_to_limit ? a->seconds_to_limit : INFINITY;
        tb = b->has_time_to_limit ? b->seconds_to_limit : INFINITY;
        if (ta != tb)
                return ta < tb ? -1 : 1;
        ra = a->result.current > 0 ? a->result.slope / a->result.current : 0;
        rb = b->result.current > 0 ? b->result.slope / b->result.current : 0;
        if (ra != rb)
                return ra > rb ? -1 : 1;
        return 0;
}
