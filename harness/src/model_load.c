/*
 * model_load.c: Hugging Face model directory -> Model (see model_load.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "model_load.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"

/* Everything the loader owns behind Model.owner. */
typedef struct {
    SafeTensors *files; /* the shards, opened by model_load_dir (n_files 0 for model_build) */
    int n_files;
    const SafeTensors *const *search; /* where tensors are looked up */
    int n_search;
    const char *prefix;
    void **owned; /* tensors converted at load */
    int n_owned, cap_owned;
    TypedWeights typed; /* --weights: the matrices as typed tensors (layers NULL without) */
    TypedRun run;
    unsigned char *disabled; /* (L, E) */
    char where[512]; /* the directory or file, for messages */
} Store;

typedef struct {
    Store *s;
    char *err;
    size_t errlen;
    int failed;
    const ModelOptions *o; /* NULL: the defaults */
    int typed; /* 1: matrices as typed tensors into s->typed, not float32 */
    int want;  /* their type, or -1: each in its file's type */
} Loader;

static void load_error(Loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void load_error(Loader *ld, const char *fmt, ...) {
    if (ld->failed) return;
    ld->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------
 * finding a tensor and making it float32
 * ---------------------------------------------------------------------------------- */

static const StTensor *find(const Store *s, const char *key, const SafeTensors **in) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", s->prefix, key);
    for (int i = 0; i < s->n_search; i++) {
        const StTensor *t = st_find(s->search[i], name);
        if (t) return *in = s->search[i], t;
    }
    return NULL;
}

static int keep_owned(Store *s, void *p) {
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? 2 * s->cap_owned : 256;
        void **grown = realloc(s->owned, sizeof *grown * (size_t)cap);
        if (!grown) return -1;
        s->owned = grown;
        s->cap_owned = cap;
    }
    s->owned[s->n_owned++] = p;
    return 0;
}

static void shape_str(char *buf, size_t len, const int64_t *shape, int ndim) {
    int n = snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n > 0 && (size_t)n < len; d++)
        n += snprintf(buf + n, len - (size_t)n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n > 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, "]");
}

/* A matrix `moekit quantize` wrote in a block type: its bytes as a U8 tensor (rows, row
 * bytes), the type in the file's metadata, "moekit.blocks": "q8_0" for every U8 tensor of
 * the file (the kit's convention, docs/quantization.md). The type, -1 for a plain tensor,
 * or -2 (an error in ld) when the metadata names no block type. */
static int file_block_type(Loader *ld, const SafeTensors *file, const StTensor *t) {
    const char *v = t->dtype == ST_U8 ? st_meta(file, "moekit.blocks") : NULL;
    if (!v) return -1;
    int w = wtype_parse(v);
    if (w == WT_Q8_0 || w == WT_Q4_0) return w;
    load_error(ld, "%s: metadata \"moekit.blocks\" is '%s'; moekit quantize writes q8_0 or "
               "q4_0", file->path, json_shown(v).s);
    return -2;
}

/* The shape a matrix (rows, cols) of block type w has in the file: (rows, row bytes). */
static int block_shape_ok(const StTensor *t, int w, long rows, long cols) {
    return t->dtype == ST_U8 && t->ndim == 2 && t->shape[0] == rows && cols % QK == 0 &&
           (size_t)t->shape[1] == wtype_row_bytes((WType)w, cols);
}

/* The tensor <key>, checked to have the shape (rows, cols; cols 0 for a vector), or that
 * of its blocks (above). NULL when absent (an error unless optional) or wrong. */
static const StTensor *lookup(Loader *ld, const char *key, long rows, long cols, int optional,
                              const SafeTensors **in) {
    const SafeTensors *file = NULL;
    const StTensor *t = find(ld->s, key, &file);
    *in = file;
    if (ld->failed) return NULL;
    if (!t) {
        if (!optional) load_error(ld, "%s: tensor '%s%s' is missing", ld->s->where, ld->s->prefix, key);
        return NULL;
    }
    int blocks = file_block_type(ld, file, t);
    if (blocks == -2) return NULL;
    if (blocks >= 0 && !block_shape_ok(t, blocks, rows, cols)) {
        load_error(ld, "%s: tensor '%s' (%s blocks) is not the U8 [%ld, %zu] that config.json "
                   "implies", file->path, t->name, wtype_name((WType)blocks), rows,
                   cols % QK ? 0 : wtype_row_bytes((WType)blocks, cols));
        return NULL;
    }
    if (blocks >= 0) return t;
    int64_t want[2] = {rows, cols};
    int want_ndim = cols ? 2 : 1;
    if (t->ndim != want_ndim || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
        char got_s[96], want_s[96];
        shape_str(got_s, sizeof got_s, t->shape, t->ndim);
        shape_str(want_s, sizeof want_s, want, want_ndim);
        load_error(ld, "%s: tensor '%s' has shape %s, config.json implies %s", file->path,
                   t->name, got_s, want_s);
        return NULL;
    }
    return t;
}

