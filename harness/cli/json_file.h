/*
 * json_file.h: a model directory's optional JSON files (generation_config.json, and
 * config.json read again for its eos ids), read and parsed whole.
 */
#ifndef MOEKIT_JSON_FILE_H
#define MOEKIT_JSON_FILE_H

#include <stddef.h>

#include "json.h"

/* dir/name parsed into *root (json_free it). 0 with *root NULL when there is no such
 * file; -1 with "PATH: problem" in err when it cannot be read or is not JSON. */
int json_file_optional(const char *dir, const char *name, JsonValue **root, char *err,
                       size_t errlen);

#endif
