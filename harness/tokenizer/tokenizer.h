/*
 * tokenizer.h: Hugging Face `tokenizer.json`, byte-level BPE (GPT-2, Qwen2, Qwen3).
 *
 * What encode does, in the order Hugging Face's `tokenizers` does it:
 *
 *   text ──added tokens──> "<|im_start|>" | "user\nCafé é 123"      (split out first,
 *         (leftmost-longest literal match; special or not, as HF's encode by default)
 *   piece ──normalizer (NFC, utf8proc)──> "user\nCafé é 123"     (e + U+0301 -> é)
 *         ──pre_tokenizer: Split (Qwen2 regex, PCRE2)──> "user" "\n" "Café" " é" " " "1" "2" "3"
 *         ──ByteLevel: each pre-token's UTF-8 bytes──> BPE over byte tokens, merges by rank
 *   ids:  [151644, 872, 198, ...]
 *
 * Decode is the reverse of ByteLevel: each id's bytes, concatenated (added tokens give
 * their content). The BPE is written here; NFC and the split regex are a maintained
 * library's job (libutf8proc, libpcre2-8).
 *
 * A malformed or unsupported tokenizer.json is rejected with one line naming the file and
 * the problem ("tokenizer.json: model.merges[12]: 'Ġ' is not two tokens").
 */
#ifndef MOEKIT_TOKENIZER_H
#define MOEKIT_TOKENIZER_H

#include <stddef.h>

typedef struct Tokenizer Tokenizer;

/* A growable list of token ids. Zero-initialise; free ids when done. */
typedef struct {
    int *ids;
    size_t n, cap;
} TokenIds;

/* Appends id to ids. 0, or -1 when out of memory. */
int token_ids_push(TokenIds *ids, int id);

/* Reads path (a tokenizer.json). NULL with a one-line message in err on any problem. */
Tokenizer *tokenizer_load(const char *path, char *err, size_t errlen);
/* The same from text[0 .. len); messages start with name (the file, for messages). */
Tokenizer *tokenizer_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);
void tokenizer_free(Tokenizer *t);

/* Appends the ids of text[0 .. len) (UTF-8) to out. 0, or -1 with a message in err
 * (invalid UTF-8, out of memory). Safe to call from several threads on one Tokenizer. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, TokenIds *out, char *err,
                     size_t errlen);

/* The bytes id decodes to (not NUL-terminated; may be a part of a UTF-8 character), NULL
 * when id is no token. */
const char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len);

/* ids -> text (malloc'd, NUL-terminated, *len bytes; invalid UTF-8 left as the bytes are).
 * NULL with a message in err when an id is no token. */
char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len, char *err,
                       size_t errlen);

/* One more than the largest id (model vocabulary and added tokens). */
int tokenizer_size(const Tokenizer *t);
/* The id of the added token whose content is s, -1 if none. */
int tokenizer_added_id(const Tokenizer *t, const char *s);
/* 1 when id is an added token marked "special" (<|im_end|>, <|endoftext|> ...). */
int tokenizer_is_special(const Tokenizer *t, int id);

/* Text as Hugging Face's decode returns it: s[0 .. len) with each invalid UTF-8
 * sequence (its maximal invalid part, as Rust's from_utf8_lossy and the WHATWG decoder
 * cut it) replaced by U+FFFD. out holds at least 3 * len bytes; returns the bytes written.
 * With final 0, a tail that may still become a character (the first 1-3 bytes of one)
 * is left unread: *used says how many bytes of s were consumed. For streaming. */
size_t utf8_lossy(const char *s, size_t len, int final, char *out, size_t *used);

#endif /* MOEKIT_TOKENIZER_H */
