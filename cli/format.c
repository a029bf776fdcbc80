/* SPDX-License-Identifier: MIT */
/*
 * Implementation of format.h. Everything works on bytes the caller owns and returns new
 * strings; no I/O, no locale: the CLI never calls setlocale(), so "%.1f" always prints a dot,
 * and widths are counted in UTF-8 code points rather than through wcwidth(), whose answer
 * would depend on the operator's locale.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#define TABLE_COLUMNS_MAX 64
#define TABLE_SEPARATOR "  "
#define TABLE_ELLIPSIS "..."

char *format_bytes_number(char *buf, size_t size, double bytes) {
        if (!isfinite(bytes) || bytes < 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        return format_bytes(buf, size, bytes >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t) bytes);
}

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t i = 0;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 " B", bytes);
                return buf;
        }

        v /= 1024.0;
        while (v >= 1024.0 && i + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                i++;
        }
        /* 1048575 bytes is 1023.999 KiB, which "%.1f" would round up to "1024.0 KiB": move up
         * a unit whenever the printed value would reach 1024. */
        if (v * 10.0 + 0.5 >= 10240.0 && i + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                i++;
        }
        snprintf(buf, size, "%.1f %s", v, units[i]);
        return buf;
}

char *format_duration(char *buf, size_t size, double seconds) {
        uint64_t t;

        /* Above ~31,000 years the value is garbage from the network, not an age. */
        if (!isfinite(seconds) || seconds < 0 || seconds >= 1e12) {
                snprintf(buf, size, "-");
                return buf;
        }

        t = (uint64_t) seconds; /* rounds down: a process 59.9 s old is not yet "1m00s" */
        if (t < 60)
                snprintf(buf, size, "%" PRIu64 "s", t);
        else if (t < 3600)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
        else if (t < 86400)
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", t / 3600, t % 3600 / 60);
        else
                snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", t / 86400, t % 86400 / 3600);
        return buf;
}

/* Decode one UTF-8 sequence strictly (no overlongs, surrogates or code points past
 * U+10FFFF). Returns its length in bytes, or 0 when s does not start a valid sequence. */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret_cp) {
        uint32_t cp;
        size_t len;

        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07;
        } else
                return 0;

        /* Stops at the NUL terminator too, since 0x00 is no continuation byte. */
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }

        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;

        *ret_cp = cp;
        return len;
}

static bool codepoint_is_unsafe(uint32_t cp) {
        /* C0 controls and DEL move the cursor or start escape sequences; C1 controls (as code
         * points) are escape introducers on some terminals; the bidi overrides and isolates
         * reorder what follows them, which would make one row's text appear in another column. */
        return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int format_sanitize(const char *s, char **ret) {
        const unsigned char *p = (const unsigned char *) s;
        char *out, *q;

        /* Every replacement is one byte for one or more, so the copy never grows. */
        out = malloc(strlen(s) + 1);
        if (!out)
                return -ENOMEM;

        q = out;
        while (*p) {
                uint32_t cp;
                size_t len = utf8_decode(p, &cp);

                if (len == 0 || codepoint_is_unsafe(cp)) {
                        *q++ = '?';
                        p += len == 0 ? 1 : len;
                        continue;
                }
                memcpy(q, p, len);
                q += len;
                p += len;
        }
        *q = '\0';

        *ret = out;
        return 0;
}

bool format_is_printable(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                uint32_t cp;
                size_t len = utf8_decode(p, &cp);

                if (len == 0 || codepoint_is_unsafe(cp))
                        return false;
                p += len;
        }
        return true;
}

size_t format_display_width(const char *s) {
        size_t w = 0;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

size_t format_prefix_bytes(const char *s, size_t width) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = 0, w = 0;

        while (p[n]) {
                if ((p[n] & 0xc0) != 0x80) {
                        if (w == width)
                                break;
                        w++;
                }
                n++;
        }
        return n;
}

/* ---- tables ----------------------------------------------------------------------------- */

struct Table {
        TableColumn *columns;
        size_t n_columns;
        char **cells; /* row-major, n_rows * n_columns */
        size_t n_rows, n_rows_allocated;
};

