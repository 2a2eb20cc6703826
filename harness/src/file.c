/*
 * file.c: reading a whole file (see file.h). One reader for config.json, the shard index,
 * perplexity's text and the grader's tables, so each says the same things the same way.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat */
#include "file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open it (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    char *buf = NULL;
    size_t size = 0;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        snprintf(err, errlen, "%s: not a regular file", path); /* a directory, a pipe */
    else if ((uintmax_t)sb.st_size > max)
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
    else if (!(buf = malloc((size_t)sb.st_size + 1)))
        snprintf(err, errlen, "%s: out of memory for its %lld bytes", path, (long long)sb.st_size);
    else if ((size = fread(buf, 1, (size_t)sb.st_size, f)) != (size_t)sb.st_size) {
        snprintf(err, errlen, "%s: cannot read it (%s)", path,
                 ferror(f) ? strerror(errno) : "it got shorter");
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[size] = '\0';
    if (len) *len = size;
    return buf;
}
