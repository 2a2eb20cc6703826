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
    float **owned; /* tensors converted to float32 */
    int n_owned, cap_owned;
    unsigned char *disabled; /* (L, E) */
    char where[512]; /* the directory or file, for messages */
} Store;

typedef struct {
    Store *s;
    char *err;
    size_t errlen;
    int failed;
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

static int keep_owned(Store *s, float *p) {
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? 2 * s->cap_owned : 256;
        float **grown = realloc(s->owned, sizeof *grown * (size_t)cap);
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

/* The tensor <key> with the given shape (rows, cols; cols 0 for a vector) as float32:
 * in place when the file's F32 data is aligned, else a converted copy. NULL when absent
 * (an error unless optional) or wrong. */
static const float *weight(Loader *ld, const char *key, long rows, long cols, int optional) {
    const SafeTensors *file = NULL;
    const StTensor *t = find(ld->s, key, &file);
    if (ld->failed) return NULL;
    if (!t) {
        if (!optional) load_error(ld, "%s: tensor '%s%s' is missing", ld->s->where, ld->s->prefix, key);
        return NULL;
    }
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
    if (t->dtype == ST_F32 && st_is_aligned(t, sizeof(float))) return (const float *)t->data;
    float *p = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!p || keep_owned(ld->s, p) != 0) {
        free(p);
        load_error(ld, "out of memory converting '%s'", t->name);
        return NULL;
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
 * as non-finite logits, which the CLI reports instead of sampling from them. */
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
 * the weights of each layer, by Hugging Face key
 * ---------------------------------------------------------------------------------- */

static ExpertWeights swiglu(Loader *ld, const char *prefix, long C, long I) {
    char k[3][256];
    snprintf(k[0], sizeof k[0], "%s.gate_proj.weight", prefix);
    snprintf(k[1], sizeof k[1], "%s.up_proj.weight", prefix);
    snprintf(k[2], sizeof k[2], "%s.down_proj.weight", prefix);
    return (ExpertWeights){weight(ld, k[0], I, C, 0), weight(ld, k[1], I, C, 0),
                           weight(ld, k[2], C, I, 0)};
}

static SelfAttnWeights attn_weights(Loader *ld, const ModelConfig *c, int l) {
    long C = c->hidden_size, D = c->head_dim;
    long q = c->num_attention_heads * D, kv = c->num_key_value_heads * D;
    int qwen2 = c->arch == ARCH_QWEN2_MOE;
    char k[256];
    SelfAttnWeights w;
#define W(get, field, name, rows, cols, opt)                                   \
    snprintf(k, sizeof k, "model.layers.%d.self_attn.%s", l, name);           \
    w.field = get(ld, k, rows, cols, opt)
    W(weight, q_proj, "q_proj.weight", q, C, 0);
    W(weight, k_proj, "k_proj.weight", kv, C, 0);
    W(weight, v_proj, "v_proj.weight", kv, C, 0);
    W(weight, o_proj, "o_proj.weight", C, q, 0);
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

static void moe_weights(Loader *ld, const ModelConfig *c, int l, MoeWeights *m) {
    long C = c->hidden_size, E = c->num_experts;
    char k[256];
    snprintf(k, sizeof k, "model.layers.%d.mlp.gate.weight", l);
    m->gate = finite_weight(ld, k, E, C, 0); /* [E, C]: num_experts is backed by the file */
    if (ld->failed) return;
    m->experts = calloc((size_t)E, sizeof *m->experts);
    if (!m->experts) {
        load_error(ld, "out of memory");
        return;
    }
    for (int e = 0; e < E && !ld->failed; e++) {
        snprintf(k, sizeof k, "model.layers.%d.mlp.experts.%d", l, e);
        m->experts[e] = swiglu(ld, k, C, c->moe_intermediate_size);
    }
    if (c->shared_expert_intermediate_size > 0) {
        snprintf(k, sizeof k, "model.layers.%d.mlp.shared_expert", l);
        m->shared_expert = swiglu(ld, k, C, c->shared_expert_intermediate_size);
        snprintf(k, sizeof k, "model.layers.%d.mlp.shared_expert_gate.weight", l);
        m->shared_expert_gate = finite_weight(ld, k, 1, C, 0);
    }
}

static void layer_weights(Loader *ld, const ModelConfig *c, int l, LayerWeights *L) {
    char k[256];
    snprintf(k, sizeof k, "model.layers.%d.input_layernorm.weight", l);
    L->input_layernorm = finite_weight(ld, k, c->hidden_size, 0, 0);
    snprintf(k, sizeof k, "model.layers.%d.post_attention_layernorm.weight", l);
    L->post_attention_layernorm = finite_weight(ld, k, c->hidden_size, 0, 0);
    L->self_attn = attn_weights(ld, c, l);
    L->is_sparse = !c->mlp_only_layers[l] && c->num_experts > 0 &&
                   (l + 1) % c->decoder_sparse_step == 0;
    if (L->is_sparse) {
        moe_weights(ld, c, l, &L->moe);
    } else {
        snprintf(k, sizeof k, "model.layers.%d.mlp", l);
        L->mlp = swiglu(ld, k, c->hidden_size, c->intermediate_size);
    }
}

static void model_weights(Loader *ld, Model *m) {
    const ModelConfig *c = &m->config;
    m->embed_tokens =
        finite_weight(ld, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, 0);
    m->norm = finite_weight(ld, "model.norm.weight", c->hidden_size, 0, 0);
    m->lm_head = c->tie_word_embeddings
                     ? m->embed_tokens
                     : finite_weight(ld, "lm_head.weight", c->vocab_size, c->hidden_size, 0);
    /* num_hidden_layers is only a number in a file: the last layer must exist before
     * memory is set aside for all of them */
    char last[96];
    snprintf(last, sizeof last, "model.layers.%d.input_layernorm.weight",
             c->num_hidden_layers - 1);
    if (ld->failed || !weight(ld, last, c->hidden_size, 0, 0)) return;
    m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    if (!m->layers) {
        load_error(ld, "out of memory");
        return;
    }
    for (int l = 0; l < c->num_hidden_layers && !ld->failed; l++)
        layer_weights(ld, c, l, &m->layers[l]);
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
        if (l < 0 || l >= L || e < 0 || e >= E || !m->layers[l].is_sparse) {
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
                          {E, k, c->norm_topk_prob, ld->s->disabled + (size_t)l * E}, 0.0f};
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
        I = max_int(I, m->layers[l].is_sparse ? max_int(c->moe_intermediate_size,
                                                        c->shared_expert_intermediate_size)
                                              : c->intermediate_size);
    return I;
}

static void runtime(Loader *ld, Model *m, const ModelOptions *o) {
    const ModelConfig *c = &m->config;
    int L = c->num_hidden_layers, C = c->hidden_size;
    m->max_seq = o->max_seq > 0 ? o->max_seq : c->max_position_embeddings;
    if (o->max_seq <= 0 && m->max_seq > 2048) m->max_seq = 2048;
    m->max_tokens = o->max_tokens > 0 ? o->max_tokens : 64;
    m->attn_config = (SelfAttnConfig){{c->num_attention_heads, c->num_key_value_heads,
                                       c->head_dim}, C, c->rms_norm_eps, c->rope_theta};
    /* The lessons index the caches and scratch with int: every buffer must fit one. */
    long long q = (long long)c->num_attention_heads * c->head_dim;
    long long kv = (long long)c->num_key_value_heads * c->head_dim;
    long long widest = max_ll(max_ll(c->vocab_size, c->num_experts),
                              max_ll(2LL * mlp_width(m), max_ll(q, C)));
    if ((long long)m->max_seq * max_ll(kv, c->num_attention_heads) > INT_MAX ||
        (long long)m->max_seq * m->max_tokens > INT_MAX ||
        (long long)m->max_tokens * widest > INT_MAX) {
        load_error(ld, "%d positions (--ctx) and %d tokens per step need a KV cache or "
                       "scratch buffer of more than %d elements for this model's sizes: use "
                       "a smaller --ctx", m->max_seq, m->max_tokens, INT_MAX);
        return;
    }
    moe_configs(ld, m, o);
    if (ld->failed) return;
    m->cache = calloc((size_t)L, sizeof *m->cache);
    m->moe_scratch = calloc((size_t)L, sizeof *m->moe_scratch);
    int I = mlp_width(m);
    m->h = malloc(sizeof(float) * (size_t)m->max_tokens * C);
    m->y = malloc(sizeof(float) * (size_t)m->max_tokens * C);
    m->mlp_scratch = malloc(sizeof(float) * 2 * (size_t)m->max_tokens * I);
    int bad = !m->cache || !m->moe_scratch || !m->h || !m->y || !m->mlp_scratch ||
              attn_scratch_init(&m->attn_scratch, &m->attn_config.shape, m->max_seq,
                                m->max_tokens) != 0;
    for (int l = 0; l < L && !bad; l++) {
        bad |= kv_cache_init(&m->cache[l], &m->attn_config.shape, m->max_seq) != 0;
        if (m->layers[l].is_sparse)
            bad |= moe_scratch_init(&m->moe_scratch[l], &m->moe_config[l], m->max_tokens) != 0;
    }
    if (bad)
        load_error(ld, "out of memory for the KV cache and scratch (%d positions, %d tokens "
                       "per step): try a smaller --ctx", m->max_seq, m->max_tokens);
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
    Loader ld = {s, err, errlen, 0};
    model_weights(&ld, m);
    if (!ld.failed) runtime(&ld, m, o ? o : &defaults);
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

static void store_free(Store *s) {
    if (!s) return;
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
    for (int l = 0; m->layers && l < c->num_hidden_layers; l++) free(m->layers[l].moe.experts);
    for (int l = 0; m->cache && l < c->num_hidden_layers; l++) kv_cache_free(&m->cache[l]);
    for (int l = 0; m->moe_scratch && l < c->num_hidden_layers; l++)
        moe_scratch_free(&m->moe_scratch[l]); /* a zeroed one (dense layer) is fine */
    attn_scratch_free(&m->attn_scratch);
    free(m->layers);
    free(m->cache);
    free(m->moe_scratch);
    free(m->moe_config);
    free(m->h);
    free(m->y);
    free(m->mlp_scratch);
    config_free(&m->config);
    store_free(m->owner);
    memset(m, 0, sizeof *m);
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
        store_free(s);
        config_free(&c);
        return -1;
    }
    return build(m, &c, s, o, err, errlen);
}