static void *owned_buffer(Loader *ld, size_t bytes, const char *name) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p || keep_owned(ld->s, p) != 0) {
        free(p);
        load_error(ld, "out of memory converting '%s'", name);
        return NULL;
    }
    return p;
}

/* The tensor <key> with the given shape (rows, cols; cols 0 for a vector) as float32:
 * in place when the file's F32 data is aligned, else a converted copy. NULL when absent
 * (an error unless optional) or wrong. */
static const float *weight(Loader *ld, const char *key, long rows, long cols, int optional) {
    const SafeTensors *file = NULL;
    const StTensor *t = lookup(ld, key, rows, cols, optional, &file);
    if (!t) return NULL;
    if (t->dtype == ST_F32 && st_is_aligned(t, sizeof(float))) return (const float *)t->data;
    int blocks = file_block_type(ld, file, t);
    float *p = owned_buffer(ld, sizeof(float) * (size_t)rows * (size_t)(cols ? cols : 1), t->name);
    if (!p) return NULL;
    if (blocks >= 0) { /* the lessons' float32 path: the blocks widened, row by row */
        size_t rb = wtype_row_bytes((WType)blocks, cols);
        for (long r = 0; r < rows; r++)
            wtype_to_f32((WType)blocks, p + (size_t)r * (size_t)cols,
                         (const unsigned char *)t->data + (size_t)r * rb, cols);
        return p;
    }
    if (st_to_f32(t, p) != 0) {
        load_error(ld, "%s: tensor '%s' has dtype %s; moekit reads F32, BF16 and F16",
                   file->path, t->name, st_dtype_name(t->dtype));
        return NULL;
    }
    return p;
}

/* Like weight(), and every element must be finite. Where NaN/Inf is checked, and why only
 * there: the norm weights, biases, router and shared-expert gates, the embedding and the
 * LM head are small or read whole for every token, so one NaN there poisons every
 * position (or, in the router, makes the top-k choice meaningless), and checking them
 * costs little. The projection and expert matrices are most of a checkpoint (tens of GB,
 * used in place from the mapping) and are not scanned at load; a NaN/Inf there shows up
 * as non-finite logits, which the CLI reports instead of sampling from them. With
 * --weights the embedding and LM head are used in place too, and go unscanned likewise. */
static const float *finite_weight(Loader *ld, const char *key, long rows, long cols,
                                  int optional) {
    const float *w = weight(ld, key, rows, cols, optional);
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    for (size_t i = 0; w && i < n; i++)
        if (!isfinite(w[i])) {
            const SafeTensors *file = NULL;
            const StTensor *t = find(ld->s, key, &file);
            load_error(ld, "%s: tensor '%s' holds %s at element %zu: the model would give "
                           "NaN for every token", file->path, t->name,
                       isnan(w[i]) ? "NaN" : "Inf", i);
            return NULL;
        }
    return w;
}

/* ------------------------------------------------------------------------------------
 * typed matrices (--weights)
 * ---------------------------------------------------------------------------------- */

/* The file's dtype as a weight type, -1 for one moekit cannot compute with. */
static int file_wtype(StDtype d) {
    return d == ST_F32 ? WT_F32 : d == ST_BF16 ? WT_BF16 : d == ST_F16 ? WT_F16 : -1;
}

/* src's rows [r0, r0 + n) as float32 into buf (n * cols floats). */
static int rows_to_f32(const StTensor *src, long r0, long n, long cols, float *buf) {
    StTensor part = *src;
    size_t esize = st_dtype_size(src->dtype);
    part.data = (const unsigned char *)src->data + (size_t)r0 * (size_t)cols * esize;
    part.numel = n * cols;
    part.nbytes = (size_t)part.numel * esize;
    return st_to_f32(&part, buf);
}

/* t converted to type w (rows, cols) into an owned buffer, 256 rows at a time through a
 * float32 buffer (so a 151936-row LM head needs no float32 copy of itself). */
