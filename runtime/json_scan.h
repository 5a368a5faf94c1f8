/* Reading a few string members of a JSON object without building a tree.
 *
 * Reporting reads two members of every activity event's payload (three
 * events per missed call). jansson's json_loads built a whole tree for
 * that: a quarter of nmc's instructions per call (bench/README.md,
 * NMC_BENCH_CALLGRIND). This checks the text as json_loads(text, 0, ...)
 * would and copies only the members asked for. */
#ifndef NMC_RUNTIME_JSON_SCAN_H
#define NMC_RUNTIME_JSON_SCAN_H

#include <stddef.h>

#define NMC_JSON_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

enum nmc_json_got {
    NMC_JSON_ABSENT = 0,   /* no member of that name, or its value is not a string */
    NMC_JSON_STRING = 1,   /* the string, unescaped and NUL-terminated, is in its slot */
    NMC_JSON_TOO_LONG = 2, /* a string of cap bytes or more: its slot holds "" */
};

/* Checks that text (len bytes) is one JSON object (RFC 8259) that jansson's
 * json_loadb(text, len, 0, ...) accepts: well-formed UTF-8, no NUL in a
 * string or anywhere else, surrogate escapes in pairs, nesting at most
 * NMC_JSON_MAX_DEPTH deep, nothing but whitespace after it. Then, for each
 * of the nkeys names in keys, the object's own member of that name (the
 * last one when the name repeats, as in jansson; members of nested values
 * are not looked at) is reported in got[i], and a string value is copied
 * to vals + i * cap (cap bytes with its NUL). 0, or NMC_EINVAL when text
 * is not such an object (got[] and vals are then unspecified).
 *
 * One difference: numbers are checked for their grammar only, where
 * jansson also rejects integers beyond 64 bits and reals beyond a double's
 * range (tests/fuzz/fuzz_json_scan.c compares the two on every input). */
int nmc_json_object_strings(const char *text, size_t len, const char *const *keys, size_t nkeys, char *vals,
                            size_t cap, enum nmc_json_got *got);

#endif
