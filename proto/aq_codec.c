/*  aq_codec.c - protocol messages as jansson documents

    The only file that includes <msgpack.h>. Encoding walks a json_t and
    packs it with msgpack-c; decoding checks the bytes, estimates what the
    tree will cost, then builds a json_t (see "Decoder"). Both keep a
    sticky error (MPack's idea): the first failure is remembered and every
    later step is a no-op, so a whole message is checked once at the end.
*/
#include "aq_codec.h"

#include <assert.h>
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  --------------------------------------------------------------------------
//  Encoder

typedef struct {
    msgpack_sbuffer buf; //  output
    msgpack_packer pk;   //  writes into buf
    int err;             //  sticky: first failure, 0 while fine
} s_encoder_t;

static void s_pack (s_encoder_t *self, const json_t *value, int depth) {
    if (self->err)
        return;
    if (depth > AQ_PROTO_DEPTH) {
        self->err = AQ_EPROTO_MALFORMED;
        return;
    }
    int rc = 0;
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        rc = msgpack_pack_map (&self->pk, json_object_size (value));
        const char *key;
        size_t len; //  a key may hold a NUL (json_object_setn)
        json_t *member;
        json_object_keylen_foreach ((json_t *) value, key, len, member) {
            if (rc == 0)
                rc = msgpack_pack_str (&self->pk, len);
            if (rc == 0)
                rc = msgpack_pack_str_body (&self->pk, key, len);
            if (rc == 0)
                s_pack (self, member, depth + 1);
        }
        break;
    }
    case JSON_ARRAY: {
        rc = msgpack_pack_array (&self->pk, json_array_size (value));
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item) {
            if (rc == 0)
                s_pack (self, item, depth + 1);
        }
        break;
    }
    case JSON_STRING: {
        size_t len = json_string_length (value);
        rc = msgpack_pack_str (&self->pk, len);
        if (rc == 0)
            rc = msgpack_pack_str_body (&self->pk, json_string_value (value), len);
        break;
    }
    case JSON_INTEGER:
        rc = msgpack_pack_int64 (&self->pk, json_integer_value (value));
        break;
    case JSON_REAL:
        rc = msgpack_pack_double (&self->pk, json_real_value (value));
        break;
    case JSON_TRUE:
        rc = msgpack_pack_true (&self->pk);
        break;
    case JSON_FALSE:
        rc = msgpack_pack_false (&self->pk);
        break;
    case JSON_NULL:
        rc = msgpack_pack_nil (&self->pk);
        break;
    }
    if (rc != 0 && !self->err)
        self->err = AQ_EPROTO_NOMEM;
}

//  Encodes into a per-thread buffer that is kept between calls (a fresh
//  8 KiB sbuffer per message was a large share of the broker's time), then
//  returns an exact-size copy.
//  A pthread key frees each thread's buffer when the thread ends.
static pthread_key_t s_buffer_key;
static pthread_once_t s_buffer_once = PTHREAD_ONCE_INIT;

static void s_buffer_free (void *buffer) {
    msgpack_sbuffer_free ((msgpack_sbuffer *) buffer);
}

static void s_buffer_init (void) {
    pthread_key_create (&s_buffer_key, s_buffer_free);
}

static msgpack_sbuffer *s_thread_buffer (void) {
    pthread_once (&s_buffer_once, s_buffer_init);
    msgpack_sbuffer *buffer = pthread_getspecific (s_buffer_key);
    if (!buffer) {
        buffer = msgpack_sbuffer_new ();
        if (buffer)
            pthread_setspecific (s_buffer_key, buffer);
    }
    return buffer;
}

static uint8_t *s_encode (const uint8_t *header, size_t header_size, const json_t *value,
                          size_t *size) {
    msgpack_sbuffer *buffer = s_thread_buffer ();
    if (!buffer)
        return NULL;
    s_encoder_t enc = {.err = 0};
    enc.buf = *buffer;
    enc.buf.size = 0;
    msgpack_packer_init (&enc.pk, &enc.buf, msgpack_sbuffer_write);
    if (header_size && msgpack_sbuffer_write (&enc.buf, (const char *) header, header_size) != 0)
        enc.err = AQ_EPROTO_NOMEM;
    s_pack (&enc, value, 0);
    uint8_t *data = NULL;
    if (!enc.err && (data = malloc (enc.buf.size ? enc.buf.size : 1))) {
        memcpy (data, enc.buf.data, enc.buf.size);
        *size = enc.buf.size;
    }
    if (enc.buf.alloc > (1 << 20)) { //  do not keep a huge buffer around
        msgpack_sbuffer_destroy (&enc.buf);
        msgpack_sbuffer_init (&enc.buf);
    }
    *buffer = enc.buf;
    return data;
}