static const void *convert(Loader *ld, const StTensor *t, WType w, long rows, long cols) {
    size_t rb = wtype_row_bytes(w, cols);
    unsigned char *out = owned_buffer(ld, rb * (size_t)rows, t->name);
    long chunk = rows < 256 ? rows : 256;
    float *buf = malloc(sizeof(float) * (size_t)(chunk > 0 && cols > 0 ? chunk * cols : 1));
    if (!out || !buf) {
        free(buf);
        load_error(ld, "out of memory converting '%s'", t->name);
        return NULL;
    }
    for (long r = 0; r < rows; r += chunk) {
        long n = rows - r < chunk ? rows - r : chunk;
        rows_to_f32(t, r, n, cols, buf);
        for (long i = 0; i < n; i++)
            wtype_from_f32(w, out + (size_t)(r + i) * rb, buf + i * cols, cols);
    }
    free(buf);
    return out;
}

/* The matrix <key> (rows, cols) as a typed tensor of type want (-1: the file's): in place
 * when it already has that type and is aligned for it, else converted once. */
static Tensor typed_weight_as(Loader *ld, const char *key, long rows, long cols, int want) {
    const SafeTensors *file = NULL;
    const StTensor *t = lookup(ld, key, rows, cols, 0, &file);
    Tensor out = {WT_F32, (int)rows, (int)cols, NULL};
    if (!t) return out;
    int blocks = file_block_type(ld, file, t);
    if (blocks >= 0) { /* written by moekit quantize: used as it lies */
        out.type = (WType)blocks;
        if (want >= 0 && want != blocks)
            load_error(ld, "%s: tensor '%s' is %s already (moekit quantize): run it with "
                       "--weights auto or %s", file->path, t->name, wtype_name(out.type),
                       wtype_name(out.type));
        else if (st_is_aligned(t, sizeof(uint16_t)))
            out.data = t->data;
        else if ((out.data = owned_buffer(ld, t->nbytes, t->name)))
            memcpy((void *)out.data, t->data, t->nbytes);
        return out;
    }
    int have = file_wtype(t->dtype);
    if (have < 0) {
        load_error(ld, "%s: tensor '%s' has dtype %s; moekit reads F32, BF16 and F16",
                   file->path, t->name, st_dtype_name(t->dtype));
        return out;
    }
    out.type = (WType)(want >= 0 ? want : have);
    /* rows that are not whole blocks stay in the file's type (llama.cpp too falls back to
     * another type for them); the kit's tiny test checkpoints have such matrices */
    if ((out.type == WT_Q8_0 || out.type == WT_Q4_0) && cols % QK != 0) {
        out.type = (WType)have;
        ld->s->typed.n_unquantized++;
    }
    size_t align = out.type == WT_F32 ? sizeof(float) : sizeof(uint16_t);
    if ((int)out.type == have && st_is_aligned(t, align))
        out.data = t->data; /* in place from the mapping */
    else
        out.data = convert(ld, t, out.type, rows, cols);
    return out;
}

/* The same in the type --weights asks for. */
static Tensor typed_weight(Loader *ld, const char *key, long rows, long cols) {
    return typed_weight_as(ld, key, rows, cols, ld->want);
}

/* A projection or expert matrix: float32 for the lessons' forward pass, or, with
 * --weights, a typed tensor in *typed (and NULL as the float32 pointer). */
