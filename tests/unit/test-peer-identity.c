/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/peer-identity.c: NSpid parsing (own namespace, nested, missing line,
 * garbage), cgroup v2/v1/hybrid parsing, container ids from docker, containerd, CRI-O and
 * podman cgroup paths (and none from ordinary ones), the claim verdicts, and reading a fake
 * /proc tree and this process's real one.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer-identity.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(test_nspid) {
        PeerNamespace ns;

        ck_assert_int_eq(peer_parse_nspid("Name:\tpython3\nPid:\t4242\nNSpid:\t4242\nUid:\t0\n", &ns), 0);
        ck_assert(ns.known);
        ck_assert_int_eq(ns.inner_pid, 4242);
        ck_assert_uint_eq(ns.depth, 1);
        ck_assert_int_eq(peer_parse_nspid("Pid:\t4242\nNSpid:\t4242\t17\t1\n", &ns), 0);
        ck_assert_int_eq(ns.inner_pid, 1);
        ck_assert_uint_eq(ns.depth, 3);
        ck_assert_int_eq(peer_parse_nspid("Pid:\t4242\n", &ns), -ENOENT);
        ck_assert_int_eq(peer_parse_nspid("NSpid:\t\n", &ns), -EINVAL);
        ck_assert_int_eq(peer_parse_nspid("NSpid:\t12 x\n", &ns), -EINVAL);
        ck_assert_int_eq(peer_parse_nspid("NSpid:\t-3\n", &ns), -EINVAL);
        ck_assert_int_eq(peer_parse_nspid("NSpid:\t99999999999999\n", &ns), -EINVAL);
}
END_TEST

