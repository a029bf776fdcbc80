/* SPDX-License-Identifier: MIT */
/*
 * Census tables, referrer chain text and the CENSUS / REQUEST wire format (see census.h).
 */
#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "encode.h"
#include "pages.h"

/* An optional integer member in [min, max]; absent: dflt. Returns false when wrong. */
static bool member_uint(json_t *o, const char *key, json_int_t min, json_int_t max, unsigned dflt, unsigned *ret) {
        json_t *v = json_object_get(o, key);

        if (!v) {
                *ret = dflt;
                return true;
        }
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return false;
        *ret = (unsigned) json_integer_value(v);
        return true;
}

int hw_request_decode(const uint8_t *payload, size_t size, struct hw_request *ret) {
        struct hw_request req = { 0 };
        json_t *o, *id, *kind, *types;
        const char *k;
        int r = -EBADMSG;

        if (size > HW_REQUEST_MAX_PAYLOAD)
                return -EBADMSG;
        o = hw_decode_object(payload, size);
        if (!o)
                return -EBADMSG;
        id = json_object_get(o, "id");
        kind = json_object_get(o, "kind");
        if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > UINT32_MAX ||
            !json_is_string(kind))
                goto finish;
        req.id = (uint32_t) json_integer_value(id);
        k = json_string_value(kind);
        if (strcmp(k, "census") == 0)
                req.kind = HW_REQUEST_CENSUS;
        else if (strcmp(k, "chains") == 0)
                req.kind = HW_REQUEST_CHAINS;
        else
                req.kind = HW_REQUEST_UNSUPPORTED;
        if (!member_uint(o, "budget_ms", 1, HW_CENSUS_BUDGET_MS_MAX, HW_CENSUS_BUDGET_MS_DEFAULT, &req.budget_ms) ||
            !member_uint(o, "top", 1, HW_CENSUS_TOP_MAX, HW_CENSUS_TOP_DEFAULT, &req.top) ||
            !member_uint(o, "slices", 1, HW_CENSUS_SLICES_MAX, HW_CENSUS_SLICES_DEFAULT, &req.slices))
                goto finish;

        if (json_is_true(json_object_get(o, "holders")))
                req.holders = true;
        else if (json_object_get(o, "holders") && !json_is_false(json_object_get(o, "holders")))
                goto finish;

        types = json_object_get(o, "types");
        if (types) {
                if (!json_is_array(types) || json_array_size(types) > HW_CHAINS_TYPES_MAX)
                        goto finish;
                for (size_t i = 0; i < json_array_size(types); i++) {
                        json_t *t = json_array_get(types, i);

                        if (!json_is_string(t) ||
                            !hw_string_is_plain(json_string_value(t), json_string_length(t), HW_CENSUS_TYPE_NAME_MAX))
                                goto finish;
                        memcpy(req.types[i], json_string_value(t), json_string_length(t) + 1);
                }
                req.n_types = json_array_size(types);
        }
        /* chains without a type: only the largest containers (holders), so it needs them */
        if (req.kind == HW_REQUEST_CHAINS && req.n_types == 0 && !req.holders)
                goto finish;
        *ret = req;
        r = 0;
finish:
        json_decref(o);
        return r;
}

int hw_census_table_init(struct hw_census_table *t) {
        memset(t, 0, sizeof(*t));
        t->capacity = 2 * HW_CENSUS_TABLE_MAX;
        /* 1.5 MiB for a moment: from the kernel, not the host's malloc (pages.h) */
        t->slots = hw_pages_alloc(t->capacity * sizeof(t->slots[0]));
        return t->slots ? 0 : -ENOMEM;
}

void hw_census_table_done(struct hw_census_table *t) {
        hw_pages_free(t->slots, t->capacity * sizeof(t->slots[0]));
        memset(t, 0, sizeof(*t));
}

static bool entry_before(const struct hw_census_entry *a, const struct hw_census_entry *b) {
        if (a->count != b->count)
                return a->count > b->count;
        return a->size_bytes > b->size_bytes;
}

