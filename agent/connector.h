/* SPDX-License-Identifier: MIT */
/*
 * connect() to the daemon's AF_UNIX socket on a short-lived thread of its own.
 *
 * A non-blocking socket makes connect() itself return at once, but not the lookup of its path:
 * on a hung file system (a FUSE server that stopped answering, a hard NFS mount whose server
 * is gone) connect() sleeps in the kernel until the file system answers, which may be never.
 * Done on the sampler thread, with the transport's lock held, that stalled sampling,
 * heapwatch.status() and every host thread that stop()ed the agent, forked or exited, as they
 * wait for the sampler (found by review: stop() took as long as the mount stayed hung).
 *
 * So the connect (and the stat() of the socket's directory, which can block the same way) runs
 * on a thread that owns nothing but its job: the caller polls the job's eventfd, takes the
 * result when it is there (and joins the thread, which ends right after), or lets go of a job
 * that takes too long (the thread is detached, and frees the job when it finally returns,
 * whenever that is). At most HW_CONNECTOR_STUCK_MAX threads wait
 * at once; beyond that no new attempt starts until one returns.
 *
 * The thread calls nothing of Python's, holds no lock of the agent's, and blocks every signal.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#define HW_CONNECTOR_STUCK_MAX 4

struct hw_connector;

struct hw_connector_result {
        int fd;    /* the connected (or connecting, error EINPROGRESS) socket; -1 on failure */
        int error; /* 0, EINPROGRESS, or the errno of socket()/connect() */
        /* The socket's directory: owner and whether only its owner can create files in it (not
         * writable by group or others). Valid when dir_known. */
        bool dir_known;
        uid_t dir_owner;
        bool dir_private;
};

/* Start connecting to path (an AF_UNIX path, shorter than sun_path). Returns 0 and *ret, or
 * -EAGAIN (HW_CONNECTOR_STUCK_MAX threads still wait for their connect), -ENAMETOOLONG, or
 * another -errno (no memory, no thread). */
int hw_connector_start(const char *path, struct hw_connector **ret);

/* Readable (POLLIN) once the result is there. */
int hw_connector_event_fd(const struct hw_connector *c);

/* If the thread is done: fill *ret (the caller owns ret->fd from now on) and return true. */
bool hw_connector_take(struct hw_connector *c, struct hw_connector_result *ret);

/* The caller is done with the job (taken or not): a thread that is done is joined, one that is
 * not is detached; an untaken socket is closed, now or when the thread returns. Accepts NULL.
 * Never in a fork child for a job of the parent's (hw_connector_forget_all_after_fork()). */
void hw_connector_release(struct hw_connector *c);

/* Across fork(), from pthread_atfork handlers: the list of jobs is held, then let go in both. */
void hw_connector_lock_for_fork(void);
void hw_connector_unlock_after_fork(void);

/* In a fork child (after hw_connector_unlock_after_fork()), where no connector thread exists:
 * close the descriptors of every job it inherited, free them all (pointers to them, such as a
 * transport's, must be forgotten, not released), and forget the parent's threads that were
 * counted, so that the child's own agent may connect (a child that inherited the count of 4
 * stuck threads never connected; found by review). */
void hw_connector_forget_all_after_fork(void);

/* Connector threads still waiting for their connect() (for status and tests). */
unsigned hw_connector_threads_waiting(void);
