/* SPDX-License-Identifier: MIT */
/*
 * HTTP access policy (see access.h): bearer token, loopback test, request and agent-work rates.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "access.h"
#include "api.h"
#include "macro.h"
#include "parse-util.h"
#include "time-util.h"

struct HttpAccess {
        char *token;
        BucketTable *requests;      /* per client address */
        BucketTable *work_clients;  /* agent work per client address */
        BucketTable *work_processes; /* agent work per process id */
};

static HttpAccess *installed;

int access_resolve_group(const char *name, gid_t *ret) {
        struct group grp, *result = NULL;
        char buf[4096];
        uint64_t v;
        int r;

        if (!name || !*name) {
                *ret = (gid_t) -1;
                return 0;
        }
        if (parse_uint64(name, &v) >= 0) {
                if (v >= (uint64_t) (gid_t) -1)
                        return -ERANGE;
                *ret = (gid_t) v;
                return 0;
        }
        r = getgrnam_r(name, &grp, buf, sizeof buf, &result);
        if (r != 0)
                return -r;
        if (!result)
                return -ENOENT;
        *ret = result->gr_gid;
        return 0;
}

int access_token_load(const char *path, char **ret_token, bool *ret_loose, char *error, size_t size) {
        _cleanup_close_ int fd = -1;
        char buf[ACCESS_TOKEN_MAX + 2];
        struct stat st;
        size_t len = 0, n;
        char *token;

        /* Non-blocking: a FIFO put in the file's place blocked open() until a writer came, and
         * with it the whole event loop (agents and HTTP) at a reload (found by review). It is
         * refused below as not a regular file, and a reload keeps the running token. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                snprintf(error, size, "cannot read the token file %s: %s", path, strerror(e));
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(error, size, "the token file %s is not a regular file", path);
                return -EINVAL;
        }
        while (len < sizeof buf - 1) {
                ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        snprintf(error, size, "cannot read the token file %s: %s", path, strerror(errno));
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        /* a NUL would end the token early: "abcdefghijklmnop\0SECRET" took the first 16 bytes for
         * the whole token (found by review) */
        for (size_t i = 0; i < len && buf[i] != '\n' && buf[i] != '\r'; i++)
                if (buf[i] == '\0') {
                        explicit_bzero(buf, sizeof buf);
                        snprintf(error, size, "the token in %s contains a NUL byte", path);
                        return -EINVAL;
                }
        buf[len] = '\0';
        n = strcspn(buf, "\r\n");
        while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
                n--;
        buf[n] = '\0';
        if (n < ACCESS_TOKEN_MIN || n > ACCESS_TOKEN_MAX) {
                snprintf(error, size, "the token in %s must be %d..%d bytes long", path, ACCESS_TOKEN_MIN,
                         ACCESS_TOKEN_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                if (!isgraph((unsigned char) buf[i])) {
                        snprintf(error, size, "the token in %s must be visible ASCII without spaces", path);
                        return -EINVAL;
                }
        token = strdup(buf);
        explicit_bzero(buf, sizeof buf);
        if (!token)
                return -ENOMEM;
        *ret_token = token;
        if (ret_loose)
                *ret_loose = (st.st_mode & 0077) != 0;
        return 0;
}

bool access_token_equal(const char *expected, const char *given, size_t given_len) {
        size_t n = strlen(expected);
        /* Walk the expected token whole whatever was given, so the time tells nothing about
         * how many leading bytes matched; a length mismatch is folded into the same result. */
        volatile unsigned char diff = given_len != n;

        for (size_t i = 0; i < n; i++) {
                unsigned char g = i < given_len ? (unsigned char) given[i] : 0;
                diff |= (unsigned char) (g ^ (unsigned char) expected[i]);
        }
        return diff == 0;
}

int access_parse_bearer(const char *header, const char **ret_token, size_t *ret_len) {
        const char *p;
        size_t n;

        if (!header || strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
                return -EINVAL;
        p = header + 6;
        while (*p == ' ' || *p == '\t')
                p++;
        n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        if (n == 0)
                return -EINVAL;
        *ret_token = p;
        *ret_len = n;
        return 0;
}

bool access_sockaddr_is_loopback(const struct sockaddr *sa) {
        if (!sa)
                return false;
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                if (IN6_IS_ADDR_LOOPBACK(a))
                        return true;
                /* ::ffff:127.x.y.z, how a dual-stack socket sees IPv4 loopback */
                return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
        }
        return false;
}

void access_address_key(const struct sockaddr *sa, char buf[ACCESS_ADDRESS_KEY_MAX]) {
        if (sa && sa->sa_family == AF_INET &&
            inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, ACCESS_ADDRESS_KEY_MAX))
                return;
        if (sa && sa->sa_family == AF_INET6) {
                struct in6_addr a = ((const struct sockaddr_in6 *) sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(&a) &&
                    inet_ntop(AF_INET, &a.s6_addr[12], buf, ACCESS_ADDRESS_KEY_MAX))
                        return;
                memset(&a.s6_addr[8], 0, 8);
                if (inet_ntop(AF_INET6, &a, buf, ACCESS_ADDRESS_KEY_MAX)) {
                        strncat(buf, "/64", ACCESS_ADDRESS_KEY_MAX - strlen(buf) - 1);
                        return;
                }
        }
        snprintf(buf, ACCESS_ADDRESS_KEY_MAX, "unknown");
}

/* Tokens are wiped before their memory goes back to the allocator. */
static void token_free(char *t) {
        if (t) {
                explicit_bzero(t, strlen(t));
                free(t);
        }
}

HttpAccess *http_access_free(HttpAccess *a) {
        if (!a)
                return NULL;
        if (installed == a)
                installed = NULL;
        token_free(a->token);
        bucket_table_free(a->requests);
        bucket_table_free(a->work_clients);
        bucket_table_free(a->work_processes);
        free(a);
        return NULL;
}

HttpAccess *http_access_new(const char *token, const LimitsConfig *l) {
        HttpAccess *a = calloc(1, sizeof *a);

        if (!a)
                return NULL;
        if (token && !(a->token = strdup(token)))
                return http_access_free(a);
        a->requests = bucket_table_new(ACCESS_CLIENTS_MAX, l->http_requests_per_second, 2 * l->http_requests_per_second);
        a->work_clients = bucket_table_new(ACCESS_CLIENTS_MAX, l->work_per_minute_client / 60, l->work_per_minute_client);
        a->work_processes = bucket_table_new(ACCESS_CLIENTS_MAX, l->work_per_minute_process / 60,
                                             l->work_per_minute_process);
        if (!a->requests || !a->work_clients || !a->work_processes)
                return http_access_free(a);
        return a;
}

bool http_access_has_token(const HttpAccess *a) {
        return a && a->token;
}

static bool token_ok(const HttpAccess *a, const char *authorization) {
        const char *t;
        size_t n;

        if (access_parse_bearer(authorization, &t, &n) < 0)
                return false;
        return access_token_equal(a->token, t, n);
}

AccessDecision http_access_decide_request(HttpAccess *a, RouteKind kind, const struct sockaddr *peer,
                                          const char *authorization, uint64_t now_usec, double *ret_retry_after) {
        char key[ACCESS_ADDRESS_KEY_MAX];

        /* The rate first: a request with a wrong token counts too (401s went unlimited: a guesser
         * had no rate at all; found by review). */
        access_address_key(peer, key);
        if (!bucket_table_take(a->requests, key, now_usec, ret_retry_after)) {
                limit_hit(LIMIT_HTTP_REQUEST_RATE);
                return ACCESS_RATE_LIMITED;
        }
        if (a->token && kind != ROUTE_HEALTHZ && !token_ok(a, authorization))
                return ACCESS_UNAUTHORIZED;
        return ACCESS_ALLOW;
}

AccessDecision http_access_decide_agent_work(HttpAccess *a, const struct sockaddr *peer, const char *authorization,
                                             const char *process_id, uint64_t now_usec, double *ret_retry_after) {
        char key[ACCESS_ADDRESS_KEY_MAX];

        if (a->token) {
                if (!token_ok(a, authorization))
                        return ACCESS_UNAUTHORIZED;
        } else if (!access_sockaddr_is_loopback(peer))
                return ACCESS_FORBIDDEN;
        access_address_key(peer, key);
        if (!bucket_table_take(a->work_clients, key, now_usec, ret_retry_after) ||
            !bucket_table_take(a->work_processes, process_id ? process_id : "", now_usec, ret_retry_after)) {
                limit_hit(LIMIT_AGENT_WORK_RATE);
                return ACCESS_RATE_LIMITED;
        }
        return ACCESS_ALLOW;
}

const char *access_decision_message(AccessDecision d, bool work) {
        switch (d) {
        case ACCESS_UNAUTHORIZED:
                return "authorization required: send 'Authorization: Bearer <token>'";
        case ACCESS_FORBIDDEN:
                return "this endpoint makes an agent work inside its process: it needs the bearer token, or a "
                       "loopback client when no token is configured";
        case ACCESS_RATE_LIMITED:
                return work ? "too many agent work requests for this process or client; retry later"
                            : "too many requests from this client; retry later";
        default:
                return "ok";
        }
}

void http_access_install(HttpAccess *a) {
        installed = a;
}

HttpAccess *http_access_installed(void) {
        return installed;
}

int http_access_set_token(HttpAccess *a, const char *token) {
        char *copy = NULL;

        if (token && !(copy = strdup(token)))
                return -ENOMEM;
        token_free(a->token);
        a->token = copy;
        return 0;
}

static const struct sockaddr *connection_peer(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        return info ? info->client_addr : NULL;
}

static const char *connection_authorization(struct MHD_Connection *c) {
        return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
}

int http_access_check_agent_work(struct MHD_Connection *c, const char *process_id, int *ret_status,
                                 const char **ret_message) {
        AccessDecision d;
        double retry = 0;

        if (!installed || !c)
                return 0;
        d = http_access_decide_agent_work(installed, connection_peer(c), connection_authorization(c), process_id,
                                          now_usec_monotonic(), &retry);
        if (d == ACCESS_ALLOW)
                return 0;
        *ret_status = (int) d;
        *ret_message = access_decision_message(d, true);
        return (int) d;
}

static inline void MHD_destroy_responsep(struct MHD_Response **r) {
        if (*r)
                MHD_destroy_response(*r);
}

bool http_access_filter(struct MHD_Connection *c, RouteKind kind, int *ret_result) {
        _cleanup_(MHD_destroy_responsep) struct MHD_Response *resp = NULL;
        AccessDecision d;
        double retry = 0;
        char *body = NULL, seconds[32];
        size_t size;

        if (!installed)
                return false;
        d = http_access_decide_request(installed, kind, connection_peer(c), connection_authorization(c),
                                       now_usec_monotonic(), &retry);
        if (d == ACCESS_ALLOW)
                return false;
        *ret_result = MHD_NO;
        if (api_error_body(access_decision_message(d, false), &body, &size) < 0)
                return true;
        resp = MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return true;
        }
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, API_CONTENT_TYPE_JSON) == MHD_NO)
                return true;
        if (d == ACCESS_UNAUTHORIZED &&
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"heapwatch\"") == MHD_NO)
                return true;
        if (d == ACCESS_RATE_LIMITED) {
                snprintf(seconds, sizeof seconds, "%.0f", ceil(retry > 1 ? retry : 1));
                if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds) == MHD_NO)
                        return true;
        }
        *ret_result = MHD_queue_response(c, (unsigned) d, resp);
        return true;
}
