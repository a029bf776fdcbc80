/* SPDX-License-Identifier: MIT */
/*
 * Implementation of http-client.h over libcurl's easy interface. One request per process is
 * all the CLI needs, so curl's global state is set up and torn down around each call rather
 * than kept: the pair is reference counted and leaves nothing behind for leak checkers.
 *
 * libcurl is loaded (dlopen) by the first call that needs it, not linked: `heapwatch run`,
 * which starts every Python process it wraps, never makes a request, and linking libcurl made
 * each of its starts map and relocate some thirty libraries (TLS, Kerberos, LDAP...), about
 * 6 ms (docs/performance.md). The headers are still libcurl's, and the soname is the one its
 * ABI has kept since 7.16 (2006).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http-client.h"
#include "macro.h"

#define LIBCURL_SONAME "libcurl.so.4"

/* The libcurl functions this file calls, resolved once by libcurl_load(). */
static struct {
        bool loaded;
        char error[256]; /* why it could not be loaded */
        CURLcode (*global_init)(long flags);
        void (*global_cleanup)(void);
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *c, CURLoption option, ...);
        CURLcode (*easy_perform)(CURL *c);
        CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
        const char *(*easy_strerror)(CURLcode code);
        void (*easy_cleanup)(CURL *c);
        struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
        void (*slist_free_all)(struct curl_slist *l);
        CURLU *(*url)(void);
        CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned flags);
        CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned flags);
        void (*url_cleanup)(CURLU *u);
        void (*free)(void *p);
} lc;

static int libcurl_load(void) {
        void *h;

        if (lc.loaded)
                return 0;
        h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                const char *e = dlerror();

                snprintf(lc.error, sizeof lc.error, "%s", e ? e : "cannot load " LIBCURL_SONAME);
                return -ELIBACC;
        }
#define RESOLVE(member, symbol)                                                                          \
        do {                                                                                             \
                *(void **) &lc.member = dlsym(h, symbol);                                                \
                if (!lc.member) {                                                                        \
                        snprintf(lc.error, sizeof lc.error, "%s has no %s", LIBCURL_SONAME, symbol);     \
                        dlclose(h);                                                                      \
                        return -ELIBACC;                                                                 \
                }                                                                                        \
        } while (0)
        RESOLVE(global_init, "curl_global_init");
        RESOLVE(global_cleanup, "curl_global_cleanup");
        RESOLVE(easy_init, "curl_easy_init");
        RESOLVE(easy_setopt, "curl_easy_setopt");
        RESOLVE(easy_perform, "curl_easy_perform");
        RESOLVE(easy_getinfo, "curl_easy_getinfo");
        RESOLVE(easy_strerror, "curl_easy_strerror");
        RESOLVE(easy_cleanup, "curl_easy_cleanup");
        RESOLVE(slist_append, "curl_slist_append");
        RESOLVE(slist_free_all, "curl_slist_free_all");
        RESOLVE(url, "curl_url");
        RESOLVE(url_set, "curl_url_set");
        RESOLVE(url_get, "curl_url_get");
        RESOLVE(url_cleanup, "curl_url_cleanup");
        RESOLVE(free, "curl_free");
#undef RESOLVE
        lc.loaded = true; /* the handle stays open for the life of the process */
        return 0;
}

const char *http_client_load_error(void) {
        return lc.error[0] ? lc.error : "cannot load " LIBCURL_SONAME;
}

static void easy_cleanupp(CURL **c) {
        if (*c)
                lc.easy_cleanup(*c);
}

static void url_cleanupp(CURLU **u) {
        if (*u)
                lc.url_cleanup(*u);
}

static void slist_free_allp(struct curl_slist **l) {
        if (*l)
                lc.slist_free_all(*l);
}

static void curl_freep(char **p) {
        if (*p)
                lc.free(*p);
}

void http_response_clear(HttpResponse *r) {
        if (!r)
                return;
        free(r->body);
        *r = (HttpResponse) {};
}

