/*  fuzz.h - what the libFuzzer harnesses in tests/fuzz share

    Each tests/fuzz/NAME.c defines LLVMFuzzerTestOneInput for one parser of
    untrusted input and is built into fuzz-NAME (make fuzz, docs/fuzzing.md).
    A harness checks more than "does not crash": it asserts what the parser
    promises (a round trip gives the same value, what is accepted can be
    written back), and a failed FUZZ_CHECK aborts like a sanitizer report.
*/
#ifndef AQ_FUZZ_H
#define AQ_FUZZ_H

#include "aq_msg.h"

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

//  True when text[0..size) is well-formed UTF-8.
static inline bool fuzz_utf8 (const uint8_t *text, size_t size) {
    for (size_t i = 0; i < size;) {
        uint8_t c = text[i];
        size_t n = c < 0x80                 ? 0
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 4;
        if (n == 4 || (n && i + n >= size))
            return false;
        uint32_t cp = n == 0 ? c : c & (0x3F >> n);
        for (size_t k = 1; k <= n; k++) {
            if ((text[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (text[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
}

//  True when a client message reaches the client: written as the broker
//  writes it (aq_write_str), it reads back (a reader refuses a string that
//  is not UTF-8, and with it the whole frame or store record).
static inline bool fuzz_message_ok (const char *text) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_str (&w, text);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    bool ok = data && aq_msg_parse (data, size, &node) == 0 && node.type == AQ_NODE_STR;
    aq_writer_release (&w);
    if (!ok)
        fprintf (stderr, "message does not read back: '%s'\n", text);
    return ok;
}

#endif
