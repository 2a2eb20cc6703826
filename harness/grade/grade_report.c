/*
 * grade_report.c: turns what `make grade` recorded into points.
 *
 *   grade_report --points FILE --records FILE --student NAME
 *                [--json FILE] [--table FILE] [--csv FILE] [--elapsed SECONDS]
 *                [--visibility visible|hidden|after_due_date|after_published] [--timeout S]
 *                [--note TEXT]
 *   grade_report --points FILE --check           only reads the points table
 *   grade_report --validate results.json
 *
 * The records (harness/grade/grade.sh writes them, one per line, tab-separated, with \t \n
 * \\ escaped):
 *     lesson  ID NAME FILES                      a lesson that is graded
 *     build   ID FLAVOR ok|fail|missing MESSAGE  its build, FLAVOR normal or san
 *     run     ID FLAVOR ok|timeout MESSAGE       its test run as a whole
 *     expect  ID FUNC CASE expected              every case there is (check --cases)
 *     normal  ID FUNC CASE STATUS WHY REPORT     a test of the normal build (check --results)
 *     san     ID FUNC CASE STATUS WHY REPORT     the same under ASan + UBSan
 * The points table (harness/grade/points.tsv) says what each test is worth.
 *
 * Writes the btest-like table, Gradescope's results.json and a CSV header + row; with
 * --validate, checks a results.json against the fields Gradescope reads.
 * Exit status: 0, or 2 when the inputs are unusable (a grader problem, not the student's).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "json.h"

#define MAX_FIELDS 7

/* ------------------------------------------------------------------------------------
 * small helpers: dying, growing arrays, text buffers
 * ---------------------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "grade_report: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *tmp = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_add(b, tmp, (size_t)n);
    free(tmp);
}

static const char *buf_str(const Buf *b) { return b->s ? b->s : ""; }

/* The whole file (file.h), or death. */
static char *slurp(const char *path, size_t *len) {
    char err[1200];
    char *text = read_file(path, SIZE_MAX - 1, len, err, sizeof err);
    if (!text) die("%s", err);
    return text;
}

/* Copies src into dst (size bytes), cut short if need be: always terminated. */
static void copy(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Scores are kept to hundredths of a point. */
static double round2(double x) { return round(x * 100.0) / 100.0; }

/* ------------------------------------------------------------------------------------
 * the points table
 * ---------------------------------------------------------------------------------- */

typedef struct {
    char lesson[8];
    double points;
    char *item; /* a test's name as the runner shows it, "memory" or "leaks" */
    int line;
} Row;

typedef struct {
    Row *rows;
    int n;
    char bonus[32][8];
    int n_bonus;
} Points;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = '\0';
    return s;
}