static void set_error(char *error, size_t error_size, const char *text) {
        if (error && error_size > 0)
                snprintf(error, error_size, "%s", text);
}

int http_build_url(const char *base, const char *path, const char *query, char **ret) {
        _cleanup_(url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *base_path = NULL, *url = NULL;
        _cleanup_free_ char *joined = NULL, *with_scheme = NULL;
        size_t n;
        char *s;
        int r;

        if (!base || !*base || !path || path[0] != '/')
                return -EINVAL;
        r = libcurl_load();
        if (r < 0)
                return r;

        /* "127.0.0.1:9847" is how people write a daemon's address; let it mean http (curl's
         * own CURLU_DEFAULT_SCHEME would make it https). */
        if (!strstr(base, "://")) {
                if (asprintf(&with_scheme, "http://%s", base) < 0)
                        return -ENOMEM;
                base = with_scheme;
        }

        u = lc.url();
        if (!u)
                return -ENOMEM;
        if (lc.url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
                return -EINVAL;

        if (lc.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
                return -EINVAL;
        if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
                return -EPROTONOSUPPORT;

        /* Keep a path prefix (a daemon behind a reverse proxy under /heapwatch/), without
         * doubling the slash between it and ours. */
        if (lc.url_get(u, CURLUPART_PATH, &base_path, 0) != CURLUE_OK)
                return -EINVAL;
        n = strlen(base_path);
        while (n > 0 && base_path[n - 1] == '/')
                n--;
        if (asprintf(&joined, "%.*s%s", (int) n, base_path, path) < 0)
                return -ENOMEM;

        if (lc.url_set(u, CURLUPART_PATH, joined, 0) != CURLUE_OK ||
            lc.url_set(u, CURLUPART_QUERY, query, 0) != CURLUE_OK ||
            lc.url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK)
                return -EINVAL;
        if (lc.url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
                return -EINVAL;

        s = strdup(url);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* A proxy from http_proxy/https_proxy cannot reach this machine's loopback, so requests to
 * the default local daemon must not go through one, whatever no_proxy says. */
static bool url_is_loopback(const char *url) {
        _cleanup_(url_cleanupp) CURLU *u = lc.url();
        _cleanup_(curl_freep) char *host = NULL;

        if (!u || lc.url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            lc.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                return false;
        return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
               strcmp(host, "[::1]") == 0;
}

typedef struct Sink {
        char *data;
        size_t size, allocated, max;
        bool too_large;
        bool oom;
} Sink;

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb; /* curl guarantees size == 1 */

        if (n > s->max - s->size) {
                /* Returning less than n makes curl abort with CURLE_WRITE_ERROR. */
                s->too_large = true;
                return 0;
        }
        if (s->size + n + 1 > s->allocated) {
                size_t a = s->allocated ? s->allocated : 16384;
                char *d;

                while (a < s->size + n + 1)
                        a *= 2;
                if (a > s->max + 1)
                        a = s->max + 1; /* doubling past the cap would only waste memory */
                d = realloc(s->data, a);
                if (!d) {
                        s->oom = true;
                        return 0;
                }
                s->data = d;
                s->allocated = a;
        }
        memcpy(s->data + s->size, ptr, n);
        s->size += n;
        s->data[s->size] = '\0';
        return n;
}

static int curl_code_to_errno(CURLcode code) {
        switch (code) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* With $HEAPWATCH_TOKEN_FILE set, the bearer token heapwatchd requires (its http-token-file: the
 * first line, trailing whitespace dropped) goes with every request. Returns 0, or -errno with
 * the reason in error[]. */
static int add_authorization(struct curl_slist **headers, char *error, size_t error_size) {
        const char *path = getenv("HEAPWATCH_TOKEN_FILE");
        _cleanup_fclose_ FILE *f = NULL;
        char line[4200], header[4256];
        struct curl_slist *l;
        size_t n;

        if (!path || !*path)
                return 0;
        f = fopen(path, "re");
        if (!f || !fgets(line, sizeof line, f)) {
                char m[512];
                snprintf(m, sizeof m, "cannot read $HEAPWATCH_TOKEN_FILE %s", path);
                set_error(error, error_size, m);
                return -EACCES;
        }
        n = strcspn(line, "\r\n");
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
                n--;
        line[n] = '\0';
        snprintf(header, sizeof header, "Authorization: Bearer %s", line);
        l = lc.slist_append(*headers, header);
        explicit_bzero(line, sizeof line);
        explicit_bzero(header, sizeof header);
        if (!l) {
                set_error(error, error_size, "out of memory");
                return -ENOMEM;
        }
        *headers = l;
        return 0;
}

static int http_get_one(const char *url, size_t body_max, HttpResponse *ret, char *error, size_t error_size) {
        _cleanup_(easy_cleanupp) CURL *c = NULL;
        _cleanup_(slist_free_allp) struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        Sink sink = { .max = body_max };
        CURLcode code;
        long status = 0;
        int r;

        c = lc.easy_init();
        if (!c) {
                set_error(error, error_size, "cannot initialize libcurl");
                return -ENOMEM;
        }
        headers = lc.slist_append(NULL, "Accept: application/json");
        if (!headers) {
                set_error(error, error_size, "out of memory");
                return -ENOMEM;
        }
        r = add_authorization(&headers, error, error_size);
        if (r < 0)
                return r;

        /* Options that cannot fail for a valid handle except on OOM; check them as one. */
        code = lc.easy_setopt(c, CURLOPT_URL, url);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form replaces the deprecated bitmask */
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
        /* No SIGALRM games in our process; the threaded resolver honours timeouts anyway. */
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        /* Refuses up front when the server announces a larger Content-Length; sink_write()
         * enforces the same bound on chunked bodies. */
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) body_max);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
        if (code == CURLE_OK)
                code = lc.easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        if (code == CURLE_OK && url_is_loopback(url))
                code = lc.easy_setopt(c, CURLOPT_NOPROXY, "*");
        if (code != CURLE_OK) {
                set_error(error, error_size, lc.easy_strerror(code));
                return curl_code_to_errno(code);
        }

        code = lc.easy_perform(c);
        if (code != CURLE_OK) {
                if (sink.too_large || code == CURLE_FILESIZE_EXCEEDED) {
                        char m[128];

                        snprintf(m, sizeof m, "response body larger than %zu bytes", body_max);
                        set_error(error, error_size, m);
                        r = -EFBIG;
                } else if (sink.oom) {
                        set_error(error, error_size, "out of memory");
                        r = -ENOMEM;
                } else {
                        set_error(error, error_size, errbuf[0] ? errbuf : lc.easy_strerror(code));
                        r = curl_code_to_errno(code);
                }
                free(sink.data);
                return r;
        }

        (void) lc.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

        if (!sink.data) {
                /* An empty body still hands the caller a string. */
                sink.data = strdup("");
                if (!sink.data) {
                        set_error(error, error_size, "out of memory");
                        return -ENOMEM;
                }
        }

        *ret = (HttpResponse) {
                .status = status,
                .body = sink.data,
                .size = sink.size,
        };
        return 0;
}

int http_get(const char *url, size_t body_max, HttpResponse *ret, char *error, size_t error_size) {
        CURLcode code;
        int r;

        if (!url || !ret)
                return -EINVAL;
        if (body_max == 0)
                body_max = HTTP_BODY_MAX;
        r = libcurl_load();
        if (r < 0) {
                set_error(error, error_size, http_client_load_error());
                return r;
        }

        code = lc.global_init(CURL_GLOBAL_DEFAULT);
        if (code != CURLE_OK) {
                set_error(error, error_size, lc.easy_strerror(code));
                return -EIO;
        }
        r = http_get_one(url, body_max, ret, error, error_size);
        lc.global_cleanup();
        return r;
}
