/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/frame-reader.c: reassembly of protocol frames from a byte stream that
 * arrives in pieces of any size (whole, byte by byte, split at every offset, several frames in
 * one read), the header checks (magic, version, size limit) that must refuse a frame before any
 * of its payload is buffered, and a deterministic fuzz run feeding garbage in random chunks,
 * which must only ever wait for more input or fail cleanly.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame-reader.h"
#include "heapwatch/protocol.h"

/* Build header + payload into a malloc'ed buffer. */
static uint8_t *make_frame(uint8_t type, const void *payload, size_t len, size_t *ret_len) {
        uint8_t *f = malloc(HW_FRAME_HEADER_SIZE + len + 1);

        ck_assert_ptr_nonnull(f);
        hw_frame_header_pack(f, type, (uint32_t) len);
        if (len > 0)
                memcpy(f + HW_FRAME_HEADER_SIZE, payload, len);
        *ret_len = HW_FRAME_HEADER_SIZE + len;
        return f;
}

/* Deterministic PRNG (xorshift64*), so a failure reproduces. */
static uint64_t rng_state;
static uint64_t rng_next(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static const char sample_payload[] = "{\"seq\": 1, \"time\": 1764061251.02}";

START_TEST(test_one_piece) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len, used = 999;
        uint8_t *f = make_frame(HW_FRAME_SAMPLE, sample_payload, strlen(sample_payload), &len);

        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, f, len, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, len);
        ck_assert_int_eq(reason, _REJECT_MAX); /* untouched on success */
        ck_assert_uint_eq(r.hdr.version, HW_PROTOCOL_VERSION);
        ck_assert_uint_eq(r.hdr.type, HW_FRAME_SAMPLE);
        ck_assert_uint_eq(r.hdr.flags, 0);
        ck_assert_uint_eq(r.hdr.length, strlen(sample_payload));
        ck_assert_uint_eq(r.payload_len, strlen(sample_payload));
        ck_assert_mem_eq(r.payload, sample_payload, strlen(sample_payload));
        ck_assert_int_eq(r.payload[r.payload_len], '\0');
        ck_assert_str_eq((const char *) r.payload, sample_payload);

        /* Pushing more without frame_reader_next() consumes nothing and keeps the frame. */
        ck_assert_int_eq(frame_reader_push(&r, f, len, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, 0);
        ck_assert_str_eq((const char *) r.payload, sample_payload);

        frame_reader_next(&r);
        ck_assert_ptr_null(r.payload);
        ck_assert_uint_eq(r.header_len, 0);
        frame_reader_done(&r);
        free(f);
}
END_TEST

START_TEST(test_byte_by_byte) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len, used;
        uint8_t *f = make_frame(HW_FRAME_HELLO, sample_payload, strlen(sample_payload), &len);

        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        for (size_t i = 0; i < len; i++) {
                int k = frame_reader_push(&r, f + i, 1, &used, &reason);
                ck_assert_uint_eq(used, 1);
                if (i + 1 < len) {
                        ck_assert_msg(k == FRAME_INCOMPLETE, "byte %zu: %d", i, k);
                        /* Nothing is buffered until the header is complete and valid. */
                        if (i + 1 < HW_FRAME_HEADER_SIZE)
                                ck_assert_ptr_null(r.payload);
                        else
                                ck_assert_ptr_nonnull(r.payload);
                } else
                        ck_assert_int_eq(k, FRAME_COMPLETE);
        }
        ck_assert_uint_eq(r.hdr.type, HW_FRAME_HELLO);
        ck_assert_str_eq((const char *) r.payload, sample_payload);
        frame_reader_done(&r);
        free(f);
}
END_TEST