uint8_t *aq_codec_encode (int cmd, const json_t *body, size_t *size) {
    assert (size);
    if (!aq_proto_name (cmd) || (body && !json_is_object (body)))
        return NULL;
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       (uint8_t) cmd};
    json_t *empty = body ? NULL : json_object ();
    uint8_t *data = s_encode (header, sizeof header, body ? body : empty, size);
    json_decref (empty);
    return data;
}

uint8_t *aq_codec_pack (const json_t *value, size_t *size) {
    assert (value && size);
    return s_encode (NULL, 0, value, size);
}

//  --------------------------------------------------------------------------
//  Decoder
//
//  Two passes over the bytes, no msgpack-c: s_scan walks the encoding with
//  no allocation, checks every length, count, type and the depth, and adds
//  up what the jansson tree will cost; only then does s_build make it. A
//  frame whose tree would cost more than AQ_PROTO_BUDGET is refused
//  before anything is allocated: one byte of msgpack (an empty map) would
//  otherwise become a 232-byte jansson object.

//  Bytes of memory one element costs once decoded, measured with glibc's
//  malloc on x86-64 (jansson 2.14) and rounded up. Every element has a slot
//  in its parent (8 bytes, in a table that grows by doubling, copied when
//  it grows), then its node: an empty map (one byte of msgpack) is the
//  dearest at 248 bytes, so a tree costs at most 256 bytes per frame byte.
#define S_COST_SLOT   24  //  every element: its slot in the parent
#define S_COST_MAP    224 //  json_object and its first 8 buckets
#define S_COST_MEMBER 96  //  a map member (jansson's pair), plus the key's bytes
#define S_COST_ARRAY  128 //  json_array and its first 8 items
#define S_COST_NUMBER 32  //  json_integer, json_real
#define S_COST_STRING 80  //  json_string, plus its bytes

typedef struct {
    const uint8_t *data; //  the encoding
    size_t size;         //  its length
    size_t cost;         //  s_scan: estimated bytes of the decoded tree
    size_t budget;       //  s_scan: the most cost allowed
    int err;             //  sticky: first failure, 0 while fine
} s_decoder_t;

static uint64_t s_be (const uint8_t *p, size_t bytes) {
    uint64_t value = 0;
    for (size_t i = 0; i < bytes; i++)
        value = value << 8 | p[i];
    return value;
}

//  The shape of the element at data[0]: its kind, the bytes of its head
//  (type byte and length fields), its payload bytes (str, numbers, bin,
//  ext) and its number of items (array) or pairs (map). Returns false if
//  the type byte is unused (0xc1) or the head runs past size.
typedef enum { S_NIL, S_BOOL, S_INT, S_UINT, S_FLOAT, S_STR, S_ARRAY, S_MAP, S_OTHER } s_kind_t;

static bool s_head (const uint8_t *data, size_t size, s_kind_t *kind, size_t *head, size_t *length,
                    size_t *items) {
    uint8_t type = data[0];
    size_t n = 0; //  bytes of a length field
    *head = 1, *length = 0, *items = 0;
    if (type <= 0x7f || type >= 0xe0)
        *kind = type <= 0x7f ? S_UINT : S_INT;
    else if (type == 0xc0)
        *kind = S_NIL;
    else if (type == 0xc2 || type == 0xc3)
        *kind = S_BOOL;
    else if ((type & 0xf0) == 0x80)
        *kind = S_MAP, *items = type & 0x0f;
    else if ((type & 0xf0) == 0x90)
        *kind = S_ARRAY, *items = type & 0x0f;
    else if ((type & 0xe0) == 0xa0)
        *kind = S_STR, *length = type & 0x1f;
    else if (type >= 0xc4 && type <= 0xc6) //  bin 8/16/32
        *kind = S_OTHER, n = (size_t) 1 << (type - 0xc4);
    else if (type >= 0xc7 && type <= 0xc9) //  ext 8/16/32, then a type byte
        *kind = S_OTHER, n = (size_t) 1 << (type - 0xc7);
    else if (type == 0xca || type == 0xcb)
        *kind = S_FLOAT, *length = type == 0xca ? 4 : 8;
    else if (type >= 0xcc && type <= 0xcf)
        *kind = S_UINT, *length = (size_t) 1 << (type - 0xcc);
    else if (type >= 0xd0 && type <= 0xd3)
        *kind = S_INT, *length = (size_t) 1 << (type - 0xd0);
    else if (type >= 0xd4 && type <= 0xd8) //  fixext: a type byte and 1-16 bytes
        *kind = S_OTHER, *length = 1 + ((size_t) 1 << (type - 0xd4));
    else if (type >= 0xd9 && type <= 0xdb)
        *kind = S_STR, n = (size_t) 1 << (type - 0xd9);
    else if (type >= 0xdc && type <= 0xdf)
        *kind = type <= 0xdd ? S_ARRAY : S_MAP, n = type == 0xdc || type == 0xde ? 2 : 4;
    else
        return false; //  0xc1: never used
    if (n) {
        if (size < 1 + n)
            return false;
        uint64_t value = s_be (data + 1, n);
        *head += n;
        if (*kind == S_ARRAY || *kind == S_MAP)
            *items = (size_t) value;
        else
            *length = (size_t) value;
        if (type >= 0xc7 && type <= 0xc9)
            *length += 1; //  ext's type byte
    }
    return true;
}

