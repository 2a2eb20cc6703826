/*
 * tokenizer.c: byte-level BPE from a Hugging Face tokenizer.json (see tokenizer.h).
 *
 * Supported, as Hugging Face `tokenizers` defines them (everything else is named and
 * rejected at load, never half-applied):
 *   model          {"type": "BPE"}: vocab, merges ("a b" strings or ["a", "b"] pairs),
 *                  no dropout, no byte_fallback, no subword prefix/suffix, no ignore_merges
 *   added_tokens   matched literally, leftmost-longest, before (normalized: false) or after
 *                  (normalized: true) the normalizer; no lstrip/rstrip/single_word
 *   normalizer     null, NFC (or a Sequence of NFC)
 *   pre_tokenizer  ByteLevel (use_regex: the GPT-2 pattern), or a Sequence of a Split
 *                  (Regex, behavior Isolated) and ByteLevel; no add_prefix_space
 *   decoder        null or ByteLevel
 */
#define _POSIX_C_SOURCE 200809L
#include "tokenizer.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "file.h"
#include "json.h"

#define MAX_FILE (1u << 30)   /* a tokenizer.json larger than 1 GiB is not one */
#define MAX_TOKENS (1 << 24)  /* ids are below this (the largest vocabularies have ~260k) */

/* GPT-2's pre-tokenizer pattern: what ByteLevel with use_regex: true splits by. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    char *content; /* NUL-terminated */
    size_t len;
    int id, special, normalized;
} AddedToken;

/* A merge: the pair (left, right) of token ids becomes id; lower rank merges first. */
typedef struct {
    uint64_t key; /* left << 32 | right; EMPTY_KEY for a free slot */
    uint32_t rank;
    int32_t id;
} MergeSlot;
#define EMPTY_KEY UINT64_MAX

struct Tokenizer {
    int size;             /* max id + 1 */
    char *bytes;          /* every token's decoded bytes, back to back */
    size_t *offset;       /* (size + 1): token id's bytes are bytes[offset[id] .. offset[id+1]) */
    unsigned char *known; /* (size): 1 when id is a token (the vocabulary may have holes) */
    unsigned char *is_special; /* (size) */
    int byte_id[256];     /* the token of each single byte */
    MergeSlot *merges;    /* open addressing, mask + 1 slots */
    size_t merge_mask;
    AddedToken *added;    /* sorted longest first, so the first match is the longest */
    int n_added, has_normalized_added;
    int nfc;              /* the normalizer is NFC */
    pcre2_code *split;    /* the pre-tokenizer's regex, NULL: the whole piece is one word */
};

/* ------------------------------------------------------------------------------------
 * ByteLevel: GPT-2's byte <-> printable character map
 * ---------------------------------------------------------------------------------- */

/* Bytes that print (33..126, 161..172, 174..255) stand for themselves; the other 68
 * (controls, space, 127..160, 173) become U+0100, U+0101 ... in byte order. So a space is
 * 'Ġ' (U+0120) and a newline 'Ċ' (U+010A) in vocab and merges. */
static int byte_to_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
    return 256 + n;
}

/* The inverse, for code points 0..323; -1 where a code point stands for no byte. */
static void char_to_byte_table(int table[324]) {
    for (int c = 0; c < 324; c++) table[c] = -1;
    for (int b = 0; b < 256; b++) table[byte_to_char(b)] = b;
}

/* ------------------------------------------------------------------------------------
 * loading: errors and the vocabulary's string -> id map (needed only while loading)
 * ---------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    int failed;
    int char_byte[324];
    /* vocab string -> id, open addressing over the JSON tree's strings */
    const JsonValue **slot_key;
    int *slot_id;
    size_t mask;
} Loader;

static int fail(Loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(Loader *L, const char *fmt, ...) {
    if (L->failed) return -1; /* the first problem is the one to fix */
    L->failed = 1;
    int n = snprintf(L->err, L->errlen, "%s: ", L->path);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < L->errlen) vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27, x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The slot of key s[0 .. len) in the vocab map: where it is, or the free slot for it. */
static size_t vocab_slot(const Loader *L, const char *s, size_t len) {
    size_t i = hash_bytes(s, len) & L->mask;
    for (const JsonValue *k; (k = L->slot_key[i]); i = (i + 1) & L->mask)
        if (k->key_length == len && !memcmp(k->key, s, len)) break;
    return i;
}

static int vocab_find(const Loader *L, const char *s, size_t len) {
    size_t i = vocab_slot(L, s, len);
    return L->slot_key[i] ? L->slot_id[i] : -1;
}

/* ------------------------------------------------------------------------------------
 * loading: model.vocab
 * ---------------------------------------------------------------------------------- */

/* A vocab string's bytes: each character through the ByteLevel map; a token with a
 * character outside the map decodes to its own UTF-8, as Hugging Face's decoder does.
 * Writes at most len bytes to out, returns how many. */
static size_t token_bytes(const Loader *L, const char *s, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0 || cp >= 324 || L->char_byte[cp] < 0) return memcpy(out, s, len), len;
        out[n++] = (char)L->char_byte[cp];
        i += (size_t)k;
    }
    return n;
}

