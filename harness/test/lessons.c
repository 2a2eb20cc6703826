/* lessons.c: the lessons the test runner knows, in the order students do them. */
#include "check.h"

extern const LessonDef LESSON_01, LESSON_02, LESSON_03, LESSON_04, LESSON_05, LESSON_06,
    LESSON_07, LESSON_08, LESSON_09, LESSON_10;

const LessonDef *const LESSONS[] = {&LESSON_01, &LESSON_02, &LESSON_03, &LESSON_04,
                                    &LESSON_05, &LESSON_06, &LESSON_07, &LESSON_08, &LESSON_09,
                                    &LESSON_10, /* bonus (optional) */
                                    NULL};

/* Lessons 01-08 build the model (the core); the ones after them are optional. */
const int CORE_LESSONS = 8;
