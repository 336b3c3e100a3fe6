/*  aq_json.h - JSON text straight from msgpack, without a document tree

    The broker speaks msgpack, but a few things it sends are JSON text: the
    task it POSTs to an onCompleteUrl (which it signs, so it must make the
    bytes itself) and an event's data as a step's body. The gateway renders
    its replies the same way. The text is what jansson's JSON_COMPACT gives
    for the same document, so either side may make it.
*/
#ifndef AQ_JSON_H
#define AQ_JSON_H

#include "aq_msg.h"

//  Appends the JSON text of a checked msgpack value to out (bytes, no NUL):
//  a node whose raw bytes span the value (from aq_msg_parse, aq_iter_next
//  or aq_node_get; not a container's aq_msg_head). 0, or -1 for a value
//  JSON cannot hold (bin, a map key that is not a string, NaN or infinity,
//  an integer above INT64_MAX).
int aq_json_write (const aq_node_t *node, aq_writer_t *out);

//  The same as a malloc'd NUL-terminated string (NULL on -1). Caller frees.
char *aq_json_dumps (const aq_node_t *node);

//  The other way: JSON text (any value) as msgpack appended to out. 0, or
//  -1 when text is not JSON. For tests and tools that start from JSON text;
//  the gateway parses request bodies itself (gateway/json.c).
int aq_json_parse (const char *text, aq_writer_t *out);

void aq_json_test (bool verbose);

#endif
