/* sampling.h: generation_config.json's sampling defaults, and the top-k and min-p filters
 * the CLI applies to the logits before lesson 08's sample() (temperature, top-p). */
#ifndef MOEKIT_SAMPLING_H
#define MOEKIT_SAMPLING_H

#include <stddef.h>

#include "args.h"

/* Fills what the command line did not give (a->given) from a->model_dir's
 * generation_config.json, when it has one: temperature, top_p, top_k, min_p, and
 * do_sample false as greedy. Prints a note on stderr when it took any. 0, or -1 with one
 * line in err naming the file and the key. */
int sampling_defaults(Args *a, char *err, size_t errlen);

/* logits (V) -> out (V): -inf for every token outside the top_k largest (ties with the
 * k-th kept; 0: no limit) and, when temperature > 0, every token whose probability at that
 * temperature is below min_p times the largest one (0: none), as transformers'
 * TopKLogitsWarper and MinPLogitsWarper. heap: scratch of top_k floats. */
void sampling_filter(const float *logits, int V, int top_k, float min_p, float temperature,
                     float *out, float *heap);

#endif
