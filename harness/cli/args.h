/* args.h: the moekit command line, parsed and checked (args.c). */
#ifndef MOEKIT_ARGS_H
#define MOEKIT_ARGS_H

#include "model_load.h"

#define MAX_DISABLED 256

typedef enum { CMD_GENERATE, CMD_LOGITS, CMD_PERPLEXITY, CMD_TOKENIZE, CMD_CHAT } Command;

typedef struct {
    Command cmd;
    const char *model_dir;
    const char *prompt;   /* text: bytes for a byte-level model, else through tokenizer.json */
    const char *ids_text; /* "1 2 3" */
    const char *out_path; /* logits */
    const char *text_file; /* perplexity, tokenize (NULL: stdin) */
    const char *routing_path;
    int n_new, print_ids, greedy;
    int fortunes; /* perplexity: one sequence per fortune, as train.py */
    int json, decode; /* tokenize: JSON in and out; ids -> text */
    int chat;         /* tokenize: JSON conversations through the chat template */
    const char *system; /* chat: the system prompt */
    int no_think;       /* chat: enable_thinking false */
    int n_new_set;      /* -n was given */
    float temperature, top_p;
    unsigned long long seed;
    ModelOptions model;
    int disabled_layer[MAX_DISABLED], disabled_expert[MAX_DISABLED];
} Args;

/* 0 ok; 1 help was printed (exit 0); -1 an error was printed (exit 2). */
int args_parse(Args *a, int argc, char **argv);

/* "1 2 3" -> ids (malloc'd), each checked against vocab_size. -1 with a message. */
int parse_ids(const char *text, int vocab_size, int **ids, int *n);

#endif
