/*
 * Lesson 11: byte-level BPE, the tokenizer of GPT-2, Qwen2 and Qwen3.
 *
 *   bytes_to_unicode   byte b -> the printable character that stands for it (256)
 *   bpe_word           a piece's bytes -> one token per byte -> merges by rank -> ids
 *   bpe_split_added    text -> spans: added tokens ("<|im_end|>") and the text between
 *   bpe_encode         text -> ids: added tokens first, then pieces through bpe_word
 *   bpe_decode         ids -> bytes: each character back to its byte
 *
 * bpe_char_id, bpe_merge_rank, bpe_pretokenize and utf8_next are ready-made (bpe.h).
 * Test it: make check LESSON=11   (or `make check` in this directory)
 *
 * Python (GPT-2's src/encoder.py):  word = [byte_encoder[b] for b in piece]; then
 *   while pairs: bigram = min(pairs, key=lambda p: bpe_ranks.get(p, inf)); merge it
 */
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

/* ------------------------------------------------------------------------------------
 * the byte map
 * ---------------------------------------------------------------------------------- */

static int printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void bytes_to_unicode(int cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) cp[b] = printable(b) ? b : 256 + n++;
}

/* ------------------------------------------------------------------------------------
 * merges by rank
 * ---------------------------------------------------------------------------------- */

/* The position of the adjacent pair of lowest rank in ids[0 .. n), -1 when none merges;
 * *rank gets its rank. */
static int best_pair(const BpeVocab *v, const int *ids, int n, int *rank) {
    int at = -1;
    for (int i = 0; i + 1 < n; i++) {
        int r = bpe_merge_rank(v, ids[i], ids[i + 1]);
        if (r >= 0 && (at < 0 || r < *rank)) at = i, *rank = r;
    }
    return at;
}

int bpe_word(const BpeVocab *v, const unsigned char *w, int len, int *ids) {
    int cp[256];
    bytes_to_unicode(cp);
    for (int i = 0; i < len; i++) ids[i] = bpe_char_id(v, cp[w[i]]);
    int n = len, rank = 0;
    for (int i; (i = best_pair(v, ids, n, &rank)) >= 0; n--) {
        ids[i] = v->merges[3 * rank + 2];
        memmove(ids + i + 1, ids + i + 2, sizeof(int) * (size_t)(n - i - 2));
    }
    return n;
}

/* ------------------------------------------------------------------------------------
 * added tokens, encode, decode
 * ---------------------------------------------------------------------------------- */

/* The index in v->added of the longest added token at text[0 .. len), -1 if none. */
static int added_at(const BpeVocab *v, const char *text, int len) {
    int best = -1, best_len = 0;
    for (int a = 0; a < v->n_added; a++) {
        int n = (int)strlen(v->added[a]);
        if (n > best_len && n <= len && memcmp(text, v->added[a], (size_t)n) == 0)
            best = a, best_len = n;
    }
    return best;
}

static int put_span(int *spans, int n, int start, int len, int id) {
    spans[3 * n] = start, spans[3 * n + 1] = len, spans[3 * n + 2] = id;
    return n + 1;
}

int bpe_split_added(const BpeVocab *v, const char *text, int len, int *spans) {
    int n = 0, start = 0;
    for (int i = 0; i < len;) {
        int a = added_at(v, text + i, len - i);
        if (a < 0) {
            i++;
            continue;
        }
        if (i > start) n = put_span(spans, n, start, i - start, -1);
        int alen = (int)strlen(v->added[a]);
        n = put_span(spans, n, i, alen, v->added_id[a]);
        start = i += alen;
    }
    if (start < len) n = put_span(spans, n, start, len - start, -1);
    return n;
}

/* text[0 .. len), no added token in it: its pieces through bpe_word */
static int encode_text(const BpeVocab *v, const char *text, int len, int *starts, int *ids) {
    int n = 0, pieces = bpe_pretokenize(text, len, starts);
    for (int p = 0; p < pieces; p++)
        n += bpe_word(v, (const unsigned char *)text + starts[p], starts[p + 1] - starts[p],
                      ids + n);
    return n;
}

int bpe_encode(const BpeVocab *v, const char *text, int len, int *ids) {
    int *spans = malloc(sizeof(int) * (3 * (size_t)len + 1));
    int *starts = malloc(sizeof(int) * ((size_t)len + 1));
    int n = 0, n_spans = spans && starts ? bpe_split_added(v, text, len, spans) : 0;
    for (int s = 0; s < n_spans; s++) {
        const int *sp = spans + 3 * s;
        if (sp[2] >= 0) ids[n++] = sp[2];
        else n += encode_text(v, text + sp[0], sp[1], starts, ids + n);
    }
    free(spans);
    free(starts);
    return n;
}

int bpe_decode(const BpeVocab *v, const int *ids, int n, char *out) {
    int cp[256], byte_of[324], len = 0;
    bytes_to_unicode(cp);
    for (int b = 0; b < 256; b++) byte_of[cp[b]] = b; /* the inverse map (cp < 324) */
    for (int i = 0; i < n; i++) {
        const char *s = NULL;
        for (int a = 0; a < v->n_added; a++)
            if (v->added_id[a] == ids[i]) s = v->added[a];
        if (s) { /* an added token is its text */
            memcpy(out + len, s, strlen(s));
            len += (int)strlen(s);
            continue;
        }
        for (s = v->token[ids[i]]; *s;) {
            int c;
            s += utf8_next(s, &c);
            out[len++] = (char)byte_of[c];
        }
    }
    return len;
}
