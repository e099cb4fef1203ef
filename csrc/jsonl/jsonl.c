/* One parse per JSON line: tokumei's native pass over a chunk of a landing file.
 *
 * Why (docs/adr/0009-native-jsonl-reader.md): the typed read's DuckDB query parses each line
 * three times (json_valid, json_extract_string, json_keys); this parses it once with yyjson
 * (the parser DuckDB's JSON extension is built on) and copies each policy key's value into
 * Arrow string buffers. It only ACCEPTS a line when the DuckDB query would see a valid JSON
 * object with known keys, no nested value where a value is extracted, and would extract the
 * same text; every other line (status != 0) goes to that query, which gives its reason. So a
 * doubt costs time, never a different result.
 *
 * Kinds, per policy key (what a value may be for the line to be accepted):
 *   -1  not extracted (special care): any value;
 *    0  text (string, timestamp, date, or a column with allowed values): string or null;
 *    1  int: string, null or an integer;
 *    2  float: string, null or any number;
 *    3  bool: string, null or true/false.
 * A number or boolean is written as the DuckDB query's json_extract_string writes it:
 * integers in decimal, reals by yyjson's writer (a float column only: its cast to DOUBLE is
 * what counts, and both writers round-trip).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "../yyjson/yyjson.h"

enum {
    TK_OK = 0,
    TK_EMPTY = 1,
    TK_NOT_UTF8 = 2,
    TK_NOT_JSON = 3,
    TK_NOT_OBJECT = 4,
    TK_UNKNOWN_KEY = 5,
    TK_DUPLICATE_KEY = 6,
    TK_NUL_IN_TEXT = 7,
    TK_NESTED = 8,
    TK_OTHER_TYPE = 9,
};

#define TK_POOL (1 << 20)
#define TK_MAX_KEYS 64

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static int valid_utf8(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            uint8_t c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && c1 < 0xA0) return 0;  /* overlong */
            if (c == 0xED && c1 > 0x9F) return 0;  /* surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            uint8_t c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && c1 < 0x90) return 0;  /* overlong */
            if (c == 0xF4 && c1 > 0x8F) return 0;  /* above U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Index of the first byte >= 0x80, or n: eight bytes at a time (most lines are ASCII, and a
 * byte loop over every line was a fifth of the pass). */
static int64_t first_high_byte(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL) break;
    }
    for (; i < n; i++)
        if (s[i] & 0x80) return i;
    return n;
}

static int append(tk_col *col, const char *s, size_t l) {
    if (col->len + (int64_t)l > col->cap) {
        int64_t cap = (col->cap + (int64_t)l) * 2;
        uint8_t *grown = realloc(col->data, (size_t)cap);
        if (!grown) return 0;
        col->data = grown;
        col->cap = cap;
    }
    if (l) memcpy(col->data + col->len, s, l);
    col->len += (int64_t)l;
    return 1;
}

/* Whether value ``v`` may stand for a key of ``kind`` (see the header). */
static int accepted_value(yyjson_val *v, int8_t kind, int *status) {
    if (kind < 0) return 1;
    if (yyjson_is_null(v)) return 1;
    if (yyjson_is_str(v)) {
        if (memchr(yyjson_get_str(v), 0, yyjson_get_len(v))) { *status = TK_NUL_IN_TEXT; return 0; }
        return 1;
    }
    if (yyjson_is_obj(v) || yyjson_is_arr(v)) { *status = TK_NESTED; return 0; }
    if (yyjson_is_int(v) && (kind == 1 || kind == 2)) return 1;
    if (yyjson_is_real(v) && kind == 2) return 1;
    if (yyjson_is_bool(v) && kind == 3) return 1;
    *status = TK_OTHER_TYPE;
    return 0;
}

static int write_value(tk_col *col, yyjson_val *v) {
    char num[32];
    if (yyjson_is_str(v)) return append(col, yyjson_get_str(v), yyjson_get_len(v));
    if (yyjson_is_bool(v)) return yyjson_get_bool(v) ? append(col, "true", 4) : append(col, "false", 5);
    if (yyjson_is_uint(v)) {
        int l = snprintf(num, sizeof num, "%llu", (unsigned long long)yyjson_get_uint(v));
        return append(col, num, (size_t)l);
    }
    if (yyjson_is_sint(v)) {
        int l = snprintf(num, sizeof num, "%lld", (long long)yyjson_get_sint(v));
        return append(col, num, (size_t)l);
    }
    size_t l = 0;
    char *text = yyjson_val_write(v, YYJSON_WRITE_NOFLAG, &l);
    if (!text) return 0;
    int ok = append(col, text, l);
    free(text);
    return ok;
}