static const float *matrix(Loader *ld, const char *key, long rows, long cols, Tensor *typed) {
    if (!ld->typed) return weight(ld, key, rows, cols, 0);
    *typed = typed_weight(ld, key, rows, cols);
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * the weights of each layer, by Hugging Face key
 * ---------------------------------------------------------------------------------- */

static ExpertWeights swiglu(Loader *ld, const char *prefix, long C, long I, TypedExpert *te) {
    char k[3][256];
    snprintf(k[0], sizeof k[0], "%s.gate_proj.weight", prefix);
    snprintf(k[1], sizeof k[1], "%s.up_proj.weight", prefix);
    snprintf(k[2], sizeof k[2], "%s.down_proj.weight", prefix);
    ExpertWeights w;
    w.gate_proj = matrix(ld, k[0], I, C, &te->gate_proj);
    w.up_proj = matrix(ld, k[1], I, C, &te->up_proj);
    w.down_proj = matrix(ld, k[2], C, I, &te->down_proj);
    return w;
}

static SelfAttnWeights attn_weights(Loader *ld, const ModelConfig *c, int l, TypedAttn *ta) {
    long C = c->hidden_size, D = c->head_dim;
    long q = c->num_attention_heads * D, kv = c->num_key_value_heads * D;
    int qwen2 = c->arch == ARCH_QWEN2_MOE;
    char k[256];
    SelfAttnWeights w;
#define W(get, field, name, rows, cols, opt)                                   \
    snprintf(k, sizeof k, "model.layers.%d.self_attn.%s", l, name);           \
    w.field = get(ld, k, rows, cols, opt)
    W(matrix, q_proj, "q_proj.weight", q, C, &ta->q_proj);
    W(matrix, k_proj, "k_proj.weight", kv, C, &ta->k_proj);
    W(matrix, v_proj, "v_proj.weight", kv, C, &ta->v_proj);
    W(matrix, o_proj, "o_proj.weight", C, q, &ta->o_proj);
    /* Qwen2 always has biases; Qwen3 if attention_bias */
    W(finite_weight, q_bias, "q_proj.bias", q, 0, !qwen2);
    W(finite_weight, k_bias, "k_proj.bias", kv, 0, !qwen2);
    W(finite_weight, v_bias, "v_proj.bias", kv, 0, !qwen2);
    W(finite_weight, q_norm, "q_norm.weight", D, 0, qwen2);
    W(finite_weight, k_norm, "k_norm.weight", D, 0, qwen2);
#undef W
    if (qwen2) w.q_norm = w.k_norm = NULL; /* Qwen2-MoE has no QK-norm */
    return w;
}

/* 1 when this process holds expert e (ModelOptions.ep_rank, ep_size). */
static int expert_held(const ModelOptions *o, int e, int E) {
    if (!o || o->ep_size <= 0) return 1;
    return e >= (int)((long)o->ep_rank * E / o->ep_size) &&
           e < (int)((long)(o->ep_rank + 1) * E / o->ep_size);
}

static void moe_weights(Loader *ld, const ModelConfig *c, int l, MoeWeights *m, TypedLayer *tl) {
    long C = c->hidden_size, E = c->num_experts;
    char k[256];
    snprintf(k, sizeof k, "model.layers.%d.mlp.gate.weight", l);
    m->gate = finite_weight(ld, k, E, C, 0); /* [E, C]: num_experts is backed by the file */
    if (ld->failed) return;
    m->experts = calloc((size_t)E, sizeof *m->experts);
    tl->experts = calloc((size_t)E, sizeof *tl->experts);
    if (!m->experts || !tl->experts) {
        load_error(ld, "out of memory");
        return;
    }
    for (int e = 0; e < E && !ld->failed; e++) {
        if (!expert_held(ld->o, e, (int)E)) continue;
        snprintf(k, sizeof k, "model.layers.%d.mlp.experts.%d", l, e);
        m->experts[e] = swiglu(ld, k, C, c->moe_intermediate_size, &tl->experts[e]);
    }
    if (c->shared_expert_intermediate_size > 0) {
        snprintf(k, sizeof k, "model.layers.%d.mlp.shared_expert", l);
        m->shared_expert = swiglu(ld, k, C, c->shared_expert_intermediate_size,
                                  &tl->shared_expert);
        snprintf(k, sizeof k, "model.layers.%d.mlp.shared_expert_gate.weight", l);
        m->shared_expert_gate = finite_weight(ld, k, 1, C, 0);
    }
}

static void layer_weights(Loader *ld, const ModelConfig *c, int l, LayerWeights *L,
                          TypedLayer *tl) {
    char k[256];
    snprintf(k, sizeof k, "model.layers.%d.input_layernorm.weight", l);
    L->input_layernorm = finite_weight(ld, k, c->hidden_size, 0, 0);
    snprintf(k, sizeof k, "model.layers.%d.post_attention_layernorm.weight", l);
    L->post_attention_layernorm = finite_weight(ld, k, c->hidden_size, 0, 0);
    L->self_attn = attn_weights(ld, c, l, &tl->self_attn);
    L->is_sparse = !c->mlp_only_layers[l] && c->num_experts > 0 &&
                   (l + 1) % c->decoder_sparse_step == 0;
    if (L->is_sparse) {
        moe_weights(ld, c, l, &L->moe, tl);
    } else {
        snprintf(k, sizeof k, "model.layers.%d.mlp", l);
        L->mlp = swiglu(ld, k, c->hidden_size, c->intermediate_size, &tl->mlp);
    }
}

/* A tied LM head is the embedding, which moekit quantize keeps in its type (a row per
 * token is read): in a quantized checkpoint, --weights auto converts it at load to the
 * file's blocks, as --weights q8_0|q4_0 does on the original, for the same logits. */
static Tensor tied_lm_head(Loader *ld, const ModelConfig *c) {
    const SafeTensors *file = NULL;
    const StTensor *t = find(ld->s, "model.embed_tokens.weight", &file);
    const char *blocks = t ? st_meta(file, "moekit.blocks") : NULL;
    int want = ld->want < 0 && blocks ? wtype_parse(blocks) : ld->want;
    return typed_weight_as(ld, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, want);
}

/* The embedding in its file's type, in place: typed_forward widens one row per token. */
static Tensor typed_embedding(Loader *ld, const ModelConfig *c) {
    return typed_weight_as(ld, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, -1);
}

static void model_weights(Loader *ld, Model *m) {
    const ModelConfig *c = &m->config;
    if (!ld->typed)
        m->weights.embed_tokens =
            finite_weight(ld, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, 0);
    else
        ld->s->typed.embed_tokens = typed_embedding(ld, c);
    m->weights.norm = finite_weight(ld, "model.norm.weight", c->hidden_size, 0, 0);
    if (!ld->typed)
        m->weights.lm_head = c->tie_word_embeddings
                         ? m->weights.embed_tokens
                         : finite_weight(ld, "lm_head.weight", c->vocab_size, c->hidden_size, 0);
    else if (!c->tie_word_embeddings) /* NaN in it: non-finite logits, which the CLI reports */
        ld->s->typed.lm_head = typed_weight(ld, "lm_head.weight", c->vocab_size, c->hidden_size);
    else
        ld->s->typed.lm_head = tied_lm_head(ld, c);
    /* num_hidden_layers is only a number in a file: the last layer must exist before
     * memory is set aside for all of them */
    char last[96];
    snprintf(last, sizeof last, "model.layers.%d.input_layernorm.weight",
             c->num_hidden_layers - 1);
    if (ld->failed || !weight(ld, last, c->hidden_size, 0, 0)) return;
    m->weights.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->weights.layers);
    ld->s->typed.layers = calloc((size_t)c->num_hidden_layers, sizeof *ld->s->typed.layers);
    if (!m->weights.layers || !ld->s->typed.layers) {
        load_error(ld, "out of memory");
        return;
    }
    for (int l = 0; l < c->num_hidden_layers && !ld->failed; l++)
        layer_weights(ld, c, l, &m->weights.layers[l], &ld->s->typed.layers[l]);
}