size_t hw_census_table_top(const struct hw_census_table *t, size_t n, struct hw_census_entry *ret) {
        size_t have = 0;

        /* Insertion into a sorted array of at most n (<= 256): a few thousand types at most
         * pass, most of them rejected by one comparison with the last kept. */
        for (size_t i = 0; i < t->capacity && n > 0; i++) {
                const struct hw_census_entry *e = &t->slots[i];
                size_t j;

                if (!e->key)
                        continue;
                if (have == n && !entry_before(e, &ret[n - 1]))
                        continue;
                j = have < n ? have++ : n - 1;
                while (j > 0 && entry_before(e, &ret[j - 1])) {
                        ret[j] = ret[j - 1];
                        j--;
                }
                ret[j] = *e;
        }
        return have;
}

/* Append s to buf (capacity size, *len used), never cutting a UTF-8 character; false when it
 * did not fit whole. */
static bool append(char *buf, size_t size, size_t *len, const char *s) {
        size_t n = strlen(s);

        if (*len + n + 1 > size)
                return false;
        memcpy(buf + *len, s, n + 1);
        *len += n;
        return true;
}

size_t hw_chain_format(const struct hw_chain *c, char *buf, size_t size) {
        size_t len = 0;

        if (size == 0)
                return 0;
        buf[0] = '\0';
        if (!append(buf, size, &len, c->root[0] ? c->root : "?"))
                goto cut;
        for (size_t i = 0; i < c->n_steps && i < HW_CHAIN_STEPS_MAX; i++) {
                /* keep room for the " -> ..." that says the chain was cut */
                if (size < 8 || len + strlen(c->steps[i].type) + 4 + 8 > size)
                        goto cut;
                append(buf, size, &len, " -> ");
                append(buf, size, &len, c->steps[i].type);
        }
        return len;
cut:
        if (len + 8 <= size)
                append(buf, size, &len, " -> ...");
        return len;
}

/* jansson refuses strings that are not valid UTF-8: run every name through the same cleaner
 * the HELLO uses. */
static json_t *string_json(const char *s, size_t max) {
        char buf[HW_CHAIN_TEXT_MAX + 1];

        if (max > HW_CHAIN_TEXT_MAX)
                max = HW_CHAIN_TEXT_MAX;
        hw_utf8_copy(buf, sizeof(buf), s, strlen(s), max, 1);
        return json_string(buf);
}

static json_t *chain_json(const struct hw_chain *c) {
        char text[HW_CHAIN_TEXT_MAX + 1];
        json_t *o, *steps;

        hw_chain_format(c, text, sizeof(text));
        o = json_object();
        steps = json_array();
        if (!o || !steps)
                goto fail;
        for (size_t i = 0; i < c->n_steps && i < HW_CHAIN_STEPS_MAX; i++) {
                json_t *s = json_object();

                if (!s || json_array_append_new(steps, s) < 0 ||
                    json_object_set_new(s, "type", string_json(c->steps[i].type, HW_CENSUS_TYPE_NAME_MAX)) < 0 ||
                    (c->steps[i].via[0] &&
                     json_object_set_new(s, "via", string_json(c->steps[i].via, HW_CHAIN_LABEL_MAX)) < 0))
                        goto fail;
        }
        if ((c->holds > 0 && json_object_set_new(o, "holds", json_integer((json_int_t) c->holds)) < 0) ||
            json_object_set_new(o, "type", string_json(c->target, HW_CENSUS_TYPE_NAME_MAX)) < 0 ||
            json_object_set_new(o, "chain", string_json(text, HW_CHAIN_TEXT_MAX)) < 0 ||
            json_object_set_new(o, "root", string_json(c->root, HW_CHAIN_LABEL_MAX)) < 0 ||
            json_object_set_new(o, "root_kind", string_json(c->root_kind, 31)) < 0 ||
            json_object_set_new(o, "steps", steps) < 0)
                goto fail_o;
        return o;
fail:
        json_decref(steps);
fail_o:
        json_decref(o);
        return NULL;
}

