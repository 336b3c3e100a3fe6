/*  aq_proto.c - the msgpack codec of the asyncqueue protocol

    The only file that includes <msgpack.h>. Encoding walks a json_t and
    packs it; decoding unpacks with msgpack-c and builds a json_t. Both keep a
    sticky error (MPack's idea): the first failure is remembered and every
    later step is a no-op, so a whole message is checked once at the end.
*/
#include "aq_proto.h"

#include <assert.h>
#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

const char *aq_proto_name (int cmd) {
    switch (cmd) {
#define AQ_PROTO_NAME(name, id, doc)                                                               \
    case id:                                                                                       \
        return #name;
        AQ_PROTO_COMMANDS (AQ_PROTO_NAME)
#undef AQ_PROTO_NAME
    }
    return NULL;
}

const char *aq_proto_strerror (int code) {
    switch (code) {
    case AQ_EPROTO_SHORT:
        return "frame shorter than the protocol header";
    case AQ_EPROTO_SIGNATURE:
        return "bad protocol signature";
    case AQ_EPROTO_VERSION:
        return "unsupported protocol version";
    case AQ_EPROTO_COMMAND:
        return "unknown command";
    case AQ_EPROTO_MALFORMED:
        return "malformed message body";
    case AQ_EPROTO_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}

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
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            size_t len = strlen (key);
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

uint8_t *aq_proto_encode (int cmd, const json_t *body, size_t *size) {
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

uint8_t *aq_proto_pack (const json_t *value, size_t *size) {
    assert (value && size);
    return s_encode (NULL, 0, value, size);
}

//  --------------------------------------------------------------------------
//  Decoder

static json_t *s_unpack (const msgpack_object *obj, int depth, int *err) {
    if (*err)
        return NULL;
    if (depth > AQ_PROTO_DEPTH) {
        *err = AQ_EPROTO_MALFORMED;
        return NULL;
    }
    json_t *value = NULL;
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        value = json_null ();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        value = json_boolean (obj->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (obj->via.u64 > (uint64_t) INT64_MAX) {
            *err = AQ_EPROTO_MALFORMED;
            return NULL;
        }
        value = json_integer ((json_int_t) obj->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        value = json_integer ((json_int_t) obj->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        value = json_real (obj->via.f64); //  NULL for NaN/inf: malformed
        break;
    case MSGPACK_OBJECT_STR:
        value = json_stringn (obj->via.str.ptr, obj->via.str.size); //  NULL unless UTF-8
        break;
    case MSGPACK_OBJECT_ARRAY:
        value = json_array ();
        for (uint32_t i = 0; value && i < obj->via.array.size; i++) {
            json_t *item = s_unpack (&obj->via.array.ptr[i], depth + 1, err);
            if (!item || json_array_append_new (value, item) != 0) {
                json_decref (value);
                value = NULL;
            }
        }
        break;
    case MSGPACK_OBJECT_MAP:
        value = json_object ();
        for (uint32_t i = 0; value && i < obj->via.map.size; i++) {
            const msgpack_object_kv *kv = &obj->via.map.ptr[i];
            json_t *member = NULL;
            if (kv->key.type == MSGPACK_OBJECT_STR)
                member = s_unpack (&kv->val, depth + 1, err);
            if (!member || json_object_setn_new (value, kv->key.via.str.ptr, kv->key.via.str.size,
                                                 member) != 0) {
                json_decref (value);
                value = NULL;
            }
        }
        break;
    default: //  bin, ext: not part of the protocol
        break;
    }
    if (!value && !*err)
        *err = AQ_EPROTO_MALFORMED;
    return value;
}

//  msgpack-c allocates a container's declared element count before reading
//  it, so a 5-byte "array of 2^32 items" would ask for gigabytes. This scan
//  walks the encoding first and accepts it only if every length and count
//  fits in the bytes that are actually there. Returns the bytes one value
//  spans, or -1.
static int64_t s_scan (const uint8_t *data, size_t size, int depth) {
    if (size < 1 || depth > AQ_PROTO_DEPTH + 1)
        return -1;
    uint8_t type = data[0];
    size_t head = 1, length = 0, items = 0;
#define NEED(n)                                                                                    \
    if (size < (n))                                                                                \
        return -1;
#define BE(bytes)                                                                                  \
    (bytes == 1 ? data[1]                                                                          \
     : bytes == 2                                                                                  \
         ? (size_t) data[1] << 8 | data[2]                                                         \
         : (size_t) data[1] << 24 | (size_t) data[2] << 16 | (size_t) data[3] << 8 | data[4])
    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
        ;
    else if ((type & 0xf0) == 0x80)
        items = 2 * (size_t) (type & 0x0f);
    else if ((type & 0xf0) == 0x90)
        items = type & 0x0f;
    else if ((type & 0xe0) == 0xa0)
        length = type & 0x1f;
    else if (type >= 0xc4 && type <= 0xc6) { //  bin
        size_t n = (size_t) 1 << (type - 0xc4);
        NEED (1 + n);
        head += n, length = BE (n);
    } else if (type >= 0xc7 && type <= 0xc9) { //  ext
        size_t n = (size_t) 1 << (type - 0xc7);
        NEED (1 + n);
        head += n + 1, length = BE (n);
    } else if (type == 0xca || type == 0xcb)
        length = type == 0xca ? 4 : 8;
    else if (type >= 0xcc && type <= 0xd3)
        length = (size_t) 1 << ((type - 0xcc) & 3);
    else if (type >= 0xd4 && type <= 0xd8)
        length = 1 + ((size_t) 1 << (type - 0xd4));
    else if (type >= 0xd9 && type <= 0xdb) { //  str
        size_t n = (size_t) 1 << (type - 0xd9);
        NEED (1 + n);
        head += n, length = BE (n);
    } else if (type == 0xdc || type == 0xdd || type == 0xde || type == 0xdf) {
        size_t n = type == 0xdc || type == 0xde ? 2 : 4;
        NEED (1 + n);
        head += n, items = BE (n);
        if (type >= 0xde)
            items *= 2;
    } else
        return -1; //  0xc1: never used
#undef BE
    NEED (head + length);
    size_t offset = head + length;
    if (items > size - offset) //  every item takes at least one byte
        return -1;
    for (size_t i = 0; i < items; i++) {
        int64_t span = s_scan (data + offset, size - offset, depth + 1);
        if (span < 0)
            return -1;
        offset += (size_t) span;
    }
#undef NEED
    return (int64_t) offset;
}

//  Each thread keeps one msgpack zone and clears it after every decode:
//  a fresh zone costs an 8 KiB allocation per message.
static pthread_key_t s_zone_key;
static pthread_once_t s_zone_once = PTHREAD_ONCE_INIT;

static void s_zone_free (void *zone) {
    msgpack_zone_free ((msgpack_zone *) zone);
}
static void s_zone_init (void) {
    pthread_key_create (&s_zone_key, s_zone_free);
}

static json_t *s_decode (const uint8_t *data, size_t size, int *err) {
    if (s_scan (data, size, 0) != (int64_t) size) {
        *err = AQ_EPROTO_MALFORMED;
        return NULL;
    }
    pthread_once (&s_zone_once, s_zone_init);
    msgpack_zone *zone = pthread_getspecific (s_zone_key);
    if (!zone) {
        zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE);
        if (!zone) {
            *err = AQ_EPROTO_NOMEM;
            return NULL;
        }
        pthread_setspecific (s_zone_key, zone);
    }
    msgpack_object object;
    size_t offset = 0;
    json_t *value = NULL;
    if (msgpack_unpack ((const char *) data, size, &offset, zone, &object) ==
            MSGPACK_UNPACK_SUCCESS &&
        offset == size)
        value = s_unpack (&object, 0, err);
    else
        *err = AQ_EPROTO_MALFORMED;
    msgpack_zone_clear (zone);
    return value;
}

int aq_proto_decode (const uint8_t *data, size_t size, int *cmd, json_t **body) {
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
    json_t *value = s_decode (data + AQ_PROTO_HEADER, size - AQ_PROTO_HEADER, &err);
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

json_t *aq_proto_unpack (const uint8_t *data, size_t size) {
    int err = 0;
    json_t *value = s_decode (data, size, &err);
    if (err) {
        json_decref (value);
        return NULL;
    }
    return value;
}

//  --------------------------------------------------------------------------
//  Socket helper and field accessors

int aq_proto_send (void *socket, const void *rid, size_t rid_size, int cmd, const json_t *body,
                   int flags) {
    size_t size;
    uint8_t *data = aq_proto_encode (cmd, body, &size);
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
    uint8_t *data = aq_proto_encode (AQ_CMD_TASK_CREATE, in, &size);
    assert (data);
    int cmd;
    json_t *out;
    assert (aq_proto_decode (data, size, &cmd, &out) == 0);
    assert (cmd == AQ_CMD_TASK_CREATE);
    assert (json_equal (in, out));
    //  every truncation is rejected, never read past the end
    for (size_t cut = 0; cut < size; cut++) {
        json_t *part = NULL;
        assert (aq_proto_decode (data, cut, &cmd, &part) != 0 && part == NULL);
    }
    free (data);
    json_decref (in);
    json_decref (out);
}

void aq_proto_test (bool verbose) {
    assert (strcmp (aq_proto_name (AQ_CMD_JOB), "JOB") == 0);
    assert (aq_proto_name (99) == NULL);
    s_roundtrip ("{}");
    s_roundtrip ("{\"corr\": 7, \"task\": {\"targetUrl\": \"http://x/\", \"headers\": "
                 "{\"a\": \"b\"}, \"n\": -5, \"r\": 1.5, \"t\": true, \"f\": false, "
                 "\"z\": null, \"l\": [1, [2, {}], \"\u00e9\"]}}");

    int cmd;
    json_t *body;
    uint8_t bad[8] = {0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x80};
    assert (aq_proto_decode (bad, 5, &cmd, &body) == 0 && json_object_size (body) == 0);
    json_decref (body);
    assert (aq_proto_decode (bad, 3, &cmd, &body) == AQ_EPROTO_SHORT);
    bad[0] = 0x00;
    assert (aq_proto_decode (bad, 5, &cmd, &body) == AQ_EPROTO_SIGNATURE);
    bad[0] = 0xAA, bad[2] = 9;
    assert (aq_proto_decode (bad, 5, &cmd, &body) == AQ_EPROTO_VERSION);
    bad[2] = AQ_PROTO_VERSION, bad[3] = 200;
    assert (aq_proto_decode (bad, 5, &cmd, &body) == AQ_EPROTO_COMMAND);
    bad[3] = AQ_CMD_JOB, bad[4] = 0x91, bad[5] = 0x01; //  an array, not a map
    assert (aq_proto_decode (bad, 6, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x81, bad[5] = 0x01, bad[6] = 0x01; //  {1: 1}: non-string key
    assert (aq_proto_decode (bad, 7, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x81, bad[5] = 0xA1, bad[6] = 0xFF, bad[7] = 0x01; //  key not UTF-8
    assert (aq_proto_decode (bad, 8, &cmd, &body) == AQ_EPROTO_MALFORMED);
    bad[4] = 0x80, bad[5] = 0x80; //  trailing bytes after the map
    assert (aq_proto_decode (bad, 6, &cmd, &body) == AQ_EPROTO_MALFORMED);

    //  nesting beyond the limit is refused both ways
    uint8_t deep[4 + 64];
    memcpy (deep, (uint8_t[]){0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB}, 4);
    deep[4] = 0x81, deep[5] = 0xA1, deep[6] = 'a';
    for (int i = 7; i < (int) sizeof deep; i++)
        deep[i] = 0x91; //  [[[[...
    assert (aq_proto_decode (deep, sizeof deep, &cmd, &body) != 0);

    //  a declared size beyond the frame is refused before any allocation
    uint8_t huge[] = {
        0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_JOB, 0x81, 0xA1, 'a', 0xDD, 0xFF, 0xFF, 0xFF,
        0xFF, 0x01};
    assert (aq_proto_decode (huge, sizeof huge, &cmd, &body) == AQ_EPROTO_MALFORMED);
    huge[7] = 0xDB; //  a 4 GiB string
    assert (aq_proto_decode (huge, sizeof huge, &cmd, &body) == AQ_EPROTO_MALFORMED);

    //  random garbage never crashes
    unsigned seed = 42;
    for (int round = 0; round < 20000; round++) {
        uint8_t junk[24] = {0xAA, 0xA1, AQ_PROTO_VERSION, AQ_CMD_RESULT};
        for (int i = 4; i < 24; i++)
            junk[i] = (uint8_t) rand_r (&seed);
        body = NULL;
        if (aq_proto_decode (junk, 4 + (size_t) (rand_r (&seed) % 20), &cmd, &body) == 0)
            assert (json_is_object (body));
        json_decref (body);
    }
    if (verbose)
        printf ("aq_proto: ok\n");
}
