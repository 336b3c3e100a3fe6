/*  aq_codec.h - protocol messages as jansson documents

    The gateway, the C client library and tools read and write messages
    as JSON documents (json_t): the REST side is JSON anyway. The broker
    and the workers do not: they read frames in place and write them whole
    (aq_msg.h). This is the one place msgpack-c is used.
*/
#ifndef AQ_CODEC_H
#define AQ_CODEC_H

#include "aq_proto.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Encodes cmd and body (a JSON object; NULL means {}) into one frame.
//  Returns a malloc'd buffer the caller frees and sets *size; NULL on
//  failure (a value msgpack cannot carry, or out of memory).
uint8_t *aq_codec_encode (int cmd, const json_t *body, size_t *size);

//  Decodes one frame. On success returns 0, sets *cmd and *body (a new
//  reference the caller json_decref's). On failure returns an AQ_EPROTO_*
//  code and leaves *body NULL. Never reads beyond size; strings must be
//  UTF-8, map keys strings, values nested at most AQ_PROTO_DEPTH levels
//  inside the body map. The frame is checked whole before anything is
//  allocated, and refused (AQ_EPROTO_BUDGET) if its tree would take more
//  than AQ_PROTO_BUDGET bytes. An element costs at most 256 bytes per byte
//  of frame (an empty map, one byte, is the dearest), so any frame up to
//  512 KiB decodes.
int aq_codec_decode (const uint8_t *data, size_t size, int *cmd, json_t **body);

//  msgpack bytes of one JSON value alone (the store's record encoding).
//  Same ownership as aq_codec_encode.
uint8_t *aq_codec_pack (const json_t *value, size_t *size);
//  Inverse of aq_codec_pack; NULL if malformed. Caller owns the result.
//  For the store's own records: no AQ_PROTO_BUDGET.
json_t *aq_codec_unpack (const uint8_t *data, size_t size);

//  ZeroMQ helpers: send one message (routing id first when not NULL).
//  flags: ZMQ_DONTWAIT or 0. Returns 0, or -1 with errno from zmq_send.
int aq_codec_send (void *socket, const void *rid, size_t rid_size, int cmd, const json_t *body,
                   int flags);

//  Field accessors over a body, with a default when absent or mistyped.
const char *aq_field_str (const json_t *body, const char *key); //  borrowed or NULL
int64_t aq_field_int (const json_t *body, const char *key, int64_t dflt);
bool aq_field_bool (const json_t *body, const char *key, bool dflt);

void aq_codec_test (bool verbose);

#endif
