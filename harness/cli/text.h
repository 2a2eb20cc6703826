/* text.h: text in and out of the CLI through a model's tokenizer.json (text.c). */
#ifndef MOEKIT_TEXT_H
#define MOEKIT_TEXT_H

#include <stdio.h>

#include "args.h"
#include "tokenizer.h"

/* DIR/tokenizer.json, loaded. NULL when it is not there (*err empty), or NULL with a
 * one-line message in err when it is there but cannot be used. */
Tokenizer *model_tokenizer(const char *dir, char *err, size_t errlen);

/* Token bytes -> stdout as they come, each UTF-8 character written once it is complete
 * (a token can end in the middle of one: Qwen3 has tokens for single bytes of 'é'), and
 * invalid sequences as U+FFFD. Zero-initialise; text_stream_end writes what is left. */
typedef struct {
    char pending[4];
    size_t n;
} TextStream;
void text_stream_put(TextStream *s, const char *bytes, size_t len, FILE *f);
void text_stream_end(TextStream *s, FILE *f);

/* moekit tokenize. Returns the exit status. */
int cmd_tokenize(const Args *a);

#endif