/* The ids of vocab, and the largest id + 1 (added tokens may raise it later). */
static int read_vocab_ids(Loader *L, const JsonValue *vocab, int *max_id) {
    *max_id = -1;
    for (size_t i = 0; i < vocab->count; i++) {
        int64_t id;
        const JsonValue *v = &vocab->items[i];
        if (json_int64(v, &id) != 0 || id < 0 || id >= MAX_TOKENS)
            return fail(L, "model.vocab['%s']: the id must be an integer 0..%d", json_shown(v->key).s,
                        MAX_TOKENS - 1);
        if (id > *max_id) *max_id = (int)id;
    }
    return 0;
}

static int alloc_tables(Tokenizer *t, size_t byte_cap) {
    t->offset = calloc((size_t)t->size + 1, sizeof *t->offset);
    t->known = calloc((size_t)t->size, 1);
    t->is_special = calloc((size_t)t->size, 1);
    t->bytes = malloc(byte_cap ? byte_cap : 1);
    return t->offset && t->known && t->is_special && t->bytes ? 0 : -1;
}

/* Fills the vocab map and each token's bytes. Token bytes are laid out in id order, so
 * first each id's length, then the offsets, then the bytes. */
static int read_vocab(Loader *L, Tokenizer *t, const JsonValue *vocab) {
    size_t total = 0;
    for (size_t i = 0; i < vocab->count; i++) total += vocab->items[i].key_length;
    size_t cap = 1;
    while (cap < 2 * vocab->count + 2) cap *= 2;
    L->mask = cap - 1;
    L->slot_key = calloc(cap, sizeof *L->slot_key);
    L->slot_id = malloc(cap * sizeof *L->slot_id);
    size_t *len = calloc((size_t)t->size, sizeof *len);
    char *scratch = malloc(total + 1);
    if (!L->slot_key || !L->slot_id || !len || !scratch)
        return free(len), free(scratch), fail(L, "out of memory for the vocabulary");
    int rc = 0;
    for (size_t i = 0; i < vocab->count && rc == 0; i++) {
        const JsonValue *v = &vocab->items[i];
        int id = (int)v->integer;
        if (v->key_length == 0) rc = fail(L, "model.vocab: a token is the empty string");
        else if (t->known[id])
            rc = fail(L, "model.vocab['%s']: id %d is given to two tokens", json_shown(v->key).s, id);
        size_t s = vocab_slot(L, v->key, v->key_length);
        L->slot_key[s] = v, L->slot_id[s] = id;
        t->known[id] = 1;
        len[id] = token_bytes(L, v->key, v->key_length, scratch);
    }
    free(scratch);
    if (rc != 0) return free(len), rc;
    for (int id = 0; id < t->size; id++) t->offset[id + 1] = t->offset[id] + len[id];
    free(len);
    return 0;
}

/* Writes each vocab token's bytes at its offset (after read_vocab sized them). */
static void write_vocab_bytes(const Loader *L, Tokenizer *t, const JsonValue *vocab) {
    for (size_t i = 0; i < vocab->count; i++) {
        const JsonValue *v = &vocab->items[i];
        token_bytes(L, v->key, v->key_length, t->bytes + t->offset[v->integer]);
    }
}

/* ------------------------------------------------------------------------------------
 * loading: model.merges
 * ---------------------------------------------------------------------------------- */

static MergeSlot *merge_slot(const MergeSlot *slots, size_t mask, uint64_t key) {
    size_t i = hash_u64(key) & mask;
    while (slots[i].key != EMPTY_KEY && slots[i].key != key) i = (i + 1) & mask;
    return (MergeSlot *)&slots[i];
}