//  Checks the element at offset and its children, adding their cost.
//  Returns the bytes it spans, or 0 with self->err set. A map key is a
//  member's cost, not a string node's.
static size_t s_scan (s_decoder_t *self, size_t offset, int depth, bool key) {
    if (self->err)
        return 0;
    size_t size = self->size - offset;
    s_kind_t kind;
    size_t head, length, items;
    if (depth > AQ_PROTO_DEPTH || size < 1 ||
        !s_head (self->data + offset, size, &kind, &head, &length, &items) ||
        length > size - head) {
        self->err = AQ_EPROTO_MALFORMED;
        return 0;
    }
    size_t span = head + length;
    //  every item takes at least one byte: a count beyond the frame is a lie
    if (items > (size - span) / (kind == S_MAP ? 2 : 1)) {
        self->err = AQ_EPROTO_MALFORMED;
        return 0;
    }
    size_t cost = key ? S_COST_MEMBER + length : S_COST_SLOT;
    if (!key && kind == S_MAP)
        cost += S_COST_MAP;
    else if (!key && kind == S_ARRAY)
        cost += S_COST_ARRAY;
    else if (!key && (kind == S_INT || kind == S_UINT || kind == S_FLOAT))
        cost += S_COST_NUMBER;
    else if (!key && kind == S_STR)
        cost += S_COST_STRING + length;
    self->cost += cost;
    if (self->cost > self->budget) {
        self->err = AQ_EPROTO_BUDGET;
        return 0;
    }
    for (size_t i = 0; i < items && !self->err; i++) {
        if (kind == S_MAP) {
            span += s_scan (self, offset + span, depth + 1, true);
            if (self->err)
                break;
        }
        span += s_scan (self, offset + span, depth + 1, false);
    }
    return self->err ? 0 : span;
}

//  Builds the element at *offset, which s_scan accepted, and moves *offset
//  past it. Returns a new reference, or NULL with self->err set.
static json_t *s_build (s_decoder_t *self, size_t *offset) {
    const uint8_t *data = self->data + *offset;
    s_kind_t kind;
    size_t head, length, items;
    bool ok = s_head (data, self->size - *offset, &kind, &head, &length, &items);
    assert (ok);
    const uint8_t *payload = data + head;
    *offset += head + length;
    json_t *value = NULL;
    switch (kind) {
    case S_NIL:
        value = json_null ();
        break;
    case S_BOOL:
        value = json_boolean (data[0] == 0xc3);
        break;
    case S_UINT: {
        uint64_t number = length ? s_be (payload, length) : data[0];
        if (number <= (uint64_t) INT64_MAX)
            value = json_integer ((json_int_t) number);
        break;
    }
    case S_INT: {
        int64_t number = (int8_t) data[0]; //  negative fixint
        if (length) {
            uint64_t bits = s_be (payload, length);
            int shift = 64 - 8 * (int) length; //  sign-extend
            number = (int64_t) (bits << shift) >> shift;
        }
        value = json_integer ((json_int_t) number);
        break;
    }
    case S_FLOAT: {
        uint64_t bits = s_be (payload, length);
        double number;
        if (length == 4) {
            uint32_t narrow = (uint32_t) bits;
            float single;
            memcpy (&single, &narrow, sizeof single);
            number = single;
        } else
            memcpy (&number, &bits, sizeof number);
        value = json_real (number); //  NULL for NaN/inf: malformed
        break;
    }
    case S_STR:
        value = json_stringn ((const char *) payload, length); //  NULL unless UTF-8
        break;
    case S_ARRAY:
        value = json_array ();
        for (size_t i = 0; value && i < items; i++) {
            json_t *item = s_build (self, offset);
            if (!item || json_array_append_new (value, item) != 0) {
                json_decref (value);
                value = NULL;
            }
        }
        break;
    case S_MAP:
        value = json_object ();
        for (size_t i = 0; value && i < items; i++) {
            const uint8_t *key = self->data + *offset;
            size_t key_head, key_length, key_items;
            s_kind_t key_kind;
            s_head (key, self->size - *offset, &key_kind, &key_head, &key_length, &key_items);
            *offset += key_head + key_length;
            json_t *member = key_kind == S_STR ? s_build (self, offset) : NULL;
            if (!member || json_object_setn_new (value, (const char *) key + key_head, key_length,
                                                 member) != 0) {
                json_decref (value); //  json_object_setn_new took member
                value = NULL;
            }
        }
        break;
    default: //  bin, ext: not part of the protocol
        break;
    }
    if (!value && !self->err)
        self->err = AQ_EPROTO_MALFORMED;
    return value;
}

