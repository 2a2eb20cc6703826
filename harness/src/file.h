/* file.h: reading a whole file (file.c). */
#ifndef MOEKIT_FILE_H
#define MOEKIT_FILE_H

#include <stddef.h>

/* The whole of the regular file at path, NUL-terminated (malloc'd), its size in *len (len
 * may be NULL). NULL with a one-line message in err that starts with path, when it
 * cannot be opened or read, is not a regular file, or holds more than max bytes. */
char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif /* MOEKIT_FILE_H */
