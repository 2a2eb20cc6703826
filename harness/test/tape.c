/*
 * tape.c: writing the sandbox's tape, and reading it back as hostile input (tape.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "tape.h"

#include <stdlib.h>
#include <string.h>

#include "file.h"

/* ------------------------------------------------------------------------------------
 * writing (inside the sandbox)
 * ---------------------------------------------------------------------------------- */

static void put_text(FILE *f, const char *s, size_t max) {
    for (size_t i = 0; s && s[i] && i < max; i++) {
        char c = s[i];
        if (c == '\\') fputs("\\\\", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\n') fputs("\\n", f);
        else fputc(c, f);
    }
}

void tape_begin(FILE *f, const char *lesson, const char *func, const char *case_id) {
    fputs("T ", f);
    put_text(f, lesson, 64);
    fputc('\t', f);
    put_text(f, func, 200);
    fputc('\t', f);
    put_text(f, case_id, 200);
    fputc('\n', f);
    fflush(f);
}

/* key: the test's own name for the output, no spaces ("y", "layer0.out") */
void tape_output(FILE *f, const char *key, char type, const void *data, long n) {
    fprintf(f, "O %s %c %ld\n", key, type, n);
    fwrite(data, 4, (size_t)n, f);
    fflush(f);
}

void tape_todo(FILE *f, const char *func, const char *file, int line, const char *what) {
    fputs("D ", f);
    put_text(f, func, 200);
    fputc('\t', f);
    put_text(f, file, 300);
    fprintf(f, "\t%d\t", line);
    put_text(f, what, 500);
    fputc('\n', f);
    fflush(f);
}

void tape_end(FILE *f, const char *ending, const char *why, const char *report) {
    fputs("E ", f);
    put_text(f, ending, 16);
    fputc('\t', f);
    put_text(f, why, 600);
    fputc('\t', f);
    put_text(f, report, 1u << 20);
    fputc('\n', f);
    fflush(f);
}

void tape_problem(FILE *f, const char *what) {
    fputs("P ", f);
    put_text(f, what, 600);
    fputc('\n', f);
    fflush(f);
}

/* ------------------------------------------------------------------------------------
 * reading (the judge): a cursor over the bytes, every step bounded
 * ---------------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} Cursor;

/* The next line without its newline, NUL-terminated in place; NULL at the end or when
 * the line has no newline (a cut-off tape). */
static char *next_line(Cursor *c) {
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl) return NULL;
    char *line = (char *)c->p;
    *(char *)nl = '\0';
    c->p = nl + 1;
    return line;
}

/* Splits s at tabs into at most max fields, unescaping each in place; the field count. */
static int split_fields(char *s, char **fields, int max) {
    int n = 0;
    while (n < max) {
        fields[n++] = s;
        char *w = s;
        for (; *s && *s != '\t'; s++) {
            if (*s == '\\' && s[1]) {
                s++;
                *w++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
            } else *w++ = *s;
        }
        int more = *s == '\t';
        *w = '\0';
        if (!more) break;
        s++;
    }
    return n;
}

static TapeSection *new_section(Tape *t, char *line) {
    char *f[3];
    if (split_fields(line, f, 3) != 3) return NULL;
    TapeSection *grown = realloc(t->sections, sizeof *grown * (size_t)(t->n + 1));
    if (!grown) return NULL;
    t->sections = grown;
    TapeSection *s = &t->sections[t->n++];
    memset(s, 0, sizeof *s);
    s->lesson = strdup(f[0]);
    s->func = strdup(f[1]);
    s->case_id = strdup(f[2]);
    return s;
}

/* "O key T n" then 4n bytes; 0, or -1 on anything malformed */
static int read_output(TapeSection *s, char *line, Cursor *c) {
    char key[129], type;
    long n;
    if (sscanf(line, "O %128s %c %ld", key, &type, &n) != 3) return -1;
    if ((type != 'F' && type != 'I') || n < 0 || n > TAPE_MAX_VALUES) return -1;
    if ((size_t)(c->end - c->p) < (size_t)n * 4) return -1;
    TapeOutput *grown = realloc(s->outputs, sizeof *grown * (size_t)(s->n_outputs + 1));
    if (!grown) return -1;
    s->outputs = grown;
    TapeOutput *o = &s->outputs[s->n_outputs++];
    o->key = strdup(key);
    o->type = type;
    o->n = n;
    o->data = malloc((size_t)n * 4 + 1);
    if (o->data) memcpy(o->data, c->p, (size_t)n * 4);
    c->p += n * 4;
    return o->key && o->data ? 0 : -1;
}

