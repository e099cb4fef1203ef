/* The interface of tokumei's native JSON Lines pass (jsonl.c): one declaration for the library
 * and for the stand-alone driver (harness.c), so a change of signature breaks their build, not
 * their memory. Python mirrors it with ctypes in tokumei/ingest/jsonl_native.py. */
#ifndef TOKUMEI_JSONL_H
#define TOKUMEI_JSONL_H

#include <stdint.h>

/* One output column: text bytes allocated by the pass, released by the caller (tk_free). */
typedef struct {
    uint8_t *data;
    int64_t len;
    int64_t cap;
} tk_col;

int64_t tk_jsonl_parse(const uint8_t *buf, const int64_t *starts, const int64_t *lens, int64_t n,
                       const char *const *keys, const int64_t *klens, const int8_t *kinds,
                       int32_t nkeys, int8_t *status, int64_t *accepted, int64_t *const *offsets,
                       uint8_t *const *valid, tk_col *cols);

void tk_free(void *p);

#endif
