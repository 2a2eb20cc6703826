/* quantize.h: `moekit quantize` (quantize.c). */
#ifndef MOEKIT_QUANTIZE_H
#define MOEKIT_QUANTIZE_H

#include "weights.h"

/* The command: argv[0] is "quantize". Returns the exit status (0, 1 or 2). */
int cmd_quantize(int argc, char **argv);

/* The checkpoint in in_dir written to out_dir with its matrices in blocks of type (Q8_0 or
 * Q4_0). 0, or 1 after a one-line message. */
int quantize_dir(const char *in_dir, const char *out_dir, WType type);

#endif
