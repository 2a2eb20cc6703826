/*
 * bpe.h: lesson 11, byte-level BPE (lessons/11-tokenizer/bpe.c), as GPT-2, Qwen2 and Qwen3
 * tokenize. Its own header, beside moekit.h: the tokenizer is no part of the model.
 *
 *   text ──bpe_split_added──> spans: "<|im_start|>" (an added token's id) | "user\nHi" (-1)
 *   span ──bpe_pretokenize (ready-made)──> pieces "user" "\n" "Hi"
 *   piece ──bytes_to_unicode, bpe_char_id──> one token per byte ──merges by rank──> ids
 *   ids ──bpe_decode──> the bytes again
 *
 * The kit's CLI reads a real tokenizer.json with harness/tokenizer/ (the same algorithm,
 * with NFC and the Qwen2 split regex, and a priority queue for speed).
 */
#ifndef MOEKIT_BPE_H
#define MOEKIT_BPE_H

#include "moekit.h"

/* A byte-level BPE vocabulary: what tokenizer.json's model.vocab, model.merges and
 * added_tokens hold. */
typedef struct {
    int n_vocab;              /* BPE tokens: ids 0 .. n_vocab - 1 */
    const char *const *token; /* token[id]: its string of byte-map characters, UTF-8 ("Ġthe") */
    int n_merges;
    const int *merges;        /* (n_merges, 3): left id, right id, merged id; row r has rank r */
    int n_added;
    const char *const *added; /* added[i]: an added token's text, "<|im_end|>" */
    const int *added_id;      /* added[i]'s id (>= n_vocab) */
} BpeVocab;

/* ------------------------------------------------------------------------------------
 * ready-made (harness/src/bpe_vocab.c)
 * ---------------------------------------------------------------------------------- */

/* The id of the token that is the single character cp, -1 if there is none. */
int bpe_char_id(const BpeVocab *v, int cp);
/* The rank of the merge (left, right): its row in v->merges, -1 if the pair never merges. */
int bpe_merge_rank(const BpeVocab *v, int left, int right);
/* The lesson's pre-tokenizer (a kit convention; real Qwen uses a regex, README "The
 * split"): text[0 .. len) cut into pieces, a word with at most one space before it or a
 * whitespace run. starts (len + 1) gets n + 1 offsets, the last one len; returns n. */
int bpe_pretokenize(const char *text, int len, int *starts);
/* Reads one UTF-8 character at s into *cp; returns its bytes (1 .. 4). s holds a valid
 * character (token strings do). */
int utf8_next(const char *s, int *cp);

/* ------------------------------------------------------------------------------------
 * yours
 * ---------------------------------------------------------------------------------- */

/* cp[b]: the code point that stands for byte b (GPT-2's bytes_to_unicode). */
void bytes_to_unicode(int cp[256]);

/* One piece's bytes w[0 .. len) -> its ids: one token per byte, then the adjacent pair of
 * lowest rank merged, again and again, until no pair merges. Returns n <= len. */
int bpe_word(const BpeVocab *v, const unsigned char *w, int len, int *ids);

/* text[0 .. len) cut at the added tokens (the longest where several start at one place):
 * spans (n, 3) = start, length, id (the added token's id, or -1 for text between them),
 * in order, covering the text. Returns n <= len. */
int bpe_split_added(const BpeVocab *v, const char *text, int len, int *spans);

/* text[0 .. len) -> ids (n <= len): the added tokens first, then each other span's pieces
 * (bpe_pretokenize) through bpe_word. */
int bpe_encode(const BpeVocab *v, const char *text, int len, int *ids);

/* ids[0 .. n) -> bytes in out; returns how many. A token gives the bytes its characters
 * stand for, an added token its text. out holds at least the UTF-8 length of all the
 * tokens' strings. */
int bpe_decode(const BpeVocab *v, const int *ids, int n, char *out);

#endif /* MOEKIT_BPE_H */