static json_t *s_decode (const uint8_t *data, size_t size, size_t budget, int *err) {
    s_decoder_t self = {.data = data, .size = size, .budget = budget};
    if (s_scan (&self, 0, 0, false) != size && !self.err)
        self.err = AQ_EPROTO_MALFORMED; //  trailing bytes
    size_t offset = 0;
    json_t *value = self.err ? NULL : s_build (&self, &offset);
    *err = self.err;
    return value;
}

int aq_codec_decode (const uint8_t *data, size_t size, int *cmd, json_t **body) {
    assert (cmd && body);
    *body = NULL;
    if (!data || size < AQ_PROTO_HEADER)
        return AQ_EPROTO_SHORT;
    if (data[0] != AQ_PROTO_SIG0 || data[1] != AQ_PROTO_SIG1)
        return AQ_EPROTO_SIGNATURE;
    if (data[2] != AQ_PROTO_VERSION)
        return AQ_EPROTO_VERSION;
    if (!aq_proto_name (data[3]))
        return AQ_EPROTO_COMMAND;
    int err = 0;
    json_t *value =
        s_decode (data + AQ_PROTO_HEADER, size - AQ_PROTO_HEADER, AQ_PROTO_BUDGET, &err);
    if (value && !json_is_object (value))
        err = AQ_EPROTO_MALFORMED;
    if (err) {
        json_decref (value);
        return err;
    }
    *cmd = data[3];
    *body = value;
    return 0;
}

json_t *aq_codec_unpack (const uint8_t *data, size_t size) {
    int err = 0;
    json_t *value = s_decode (data, size, SIZE_MAX, &err); //  our own records: no budget
    if (err) {
        json_decref (value);
        return NULL;
    }
    return value;
}

//  --------------------------------------------------------------------------
//  Socket helper and field accessors

int aq_codec_send (void *socket, const void *rid, size_t rid_size, int cmd, const json_t *body,
                   int flags) {
    size_t size;
    uint8_t *data = aq_codec_encode (cmd, body, &size);
    if (!data) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    if (rid && zmq_send (socket, rid, rid_size, ZMQ_SNDMORE | flags) < 0)
        rc = -1;
    if (rc == 0 && zmq_send (socket, data, size, flags) < 0)
        rc = -1; //  after a routed first frame this cannot block (atomic)
    free (data);
    return rc;
}

const char *aq_field_str (const json_t *body, const char *key) {
    return json_string_value (json_object_get (body, key));
}

int64_t aq_field_int (const json_t *body, const char *key, int64_t dflt) {
    json_t *value = json_object_get (body, key);
    return json_is_integer (value) ? (int64_t) json_integer_value (value) : dflt;
}

bool aq_field_bool (const json_t *body, const char *key, bool dflt) {
    json_t *value = json_object_get (body, key);
    return json_is_boolean (value) ? json_is_true (value) : dflt;
}

//  --------------------------------------------------------------------------
//  Selftest: round trips, every rejection path, and the golden vectors.