/* ------------------------------------------------------------------------------------
 * run-time state: configs per layer, KV caches, scratch
 * ---------------------------------------------------------------------------------- */

static void moe_configs(Loader *ld, Model *m, const ModelOptions *o) {
    const ModelConfig *c = &m->config;
    int L = c->num_hidden_layers, E = c->num_experts;
    m->moe_config = calloc((size_t)L, sizeof *m->moe_config);
    ld->s->disabled = calloc((size_t)L * (E > 0 ? E : 1), 1);
    if (!m->moe_config || !ld->s->disabled) {
        load_error(ld, "out of memory");
        return;
    }
    for (int i = 0; i < o->n_disabled; i++) {
        int l = o->disabled_layer[i], e = o->disabled_expert[i];
        if (l < 0 || l >= L || e < 0 || e >= E || !m->weights.layers[l].is_sparse) {
            load_error(ld, "--disable-expert %d:%d: the model has no expert %d in a sparse "
                           "layer %d (layers 0..%d, experts 0..%d)", l, e, e, l, L - 1, E - 1);
            return;
        }
        ld->s->disabled[(size_t)l * E + e] = 1;
    }
    int k = o->top_k > 0 ? o->top_k : c->num_experts_per_tok;
    if (o->top_k > 0 && E == 0) {
        load_error(ld, "--top-k %d: the model has no experts (num_experts is 0)", k);
        return;
    }
    if (E > 0 && k > E) {
        load_error(ld, "--top-k %d is more than the model's %d experts", k, E);
        return;
    }
    for (int l = 0; l < L; l++) {
        MoeConfig *mc = &m->moe_config[l];
        *mc = (MoeConfig){c->hidden_size, c->moe_intermediate_size,
                          c->shared_expert_intermediate_size,
                          {E, k, c->norm_topk_prob, ld->s->disabled + (size_t)l * E},
                          o->capacity_factor};
    }
}

static int max_int(int a, int b) { return a > b ? a : b; }
static long long max_ll(long long a, long long b) { return a > b ? a : b; }

/* The widest MLP of the layers the model has (intermediate_size only counts when a layer
 * is dense, the expert sizes when one is sparse: configs carry both either way). */
