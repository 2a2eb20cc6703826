/*
 * run.c: running a loaded model for the CLI (see run.h).
 */
#include "run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "todo.h"

int runner_open(Runner *r, const Args *a, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (model_load_dir(&r->model, a->model_dir, &a->model, err, errlen) != 0) return -1;
    const ModelConfig *c = &r->model.config;
    size_t T = (size_t)r->model.max_tokens;
    r->x = malloc(sizeof(float) * T * c->hidden_size);
    r->logits = malloc(sizeof(float) * T * c->vocab_size);
    r->probs = malloc(sizeof(float) * 3 * (size_t)c->vocab_size);
    if (!r->x || !r->logits || !r->probs) {
        snprintf(err, errlen, "out of memory for %zu tokens x %d logits", T, c->vocab_size);
        runner_close(r);
        return -1;
    }
    if (a->routing_path) {
        r->routing = fopen(a->routing_path, "w");
        if (!r->routing) {
            snprintf(err, errlen, "--dump-routing %s: cannot create it", a->routing_path);
            runner_close(r);
            return -1;
        }
        fprintf(r->routing, "pos\ttoken\tlayer\tslot\texpert\tweight\n");
    }
    return 0;
}

void runner_close(Runner *r) {
    if (r->routing) fclose(r->routing);
    free(r->x);
    free(r->logits);
    free(r->probs);
    model_free(&r->model);
    memset(r, 0, sizeof *r);
}

/* A lesson function that still has its TODO cannot run a model: say which one. */
static int lesson_unfinished(void) {
    const TodoHit *hit = todo_first();
    if (!hit) return 0;
    fprintf(stderr, "moekit: %s() is not written yet (TODO at %s:%d).\n"
                    "  Finish that lesson (make check), or run the reference: make run SRC=solutions\n",
            hit->func, hit->file, hit->line);
    return 1;
}

static void dump_routing(Runner *r, const int *ids, int T, int pos0) {
    const Model *m = &r->model;
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        if (!m->layers[l].is_sparse) continue;
        const MoeStats *st = &m->moe_scratch[l].stats;
        int k = m->moe_config[l].router.num_experts_per_tok;
        for (int t = 0; t < T && t < st->T; t++)
            for (int j = 0; j < k; j++)
                fprintf(r->routing, "%d\t%d\t%d\t%d\t%d\t%.6f\n", pos0 + t, ids[t], l, j,
                        st->experts[t * k + j], st->weights[t * k + j]);
    }
}

/* NaN or Inf logits cannot be sampled or scored: say so instead of emitting garbage. The
 * loader rejects non-finite norms, embeddings and gates; what is left is a NaN/Inf in a
 * projection or expert matrix, or a lesson function that overflows. */
static int logits_finite(const Runner *r, int n, int pos0) {
    int V = r->model.config.vocab_size;
    for (int t = 0; t < n; t++)
        for (int v = 0; v < V; v++)
            if (!isfinite(r->logits[(size_t)t * V + v])) {
                fprintf(stderr, "moekit: the logits at position %d are not finite (token %d is "
                                "%s): a weight holds NaN/Inf, or a lesson function overflows\n",
                        pos0 + t, v, isnan(r->logits[(size_t)t * V + v]) ? "NaN" : "Inf");
                return 0;
            }
    return 1;
}

/* ids (n <= max_tokens) at positions pos0..: logits (n, V) in r->logits. */
static const float *runner_chunk(Runner *r, const int *ids, int n, int pos0) {
    todo_reset();
    model_forward(&r->model, ids, n, pos0, r->x, r->logits);
    if (lesson_unfinished() || !logits_finite(r, n, pos0)) return NULL;
    if (r->routing) dump_routing(r, ids, n, pos0);
    return r->logits;
}

const float *runner_forward(Runner *r, const int *ids, int T, int pos0, ChunkFn each, void *ctx) {
    int chunk = r->model.max_tokens, n = 0;
    for (int done = 0; done < T; done += n) {
        n = T - done < chunk ? T - done : chunk;
        if (!runner_chunk(r, ids + done, n, pos0 + done)) return NULL;
        /* each may call a lesson function too (perplexity: logsumexp) */
        if (each && (each(ctx, r->logits, done, n) != 0 || lesson_unfinished())) return NULL;
    }
    return r->logits + (size_t)(n - 1) * r->model.config.vocab_size;
}

static int sample_next(Runner *r, const float *logits, int *next, Sampler *s) {
    todo_reset();
    int V = r->model.config.vocab_size;
    *next = sample(logits, V, s, r->probs);
    if (lesson_unfinished()) return -1;
    if (*next < 0 || *next >= V) { /* fed back as the next token, it would index out of bounds */
        fprintf(stderr, "moekit: sample() returned %d, not a token id 0..%d\n", *next, V - 1);
        return -1;
    }
    return 0;
}

int runner_prefill(Runner *r, const int *ids, int T, int pos0, int *next, Sampler *s) {
    const float *last = runner_forward(r, ids, T, pos0, NULL, NULL);
    return last ? sample_next(r, last, next, s) : -1;
}

int runner_step(Runner *r, int id, int pos, int *next, Sampler *s) {
    return runner_prefill(r, &id, 1, pos, next, s);
}

typedef struct {
    FILE *f;
    int V;
} RowWriter;

static int write_rows(void *ctx, const float *logits, int done, int n) {
    const RowWriter *w = ctx;
    (void)done;
    if (fwrite(logits, sizeof(float) * w->V, (size_t)n, w->f) == (size_t)n) return 0;
    fprintf(stderr, "moekit: writing logits failed\n");
    return 1;
}

int runner_logits(Runner *r, const int *ids, int T, FILE *f) {
    RowWriter w = {f, r->model.config.vocab_size};
    return runner_forward(r, ids, T, 0, write_rows, &w) ? 0 : 1;
}
