/* diagnoses.h: named classic mistakes (see diagnoses.c). */
#ifndef MOEKIT_DIAGNOSES_H
#define MOEKIT_DIAGNOSES_H

typedef struct {
    const char *mistake; /* the fixture's variant name: "rope_interleaved" */
    const char *lesson;  /* "03-rope": where the README section is */
    const char *looks_like;
    const char *fix;
    const char *section; /* README section title */
} Diagnosis;

const Diagnosis *diagnosis_find(const char *mistake); /* NULL if unknown */
const Diagnosis *diagnosis_at(int i);                 /* NULL past the end */

#endif
