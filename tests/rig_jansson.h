/*  rig_jansson.h - test rig: the gateway's JSON as jansson made it, to compare with

    Before gateway/json.c parsed bodies straight to msgpack and routes.c
    rendered replies with aq_json, the gateway parsed a body with jansson
    (json_loadb, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, then its limits
    over the document) and packed it with the protocol codec, and rendered
    a reply by decoding it into jansson and dumping it compact. This rig
    does exactly that, so the selftests can hold the new path to the old
    one byte for byte. For selftests only: linked into aq-selftest.
*/
#ifndef RIG_JANSSON_H
#define RIG_JANSSON_H

#include "aq_msg.h"

#include <stddef.h>
#include <stdint.h>

//  The old gateway's parse of a request body: 0 with *data (malloc'd, the
//  caller frees) and *size the body's msgpack as the codec packed it, or
//  -1 with the client message in error.
int rig_jansson_parse (const char *text, size_t size, uint8_t **data, size_t *data_size,
                       char *error, size_t error_size);

//  The old gateway's rendering of a msgpack value: jansson's compact text
//  (malloc'd, the caller frees), or NULL when the codec or jansson refuses it.
char *rig_jansson_dump (const uint8_t *data, size_t size);

//  The old gateway's request frame: cmd with the message given as JSON
//  text, built as a jansson object and encoded by the codec (members in
//  the text's order). Malloc'd, the caller frees; asserts on bad input.
uint8_t *rig_jansson_frame (int cmd, const char *text, size_t *size);

//  The corpus to hold a parser to the old one on: the corners of the
//  grammar, of jansson's error positions and of its quirks. The index-th
//  body (its length in *size; it may hold NULs), or NULL past the last.
const char *rig_jansson_corpus (size_t index, size_t *size);

//  A random body in out (reset first): an object whose values are made at
//  random from the pieces a parser treats apart (escapes, surrogates,
//  UTF-8, numbers at the edges, repeated keys), then, half the time, one to
//  three bytes deleted, inserted or replaced, or the text cut short.
//  *state is the generator's (xorshift64: any value but 0).
void rig_jansson_random (uint64_t *state, aq_writer_t *out);

#endif
