/*
 * run.c: running a loaded model for the CLI (see run.h).
 */
#include "run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"
#include "todo.h"

/* Whether expert (l, e) of m exists: a sparse layer and an expert index in range. */
static int has_expert(const Model *m, int l, int e) {
    return l < m->config.num_hidden_layers && m->weights.layers[l].is_sparse &&
           e < m->config.num_experts;
}

/* One --replace-expert: loads its DIR (the same weight options) into donor and points
 * the expert at the donor's weights. The expert's shapes must be the same:
 * hidden_size C and moe_intermediate_size I. */
static int replace_one(Model *m, Model *donor, const ReplaceExpert *x, const ModelOptions *o,
                       char *err, size_t errlen) {
    char sub[1200];
    if (!has_expert(m, x->layer, x->expert))
        return snprintf(err, errlen, "--replace-expert %d:%d: the model has no expert %d in a "
                        "sparse layer %d", x->layer, x->expert, x->expert, x->layer), -1;
    if (model_load_dir(donor, x->dir, o, sub, sizeof sub) != 0)
        return snprintf(err, errlen, "--replace-expert %s: %s", x->dir, sub), -1;
    if (!has_expert(donor, x->from_layer, x->from_expert))
        return snprintf(err, errlen, "--replace-expert: %s has no expert %d in a sparse layer %d",
                        x->dir, x->from_expert, x->from_layer), -1;
    if (donor->config.hidden_size != m->config.hidden_size ||
        donor->config.moe_intermediate_size != m->config.moe_intermediate_size)
        return snprintf(err, errlen, "--replace-expert: %s's experts are %d x %d "
                        "(hidden_size x moe_intermediate_size), the model's %d x %d", x->dir,
                        donor->config.hidden_size, donor->config.moe_intermediate_size,
                        m->config.hidden_size, m->config.moe_intermediate_size), -1;
    m->weights.layers[x->layer].moe.experts[x->expert] =
        donor->weights.layers[x->from_layer].moe.experts[x->from_expert];
    return 0;
}

static int replace_experts(Runner *r, const Args *a, char *err, size_t errlen) {
    if (a->n_replaced == 0) return 0;
    if (a->model.weights) /* typed_forward reads its own copies of the experts */
        return snprintf(err, errlen, "--replace-expert works on the float32 weights of the "
                        "lessons' forward pass: leave out --weights"), -1;
    r->donors = calloc((size_t)a->n_replaced, sizeof *r->donors);
    if (!r->donors) return snprintf(err, errlen, "out of memory"), -1;
    ModelOptions o = a->model;
    o.n_disabled = 0, o.top_k = 0;
    for (int i = 0; i < a->n_replaced; i++, r->n_donors++)
        if (replace_one(&r->model, &r->donors[i], &a->replaced[i], &o, err, errlen) != 0)
            return r->n_donors++, -1; /* free the partly checked donor too */
    return 0;
}

int runner_open(Runner *r, const Args *a, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (model_load_dir(&r->model, a->model_dir, &a->model, err, errlen) != 0) return -1;
    if (replace_experts(r, a, err, errlen) != 0) return runner_close(r), -1;
    r->matmul_chosen = a->matmul != NULL;
    linear_use(a->matmul && !strcmp(a->matmul, "naive") ? KERNEL_MATMUL : KERNEL_FAST_MATMUL);
    const ModelConfig *c = &r->model.config;
    size_t T = (size_t)r->model.state.max_tokens;
    r->x = malloc(sizeof(float) * T * c->hidden_size);
    r->logits = malloc(sizeof(float) * T * c->vocab_size);
    r->probs = malloc(sizeof(float) * 3 * (size_t)c->vocab_size);
    r->top_k = a->sample_top_k, r->min_p = a->min_p;
    size_t k = r->top_k < c->vocab_size ? (size_t)r->top_k : (size_t)c->vocab_size;
    r->filtered = malloc(sizeof(float) * ((size_t)c->vocab_size + k));
    if (!r->x || !r->logits || !r->probs || !r->filtered) {
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
    free(r->filtered);
    model_free(&r->model);
    for (int i = 0; i < r->n_donors; i++) model_free(&r->donors[i]);
    free(r->donors);
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
        if (!m->weights.layers[l].is_sparse) continue;
        const MoeStats *st = &m->state.moe_scratch[l].stats;
        int k = m->moe_config[l].router.num_experts_per_tok;
        for (int t = 0; t < T && t < st->T; t++)
            for (int j = 0; j < k; j++)
                fprintf(r->routing, "%d\t%d\t%d\t%d\t%d\t%.6f\n", pos0 + t, ids[t], l, j,
                        st->experts[t * k + j], st->weights[t * k + j]);
    }
}