static int mlp_width(const Model *m) {
    const ModelConfig *c = &m->config;
    int I = 0;
    for (int l = 0; l < c->num_hidden_layers; l++)
        I = max_int(I, m->weights.layers[l].is_sparse ? max_int(c->moe_intermediate_size,
                                                        c->shared_expert_intermediate_size)
                                              : c->intermediate_size);
    return I;
}

/* The lessons index the caches and scratch with int: every buffer must fit one. */
static int run_state_fits(const Model *m, int max_seq, int max_tokens) {
    const ModelConfig *c = &m->config;
    long long q = (long long)c->num_attention_heads * c->head_dim;
    long long kv = (long long)c->num_key_value_heads * c->head_dim;
    long long widest = max_ll(max_ll(c->vocab_size, c->num_experts),
                              max_ll(2LL * mlp_width(m), max_ll(q, c->hidden_size)));
    return (long long)max_seq * max_ll(kv, c->num_attention_heads) <= INT_MAX &&
           (long long)max_seq * max_tokens <= INT_MAX && (long long)max_tokens * widest <= INT_MAX;
}

int run_state_init(RunState *s, const Model *m, int max_seq, int max_tokens) {
    const ModelConfig *c = &m->config;
    int L = c->num_hidden_layers, C = c->hidden_size, I = mlp_width(m);
    memset(s, 0, sizeof *s);
    s->max_seq = max_seq, s->max_tokens = max_tokens;
    s->cache = calloc((size_t)L, sizeof *s->cache);
    s->moe_scratch = calloc((size_t)L, sizeof *s->moe_scratch);
    s->h = malloc(sizeof(float) * (size_t)max_tokens * C);
    s->y = malloc(sizeof(float) * (size_t)max_tokens * C);
    s->mlp_scratch = malloc(sizeof(float) * 2 * (size_t)max_tokens * I);
    int bad = !s->cache || !s->moe_scratch || !s->h || !s->y || !s->mlp_scratch ||
              attn_scratch_init(&s->attn_scratch, &m->attn_config.shape, max_seq, max_tokens) != 0;
    for (int l = 0; l < L && !bad; l++) {
        bad |= kv_cache_init(&s->cache[l], &m->attn_config.shape, max_seq) != 0;
        if (m->weights.layers[l].is_sparse)
            bad |= moe_scratch_init(&s->moe_scratch[l], &m->moe_config[l], max_tokens) != 0;
    }
    if (bad) run_state_free(s, L);
    return bad ? -1 : 0;
}

void run_state_free(RunState *s, int n_layers) {
    for (int l = 0; s->cache && l < n_layers; l++) kv_cache_free(&s->cache[l]);
    for (int l = 0; s->moe_scratch && l < n_layers; l++)
        moe_scratch_free(&s->moe_scratch[l]); /* a zeroed one (dense layer) is fine */
    attn_scratch_free(&s->attn_scratch);
    free(s->cache);
    free(s->moe_scratch);
    free(s->h);
    free(s->y);
    free(s->mlp_scratch);
    memset(s, 0, sizeof *s);
}

/* The configs the forward pass reads, then the run state for --ctx positions. */
static void runtime(Loader *ld, Model *m, const ModelOptions *o) {
    const ModelConfig *c = &m->config;
    int max_seq = o->max_seq > 0 ? o->max_seq : c->max_position_embeddings;
    if (o->max_seq <= 0 && max_seq > 2048) max_seq = 2048;
    int max_tokens = o->max_tokens > 0 ? o->max_tokens : 64;
    m->attn_config = (SelfAttnConfig){{c->num_attention_heads, c->num_key_value_heads, c->head_dim},
                                      c->hidden_size, c->rms_norm_eps, c->rope_theta};
    if (!run_state_fits(m, max_seq, max_tokens)) {
        load_error(ld, "%d positions (--ctx) and %d tokens per step need a KV cache or "
                       "scratch buffer of more than %d elements for this model's sizes: use "
                       "a smaller --ctx", max_seq, max_tokens, INT_MAX);
        return;
    }
    moe_configs(ld, m, o);
    if (ld->failed) return;
    if (run_state_init(&m->state, m, max_seq, max_tokens) != 0)
        load_error(ld, "out of memory for the KV cache and scratch (%d positions, %d tokens "
                       "per step): try a smaller --ctx", max_seq, max_tokens);
}

/* ------------------------------------------------------------------------------------
 * building, loading a directory, freeing
 * ---------------------------------------------------------------------------------- */