START_TEST(test_split_every_offset) {
        size_t len;
        uint8_t *f = make_frame(HW_FRAME_SAMPLE, sample_payload, strlen(sample_payload), &len);

        for (size_t split = 0; split <= len; split++) {
                FrameReader r;
                FrameRejectReason reason = _REJECT_MAX;
                size_t used = 999;
                int k;

                frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
                k = frame_reader_push(&r, f, split, &used, &reason);
                ck_assert_uint_eq(used, split);
                if (split < len) {
                        ck_assert_msg(k == FRAME_INCOMPLETE, "split %zu: first push %d", split, k);
                        k = frame_reader_push(&r, f + split, len - split, &used, &reason);
                        ck_assert_uint_eq(used, len - split);
                }
                ck_assert_msg(k == FRAME_COMPLETE, "split %zu: %d", split, k);
                ck_assert_uint_eq(r.hdr.length, strlen(sample_payload));
                ck_assert_str_eq((const char *) r.payload, sample_payload);
                ck_assert_int_eq(reason, _REJECT_MAX);
                frame_reader_done(&r);
        }
        free(f);
}
END_TEST

START_TEST(test_two_frames_one_buffer) {
        static const char p2[] = "{\"reason\": \"exit\"}";
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len1, len2, used;
        uint8_t *f1 = make_frame(HW_FRAME_SAMPLE, sample_payload, strlen(sample_payload), &len1);
        uint8_t *f2 = make_frame(HW_FRAME_GOODBYE, p2, strlen(p2), &len2);
        uint8_t *buf = malloc(len1 + len2);

        ck_assert_ptr_nonnull(buf);
        memcpy(buf, f1, len1);
        memcpy(buf + len1, f2, len2);

        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        /* The push stops after the first frame, leaving the second unread. */
        ck_assert_int_eq(frame_reader_push(&r, buf, len1 + len2, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, len1);
        ck_assert_uint_eq(r.hdr.type, HW_FRAME_SAMPLE);
        ck_assert_str_eq((const char *) r.payload, sample_payload);

        frame_reader_next(&r);
        ck_assert_int_eq(frame_reader_push(&r, buf + len1, len2, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, len2);
        ck_assert_uint_eq(r.hdr.type, HW_FRAME_GOODBYE);
        ck_assert_str_eq((const char *) r.payload, p2);

        frame_reader_next(&r);
        ck_assert_int_eq(frame_reader_push(&r, buf, 0, &used, &reason), FRAME_INCOMPLETE);
        ck_assert_uint_eq(used, 0);
        frame_reader_done(&r);
        free(buf);
        free(f1);
        free(f2);
}
END_TEST

START_TEST(test_zero_length_payload) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        uint8_t hdr[HW_FRAME_HEADER_SIZE + 3];
        size_t used;

        hw_frame_header_pack(hdr, HW_FRAME_SAMPLE, 0);
        memcpy(hdr + HW_FRAME_HEADER_SIZE, "HWP", 3); /* the start of the next frame */
        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, hdr, sizeof hdr, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, HW_FRAME_HEADER_SIZE);
        ck_assert_uint_eq(r.hdr.length, 0);
        ck_assert_uint_eq(r.payload_len, 0);
        ck_assert_ptr_nonnull(r.payload);
        ck_assert_str_eq((const char *) r.payload, "");
        frame_reader_next(&r);
        ck_assert_int_eq(frame_reader_push(&r, hdr + used, sizeof hdr - used, &used, &reason), FRAME_INCOMPLETE);
        ck_assert_uint_eq(used, 3);
        frame_reader_done(&r);
}
END_TEST

START_TEST(test_max_size_accepted) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len, used, off = 0;
        uint8_t *payload = malloc(HW_FRAME_MAX_PAYLOAD);
        uint8_t *f;
        int k = FRAME_INCOMPLETE;

        ck_assert_ptr_nonnull(payload);
        for (size_t i = 0; i < HW_FRAME_MAX_PAYLOAD; i++)
                payload[i] = (uint8_t) ('a' + i % 26);
        f = make_frame(HW_FRAME_SAMPLE, payload, HW_FRAME_MAX_PAYLOAD, &len);

        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        /* Feed in 4000-byte reads, as a socket might deliver it. */
        while (off < len) {
                size_t n = len - off < 4000 ? len - off : 4000;
                k = frame_reader_push(&r, f + off, n, &used, &reason);
                ck_assert_uint_eq(used, n);
                off += used;
                if (off < len)
                        ck_assert_int_eq(k, FRAME_INCOMPLETE);
        }
        ck_assert_int_eq(k, FRAME_COMPLETE);
        ck_assert_uint_eq(r.hdr.length, HW_FRAME_MAX_PAYLOAD);
        ck_assert_uint_eq(r.payload_len, HW_FRAME_MAX_PAYLOAD);
        ck_assert_mem_eq(r.payload, payload, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(r.payload[HW_FRAME_MAX_PAYLOAD], '\0');
        frame_reader_done(&r);
        free(f);
        free(payload);
}
END_TEST

