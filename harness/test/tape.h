/*
 * tape.h: what the student's code produced in the grader's sandbox, on its way to the judge.
 *
 * `make grade` runs each test twice (check.h, "what the student's code produced"). The
 * sandboxed run writes a tape; the judge reads it. The tape is a stream of records, one
 * section per test and case:
 *
 *     T <lesson>\t<func>\t<case>\n            a test starts (the runner, before its fork)
 *     O <key> F <n>\n<n float32, raw>          an output of the student's code (observe)
 *     O <key> I <n>\n<n int32, raw>            an integer output (observe_ints)
 *     D <func>\t<file>\t<line>\t<what>\n       a TODO() was hit: the test counts as todo
 *     E <ending>\t<why>\t<report>\n           how the test's process ended (the runner)
 *     P <what>\n                              something forbidden the runner saw (a process
 *                                             that started before the tests, say)
 *     S\n                                     a sandbox starts (the grader, never the runner)
 *     X <why>\n                               the grader stopped the sandbox at its
 *                                             wall-clock limit: the open section timed out
 *
 * ending is "" (it returned), CRASH, TIMEOUT, MEMORY, LEAK, UNCHECKED or SKIP; text fields
 * are escaped as in the runner's records (\t, \n, \\). Everything on the tape came from a
 * process that ran the student's code, so it is read as hostile: a record that does not
 * parse ends the tape there, sizes are bounded, and nothing on it is ever a verdict. It
 * can only say what the student's functions returned and how the process ended.
 *
 * The runner writes each section whole: T, then the outputs, then E. A T inside an open
 * section, or an E after the section's own, came from somewhere else: the student's code
 * writing to the runner's descriptor. The reader marks the section forged and reads on,
 * so that the judge can name it (a forged record can only lose points: its outputs are
 * compared like any other).
 */
#ifndef MOEKIT_TAPE_H
#define MOEKIT_TAPE_H

#include <stdio.h>

#define TAPE_MAX_VALUES (1L << 26) /* one output: 256 MiB; more is not a real answer */

typedef struct {
    char *key;
    char type; /* 'F' float32, 'I' int32 */
    long n;
    void *data;
} TapeOutput;

typedef struct TapeSection {
    char *lesson, *func, *case_id;
    TapeOutput *outputs;
    int n_outputs;
    char *todo;   /* the first D record's text, or NULL */
    int ended;    /* an E record was seen */
    char *ending, *why, *report;
    int forged;   /* records inside it that its runner did not write */
} TapeSection;

typedef struct {
    TapeSection *sections;
    int n;
    char *problem; /* the first P record's text, or NULL */
} Tape;

/* the sandbox's side */
void tape_begin(FILE *f, const char *lesson, const char *func, const char *case_id);
void tape_output(FILE *f, const char *key, char type, const void *data, long n);
void tape_todo(FILE *f, const char *func, const char *file, int line, const char *what);
void tape_end(FILE *f, const char *ending, const char *why, const char *report);
void tape_problem(FILE *f, const char *what);

/* the judge's side: reads path whole (a damaged tail is dropped); 0, or -1 with err */
int tape_read(Tape *t, const char *path, char *err, size_t errlen);
/* the same on bytes[0 .. size), which it changes (lines are cut in place) */
void tape_parse(Tape *t, char *bytes, size_t size);
void tape_free(Tape *t);
const TapeSection *tape_find(const Tape *t, const char *lesson, const char *func,
                             const char *case_id);
const TapeOutput *tape_find_output(const TapeSection *s, const char *key);

#endif