/* Parse ``n`` lines of ``buf`` (line i: ``lens[i]`` bytes from ``starts[i]``, no newline).
 *
 * ``status[i]``: 0 when line i is accepted, else why it goes to the DuckDB query. The accepted
 * lines are numbered 0..ret-1 in line order: ``accepted[r]`` is line r's index, and for each
 * extracted key k (kind >= 0) ``offsets[k][r + 1]`` ends its text in ``cols[k]`` and
 * ``valid[k][r]`` is 1 when it has a value (0: null or absent). Returns the number of accepted
 * lines, or -1 when memory ran out (then nothing is usable). ``cols[k].data`` is the caller's
 * to release with ``tk_free``, whatever the result.
 */
int64_t tk_jsonl_parse(const uint8_t *buf, const int64_t *starts, const int64_t *lens, int64_t n,
                       const char *const *keys, const int64_t *klens, const int8_t *kinds,
                       int32_t nkeys, int8_t *status, int64_t *accepted, int64_t *const *offsets,
                       uint8_t *const *valid, tk_col *cols) {
    if (nkeys > TK_MAX_KEYS) return -1;
    yyjson_val *vals[TK_MAX_KEYS];
    char *pool = malloc(TK_POOL);
    if (!pool) return -1;
    yyjson_alc alc;
    yyjson_alc_pool_init(&alc, pool, TK_POOL);
    int64_t row = 0;
    for (int k = 0; k < nkeys; k++)
        if (kinds[k] >= 0) offsets[k][0] = cols[k].len;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *line = buf + starts[i];
        int64_t len = lens[i];
        int st = TK_OK;
        int64_t hi;
        yyjson_doc *doc = NULL;
        if (len == 0) st = TK_EMPTY;
        else if ((hi = first_high_byte(line, len)) < len && !valid_utf8(line + hi, len - hi))
            st = TK_NOT_UTF8;
        else {
            size_t need = yyjson_read_max_memory_usage((size_t)len, YYJSON_READ_NOFLAG);
            doc = yyjson_read_opts((char *)line, (size_t)len, YYJSON_READ_NOFLAG,
                                   need <= TK_POOL ? &alc : NULL, NULL);
            if (!doc) st = TK_NOT_JSON;
        }
        if (st == TK_OK) {
            yyjson_val *root = yyjson_doc_get_root(doc);
            if (!yyjson_is_obj(root)) st = TK_NOT_OBJECT;
            else {
                uint64_t seen = 0;
                memset(vals, 0, sizeof(yyjson_val *) * (size_t)nkeys);
                yyjson_obj_iter it = yyjson_obj_iter_with(root);
                yyjson_val *key;
                int j = 0;
                while (st == TK_OK && (key = yyjson_obj_iter_next(&it))) {
                    const char *ks = yyjson_get_str(key);
                    size_t kl = yyjson_get_len(key);
                    int found = -1;
                    /* exporters write keys in one order: try the policy's position first */
                    if (j < nkeys && (size_t)klens[j] == kl && memcmp(keys[j], ks, kl) == 0) found = j;
                    for (int k = 0; found < 0 && k < nkeys; k++)
                        if ((size_t)klens[k] == kl && memcmp(keys[k], ks, kl) == 0) found = k;
                    j++;
                    if (found < 0) { st = TK_UNKNOWN_KEY; break; }
                    if (seen & ((uint64_t)1 << found)) { st = TK_DUPLICATE_KEY; break; }
                    seen |= (uint64_t)1 << found;
                    yyjson_val *v = yyjson_obj_iter_get_val(key);
                    if (!accepted_value(v, kinds[found], &st)) break;
                    vals[found] = v;
                }
            }
        }
        if (st == TK_OK) {
            for (int k = 0; k < nkeys; k++) {
                if (kinds[k] < 0) continue;
                yyjson_val *v = vals[k];
                int present = v != NULL && !yyjson_is_null(v);
                if (present && !write_value(&cols[k], v)) { yyjson_doc_free(doc); free(pool); return -1; }
                valid[k][row] = (uint8_t)present;
                offsets[k][row + 1] = cols[k].len;
            }
            accepted[row++] = i;
        }
        status[i] = (int8_t)st;
        if (doc) yyjson_doc_free(doc);
    }
    free(pool);
    return row;
}

void tk_free(void *p) { free(p); }
