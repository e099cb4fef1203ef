/* A stand-alone driver of tk_jsonl_parse, for sanitizer and valgrind runs outside Python
 * (tests/test_jsonl_native.py builds it with -fsanitize=address,undefined).
 *
 *   harness LINES_FILE name:kind [name:kind ...]
 *
 * Reads newline-ended lines, parses them all in one call with the given keys (kind as in
 * jsonl.c: -1 not extracted, 0 text, 1 int, 2 float, 3 bool) and prints the counts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) return 2;
    fclose(f);
    int64_t n = 0;
    for (long i = 0; i < size; i++) n += buf[i] == '\n';
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *lens = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t start = 0, k = 0;
    for (long i = 0; i < size; i++)
        if (buf[i] == '\n') { starts[k] = start; lens[k++] = i - start; start = i + 1; }
    int nkeys = argc - 2;
    const char **keys = calloc((size_t)nkeys, sizeof(char *));
    int64_t *klens = calloc((size_t)nkeys, sizeof(int64_t));
    int8_t *kinds = calloc((size_t)nkeys, 1);
    int64_t **offsets = calloc((size_t)nkeys, sizeof(int64_t *));
    uint8_t **valid = calloc((size_t)nkeys, sizeof(uint8_t *));
    tk_col *cols = calloc((size_t)nkeys, sizeof(tk_col));
    for (int i = 0; i < nkeys; i++) {
        char *colon = strrchr(argv[i + 2], ':');
        if (!colon) return 2;
        *colon = 0;
        keys[i] = argv[i + 2];
        klens[i] = (int64_t)strlen(keys[i]);
        kinds[i] = (int8_t)atoi(colon + 1);
        if (kinds[i] >= 0) {
            offsets[i] = malloc(sizeof(int64_t) * (size_t)(n + 1));
            valid[i] = malloc((size_t)n + 1);
        }
    }
    int8_t *status = malloc((size_t)n + 1);
    int64_t *accepted = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t got = tk_jsonl_parse(buf, starts, lens, n, keys, klens, kinds, nkeys, status, accepted,
                                 offsets, valid, cols);
    printf("lines %lld accepted %lld\n", (long long)n, (long long)got);
    for (int i = 0; i < nkeys; i++) { free(cols[i].data); free(offsets[i]); free(valid[i]); }
    free(keys); free(klens); free(kinds); free(offsets); free(valid); free(cols);
    free(status); free(accepted); free(starts); free(lens); free(buf);
    return got < 0 ? 1 : 0;
}
