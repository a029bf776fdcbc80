/* SPDX-License-Identifier: MIT */
/*
 * SQLite helpers in the style of lib/macro.h: scope-bound cleanup of statements and
 * connections, and the translation of SQLite result codes into -errno at the call site.
 * Header-only, daemon-side (lib/ does not link SQLite).
 */
#pragma once

#include <errno.h>
#include <sqlite3.h>

static inline void sqlite3_finalizep(sqlite3_stmt **s) {
        if (*s)
                sqlite3_finalize(*s);
}
static inline void sqlite3_closep(sqlite3 **db) {
        if (*db)
                sqlite3_close_v2(*db);
}
#define _cleanup_sqlite_stmt_ __attribute__((cleanup(sqlite3_finalizep)))
#define _cleanup_sqlite_ __attribute__((cleanup(sqlite3_closep)))

/* SQLite's primary result code as -errno. Damage is -EBADMSG (the caller moves the file
 * aside), a full disk -ENOSPC, a lock held by someone else -EBUSY. */
static inline int sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_FORMAT:
                return -EBADMSG;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EIO;
        }
}
