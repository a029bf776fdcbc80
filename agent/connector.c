/* SPDX-License-Identifier: MIT */
/*
 * connect() on a thread of its own (see connector.h for why).
 *
 * A job is shared by two owners, the caller and the thread, and freed by whichever lets go
 * last (an atomic count of references). The thread writes its result, then `done` (release),
 * then the eventfd; the caller reads `done` (acquire) before the result.
 */
#include "agent-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "connector.h"

/* Enough for connect() and stat() (the kernel does the work on its own stack) under the
 * sanitizers too; it is address space only, the pages a thread never touches cost nothing. */
#define CONNECTOR_STACK_BYTES (256u * 1024u)

struct hw_connector {
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        int event_fd;
        int refs;
        int done;
        struct hw_connector_result result;
        pthread_t thread; /* joinable: see hw_connector_release() */
        struct hw_connector *prev, *next; /* in `jobs` */
};

static unsigned threads_waiting;
/* Every job alive, so that a fork child can close what it inherited of them: on a hung mount a
 * thread's socket stays open for as long as its connect() sleeps, and the child has no thread
 * to close it (found by review: every fork generation kept them). jobs_lock is held across
 * fork() by the agent's fork handlers (hw_connector_lock_for_fork()). */
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hw_connector *jobs;

static void job_unref(struct hw_connector *c) {
        if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        pthread_mutex_lock(&jobs_lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                jobs = c->next;
        if (c->next)
                c->next->prev = c->prev;
        pthread_mutex_unlock(&jobs_lock);
        /* the last owner: nobody took the socket, or the thread finished after its caller let go */
        c->result.fd = hw_safe_close(c->result.fd);
        c->event_fd = hw_safe_close(c->event_fd);
        free(c);
}

/* Who may have put a socket in the directory of path: its owner, and only its owner when group
 * and others cannot write there. Best effort: an unknown directory trusts nobody extra. */
static void look_at_directory(const char *path, struct hw_connector_result *ret) {
        char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        char *slash;
        struct stat st;

        memcpy(dir, path, sizeof(dir));
        dir[sizeof(dir) - 1] = '\0';
        slash = strrchr(dir, '/');
        if (!slash)
                memcpy(dir, ".", 2);
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return;
        ret->dir_known = true;
        ret->dir_owner = st.st_uid;
        ret->dir_private = (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static void connect_now(struct hw_connector *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(c->path);
        int fd;

        memcpy(sa.sun_path, c->path, len + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                c->result.error = errno;
                return;
        }
        /* in the job before connect(), which may sleep: a fork child closes it (see `jobs`) */
        __atomic_store_n(&c->result.fd, fd, __ATOMIC_RELAXED);
        if (connect(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1)) == 0)
                c->result.error = 0;
        else if (errno == EINPROGRESS || errno == EINTR)
                c->result.error = EINPROGRESS; /* EINTR: it goes on; its fate comes with POLLOUT */
        else {
                c->result.error = errno; /* ENOENT, ECONNREFUSED: no daemon; EAGAIN: backlog full */
                /* out of the job first: a child forked in between must not close a number
                 * this process may have given to something else meanwhile */
                __atomic_store_n(&c->result.fd, -1, __ATOMIC_RELAXED);
                hw_safe_close(fd);
                return;
        }
        look_at_directory(c->path, &c->result);
}

static void *connector_main(void *arg) {
        struct hw_connector *c = arg;
        uint64_t one = 1;

        /* named here, not by the creator: the thread may be gone by then */
        (void) pthread_setname_np(pthread_self(), "heapwatch-conn");
        connect_now(c);
        __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
        if (write(c->event_fd, &one, sizeof(one)) < 0) {
                /* cannot fail: the counter is far from its maximum */
        }
        __atomic_sub_fetch(&threads_waiting, 1, __ATOMIC_RELAXED);
        job_unref(c);
        return NULL;
}

int hw_connector_start(const char *path, struct hw_connector **ret) {
        struct hw_connector *c;
        pthread_attr_t attr;
        sigset_t all, saved;
        pthread_t thread;
        size_t len = strlen(path);
        int r;

        if (len >= sizeof(c->path))
                return -ENAMETOOLONG;
        if (__atomic_add_fetch(&threads_waiting, 1, __ATOMIC_RELAXED) > HW_CONNECTOR_STUCK_MAX) {
                __atomic_sub_fetch(&threads_waiting, 1, __ATOMIC_RELAXED);
                return -EAGAIN;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(c->path, path, len + 1);
        c->result.fd = -1;
        c->refs = 2; /* the caller's and the thread's */
        c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->event_fd < 0) {
                r = -errno;
                goto fail;
        }

        r = -pthread_attr_init(&attr);
        if (r < 0)
                goto fail;
        (void) pthread_attr_setstacksize(&attr, CONNECTOR_STACK_BYTES);
        pthread_mutex_lock(&jobs_lock);
        c->next = jobs;
        if (jobs)
                jobs->prev = c;
        jobs = c;
        pthread_mutex_unlock(&jobs_lock);
        /* the host's signals go to the host's threads, never to ours */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        r = -pthread_create(&thread, &attr, connector_main, c);
        if (r == -EINVAL) {
                /* the host's static TLS does not fit our small stack (a library with large
                 * __thread data, found by review): the default one, as the sampler has */
                pthread_attr_destroy(&attr);
                pthread_attr_init(&attr);
                r = -pthread_create(&thread, &attr, connector_main, c);
        }
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                __atomic_store_n(&c->refs, 1, __ATOMIC_RELAXED); /* no thread: ours alone */
                __atomic_sub_fetch(&threads_waiting, 1, __ATOMIC_RELAXED);
                job_unref(c);
                return r;
        }
        c->thread = thread;
        *ret = c;
        return 0;

fail:
        if (c) {
                hw_safe_close(c->event_fd);
                free(c);
        }
        __atomic_sub_fetch(&threads_waiting, 1, __ATOMIC_RELAXED);
        return r;
}

int hw_connector_event_fd(const struct hw_connector *c) {
        return c->event_fd;
}

bool hw_connector_take(struct hw_connector *c, struct hw_connector_result *ret) {
        if (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
                return false;
        *ret = c->result;
        c->result.fd = -1; /* the caller's now */
        return true;
}

void hw_connector_release(struct hw_connector *c) {
        if (!c)
                return;
        /* A thread that is done is joined: it ends within microseconds of saying so, and a
         * thread half-way through its exit when the host forks left an ASan child stuck in
         * the runtime's thread registry at its own thread's exit (CI, 3.10 and 3.12); joined,
         * none is left exiting once the sampler is paused for fork. One still in connect()
         * (a hung mount) is let go, to free the job when it returns. */
        if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
                (void) pthread_join(c->thread, NULL);
        else
                (void) pthread_detach(c->thread);
        job_unref(c);
}

void hw_connector_lock_for_fork(void) {
        pthread_mutex_lock(&jobs_lock);
}

void hw_connector_unlock_after_fork(void) {
        pthread_mutex_unlock(&jobs_lock);
}

void hw_connector_forget_all_after_fork(void) {
        /* Only the thread that forked exists here: every job's thread is the parent's, and this
         * process's copies of the jobs are nobody else's, whatever their counts say. (A socket
         * a thread made but had not yet stored at fork() stays open here, unknown: rare, one
         * descriptor, close-on-exec.) */
        struct hw_connector *c = jobs, *next;

        for (; c; c = next) {
                next = c->next;
                c->result.fd = hw_safe_close(__atomic_load_n(&c->result.fd, __ATOMIC_RELAXED));
                c->event_fd = hw_safe_close(c->event_fd);
                free(c);
        }
        jobs = NULL;
        __atomic_store_n(&threads_waiting, 0, __ATOMIC_RELAXED);
}

unsigned hw_connector_threads_waiting(void) {
        return __atomic_load_n(&threads_waiting, __ATOMIC_RELAXED);
}