/* What the capacity limit (lesson 07's group_by_expert, or typed_model's) dropped in the
 * last forward call of n tokens, added up over the sparse layers. */
static void count_dropped(Runner *r, int n) {
    const Model *m = &r->model;
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        if (!m->weights.layers[l].is_sparse) continue;
        r->routed += (long)n * m->moe_config[l].router.num_experts_per_tok;
        r->dropped += m->state.moe_scratch[l].stats.dropped;
    }
}

void runner_report_dropped(const Runner *r, const Args *a) {
    if (a->model.capacity_factor <= 0.0f) return;
    fprintf(stderr, "moekit: --capacity-factor %g: %ld of %ld (token, expert) assignments "
                    "dropped (%.4f%%)\n", a->model.capacity_factor, r->dropped, r->routed,
            r->routed ? 100.0 * (double)r->dropped / (double)r->routed : 0.0);
}

/* NaN or Inf logits cannot be sampled or scored: say so instead of emitting garbage. The
 * loader rejects non-finite norms, embeddings and gates; what is left is a NaN/Inf in a
 * projection or expert matrix, or a lesson function that overflows. Rows first.. of n. */
static int logits_finite(const Runner *r, int first, int n, int pos0) {
    int V = r->model.config.vocab_size;
    for (int t = first; t < n; t++)
        for (int v = 0; v < V; v++)
            if (!isfinite(r->logits[(size_t)t * V + v])) {
                fprintf(stderr, "moekit: the logits at position %d are not finite (token %d is "
                                "%s): a weight holds NaN/Inf, or a lesson function overflows\n",
                        pos0 + t, v, isnan(r->logits[(size_t)t * V + v]) ? "NaN" : "Inf");
                return 0;
            }
    return 1;
}

/* Without --matmul the model runs on lesson 09's kernel; while lesson 09 still has its
 * TODO (a student who has not done it), the products that hit it move to lesson 01's
 * matmul for good, and the chunk runs again. 1 when that happened. */
static int fall_back_to_lesson01(Runner *r) {
    const TodoHit *hit = todo_first();
    if (!hit || r->matmul_chosen || linear_kernel() != KERNEL_FAST_MATMUL ||
        !strstr(hit->file, "09-fast-matmul"))
        return 0;
    fprintf(stderr, "moekit: lesson 09 is not written yet (%s() has a TODO): the model runs on "
                    "lesson 01's matmul (--matmul naive)\n", hit->func);
    linear_use(KERNEL_MATMUL);
    todo_reset();
    return 1;
}

/* ids (n <= max_tokens) at positions pos0..: logits (n, V) in r->logits. last_only: only
 * the last row is wanted (generation), and the typed model computes only that one. */
static const float *runner_chunk(Runner *r, const int *ids, int n, int pos0, int last_only) {
    todo_reset();
    TypedRun *run;
    const TypedWeights *typed = model_typed(&r->model, &run);
    do {
        if (typed) /* --weights: every product on the weight's own type (typed_model.h) */
            typed_forward(&r->model, typed, run, ids, n, pos0, r->x, r->logits, last_only);
        else
            model_forward(&r->model, ids, n, pos0, r->x, r->logits);
    } while (fall_back_to_lesson01(r));
    int first = typed && last_only ? n - 1 : 0;
    if (lesson_unfinished() || !logits_finite(r, first, n, pos0)) return NULL;
    if (r->routing) dump_routing(r, ids, n, pos0);
    count_dropped(r, n);
    return r->logits;
}

const float *runner_forward(Runner *r, const int *ids, int T, int pos0, ChunkFn each, void *ctx) {
    int chunk = r->model.state.max_tokens, n = 0;
    for (int done = 0; done < T; done += n) {
        n = T - done < chunk ? T - done : chunk;
        if (!runner_chunk(r, ids + done, n, pos0 + done, each == NULL)) return NULL;
        /* each may call a lesson function too (perplexity: logsumexp) */
        if (each && (each(ctx, r->logits, done, n) != 0 || lesson_unfinished())) return NULL;
    }
    return r->logits + (size_t)(n - 1) * r->model.config.vocab_size;
}

static int sample_next(Runner *r, const float *logits, int *next, Sampler *s) {
    todo_reset();
    int V = r->model.config.vocab_size;
    if (r->top_k > 0 || r->min_p > 0) { /* greedy or not: the argmax always stays */
        sampling_filter(logits, V, r->top_k, r->min_p, s->temperature, r->filtered, r->filtered + V);
        logits = r->filtered;
    }
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