/* merges[rank]'s two tokens, as (pointer, length) pairs into the JSON tree. */
static int merge_parts(Loader *L, const JsonValue *m, size_t rank, const char **a, size_t *alen,
                       const char **b, size_t *blen) {
    if (m->type == JSON_STRING) { /* "Ġ t": the one space separates the two tokens */
        const char *sp = memchr(m->string, ' ', m->length);
        size_t at = sp ? (size_t)(sp - m->string) : 0;
        if (!sp || at == 0 || at + 1 == m->length || memchr(sp + 1, ' ', m->length - at - 1))
            return fail(L, "model.merges[%zu]: '%s' is not two tokens separated by one space", rank,
                        json_shown(m->string).s);
        *a = m->string, *alen = (size_t)(sp - m->string);
        *b = sp + 1, *blen = m->length - *alen - 1;
        return 0;
    }
    if (m->type == JSON_ARRAY && m->count == 2 && m->items[0].type == JSON_STRING &&
        m->items[1].type == JSON_STRING) { /* ["Ġ", "t"] (tokenizers >= 0.20) */
        *a = m->items[0].string, *alen = m->items[0].length;
        *b = m->items[1].string, *blen = m->items[1].length;
        return 0;
    }
    return fail(L, "model.merges[%zu]: a merge is a string \"a b\" or an array [\"a\", \"b\"], "
                   "not this %s", rank, json_type_name(m->type));
}

static int read_merges(Loader *L, Tokenizer *t, const JsonValue *merges) {
    size_t cap = 1;
    while (cap < 2 * merges->count + 2) cap *= 2;
    t->merge_mask = cap - 1;
    t->merges = malloc(cap * sizeof *t->merges);
    char *joined = malloc(1);
    size_t joined_cap = 1;
    if (!t->merges || !joined) return free(joined), fail(L, "out of memory for the merges");
    for (size_t i = 0; i < cap; i++) t->merges[i].key = EMPTY_KEY;
    int rc = 0;
    for (size_t r = 0; r < merges->count && rc == 0; r++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if ((rc = merge_parts(L, &merges->items[r], r, &a, &alen, &b, &blen)) != 0) break;
        if (alen + blen > joined_cap) {
            char *p = realloc(joined, alen + blen);
            if (!p) { rc = fail(L, "out of memory for the merges"); break; }
            joined = p, joined_cap = alen + blen;
        }
        memcpy(joined, a, alen), memcpy(joined + alen, b, blen);
        int left = vocab_find(L, a, alen), right = vocab_find(L, b, blen);
        int id = vocab_find(L, joined, alen + blen);
        const char *missing = left < 0 ? a : right < 0 ? b : id < 0 ? joined : NULL;
        size_t missing_len = left < 0 ? alen : right < 0 ? blen : alen + blen;
        if (missing) {
            char shown[160];
            json_printable(shown, sizeof shown, missing, missing_len);
            rc = fail(L, "model.merges[%zu]: '%s' is not in model.vocab", r, shown);
            break;
        }
        MergeSlot *s = merge_slot(t->merges, t->merge_mask, (uint64_t)left << 32 | (uint32_t)right);
        if (s->key != EMPTY_KEY) continue; /* a repeated merge: the first (lowest) rank counts */
        s->key = (uint64_t)left << 32 | (uint32_t)right, s->rank = (uint32_t)r, s->id = id;
    }
    free(joined);
    return rc;
}

