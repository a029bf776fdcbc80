/* SPDX-License-Identifier: MIT */
/*
 * Check tests of `heapwatch leaks` (cli/leaks-view.c): argument parsing, and the report
 * rendered from /api/v1/leaks bodies: a classified finding with its evidence and remedy, the
 * census's types and chains when present, an empty list, and hostile bodies (wrong types,
 * control characters, not JSON).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "leaks-view.h"

static int parse(LeaksArgs *a, char *error, size_t size, int argc, ...) {
        char *argv[16];
        va_list ap;

        va_start(ap, argc);
        for (int i = 0; i < argc; i++)
                argv[i] = va_arg(ap, char *);
        va_end(ap);
        argv[argc] = NULL;
        return leaks_parse_args(argc, argv, a, error, size);
}

START_TEST(test_parse) {
        LeaksArgs a;
        char err[256];

        ck_assert_int_eq(parse(&a, err, sizeof err, 1, "leaks"), 0);
        ck_assert_str_eq(a.state, "open");
        ck_assert(!a.json && !a.help && !a.url);
        ck_assert_int_eq(parse(&a, err, sizeof err, 4, "leaks", "--all", "--json", "--url=http://h:1"), 0);
        ck_assert_str_eq(a.state, "all");
        ck_assert(a.json);
        ck_assert_str_eq(a.url, "http://h:1");
        ck_assert_int_eq(parse(&a, err, sizeof err, 3, "leaks", "--url", "http://x:2"), 0);
        ck_assert_str_eq(a.url, "http://x:2");
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "--closed"), 0);
        ck_assert_str_eq(a.state, "closed");
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "-h"), 0);
        ck_assert(a.help);

        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "--bogus"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "unknown option '--bogus'"));
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "--url"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "--url requires a value"));
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "--url="), -EINVAL);
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "leaks", "extra"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "unexpected argument 'extra'"));
}
END_TEST

#define NOW 1764061800.0

static const char *BODY =
        "{\"leaks\":[{\"process_id\":\"4242-77\",\"pid\":4242,\"service\":\"billing\",\"state\":\"open\","
        "\"verdict\":\"leak\",\"signal\":\"rss_bytes\",\"unit\":\"bytes\",\"growth_per_second\":102400,"
        "\"confidence\":0.9999,\"since\":1764058200,\"growth_bytes_per_second\":102400,"
        "\"limit_bytes\":1073741824,\"limit_source\":\"cgroup\",\"seconds_to_limit\":9000,"
        "\"suspects\":[{\"file\":\"app.py\",\"line\":42,\"function\":\"render\",\"growth_bytes\":1048576,\"share\":0.5}],"
        "\"classification\":\"native_memory\",\"classification_detail\":\"malloc_in_use\","
        "\"classification_reason\":\"RSS grows 100 KiB/s; malloc in use 100 KiB/s (100 %)\","
        "\"remedy\":[\"free the native buffer\",\"find the library\"],"
        "\"evidence\":{\"memory\":{\"rss_bytes\":52428800,\"python_live_bytes\":15728640,\"python_share\":0.3,"
        "\"free_held_bytes\":1048576,\"free_held_share\":0.02},"
        "\"gc\":{\"enabled\":false,\"disabled_share\":0.98,\"time_ratio\":0.004,\"garbage\":3,\"garbage_added\":2,"
        "\"garbage_with_finalizers\":1,\"collected_with_finalizers\":40,\"threshold_changes\":1,\"generations\":[{\"collections\":10,\"collected_per_collection\":12.5}]},"
        "\"allocator\":{\"malloc\":{\"in_use_bytes\":20971520,\"free_bytes\":1048576,\"mmapped_bytes\":0},"
        "\"pymalloc\":{\"arenas_in_use\":12,\"arena_bytes\":12582912,\"blocks\":215000}},"
        "\"types\":[{\"type\":\"Handler\",\"growth\":5000,\"count\":6000}],"
        "\"chains\":[\"app.handlers -> list -> Handler\",{\"text\":\"cache -> dict -> bytes\"},"
        "{\"type\":\"dict\",\"chain\":\"app.AUDIT -> list\",\"root\":\"app.AUDIT\",\"holds\":8060,"
        "\"holds_growth\":4020,\"share_of_growth\":0.98},"
        "{\"type\":\"tuple\",\"chain\":\"app.CACHE -> dict\",\"holds\":300,\"holds_growth\":null}]}}]}";

START_TEST(test_render) {
        char *text = NULL;

        ck_assert_int_eq(leaks_render(BODY, strlen(BODY), NOW, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "leak open: 4242-77 (service billing, pid 4242) - RSS grows since 1h00m ago"));
        ck_assert_ptr_nonnull(strstr(text, "growth    100.0 KiB/s, confidence 1.000"));
        ck_assert_ptr_nonnull(strstr(text, "limit     1.0 GiB (cgroup) reached in 2h30m"));
        ck_assert_ptr_nonnull(strstr(text, "cause     native_memory (malloc_in_use)"));
        ck_assert_ptr_nonnull(strstr(text, "RSS grows 100 KiB/s; malloc in use"));
        ck_assert_ptr_nonnull(strstr(text, "remedy   - free the native buffer"));
        ck_assert_ptr_nonnull(strstr(text, "         - find the library"));
        ck_assert_ptr_nonnull(strstr(text, "memory    RSS 50.0 MiB, Python objects 15.0 MiB (30 %), free but held by allocators 1.0 MiB (2.0 %)"));
        ck_assert_ptr_nonnull(strstr(text, "gc        DISABLED, disabled 98 % of the span, time in GC 0.4 %"));
        ck_assert_ptr_nonnull(strstr(text, "gc.garbage 3 (+2, 1 with finalizers), thresholds changed 1 times"));
        ck_assert_ptr_nonnull(strstr(text, "generation 0: 10 collections, 12.5 collected each"));
        ck_assert_ptr_nonnull(strstr(text, "malloc    in use 20.0 MiB, free 1.0 MiB, mmapped 0 B"));
        ck_assert_ptr_nonnull(strstr(text, "pymalloc  12 arenas (12.0 MiB), 215000 blocks"));
        ck_assert_ptr_nonnull(strstr(text, "sites    app.py:42 in render, +1.0 MiB (50 %)"));
        ck_assert_ptr_nonnull(strstr(text, "types    Handler +5000 (6000 now)"));
        ck_assert_ptr_nonnull(strstr(text, "chains   app.handlers -> list -> Handler"));
        ck_assert_ptr_nonnull(strstr(text, "cache -> dict -> bytes"));
        ck_assert_ptr_nonnull(strstr(text, "app.AUDIT -> list (holds 8060 dict, +4020, 98 % of the type's growth)\n"));
        ck_assert_ptr_nonnull(strstr(text, "app.CACHE -> dict (holds 300 tuple)\n"));
        ck_assert_ptr_nonnull(strstr(text, ", 40 collected objects had finalizers"));
        free(text);

        ck_assert_int_eq(leaks_render("{\"leaks\":[]}", 12, NOW, &text), 0);
        ck_assert_str_eq(text, "No leak findings.\n");
        free(text);
}
END_TEST

START_TEST(test_render_hostile) {
        static const char *bad = "{\"leaks\":[7,{\"service\":\"x\\u001b[31m\",\"classification\":5,\"remedy\":\"no\","
                                 "\"evidence\":[],\"suspects\":{},\"pid\":\"p\"},{}]}";
        char *text = NULL;

        ck_assert_int_eq(leaks_render(bad, strlen(bad), NOW, &text), 0);
        ck_assert_ptr_null(strchr(text, '\x1b'));
        ck_assert_ptr_nonnull(strstr(text, "service x?[31m"));
        ck_assert_ptr_nonnull(strstr(text, "cause     -"));
        free(text);

        ck_assert_int_eq(leaks_render("not json", 8, NOW, &text), -EBADMSG);
        ck_assert_int_eq(leaks_render("{\"leaks\":{}}", 12, NOW, &text), -EBADMSG);
        ck_assert_int_eq(leaks_render("[]", 2, NOW, &text), -EBADMSG);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("cli-leaks");
        TCase *tc = tcase_create("leaks");

        tcase_add_test(tc, test_parse);
        tcase_add_test(tc, test_render);
        tcase_add_test(tc, test_render_hostile);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
