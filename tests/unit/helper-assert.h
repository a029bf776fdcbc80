/* SPDX-License-Identifier: MIT */
/* Assertions the Check library lacks, shared by the unit tests that compare computed
 * statistics with hand-computed values. Include after <check.h> and <math.h>. */
#pragma once

/* x is within rel of want, relatively: for values whose scale varies over many orders of
 * magnitude (a slope of 1e-9 and a variance of 1e6 alike). Prints both in full on failure. */
#define ck_assert_rel(x, want, rel)                                                                        \
        do {                                                                                               \
                double x_ = (x), want_ = (want);                                                           \
                ck_assert_msg(fabs(x_ - want_) <= (rel) * fabs(want_), "%s = %.17g, want %.17g (rel %g)", \
                              #x, x_, want_, (double) (rel));                                              \
        } while (0)