/* Each byte's own token: the merge loop starts from these. */
static int read_byte_ids(Loader *L, Tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char s[4];
        int c = byte_to_char(b), n = c < 0x80 ? 1 : 2;
        if (n == 1) s[0] = (char)c;
        else s[0] = (char)(0xC0 | c >> 6), s[1] = (char)(0x80 | (c & 0x3F));
        if ((t->byte_id[b] = vocab_find(L, s, (size_t)n)) < 0)
            return fail(L, "model.vocab has no token for byte 0x%02x ('%.*s'): not a byte-level BPE "
                           "vocabulary", b, n, s);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * loading: model, added_tokens, normalizer, pre_tokenizer, decoder
 * ---------------------------------------------------------------------------------- */

static const char *type_of(const JsonValue *v) { return json_string(json_get(v, "type")); }

/* A model field that must be absent or hold its neutral value. */
static int neutral(Loader *L, const JsonValue *model, const char *key, const char *what) {
    const JsonValue *v = json_get(model, key);
    int b;
    double x;
    if (!v || v->type == JSON_NULL || (json_bool(v, &b) == 0 && !b) ||
        (json_number(v, &x) == 0 && x == 0) || (v->type == JSON_STRING && v->length == 0))
        return 0;
    return fail(L, "model.%s is set: %s is not supported", key, what);
}

static int read_model(Loader *L, Tokenizer *t, const JsonValue *root, const JsonValue *added) {
    const JsonValue *model = json_get(root, "model");
    const char *type = type_of(model);
    if (!model || model->type != JSON_OBJECT) return fail(L, "no \"model\" object");
    if (!type || strcmp(type, "BPE"))
        return fail(L, "model.type is '%s': only byte-level BPE (\"BPE\") is supported",
                    type ? json_shown(type).s : "(missing)");
    if (neutral(L, model, "dropout", "BPE dropout") ||
        neutral(L, model, "byte_fallback", "byte fallback") ||
        neutral(L, model, "continuing_subword_prefix", "a subword prefix") ||
        neutral(L, model, "end_of_word_suffix", "a word suffix") ||
        neutral(L, model, "ignore_merges", "ignore_merges (whole words looked up first)"))
        return -1;
    const JsonValue *vocab = json_get(model, "vocab"), *merges = json_get(model, "merges");
    if (!vocab || vocab->type != JSON_OBJECT) return fail(L, "model.vocab is missing or not an object");
    if (!merges || merges->type != JSON_ARRAY) return fail(L, "model.merges is missing or not an array");
    int max_id;
    if (read_vocab_ids(L, vocab, &max_id)) return -1;
    for (size_t i = 0; i < json_len(added); i++) {
        int64_t id;
        if (json_int64(json_get(json_at(added, i), "id"), &id) != 0 || id < 0 || id >= MAX_TOKENS)
            return fail(L, "added_tokens[%zu]: \"id\" must be an integer 0..%d", i, MAX_TOKENS - 1);
        if (id > max_id) max_id = (int)id;
    }
    t->size = max_id + 1;
    size_t total = 0;
    for (size_t i = 0; i < vocab->count; i++) total += vocab->items[i].key_length;
    if (t->size == 0) return fail(L, "model.vocab is empty");
    if (alloc_tables(t, total) != 0) return fail(L, "out of memory for %d tokens", t->size);
    if (read_vocab(L, t, vocab) || read_byte_ids(L, t)) return -1;
    write_vocab_bytes(L, t, vocab);
    return read_merges(L, t, merges);
}

static int by_length_desc(const void *a, const void *b) {
    size_t x = ((const AddedToken *)a)->len, y = ((const AddedToken *)b)->len;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int read_added_token(Loader *L, const JsonValue *v, size_t i, AddedToken *a) {
    const JsonValue *content = json_get(v, "content");
    int b;
    if (!content || content->type != JSON_STRING || content->length == 0)
        return fail(L, "added_tokens[%zu]: \"content\" must be a non-empty string", i);
    static const char *const UNSUPPORTED[] = {"lstrip", "rstrip", "single_word"};
    for (int k = 0; k < 3; k++)
        if (json_bool(json_get(v, UNSUPPORTED[k]), &b) == 0 && b)
            return fail(L, "added_tokens[%zu] '%s': %s is not supported", i, json_shown(content->string).s,
                        UNSUPPORTED[k]);
    a->id = (int)json_get(v, "id")->integer;
    a->special = json_bool(json_get(v, "special"), &b) == 0 && b;
    /* Hugging Face's default: a special token is matched before normalization */
    a->normalized = json_bool(json_get(v, "normalized"), &b) == 0 ? b : !a->special;
    a->len = content->length;
    a->content = malloc(a->len + 1);
    if (!a->content) return fail(L, "out of memory");
    memcpy(a->content, content->string, a->len + 1);
    return 0;
}

/* Added tokens, and their bytes in the token table (they decode to their content). The
 * table was sized for the vocab's bytes; added content goes in a second buffer. */
static int read_added(Loader *L, Tokenizer *t, const JsonValue *added) {
    size_t n = json_len(added);
    if (added && added->type != JSON_ARRAY && added->type != JSON_NULL)
        return fail(L, "added_tokens is not an array");
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return fail(L, "out of memory");
    for (size_t i = 0; i < n; i++, t->n_added++)
        if (read_added_token(L, json_at(added, i), i, &t->added[i])) return -1;
    for (int i = 0; i < t->n_added; i++) {
        t->has_normalized_added |= t->added[i].normalized;
        t->is_special[t->added[i].id] = (unsigned char)t->added[i].special;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, by_length_desc);
    return 0;
}

/* Rebuilds the byte table with each added token's content as its bytes (an added token
 * that reuses a vocab id decodes to its content). */
static int place_added_bytes(Loader *L, Tokenizer *t) {
    size_t *len = malloc(sizeof *len * (size_t)t->size), total = 0;
    size_t *offset = malloc(sizeof *offset * ((size_t)t->size + 1));
    if (!len || !offset) return free(len), free(offset), fail(L, "out of memory");
    for (int id = 0; id < t->size; id++) len[id] = t->offset[id + 1] - t->offset[id];
    for (int i = 0; i < t->n_added; i++) len[t->added[i].id] = t->added[i].len;
    offset[0] = 0;
    for (int id = 0; id < t->size; id++) offset[id + 1] = offset[id] + len[id];
    total = offset[t->size];
    char *bytes = malloc(total ? total : 1);
    if (!bytes) return free(len), free(offset), fail(L, "out of memory");
    for (int id = 0; id < t->size; id++) /* vocab tokens; added ones are overwritten next */
        if (len[id] == t->offset[id + 1] - t->offset[id])
            memcpy(bytes + offset[id], t->bytes + t->offset[id], len[id]);
    for (int i = 0; i < t->n_added; i++) {
        memcpy(bytes + offset[t->added[i].id], t->added[i].content, t->added[i].len);
        t->known[t->added[i].id] = 1;
    }
    free(len), free(t->bytes), free(t->offset);
    t->bytes = bytes, t->offset = offset;
    return 0;
}

static int read_normalizer(Loader *L, Tokenizer *t, const JsonValue *n) {
    if (!n || n->type == JSON_NULL) return 0;
    const char *type = type_of(n);
    if (type && !strcmp(type, "NFC")) return t->nfc = 1, 0;
    if (type && !strcmp(type, "Sequence")) {
        const JsonValue *list = json_get(n, "normalizers");
        for (size_t i = 0; i < json_len(list); i++)
            if (read_normalizer(L, t, json_at(list, i))) return -1;
        if (list && list->type == JSON_ARRAY) return 0;
        return fail(L, "normalizer: a Sequence without \"normalizers\"");
    }
    return fail(L, "normalizer type '%s' is not supported (NFC or none)",
                type ? json_shown(type).s : "(missing)");
}

/* Oniguruma (which Hugging Face compiles patterns with) reads \s as Unicode White_Space;
 * PCRE2's \s misses U+0085 (NEL). Spell it out. */
static char *onig_to_pcre2(const char *p, size_t len) {
    char *out = malloc(len * 8 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' && i + 1 < len && (p[i + 1] == 's' || p[i + 1] == 'S')) {
            o += sprintf(o, "\\%c{White_Space}", p[i + 1] == 's' ? 'p' : 'P');
            i++;
        } else if (p[i] == '\\' && i + 1 < len) {
            *o++ = p[i++];
            *o++ = p[i];
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

static int compile_split(Loader *L, Tokenizer *t, const char *pattern, size_t len) {
    char *pcre = onig_to_pcre2(pattern, len);
    if (!pcre) return fail(L, "out of memory");
    int code;
    PCRE2_SIZE at;
    t->split = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                             &at, NULL);
    free(pcre);
    if (!t->split) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return fail(L, "pre_tokenizer: the Split regex '%s' does not compile with PCRE2: %s",
                    json_shown(pattern).s, (const char *)msg);
    }
    pcre2_jit_compile(t->split, PCRE2_JIT_COMPLETE); /* faster when the JIT is there */
    return 0;
}

static int read_byte_level(Loader *L, Tokenizer *t, const JsonValue *p, int has_split) {
    int b;
    if (json_bool(json_get(p, "add_prefix_space"), &b) == 0 && b)
        return fail(L, "pre_tokenizer: ByteLevel add_prefix_space is not supported");
    int use_regex = json_bool(json_get(p, "use_regex"), &b) == 0 ? b : 1;
    if (use_regex && has_split) return fail(L, "pre_tokenizer: a Split and a ByteLevel regex both");
    return use_regex ? compile_split(L, t, GPT2_PATTERN, strlen(GPT2_PATTERN)) : 0;
}

static int read_split(Loader *L, Tokenizer *t, const JsonValue *p) {
    const char *behavior = json_string(json_get(p, "behavior"));
    const JsonValue *regex = json_get(json_get(p, "pattern"), "Regex");
    int invert;
    if (!regex || regex->type != JSON_STRING)
        return fail(L, "pre_tokenizer: only a Split with a \"Regex\" pattern is supported");
    if (!behavior || strcmp(behavior, "Isolated"))
        return fail(L, "pre_tokenizer: Split behavior '%s' is not supported (Isolated)",
                    behavior ? json_shown(behavior).s : "(missing)");
    if (json_bool(json_get(p, "invert"), &invert) == 0 && invert)
        return fail(L, "pre_tokenizer: Split invert is not supported");
    return compile_split(L, t, regex->string, regex->length);
}

static int read_pre_tokenizer(Loader *L, Tokenizer *t, const JsonValue *p) {
    const char *type = type_of(p);
    if (type && !strcmp(type, "ByteLevel")) return read_byte_level(L, t, p, 0);
    const JsonValue *list = json_get(p, "pretokenizers");
    if (!type || strcmp(type, "Sequence") || json_len(list) != 2 ||
        !type_of(json_at(list, 0)) || strcmp(type_of(json_at(list, 0)), "Split") ||
        !type_of(json_at(list, 1)) || strcmp(type_of(json_at(list, 1)), "ByteLevel"))
        return fail(L, "pre_tokenizer: only ByteLevel, or a Sequence of a Split and ByteLevel, is "
                       "supported (this one is '%s')", type ? json_shown(type).s : "(missing)");
    if (read_split(L, t, json_at(list, 0))) return -1;
    return read_byte_level(L, t, json_at(list, 1), 1);
}

static int read_decoder(Loader *L, const JsonValue *d) {
    const char *type = type_of(d);
    if (!d || d->type == JSON_NULL || (type && !strcmp(type, "ByteLevel"))) return 0;
    return fail(L, "decoder type '%s' is not supported (ByteLevel)", type ? json_shown(type).s : "(missing)");
}

Tokenizer *tokenizer_load(const char *path, char *err, size_t errlen) {
    size_t len;
    char *text = read_file(path, MAX_FILE, &len, err, errlen);
    if (!text) return NULL;
    Tokenizer *t = tokenizer_parse(text, len, path, err, errlen);
    free(text);
    return t;
}

Tokenizer *tokenizer_parse(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    Loader L = {.path = name, .err = err, .errlen = errlen};
    char_to_byte_table(L.char_byte);
    char jerr[256];
    JsonValue *root = json_parse(text, len, jerr, sizeof jerr);
    if (!root) return fail(&L, "%s", jerr), NULL;
    Tokenizer *t = calloc(1, sizeof *t);
    const JsonValue *added = json_get(root, "added_tokens");
    if (!t) fail(&L, "out of memory");
    else if (root->type != JSON_OBJECT) fail(&L, "not a JSON object");
    else if (!read_model(&L, t, root, added) && !read_added(&L, t, added) &&
             !place_added_bytes(&L, t) &&
             !read_normalizer(&L, t, json_get(root, "normalizer")) &&
             !read_pre_tokenizer(&L, t, json_get(root, "pre_tokenizer")))
        read_decoder(&L, json_get(root, "decoder"));
    free(L.slot_key);
    free(L.slot_id);
    json_free(root);
    if (L.failed) return tokenizer_free(t), NULL;
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->bytes);
    free(t->offset);
    free(t->known);
    free(t->is_special);
    free(t->merges);
    if (t->split) pcre2_code_free(t->split);
    free(t);
}

/* ------------------------------------------------------------------------------------
 * encode: the merge loop
 * ---------------------------------------------------------------------------------- */

/* Scratch for one encode call, grown to the longest word. */
typedef struct {
    int *sym, *prev, *next; /* (n): the word as a linked list of tokens; sym -1: merged away */
    uint64_t *heap;         /* (3n): candidate merges, rank << 32 | position, smallest first */
    size_t cap, heap_n;
    pcre2_match_data *match;
} Scratch;

int token_ids_push(TokenIds *out, int id) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 64;
        int *p = realloc(out->ids, cap * sizeof *p);
        if (!p) return -1;
        out->ids = p, out->cap = cap;
    }
    out->ids[out->n++] = id;
    return 0;
}

