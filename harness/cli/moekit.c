/*
 * moekit.c: the command line model runner, built on the lesson functions.
 *
 *   moekit generate   --model DIR (--prompt TEXT | --ids "1 2 3") [-n N] [sampling]
 *   moekit logits     --model DIR --ids "1 2 3" --out FILE
 *   moekit perplexity --model DIR --file TEXT
 *
 * Built from solutions/ by `make`, or from your lessons/ by `make run SRC=lessons`, so
 * the model that talks is the one you wrote. Text goes in and out through the model
 * directory's tokenizer.json (harness/tokenizer/) when it has one; the kit's own model is
 * byte-level (token id = UTF-8 byte, no tokenizer.json); other models take and give ids.
 *   moekit tokenize   --model DIR [--file F] [--json] [--decode]   (text.c)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "clock.h"
#include "model_load.h"
#include "chat.h"
#include "quantize.h"
#include "run.h"
#include "sampling.h"
#include "text.h"
#include "todo.h"

/* ------------------------------------------------------------------------------------
 * the prompt: text (through tokenizer.json, or bytes for a byte-level model) or ids
 * ---------------------------------------------------------------------------------- */

/* Text and ids meet here: tok is the model directory's tokenizer.json, or NULL. */
typedef struct {
    const Tokenizer *tok;
    TextStream stream;
} Text;

static int encode_prompt(const Args *a, const Tokenizer *tok, int V, int **ids, int *n) {
    TokenIds out = {0};
    char err[256];
    if (tokenizer_encode(tok, a->prompt, strlen(a->prompt), &out, err, sizeof err) != 0) {
        fprintf(stderr, "moekit: --prompt: %s\n", err);
        return free(out.ids), -1;
    }
    for (size_t i = 0; i < out.n; i++)
        if (out.ids[i] >= V) {
            fprintf(stderr, "moekit: --prompt: token %d of %s/tokenizer.json is past the model's "
                            "vocab_size %d\n", out.ids[i], a->model_dir, V);
            return free(out.ids), -1;
        }
    *ids = out.ids, *n = (int)out.n;
    return 0;
}

static int prompt_ids(const Args *a, const Model *m, const Text *text, int **ids, int *n) {
    int V = m->config.vocab_size;
    if (a->ids_text) return parse_ids(a->ids_text, V, ids, n);
    if (text->tok) return encode_prompt(a, text->tok, V, ids, n);
    if (V != 256) {
        fprintf(stderr, "moekit: --prompt needs a byte-level model (vocab_size 256) or a "
                        "tokenizer.json; %s has vocab_size %d and no tokenizer.json: give token "
                        "ids with --ids\n", a->model_dir, V);
        return -1;
    }
    size_t len = strlen(a->prompt);
    *ids = malloc(sizeof(int) * len);
    if (!*ids) return fprintf(stderr, "moekit: out of memory\n"), -1;
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)a->prompt[i];
    *n = (int)len;
    return 0;
}

/* One generated token to stdout: its id, its text (held back while a UTF-8 character is
 * incomplete), or for a byte-level model the byte itself. */
static void emit(const Args *a, Text *text, int id, int first) {
    size_t len;
    const char *bytes;
    if (a->print_ids) printf(first ? "%d" : " %d", id);
    else if (text->tok && (bytes = tokenizer_token_bytes(text->tok, id, &len)))
        text_stream_put(&text->stream, bytes, len, stdout);
    else if (!text->tok)
        putchar(id); /* byte-level: the id is the byte */
    fflush(stdout);  /* (an id past the tokenizer's, a padding row, prints nothing) */
}

/* ------------------------------------------------------------------------------------
 * commands
 * ---------------------------------------------------------------------------------- */

/* Generation stops at these ids (chat.c: stop_ids). */
typedef struct {
    int ids[64], n;
} Stops;

static int stops_at(const Stops *st, int id) {
    for (int i = 0; i < st->n; i++)
        if (st->ids[i] == id) return 1;
    return 0;
}