/* A header announcing `length` must be refused as soon as the header is complete, whether the
 * push holds just the header or the header plus payload bytes, and nothing may be allocated. */
static void check_too_large(size_t max_payload, uint32_t length) {
        uint8_t buf[HW_FRAME_HEADER_SIZE + 64];
        size_t header_only[] = { HW_FRAME_HEADER_SIZE, sizeof buf };

        memset(buf, 'x', sizeof buf);
        hw_frame_header_pack(buf, HW_FRAME_SAMPLE, length);
        for (size_t i = 0; i < 2; i++) {
                FrameReader r;
                FrameRejectReason reason = _REJECT_MAX;
                size_t used = 0;

                frame_reader_init(&r, max_payload);
                /* The first 11 bytes are not enough to judge. */
                ck_assert_int_eq(frame_reader_push(&r, buf, HW_FRAME_HEADER_SIZE - 1, &used, &reason),
                                 FRAME_INCOMPLETE);
                ck_assert_ptr_null(r.payload);
                ck_assert_int_eq(frame_reader_push(&r, buf + HW_FRAME_HEADER_SIZE - 1,
                                                   header_only[i] - (HW_FRAME_HEADER_SIZE - 1), &used, &reason),
                                 -EBADMSG);
                ck_assert_int_eq(reason, REJECT_TOO_LARGE);
                ck_assert_ptr_null(r.payload);
                ck_assert_uint_eq(r.payload_len, 0);
                frame_reader_done(&r);
        }
}

START_TEST(test_too_large) {
        check_too_large(HW_FRAME_MAX_PAYLOAD, HW_FRAME_MAX_PAYLOAD + 1);
        check_too_large(HW_FRAME_MAX_PAYLOAD, UINT32_MAX);
        /* A reader configured with a lower limit enforces it... */
        check_too_large(1024, 1025);
        /* ...and a limit above the protocol's is clamped to the protocol's. */
        check_too_large(SIZE_MAX, HW_FRAME_MAX_PAYLOAD + 1);
}
END_TEST

START_TEST(test_lower_limit_boundary) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        uint8_t buf[HW_FRAME_HEADER_SIZE + 1024];
        size_t used;

        memset(buf, '{', sizeof buf);
        hw_frame_header_pack(buf, HW_FRAME_SAMPLE, 1024);
        frame_reader_init(&r, 1024);
        ck_assert_int_eq(frame_reader_push(&r, buf, sizeof buf, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(used, sizeof buf);
        ck_assert_uint_eq(r.payload_len, 1024);
        frame_reader_done(&r);

        frame_reader_init(&r, SIZE_MAX);
        ck_assert_uint_eq(r.max_payload, HW_FRAME_MAX_PAYLOAD);
        frame_reader_done(&r);
}
END_TEST

START_TEST(test_bad_magic) {
        static const char *const magics[] = { "XWP", "HWQ", "hwp", "HWP\x01" };
        for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++) {
                FrameReader r;
                FrameRejectReason reason = _REJECT_MAX;
                uint8_t buf[HW_FRAME_HEADER_SIZE + 2];
                size_t used;

                hw_frame_header_pack(buf, HW_FRAME_SAMPLE, 2);
                memcpy(buf, magics[i], 4);
                memcpy(buf + HW_FRAME_HEADER_SIZE, "{}", 2);
                frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
                ck_assert_int_eq(frame_reader_push(&r, buf, sizeof buf, &used, &reason), -EBADMSG);
                ck_assert_int_eq(reason, REJECT_BAD_MAGIC);
                ck_assert_ptr_null(r.payload);
                frame_reader_done(&r);
        }
}
END_TEST