static int is_lesson_id(const char *s) {
    return strlen(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

static Points read_points(const char *path) {
    Points p = {0};
    char *text = slurp(path, NULL);
    int line_no = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        line_no++; /* strtok skips empty lines: numbers count non-empty lines only */
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char lesson[16], word[32];
        int used = 0;
        if (sscanf(s, "bonus %15s %n", lesson, &used) == 1 && is_lesson_id(lesson)) {
            if (p.n_bonus < 32) strcpy(p.bonus[p.n_bonus++], lesson);
            continue;
        }
        if (sscanf(s, "%15s %31s %n", lesson, word, &used) != 2 || !is_lesson_id(lesson) || !s[used])
            die("%s: \"%s\" is not a row: write LESSON POINTS TEST, e.g. \"03 8 rope\"", path, s);
        char *end;
        double pts = strtod(word, &end);
        if (*end || !(pts >= 0) || pts > 1e6)
            die("%s: \"%s\": the points must be a number >= 0", path, s);
        p.rows = xrealloc(p.rows, sizeof(Row) * (size_t)(p.n + 1));
        Row *r = &p.rows[p.n++];
        strcpy(r->lesson, lesson);
        r->points = pts;
        r->item = xstrdup(trim(s + used));
        r->line = line_no;
        for (int i = 0; i < p.n - 1; i++)
            if (!strcmp(p.rows[i].lesson, lesson) && !strcmp(p.rows[i].item, r->item))
                die("%s: lesson %s \"%s\" has two rows", path, lesson, r->item);
    }
    free(text);
    if (!p.n) die("%s has no rows", path);
    return p;
}

static int is_bonus(const Points *p, const char *lesson) {
    for (int i = 0; i < p->n_bonus; i++)
        if (!strcmp(p->bonus[i], lesson)) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------
 * the records
 * ---------------------------------------------------------------------------------- */

typedef struct {
    char *f[MAX_FIELDS]; /* unescaped; missing fields are "" */
    int used;            /* matched to an expected case already */
} Record;

typedef struct {
    Record *r;
    int n;
} Records;

/* A field, unescaped, and without control characters but tab and newline: what the
 * student's code printed (ANSI escapes, \r, C1 controls as UTF-8) reaches neither
 * results.json nor the instructor's terminal. */
static char *unescape(const char *s, size_t n) {
    char *out = xrealloc(NULL, n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < n) {
            c = (unsigned char)s[++i];
            c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            i++; /* U+0080 .. U+009F */
            continue;
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) continue;
        *w++ = (char)c;
    }
    *w = '\0';
    return out;
}

static Records read_records(const char *path) {
    Records rs = {0};
    size_t len;
    char *text = slurp(path, &len);
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl ? nl : text + len;
        if (end > line) {
            rs.r = xrealloc(rs.r, sizeof(Record) * (size_t)(rs.n + 1));
            Record *r = &rs.r[rs.n++];
            r->used = 0;
            char *p = line; /* fields never hold a tab (escaped): the last takes the rest */
            for (int i = 0; i < MAX_FIELDS; i++) {
                char *tab = p && i < MAX_FIELDS - 1 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
                char *stop = tab ? tab : end;
                r->f[i] = p ? unescape(p, (size_t)(stop - p)) : xstrdup("");
                p = tab ? tab + 1 : NULL;
            }
        }
        line = end + 1;
    }
    free(text);
    return rs;
}

static const Record *find(const Records *rs, const char *type, const char *id, const char *third) {
    for (int i = 0; i < rs->n; i++) {
        const Record *r = &rs->r[i];
        if (!strcmp(r->f[0], type) && !strcmp(r->f[1], id) && (!third || !strcmp(r->f[2], third)))
            return r;
    }
    return NULL;
}

/* The record of one case in one flavour: the first unused one with the same lesson, test
 * and case title. */
