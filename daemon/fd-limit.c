/* SPDX-License-Identifier: MIT */
/*
 * Raising the soft open-file limit to what the configured connection limits need
 * (fd-limit.h says why).
 */
#include "config.h"

#include <errno.h>
#include <sys/resource.h>

#include "fd-limit.h"

uint64_t fd_limit_target(uint64_t soft, uint64_t hard, uint64_t needed) {
        uint64_t want = needed < hard ? needed : hard;
        return want > soft ? want : soft;
}

uint64_t fd_limit_agent_connections(uint64_t limit, uint64_t max_connections, uint64_t http_connections) {
        uint64_t others = http_connections + FD_LIMIT_RESERVE;
        uint64_t room = limit > others ? limit - others : 0;

        if (room > max_connections)
                room = max_connections;
        return room > 0 ? room : 1;
}

int64_t fd_limit_raise(uint64_t needed) {
        struct rlimit rl;
        uint64_t want;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        want = fd_limit_target(rl.rlim_cur, rl.rlim_max, needed);
        if (want != rl.rlim_cur) {
                struct rlimit n = { .rlim_cur = (rlim_t) want, .rlim_max = rl.rlim_max };
                /* Failing leaves the old limit: the caller sees it in the return value. */
                if (setrlimit(RLIMIT_NOFILE, &n) == 0)
                        rl.rlim_cur = n.rlim_cur;
        }
        return rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t) rl.rlim_cur;
}