static int scratch_reserve(Scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    free(s->sym), free(s->prev), free(s->next), free(s->heap);
    s->sym = malloc(n * sizeof *s->sym), s->prev = malloc(n * sizeof *s->prev);
    s->next = malloc(n * sizeof *s->next), s->heap = malloc(3 * n * sizeof *s->heap);
    s->cap = s->sym && s->prev && s->next && s->heap ? n : 0;
    return s->cap ? 0 : -1;
}

static void heap_push(Scratch *s, uint64_t x) {
    size_t i = s->heap_n++;
    while (i > 0 && s->heap[(i - 1) / 2] > x) s->heap[i] = s->heap[(i - 1) / 2], i = (i - 1) / 2;
    s->heap[i] = x;
}

static uint64_t heap_pop(Scratch *s) {
    uint64_t top = s->heap[0], x = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1] < s->heap[c]) c++;
        if (s->heap[c] >= x) break;
        s->heap[i] = s->heap[c], i = c;
    }
    if (n) s->heap[i] = x;
    return top;
}

static const MergeSlot *find_merge(const Tokenizer *t, int left, int right) {
    const MergeSlot *m = merge_slot(t->merges, t->merge_mask, (uint64_t)left << 32 | (uint32_t)right);
    return m->key == EMPTY_KEY ? NULL : m;
}