START_TEST(test_bad_version) {
        static const uint8_t versions[] = { 0, 2, 255 };
        for (size_t i = 0; i < sizeof versions; i++) {
                FrameReader r;
                FrameRejectReason reason = _REJECT_MAX;
                uint8_t buf[HW_FRAME_HEADER_SIZE + 2];
                size_t used;

                hw_frame_header_pack(buf, HW_FRAME_SAMPLE, 2);
                buf[4] = versions[i];
                memcpy(buf + HW_FRAME_HEADER_SIZE, "{}", 2);
                frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
                ck_assert_int_eq(frame_reader_push(&r, buf, sizeof buf, &used, &reason), -EBADMSG);
                ck_assert_int_eq(reason, REJECT_BAD_VERSION);
                ck_assert_ptr_null(r.payload);
                frame_reader_done(&r);
        }
}
END_TEST

START_TEST(test_flags_and_unknown_type_pass) {
        /* Flags are reserved and ignored; frame types are the receiver's policy, not the reader's. */
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        uint8_t buf[HW_FRAME_HEADER_SIZE + 2];
        size_t used;

        hw_frame_header_pack(buf, 63, 2);
        buf[6] = 0xab;
        buf[7] = 0xcd;
        memcpy(buf + HW_FRAME_HEADER_SIZE, "{}", 2);
        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, buf, sizeof buf, &used, &reason), FRAME_COMPLETE);
        ck_assert_uint_eq(r.hdr.type, 63);
        ck_assert_uint_eq(r.hdr.flags, 0xabcd);
        ck_assert_str_eq((const char *) r.payload, "{}");
        frame_reader_done(&r);
}
END_TEST

START_TEST(test_truncated_stays_incomplete) {
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len, used;
        uint8_t *f = make_frame(HW_FRAME_SAMPLE, sample_payload, strlen(sample_payload), &len);

        /* Header cut short. */
        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, f, 7, &used, &reason), FRAME_INCOMPLETE);
        ck_assert_uint_eq(used, 7);
        ck_assert_ptr_null(r.payload);
        ck_assert_int_eq(frame_reader_push(&r, f, 0, &used, &reason), FRAME_INCOMPLETE);
        frame_reader_done(&r);

        /* Payload cut short: stays incomplete however often it is polled with nothing. */
        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, f, len - 1, &used, &reason), FRAME_INCOMPLETE);
        ck_assert_uint_eq(used, len - 1);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(frame_reader_push(&r, f, 0, &used, &reason), FRAME_INCOMPLETE);
                ck_assert_uint_eq(used, 0);
        }
        ck_assert_uint_eq(r.payload_len, strlen(sample_payload) - 1);
        /* The last byte completes it. */
        ck_assert_int_eq(frame_reader_push(&r, f + len - 1, 1, &used, &reason), FRAME_COMPLETE);
        ck_assert_str_eq((const char *) r.payload, sample_payload);
        frame_reader_done(&r); /* also frees a frame nobody called next() on */
        free(f);
}
END_TEST

