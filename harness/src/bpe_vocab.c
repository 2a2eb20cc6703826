/*
 * bpe_vocab.c: lesson 11's ready-made parts: look-ups in a small vocabulary (linear
 * scans: the lesson's vocabulary has 512 tokens and 256 merges) and the lesson's
 * whitespace pre-tokenizer.
 */
#include <string.h>

#include "bpe.h"
#include "json.h"

/* ------------------------------------------------------------------------------------
 * look-ups
 * ---------------------------------------------------------------------------------- */

int bpe_char_id(const BpeVocab *v, int cp) {
    if (cp < 0 || cp >= 0x110000) return -1;
    char s[5];
    s[json_utf8_put(s, (unsigned long)cp)] = '\0';
    for (int id = 0; id < v->n_vocab; id++)
        if (strcmp(v->token[id], s) == 0) return id;
    return -1;
}

int bpe_merge_rank(const BpeVocab *v, int left, int right) {
    for (int r = 0; r < v->n_merges; r++)
        if (v->merges[3 * r] == left && v->merges[3 * r + 1] == right) return r;
    return -1;
}

int utf8_next(const char *s, int *cp) {
    const unsigned char *u = (const unsigned char *)s;
    int n = u[0] < 0x80 ? 1 : u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
    int c = n == 1 ? u[0] : u[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) return *cp = 0xFFFD, i; /* cut short: not a character */
        c = c << 6 | (u[i] & 63);
    }
    *cp = c;
    return n;
}

/* ------------------------------------------------------------------------------------
 * the lesson's pre-tokenizer: Python's re.findall(rb" ?[^\s]+|\s+(?!\S)|\s+", text)
 * (harness/pytorch/bpe.py), GPT-2's whitespace rules without its letter/digit classes
 * ---------------------------------------------------------------------------------- */

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* the end of the piece that starts at i */
static int piece_end(const unsigned char *t, int len, int i) {
    int j = i + (t[i] == ' ' && i + 1 < len && !is_space(t[i + 1]));
    if (!is_space(t[j])) { /* " ?[^\s]+" */
        while (j < len && !is_space(t[j])) j++;
        return j;
    }
    while (j < len && is_space(t[j])) j++;
    /* "\s+(?!\S)": a run followed by a word leaves its last character out (a space
     * then goes with the word, anything else is a piece of its own) */
    if (j < len && j - i > 1) j--;
    return j;
}

int bpe_pretokenize(const char *text, int len, int *starts) {
    const unsigned char *t = (const unsigned char *)text;
    int n = 0;
    for (int i = 0; i < len; i = piece_end(t, len, i)) starts[n++] = i;
    starts[n] = len;
    return n;
}
