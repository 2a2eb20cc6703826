/* clock.h: wall-clock time for the CLI's tokens/s and the bench (clock.c). */
#ifndef MOEKIT_CLOCK_H
#define MOEKIT_CLOCK_H

/* Seconds on a monotonic clock (CLOCK_MONOTONIC): only differences mean something. */
double now_seconds(void);

#endif /* MOEKIT_CLOCK_H */