int table_new(const TableColumn *columns, size_t n_columns, Table **ret) {
        Table *t;

        if (n_columns == 0 || n_columns > TABLE_COLUMNS_MAX)
                return -EINVAL;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->columns = calloc(n_columns, sizeof *t->columns);
        if (!t->columns) {
                free(t);
                return -ENOMEM;
        }
        memcpy(t->columns, columns, n_columns * sizeof *columns);
        t->n_columns = n_columns;

        *ret = t;
        return 0;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->columns);
        free(t);
        return NULL;
}

size_t table_n_rows(const Table *t) {
        return t->n_rows;
}

int table_add_row(Table *t, const char *const *cells) {
        size_t base = t->n_rows * t->n_columns;
        int r;

        if (t->n_rows == t->n_rows_allocated) {
                size_t n = t->n_rows_allocated ? t->n_rows_allocated * 2 : 16;
                char **c = reallocarray(t->cells, n * t->n_columns, sizeof *c);

                if (!c)
                        return -ENOMEM;
                t->cells = c;
                t->n_rows_allocated = n;
        }

        for (size_t i = 0; i < t->n_columns; i++) {
                /* An empty cell would read as a shifted column; "-" says "no value". */
                r = format_sanitize(cells[i] && cells[i][0] ? cells[i] : "-", &t->cells[base + i]);
                if (r < 0) {
                        while (i > 0)
                                free(t->cells[base + --i]);
                        return r;
                }
        }

        t->n_rows++;
        return 0;
}

/* Append one cell, cut to width columns with an ellipsis and padded per its alignment. The
 * last column is not padded on the right so lines carry no trailing blanks. */
static void table_put_cell(FILE *f, const char *text, size_t width, TableAlign align, bool last) {
        size_t w = format_display_width(text), nbytes = strlen(text);
        bool cut = false;

        if (w > width) {
                size_t keep = width > strlen(TABLE_ELLIPSIS) ? width - strlen(TABLE_ELLIPSIS) : width;

                nbytes = format_prefix_bytes(text, keep);
                cut = keep < width;
                w = width;
        }

        if (align == TABLE_ALIGN_RIGHT)
                for (size_t i = w; i < width; i++)
                        fputc(' ', f);
        fwrite(text, 1, nbytes, f);
        if (cut)
                fputs(TABLE_ELLIPSIS, f);
        if (align == TABLE_ALIGN_LEFT && !last)
                for (size_t i = w; i < width; i++)
                        fputc(' ', f);
}

int table_format(const Table *t, size_t max_width, char **ret) {
        size_t widths[TABLE_COLUMNS_MAX];
        size_t total = 0;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        for (size_t c = 0; c < t->n_columns; c++) {
                const TableColumn *col = &t->columns[c];

                widths[c] = format_display_width(col->header);
                for (size_t r = 0; r < t->n_rows; r++) {
                        size_t w = format_display_width(t->cells[r * t->n_columns + c]);
                        if (w > widths[c])
                                widths[c] = w;
                }
                if (col->max_width > 0 && widths[c] > col->max_width)
                        widths[c] = col->max_width;
                total += widths[c];
        }
        total += strlen(TABLE_SEPARATOR) * (t->n_columns - 1);

        /* Shrink from the right: the last shrinkable column (the command line) is the one whose
         * tail matters least. If the fixed columns alone are too wide, lines simply wrap. */
        for (size_t c = t->n_columns; c > 0 && max_width > 0 && total > max_width; c--) {
                const TableColumn *col = &t->columns[c - 1];
                size_t excess = total - max_width, give;

                if (!col->shrink || widths[c - 1] <= col->min_width)
                        continue;
                give = widths[c - 1] - col->min_width;
                if (give > excess)
                        give = excess;
                widths[c - 1] -= give;
                total -= give;
        }

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        for (size_t r = 0; r <= t->n_rows; r++) {
                /* Row 0 is the header. */
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *text = r == 0 ? t->columns[c].header : t->cells[(r - 1) * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;

                        if (c > 0)
                                fputs(TABLE_SEPARATOR, f);
                        table_put_cell(f, text, widths[c], t->columns[c].align, last);
                }
                fputc('\n', f);
        }

        if (ferror(f)) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }

        *ret = buf;
        return 0;
}
