/* strip.h: a fixture without its expected values, for the grader's sandbox (strip.c). */
#ifndef MOEKIT_STRIP_H
#define MOEKIT_STRIP_H

#include <stddef.h>

#include "check_internal.h"
#include "safetensors.h"

/* Writes fx to path with only the cases whose id starts with prefix, without the tensors
 * that are in expected and not in inputs (names relative to their case), without any `~`
 * variant and without the file-wide metadata but "cases" and "lesson". 0, or -1 with a
 * message naming path. */
int strip_write(const SafeTensors *fx, const char *prefix, const NameSet *inputs,
                const NameSet *expected, const char *path, char *err, size_t errlen);

#endif