static int cmd_generate(const Args *a, Runner *r, Text *text) {
    int *ids, n;
    Stops st;
    char err[512];
    if ((st.n = stop_ids(a->model_dir, text->tok, st.ids, 64, err, sizeof err)) < 0)
        return fprintf(stderr, "moekit: %s\n", err), 1;
    if (prompt_ids(a, &r->model, text, &ids, &n) != 0) return 1;
    if (!a->print_ids && !text->tok && r->model.config.vocab_size != 256) {
        fprintf(stderr, "moekit: %s has no tokenizer.json and is not byte-level: add --print-ids\n",
                a->model_dir);
        return free(ids), 1;
    }
    /* Stop at the context, as llama2.c clamps its steps to seq_len: each new token but the
     * last is fed back at the next position, so n + n_new positions are enough. */
    int ctx = r->model.state.max_seq, n_new = a->n_new;
    if (n > ctx) {
        fprintf(stderr, "moekit: the prompt (%d tokens) is more than the context (%d positions; "
                        "--ctx to change)\n", n, ctx);
        return free(ids), 1;
    }
    if (n_new > ctx - n) {
        n_new = ctx - n;
        fprintf(stderr, "moekit: -n %d stops at the context: %d tokens after the %d of the "
                        "prompt fill its %d positions (--ctx to change)\n", a->n_new, n_new, n, ctx);
    }
    Sampler s = {a->temperature, a->top_p, a->seed * 0x9E3779B97F4A7C15ULL + 1};
    double t0 = now_seconds();
    int next;
    if (runner_prefill(r, ids, n, 0, &next, &s) != 0) return free(ids), 1;
    double t1 = now_seconds();
    if (a->prompt && !a->print_ids) fputs(a->prompt, stdout); /* the continuation reads on */
    int made = 0, stopped = 0; /* tokens generated; the last one is an end-of-text id */
    while (made < n_new && !stopped) {
        stopped = stops_at(&st, next);
        if (!stopped || a->print_ids) emit(a, text, next, made == 0);
        if (++made < n_new && !stopped && runner_step(r, next, n + made - 1, &next, &s) != 0)
            return free(ids), 1;
    }
    double t2 = now_seconds();
    if (!a->print_ids && text->tok) text_stream_end(&text->stream, stdout);
    if (a->print_ids || n_new) putchar('\n');
    fflush(stdout); /* the text first, then the timing line on stderr */
    if (stopped) fprintf(stderr, "moekit: stopped at end-of-text id %d\n", next);
    fprintf(stderr, "moekit: prompt %d tokens in %.3f s (%.1f tokens/s), generated %d in %.3f s "
                    "(%.1f tokens/s)\n", n, t1 - t0, n / (t1 - t0 + 1e-12), made, t2 - t1,
            (made > 1 ? made - 1 : 0) / (t2 - t1 + 1e-12));
    free(ids);
    return 0;
}

static int cmd_logits(const Args *a, Runner *r) {
    int *ids, n;
    if (parse_ids(a->ids_text, r->model.config.vocab_size, &ids, &n) != 0) return 1;
    if (n > r->model.state.max_seq) {
        fprintf(stderr, "moekit: %d ids are more than the context (%d positions; --ctx)\n", n,
                r->model.state.max_seq);
        return free(ids), 1;
    }
    FILE *f = fopen(a->out_path, "wb");
    if (!f) return fprintf(stderr, "moekit: --out %s: cannot create it\n", a->out_path), free(ids), 1;
    int rc = runner_logits(r, ids, n, f);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "moekit: --out %s: write failed\n", a->out_path);
        rc = 1;
    }
    free(ids);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "quantize")) return cmd_quantize(argc - 1, argv + 1);
    Args a;
    int rc = args_parse(&a, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (a.cmd == CMD_TOKENIZE) return cmd_tokenize(&a); /* the tokenizer alone, no weights */
    Runner r;
    char err[1024];
    if ((a.cmd == CMD_GENERATE || a.cmd == CMD_CHAT) && sampling_defaults(&a, err, sizeof err) != 0)
        return fprintf(stderr, "moekit: %s\n", err), 1;
    if (runner_open(&r, &a, err, sizeof err) != 0) {
        for (char *c = err; *c; c++) /* one line, whatever a path or a name held */
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
        fprintf(stderr, "moekit: %s\n", err);
        return 1;
    }
    /* text in or out: the model directory's tokenizer.json, when it has one */
    Text text = {0};
    Tokenizer *tok = NULL;
    if (a.cmd == CMD_CHAT || (a.cmd == CMD_GENERATE && (a.prompt || !a.print_ids))) {
        text.tok = tok = model_tokenizer(a.model_dir, err, sizeof err);
        if (!tok && !err[0] && a.cmd == CMD_CHAT)
            snprintf(err, sizeof err, "chat: %s has no tokenizer.json", a.model_dir);
        if (!tok && err[0]) return fprintf(stderr, "moekit: %s\n", err), runner_close(&r), 1;
    }
    if (a.cmd == CMD_GENERATE) rc = cmd_generate(&a, &r, &text);
    else if (a.cmd == CMD_CHAT) rc = cmd_chat(&a, &r, tok);
    else if (a.cmd == CMD_LOGITS) rc = cmd_logits(&a, &r);
    else rc = cmd_perplexity(&a, &r);
    if (rc == 0) runner_report_dropped(&r, &a);
    tokenizer_free(tok);
    runner_close(&r);
    return rc;
}
