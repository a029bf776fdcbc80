/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <arpa/inet.h>

#include "parse-util.h"

int parse_double(const char *s, double *ret) {
        char *end;
        double v;

        if (!s || !*s || isspace((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || !isfinite(v))
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_decimal(const char *s, double *ret) {
        size_t n = 0, digits = 0;
        bool point = false;

        if (!s)
                return -EINVAL;
        /* strtod() alone also takes "1e-9", "0x1p3", "+5", " 5", "inf": none of them is a
         * value anyone means for a rate or a timeout (found by review). */
        for (; s[n]; n++) {
                if (s[n] >= '0' && s[n] <= '9')
                        digits++;
                else if (s[n] == '.' && !point && digits > 0)
                        point = true;
                else
                        return -EINVAL;
                if (n >= PARSE_DECIMAL_MAX)
                        return -EINVAL;
        }
        if (digits == 0 || s[n - 1] == '.')
                return -EINVAL;
        return parse_double(s, ret); /* the shape is plain decimal: strtod() reads it whole */
}

int parse_int64(const char *s, int64_t *ret) {
        char *end;
        long long v;

        if (!s || !*s || isspace((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_seconds(const char *s, double min, double max, double *ret) {
        double v;
        int r = parse_double(s, &v);

        if (r < 0)
                return r;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_listen_address(const char *s, char *host, size_t host_size, uint16_t *ret_port) {
        const char *colon;
        size_t hlen;
        int64_t port;
        char buf[64];
        unsigned char addr[16];

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hlen = (size_t) (close - s - 1);
                if (hlen == 0 || hlen >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, s + 1, hlen);
                buf[hlen] = '\0';
                if (inet_pton(AF_INET6, buf, addr) != 1)
                        return -EINVAL;
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                hlen = (size_t) (colon - s);
                if (hlen == 0 || hlen >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, s, hlen);
                buf[hlen] = '\0';
                if (inet_pton(AF_INET, buf, addr) != 1)
                        return -EINVAL;
        }
        /* Digits only: no sign, no spaces; port 0 (any free port) is no address to serve on. */
        if (colon[1] < '0' || colon[1] > '9' || parse_int64(colon + 1, &port) < 0 || port < 1 || port > 65535)
                return -EINVAL;
        if (hlen + 1 > host_size)
                return -ENOBUFS;
        memcpy(host, buf, hlen + 1);
        *ret_port = (uint16_t) port;
        return 0;
}
