/*  json.h - strict parsing of REST request bodies, straight to msgpack

    A request body must be one JSON object: duplicate keys, trailing bytes,
    invalid UTF-8 and \u0000 are refused; nesting and string sizes are
    bounded. Error text is the client message, in the API's style, with
    the line and column jansson would give (the gateway parsed with jansson
    before, and clients see them).
*/
#ifndef GW_JSON_H
#define GW_JSON_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_JSON_MAX_DEPTH  32     //  nested objects/arrays, the top-level object is 1
#define GW_JSON_MAX_STRING 262144 //  bytes in one string value
#define GW_JSON_MAX_KEY    256    //  bytes in one object key
#define GW_JSON_ERROR_MAX  128    //  room for any message below
#define GW_JSON_TOO_DEEP   "JSON nesting must be at most 32 levels deep"

//  Parses text (size bytes, need not be terminated) as one JSON object and
//  appends it to out as one msgpack map, no tree in between: members in
//  their order, strings as str, integers (those strtoll reads) as the
//  smallest msgpack integer, other numbers as float64 (strtod's double),
//  true, false, null: the bytes jansson and the protocol codec made of the
//  same body. Returns 0; -2 when out of memory; or -1 with the client
//  message in error (at least GW_JSON_ERROR_MAX bytes):
//    "Request body must be a JSON object"        empty, blank or not an object
//    "Invalid JSON at line L, column C"           syntax, encoding, duplicate key
//    GW_JSON_TOO_DEEP
//    "JSON strings must be at most 262144 bytes"
//    "JSON object keys must be at most 256 bytes"
//  A syntax error anywhere comes first, then "must be a JSON object", then
//  the first limit broken in document order. On failure out is as it was.
int gw_json_parse (const char *text, size_t size, aq_writer_t *out, char *error, size_t error_size);

//  True when text[0..size) is UTF-8 that jansson accepts in a string: no
//  overlong forms, surrogates or code points past U+10FFFF.
bool gw_json_utf8 (const char *text, size_t size);

void gw_json_test (bool verbose);

#endif