/* The merge of the pair starting at i, if there is one, goes on the heap. */
static void consider(const Tokenizer *t, Scratch *s, int i) {
    if (i < 0 || s->next[i] < 0) return;
    const MergeSlot *m = find_merge(t, s->sym[i], s->sym[s->next[i]]);
    if (m) heap_push(s, (uint64_t)m->rank << 32 | (uint32_t)i);
}

/* BPE on one word (w[0 .. n), a pre-token's bytes): start from one token per byte, then
 * merge the adjacent pair of lowest rank (leftmost on a tie), again and again, until no
 * pair is in merges. A heap keeps it O(n log n); an entry is stale when its pair has
 * changed since it was pushed. Hugging Face's Word::merge_all does the same. */
static int bpe_word(const Tokenizer *t, Scratch *s, const unsigned char *w, size_t n, TokenIds *out) {
    if (scratch_reserve(s, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_id[w[i]];
        s->prev[i] = (int)i - 1;
        s->next[i] = i + 1 < n ? (int)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) consider(t, s, (int)i);
    while (s->heap_n) {
        uint64_t top = heap_pop(s);
        int i = (int)(uint32_t)top, j = s->next[i];
        if (s->sym[i] < 0 || j < 0) continue;
        const MergeSlot *m = find_merge(t, s->sym[i], s->sym[j]);
        if (!m || m->rank != top >> 32) continue; /* stale */
        s->sym[i] = m->id, s->sym[j] = -1;
        s->next[i] = s->next[j];
        if (s->next[j] >= 0) s->prev[s->next[j]] = i;
        consider(t, s, s->prev[i]);
        consider(t, s, i);
    }
    for (int i = 0; i >= 0; i = s->next[i])
        if (token_ids_push(out, s->sym[i])) return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * encode: pre-tokenizer, normalizer, added tokens
 * ---------------------------------------------------------------------------------- */

/* The regex's matches are words, and so is any text between them (Split "Isolated"). */
static int pre_tokenize(const Tokenizer *t, Scratch *s, const char *p, size_t len, TokenIds *out,
                        char *err, size_t errlen) {
    const unsigned char *u = (const unsigned char *)p;
    if (!t->split) return len ? bpe_word(t, s, u, len, out) : 0;
    size_t at = 0, done = 0;
    while (at < len) {
        int rc = pcre2_match(t->split, u, len, at, PCRE2_NO_UTF_CHECK, s->match, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            snprintf(err, errlen, "the pre-tokenizer regex failed at byte %zu: %s", at, (const char *)msg);
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match);
        if (ov[1] == ov[0]) { /* an empty match splits nothing: step over one character */
            at = ov[0] + 1;
            while (at < len && (u[at] & 0xC0) == 0x80) at++;
            continue;
        }
        if ((ov[0] > done && bpe_word(t, s, u + done, ov[0] - done, out)) ||
            bpe_word(t, s, u + ov[0], ov[1] - ov[0], out))
            return snprintf(err, errlen, "out of memory"), -1;
        at = done = ov[1];
    }
    if (done < len && bpe_word(t, s, u + done, len - done, out))
        return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

/* The next added token in p[from .. len) of the given kind (normalized or not): its start
 * in *start, NULL when there is none. Leftmost, then longest (added is sorted so). */
static const AddedToken *next_added(const Tokenizer *t, const char *p, size_t len, size_t from,
                                    int normalized, size_t *start) {
    for (size_t i = from; i < len; i++)
        for (int k = 0; k < t->n_added; k++) {
            const AddedToken *a = &t->added[k];
            if (a->normalized == normalized && a->content[0] == p[i] && a->len <= len - i &&
                !memcmp(a->content, p + i, a->len))
                return *start = i, a;
        }
    return NULL;
}

static int encode_normalized(const Tokenizer *t, Scratch *s, const char *p, size_t len, TokenIds *out,
                             char *err, size_t errlen) {
    size_t at = 0, start;
    const AddedToken *a;
    while (t->has_normalized_added && (a = next_added(t, p, len, at, 1, &start))) {
        if (pre_tokenize(t, s, p + at, start - at, out, err, errlen)) return -1;
        if (token_ids_push(out, a->id)) return snprintf(err, errlen, "out of memory"), -1;
        at = start + a->len;
    }
    return pre_tokenize(t, s, p + at, len - at, out, err, errlen);
}

/* A stretch of text between added tokens: normalized (NFC), then split and merged. */
static int encode_piece(const Tokenizer *t, Scratch *s, const char *p, size_t len, TokenIds *out,
                        char *err, size_t errlen) {
    if (len == 0) return 0;
    size_t ascii = 0;
    while (ascii < len && !(p[ascii] & 0x80)) ascii++;
    if (!t->nfc || ascii == len) /* ASCII is its own NFC */
        return encode_normalized(t, s, p, len, out, err, errlen);
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return snprintf(err, errlen, "NFC: %s", utf8proc_errmsg(n)), -1;
    int rc = encode_normalized(t, s, (const char *)nfc, (size_t)n, out, err, errlen);
    free(nfc);
    return rc;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, TokenIds *out, char *err,
                     size_t errlen) {
    size_t bad = json_utf8_check(text, len);
    if (bad < len) {
        snprintf(err, errlen, "invalid UTF-8 at byte %zu (0x%02x)", bad, (unsigned char)text[bad]);
        return -1;
    }
    Scratch s = {0};
    if (t->split && !(s.match = pcre2_match_data_create_from_pattern(t->split, NULL)))
        return snprintf(err, errlen, "out of memory"), -1;
    size_t at = 0, start;
    const AddedToken *a;
    int rc = 0;
    while (rc == 0 && (a = next_added(t, text, len, at, 0, &start))) {
        rc = encode_piece(t, &s, text + at, start - at, out, err, errlen);
        if (rc == 0 && token_ids_push(out, a->id)) rc = (snprintf(err, errlen, "out of memory"), -1);
        at = start + a->len;
    }
    if (rc == 0) rc = encode_piece(t, &s, text + at, len - at, out, err, errlen);
    free(s.sym), free(s.prev), free(s.next), free(s.heap);
    if (s.match) pcre2_match_data_free(s.match);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * decode and lookups
 * ---------------------------------------------------------------------------------- */

const char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->size || !t->known[id]) return NULL;
    *len = t->offset[id + 1] - t->offset[id];
    return t->bytes + t->offset[id];
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len, char *err,
                       size_t errlen) {
    size_t total = 0, k;
    for (size_t i = 0; i < n; i++) {
        if (!tokenizer_token_bytes(t, ids[i], &k)) {
            snprintf(err, errlen, "%d is not a token id of this tokenizer (0..%d)", ids[i], t->size - 1);
            return NULL;
        }
        total += k;
    }
    char *text = malloc(total + 1), *o = text;
    if (!text) return snprintf(err, errlen, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
        const char *b = tokenizer_token_bytes(t, ids[i], &k);
        memcpy(o, b, k), o += k;
    }
    *o = '\0';
    *len = total;
    return text;
}

int tokenizer_size(const Tokenizer *t) { return t->size; }

int tokenizer_added_id(const Tokenizer *t, const char *s) {
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i].content, s)) return t->added[i].id;
    return -1;
}

