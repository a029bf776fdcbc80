/* SPDX-License-Identifier: MIT */
/*
 * Pure text formatting for the CLI's tables: human sizes ("31.5 MiB"), durations ("3h12m"),
 * making untrusted strings safe for a terminal, and a small column-aligned table that fits a
 * given width. Nothing here does I/O, reads the clock or the environment, so the unit tests
 * can pin every byte of the output.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Big enough for any format_bytes()/format_duration() result, including the NUL. */
#define FORMAT_BYTES_MAX 16
#define FORMAT_DURATION_MAX 32

/*
 * Binary units with one decimal: "0 B", "1023 B", "1.0 KiB", "31.5 MiB", "16.0 EiB".
 * Writes into buf (at least FORMAT_BYTES_MAX bytes) and returns it.
 */
char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* The same for a number from a JSON document: "-" for NaN, infinity or a negative value, and
 * values of 2^64 or more as 16.0 EiB (a double that large cast to uint64_t is undefined, and
 * printed "0 B"). */
char *format_bytes_number(char *buf, size_t size, double bytes);

/*
 * The two most significant units, rounded down: "0s", "59s", "5m03s", "3h12m", "2d03h".
 * Negative, NaN or infinite durations give "-". Writes into buf (at least FORMAT_DURATION_MAX
 * bytes) and returns it.
 */
char *format_duration(char *buf, size_t size, double seconds);

/*
 * A copy of s that is safe to print on a terminal: every control character (C0, DEL, C1),
 * every byte that is not part of valid UTF-8 becomes '?', so a hostile service name or argv
 * cannot move the cursor, recolour or retitle the operator's terminal. Returns 0 and a
 * malloc'd string in *ret, or -ENOMEM.
 */
int format_sanitize(const char *s, char **ret);

/* Whether s is valid UTF-8 free of everything format_sanitize() would replace. */
bool format_is_printable(const char *s);

/* Width of valid UTF-8 on a terminal, counted as one column per code point. */
size_t format_display_width(const char *s);

/*
 * Number of leading bytes of s (valid UTF-8) that fill at most `width` columns, never cutting
 * a code point.
 */
size_t format_prefix_bytes(const char *s, size_t width);

/* ---- tables ----------------------------------------------------------------------------- */

typedef enum TableAlign {
        TABLE_ALIGN_LEFT,
        TABLE_ALIGN_RIGHT,
} TableAlign;

typedef struct TableColumn {
        const char *header;     /* not copied: must outlive the table (use literals) */
        TableAlign align;
        size_t max_width;       /* cells wider than this are cut with "..."; 0 = no cap */
        bool shrink;            /* gives up width when a line would be wider than allowed */
        size_t min_width;       /* how narrow a shrinking column may get */
} TableColumn;

typedef struct Table Table;

/* A table with n_columns columns (1..64); the array is copied. Returns 0 or -EINVAL/-ENOMEM. */
int table_new(const TableColumn *columns, size_t n_columns, Table **ret);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);
#define _cleanup_table_free_ _cleanup_(table_freep)

/* Append a row of n_columns cells; NULL and "" print as "-". Cells are sanitized copies. */
int table_add_row(Table *t, const char *const *cells);
size_t table_n_rows(const Table *t);

/*
 * Render header and rows, each line ending in '\n', columns separated by two spaces, numbers
 * right-aligned, no trailing blanks. When max_width > 0 and a line would be wider, shrinkable
 * columns give up width (down to their min_width) and their cells are cut with "...".
 * Returns 0 and a malloc'd string in *ret, or -ENOMEM.
 */
int table_format(const Table *t, size_t max_width, char **ret);