START_TEST(test_done_on_partial_frame) {
        /* frame_reader_done() releases a half-received payload (checked by valgrind). */
        FrameReader r;
        FrameRejectReason reason = _REJECT_MAX;
        size_t len, used;
        uint8_t *f = make_frame(HW_FRAME_SAMPLE, sample_payload, strlen(sample_payload), &len);

        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        frame_reader_done(&r); /* fresh reader */
        frame_reader_init(&r, HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(frame_reader_push(&r, f, HW_FRAME_HEADER_SIZE + 3, &used, &reason), FRAME_INCOMPLETE);
        ck_assert_ptr_nonnull(r.payload);
        frame_reader_done(&r);
        ck_assert_ptr_null(r.payload);
        frame_reader_done(&r); /* twice is harmless */
        free(f);
}
END_TEST

START_TEST(test_random_garbage) {
        /* 20000 streams of random bytes, each fed in random-sized chunks. Half of them start with a
         * valid magic and version so the length check gets exercised, and a quarter also carry a
         * plausible length (sometimes just over the limit) so whole frames complete and the next
         * header is read from garbage again. The reader must only ever wait, complete a frame
         * within limits, or fail with a header reason. Plain comparisons inside the loops keep it
         * fast under valgrind. */
        const size_t max_payload = 512;
        uint8_t buf[2048];
        unsigned completed = 0, rejected = 0;

        rng_state = UINT64_C(0x9e3779b97f4a7c15);
        for (int iter = 0; iter < 20000; iter++) {
                FrameReader r;
                size_t n = rng_next() % sizeof buf, off = 0, frame_start = 0;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t) rng_next();
                if (iter % 2 == 0 && n >= HW_FRAME_HEADER_SIZE) {
                        memcpy(buf, HW_FRAME_MAGIC, 4);
                        buf[4] = HW_PROTOCOL_VERSION;
                        if (iter % 4 == 0) {
                                uint32_t l = (uint32_t) (rng_next() % (max_payload + 16));
                                buf[8] = (uint8_t) (l >> 24);
                                buf[9] = (uint8_t) (l >> 16);
                                buf[10] = (uint8_t) (l >> 8);
                                buf[11] = (uint8_t) l;
                        }
                }

                frame_reader_init(&r, max_payload);
                while (off < n) {
                        size_t chunk = 1 + rng_next() % 300, used = SIZE_MAX;
                        FrameRejectReason reason = _REJECT_MAX;
                        int k;

                        if (chunk > n - off)
                                chunk = n - off;
                        k = frame_reader_push(&r, buf + off, chunk, &used, &reason);
                        if (k < 0) {
                                if (k != -EBADMSG ||
                                    (reason != REJECT_BAD_MAGIC && reason != REJECT_BAD_VERSION &&
                                     reason != REJECT_TOO_LARGE) ||
                                    r.payload)
                                        ck_abort_msg("iteration %d: error %d, reason %d", iter, k, (int) reason);
                                rejected++;
                                break;
                        }
                        if (used > chunk)
                                ck_abort_msg("iteration %d: used %zu of %zu", iter, used, chunk);
                        if (k == FRAME_COMPLETE) {
                                if (r.hdr.length > max_payload || r.payload_len != r.hdr.length ||
                                    frame_start + HW_FRAME_HEADER_SIZE + r.hdr.length != off + used ||
                                    memcmp(r.payload, buf + frame_start + HW_FRAME_HEADER_SIZE, r.hdr.length) != 0)
                                        ck_abort_msg("iteration %d: bad frame at %zu", iter, frame_start);
                                completed++;
                                frame_reader_next(&r);
                                frame_start = off + used;
                        } else if (k != FRAME_INCOMPLETE || used != chunk) /* waiting: all consumed */
                                ck_abort_msg("iteration %d: %d, used %zu of %zu", iter, k, used, chunk);
                        off += used;
                }
                frame_reader_done(&r);
        }
        /* The run really exercised both outcomes. */
        ck_assert_uint_gt(completed, 1000);
        ck_assert_uint_gt(rejected, 10000);
}
END_TEST

static Suite *frame_reader_suite(void) {
        Suite *s = suite_create("frame-reader");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_one_piece);
        tcase_add_test(tc, test_byte_by_byte);
        tcase_add_test(tc, test_split_every_offset);
        tcase_add_test(tc, test_two_frames_one_buffer);
        tcase_add_test(tc, test_zero_length_payload);
        tcase_add_test(tc, test_max_size_accepted);
        tcase_add_test(tc, test_too_large);
        tcase_add_test(tc, test_lower_limit_boundary);
        tcase_add_test(tc, test_bad_magic);
        tcase_add_test(tc, test_bad_version);
        tcase_add_test(tc, test_flags_and_unknown_type_pass);
        tcase_add_test(tc, test_truncated_stays_incomplete);
        tcase_add_test(tc, test_done_on_partial_frame);
        tcase_add_test(tc, test_random_garbage);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(frame_reader_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
