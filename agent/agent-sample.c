/* SPDX-License-Identifier: MIT */
/*
 * Constructors and destructors for the plain-C identity and sample structs (agent-sample.h).
 */
#include "agent-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent-sample.h"

void hw_agent_identity_clear(struct hw_agent_identity *id) {
        if (!id)
                return;
        for (size_t i = 0; i < id->argc; i++) {
                free(id->argv[i]);
                id->argv[i] = NULL;
        }
        id->argc = 0;
}

int hw_agent_identity_add_arg(struct hw_agent_identity *id, const char *arg, size_t len) {
        char *copy;

        if (id->argc >= HW_AGENT_ARGV_MAX)
                return 0; /* the protocol says: longer argv lists are truncated */
        copy = strndup(arg, len);
        if (!copy)
                return -ENOMEM;
        id->argv[id->argc++] = copy;
        return 0;
}

void hw_agent_sample_init(struct hw_agent_sample *s) {
        memset(s, 0, sizeof(*s));
        s->process.rss_bytes = -1;
        s->process.rss_peak_bytes = -1;
        s->process.vm_bytes = -1;
        s->process.threads = -1;
        s->cgroup.present = false;
        s->cgroup.memory_current_bytes = -1;
        s->cgroup.memory_max_bytes = -1;
        s->cgroup.limit_usage_bytes = -1;
        s->allocated_blocks = -1;
        s->gc_garbage = -1;
        s->gc_garbage_finalizers = -1;
        s->gc_finalizers_collected = -1;
        s->gc_finalizers_collections = -1;
        s->gc_finalizers_skipped = -1;
}

void hw_agent_sample_clear(struct hw_agent_sample *s) {
        json_decref(s->heap);
        hw_agent_sample_init(s);
}
