/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/fd-limit.c: the target soft limit (raised to what is needed, capped by
 * the hard limit, never lowered) and fd_limit_raise() against this process's real
 * RLIMIT_NOFILE (lowered first, so raising it again is always permitted).
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "fd-limit.h"

START_TEST(test_target) {
        ck_assert_uint_eq(fd_limit_target(1024, 524288, 1152), 1152);  /* raised to the need */
        ck_assert_uint_eq(fd_limit_target(1024, 1100, 1152), 1100);    /* capped by the hard limit */
        ck_assert_uint_eq(fd_limit_target(65536, 524288, 1152), 65536); /* never lowered */
        ck_assert_uint_eq(fd_limit_target(1024, 1024, 1152), 1024);
        ck_assert_uint_eq(fd_limit_target(0, 0, 1152), 0);
}
END_TEST

/* Agents get what is left beside HTTP and the reserve, never all of it: run out, and
 * libmicrohttpd busy-waits in accept() without taking any client. */
START_TEST(test_agent_connections) {
        ck_assert_uint_eq(fd_limit_agent_connections(1000000, 1024, 65), 1024);
        ck_assert_uint_eq(fd_limit_agent_connections(1024, 1024, 65), 1024 - 65 - FD_LIMIT_RESERVE);
        ck_assert_uint_eq(fd_limit_agent_connections(100, 1024, 65), 1);
        ck_assert_uint_eq(fd_limit_agent_connections(0, 1024, 65), 1);
}
END_TEST

START_TEST(test_raise) {
        struct rlimit rl, low;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 256)
                return; /* nothing to learn under so low a hard limit */
        low = (struct rlimit) { .rlim_cur = 128, .rlim_max = rl.rlim_max };
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);

        ck_assert_int_eq(fd_limit_raise(200), 200);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_uint_eq(rl.rlim_cur, 200);
        /* Asking for less keeps what is there. */
        ck_assert_int_eq(fd_limit_raise(150), 200);
        /* Asking beyond the hard limit gets the hard limit. */
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < INT64_MAX / 2)
                ck_assert_int_eq(fd_limit_raise((uint64_t) rl.rlim_max * 2), (int64_t) rl.rlim_max);
}
END_TEST

int main(void) {
        Suite *s = suite_create("fd-limit");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_target);
        tcase_add_test(tc, test_agent_connections);
        tcase_add_test(tc, test_raise);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
