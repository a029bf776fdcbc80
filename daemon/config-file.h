/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd.conf: an INI file (libinih) with one section, [heapwatchd], whose keys are the
 * daemon's long option names (heapwatchd.conf(5), etc/heapwatchd.conf). The file is read whole
 * into a bounded buffer first, so an oversized file or an over-long line is refused with its
 * line number instead of being silently split by the parser's fixed line buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

#define CONFIG_FILE_MAX_BYTES (64 * 1024)
#define CONFIG_LINE_MAX 190 /* below libinih's INI_MAX_LINE (200) with room for its terminator */
#define CONFIG_SECTION "heapwatchd"

/* Apply the file at path over *o. A missing file is fine unless required. Does not log.
 * Returns 0, or -EINVAL (a bad line: "PATH:LINE: what is wrong" in error[]) or -errno (the file
 * cannot be read) with a message. On error *o may be partly updated; callers load into a
 * scratch copy. */
int config_file_load(Options *o, const char *path, bool required, char *error, size_t error_size);
