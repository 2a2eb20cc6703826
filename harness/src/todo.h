/* todo.h: records the TODO() calls of unfinished lesson code (see moekit.h). */
#ifndef MOEKIT_TODO_H
#define MOEKIT_TODO_H

typedef struct {
    const char *func, *file, *what;
    int line;
} TodoHit;

void todo_reset(void);
const TodoHit *todo_first(void); /* the first TODO hit since todo_reset, or NULL */

#endif
