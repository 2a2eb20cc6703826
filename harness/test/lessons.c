/* lessons.c: the lessons the test runner knows, in the order students do them. */
#include "check.h"

extern const LessonDef LESSON_01, LESSON_02, LESSON_03, LESSON_04, LESSON_05, LESSON_06,
    LESSON_07, LESSON_08, LESSON_09, LESSON_10;
extern const LessonDef LESSON_11, LESSON_12;
extern const LessonDef LESSON_13;

const LessonDef *const LESSONS[] = {&LESSON_01, &LESSON_02, &LESSON_03, &LESSON_04,
                                    &LESSON_05, &LESSON_06, &LESSON_07, &LESSON_08, &LESSON_09,
                                    &LESSON_10, /* bonus (optional) */
                                    &LESSON_11, /* the tokenizer (optional) */
                                    &LESSON_12, /* MPI (optional) */
                                    &LESSON_13, /* quantization (optional) */
                                    NULL};

/* Lessons 01-08 build the model (the core); the ones after them are optional. */
const int CORE_LESSONS = 8;

/* Lesson 12 runs under mpirun (lesson12_expert_parallel.c). */
void ep_start(const char *fixture);
const char *ep_unavailable(const char *fixture, int role);
void lesson_start(const LessonDef *L, const char *fixture) {
    if (L == &LESSON_12) ep_start(fixture);
}
const char *lesson_unavailable(const LessonDef *L, const char *fixture, int role) {
    return L == &LESSON_12 ? ep_unavailable(fixture, role) : NULL;
}
