/*
 * perplexity.c: `moekit perplexity`, bits per byte of a UTF-8 text file under a byte-level
 * model: bpb = sum(-ln p(byte | the bytes before it)) / scored bytes / ln 2.
 *
 * Plain text (the default) is scored whole with a sliding window (as Hugging Face's
 * "perplexity of fixed-length models" guide): windows of L = ctx positions, each fed from
 * position 0 with an empty cache, advancing by a stride S = ceil(L / 2). The first window
 * scores every byte it predicts; each later one only its last S, the ones no window scored
 * yet. So every byte after the first is scored exactly once (file size - 1 bytes), the
 * first L of them given all the bytes before, every later one given the previous L/2 + 1
 * to L bytes.
 *
 * --fortunes: exactly as harness/pytorch/train.py's heldout_nll. The file is a fortune
 * file (fortunes separated by lines holding only "%"); each fortune is scored on its own
 * as the bytes "%\n" + fortune, cut to L bytes, from position 0 with an empty cache; every
 * byte after the "%\n" prefix is scored given all bytes before it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "run.h"

/* The sum of -ln p over the predictions of ids[from + 1 ..] in one window. */
typedef struct {
    const int *ids;
    int from, V;
    double nll;
    long scored;
} Score;

static int add_nll(void *ctx, const float *logits, int done, int n) {
    Score *s = ctx;
    for (int t = done < s->from ? s->from - done : 0; t < n; t++) {
        const float *row = logits + (size_t)t * s->V;
        s->nll += logsumexp(row, s->V) - row[s->ids[done + t + 1]]; /* -ln softmax[target] */
        s->scored++;
    }
    return 0;
}

/* Feeds ids[0 .. n) from position 0 and scores the predictions of ids[from + 1 .. n]. */
static int score(Runner *r, const int *ids, int n, int from, Score *s) {
    s->ids = ids, s->from = from;
    return runner_forward(r, ids, n, 0, add_nll, s) ? 0 : -1;
}

/* Plain text ids (N): windows of L starting every S bytes; scored_to is the number of
 * predictions made so far (of ids[1 .. scored_to]). */
static int score_sliding(Runner *r, const int *ids, long N, int L, int S, Score *s,
                         int *windows) {
    for (long start = 0, scored_to = 0; scored_to < N - 1; start += S, (*windows)++) {
        int n = N - 1 - start < L ? (int)(N - 1 - start) : L;
        if (score(r, ids + start, n, (int)(scored_to - start), s) != 0) return -1;
        scored_to = start + n;
    }
    return 0;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* One fortune being collected: ids = "%\n" + its lines, cut at L bytes; keep = the
 * length up to its last non-blank line (trailing blank lines are not part of it). */
typedef struct {
    int *ids;
    int n, keep, L;
} Fortune;

static void append_line(Fortune *f, const char *line, size_t len) {
    if (f->n == 2 && blank(line, len)) return; /* leading blank lines are not part of it */
    for (size_t i = 0; i <= len && f->n < f->L; i++)
        f->ids[f->n++] = i < len ? (unsigned char)line[i] : '\n';
    if (!blank(line, len)) f->keep = f->n;
}

/* Splits text into fortunes (lines up to a line holding only "%") and scores each: the
 * bytes after "%\n" (predictions from index 1 on). */
static int score_fortunes(Runner *r, const char *text, size_t len, Fortune *f, Score *s,
                          int *n_fortunes) {
    f->n = f->keep = 2;
    for (size_t pos = 0; pos <= len;) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        int separator = end - pos == 1 && text[pos] == '%', flush = separator || end == len;
        if (!separator) append_line(f, text + pos, end - pos);
        if (flush && f->keep > 2) {
            if (score(r, f->ids, f->keep - 1, 1, s) != 0) return -1;
            (*n_fortunes)++;
        }
        if (flush) f->n = f->keep = 2;
        pos = end + 1;
    }
    return 0;
}

static int run_fortunes(const Args *a, Runner *r, const char *text, size_t len, int L, Score *s) {
    if (L < 3) { /* "%\n" and two bytes: the least that scores one byte given another */
        fprintf(stderr, "moekit: perplexity --fortunes: a context of %d positions is too short "
                        "to score text (--ctx, max_position_embeddings)\n", L);
        return -1;
    }
    Fortune f = {malloc(sizeof(int) * (size_t)L), 2, 2, L};
    int n_fortunes = 0, rc = -1;
    if (!f.ids) fprintf(stderr, "moekit: out of memory\n");
    else {
        f.ids[0] = '%', f.ids[1] = '\n'; /* every sequence starts "%\n" */
        rc = score_fortunes(r, text, len, &f, s, &n_fortunes);
    }
    if (rc == 0 && s->scored > 0)
        printf("%s: %.4f bits per byte (%ld bytes scored in %d fortunes)\n", a->text_file,
               s->nll / s->scored / log(2.0), s->scored, n_fortunes);
    free(f.ids);
    return rc;
}

static int run_plain(const Args *a, Runner *r, const char *text, size_t len, int L, Score *s) {
    int *ids = malloc(sizeof(int) * (len ? len : 1)), windows = 0, S = L - L / 2;
    if (!ids) return fprintf(stderr, "moekit: out of memory for %zu bytes\n", len), -1;
    for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
    int rc = score_sliding(r, ids, (long)len, L, S, s, &windows);
    if (rc == 0 && s->scored > 0)
        printf("%s: %.4f bits per byte (%ld bytes scored in %d windows of %d, stride %d)\n",
               a->text_file, s->nll / s->scored / log(2.0), s->scored, windows, L, S);
    free(ids);
    return rc;
}

int cmd_perplexity(const Args *a, Runner *r) {
    int V = r->model.config.vocab_size;
    if (V != 256) {
        fprintf(stderr, "moekit: perplexity needs a byte-level model (vocab_size 256); %s has "
                        "%d\n", a->model_dir, V);
        return 1;
    }
    int L = r->model.config.max_position_embeddings;
    if (L > r->model.state.max_seq) L = r->model.state.max_seq;
    char err[1200];
    size_t len, bad_at;
    char *text = read_file(a->text_file, SIZE_MAX - 1, &len, err, sizeof err);
    if (!text) return fprintf(stderr, "moekit: --file %s\n", err), 1;
    if ((bad_at = json_utf8_check(text, len)) < len) {
        fprintf(stderr, "moekit: --file %s: invalid UTF-8 at byte %zu (0x%02x): perplexity "
                        "scores UTF-8 text\n", a->text_file, bad_at, (unsigned char)text[bad_at]);
        return free(text), 1;
    }
    Score s = {.V = V};
    int rc = a->fortunes ? run_fortunes(a, r, text, len, L, &s) : run_plain(a, r, text, len, L, &s);
    if (rc == 0 && s.scored == 0) fprintf(stderr, "moekit: --file %s: no text to score\n", a->text_file);
    free(text);
    return rc == 0 && s.scored > 0 ? 0 : 1;
}
