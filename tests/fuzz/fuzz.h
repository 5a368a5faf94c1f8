/* Helpers of the fuzz targets (tests/fuzz/fuzz_*.c). A target checks the
 * promises of the code it drives, not only that it does not crash: a broken
 * promise aborts with FUZZ_CHECK, which libFuzzer and the corpus replay
 * (replay_main.c) both report as a failure with the input that caused it. */
#ifndef NMC_TESTS_FUZZ_FUZZ_H
#define NMC_TESTS_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* A NUL-terminated malloc'd copy of data[0..size) (the NULs inside kept). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits data at its first '\n' into two NUL-terminated copies (the second
 * is "" without one) and returns the second's length (NULs inside count).
 * Free both. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **a, char **b)
{
    const uint8_t *nl = size > 0 ? memchr(data, '\n', size) : NULL;
    size_t alen = nl != NULL ? (size_t)(nl - data) : size;
    size_t blen = nl != NULL ? size - alen - 1 : 0;
    *a = fuzz_str(data, alen);
    *b = nl != NULL ? fuzz_str(nl + 1, blen) : fuzz_str(data, 0);
    return blen;
}

#endif
