/* SPDX-License-Identifier: MIT */
/*
 * A finding's evidence and classification, from the process's ProcessEvidence (evidence.h)
 * over the finding's span: gathers classify.c's input, and builds the "evidence", 
 * "classification", "classification_detail", "classification_reason" and "remedy" members of a
 * finding's JSON (docs/api.md) and the process-level "evidence" of /api/v1/processes/{id}.
 *
 * The census of growing types and referrer chains (agent/census.c, daemon/census.c) fills
 * evidence.types and evidence.chains; when they are present the classifier uses them, when
 * they are absent it has less evidence, nothing else changes.
 */
#pragma once

#include <jansson.h>

#include "classify.h"
#include "registry.h"

/* Classify finding f of process p. types/chains: what the census found (< 0: no census). */
void leak_evidence_classify(const Process *p, const Finding *f, int census_types, int census_chains, int sites,
                            Classification *ret);

/* The class of the open finding of p (census counts from leak_evidence_census()); UNKNOWN when
 * none is open. For metrics. */
LeakClass leak_evidence_current_class(const Process *p);

/* Growing types and chains the census holds for p (both -1 until the census lands here). */
void leak_evidence_census(const Process *p, int *ret_types, int *ret_chains);

/* Add to a finding's JSON o (already holding "suspects" and maybe "evidence" with the census's
 * "types"/"chains"): the evidence over the finding's span, the classification, its reason and
 * remedy. Returns 0 or -ENOMEM. */
int leak_evidence_add_json(json_t *o, const Process *p, const Finding *f);

/* The process-level evidence over everything kept (GC, allocators, shares of RSS). */
json_t *leak_evidence_process_json(const Process *p);

/* For metrics: share of RSS that Python objects explain (heap profiler live bytes / RSS) and
 * that allocators hold free (glibc free + pymalloc arena bytes not holding live objects, a lower
 * bound); NaN unknown. */
double leak_evidence_python_share(const Process *p);
double leak_evidence_free_held_share(const Process *p);
/* Objects collected per collection of generation g over the last minute; NaN unknown. */
double leak_evidence_collected_per_collection(const Process *p, unsigned g);