static void s_roundtrip (const char *text) {
    json_t *in = json_loads (text, 0, NULL);
    assert (in);
    size_t size;
    uint8_t *data = aq_codec_encode (AQ_CMD_TASK_CREATE, in, &size);
    assert (data);
    int cmd;
    json_t *out;
    assert (aq_codec_decode (data, size, &cmd, &out) == 0);
    assert (cmd == AQ_CMD_TASK_CREATE);
    assert (json_equal (in, out));
    //  every truncation is rejected, never read past the end
    for (size_t cut = 0; cut < size; cut++) {
        json_t *part = NULL;
        assert (aq_codec_decode (data, cut, &cmd, &part) != 0 && part == NULL);
    }
    free (data);
    json_decref (in);
    json_decref (out);
}

void aq_codec_test (bool verbose) {
    s_roundtrip ("{}");
    s_roundtrip ("{\"corr\": 7, \"task\": {\"targetUrl\": \"http://x/\", \"headers\": "
                 "{\"a\": \"b\"}, \"n\": -5, \"r\": 1.5, \"t\": true, \"f\": false, "
                 "\"z\": null, \"l\": [1, [2, {}], \"\u00e9\"]}}");

    int cmd;
    json_t *body;
    uint8_t bad[8] = {0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x80};
    assert (aq_codec_decode (bad, 5, &cmd, &body) == 0 && json_object_size (body) == 0);
    json_decref (body);
    assert (aq_codec_decode (bad, 3, &cmd, &body) == AQ_EPROTO_SHORT);
    bad[0] = 0x00;
    assert (aq_codec_decode (bad, 5, &cmd, &body) == AQ_EPROTO_SIGNATURE);
    bad[0] = 0xAA, bad[2] = 9;
    assert (aq_codec_decode (bad, 5, &cmd, &body) == AQ_EPROTO_VERSION);
    bad[2] = AQ_PROTO_VERSION, bad[3] = 200;
    assert (aq_codec_decode (bad, 5, &cmd, &body) == AQ_EPROTO_COMMAND);
    bad[3] = AQ_CMD_JOB, bad[4] = 0x91, bad[5] = 0x01; //  an array, not a map
    assert (aq_codec_decode (bad, 6, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x81, bad[5] = 0x01, bad[6] = 0x01; //  {1: 1}: non-string key
    assert (aq_codec_decode (bad, 7, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x81, bad[5] = 0xA1, bad[6] = 0xFF, bad[7] = 0x01; //  key not UTF-8
    assert (aq_codec_decode (bad, 8, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x80, bad[5] = 0x80; //  trailing bytes after the map
    assert (aq_codec_decode (bad, 6, &cmd, &body) == AQ_EPROTO_MALFORMED);

    //  a key holding a NUL encodes back whole (found by tests/fuzz/frame.c)
    uint8_t nul_key[] = {
        0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x82, 0xA3, 'a', 0, 'b', 0x01, 0xA1, 'a', 0x02};
    assert (aq_codec_decode (nul_key, sizeof nul_key, &cmd, &body) == 0);
    size_t again_size;
    uint8_t *again = aq_codec_encode (cmd, body, &again_size);
    assert (again && again_size == sizeof nul_key && memcmp (again, nul_key, again_size) == 0);
    free (again);
    json_decref (body);

    //  nesting beyond the limit is refused both ways
    uint8_t deep[4 + 64];
    memcpy (deep, (uint8_t[]){0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB}, 4);
    deep[4] = 0x81, deep[5] = 0xA1, deep[6] = 'a';
    for (int i = 7; i < (int) sizeof deep; i++)
        deep[i] = 0x91; //  [[[[...
    assert (aq_codec_decode (deep, sizeof deep, &cmd, &body) != 0);

    //  a declared size beyond the frame is refused before any allocation
    uint8_t huge[] = {
        0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x81, 0xA1, 'a', 0xDD, 0xFF, 0xFF, 0xFF,
        0xFF, 0x01};
    assert (aq_codec_decode (huge, sizeof huge, &cmd, &body) == AQ_EPROTO_MALFORMED);
    huge[7] = 0xDB; //  a 4 GiB string
    assert (aq_codec_decode (huge, sizeof huge, &cmd, &body) == AQ_EPROTO_MALFORMED);

    //  every integer and float width, as any encoder may send them
    struct {
        uint8_t bytes[12];
        size_t size;
        const char *json; //  NULL: malformed
    } widths[] = {
        {{0xcc, 0xff}, 2, "255"},
        {{0xcd, 0x01, 0x00}, 3, "256"},
        {{0xce, 0xff, 0xff, 0xff, 0xff}, 5, "4294967295"},
        {{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, "9223372036854775807"},
        {{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, NULL}, //  beyond int64
        {{0xd0, 0x80}, 2, "-128"},
        {{0xd1, 0xff, 0x00}, 3, "-256"},
        {{0xd2, 0x80, 0, 0, 0}, 5, "-2147483648"},
        {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, "-9223372036854775808"},
        {{0xd0, 0x05}, 2, "5"},
        {{0xe0}, 1, "-32"},
        {{0xca, 0x3f, 0xc0, 0x00, 0x00}, 5, "1.5"},
        {{0xcb, 0xc0, 0x04, 0, 0, 0, 0, 0, 0}, 9, "-2.5"},
        {{0xca, 0x7f, 0xc0, 0x00, 0x00}, 5, NULL}, //  NaN
        {{0xc4, 0x01, 0x00}, 3, NULL},             //  bin
        {{0xd4, 0x01, 0x00}, 3, NULL},             //  fixext 1
        {{0xc7, 0x01, 0x05, 0x00}, 4, NULL},       //  ext 8
        {{0xc1}, 1, NULL},                         //  never used
        {{0xd9, 0x02, 'h', 'i'}, 4, "\"hi\""},
        {{0xdc, 0x00, 0x02, 0xc0, 0xc3}, 5, "[null, true]"},
        {{0xde, 0x00, 0x01, 0xa1, 'k', 0xc2}, 6, "{\"k\": false}"},
    };
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        uint8_t frame[24] = {0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x81, 0xA1, 'v'};
        memcpy (frame + 7, widths[i].bytes, widths[i].size);
        int rc = aq_codec_decode (frame, 7 + widths[i].size, &cmd, &body);
        if (!widths[i].json)
            assert (rc == AQ_EPROTO_MALFORMED && !body);
        else {
            json_t *want = json_loads (widths[i].json, JSON_DECODE_ANY, NULL);
            assert (rc == 0 && json_equal (json_object_get (body, "v"), want));
            json_decref (want);
        }
        json_decref (body);
    }

    //  The budget: the whole frame is priced before anything is built
    uint8_t maps[7 + 5 + 1000] = {0x81, 0xA1, 'a', 0xDD, 0x00, 0x00, 0x03, 0xE8};
    memset (maps + 8, 0x80, 1000); //  {"a": [{}, {}, ... 1000 times]}
    size_t maps_size = 8 + 1000, need = S_COST_SLOT + S_COST_MAP + S_COST_MEMBER + 1 + S_COST_SLOT +
                                        S_COST_ARRAY + 1000 * (S_COST_SLOT + S_COST_MAP);
    assert (need <= 256 * maps_size); //  the per-byte bound holds
    int err;
    json_t *tree = s_decode (maps, maps_size, need, &err);
    assert (err == 0 && json_array_size (json_object_get (tree, "a")) == 1000);
    json_decref (tree);
    assert (s_decode (maps, maps_size, need - 1, &err) == NULL && err == AQ_EPROTO_BUDGET);
    //  an 8 MiB frame of empty maps (or nils) is refused without allocating
    size_t bomb_size = AQ_PROTO_MAX_MSG;
    uint8_t *bomb = malloc (bomb_size);
    assert (bomb);
    memcpy (bomb, (uint8_t[]){0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x81, 0xA1, 'a', 0xDD}, 8);
    uint32_t items = (uint32_t) (bomb_size - 12);
    for (int i = 0; i < 4; i++)
        bomb[8 + i] = (uint8_t) (items >> (24 - 8 * i));
    uint8_t fills[] = {0x80, 0x90, 0xA0, 0x01, 0xC0};
    for (size_t i = 0; i < sizeof fills; i++) {
        memset (bomb + 12, fills[i], bomb_size - 12);
        assert (aq_codec_decode (bomb, bomb_size, &cmd, &body) == AQ_EPROTO_BUDGET && !body);
    }
    free (bomb);
    assert (strstr (aq_proto_strerror (AQ_EPROTO_BUDGET), "128 MiB"));

    //  random garbage never crashes
    unsigned seed = 42;
    for (int round = 0; round < 20000; round++) {
        uint8_t junk[24] = {0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_RESULT};
        for (int i = 4; i < 24; i++)
            junk[i] = (uint8_t) rand_r (&seed);
        body = NULL;
        if (aq_codec_decode (junk, 4 + (size_t) (rand_r (&seed) % 20), &cmd, &body) == 0)
            assert (json_is_object (body));
        json_decref (body);
    }
    if (verbose)
        printf ("aq_codec: ok\n");
}