static int build(Model *m, ModelConfig *c, Store *s, const ModelOptions *o, char *err,
                 size_t errlen) {
    static const ModelOptions defaults = {0};
    memset(m, 0, sizeof *m);
    m->config = *c;
    memset(c, 0, sizeof *c);
    m->owner = s;
    o = o ? o : &defaults;
    Loader ld = {s, err, errlen, 0, o, o->weights != NULL, -1};
    if (o->weights && !typed_available)
        load_error(&ld, "--weights: the student release leaves out the typed forward pass "
                   "(harness/src/typed_model.c repeats lessons 04-08); use the full kit");
    else if (o->weights && strcmp(o->weights, "auto") != 0 && (ld.want = wtype_parse(o->weights)) < 0)
        load_error(&ld, "--weights %s: not a type (auto, f32, bf16, f16, q8_0, q4_0)", o->weights);
    s->typed.type = o->weights;
    if (!ld.failed) model_weights(&ld, m);
    if (!ld.failed) runtime(&ld, m, o);
    if (!ld.failed && ld.typed && typed_run_init(&s->run, m) != 0)
        load_error(&ld, "out of memory for the activation scratch");
    if (ld.failed) model_free(m);
    return ld.failed ? -1 : 0;
}

int model_build(Model *m, ModelConfig *c, const SafeTensors *st, const char *prefix,
                const ModelOptions *o, char *err, size_t errlen) {
    Store *s = calloc(1, sizeof *s);
    const SafeTensors **search = malloc(sizeof *search);
    if (!s || !search) {
        free(s);
        free(search);
        config_free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    search[0] = st;
    s->search = search;
    s->n_search = 1;
    s->prefix = prefix;
    snprintf(s->where, sizeof s->where, "%s", st->path);
    return build(m, c, s, o, err, errlen);
}

static void typed_free(TypedWeights *w, int n_layers) {
    for (int l = 0; w->layers && l < n_layers; l++) free(w->layers[l].experts);
    free(w->layers);
}

static void store_free(Store *s, int n_layers) {
    if (!s) return;
    typed_free(&s->typed, n_layers);
    typed_run_free(&s->run);
    for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    for (int i = 0; i < s->n_files; i++) st_close(&s->files[i]);
    free(s->files);
    free((void *)s->search);
    free(s->disabled);
    free(s);
}

void model_free(Model *m) {
    const ModelConfig *c = &m->config;
    for (int l = 0; m->weights.layers && l < c->num_hidden_layers; l++)
        free(m->weights.layers[l].moe.experts);
    free(m->weights.layers);
    run_state_free(&m->state, c->num_hidden_layers);
    free(m->moe_config);
    store_free(m->owner, c->num_hidden_layers);
    config_free(&m->config);
    memset(m, 0, sizeof *m);
}

const TypedWeights *model_typed(const Model *m, TypedRun **run) {
    Store *s = m->owner;
    if (!s || !s->typed.type) return NULL;
    if (run) *run = &s->run;
    return &s->typed;
}

/* dir/name into path; -1 with a message when it does not fit. */
static int join(char *path, size_t size, const char *dir, const char *name, char *err,
                size_t errlen) {
    int n = snprintf(path, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) {
        snprintf(err, errlen, "%.200s...: the path is longer than %zu bytes", dir, size - 1);
        return -1;
    }
    return 0;
}

static int open_file(Store *s, const char *path, char *err, size_t errlen) {
    SafeTensors *f = &s->files[s->n_files];
    if (st_open(f, path, err, errlen) != 0) return -1;
    s->n_files++;
    for (int i = 0; i < f->n_tensors; i++) /* a tensor in two shards is ambiguous */
        for (int j = 0; j < s->n_files - 1; j++)
            if (st_find(&s->files[j], f->tensors[i].name)) {
                snprintf(err, errlen, "%s: tensor '%s' is also in %s", path,
                         json_shown(f->tensors[i].name).s, s->files[j].path);
                return -1;
            }
    return 0;
}

/* A shard is a plain file name in the model directory. */
static int shard_name_ok(const char *shard) {
    return shard && shard[0] && !strchr(shard, '/') && strcmp(shard, ".") && strcmp(shard, "..");
}

/* model.safetensors.index.json: {"weight_map": {"tensor": "shard file", ...}}. Opens every
 * shard it names once; each must hold the tensors mapped to it. */
static int open_shards(Store *s, const char *dir, const char *index_path, char *err,
                       size_t errlen) {
    size_t len;
    char *text = read_file(index_path, 64u << 20, &len, err, errlen);
    if (!text) return -1;
    char jerr[256];
    JsonValue *root = json_parse(text, len, jerr, sizeof jerr);
    free(text);
    const JsonValue *map = json_get(root, "weight_map");
    if (!map || map->type != JSON_OBJECT || map->count == 0) {
        snprintf(err, errlen, "%s: %s", index_path,
                 !root                    ? jerr
                 : root->type != JSON_OBJECT ? "must hold a JSON object"
                 : !map                   ? "has no \"weight_map\""
                 : map->type != JSON_OBJECT ? "\"weight_map\" must be an object of tensor -> file"
                                          : "\"weight_map\" is empty");
        json_free(root);
        return -1;
    }
    s->files = calloc(json_len(map) + 1, sizeof *s->files);
    int rc = s->files ? 0 : (snprintf(err, errlen, "out of memory"), -1);
    for (size_t i = 0; i < json_len(map) && rc == 0; i++) {
        const JsonValue *entry = json_at(map, i);
        const char *shard = json_string(entry);
        char path[1024];
        if (!shard_name_ok(shard)) {
            snprintf(err, errlen, "%s: weight_map[\"%s\"] must be the name of a file in %s",
                     index_path, json_shown(entry->key).s, dir);
            rc = -1;
            break;
        }
        if ((rc = join(path, sizeof path, dir, shard, err, errlen)) != 0) break;
        int seen = 0, before = s->n_files;
        for (int f = 0; f < s->n_files && !seen; f++) seen = !strcmp(s->files[f].path, path);
        if (!seen && (rc = open_file(s, path, err, errlen)) != 0 && s->n_files == before) {
            size_t used = strlen(err); /* the shard itself is missing or malformed */
            snprintf(err + used, errlen - used, " (a shard named in %s)", index_path);
        }
        for (int f = 0; f < s->n_files && rc == 0; f++)
            if (!strcmp(s->files[f].path, path) && !st_find(&s->files[f], entry->key)) {
                snprintf(err, errlen, "%s: maps '%s' to %s, which does not hold it", index_path,
                         json_shown(entry->key).s, json_shown(shard).s);
                rc = -1;
            }
    }
    json_free(root);
    return rc;
}

static int open_weights(Store *s, const char *dir, char *err, size_t errlen) {
    char path[1024];
    if (join(path, sizeof path, dir, "model.safetensors.index.json", err, errlen) != 0)
        return -1;
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        if (open_shards(s, dir, path, err, errlen) != 0) return -1;
    } else {
        if (join(path, sizeof path, dir, "model.safetensors", err, errlen) != 0) return -1;
        s->files = calloc(1, sizeof *s->files);
        if (!s->files) return snprintf(err, errlen, "out of memory"), -1;
        if (open_file(s, path, err, errlen) != 0) return -1;
    }
    const SafeTensors **search = malloc(sizeof *search * (size_t)s->n_files);
    if (!search) return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < s->n_files; i++) search[i] = &s->files[i];
    s->search = search;
    s->n_search = s->n_files;
    return 0;
}

