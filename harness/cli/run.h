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
    int top_k;     /* --sample-top-k / top_k (0: off) */
    float min_p;   /* --min-p / min_p (0: off) */
    float *filtered; /* (V + min(top_k, V)) the logits after top-k and min-p, and the heap */
    FILE *routing; /* --dump-routing, or NULL */
    Model *donors; /* (n_donors) --replace-expert's models, whose weights model points to */
    int n_donors;
    int matmul_chosen; /* --matmul was given: no fallback to lesson 01 */
    long routed, dropped; /* (token, expert) assignments of the sparse layers; dropped by
                           * --capacity-factor */
} Runner;

int runner_open(Runner *r, const Args *a, char *err, size_t errlen);
void runner_close(Runner *r);

/* What to do with each chunk's logits (n, V), those of ids[done .. done + n): nonzero
 * stops the pass. */
typedef int (*ChunkFn)(void *ctx, const float *logits, int done, int n);
/* ids (T) at positions pos0.., in chunks of max_tokens, each chunk's logits to each(ctx)
 * (each may be NULL: then only the last row is needed, and the typed model (--weights)
 * computes only that one). Returns the last position's logits row; NULL when a lesson function
 * is unfinished, the logits are not finite or each stopped (message printed). Writes the
 * routing dump. */
const float *runner_forward(Runner *r, const int *ids, int T, int pos0, ChunkFn each, void *ctx);
/* The prompt, then the first sampled token in *next. */
int runner_prefill(Runner *r, const int *ids, int T, int pos0, int *next, Sampler *s);
/* One token at pos, the next sampled one in *next. */
int runner_step(Runner *r, int id, int pos, int *next, Sampler *s);
/* Writes the (T, V) logits of one prefill to f. 0 or 1 (message printed). */
int runner_logits(Runner *r, const int *ids, int T, FILE *f);
/* With --capacity-factor: one stderr line, the assignments dropped of those routed. */
void runner_report_dropped(const Runner *r, const Args *a);
/* moekit perplexity (perplexity.c). */
int cmd_perplexity(const Args *a, Runner *r);

#endif