/* Where the reader is: the section records go to, and whether this sandbox's part of the
 * tape has shown a record its runner did not write (every later section is then suspect:
 * a forger can write whole sections, under any test's name). */
typedef struct {
    TapeSection *cur;
    int tainted;
} Reading;

static void forged(Reading *r) {
    r->tainted = 1;
    if (r->cur) r->cur->forged = 1;
}

static int read_section(Tape *t, Reading *r, char *line) {
    TapeSection *open = r->cur && !r->cur->ended ? r->cur : NULL;
    long at = open ? open - t->sections : -1;
    if (!(r->cur = new_section(t, line))) return -1;
    if (at >= 0) t->sections[at].forged = 1, forged(r); /* new_section may move it */
    if (r->tainted) r->cur->forged = 1;
    return 0;
}

/* X: the grader stopped the sandbox at its wall-clock limit; the open section timed out. */
static int stopped(Reading *r, const char *why) {
    if (!r->cur || r->cur->ended) return 0;
    r->cur->ended = 1;
    r->cur->ending = strdup("TIMEOUT");
    r->cur->why = strdup(why);
    r->cur->report = strdup("");
    return 0;
}

static int read_record(Tape *t, Reading *r, char *line, Cursor *c) {
    char *f[4];
    if (!strcmp(line, "S")) return r->cur = NULL, r->tainted = 0, 0; /* a new sandbox */
    if (line[0] == 'P' && line[1] == ' ') {
        if (!t->problem) t->problem = strdup(line + 2);
        return 0;
    }
    if (line[0] == 'T' && line[1] == ' ') return read_section(t, r, line + 2);
    if (line[0] == 'X' && line[1] == ' ') return stopped(r, line + 2);
    if (!r->cur) return -1; /* outputs belong to a section */
    if (r->cur->ended) { /* a second E is skipped; anything else ends the tape */
        forged(r);
        return line[0] == 'E' ? 0 : -1;
    }
    if (line[0] == 'O') return read_output(r->cur, line, c);
    if (line[0] == 'D' && line[1] == ' ') {
        if (!r->cur->todo) r->cur->todo = strdup(line + 2);
        return 0;
    }
    if (line[0] == 'E' && line[1] == ' ' && split_fields(line + 2, f, 3) == 3) {
        r->cur->ended = 1;
        r->cur->ending = strdup(f[0]);
        r->cur->why = strdup(f[1]);
        r->cur->report = strdup(f[2]);
        return 0;
    }
    return -1;
}

void tape_parse(Tape *t, char *bytes, size_t size) {
    memset(t, 0, sizeof *t);
    Cursor c = {bytes, bytes + size};
    Reading r = {NULL, 0};
    char *line;
    while ((line = next_line(&c)) && read_record(t, &r, line, &c) == 0) {}
}

int tape_read(Tape *t, const char *path, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    size_t size;
    char *bytes = read_file(path, (size_t)1 << 31, &size, err, errlen);
    if (!bytes) return -1;
    tape_parse(t, bytes, size);
    free(bytes);
    return 0;
}

static void free_section(TapeSection *s) {
    for (int i = 0; i < s->n_outputs; i++) {
        free(s->outputs[i].key);
        free(s->outputs[i].data);
    }
    free(s->outputs);
    free(s->lesson), free(s->func), free(s->case_id), free(s->todo);
    free(s->ending), free(s->why), free(s->report);
}

void tape_free(Tape *t) {
    for (int i = 0; i < t->n; i++) free_section(&t->sections[i]);
    free(t->sections);
    free(t->problem);
    memset(t, 0, sizeof *t);
}

/* The first section for this test and case: a later one with the same names (written by
 * the student's code, say) does not replace it. */
const TapeSection *tape_find(const Tape *t, const char *lesson, const char *func,
                             const char *case_id) {
    for (int i = 0; i < t->n; i++) {
        const TapeSection *s = &t->sections[i];
        if (!strcmp(s->lesson, lesson) && !strcmp(s->func, func) && !strcmp(s->case_id, case_id))
            return s;
    }
    return NULL;
}

const TapeOutput *tape_find_output(const TapeSection *s, const char *key) {
    for (int i = 0; s && i < s->n_outputs; i++)
        if (!strcmp(s->outputs[i].key, key)) return &s->outputs[i];
    return NULL;
}
