/*
 * config.c: config.json -> ModelConfig, for Qwen3-MoE and Qwen2-MoE.
 *
 * transformers 4.x writes `num_experts` and a top-level `rope_theta`; 5.x writes
 * `num_local_experts` and `rope_parameters.rope_theta`. Both are read. Missing optional
 * fields take the transformers defaults; missing required ones, wrong types and
 * inconsistent sizes are errors naming the file and the field.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"

typedef struct {
    const JsonValue *root;
    const char *what; /* the file, for messages */
    char *err;
    size_t errlen;
    int failed;
} Reader;

static void reader_error(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reader_error(Reader *r, const char *fmt, ...) {
    if (r->failed) return; /* keep the first problem: later ones often follow from it */
    r->failed = 1;
    int n = snprintf(r->err, r->errlen, "%s: ", r->what);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < r->errlen) vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* The first of the keys present (NULL-terminated list); spellings differ by version. */
static const JsonValue *find_any(const Reader *r, const char *const *keys, const char **found) {
    for (int i = 0; keys[i]; i++) {
        const JsonValue *v = json_get(r->root, keys[i]);
        if (v && v->type != JSON_NULL) return *found = keys[i], v;
    }
    return NULL;
}

/* Sizes: at most 1e8 (anything larger cannot be a matrix dimension the lessons index). */
#define MAX_SIZE 100000000
/* Layers: config.json alone costs O(layers) to check, so the count is bounded too; the
 * deepest Qwen/DeepSeek MoE models have fewer than 100. */
#define MAX_LAYERS 100000

static int read_int_max(Reader *r, const char *const *keys, int required, int def, int min,
                        int max) {
    const char *key = keys[0];
    const JsonValue *v = find_any(r, keys, &key);
    int64_t x;
    if (!v) {
        if (required) reader_error(r, "missing field \"%s\"", keys[0]);
        return def;
    }
    if (json_int64(v, &x) != 0) {
        if (v->type == JSON_NUMBER)
            reader_error(r, "field \"%s\" must be an integer, not %g", key, v->number);
        else
            reader_error(r, "field \"%s\" must be an integer, not a %s", key,
                         json_type_name(v->type));
        return def;
    }
    if (x < min || x > max) {
        reader_error(r, "field \"%s\" = %lld is out of range (%d .. %d)", key, (long long)x,
                     min, max);
        return def;
    }
    return (int)x;
}

static int read_int(Reader *r, const char *const *keys, int required, int def, int min) {
    return read_int_max(r, keys, required, def, min, MAX_SIZE);
}

static float read_float(Reader *r, const JsonValue *v, const char *key, float def) {
    double x;
    if (!v || v->type == JSON_NULL) return def;
    if (json_number(v, &x) != 0 || !(x > 0) || x > 1e12 || !((float)x > 0)) {
        if (v->type == JSON_NUMBER)
            reader_error(r, "field \"%s\" = %g must be a positive number (at most 1e12, and "
                            "not too small for a float)", key, v->number);
        else
            reader_error(r, "field \"%s\" must be a positive number, not a %s", key,
                         json_type_name(v->type));
        return def;
    }
    return (float)x;
}

static int read_bool(Reader *r, const char *key, int def) {
    const JsonValue *v = json_get(r->root, key);
    int b;
    if (!v || v->type == JSON_NULL) return def;
    if (json_bool(v, &b) != 0)
        reader_error(r, "field \"%s\" must be true or false, not a %s", key,
                     json_type_name(v->type));
    return json_bool(v, &b) == 0 ? b : def;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------------------------
 * the fields
 * ---------------------------------------------------------------------------------- */

static ModelArch read_arch(Reader *r) {
    const char *arch = json_string(json_at(json_get(r->root, "architectures"), 0));
    const char *type = json_string(json_get(r->root, "model_type"));
    if ((arch && !strcmp(arch, "Qwen3MoeForCausalLM")) || (type && !strcmp(type, "qwen3_moe")))
        return ARCH_QWEN3_MOE;
    if ((arch && !strcmp(arch, "Qwen2MoeForCausalLM")) || (type && !strcmp(type, "qwen2_moe")))
        return ARCH_QWEN2_MOE;
    char a[80], t[80]; /* quoted safely: the names may hold anything, newlines included */
    json_printable(a, sizeof a, arch ? arch : "(none)", strlen(arch ? arch : "(none)"));
    json_printable(t, sizeof t, type ? type : "(none)", strlen(type ? type : "(none)"));
    reader_error(r, "architecture %s (model_type %s) is not supported: moekit runs "
                    "Qwen3MoeForCausalLM and Qwen2MoeForCausalLM", a, t);
    return ARCH_QWEN3_MOE;
}

/* Features of the Qwen configs that would change the model: refused rather than ignored,
 * so a checkpoint is never run as a different model in silence. */
static void reject_unsupported(Reader *r) {
    const JsonValue *scaling = json_get(r->root, "rope_scaling");
    const char *type = json_string(json_get(json_get(r->root, "rope_parameters"), "rope_type"));
    int sliding = 0;
    if (scaling && scaling->type != JSON_NULL)
        reader_error(r, "rope_scaling is not supported (moekit implements plain RoPE)");
    else if (type && strcmp(type, "default") != 0)
        reader_error(r, "rope_parameters.rope_type must be \"default\" (plain RoPE)");
    else if (json_bool(json_get(r->root, "use_sliding_window"), &sliding) == 0 && sliding)
        reader_error(r, "use_sliding_window is not supported (moekit attends to every position)");
}

/* 4.x: top-level rope_theta; 5.x: rope_parameters.rope_theta. */
static float read_rope_theta(Reader *r) {
    const JsonValue *v = json_get(r->root, "rope_theta");
    if (v && v->type != JSON_NULL) return read_float(r, v, "rope_theta", 10000.0f);
    v = json_get(json_get(r->root, "rope_parameters"), "rope_theta");
    return read_float(r, v, "rope_parameters.rope_theta", 10000.0f);
}

static unsigned char *read_mlp_only(Reader *r, int n_layers) {
    unsigned char *flags = calloc((size_t)(n_layers > 0 ? n_layers : 1), 1);
    const JsonValue *list = json_get(r->root, "mlp_only_layers");
    if (!flags || !list || list->type == JSON_NULL) return flags;
    if (list->type != JSON_ARRAY) {
        reader_error(r, "field \"mlp_only_layers\" must be a list, not a %s",
                     json_type_name(list->type));
        return flags;
    }
    for (size_t i = 0; i < json_len(list); i++) {
        int64_t l;
        if (json_int64(json_at(list, i), &l) != 0 || l < 0 || l >= n_layers) {
            reader_error(r, "mlp_only_layers[%zu] must be a layer index 0..%d", i, n_layers - 1);
            break;
        }
        flags[l] = 1;
    }
    return flags;
}

static void read_sizes(Reader *r, ModelConfig *c) {
    c->vocab_size = read_int(r, KEYS("vocab_size"), 1, 0, 1);
    c->hidden_size = read_int(r, KEYS("hidden_size"), 1, 0, 1);
    c->num_hidden_layers = read_int_max(r, KEYS("num_hidden_layers"), 1, 0, 1, MAX_LAYERS);
    c->num_attention_heads = read_int(r, KEYS("num_attention_heads"), 1, 1, 1);
    c->num_key_value_heads =
        read_int(r, KEYS("num_key_value_heads"), 0, c->num_attention_heads, 1);
    c->head_dim = read_int(r, KEYS("head_dim"), 0, c->hidden_size / c->num_attention_heads, 1);
    c->intermediate_size = read_int(r, KEYS("intermediate_size"), 0, 0, 0);
    c->num_experts = read_int(r, KEYS("num_experts", "num_local_experts"), 0, 0, 0);
    c->moe_intermediate_size = read_int(r, KEYS("moe_intermediate_size"), c->num_experts > 0, 0, 0);
    c->num_experts_per_tok = read_int(r, KEYS("num_experts_per_tok"), c->num_experts > 0, 0, 0);
    c->decoder_sparse_step = read_int(r, KEYS("decoder_sparse_step"), 0, 1, 1);
    c->max_position_embeddings = read_int(r, KEYS("max_position_embeddings"), 0, 4096, 1);
    c->shared_expert_intermediate_size =
        c->arch == ARCH_QWEN2_MOE ? read_int(r, KEYS("shared_expert_intermediate_size"), 0, 0, 0)
                                  : 0;
}

/* a x b elements of one matrix: the lessons index with int, so it must fit one. */
static long long matrix(Reader *r, const char *what, long long a, long long b) {
    if (r->failed) return 0; /* a may be an unchecked product */
    if (a * b > INT_MAX) /* a, b <= 1e8 each: no overflow in long long */
        reader_error(r, "%s = %lld x %lld is more than the %d elements a matrix may hold",
                     what, a, b, INT_MAX);
    return a * b;
}

/* Sizes that parse but cannot make a model. */
static void check_consistency(Reader *r, const ModelConfig *c) {
    if (c->head_dim < 1)
        reader_error(r, "head_dim is %d (hidden_size %d / num_attention_heads %d): give "
                        "\"head_dim\"", c->head_dim, c->hidden_size, c->num_attention_heads);
    if (c->num_experts == 0 && c->num_experts_per_tok > 0)
        reader_error(r, "num_experts_per_tok is %d but the model has no experts (num_experts "
                        "is 0 or missing)", c->num_experts_per_tok);
    long long C = c->hidden_size;
    matrix(r, "vocab_size x hidden_size (embed_tokens)", c->vocab_size, C);
    matrix(r, "num_attention_heads x head_dim x hidden_size (q_proj)",
           matrix(r, "num_attention_heads x head_dim", c->num_attention_heads, c->head_dim), C);
    matrix(r, "num_key_value_heads x head_dim x hidden_size (k_proj)",
           matrix(r, "num_key_value_heads x head_dim", c->num_key_value_heads, c->head_dim), C);
    matrix(r, "intermediate_size x hidden_size", c->intermediate_size, C);
    matrix(r, "moe_intermediate_size x hidden_size", c->moe_intermediate_size, C);
    matrix(r, "shared_expert_intermediate_size x hidden_size", c->shared_expert_intermediate_size, C);
    matrix(r, "num_experts x hidden_size (the router)", c->num_experts, C);
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        reader_error(r, "num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
                     c->num_attention_heads, c->num_key_value_heads);
    if (c->head_dim % 2 != 0)
        reader_error(r, "head_dim (%d) must be even: RoPE rotates pairs", c->head_dim);
    if (c->num_experts > 0 && (c->num_experts_per_tok < 1 || c->num_experts_per_tok > c->num_experts))
        reader_error(r, "num_experts_per_tok (%d) must be between 1 and num_experts (%d)",
                     c->num_experts_per_tok, c->num_experts);
    for (int l = 0; l < c->num_hidden_layers && !r->failed; l++) {
        int sparse = !c->mlp_only_layers[l] && c->num_experts > 0 &&
                     (l + 1) % c->decoder_sparse_step == 0;
        if (sparse && c->moe_intermediate_size < 1)
            reader_error(r, "moe_intermediate_size must be positive (layer %d is sparse)", l);
        if (!sparse && c->intermediate_size < 1)
            reader_error(r, "intermediate_size must be positive (layer %d is dense)", l);
    }
}

int config_parse(ModelConfig *c, const char *text, size_t len, const char *what, char *err,
                 size_t errlen) {
    char jerr[256];
    memset(c, 0, sizeof *c);
    JsonValue *root = json_parse(text, len, jerr, sizeof jerr);
    if (!root || root->type != JSON_OBJECT) {
        snprintf(err, errlen, "%s: %s", what, root ? "must hold a JSON object" : jerr);
        json_free(root);
        return -1;
    }
    Reader r = {root, what, err, errlen, 0};
    c->arch = read_arch(&r);
    read_sizes(&r, c);
    c->rms_norm_eps = read_float(&r, json_get(root, "rms_norm_eps"), "rms_norm_eps", 1e-6f);
    c->rope_theta = read_rope_theta(&r);
    reject_unsupported(&r);
    c->norm_topk_prob = read_bool(&r, "norm_topk_prob", 0);
    c->tie_word_embeddings = read_bool(&r, "tie_word_embeddings", 0);
    c->mlp_only_layers = read_mlp_only(&r, c->num_hidden_layers);
    if (!c->mlp_only_layers) reader_error(&r, "out of memory");
    if (!r.failed) check_consistency(&r, c);
    json_free(root);
    if (r.failed) config_free(c);
    return r.failed ? -1 : 0;
}

void config_free(ModelConfig *c) {
    free(c->mlp_only_layers);
    c->mlp_only_layers = NULL;
}
