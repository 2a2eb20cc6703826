/* args.h: the moekit command line, parsed and checked (args.c). */
#ifndef MOEKIT_ARGS_H
#define MOEKIT_ARGS_H

#include "model_load.h"

#define MAX_DISABLED 256
#define MAX_REPLACED 16

/* --replace-expert L:E:DIR[:L2:E2]: layer L's expert E runs the weights of expert E2 of
 * layer L2 (default: L, E) of the model in DIR. */
typedef struct {
    int layer, expert, from_layer, from_expert;
    char dir[1024];
} ReplaceExpert;

enum { GIVEN_TEMPERATURE = 1, GIVEN_TOP_P = 2, GIVEN_TOP_K = 4, GIVEN_MIN_P = 8, GIVEN_GREEDY = 16 };

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
    int sample_top_k; /* --sample-top-k: sample among the k most probable tokens (0: all) */
    float min_p;      /* --min-p: drop tokens below min_p times the most probable (0: none) */
    unsigned given;   /* GIVEN_*: the sampling flags given (generation_config.json fills the rest) */
    unsigned long long seed;
    ModelOptions model;
    const char *matmul; /* --matmul naive|fast: the lessons' kernel (NULL: fast, or lesson 01
                           while lesson 09 is not written; run.c) */
    int disabled_layer[MAX_DISABLED], disabled_expert[MAX_DISABLED];
    int n_replaced;
    ReplaceExpert replaced[MAX_REPLACED];
} Args;

/* 0 ok; 1 help was printed (exit 0); -1 an error was printed (exit 2). */
int args_parse(Args *a, int argc, char **argv);

/* "1 2 3" -> ids (malloc'd), each checked against vocab_size. -1 with a message. */
int parse_ids(const char *text, int vocab_size, int **ids, int *n);

#endif
