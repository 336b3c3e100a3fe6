/*  aq_msg.h - msgpack without a document tree: views to read, a buffer to write

    The broker reads protocol messages and its own store records straight
    into C structs and writes them back the same way; JSON never enters it.
    A reader node is a view into the encoded bytes (nothing is allocated,
    so a frame costs no memory beyond itself); a writer appends to one
    growing buffer. Both follow msgpack's spec with the protocol's rules:
    map keys are strings or integers, strings are UTF-8, nesting is at most
    AQ_PROTO_DEPTH, no ext types.

        aq_node_t body;
        if (aq_msg_parse (data, size, &body) != 0 || body.type != AQ_NODE_MAP)
            ...malformed...
        aq_node_t value;
        if (aq_node_get (&body, "id", &value) && aq_node_is_str (&value)) ...

        aq_writer_t w;
        aq_writer_init (&w);
        aq_write_map (&w, 1);
        aq_write_str (&w, "id"), aq_write_str (&w, id);
        ... aq_writer_data (&w, &size) ...
        aq_writer_release (&w);

    Ownership: nodes borrow the buffer they were read from; a writer owns its
    buffer until aq_writer_take hands it over (free () it).
*/
#ifndef AQ_MSG_H
#define AQ_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    AQ_NODE_NIL = 1,
    AQ_NODE_BOOL,
    AQ_NODE_INT,   //  any integer that fits int64 (u is also set when >= 0)
    AQ_NODE_UINT,  //  a positive integer above INT64_MAX (only u is set)
    AQ_NODE_FLOAT, //  float32 or float64, as f
    AQ_NODE_STR,   //  count bytes of UTF-8 at data
    AQ_NODE_BIN,   //  count bytes at data
    AQ_NODE_ARRAY, //  count items, the first at data
    AQ_NODE_MAP    //  count key/value pairs, the first key at data
} aq_node_type_t;

typedef struct {
    aq_node_type_t type; //  what it is
    uint32_t count;      //  str/bin: bytes; array: items; map: pairs
    const uint8_t *data; //  str/bin: the bytes; array/map: the first item
    const uint8_t *raw;  //  the whole encoded value
    size_t raw_size;     //  its length
    union {
        bool b;    //  AQ_NODE_BOOL
        int64_t i; //  AQ_NODE_INT
        double f;  //  AQ_NODE_FLOAT
    };
    uint64_t u; //  AQ_NODE_INT >= 0 and AQ_NODE_UINT
} aq_node_t;

//  Parses exactly one value filling the whole buffer, checking all of it
//  (lengths within the buffer, UTF-8 strings, string or integer map keys,
//  nesting at most AQ_PROTO_DEPTH, no ext). 0, or -1 when the bytes are not
//  such a value. node borrows data; nothing is allocated, so a frame costs
//  no memory beyond itself whatever it holds.
int aq_msg_parse (const uint8_t *data, size_t size, aq_node_t *node);

//  Checks data as aq_msg_parse does without parsing: 0 or -1.
int aq_msg_check (const uint8_t *data, size_t size);

//  Opens a protocol frame (aq_proto.h: signature, version, command, then a
//  msgpack map): 0 with *cmd and body set (body borrows data), or the
//  AQ_EPROTO_* code of what is wrong with it.
int aq_msg_frame (const uint8_t *data, size_t size, int *cmd, aq_node_t *body);

//  Iterating a checked array or map (items are not checked again).
typedef struct {
    const uint8_t *next; //  the next item's bytes
    const uint8_t *end;  //  the container's end
    uint32_t left;       //  items (pairs) left
    bool map;            //  pairs: key then value
} aq_iter_t;

void aq_node_iter (const aq_node_t *container, aq_iter_t *it);
//  The next item (array: key may be NULL and is untouched) or pair (map).
//  false at the end.
bool aq_iter_next (aq_iter_t *it, aq_node_t *key, aq_node_t *value);

