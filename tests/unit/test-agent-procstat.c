/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for agent/procstat.c: /proc and /sys parsing against a fake tree (the `root`
 * parameter), and a sanity check against the real one.
 */
#include "agent-util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-sample.h"
#include "procstat.h"

static char root[PATH_MAX];

static void mkdir_p(const char *path) {
        char buf[PATH_MAX];

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdir(buf, 0755);
                        *p = '/';
                }
        (void) mkdir(buf, 0755);
}

static void put(const char *rel, const char *content, size_t len) {
        char path[PATH_MAX], dir[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s%s", root, rel);
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        mkdir_p(dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(content, 1, len, f), len);
        fclose(f);
}

static void puts_(const char *rel, const char *content) {
        put(rel, content, strlen(content));
}

static void setup(void) {
        snprintf(root, sizeof(root), "/tmp/hw-test-procstat-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
}

static const char status_text[] = "Name:\tpython3\n"
                                  "Umask:\t0022\n"
                                  "State:\tS (sleeping)\n"
                                  "VmPeak:\t  420000 kB\n"
                                  "VmSize:\t  402432 kB\n"
                                  "VmHWM:\t   32768 kB\n"
                                  "VmRSS:\t   30720 kB\n"
                                  "RssAnon:\t   20000 kB\n"
                                  "Threads:\t3\n"
                                  "SigQ:\t0/63459\n";

START_TEST(test_process_figures) {
        struct hw_agent_process p;

        puts_("/proc/self/status", status_text);
        ck_assert_int_eq(hw_procstat_read_process(root, &p), 0);
        ck_assert_int_eq(p.rss_bytes, 30720 * 1024LL);
        ck_assert_int_eq(p.rss_peak_bytes, 32768 * 1024LL);
        ck_assert_int_eq(p.vm_bytes, 402432 * 1024LL);
        ck_assert_int_eq(p.threads, 3);
}
END_TEST

START_TEST(test_process_missing_fields) {
        struct hw_agent_process p;

        /* a kernel thread has no Vm* lines */
        puts_("/proc/self/status", "Name:\tkthreadd\nThreads:\t1\n");
        ck_assert_int_eq(hw_procstat_read_process(root, &p), 0);
        ck_assert_int_eq(p.rss_bytes, -1);
        ck_assert_int_eq(p.rss_peak_bytes, -1);
        ck_assert_int_eq(p.vm_bytes, -1);
        ck_assert_int_eq(p.threads, 1);
}
END_TEST

START_TEST(test_process_no_file) {
        struct hw_agent_process p = { .rss_bytes = 42 };

        ck_assert_int_eq(hw_procstat_read_process(root, &p), -ENOENT);
        ck_assert_int_eq(p.rss_bytes, 42); /* untouched on failure */
}
END_TEST

START_TEST(test_identity) {
        struct hw_procstat_identity id;
        long hz = sysconf(_SC_CLK_TCK);

        /* comm may contain spaces and parentheses: fields are counted after the last ')' */
        puts_("/proc/self/stat",
              "4242 (my (odd) proc) S 4200 4242 4200 0 -1 4194560 1000 0 0 0 10 5 0 0 20 0 3 0 "
              "1234567 412090368 7680 18446744073709551615 1 1 0 0 0 0 0 16781312 17642 0 0 0 17 1 0 0\n");
        puts_("/proc/stat", "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 0\nctxt 12\nbtime 1764000000\nprocesses 5\n");
        ck_assert_int_eq(hw_procstat_read_identity(root, &id), 0);
        ck_assert_int_eq(id.pid, 4242);
        ck_assert_int_eq(id.ppid, 4200);
        ck_assert_int_eq(id.start_time_ticks, 1234567);
        ck_assert_double_eq_tol(id.start_time, 1764000000.0 + 1234567.0 / (double) hz, 1e-6);
}
END_TEST

START_TEST(test_identity_no_btime) {
        struct hw_procstat_identity id;

        puts_("/proc/self/stat", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 1 1\n");
        ck_assert_int_eq(hw_procstat_read_identity(root, &id), 0);
        ck_assert_int_eq(id.pid, 7);
        ck_assert_int_eq(id.ppid, 1);
        ck_assert_int_eq(id.start_time_ticks, 99);
        ck_assert(id.start_time < 0);
}
END_TEST

START_TEST(test_identity_truncated) {
        struct hw_procstat_identity id = { .pid = 1 };

        puts_("/proc/self/stat", "7 (x) R 1 7 7\n");
        ck_assert_int_eq(hw_procstat_read_identity(root, &id), -EINVAL);
        ck_assert_int_eq(id.pid, 1);
        puts_("/proc/self/stat", "garbage");
        ck_assert_int_eq(hw_procstat_read_identity(root, &id), -EINVAL);
}
END_TEST

START_TEST(test_cgroup_v2) {
        struct hw_agent_cgroup cg;

        puts_("/proc/self/cgroup", "0::/system.slice/billing.service\n");
        puts_("/sys/fs/cgroup/system.slice/billing.service/memory.current", "52428800\n");
        puts_("/sys/fs/cgroup/system.slice/billing.service/memory.max", "max\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert(cg.present);
        ck_assert_str_eq(cg.path, "/system.slice/billing.service");
        ck_assert_int_eq(cg.memory_current_bytes, 52428800);
        ck_assert_int_eq(cg.memory_max_bytes, -1);
        ck_assert_int_eq(cg.limit_usage_bytes, -1);

        /* a limit on the service itself, its usage counted against it */
        puts_("/sys/fs/cgroup/system.slice/billing.service/memory.max", "1073741824\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_max_bytes, 1073741824);
        ck_assert_int_eq(cg.limit_usage_bytes, 52428800);
        /* less the page cache the kernel reclaims first (memory.current stays as it is) */
        puts_("/sys/fs/cgroup/system.slice/billing.service/memory.stat",
              "anon 41943040\nfile 10485760\nactive_file 2097152\ninactive_file 8388608\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_current_bytes, 52428800);
        ck_assert_int_eq(cg.limit_usage_bytes, 52428800 - 8388608);

        /* a looser limit on the slice, nearly used up by its other services: the slice binds */
        puts_("/sys/fs/cgroup/system.slice/memory.max", "2147483648\n");
        puts_("/sys/fs/cgroup/system.slice/memory.current", "2097152000\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_max_bytes, 2147483648);
        ck_assert_int_eq(cg.limit_usage_bytes, 2097152000);

        /* with room on the slice, the service's own limit binds again */
        puts_("/sys/fs/cgroup/system.slice/memory.current", "104857600\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_max_bytes, 1073741824);

        /* a tighter limit on the slice wins */
        puts_("/sys/fs/cgroup/system.slice/memory.max", "536870912\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_max_bytes, 536870912);
        ck_assert_int_eq(cg.limit_usage_bytes, 104857600);
}
END_TEST

START_TEST(test_cgroup_v2_namespace_root) {
        struct hw_agent_cgroup cg;

        /* inside a container with its own cgroup namespace: "0::/" and the files at the root */
        puts_("/proc/self/cgroup", "0::/\n");
        puts_("/sys/fs/cgroup/memory.current", "1000\n");
        puts_("/sys/fs/cgroup/memory.max", "2000\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_str_eq(cg.path, "/");
        ck_assert_int_eq(cg.memory_current_bytes, 1000);
        ck_assert_int_eq(cg.memory_max_bytes, 2000);
}
END_TEST

START_TEST(test_cgroup_v1) {
        struct hw_agent_cgroup cg;

        /* hybrid host: v2 line without memory files, the v1 memory controller has them */
        puts_("/proc/self/cgroup", "9:name=systemd:/\n5:cpu,cpuacct:/\n4:memory:/process_api/abc\n0::/\n");
        puts_("/sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", "75259904\n");
        puts_("/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_str_eq(cg.path, "/process_api/abc");
        ck_assert_int_eq(cg.memory_current_bytes, 75259904);
        ck_assert_int_eq(cg.memory_max_bytes, -1); /* v1's "unlimited" */

        puts_("/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "104857600\n");
        puts_("/sys/fs/cgroup/memory/process_api/memory.usage_in_bytes", "80000000\n");
        puts_("/sys/fs/cgroup/memory/process_api/memory.stat", "cache 30000000\ntotal_inactive_file 20000000\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_int_eq(cg.memory_max_bytes, 104857600);
        ck_assert_int_eq(cg.limit_usage_bytes, 60000000); /* v1's name for the inactive cache */
}
END_TEST

START_TEST(test_cgroup_controller_list) {
        struct hw_agent_cgroup cg;

        /* "memory" inside a comma-separated list; "memoryx" must not match */
        puts_("/proc/self/cgroup", "3:memoryx:/wrong\n4:cpu,memory:/right\n");
        puts_("/sys/fs/cgroup/memory/right/memory.usage_in_bytes", "5\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_str_eq(cg.path, "/right");
        ck_assert_int_eq(cg.memory_current_bytes, 5);
        ck_assert_int_eq(cg.memory_max_bytes, -1); /* no limit file at all */
}
END_TEST

START_TEST(test_cgroup_container_without_namespace) {
        struct hw_agent_cgroup cg;

        /* /proc/self/cgroup names the host's path, /sys/fs/cgroup is the container's own cgroup */
        puts_("/proc/self/cgroup", "0::/docker/0123abcd\n");
        puts_("/sys/fs/cgroup/memory.current", "77\n");
        puts_("/sys/fs/cgroup/memory.max", "max\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), 0);
        ck_assert_str_eq(cg.path, "/docker/0123abcd");
        ck_assert_int_eq(cg.memory_current_bytes, 77);
        ck_assert_int_eq(cg.memory_max_bytes, -1);
}
END_TEST

START_TEST(test_cgroup_absent) {
        struct hw_agent_cgroup cg = { .present = true };

        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), -ENOENT); /* no /proc/self/cgroup */
        ck_assert(!cg.present);

        puts_("/proc/self/cgroup", "0::/user.slice\n"); /* files not readable */
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), -ENOENT);
        ck_assert(!cg.present);

        puts_("/sys/fs/cgroup/user.slice/memory.current", "not a number\n");
        ck_assert_int_eq(hw_procstat_read_cgroup(root, &cg), -ENOENT);
        ck_assert(!cg.present);
}
END_TEST

START_TEST(test_cmdline) {
        struct hw_agent_identity id = { 0 };
        static const char cmd[] = "python3\0app.py\0--port\0\0x";

        /* entries may be empty; a rewritten title may lack the final NUL */
        put("/proc/self/cmdline", cmd, sizeof(cmd) - 1);
        ck_assert_int_eq(hw_procstat_read_cmdline(root, &id), 5);
        ck_assert_uint_eq(id.argc, 5);
        ck_assert_str_eq(id.argv[0], "python3");
        ck_assert_str_eq(id.argv[1], "app.py");
        ck_assert_str_eq(id.argv[2], "--port");
        ck_assert_str_eq(id.argv[3], "");
        ck_assert_str_eq(id.argv[4], "x");
        hw_agent_identity_clear(&id);
        ck_assert_uint_eq(id.argc, 0);
}
END_TEST

START_TEST(test_cmdline_bounds) {
        struct hw_agent_identity id = { 0 };
        size_t size = 100 * 3000, o = 0;
        char *buf = malloc(size);

        ck_assert_ptr_nonnull(buf);
        /* 100 entries of 2999 bytes: only 64 kept, each cut to 1024 bytes */
        for (int i = 0; i < 100; i++) {
                memset(buf + o, 'a' + i % 26, 2999);
                o += 2999;
                buf[o++] = '\0';
        }
        put("/proc/self/cmdline", buf, o);
        free(buf);
        ck_assert_int_eq(hw_procstat_read_cmdline(root, &id), HW_AGENT_ARGV_MAX);
        ck_assert_uint_eq(id.argc, HW_AGENT_ARGV_MAX);
        for (size_t i = 0; i < id.argc; i++) {
                ck_assert_uint_eq(strlen(id.argv[i]), HW_AGENT_ARG_MAX);
                ck_assert_int_eq(id.argv[i][0], 'a' + (int) (i % 26));
        }
        hw_agent_identity_clear(&id);
}
END_TEST

START_TEST(test_real_root) {
        struct hw_agent_process p;
        struct hw_procstat_identity id;
        struct hw_agent_cgroup cg;
        struct hw_agent_identity ident = { 0 };

        ck_assert_int_eq(hw_procstat_read_process(NULL, &p), 0);
        ck_assert_int_gt(p.rss_bytes, 0);
        ck_assert_int_ge(p.rss_peak_bytes, p.rss_bytes);
        ck_assert_int_gt(p.vm_bytes, p.rss_bytes);
        ck_assert_int_ge(p.threads, 1);

        ck_assert_int_eq(hw_procstat_read_identity("", &id), 0);
        ck_assert_int_eq(id.pid, getpid());
        ck_assert_int_eq(id.ppid, getppid());
        ck_assert_int_gt(id.start_time_ticks, 0);
        ck_assert(id.start_time > 1.0e9);
        ck_assert(id.start_time <= hw_now_unix() + 1);

        ck_assert_int_gt(hw_procstat_read_cmdline(NULL, &ident), 0);
        ck_assert_ptr_nonnull(strstr(ident.argv[0], "test-agent-procstat"));
        hw_agent_identity_clear(&ident);

        /* the cgroup may or may not be readable here; either answer must be consistent */
        if (hw_procstat_read_cgroup(NULL, &cg) == 0) {
                ck_assert(cg.present);
                ck_assert_int_eq(cg.path[0], '/');
                ck_assert_int_ge(cg.memory_current_bytes, 0);
        } else
                ck_assert(!cg.present);
}
END_TEST

static Suite *procstat_suite(void) {
        Suite *s = suite_create("agent-procstat");
        TCase *tc = tcase_create("fake-root");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_process_figures);
        tcase_add_test(tc, test_process_missing_fields);
        tcase_add_test(tc, test_process_no_file);
        tcase_add_test(tc, test_identity);
        tcase_add_test(tc, test_identity_no_btime);
        tcase_add_test(tc, test_identity_truncated);
        tcase_add_test(tc, test_cgroup_v2);
        tcase_add_test(tc, test_cgroup_v2_namespace_root);
        tcase_add_test(tc, test_cgroup_v1);
        tcase_add_test(tc, test_cgroup_controller_list);
        tcase_add_test(tc, test_cgroup_container_without_namespace);
        tcase_add_test(tc, test_cgroup_absent);
        tcase_add_test(tc, test_cmdline);
        tcase_add_test(tc, test_cmdline_bounds);
        suite_add_tcase(s, tc);

        tc = tcase_create("real-root");
        tcase_add_test(tc, test_real_root);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(procstat_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