int tokenizer_is_special(const Tokenizer *t, int id) {
    return id >= 0 && id < t->size && t->is_special[id];
}

/* ------------------------------------------------------------------------------------
 * UTF-8 repair for output
 * ---------------------------------------------------------------------------------- */

/* How many bytes of s[0 .. len) are a valid UTF-8 character or the start of one (the
 * maximal valid part), and in *total the length the character needs (0: s[0] is no lead
 * byte). The second byte's range excludes overlongs, surrogates and > U+10FFFF. */
static size_t utf8_prefix(const unsigned char *s, size_t len, size_t *total) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    *total = need;
    if (need <= 1) return need;
    size_t k = 1;
    if (k < len && s[1] >= lo && s[1] <= hi) k++;
    else return 1;
    while (k < need && k < len && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

size_t utf8_lossy(const char *s, size_t len, int final, char *out, size_t *used) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t total, k = utf8_prefix(u + i, len - i, &total);
        if (k == total) { /* a whole character */
            memcpy(out + o, s + i, k), o += k, i += k;
            continue;
        }
        if (!final && i + k == len && total > 0) break; /* may complete with more bytes */
        memcpy(out + o, "\xEF\xBF\xBD", 3), o += 3; /* U+FFFD */
        i += k ? k : 1;
    }
    if (used) *used = i;
    return o;
}
