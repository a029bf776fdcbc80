/* SPDX-License-Identifier: MIT */
/*
 * Check tests of `heapwatch heap` (cli/heap-view.c): argument parsing (process id validated
 * before it goes into a URL) and the rendering of /heap bodies, including hostile ones (wrong
 * types, control characters in names, not JSON).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "heap-view.h"

static int parse(HeapArgs *a, char *error, size_t size, int argc, ...) {
        char *argv[16];
        va_list ap;

        va_start(ap, argc);
        for (int i = 0; i < argc; i++)
                argv[i] = va_arg(ap, char *);
        va_end(ap);
        return heap_parse_args(argc, argv, a, error, size);
}

START_TEST(test_parse) {
        HeapArgs a;
        char err[256];

        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "heap", "123-456"), 0);
        ck_assert_str_eq(a.id, "123-456");
        ck_assert_uint_eq(a.frames, HEAP_FRAMES_DEFAULT);
        ck_assert(!a.json);
        ck_assert_int_eq(parse(&a, err, sizeof err, 8, "heap", "--window", "60", "1-2", "--limit=5", "--frames", "0", "--json"),
                         0);
        ck_assert_str_eq(a.window, "60");
        ck_assert_str_eq(a.limit, "5");
        ck_assert_uint_eq(a.frames, 0);
        ck_assert(a.json);
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "heap", "--help"), 0);
        ck_assert(a.help);

        ck_assert_int_eq(parse(&a, err, sizeof err, 1, "heap"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "missing process ID"));
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "heap", "../../x"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "invalid process ID"));
        ck_assert_int_eq(parse(&a, err, sizeof err, 2, "heap", "12-"), -EINVAL);
        ck_assert_int_eq(parse(&a, err, sizeof err, 3, "heap", "1-2", "3-4"), -EINVAL);
        ck_assert_int_eq(parse(&a, err, sizeof err, 3, "heap", "1-2", "--window"), -EINVAL);
        ck_assert_int_eq(parse(&a, err, sizeof err, 4, "heap", "1-2", "--frames", "x"), -EINVAL);
        ck_assert_int_eq(parse(&a, err, sizeof err, 3, "heap", "1-2", "--bogus"), -EINVAL);
}
END_TEST

static const char *BODY =
        "{\"id\":\"42-7\",\"profiling\":true,\"live_bytes\":62914560,\"samples_live\":30,\"sample_bytes\":524288,"
        "\"total_growth_bytes\":10485760,\"window\":{\"from\":1,\"to\":601,\"seconds\":600},"
        "\"sites\":[{\"stack_id\":3,\"live_bytes\":52428800,\"live_count\":20,\"growth_bytes\":10485760,"
        "\"growth_bytes_per_second\":17476,\"frames\":[{\"file\":\"app.py\",\"function\":\"load\",\"line\":12},"
        "{\"file\":\"app.py\",\"function\":\"<module>\",\"line\":40}]},"
        "{\"stack_id\":4,\"live_bytes\":\"x\",\"growth_bytes\":-1024,\"frames\":[{\"file\":\"ev\\u001bil.py\",\"function\":7,\"line\":1}]},"
        "{\"stack_id\":5,\"live_bytes\":1024,\"frames\":[]}],"
        "\"other\":{\"live_bytes\":1048576,\"growth_bytes\":0}}";

START_TEST(test_render) {
        char *text = NULL;

        ck_assert_int_eq(heap_render(BODY, strlen(BODY), 8, 0, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "Process 42-7: 60.0 MiB live"));
        ck_assert_ptr_nonnull(strstr(text, "+10.0 MiB over the last 10m"));
        ck_assert_ptr_nonnull(strstr(text, "load (app.py:12)"));
        ck_assert_ptr_nonnull(strstr(text, "<module> (app.py:40)"));
        ck_assert_ptr_nonnull(strstr(text, "-1.0 KiB"));
        ck_assert_ptr_nonnull(strstr(text, "(other sites)"));
        ck_assert_ptr_nonnull(strstr(text, "(no Python frame"));
        /* the escape character never reaches the terminal; a wrong type shows as "?" or "-" */
        ck_assert_ptr_null(strchr(text, '\033'));
        ck_assert_ptr_nonnull(strstr(text, "? (ev"));
        free(text);

        ck_assert_int_eq(heap_render(BODY, strlen(BODY), 0, 0, &text), 0);
        ck_assert_ptr_null(strstr(text, "Stacks"));
        free(text);
}
END_TEST

START_TEST(test_render_not_profiling_and_bad) {
        const char *off = "{\"id\":\"1-2\",\"profiling\":false,\"sites\":[]}";
        char *text = NULL;

        ck_assert_int_eq(heap_render(off, strlen(off), 8, 0, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "no heap profile"));
        free(text);
        ck_assert_int_eq(heap_render("nope", 4, 8, 0, &text), -EBADMSG);
        ck_assert_int_eq(heap_render("[1]", 3, 8, 0, &text), -EBADMSG);
        ck_assert_int_eq(heap_render("{\"sites\":3}", 11, 8, 0, &text), -EBADMSG);
}
END_TEST

int main(void) {
        Suite *s = suite_create("cli-heap");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse);
        tcase_add_test(tc, test_render);
        tcase_add_test(tc, test_render_not_profiling_and_bad);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
