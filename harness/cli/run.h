/* run.h: a loaded model plus what running it needs: buffers, chunked prefill, sampling,
 * the routing dump, and a clear stop when a lesson function is still a TODO. */
#ifndef MOEKIT_RUN_H
#define MOEKIT_RUN_H

#include <stdio.h>

#include "args.h"

typedef struct {
    Model model;
    float *x;      /* (max_tokens, C) residual stream */
    float *logits; /* (max_tokens, V) */
    float *probs;  /* (3 * V) sampling scratch */
    FILE *routing; /* --dump-routing, or NULL */
} Runner;

int runner_open(Runner *r, const Args *a, char *err, size_t errlen);
void runner_close(Runner *r);

/* ids (n <= max_tokens) at positions pos0..: logits (n, V) in r->logits; NULL when a
 * lesson function is unfinished (message printed). Writes the routing dump. */
const float *runner_chunk(Runner *r, const int *ids, int n, int pos0);
/* ids (T) at positions pos0..: any T (chunked by max_tokens); the logits of the last
 * position are at r->logits + (last chunk size - 1) * V; returns that row, NULL on error. */
const float *runner_forward(Runner *r, const int *ids, int T, int pos0);
/* The prompt, then the first sampled token in *next. */
int runner_prefill(Runner *r, const int *ids, int T, int pos0, int *next, Sampler *s);
/* One token at pos, the next sampled one in *next. */
int runner_step(Runner *r, int id, int pos, int *next, Sampler *s);
/* Writes the (T, V) logits of one prefill to f. 0 or 1 (message printed). */
int runner_logits(Runner *r, const int *ids, int T, FILE *f);
/* moekit perplexity (perplexity.c). */
int cmd_perplexity(const Args *a, Runner *r);

#endif