int model_files_open(ModelFiles *f, const char *dir, char *err, size_t errlen) {
    Store *s = calloc(1, sizeof *s);
    memset(f, 0, sizeof *f);
    if (!s) return snprintf(err, errlen, "out of memory"), -1;
    int rc = open_weights(s, dir, err, errlen);
    if (rc == 0) { /* the files move to f; the rest of the store goes */
        f->files = s->files, f->n = s->n_files;
        s->files = NULL, s->n_files = 0;
    }
    store_free(s, 0);
    return rc;
}

void model_files_close(ModelFiles *f) {
    for (int i = 0; i < f->n; i++) st_close(&f->files[i]);
    free(f->files);
    memset(f, 0, sizeof *f);
}

int model_load_dir(Model *m, const char *dir, const ModelOptions *o, char *err, size_t errlen) {
    char path[1024];
    size_t len;
    ModelConfig c;
    memset(m, 0, sizeof *m);
    if (join(path, sizeof path, dir, "config.json", err, errlen) != 0) return -1;
    char *text = read_file(path, 1u << 20, &len, err, errlen);
    if (!text) return -1;
    int rc = config_parse(&c, text, len, path, err, errlen);
    free(text);
    if (rc != 0) return -1;
    Store *s = calloc(1, sizeof *s);
    if (!s) return config_free(&c), snprintf(err, errlen, "out of memory"), -1;
    s->prefix = "";
    snprintf(s->where, sizeof s->where, "%s", dir);
    if (open_weights(s, dir, err, errlen) != 0) {
        store_free(s, 0);
        config_free(&c);
        return -1;
    }
    return build(m, &c, s, o, err, errlen);
}