START_TEST(test_cgroup) {
        char buf[PEER_CGROUP_MAX];

        ck_assert_int_eq(peer_parse_cgroup("0::/system.slice/app.service\n", buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "/system.slice/app.service");
        /* hybrid: the unified line wins over v1 controllers */
        ck_assert_int_eq(peer_parse_cgroup("12:memory:/x\n1:name=systemd:/user.slice/a.scope\n0::/user.slice/b.scope\n",
                                           buf, sizeof buf),
                         0);
        ck_assert_str_eq(buf, "/user.slice/b.scope");
        /* v1 only: name=systemd */
        ck_assert_int_eq(peer_parse_cgroup("4:memory:/m\n1:name=systemd:/docker/" ID64 "\n", buf, sizeof buf), 0);
        ck_assert_str_eq(buf, "/docker/" ID64);
        ck_assert_int_eq(peer_parse_cgroup("", buf, sizeof buf), -ENOENT);
        ck_assert_int_eq(peer_parse_cgroup("garbage\n", buf, sizeof buf), -ENOENT);
        ck_assert_int_eq(peer_parse_cgroup("0::/a/very/long/path\n", buf, 5), -ENOENT);
}
END_TEST

START_TEST(test_container_id) {
        static const char *const with[] = {
                "/system.slice/docker-" ID64 ".scope",
                "/docker/" ID64,
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" ID64 ".scope",
                "/kubepods/besteffort/pod5678/crio-" ID64 ".scope",
                "/machine.slice/libpod-" ID64 ".scope/container",
        };
        static const char *const without[] = {
                "/system.slice/app.service",
                "/user.slice/user-1000.slice/session-3.scope",
                "/docker/0123456789abcdef", /* too short */
                "/docker/" ID64 "0",        /* 65 digits: not an id */
                "/docker/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
        };
        char buf[PEER_CONTAINER_ID_MAX];

        for (size_t i = 0; i < sizeof with / sizeof with[0]; i++) {
                ck_assert_msg(peer_container_id(with[i], buf, sizeof buf) == 0, "%s", with[i]);
                ck_assert_str_eq(buf, ID64);
        }
        for (size_t i = 0; i < sizeof without / sizeof without[0]; i++)
                ck_assert_msg(peer_container_id(without[i], buf, sizeof buf) == -ENOENT, "%s", without[i]);
        ck_assert_int_eq(peer_container_id(NULL, buf, sizeof buf), -ENOENT);
}
END_TEST

START_TEST(test_verdicts) {
        PeerNamespace own = { .known = true, .inner_pid = 4242, .depth = 1 };
        PeerNamespace nested = { .known = true, .inner_pid = 7, .depth = 2 };
        PeerNamespace unknown = { .known = false };

        ck_assert_int_eq(peer_judge_claim(4242, 4242, &own), PEER_CLAIM_OK);
        /* in the daemon's namespace a different pid is a lie: another process's history */
        ck_assert_int_eq(peer_judge_claim(4242, 4243, &own), PEER_CLAIM_FORGED);
        ck_assert_int_eq(peer_judge_claim(4242, 7, &nested), PEER_CLAIM_OK);
        ck_assert_int_eq(peer_judge_claim(4242, 4242, &nested), PEER_CLAIM_FORGED);
        ck_assert_int_eq(peer_judge_claim(4242, 4242, &unknown), PEER_CLAIM_OK);
        ck_assert_int_eq(peer_judge_claim(4242, 1, &unknown), PEER_CLAIM_UNVERIFIED);
        ck_assert_int_eq(peer_judge_claim(4242, 1, NULL), PEER_CLAIM_UNVERIFIED);
}
END_TEST

static void put(const char *dir, const char *name, const char *content) {
        char path[PATH_MAX + 16];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
}

/* The Uid line says who runs at a pid now; a process is judged to run as the uid that
 * connected when any of its four uids is that one (a service between setuid steps). */
START_TEST(test_uids) {
        PeerNamespace ns = { 0 };

        ck_assert_int_eq(peer_parse_uids("Name:\tpython3\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t5\t5\t5\n", ns.uids),
                         0);
        ck_assert_uint_eq(ns.uids[0], 1000);
        ck_assert_uint_eq(ns.uids[3], 1003);
        ns.uids_known = true;
        ck_assert(peer_runs_as(&ns, 1000));
        ck_assert(peer_runs_as(&ns, 1002));
        ck_assert(!peer_runs_as(&ns, 0));
        ck_assert(!peer_runs_as(&ns, 65534));
        ns.uids_known = false; /* unreadable: the benefit of the doubt */
        ck_assert(peer_runs_as(&ns, 0));
        ck_assert_int_eq(peer_parse_uids("Name:\tx\n", ns.uids), -ENOENT);
        ck_assert_int_eq(peer_parse_uids("Uid:\t1\t2\t3\n", ns.uids), -EINVAL);
        ck_assert_int_eq(peer_parse_uids("Uid:\t1\t2\t-3\t4\n", ns.uids), -EINVAL);
        ck_assert_int_eq(peer_parse_uids("Uid:\t1\t2\t3\t99999999999\n", ns.uids), -EINVAL);
}
END_TEST

START_TEST(test_read_fake_proc) {
        char root[] = "/tmp/hw-test-proc-XXXXXX", dir[64], cg[PEER_CGROUP_MAX], path[96];
        PeerNamespace ns;

        ck_assert_ptr_nonnull(mkdtemp(root));
        snprintf(dir, sizeof dir, "%s/4242", root);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        put(dir, "status", "Name:\tpython3\nNSpid:\t4242\t1\n");
        put(dir, "cgroup", "0::/system.slice/docker-" ID64 ".scope\n");
        ck_assert_int_eq(peer_read_namespace(root, 4242, &ns), 0);
        ck_assert(!ns.uids_known); /* no Uid line in this one */
        ck_assert_int_eq(ns.inner_pid, 1);
        ck_assert_uint_eq(ns.depth, 2);
        ck_assert_uint_eq(ns.pidns_inode, 0); /* no ns/pid in the fake tree */
        ck_assert_int_eq(peer_read_cgroup(root, 4242, cg, sizeof cg), 0);
        ck_assert_str_eq(cg, "/system.slice/docker-" ID64 ".scope");
        ck_assert_int_eq(peer_read_namespace(root, 4243, &ns), -ENOENT);

        snprintf(path, sizeof path, "%s/status", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/cgroup", dir);
        unlink(path);
        rmdir(dir);
        rmdir(root);
}
END_TEST

START_TEST(test_read_self) {
        PeerNamespace ns;
        char cg[PEER_CGROUP_MAX];

        /* NSpid exists since Linux 4.1 */
        ck_assert_int_eq(peer_read_namespace("/proc", getpid(), &ns), 0);
        ck_assert_int_eq(peer_judge_claim(getpid(), getpid(), &ns), ns.depth == 1 ? PEER_CLAIM_OK : PEER_CLAIM_FORGED);
        ck_assert(ns.uids_known);
        ck_assert(peer_runs_as(&ns, geteuid()));
        ck_assert_uint_ne(ns.pidns_inode, 0);
        ck_assert_int_eq(peer_read_cgroup("/proc", getpid(), cg, sizeof cg), 0);
        ck_assert(cg[0] == '/');
}
END_TEST

static Suite *identity_suite(void) {
        Suite *s = suite_create("peer-identity");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_nspid);
        tcase_add_test(tc, test_cgroup);
        tcase_add_test(tc, test_container_id);
        tcase_add_test(tc, test_verdicts);
        tcase_add_test(tc, test_uids);
        tcase_add_test(tc, test_read_fake_proc);
        tcase_add_test(tc, test_read_self);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(identity_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
