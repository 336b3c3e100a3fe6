/*  aq_msg.c - msgpack without a document tree: views to read, a buffer to write

    The reader checks a whole buffer once (aq_msg_check: one pass, no
    allocation, recursion bounded by AQ_PROTO_DEPTH), after which nodes and
    iterators walk it without checking again. The writer produces the same
    bytes msgpack-c's packer does for the same values (smallest integer,
    string and container headers), so golden vectors hold whichever side
    encoded a message.
*/
#include "aq_msg.h"
#include "aq_proto.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Reading

static uint64_t s_be (const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

//  True when text[0..size) is well-formed UTF-8 (no overlongs, surrogates
//  or code points past U+10FFFF).
static bool s_utf8 (const uint8_t *text, size_t size) {
    size_t i = 0;
    while (i < size) {
        uint64_t eight;
        if (i + 8 <= size && (memcpy (&eight, text + i, 8), (eight & 0x8080808080808080u) == 0)) {
            i += 8; //  eight ASCII bytes at once: most strings are all ASCII
            continue;
        }
        uint8_t c = text[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return false;
        if (i + n >= size) //  the continuation bytes are not all there
            return false;
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

//  Reads the header of the value at p (end bounds it) into node, without
//  looking inside containers: data, count and the scalar value are set,
//  raw_size is the header's size plus, for str and bin, the bytes. -1 when
//  the header is cut short or not one this protocol allows.
static int s_header (const uint8_t *p, const uint8_t *end, aq_node_t *node) {
    if (p >= end)
        return -1;
    size_t avail = (size_t) (end - p);
    uint8_t b = p[0];
    size_t head = 1, len = 0;
    memset (node, 0, sizeof *node);
    node->raw = p;
#define NEED(n)                                                                                    \
    do {                                                                                           \
        if (avail < (size_t) (n))                                                                  \
            return -1;                                                                             \
    } while (0)
    if (b <= 0x7F) {
        node->type = AQ_NODE_INT, node->i = b, node->u = b;
    } else if (b >= 0xE0) {
        node->type = AQ_NODE_INT, node->i = (int8_t) b;
    } else if ((b & 0xF0) == 0x80 || (b & 0xF0) == 0x90) {
        node->type = (b & 0xF0) == 0x80 ? AQ_NODE_MAP : AQ_NODE_ARRAY;
        node->count = b & 0x0F;
    } else if ((b & 0xE0) == 0xA0) {
        node->type = AQ_NODE_STR, len = b & 0x1F;
    } else
        switch (b) {
        case 0xC0:
            node->type = AQ_NODE_NIL;
            break;
        case 0xC2:
        case 0xC3:
            node->type = AQ_NODE_BOOL, node->b = b == 0xC3;
            break;
        case 0xC4:
        case 0xC5:
        case 0xC6:
        case 0xD9:
        case 0xDA:
        case 0xDB: {
            int n = b == 0xC4 || b == 0xD9 ? 1 : b == 0xC5 || b == 0xDA ? 2 : 4;
            NEED (1 + n);
            head = 1 + (size_t) n;
            len = (size_t) s_be (p + 1, n);
            node->type = b <= 0xC6 ? AQ_NODE_BIN : AQ_NODE_STR;
            break;
        }
        case 0xCA: {
            NEED (5);
            uint32_t bits = (uint32_t) s_be (p + 1, 4);
            float f;
            memcpy (&f, &bits, 4);
            node->type = AQ_NODE_FLOAT, node->f = f, head = 5;
            break;
        }
        case 0xCB: {
            NEED (9);
            uint64_t bits = s_be (p + 1, 8);
            memcpy (&node->f, &bits, 8);
            node->type = AQ_NODE_FLOAT, head = 9;
            break;
        }
        case 0xCC:
        case 0xCD:
        case 0xCE:
        case 0xCF: {
            int n = 1 << (b - 0xCC);
            NEED (1 + n);
            node->u = s_be (p + 1, n);
            node->type = node->u > (uint64_t) INT64_MAX ? AQ_NODE_UINT : AQ_NODE_INT;
            node->i = (int64_t) node->u;
            head = 1 + (size_t) n;
            break;
        }
        case 0xD0:
        case 0xD1:
        case 0xD2:
        case 0xD3: {
            int n = 1 << (b - 0xD0);
            NEED (1 + n);
            uint64_t v = s_be (p + 1, n);
            int shift = 64 - 8 * n;
            node->i = (int64_t) (v << shift) >> shift; //  sign-extend
            node->type = AQ_NODE_INT;
            if (node->i >= 0)
                node->u = (uint64_t) node->i;
            head = 1 + (size_t) n;
            break;
        }
        case 0xDC:
        case 0xDD:
        case 0xDE:
        case 0xDF: {
            int n = b == 0xDC || b == 0xDE ? 2 : 4;
            NEED (1 + n);
            node->count = (uint32_t) s_be (p + 1, n);
            node->type = b <= 0xDD ? AQ_NODE_ARRAY : AQ_NODE_MAP;
            head = 1 + (size_t) n;
            break;
        }
        default: //  ext, fixext, and 0xC1 (never used)
            return -1;
        }
    if (node->type == AQ_NODE_STR || node->type == AQ_NODE_BIN) {
        NEED (head + len);
        node->count = (uint32_t) len;
        node->raw_size = head + len;
    } else
        node->raw_size = head;
    node->data = p + head;
#undef NEED
    return 0;
}

//  Checks the value at p and returns the bytes it spans, or -1.
static int64_t s_check (const uint8_t *p, const uint8_t *end, int depth) {
    aq_node_t node;
    if (depth > AQ_PROTO_DEPTH || s_header (p, end, &node) != 0)
        return -1;
    if (node.type == AQ_NODE_STR && !s_utf8 (node.data, node.count))
        return -1;
    if (node.type != AQ_NODE_ARRAY && node.type != AQ_NODE_MAP)
        return (int64_t) node.raw_size;
    //  each item takes at least one byte: a count the bytes cannot hold is
    //  refused before any loop over it
    uint64_t items = (uint64_t) node.count * (node.type == AQ_NODE_MAP ? 2 : 1);
    if (items > (uint64_t) (end - node.data))
        return -1;
    const uint8_t *q = node.data;
    for (uint64_t k = 0; k < items; k++) {
        if (node.type == AQ_NODE_MAP && k % 2 == 0) { //  a key: a string or an integer
            aq_node_t key;
            if (s_header (q, end, &key) != 0 ||
                (key.type != AQ_NODE_STR && key.type != AQ_NODE_INT))
                return -1;
        }
        int64_t used = s_check (q, end, depth + 1);
        if (used < 0)
            return -1;
        q += used;
    }
    return (int64_t) (q - p);
}

int aq_msg_check (const uint8_t *data, size_t size) {
    if (!data || size == 0)
        return -1;
    int64_t used = s_check (data, data + size, 0);
    return used == (int64_t) size ? 0 : -1;
}

int aq_msg_parse (const uint8_t *data, size_t size, aq_node_t *node) {
    if (aq_msg_check (data, size) != 0)
        return -1;
    s_header (data, data + size, node);
    node->raw_size = size;
    return 0;
}

int aq_msg_frame (const uint8_t *data, size_t size, int *cmd, aq_node_t *body) {
    if (size < AQ_PROTO_HEADER)
        return AQ_EPROTO_SHORT;
    if (data[0] != AQ_PROTO_SIG0 || data[1] != AQ_PROTO_SIG1)
        return AQ_EPROTO_SIGNATURE;
    if (data[2] != AQ_PROTO_VERSION)
        return AQ_EPROTO_VERSION;
    if (!aq_proto_name (data[3]))
        return AQ_EPROTO_COMMAND;
    if (aq_msg_parse (data + AQ_PROTO_HEADER, size - AQ_PROTO_HEADER, body) != 0 ||
        body->type != AQ_NODE_MAP)
        return AQ_EPROTO_MALFORMED;
    *cmd = data[3];
    return 0;
}

//  The bytes the checked value at p spans.
static size_t s_skip (const uint8_t *p, const uint8_t *end) {
    aq_node_t node;
    s_header (p, end, &node);
    if (node.type != AQ_NODE_ARRAY && node.type != AQ_NODE_MAP)
        return node.raw_size;
    const uint8_t *q = node.data;
    uint64_t items = (uint64_t) node.count * (node.type == AQ_NODE_MAP ? 2 : 1);
    for (uint64_t k = 0; k < items; k++)
        q += s_skip (q, end);
    return (size_t) (q - p);
}

//  A node for the checked value at p, with its whole raw size.
static void s_node (const uint8_t *p, const uint8_t *end, aq_node_t *node) {
    s_header (p, end, node);
    if (node->type == AQ_NODE_ARRAY || node->type == AQ_NODE_MAP)
        node->raw_size = s_skip (p, end);
}

void aq_msg_head (const uint8_t *p, const uint8_t *end, aq_node_t *node) {
    int rc = s_header (p, end, node);
    assert (rc == 0); //  a checked buffer
    (void) rc;
}

void aq_node_iter (const aq_node_t *container, aq_iter_t *it) {
    memset (it, 0, sizeof *it);
    if (container->type != AQ_NODE_ARRAY && container->type != AQ_NODE_MAP)
        return;
    it->next = container->data;
    it->end = container->raw + container->raw_size;
    it->left = container->count;
    it->map = container->type == AQ_NODE_MAP;
}

bool aq_iter_next (aq_iter_t *it, aq_node_t *key, aq_node_t *value) {
    if (it->left == 0)
        return false;
    it->left--;
    if (it->map) {
        aq_node_t ignored;
        aq_node_t *k = key ? key : &ignored;
        s_node (it->next, it->end, k);
        it->next += k->raw_size;
    }
    s_node (it->next, it->end, value);
    it->next += value->raw_size;
    return true;
}

bool aq_node_get (const aq_node_t *map, const char *key, aq_node_t *value) {
    if (!map || map->type != AQ_NODE_MAP)
        return false;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t k;
    while (aq_iter_next (&it, &k, value))
        if (aq_node_streq (&k, key))
            return true;
    return false;
}

bool aq_node_is_str (const aq_node_t *node) {
    return node && node->type == AQ_NODE_STR;
}

bool aq_node_is_nil (const aq_node_t *node) {
    return node && node->type == AQ_NODE_NIL;
}

bool aq_node_streq (const aq_node_t *node, const char *text) {
    size_t len = strlen (text);
    return aq_node_is_str (node) && node->count == len && memcmp (node->data, text, len) == 0;
}

char *aq_node_strdup (const aq_node_t *node) {
    if (!aq_node_is_str (node) || memchr (node->data, 0, node->count))
        return NULL;
    char *copy = malloc ((size_t) node->count + 1);
    if (copy) {
        memcpy (copy, node->data, node->count);
        copy[node->count] = '\0';
    }
    return copy;
}

bool aq_node_strcpy (const aq_node_t *node, char *buf, size_t size) {
    if (!aq_node_is_str (node) || node->count >= size || memchr (node->data, 0, node->count))
        return false;
    memcpy (buf, node->data, node->count);
    buf[node->count] = '\0';
    return true;
}

bool aq_node_int_in (const aq_node_t *node, int64_t min, int64_t max, int64_t *out) {
    if (!node)
        return false;
    if (node->type == AQ_NODE_INT) {
        if (node->i < min || node->i > max)
            return false;
        *out = node->i;
        return true;
    }
    if (node->type != AQ_NODE_FLOAT || node->f != floor (node->f) || node->f < (double) min ||
        node->f > (double) max)
        return false;
    *out = (int64_t) node->f;
    return true;
}

bool aq_node_number (const aq_node_t *node, double *out) {
    if (!node)
        return false;
    if (node->type == AQ_NODE_INT)
        *out = (double) node->i;
    else if (node->type == AQ_NODE_UINT)
        *out = (double) node->u;
    else if (node->type == AQ_NODE_FLOAT)
        *out = node->f;
    else
        return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Writing

void aq_writer_init (aq_writer_t *self) {
    memset (self, 0, sizeof *self);
}

void aq_writer_release (aq_writer_t *self) {
    free (self->data);
    memset (self, 0, sizeof *self);
}

void aq_writer_reset (aq_writer_t *self) {
    self->size = 0;
    self->err = 0;
}

const uint8_t *aq_writer_data (aq_writer_t *self, size_t *size) {
    *size = self->err ? 0 : self->size;
    return self->err ? NULL : self->data;
}

uint8_t *aq_writer_take (aq_writer_t *self, size_t *size) {
    uint8_t *data = self->err ? NULL : self->data;
    *size = data ? self->size : 0;
    if (!data)
        free (self->data);
    memset (self, 0, sizeof *self);
    return data;
}

//  Room for n more bytes; NULL (and the sticky error) when out of memory.
static uint8_t *s_room (aq_writer_t *self, size_t n) {
    if (self->err)
        return NULL;
    if (self->size + n > self->cap) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap < self->size + n)
            cap *= 2;
        uint8_t *data = realloc (self->data, cap);
        if (!data) {
            self->err = -1;
            return NULL;
        }
        self->data = data;
        self->cap = cap;
    }
    uint8_t *at = self->data + self->size;
    self->size += n;
    return at;
}

static void s_put_be (uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

//  A type byte followed by an n-byte big-endian number.
static void s_tagged (aq_writer_t *self, uint8_t tag, uint64_t value, int n) {
    uint8_t *p = s_room (self, 1 + (size_t) n);
    if (p) {
        p[0] = tag;
        s_put_be (p + 1, value, n);
    }
}

static void s_container (aq_writer_t *self, uint32_t n, uint8_t fix, uint8_t tag16, uint8_t tag32) {
    if (n < 16)
        s_tagged (self, (uint8_t) (fix | n), 0, 0);
    else if (n <= 0xFFFF)
        s_tagged (self, tag16, n, 2);
    else
        s_tagged (self, tag32, n, 4);
}

void aq_write_map (aq_writer_t *self, uint32_t pairs) {
    s_container (self, pairs, 0x80, 0xDE, 0xDF);
}

void aq_write_array (aq_writer_t *self, uint32_t items) {
    s_container (self, items, 0x90, 0xDC, 0xDD);
}

//  text with each byte that does not belong to a UTF-8 character replaced
//  by U+FFFD, malloc'd, its length in *size; NULL when out of memory.
static char *s_utf8_repaired (const char *text, size_t *size) {
    char *out = malloc (*size * 3 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < *size;) {
        size_t len = 1;
        while (len <= 4 && i + len <= *size && !s_utf8 ((const uint8_t *) text + i, len))
            len++;
        if (len <= 4 && i + len <= *size) { //  a character
            memcpy (out + n, text + i, len);
            n += len, i += len;
        } else {
            memcpy (out + n, "\xEF\xBF\xBD", 3);
            n += 3, i++;
        }
    }
    *size = n;
    return out;
}

void aq_write_strn (aq_writer_t *self, const char *text, size_t size) {
    if (!s_utf8 ((const uint8_t *) text, size)) {
        //  A reader refuses such a string, and the frame or record with it:
        //  a message cut in the middle of a character must still be read
        char *repaired = s_utf8_repaired (text, &size);
        if (!repaired) {
            self->err = -1;
            return;
        }
        aq_write_strn (self, repaired, size);
        free (repaired);
        return;
    }
    if (size < 32)
        s_tagged (self, (uint8_t) (0xA0 | size), 0, 0);
    else if (size <= 0xFF)
        s_tagged (self, 0xD9, size, 1);
    else if (size <= 0xFFFF)
        s_tagged (self, 0xDA, size, 2);
    else
        s_tagged (self, 0xDB, size, 4);
    aq_write_raw (self, text, size);
}

void aq_write_str (aq_writer_t *self, const char *text) {
    if (text)
        aq_write_strn (self, text, strlen (text));
    else
        aq_write_nil (self);
}

void aq_write_uint (aq_writer_t *self, uint64_t value) {
    if (value < 128)
        s_tagged (self, (uint8_t) value, 0, 0);
    else if (value <= 0xFF)
        s_tagged (self, 0xCC, value, 1);
    else if (value <= 0xFFFF)
        s_tagged (self, 0xCD, value, 2);
    else if (value <= 0xFFFFFFFF)
        s_tagged (self, 0xCE, value, 4);
    else
        s_tagged (self, 0xCF, value, 8);
}

void aq_write_int (aq_writer_t *self, int64_t value) {
    if (value >= 0)
        aq_write_uint (self, (uint64_t) value);
    else if (value >= -32)
        s_tagged (self, (uint8_t) (int8_t) value, 0, 0);
    else if (value >= INT8_MIN)
        s_tagged (self, 0xD0, (uint8_t) (int8_t) value, 1);
    else if (value >= INT16_MIN)
        s_tagged (self, 0xD1, (uint16_t) (int16_t) value, 2);
    else if (value >= INT32_MIN)
        s_tagged (self, 0xD2, (uint32_t) (int32_t) value, 4);
    else
        s_tagged (self, 0xD3, (uint64_t) value, 8);
}

void aq_write_double (aq_writer_t *self, double value) {
    uint64_t bits;
    memcpy (&bits, &value, 8);
    s_tagged (self, 0xCB, bits, 8);
}

void aq_write_bool (aq_writer_t *self, bool value) {
    s_tagged (self, value ? 0xC3 : 0xC2, 0, 0);
}

void aq_write_nil (aq_writer_t *self) {
    s_tagged (self, 0xC0, 0, 0);
}

void aq_write_bin (aq_writer_t *self, const void *data, size_t size) {
    if (size <= 0xFF)
        s_tagged (self, 0xC4, size, 1);
    else if (size <= 0xFFFF)
        s_tagged (self, 0xC5, size, 2);
    else
        s_tagged (self, 0xC6, size, 4);
    aq_write_raw (self, data, size);
}

void aq_write_raw (aq_writer_t *self, const void *data, size_t size) {
    uint8_t *p = size ? s_room (self, size) : NULL;
    if (p)
        memcpy (p, data, size);
}

//  A container's largest header (tag32 and 4 bytes), shrunk at close.
static size_t s_open (aq_writer_t *self, uint8_t tag32) {
    size_t mark = self->size;
    s_tagged (self, tag32, 0, 4);
    return mark;
}

static void s_close (aq_writer_t *self, size_t mark, uint32_t n, uint8_t fix, uint8_t tag16,
                     uint8_t tag32) {
    if (self->err)
        return;
    assert (mark + 5 <= self->size && self->data[mark] == tag32);
    size_t head = n < 16 ? 1 : n <= 0xFFFF ? 3 : 5;
    uint8_t *p = self->data + mark;
    if (head < 5)
        memmove (p + head, p + 5, self->size - mark - 5);
    self->size -= 5 - head;
    if (head == 1)
        p[0] = (uint8_t) (fix | n);
    else {
        p[0] = head == 3 ? tag16 : tag32;
        s_put_be (p + 1, n, (int) head - 1);
    }
}

size_t aq_write_map_open (aq_writer_t *self) {
    return s_open (self, 0xDF);
}

void aq_write_map_close (aq_writer_t *self, size_t mark, uint32_t pairs) {
    s_close (self, mark, pairs, 0x80, 0xDE, 0xDF);
}

size_t aq_write_array_open (aq_writer_t *self) {
    return s_open (self, 0xDD);
}

void aq_write_array_close (aq_writer_t *self, size_t mark, uint32_t items) {
    s_close (self, mark, items, 0x90, 0xDC, 0xDD);
}

void aq_write_kv_str (aq_writer_t *self, const char *key, const char *value) {
    aq_write_str (self, key);
    aq_write_str (self, value);
}

void aq_write_kv_int (aq_writer_t *self, const char *key, int64_t value) {
    aq_write_str (self, key);
    aq_write_int (self, value);
}

void aq_write_kv_bool (aq_writer_t *self, const char *key, bool value) {
    aq_write_str (self, key);
    aq_write_bool (self, value);
}

//  --------------------------------------------------------------------------

static void s_expect_hex (aq_writer_t *w, const char *hex) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    char text[512] = "";
    for (size_t i = 0; i < size && 2 * i + 2 < sizeof text; i++)
        sprintf (text + 2 * i, "%02x", data[i]);
    if (strcmp (text, hex) != 0) {
        fprintf (stderr, "aq_msg: wrote %s, want %s\n", text, hex);
        assert (false);
    }
    aq_writer_reset (w);
}

void aq_msg_test (bool verbose) {
    aq_writer_t w;
    aq_writer_init (&w);
    //  msgpack-c's choices: the smallest form of each
    aq_write_int (&w, 0), aq_write_int (&w, 127), aq_write_int (&w, 128), aq_write_int (&w, -1);
    aq_write_int (&w, -32), aq_write_int (&w, -33), aq_write_int (&w, 65536);
    s_expect_hex (&w, "007fcc80ffe0d0dfce00010000");
    aq_write_int (&w, INT64_MIN), aq_write_uint (&w, UINT64_MAX);
    s_expect_hex (&w, "d38000000000000000cfffffffffffffffff");
    aq_write_str (&w, "id"), aq_write_str (&w, NULL), aq_write_bool (&w, true);
    aq_write_double (&w, 1.5);
    s_expect_hex (&w, "a26964c0c3cb3ff8000000000000");
    //  bytes that are not UTF-8 become U+FFFD, so the string reads back: a
    //  message cut inside a character (found by tests/fuzz/cron.c)
    aq_write_str (&w, "a\xdc"), aq_write_strn (&w, "\xc3\xa9\xff\xe2\x82", 5);
    s_expect_hex (&w, "a461efbfbdab"
                      "c3a9efbfbdefbfbdefbfbd");
    char long_text[40];
    memset (long_text, 'x', sizeof long_text);
    aq_write_strn (&w, long_text, 32);
    size_t size;
    assert (aq_writer_data (&w, &size)[0] == 0xD9 && size == 34);
    aq_writer_reset (&w);

    //  a map of unknown size shrinks to the smallest header at close
    size_t mark = aq_write_map_open (&w);
    aq_write_kv_int (&w, "a", 1);
    aq_write_kv_str (&w, "b", "c");
    aq_write_map_close (&w, mark, 2);
    s_expect_hex (&w, "82a16101a162a163");
    mark = aq_write_map_open (&w);
    for (int i = 0; i < 20; i++)
        aq_write_kv_int (&w, "k", i);
    aq_write_map_close (&w, mark, 20);
    assert (aq_writer_data (&w, &size)[0] == 0xDE && size == 3 + 20 * 3);
    size_t list = aq_write_array_open (&w);
    aq_write_int (&w, 1);
    aq_write_array_close (&w, list, 1);
    assert (aq_writer_data (&w, &size)[3 + 20 * 3] == 0x91 && size == 3 + 20 * 3 + 2);
    w.size -= 2; //  drop the array again

    //  read it back
    aq_node_t map, value, key;
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &map) == 0);
    assert (map.type == AQ_NODE_MAP && map.count == 20 && map.raw_size == size);
    aq_iter_t it;
    aq_node_iter (&map, &it);
    int n = 0;
    while (aq_iter_next (&it, &key, &value)) {
        assert (aq_node_streq (&key, "k") && value.type == AQ_NODE_INT && value.i == n);
        n++;
    }
    assert (n == 20);
    aq_writer_reset (&w);

    //  nested values, lookups, accessors
    aq_write_map (&w, 4);
    aq_write_kv_str (&w, "name", "caf\xc3\xa9");
    aq_write_str (&w, "list");
    aq_write_array (&w, 3), aq_write_int (&w, -7), aq_write_double (&w, 2.0), aq_write_nil (&w);
    aq_write_str (&w, "inner");
    aq_write_map (&w, 1), aq_write_kv_bool (&w, "deep", true);
    aq_write_kv_int (&w, "big", INT64_MAX);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &map) == 0);
    assert (aq_node_get (&map, "name", &value) && aq_node_streq (&value, "caf\xc3\xa9"));
    char *copy = aq_node_strdup (&value);
    assert (copy && strcmp (copy, "caf\xc3\xa9") == 0);
    free (copy);
    char small[4];
    assert (!aq_node_strcpy (&value, small, sizeof small));
    assert (aq_node_get (&map, "list", &value) && value.type == AQ_NODE_ARRAY);
    aq_node_iter (&value, &it);
    int64_t number;
    assert (aq_iter_next (&it, NULL, &value) && aq_node_int_in (&value, -10, 0, &number) &&
            number == -7);
    assert (aq_iter_next (&it, NULL, &value) && aq_node_int_in (&value, 0, 5, &number) &&
            number == 2); //  2.0 counts as an integer
    assert (aq_iter_next (&it, NULL, &value) && aq_node_is_nil (&value));
    assert (!aq_iter_next (&it, NULL, &value));
    assert (aq_node_get (&map, "inner", &value) && value.type == AQ_NODE_MAP);
    aq_node_t deep;
    assert (aq_node_get (&value, "deep", &deep) && deep.type == AQ_NODE_BOOL && deep.b);
    //  a node's raw bytes are one value: writing them copies it
    aq_writer_t copy_w;
    aq_writer_init (&copy_w);
    aq_write_raw (&copy_w, value.raw, value.raw_size);
    s_expect_hex (&copy_w, "81a464656570c3");
    aq_writer_release (&copy_w);
    assert (aq_node_get (&map, "big", &value) && value.i == INT64_MAX);
    assert (!aq_node_int_in (&value, 0, 10, &number));
    assert (!aq_node_get (&map, "missing", &value));

    //  what the check refuses
    struct {
        const char *hex;
    } bad[] = {
        {"81"},               //  a map cut short
        {"a3616263ff"},       //  trailing bytes
        {"a2c328"},           //  invalid UTF-8
        {"a3eda080"},         //  a UTF-16 surrogate in UTF-8
        {"81c0c0"},           //  a nil key
        {"d40100"},           //  ext
        {"dd7fffffff"},       //  an array of 2^31 items in 5 bytes
        {"c1"},               //  never used
        {"db00000010616263"}, //  a string longer than the buffer
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t bytes[64];
        size_t len = strlen (bad[i].hex) / 2;
        for (size_t k = 0; k < len; k++)
            sscanf (bad[i].hex + 2 * k, "%2hhx", &bytes[k]);
        assert (aq_msg_check (bytes, len) == -1);
    }
    //  nesting: a value AQ_PROTO_DEPTH containers deep is fine, one more is not
    uint8_t nested[AQ_PROTO_DEPTH + 2];
    memset (nested, 0x91, sizeof nested);
    nested[AQ_PROTO_DEPTH] = 0xC0;
    assert (aq_msg_check (nested, AQ_PROTO_DEPTH + 1) == 0);
    nested[AQ_PROTO_DEPTH] = 0x91;
    nested[AQ_PROTO_DEPTH + 1] = 0xC0;
    assert (aq_msg_check (nested, AQ_PROTO_DEPTH + 2) == -1);
    //  8 MiB of empty maps in an array: checked in one pass, nothing allocated
    size_t bomb = 8u << 20;
    uint8_t *big = malloc (bomb);
    assert (big);
    big[0] = 0xDD;
    s_put_be (big + 1, bomb - 5, 4);
    memset (big + 5, 0x80, bomb - 5);
    assert (aq_msg_check (big, bomb) == 0);
    free (big);
    //  frames
    aq_writer_reset (&w);
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       AQ_CMD_TASK_GET};
    aq_write_raw (&w, header, sizeof header);
    aq_write_map (&w, 1), aq_write_kv_str (&w, "id", "x");
    data = aq_writer_data (&w, &size);
    int cmd;
    aq_node_t body;
    assert (aq_msg_frame (data, size, &cmd, &body) == 0 && cmd == AQ_CMD_TASK_GET);
    assert (aq_node_get (&body, "id", &value) && aq_node_streq (&value, "x"));
    assert (aq_msg_frame (data, 3, &cmd, &body) == AQ_EPROTO_SHORT);
    assert (aq_msg_frame (data, size - 1, &cmd, &body) == AQ_EPROTO_MALFORMED);
    uint8_t frame[64];
    memcpy (frame, data, size);
    frame[2] = 9;
    assert (aq_msg_frame (frame, size, &cmd, &body) == AQ_EPROTO_VERSION);
    frame[2] = AQ_PROTO_VERSION;
    frame[3] = 250;
    assert (aq_msg_frame (frame, size, &cmd, &body) == AQ_EPROTO_COMMAND);
    frame[0] = 0;
    assert (aq_msg_frame (frame, size, &cmd, &body) == AQ_EPROTO_SIGNATURE);
    aq_writer_release (&w);
    if (verbose)
        printf ("aq_msg: ok\n");
}
