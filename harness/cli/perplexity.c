/*
 * perplexity.c: `moekit perplexity`, bits per byte of a text file under a byte-level
 * model, computed exactly as harness/pytorch/train.py's heldout_nll:
 *
 *   the file is a fortune file: fortunes separated by lines holding only "%";
 *   each fortune is scored on its own as the bytes "%\n" + fortune, cut to the model's
 *   context, from position 0 with an empty cache; every byte after the "%\n" prefix is
 *   scored given all bytes before it:  bpb = sum(-ln p(byte)) / scored bytes / ln 2.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run.h"

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* -ln softmax(row)[target], in double. */
static double nll_of(const float *row, int V, int target) {
    double max = row[0], sum = 0.0;
    for (int i = 1; i < V; i++) max = row[i] > max ? row[i] : max;
    for (int i = 0; i < V; i++) sum += exp(row[i] - max);
    return log(sum) + max - row[target];
}

/* Scores one sequence ids (T); adds to *nll and *scored. -1 on a lesson TODO. */
static int score(Runner *r, const int *ids, int T, double *nll, long *scored) {
    int chunk = r->model.max_tokens, V = r->model.config.vocab_size;
    for (int done = 0; done < T - 1; done += chunk) {
        int n = T - 1 - done < chunk ? T - 1 - done : chunk;
        const float *logits = runner_chunk(r, ids + done, n, done);
        if (!logits) return -1;
        for (int t = 0; t < n; t++) {
            if (done + t + 1 < 2) continue; /* the "%\n" prefix is context, not scored */
            *nll += nll_of(logits + (size_t)t * V, V, ids[done + t + 1]);
            (*scored)++;
        }
    }
    return 0;
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

/* Splits text into fortunes (lines up to a line holding only "%") and scores each. */
static int score_file(Runner *r, const char *text, size_t len, Fortune *f, double *nll,
                      long *scored, int *n_fortunes) {
    f->n = f->keep = 2;
    for (size_t pos = 0; pos <= len;) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        int separator = end - pos == 1 && text[pos] == '%', flush = separator || end == len;
        if (!separator) append_line(f, text + pos, end - pos);
        if (flush && f->keep > 2) {
            if (score(r, f->ids, f->keep, nll, scored) != 0) return -1;
            (*n_fortunes)++;
        }
        if (flush) f->n = f->keep = 2;
        pos = end + 1;
    }
    return 0;
}

/* The whole file, which must be a regular file of UTF-8 text; NULL with a message. */
static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return fprintf(stderr, "moekit: --file %s: cannot open it\n", path), NULL;
    struct stat sb;
    char *text = NULL;
    size_t size = 0, bad_at;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode))
        fprintf(stderr, "moekit: --file %s: not a regular file\n", path);
    else if ((uintmax_t)sb.st_size >= SIZE_MAX || !(text = malloc((size_t)sb.st_size + 1)))
        fprintf(stderr, "moekit: --file %s: out of memory for its %lld bytes\n", path,
                (long long)sb.st_size);
    else if ((size = fread(text, 1, (size_t)sb.st_size, fp)) != (size_t)sb.st_size)
        fprintf(stderr, "moekit: --file %s: cannot read it\n", path);
    else if ((bad_at = json_utf8_check(text, size)) < size)
        fprintf(stderr, "moekit: --file %s: invalid UTF-8 at byte %zu (0x%02x): perplexity "
                        "scores UTF-8 text\n", path, bad_at, (unsigned char)text[bad_at]);
    else {
        fclose(fp);
        text[size] = '\0';
        *len = size;
        return text;
    }
    free(text);
    fclose(fp);
    return NULL;
}

int cmd_perplexity(const Args *a, Runner *r) {
    if (r->model.config.vocab_size != 256) {
        fprintf(stderr, "moekit: perplexity needs a byte-level model (vocab_size 256); %s has "
                        "%d\n", a->model_dir, r->model.config.vocab_size);
        return 1;
    }
    int L = r->model.config.max_position_embeddings;
    if (L > r->model.max_seq) L = r->model.max_seq;
    if (L < 3) { /* "%\n" and two bytes: the least that scores one byte given another */
        fprintf(stderr, "moekit: perplexity: a context of %d positions is too short to score "
                        "text (--ctx, max_position_embeddings)\n", L);
        return 1;
    }
    size_t len;
    char *text = read_file(a->text_file, &len);
    if (!text) return 1;
    Fortune f = {malloc(sizeof(int) * (size_t)L), 2, 2, L};
    double nll = 0.0;
    long scored = 0;
    int n_fortunes = 0;
    if (f.ids) f.ids[0] = '%', f.ids[1] = '\n'; /* every sequence starts "%\n" */
    int rc = f.ids ? score_file(r, text, len, &f, &nll, &scored, &n_fortunes) : -1;
    if (!f.ids) fprintf(stderr, "moekit: out of memory\n");
    if (rc == 0 && scored == 0) fprintf(stderr, "moekit: --file %s: no text to score\n", a->text_file);
    if (rc == 0 && scored > 0)
        printf("%s: %.4f bits per byte (%ld bytes scored in %d fortunes)\n", a->text_file,
               nll / scored / log(2.0), scored, n_fortunes);
    free(f.ids);
    free(text);
    return rc == 0 && scored > 0 ? 0 : 1;
}
