/*
 * relations.h: what kind of wrong an output is, from the output and the expected one alone.
 *
 * The named mistakes of diagnoses.c need a wrong variant stored in the fixture. A relation
 * needs nothing stored: it tests how the student's output `got` relates to the expected
 * one `exp` (the same n values, laid out as the test's Layout), e.g. "got is exp times
 * 0.25", "token t holds the expected of token t - 1", "right except the last 3 values of
 * every row". compare.c tries them when no stored variant names the mistake, and prints the
 * first that holds as a "looks like, from the numbers alone:" line.
 *
 * Every relation is silent on a right output (it needs some value that is wrong at the
 * test's own tolerance) and compares got with the transformed exp at 10 times that
 * tolerance, as the stored variants are compared.
 */
#ifndef MOEKIT_RELATIONS_H
#define MOEKIT_RELATIONS_H

#include <stddef.h>

#include "check.h"

/* The expected output of another case of the same test, of the same size. */
typedef struct {
    const char *case_id; /* "prefill_mha" */
    const char *title;   /* its title, for the message */
    const float *exp;    /* its expected output: n values */
} OtherCase;

typedef struct {
    const float *got, *exp; /* the student's output and the expected one, n values each */
    const Layout *l;        /* their shape and dimension names; the shape's product is n */
    long n;
    float atol, rtol;       /* the test's tolerance: |got - exp| <= atol + rtol * |exp| */
    const OtherCase *others; /* other cases' expected outputs (may be NULL) */
    int n_others;
} RelInput;

/* A relation: 1 and one sentence in why (len bytes) when it holds, else 0. */
typedef int (*RelationFn)(const RelInput *r, char *why, size_t len);

typedef struct {
    const char *name; /* "scale": for the tests and the measurements */
    RelationFn holds;
} Relation;

/* Every relation, most specific first; ends with {0}. */
extern const Relation RELATIONS[];

/* The first relation that holds: its entry, with its sentence in why; NULL when none does. */
const Relation *relation_find(const RelInput *r, char *why, size_t len);

#endif
