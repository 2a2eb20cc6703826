/* clock.h: timing for the CLI's tokens/s and the benches: a monotonic clock, and the
 * median of repeated timings (clock.c). */
#ifndef MOEKIT_CLOCK_H
#define MOEKIT_CLOCK_H

/* Seconds on a monotonic clock (CLOCK_MONOTONIC): only differences mean something. */
double now_seconds(void);

/* The median of v[0 .. n), n >= 1, which it sorts in place. */
double median(double *v, int n);

#endif /* MOEKIT_CLOCK_H */
