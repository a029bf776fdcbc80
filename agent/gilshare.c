/* SPDX-License-Identifier: MIT */
/*
 * The daemon requests' share of the GIL (see gilshare.h).
 */
#include "agent-util.h"

#include "gilshare.h"

static void refill(struct hw_gil_share *g, double now) {
        if (!g->started) {
                g->started = true;
                g->tokens = HW_GIL_SHARE_BURST;
                g->updated = now;
                return;
        }
        if (now > g->updated) {
                g->tokens += (now - g->updated) * HW_GIL_SHARE_RATE;
                if (g->tokens > HW_GIL_SHARE_BURST)
                        g->tokens = HW_GIL_SHARE_BURST;
                g->updated = now;
        }
}

bool hw_gil_share_may_start(struct hw_gil_share *g, double now) {
        refill(g, now);
        return g->tokens > 0;
}

double hw_gil_share_wait(const struct hw_gil_share *g, double now) {
        return g->started && g->free_from > now ? g->free_from - now : 0;
}

bool hw_gil_share_spent(struct hw_gil_share *g, double end, double held) {
        refill(g, end);
        if (held < 0)
                held = 0;
        g->tokens -= held;
        g->free_from = end + held;
        return g->tokens > 0;
}
