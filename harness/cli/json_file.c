/* json_file.c: see json_file.h. */
#include "json_file.h"

#include <stdio.h>
#include <stdlib.h>

#include "file.h"

int json_file_optional(const char *dir, const char *name, JsonValue **root, char *err,
                       size_t errlen) {
    char path[4096], jerr[256];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    char *text = read_file(path, 1 << 24, &len, err, errlen);
    if (!text) return -1;
    *root = json_parse(text, len, jerr, sizeof jerr);
    free(text);
    if (!*root) return snprintf(err, errlen, "%s: %s", path, jerr), -1;
    return 0;
}