json_t *hw_census_result_json(const struct hw_census_result *r) {
        json_t *o = json_object(), *a = NULL;
        bool ok;

        if (!o)
                return NULL;
        ok = json_object_set_new(o, "id", json_integer(r->request_id)) == 0 &&
             json_object_set_new(o, "kind", json_string(r->kind == HW_REQUEST_CHAINS ? "chains" : "census")) == 0 &&
             json_object_set_new(o, "time", json_real(r->time)) == 0 &&
             json_object_set_new(o, "duration_seconds", json_real(r->duration_seconds)) == 0 &&
             json_object_set_new(o, "gil_seconds", json_real(r->gil_seconds)) == 0 &&
             json_object_set_new(o, "gil_cpu_seconds", json_real(r->gil_cpu_seconds)) == 0 &&
             json_object_set_new(o, "gil_seconds_total", json_real(r->gil_seconds_total)) == 0 &&
             json_object_set_new(o, "slices", json_integer(r->slices)) == 0 &&
             json_object_set_new(o, "budget_seconds", json_real(r->budget_ms / 1000.0)) == 0;
        if (ok && r->error) {
                ok = json_object_set_new(o, "error", json_string(r->error)) == 0;
                goto finish;
        }
        if (ok && r->kind == HW_REQUEST_UNSUPPORTED) {
                ok = json_object_set_new(o, "error", json_string("unsupported request kind")) == 0;
                goto finish;
        }
        if (ok && r->kind == HW_REQUEST_CENSUS) {
                ok = json_object_set_new(o, "complete", json_boolean(r->complete)) == 0 &&
                     json_object_set_new(o, "sampled", json_boolean(r->sampled)) == 0 &&
                     json_object_set_new(o, "consistent", json_boolean(r->consistent)) == 0 &&
                     json_object_set_new(o, "fraction", json_real(r->fraction)) == 0 &&
                     json_object_set_new(o, "objects_seen", json_integer((json_int_t) r->objects_seen)) == 0 &&
                     json_object_set_new(o, "objects", json_integer((json_int_t) r->objects_total)) == 0 &&
                     json_object_set_new(o, "types_total", json_integer((json_int_t) r->types_total)) == 0 &&
                     (a = json_array()) != NULL && json_object_set_new(o, "types", a) == 0;
                for (size_t i = 0; ok && i < r->n_types && i < HW_CENSUS_TOP_MAX; i++) {
                        json_t *t = json_object();

                        ok = t && json_array_append_new(a, t) == 0 &&
                             json_object_set_new(t, "type", string_json(r->types[i].name, HW_CENSUS_TYPE_NAME_MAX)) == 0 &&
                             json_object_set_new(t, "count", json_integer((json_int_t) r->types[i].count)) == 0 &&
                             json_object_set_new(t, "size_bytes", json_integer((json_int_t) r->types[i].size_bytes)) == 0;
                }
        }
        if (ok && r->kind == HW_REQUEST_CHAINS) {
                ok = json_object_set_new(o, "visited", json_integer((json_int_t) r->visited)) == 0 &&
                     json_object_set_new(o, "search_complete", json_boolean(r->search_complete)) == 0 &&
                     (a = json_array()) != NULL && json_object_set_new(o, "chains", a) == 0;
                for (size_t i = 0; ok && i < r->n_chains && i < HW_CHAINS_MAX; i++) {
                        json_t *c = chain_json(&r->chains[i]);
                        ok = c && json_array_append_new(a, c) == 0;
                }
        }
        if (ok && r->kind == HW_REQUEST_CHAINS && r->holders_requested) {
                ok = json_object_set_new(o, "holders_complete", json_boolean(r->holders_complete)) == 0 &&
                     json_object_set_new(o, "holders_seen", json_integer((json_int_t) r->holders_seen)) == 0 &&
                     (a = json_array()) != NULL && json_object_set_new(o, "holders", a) == 0;
                for (size_t i = 0; ok && i < r->n_holders && i < HW_HOLDERS_MAX; i++) {
                        json_t *c = chain_json(&r->holders[i]);
                        ok = c && json_array_append_new(a, c) == 0;
                }
        }
finish:
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int hw_census_encode(const struct hw_census_result *r, uint8_t **ret_frame, size_t *ret_size) {
        json_t *o = hw_census_result_json(r);
        int ret;

        if (!o)
                return -ENOMEM;
        ret = hw_encode_frame(o, HW_FRAME_CENSUS, ret_frame, ret_size);
        json_decref(o);
        return ret;
}
