/*
 * Lesson 11 (optional): byte-level BPE, the tokenizer of GPT-2, Qwen2 and Qwen3.
 *
 *   bytes_to_unicode   byte b -> the printable character that stands for it (256)
 *   bpe_word           a piece's bytes -> one token per byte -> merges by rank -> ids
 *   bpe_split_added    text -> spans: added tokens ("<|im_end|>") and the text between
 *   bpe_encode         text -> ids: added tokens first, then pieces through bpe_word
 *   bpe_decode         ids -> bytes: each character back to its byte
 *
 * The TODOs are the five functions above. bpe_char_id, bpe_merge_rank, bpe_pretokenize
 * and utf8_next are ready-made (harness/include/bpe.h says what each does).
 * Test it: make check LESSON=11   (or `make check` in this directory)
 *
 * Python (GPT-2's src/encoder.py):  word = [byte_encoder[b] for b in piece]; then
 *   while pairs: bigram = min(pairs, key=lambda p: bpe_ranks.get(p, inf)); merge it
 */
#include <stdlib.h>
#include <string.h>

#include "bpe.h"

void bytes_to_unicode(int cp[256]) {
    /* TODO: cp[b] = b for the printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF;
     * the other bytes get 256, 257, 258 ... in increasing byte order (README "The byte
     * map"). Think about: which byte gets 256, and which one 256 + 32? */
    TODO("cp[b] = b when printable, else 256 + (how many unprintable bytes came before)");
}

int bpe_word(const BpeVocab *v, const unsigned char *w, int len, int *ids) {
    /* TODO: one token per byte first: ids[i] = the id of the one-character token
     * cp[w[i]] (bpe_char_id). Then, while some adjacent pair (ids[i], ids[i+1]) has a
     * merge, replace the pair of LOWEST rank (bpe_merge_rank; the leftmost one on a tie)
     * by its merged token, v->merges[3 * rank + 2] (README "Merges by rank").
     * Return how many ids are left. */
    TODO("byte ids via the byte map, then merge the lowest-rank pair until none merges");
    return 0;
}

int bpe_split_added(const BpeVocab *v, const char *text, int len, int *spans) {
    /* TODO: walk text; where one of v->added starts (the longest, if several do), end
     * the current span of plain text (id -1) if it is not empty and write the added
     * token's span (start, length, v->added_id[a]); plain text at the end is a last
     * span (README "Added tokens first"). Return the number of spans. */
    TODO("spans (start, length, id or -1) of the added tokens and the text between them");
    return 0;
}

int bpe_encode(const BpeVocab *v, const char *text, int len, int *ids) {
    /* TODO: bpe_split_added first; an added token's span gives its id; every other span
     * is cut by bpe_pretokenize into pieces, and each piece goes through bpe_word,
     * appending to ids. Scratch: spans (3 * len), starts (len + 1) (malloc, free).
     * Return the number of ids. */
    TODO("split out added tokens, pre-tokenize the rest, bpe_word each piece");
    return 0;
}

int bpe_decode(const BpeVocab *v, const int *ids, int n, char *out) {
    /* TODO: an added token's id gives its text (v->added, v->added_id); any other id
     * gives, for each character of v->token[id] (utf8_next), the byte that character
     * stands for: the inverse of bytes_to_unicode (README "Decode"). Return the bytes
     * written. */
    TODO("each token's characters back to bytes through the inverse byte map");
    return 0;
}