//  The value at p in a checked buffer (end is its end) without walking its
//  children: a container's count and data are set, but its raw_size is
//  its header's. For a caller that walks a value once, going from item to
//  item itself (aq_iter_next measures each container it steps over).
void aq_msg_head (const uint8_t *p, const uint8_t *end, aq_node_t *node);

//  The value under a string key of a map; false when map is not a map or
//  has no such key. Linear: maps here are small.
bool aq_node_get (const aq_node_t *map, const char *key, aq_node_t *value);

//  Predicates and accessors; all accept any node.
bool aq_node_is_str (const aq_node_t *node);
bool aq_node_is_nil (const aq_node_t *node);
//  true when node is the string text.
bool aq_node_streq (const aq_node_t *node, const char *text);
//  A NUL-terminated malloc'd copy of a string node (NULL if not a string,
//  or if it holds a NUL). Caller frees.
char *aq_node_strdup (const aq_node_t *node);
//  Copies a string node into buf (size bytes, NUL-terminated); false when
//  it is not a string, holds a NUL or does not fit.
bool aq_node_strcpy (const aq_node_t *node, char *buf, size_t size);
//  An integer (or a float without fraction) within [min, max] into *out.
bool aq_node_int_in (const aq_node_t *node, int64_t min, int64_t max, int64_t *out);
//  Any number as a double; false when node is not a number.
bool aq_node_number (const aq_node_t *node, double *out);

//  --------------------------------------------------------------------------
//  Writing

typedef struct {
    uint8_t *data; //  the bytes written (owned)
    size_t size;   //  how many
    size_t cap;    //  allocated
    int err;       //  sticky: -1 once an allocation failed
} aq_writer_t;

void aq_writer_init (aq_writer_t *self);
//  Frees the buffer; the writer may be initialized again.
void aq_writer_release (aq_writer_t *self);
//  Forgets what was written, keeping the allocation.
void aq_writer_reset (aq_writer_t *self);
//  The bytes written, borrowed; NULL after an allocation failure.
const uint8_t *aq_writer_data (aq_writer_t *self, size_t *size);
//  Hands the buffer to the caller (free () it) and resets the writer;
//  NULL after an allocation failure.
uint8_t *aq_writer_take (aq_writer_t *self, size_t *size);

void aq_write_map (aq_writer_t *self, uint32_t pairs);
void aq_write_array (aq_writer_t *self, uint32_t items);
//  A string (NULL writes nil). A byte that is not part of a UTF-8 character
//  is written as U+FFFD, as readers refuse strings that are not UTF-8.
void aq_write_str (aq_writer_t *self, const char *text);
void aq_write_strn (aq_writer_t *self, const char *text, size_t size);
void aq_write_int (aq_writer_t *self, int64_t value);
void aq_write_uint (aq_writer_t *self, uint64_t value);
void aq_write_double (aq_writer_t *self, double value);
void aq_write_bool (aq_writer_t *self, bool value);
void aq_write_nil (aq_writer_t *self);
void aq_write_bin (aq_writer_t *self, const void *data, size_t size);
//  Bytes that already are one encoded value (a node's raw bytes).
void aq_write_raw (aq_writer_t *self, const void *data, size_t size);
//  A map whose size is known only at the end: open returns a mark, close
//  writes the smallest header for pairs and moves the contents to it.
size_t aq_write_map_open (aq_writer_t *self);
void aq_write_map_close (aq_writer_t *self, size_t mark, uint32_t pairs);
//  The same for an array.
size_t aq_write_array_open (aq_writer_t *self);
void aq_write_array_close (aq_writer_t *self, size_t mark, uint32_t items);

//  Shorthands for a map entry under a string key.
void aq_write_kv_str (aq_writer_t *self, const char *key, const char *value);
void aq_write_kv_int (aq_writer_t *self, const char *key, int64_t value);
void aq_write_kv_bool (aq_writer_t *self, const char *key, bool value);

void aq_msg_test (bool verbose);

#endif