static Record *find_case(Records *rs, const char *flavor, const Record *expect) {
    for (int i = 0; i < rs->n; i++) {
        Record *r = &rs->r[i];
        if (!r->used && !strcmp(r->f[0], flavor) && !strcmp(r->f[1], expect->f[1]) &&
            !strcmp(r->f[2], expect->f[2]) && !strcmp(r->f[3], expect->f[3])) {
            r->used = 1;
            return r;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * grading
 * ---------------------------------------------------------------------------------- */

typedef struct {
    const Row *row;
    const char *lesson_name;
    int bonus;
    double score, max;
    char reason[400]; /* one line, for the table */
    int visible;      /* shown whatever --visibility says: the lesson did not compile */
    Buf output;       /* the whole story, for results.json */
    char number[24];
} Item;

/* Why a lesson could not be run at all in a flavour, or NULL. */
static const char *not_built(const Records *rs, const char *id, const char *flavor) {
    const Record *b = find(rs, "build", id, flavor);
    if (!b) return "was not built (the grader stopped early)";
    if (!strcmp(b->f[3], "missing")) return "was not submitted";
    if (!strcmp(b->f[3], "rejected")) return "was rejected by the grader (see the build output)";
    if (!strcmp(b->f[3], "fail")) return flavor[0] == 's' ? "did not build with ASan + UBSan"
                                                           : "did not compile";
    return NULL;
}

/* The first line of s, at most max bytes of it. */
static void first_line(char *buf, size_t len, const char *s, size_t max) {
    size_t n = strcspn(s, "\n");
    if (n > max) n = max;
    snprintf(buf, len, "%.*s", (int)n, s);
}

/* One line about a case that did not pass. */
static void case_summary(char *buf, size_t len, const Record *r) {
    const char *status = r->f[4], *why = r->f[5], *report = r->f[6];
    if (!strcmp(status, "todo")) snprintf(buf, len, "not written yet (it still calls TODO)");
    else if (!strcmp(status, "FAIL") && strstr(report, "looks like: ")) {
        char line[300];
        first_line(line, sizeof line, strstr(report, "looks like: "), 200);
        snprintf(buf, len, "wrong result, %s", line);
    } else if (!strcmp(status, "FAIL")) snprintf(buf, len, "wrong result");
    else if (!strcmp(status, "ERROR")) snprintf(buf, len, "fixture problem (the grader's, not yours)");
    else if (*why) first_line(buf, len, why, 300);
    else snprintf(buf, len, "%s", status);
}

/* Indents every line of text by two spaces into out, at most max_lines of it. */
static void add_indented(Buf *out, const char *text, int max_lines) {
    int n = 0;
    for (const char *line = text; *line && n < max_lines; n++) {
        size_t len = strcspn(line, "\n");
        buf_add(out, "    ", 4);
        buf_add(out, line, len);
        buf_add(out, "\n", 1);
        line += len + (line[len] == '\n');
        if (n + 1 == max_lines && *line) buf_add(out, "    ...\n", 8);
    }
}

static void grade_test(Item *it, Records *rs, const char *timeout) {
    const Row *row = it->row;
    const char *why_not = not_built(rs, row->lesson, "normal");
    const Record *build = find(rs, "build", row->lesson, "normal");
    const Record *run = find(rs, "run", row->lesson, "normal");
    int n = 0, passed = 0;
    const Record *first_bad = NULL, *first_story = NULL;
    Buf lines = {0};
    for (int i = 0; i < rs->n; i++) {
        const Record *e = &rs->r[i];
        if (strcmp(e->f[0], "expect") || strcmp(e->f[1], row->lesson) || strcmp(e->f[2], row->item))
            continue;
        n++;
        if (why_not) continue;
        Record *r = find_case(rs, "normal", e);
        char what[400];
        if (!r) {
            snprintf(what, sizeof what, "not run: %s",
                     run && !strcmp(run->f[3], "timeout") ? run->f[4] : "the test run stopped before it");
            buf_printf(&lines, "  %-7s case \"%s\": %s\n", "FAIL", e->f[3], what);
            if (!first_bad) snprintf(it->reason, sizeof it->reason, "%s", what);
            if (!first_bad) first_bad = e;
            continue;
        }
        if (!strcmp(r->f[4], "ok")) {
            passed++;
            buf_printf(&lines, "  %-7s case \"%s\"\n", "ok", e->f[3]);
            continue;
        }
        case_summary(what, sizeof what, r);
        buf_printf(&lines, "  %-7s case \"%s\": %s\n", r->f[4], e->f[3], what);
        if (!first_bad) snprintf(it->reason, sizeof it->reason, "%s", what);
        if (!first_bad) first_bad = r;
        if (!first_story && *r->f[6]) first_story = r;
    }
    if (!n) die("the points table names lesson %s \"%s\" (line %d), but the fixtures have no such "
                "test: `check --list` shows the names", row->lesson, row->item, row->line);
    it->max = row->points;
    if (why_not) {
        it->score = 0;
        it->visible = build && (!strcmp(build->f[3], "fail") || !strcmp(build->f[3], "rejected"));
        snprintf(it->reason, sizeof it->reason, "%s", why_not);
        if (build && !strcmp(build->f[3], "rejected")) first_line(it->reason, sizeof it->reason, build->f[4], 300);
        buf_printf(&it->output, "0 of %d cases: the lesson %s.\n", n, why_not);
        if (build && *build->f[4]) add_indented(&it->output, build->f[4], 40);
        free(lines.s);
        return;
    }
    it->score = round2(row->points * passed / n);
    if (passed < n) {
        char head[440];
        snprintf(head, sizeof head, "%d of %d cases fail: %s", n - passed, n, it->reason);
        copy(it->reason, sizeof it->reason, head);
    }
    buf_printf(&it->output, "%d of %d cases pass (time limit %s s per case).\n%s", passed, n,
               timeout, buf_str(&lines));
    if (first_story) {
        buf_printf(&it->output, "\ncase \"%s\" in full:\n", first_story->f[3]);
        add_indented(&it->output, first_story->f[6], 60);
    }
    free(lines.s);
}

/* memory (ASan + UBSan reports) or leaks (LeakSanitizer reports) of a lesson. */
static void grade_sanitizer(Item *it, Records *rs) {
    const Row *row = it->row;
    int leaks = !strcmp(row->item, "leaks");
    const char *bad_status = leaks ? "LEAK" : "MEMORY";
    const char *what = leaks ? "LeakSanitizer" : "AddressSanitizer + UndefinedBehaviorSanitizer";
    it->max = row->points;
    it->score = 0;
    const char *flavor = "normal";
    const char *why_not = not_built(rs, row->lesson, flavor);
    if (!why_not) why_not = not_built(rs, row->lesson, flavor = "san");
    if (why_not) {
        const Record *build = find(rs, "build", row->lesson, flavor);
        snprintf(it->reason, sizeof it->reason, "%s", why_not);
        buf_printf(&it->output, "The lesson %s.\n", why_not);
        it->visible = build && (!strcmp(build->f[3], "fail") || !strcmp(build->f[3], "rejected"));
        if (build && !strcmp(build->f[3], "rejected")) first_line(it->reason, sizeof it->reason, build->f[4], 300);
        if (it->visible && *build->f[4]) add_indented(&it->output, build->f[4], 40);
        return;
    }
    int any_pass = 0;
    for (int i = 0; i < rs->n; i++)
        if (!strcmp(rs->r[i].f[0], "normal") && !strcmp(rs->r[i].f[1], row->lesson) &&
            !strcmp(rs->r[i].f[4], "ok"))
            any_pass = 1;
    /* A case that ASan or UBSan stopped (or that crashed under them) never reached the leak
     * check at its exit: for leaks, grade.sh ran it again with LeakSanitizer alone (records
     * "leak"). If it did not get there either, although the plain build ran it to its end,
     * the leak check did not run where it could have: no point ("missed"). */
    int n = 0, bad = 0, unchecked = 0, missed = 0;
    const Record *first = NULL;
    Buf lines = {0}, missed_lines = {0};
    for (int i = 0; i < rs->n; i++) {
        const Record *e = &rs->r[i];
        if (strcmp(e->f[0], "expect") || strcmp(e->f[1], row->lesson)) continue;
        n++;
        const Record *r = NULL;
        for (int j = 0; j < rs->n && !r; j++) /* the san record of this case (not consumed) */
            if (!strcmp(rs->r[j].f[0], "san") && !strcmp(rs->r[j].f[1], e->f[1]) &&
                !strcmp(rs->r[j].f[2], e->f[2]) && !strcmp(rs->r[j].f[3], e->f[3]))
                r = &rs->r[j];
        if (leaks && r && (!strcmp(r->f[4], "MEMORY") || !strcmp(r->f[4], "CRASH"))) {
            const Record *l = NULL, *plain = NULL;
            for (int j = 0; j < rs->n; j++) {
                const Record *c = &rs->r[j];
                if (strcmp(c->f[1], e->f[1]) || strcmp(c->f[2], e->f[2]) || strcmp(c->f[3], e->f[3]))
                    continue;
                if (!l && !strcmp(c->f[0], "leak")) l = c;
                if (!plain && !strcmp(c->f[0], "normal")) plain = c;
            }
            int plain_ended = plain && (!strcmp(plain->f[4], "ok") || !strcmp(plain->f[4], "FAIL") ||
                                        !strcmp(plain->f[4], "todo"));
            int l_ended = l && (!strcmp(l->f[4], "ok") || !strcmp(l->f[4], "FAIL") ||
                                !strcmp(l->f[4], "todo") || !strcmp(l->f[4], "LEAK"));
            if (l_ended) r = l; /* its verdict on leaks stands in for the sanitizers' */
            else if (plain_ended && ++missed <= 5)
                buf_printf(&missed_lines, "  %s, case \"%s\": %s\n", e->f[2], e->f[3],
                           l ? (*l->f[5] ? l->f[5] : l->f[4]) : "not run with LeakSanitizer alone");
        }
        if (r && !strcmp(r->f[4], bad_status)) {
            if (++bad <= 5) buf_printf(&lines, "  %s, case \"%s\": %s\n", e->f[2], e->f[3], r->f[5]);
            else if (bad == 6) buf_printf(&lines, "  ...\n");
            if (!first) first = r;
        } else if (!r || !strcmp(r->f[4], "TIMEOUT") || !strcmp(r->f[4], "SKIP") ||
                   !strcmp(r->f[4], "UNCHECKED") ||
                   (leaks && (!strcmp(r->f[4], "MEMORY") || !strcmp(r->f[4], "CRASH"))))
            unchecked++; /* it did not run to its end under the sanitizers */
    }
    if (bad) {
        char head[400];
        snprintf(head, sizeof head, "%d of %d cases: ", bad, n);
        copy(it->reason, sizeof it->reason, head);
        copy(it->reason + strlen(head), sizeof it->reason - strlen(head), first->f[5]);
        buf_printf(&it->output, "%s reports a problem in %d of %d cases:\n%s\nthe first report:\n",
                   what, bad, n, buf_str(&lines));
        add_indented(&it->output, first->f[6], 40);
    } else if (missed) {
        snprintf(it->reason, sizeof it->reason,
                 "the leak check did not run in %d of %d cases (stopped under the sanitizers)",
                 missed, n);
        buf_printf(&it->output, "LeakSanitizer checks for leaks when a case ends. In %d of %d cases "
                   "AddressSanitizer or UBSan stopped the case first (or it crashed under them), and a "
                   "build with LeakSanitizer alone did not get to the end of it either, although the "
                   "plain build did:\n%s"
                   "The point needs the leak check to have run: fix the memory errors first.\n",
                   missed, n, buf_str(&missed_lines));
    } else if (!any_pass) {
        snprintf(it->reason, sizeof it->reason, "no points until a test of lesson %s passes", row->lesson);
        buf_printf(&it->output, "%s checks the code that the tests run: it counts once a test of "
                   "lesson %s passes.\n", what, row->lesson);
    } else {
        it->score = it->max;
        buf_printf(&it->output, "%s: no report in %d cases.\n", what, n - unchecked);
        if (unchecked) {
            snprintf(it->reason, sizeof it->reason, "%d of %d cases not checked (they did not finish)",
                     unchecked, n);
            buf_printf(&it->output, "%d cases did not finish under %s and were not checked.\n",
                       unchecked, leaks ? "LeakSanitizer" : "the sanitizers");
        }
    }
    free(lines.s);
    free(missed_lines.s);
}

/* ------------------------------------------------------------------------------------
 * writing: JSON strings, the table, the CSV
 * ---------------------------------------------------------------------------------- */


static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

typedef struct {
    const char *student, *json, *table, *csv, *visibility, *timeout, *note;
    double elapsed;
} Args;

static void write_table(FILE *f, const Args *a, Item *items, int n, double score, double max,
                        double bonus, double bonus_max) {
    fprintf(f, "moekit grade: %s\n", a->student);
    if (a->note) fprintf(f, "(%s)\n", a->note);
    fputc('\n', f);
    fprintf(f, " Score    Max  Lesson         Test                          Status  Reason\n");
    const char *last = "";
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        char lesson[48];
        snprintf(lesson, sizeof lesson, "%s %s", it->row->lesson, it->lesson_name);
        int same = !strcmp(last, it->row->lesson);
        if (!same && i) fputc('\n', f);
        last = it->row->lesson;
        char reason[160];
        snprintf(reason, sizeof reason, "%s", it->reason);
        if (strlen(it->reason) >= sizeof reason - 1) memcpy(reason + sizeof reason - 4, "...", 4);
        if (*reason)
            fprintf(f, "%6.2f %6.6g  %-14s %-29s %-7s %s\n", it->score, it->max, same ? "" : lesson,
                    it->row->item, it->score == it->max ? "ok" : "FAIL", reason);
        else
            fprintf(f, "%6.2f %6.6g  %-14s %-29s %s\n", it->score, it->max, same ? "" : lesson,
                    it->row->item, it->score == it->max ? "ok" : "FAIL");
    }
    fprintf(f, "\nTotal %.2f / %.6g", score, max);
    if (bonus_max > 0) fprintf(f, "   (bonus %.2f / %.6g, included in the total)", bonus, bonus_max);
    fprintf(f, "\n");
}

static void write_json(FILE *f, const Args *a, Item *items, int n, double score, const char *summary) {
    fprintf(f, "{\n  \"score\": %.2f,\n  \"execution_time\": %.0f,\n  \"output\": ", score, a->elapsed);
    json_put_string(f, summary);
    fprintf(f, ",\n  \"visibility\": ");
    json_put_string(f, a->visibility);
    fprintf(f, ",\n  \"stdout_visibility\": \"hidden\",\n  \"tests\": [");
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        char name[300];
        snprintf(name, sizeof name, "%s %s%s: %s", it->row->lesson, it->lesson_name,
                 it->bonus ? " (bonus)" : "", it->row->item);
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_put_string(f, name);
        fprintf(f, ", \"number\": ");
        json_put_string(f, it->number);
        fprintf(f, ", \"score\": %.2f, \"max_score\": %.6g, \"status\": \"%s\",\n     \"output\": ",
                it->score, it->max, it->score == it->max ? "passed" : "failed");
        json_put_string(f, buf_str(&it->output));
        fprintf(f, ", \"visibility\": ");
        json_put_string(f, it->visible ? "visible" : a->visibility);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

/* Header and one row: student, score, max_score, bonus, one column per lesson, problems. */
static void write_csv(FILE *f, const Args *a, Item *items, int n, double score, double max,
                      double bonus) {
    fputs("student,score,max_score,bonus", f);
    for (int i = 0; i < n; i++)
        if (!i || strcmp(items[i].row->lesson, items[i - 1].row->lesson)) {
            char col[64];
            snprintf(col, sizeof col, "%s %s", items[i].row->lesson, items[i].lesson_name);
            fputc(',', f);
            csv_field(f, col);
        }
    fputs(",problems\n", f);
    csv_field(f, a->student);
    fprintf(f, ",%.2f,%.6g,%.2f", score, max, bonus);
    Buf problems = {0};
    for (int i = 0; i < n; i++) {
        if (i && !strcmp(items[i].row->lesson, items[i - 1].row->lesson)) continue;
        double sum = 0;
        for (int j = i; j < n && !strcmp(items[j].row->lesson, items[i].row->lesson); j++) {
            sum += items[j].score;
            const char *r = items[j].reason;
            const char *word = strstr(r, "did not compile")     ? "did not compile"
                               : strstr(r, "rejected: ")        ? "rejected"
                               : strstr(r, "was not submitted") ? "not submitted"
                               : strstr(r, "timed out")         ? "timed out"
                               : strstr(r, "Bad system call")   ? "forbidden call"
                               : strstr(r, "output flood")      ? "output flood"
                               : strstr(r, "forbidden file")    ? "forbidden file"
                               : strstr(r, "forged records")    ? "forged records"
                               : strstr(r, "runner died")       ? "killed the runner"
                               : strstr(r, "before the tests began") ? "process before main"
                               : strstr(r, "before the test ended")  ? "exited early"
                               : strstr(r, "LeakSanitizer")     ? "leaks"
                               : strstr(r, "Sanitizer")         ? "memory error"
                               : items[j].score < items[j].max && (strstr(r, "Segmentation") ||
                                                                   strstr(r, "Abort") ||
                                                                   strstr(r, "exited with"))
                                   ? "crashed"
                                   : NULL;
            char note[64];
            snprintf(note, sizeof note, "%s %s", items[j].row->lesson, word ? word : "");
            if (word && !strstr(buf_str(&problems), note))
                buf_printf(&problems, "%s%s", problems.len ? "; " : "", note);
        }
        fprintf(f, ",%.2f", round2(sum));
    }
    fputc(',', f);
    csv_field(f, buf_str(&problems));
    fputc('\n', f);
    free(problems.s);
}

/* ------------------------------------------------------------------------------------
 * --validate: the fields Gradescope reads
 * ---------------------------------------------------------------------------------- */

static int problems;
static void complain(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", path);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    problems++;
}

static int valid_visibility(const char *v) {
    return v && (!strcmp(v, "visible") || !strcmp(v, "hidden") || !strcmp(v, "after_due_date") ||
                 !strcmp(v, "after_published"));
}

static int validate(const char *path) {
    size_t len;
    char *text = slurp(path, &len), err[256];
    JsonValue *root = json_parse(text, len, err, sizeof err);
    free(text);
    if (!root) return fprintf(stderr, "%s: %s\n", path, err), 1;
    double score = 0, sum = 0;
    if (root->type != JSON_OBJECT) complain(path, "the top level must be an object");
    if (json_number(json_get(root, "score"), &score) != 0 || score < 0)
        complain(path, "\"score\" must be a number >= 0");
    const JsonValue *vis = json_get(root, "visibility");
    if (vis && !valid_visibility(json_string(vis))) complain(path, "bad top-level \"visibility\"");
    const JsonValue *tests = json_get(root, "tests");
    if (!tests || tests->type != JSON_ARRAY) complain(path, "\"tests\" must be an array");
    size_t n = json_len(tests);
    for (size_t i = 0; i < n; i++) {
        const JsonValue *t = json_at(tests, i);
        double s = -1, m = -1;
        const char *name = json_string(json_get(t, "name"));
        const char *number = json_string(json_get(t, "number"));
        const char *status = json_string(json_get(t, "status"));
        if (!t || t->type != JSON_OBJECT) {
            complain(path, "tests[%zu] is not an object", i);
            continue;
        }
        if (!name || !*name) complain(path, "tests[%zu]: \"name\" must be a non-empty string", i);
        if (!number || !*number) complain(path, "tests[%zu]: \"number\" must be a non-empty string", i);
        if (json_number(json_get(t, "score"), &s) != 0 || s < 0)
            complain(path, "tests[%zu]: \"score\" must be a number >= 0", i);
        if (json_number(json_get(t, "max_score"), &m) != 0 || m < 0)
            complain(path, "tests[%zu]: \"max_score\" must be a number >= 0", i);
        if (s > m + 1e-9) complain(path, "tests[%zu]: score %g is above max_score %g", i, s, m);
        if (!status || (strcmp(status, "passed") && strcmp(status, "failed")))
            complain(path, "tests[%zu]: \"status\" must be \"passed\" or \"failed\"", i);
        else if ((!strcmp(status, "passed")) != (s == m))
            complain(path, "tests[%zu]: status \"%s\" but score %g of %g", i, status, s, m);
        if (!json_string(json_get(t, "output"))) complain(path, "tests[%zu]: \"output\" must be a string", i);
        if (!valid_visibility(json_string(json_get(t, "visibility"))))
            complain(path, "tests[%zu]: \"visibility\" must be visible, hidden, after_due_date or "
                     "after_published", i);
        for (size_t j = 0; j < i && number; j++) {
            const char *other = json_string(json_get(json_at(tests, j), "number"));
            if (other && !strcmp(other, number)) complain(path, "tests[%zu]: number \"%s\" repeats", i, number);
        }
        sum += s > 0 ? s : 0;
    }
    if (fabs(sum - score) > 0.005 * (double)(n + 1))
        complain(path, "\"score\" %.2f is not the sum of the tests' scores, %.2f", score, sum);
    if (!problems) printf("%s: valid (%zu tests, score %.2f)\n", path, n, score);
    json_free(root);
    return problems ? 1 : 0;
}

/* ------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------- */

static FILE *open_out(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write %s", path);
    return f;
}

int main(int argc, char **argv) {
    Args a = {"student", NULL, NULL, NULL, "visible", "10", NULL, 0};
    const char *points_path = NULL, *records_path = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--check")) {
            check_only = 1;
            continue;
        }
        if (!v) die("%s needs a value", k);
        i++;
        if (!strcmp(k, "--validate")) return validate(v);
        else if (!strcmp(k, "--points")) points_path = v;
        else if (!strcmp(k, "--records")) records_path = v;
        else if (!strcmp(k, "--student")) a.student = v;
        else if (!strcmp(k, "--json")) a.json = v;
        else if (!strcmp(k, "--table")) a.table = v;
        else if (!strcmp(k, "--csv")) a.csv = v;
        else if (!strcmp(k, "--visibility")) a.visibility = v;
        else if (!strcmp(k, "--timeout")) a.timeout = v;
        else if (!strcmp(k, "--elapsed")) a.elapsed = atof(v);
        else if (!strcmp(k, "--note")) a.note = v;
        else die("unknown option %s", k);
    }
    if (check_only && points_path) { /* the table alone: does it read? */
        Points pts = read_points(points_path);
        printf("%s: %d rows\n", points_path, pts.n);
        for (int i = 0; i < pts.n; i++) free(pts.rows[i].item);
        free(pts.rows);
        return 0;
    }
    if (!points_path || !records_path) die("usage: grade_report --points FILE --records FILE ...");
    if (!valid_visibility(a.visibility))
        die("visibility must be visible, hidden, after_due_date or after_published");
    Points pts = read_points(points_path);
    Records rs = read_records(records_path);

    /* the items: rows of lessons that were graded, in the table's order, lessons sorted */
    Item *items = xrealloc(NULL, sizeof(Item) * (size_t)pts.n);
    int n = 0;
    for (int lesson = 0; lesson < 100; lesson++) {
        char id[8];
        snprintf(id, sizeof id, "%02d", lesson);
        const Record *L = find(&rs, "lesson", id, NULL);
        int k = 0;
        for (int r = 0; r < pts.n; r++) {
            if (strcmp(pts.rows[r].lesson, id)) continue;
            if (!L) continue; /* not graded this time (LESSONS=...) */
            Item *it = &items[n++];
            memset(it, 0, sizeof *it);
            it->row = &pts.rows[r];
            it->lesson_name = L->f[2];
            it->bonus = is_bonus(&pts, id);
            snprintf(it->number, sizeof it->number, "%d.%d", lesson, ++k);
            if (!strcmp(it->row->item, "memory") || !strcmp(it->row->item, "leaks"))
                continue; /* after the tests: they need to know whether one passed */
            grade_test(it, &rs, a.timeout);
        }
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(items[i].row->item, "memory") || !strcmp(items[i].row->item, "leaks"))
            grade_sanitizer(&items[i], &rs);
    for (int i = 0; i < rs.n; i++) /* a graded lesson the table gives no points */
        if (!strcmp(rs.r[i].f[0], "lesson")) {
            int has = 0;
            for (int r = 0; r < pts.n; r++) has |= !strcmp(pts.rows[r].lesson, rs.r[i].f[1]);
            if (!has) fprintf(stderr, "grade_report: lesson %s has no rows in %s: not graded\n",
                              rs.r[i].f[1], points_path);
        }
    if (!n) die("no lesson of %s was graded", points_path);

    double score = 0, max = 0, bonus = 0, bonus_max = 0;
    for (int i = 0; i < n; i++) {
        score += items[i].score;
        if (items[i].bonus) bonus += items[i].score, bonus_max += items[i].max;
        else max += items[i].max;
    }
    score = round2(score);
    bonus = round2(bonus);

    Buf table = {0};
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (!mem) die("out of memory");
    write_table(mem, &a, items, n, score, max, bonus, bonus_max);
    fclose(mem);
    buf_add(&table, text, text_len);
    free(text);
    if (a.table) {
        FILE *f = open_out(a.table);
        fputs(buf_str(&table), f);
        fclose(f);
    }
    if (a.json) {
        Buf summary = {0};
        buf_printf(&summary, "moekit: %.2f of %.6g points", score, max);
        if (bonus_max > 0) buf_printf(&summary, " (with %.2f of %.6g bonus points)", bonus, bonus_max);
        buf_printf(&summary, ".\nEvery test below says what it checked; a memory or leak item names "
                   "the line that AddressSanitizer or LeakSanitizer points at. `make check SANITIZE=1` "
                   "shows the same on your machine.\n");
        FILE *f = open_out(a.json);
        write_json(f, &a, items, n, score, buf_str(&summary));
        fclose(f);
        free(summary.s);
    }
    if (a.csv) {
        FILE *f = open_out(a.csv);
        write_csv(f, &a, items, n, score, max, bonus);
        fclose(f);
    }
    fputs(buf_str(&table), stdout);
    free(table.s);
    for (int i = 0; i < n; i++) free(items[i].output.s);
    free(items);
    for (int i = 0; i < rs.n; i++)
        for (int f = 0; f < MAX_FIELDS; f++) free(rs.r[i].f[f]);
    free(rs.r);
    for (int i = 0; i < pts.n; i++) free(pts.rows[i].item);
    free(pts.rows);
    return 0;
}
