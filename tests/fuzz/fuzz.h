/*  fuzz.h - what the libFuzzer harnesses in tests/fuzz share

    Each tests/fuzz/NAME.c defines LLVMFuzzerTestOneInput for one parser of
    untrusted input and is built into fuzz-NAME (make fuzz, docs/fuzzing.md).
    A harness checks more than "does not crash": it asserts what the parser
    promises (a round trip gives the same value, what is accepted can be
    written back), and a failed FUZZ_CHECK aborts like a sanitizer report.
*/
#ifndef AQ_FUZZ_H
#define AQ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Aborts with the failed condition (libFuzzer saves the input as a crash).
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf (stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);         \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

//  A NUL-terminated malloc'd copy of data (C code sees it up to its first NUL).
static inline char *fuzz_strndup (const uint8_t *data, size_t size) {
    char *text = malloc (size + 1);
    FUZZ_CHECK (text);
    if (size)
        memcpy (text, data, size);
    text[size] = '\0';
    return text;
}

//  Takes n bytes off the front of the input as an unsigned big-endian
//  number (fewer when the input is shorter; 0 when empty).
static inline uint64_t fuzz_take (const uint8_t **data, size_t *size, int n) {
    uint64_t value = 0;
    for (int i = 0; i < n && *size; i++, (*data)++, (*size)--)
        value = value << 8 | **data;
    return value;
}

//  True when text[0..size) is well-formed UTF-8 (what a msgpack string of
//  the protocol must be: an error message that is not fails the frame).
static inline bool fuzz_utf8 (const uint8_t *text, size_t size) {
    for (size_t i = 0; i < size;) {
        uint8_t c = text[i];
        size_t n = c < 0x80                 ? 0
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 4;
        if (n == 4 || i + n >= size + (n == 0))
            return false;
        uint32_t cp = n == 0 ? c : c & (0x3F >> n);
        for (size_t k = 1; k <= n; k++) {
            if ((text[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (text[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
}

static inline bool fuzz_utf8_text (const char *text) {
    return fuzz_utf8 ((const uint8_t *) text, strlen (text));
}

#endif
