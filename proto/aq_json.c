/*  aq_json.c - JSON text straight from msgpack, without a document tree */
#include "aq_json.h"
#include "aq_codec.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The text goes through a buffer on the stack, so a reply of a few hundred
//  bytes is one write to the writer: a value is walked once (aq_msg_head),
//  never measured first.
typedef struct {
    aq_writer_t *out; //  where it goes
    size_t used;      //  bytes in buf
    char buf[1024];   //  not yet in out
} s_text_t;

static void s_flush (s_text_t *text) {
    aq_write_raw (text->out, text->buf, text->used);
    text->used = 0;
}

static void s_put (s_text_t *text, const void *bytes, size_t size) {
    if (text->used + size > sizeof text->buf) {
        s_flush (text);
        if (size > sizeof text->buf) {
            aq_write_raw (text->out, bytes, size);
            return;
        }
    }
    memcpy (text->buf + text->used, bytes, size);
    text->used += size;
}

static void s_char (s_text_t *text, char c) {
    if (text->used == sizeof text->buf)
        s_flush (text);
    text->buf[text->used++] = c;
}

//  Bytes a JSON string holds as they are: all but '"', '\' and controls.
static const bool s_plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0xFF] = 1};

//  How many bytes from p (n there) go into a string as they are: eight at
//  a time while none of them is '"', '\\' or below 0x20.
static size_t s_plain_run (const uint8_t *p, size_t n) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy (&v, p + i, 8);
        uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
        uint64_t control = (v - ones * 0x20) & ~v; //  the classic zero-byte tests:
        quote = (quote - ones) & ~quote;           //  a byte's high bit is set when
        slash = (slash - ones) & ~slash;           //  it was below 0x20, or 0
        if ((control | quote | slash) & highs)
            break;
    }
    while (i < n && s_plain[p[i]])
        i++;
    return i;
}

//  A JSON string literal: quotes, and escapes for '"', '\\' and control
//  characters (the short forms where JSON has them, else \u00XX in capitals),
//  as jansson writes it.
static void s_string (s_text_t *text, const uint8_t *bytes, size_t size) {
    s_char (text, '"');
    size_t start = 0;
    for (size_t i = 0; i < size; i++) {
        i += s_plain_run (bytes + i, size - i);
        if (i == size)
            break;
        uint8_t c = bytes[i];
        s_put (text, bytes + start, i - start);
        char escape[8] = {'\\', (char) c};
        size_t length = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            escape[1] = 'b';
            break;
        case '\f':
            escape[1] = 'f';
            break;
        case '\n':
            escape[1] = 'n';
            break;
        case '\r':
            escape[1] = 'r';
            break;
        case '\t':
            escape[1] = 't';
            break;
        default:
            length = (size_t) snprintf (escape, sizeof escape, "\\u%04X", c);
        }
        s_put (text, escape, length);
        start = i + 1;
    }
    s_put (text, bytes + start, size - start);
    s_char (text, '"');
}

static void s_integer (s_text_t *text, int64_t value) {
    char digits[24], *p = digits + sizeof digits;
    uint64_t left = value < 0 ? 0 - (uint64_t) value : (uint64_t) value;
    do
        *--p = (char) ('0' + left % 10);
    while (left /= 10);
    if (value < 0)
        *--p = '-';
    s_put (text, p, (size_t) (digits + sizeof digits - p));
}

//  A real as jansson formats it: 17 significant digits, ".0" when the
//  result would read as an integer, and an exponent without '+' or
//  leading zeros (1e+22 is 1e22, 1e-07 is 1e-7).
static int s_real (s_text_t *text, double value) {
    if (!isfinite (value))
        return -1;
    char real[40];
    snprintf (real, sizeof real, "%.17g", value);
    char *exponent = strchr (real, 'e');
    if (!exponent)
        strcat (real, strchr (real, '.') ? "" : ".0");
    else {
        char *digits = exponent + 1 + (exponent[1] == '-'), *from = exponent + 2;
        while (*from == '0')
            from++;
        memmove (digits, from, strlen (from) + 1);
    }
    s_put (text, real, strlen (real));
    return 0;
}

//  Writes the value at p (end closes its checked buffer); returns the byte
//  after it, or NULL for what JSON cannot hold: bin, a map key that is not
//  a string, NaN or infinity, an integer above INT64_MAX.
static const uint8_t *s_value (s_text_t *text, const uint8_t *p, const uint8_t *end) {
    aq_node_t node;
    aq_msg_head (p, end, &node);
    switch (node.type) {
    case AQ_NODE_NIL:
        s_put (text, "null", 4);
        break;
    case AQ_NODE_BOOL:
        s_put (text, node.b ? "true" : "false", node.b ? 4 : 5);
        break;
    case AQ_NODE_INT:
        s_integer (text, node.i);
        break;
    case AQ_NODE_FLOAT:
        if (s_real (text, node.f) != 0)
            return NULL;
        break;
    case AQ_NODE_STR:
        s_string (text, node.data, node.count);
        break;
    case AQ_NODE_ARRAY:
    case AQ_NODE_MAP: {
        bool map = node.type == AQ_NODE_MAP;
        s_char (text, map ? '{' : '[');
        const uint8_t *item = node.data;
        for (uint32_t i = 0; i < node.count; i++) {
            if (i)
                s_char (text, ',');
            if (map) {
                aq_node_t key;
                aq_msg_head (item, end, &key);
                if (key.type != AQ_NODE_STR)
                    return NULL;
                s_string (text, key.data, key.count);
                s_char (text, ':');
                item += key.raw_size;
            }
            if (!(item = s_value (text, item, end)))
                return NULL;
        }
        s_char (text, map ? '}' : ']');
        return item;
    }
    default: //  bin, and integers JSON readers would round
        return NULL;
    }
    return p + node.raw_size;
}

int aq_json_write (const aq_node_t *node, aq_writer_t *out) {
    s_text_t text = {.out = out};
    const uint8_t *after = s_value (&text, node->raw, node->raw + node->raw_size);
    s_flush (&text);
    return after ? 0 : -1;
}

char *aq_json_dumps (const aq_node_t *node) {
    aq_writer_t out;
    aq_writer_init (&out);
    int rc = aq_json_write (node, &out);
    aq_write_raw (&out, "", 1); //  the NUL
    size_t size;
    char *text = (char *) aq_writer_take (&out, &size);
    if (rc != 0) {
        free (text);
        return NULL;
    }
    return text;
}

int aq_json_parse (const char *text, aq_writer_t *out) {
    json_t *value = json_loads (text, JSON_DECODE_ANY, NULL);
    size_t size = 0;
    uint8_t *data = value ? aq_codec_pack (value, &size) : NULL;
    json_decref (value);
    if (!data)
        return -1;
    aq_write_raw (out, data, size);
    free (data);
    return 0;
}

void aq_json_test (bool verbose) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 7);
    aq_write_kv_str (&w, "s", "a\"b\\c\n\x01\x1f\x7f/\xc3\xa9");
    aq_write_kv_int (&w, "n", -42);
    aq_write_str (&w, "f");
    aq_write_double (&w, 2.0);
    aq_write_str (&w, "g");
    aq_write_double (&w, 0.1);
    aq_write_str (&w, "e");
    aq_write_array (&w, 4), aq_write_double (&w, 1e300), aq_write_double (&w, 1e-7);
    aq_write_double (&w, -2.5e-300), aq_write_double (&w, 1e16);
    aq_write_str (&w, "list");
    aq_write_array (&w, 3), aq_write_nil (&w), aq_write_bool (&w, true), aq_write_map (&w, 0);
    aq_write_str (&w, "empty");
    aq_write_array (&w, 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    const char *want = "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u001F\x7f/\xc3\xa9\",\"n\":-42,"
                       "\"f\":2.0,\"g\":0.10000000000000001,\"e\":[1.0000000000000001e300,"
                       "9.9999999999999995e-8,-2.5e-300,10000000000000000.0],"
                       "\"list\":[null,true,{}],\"empty\":[]}";
    if (!text || strcmp (text, want) != 0) {
        fprintf (stderr, "aq_json: %s\n want %s\n", text ? text : "(null)", want);
        assert (false);
    }
    free (text);
    //  jansson's forms: control characters in capitals, exponents trimmed
    aq_writer_reset (&w);
    aq_write_array (&w, 6);
    aq_write_str (&w, "\x0b\x1f\x7f 0123456789 quote\" slash\\ 0123456789\x01");
    aq_write_double (&w, 1e22), aq_write_double (&w, 1e300), aq_write_double (&w, -2.5e-7);
    aq_write_double (&w, 1e-300), aq_write_double (&w, 123456789.0);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &node) == 0);
    text = aq_json_dumps (&node);
    want = "[\"\\u000B\\u001F\x7f 0123456789 quote\\\" slash\\\\ "
           "0123456789\\u0001\",1e22,1.0000000000000001e300,-2.4999999999999999e-7,"
           "1e-300,123456789.0]";
    if (!text || strcmp (text, want) != 0) {
        fprintf (stderr, "aq_json: %s\n want %s\n", text ? text : "(null)", want);
        assert (false);
    }
    free (text);
    //  what JSON cannot hold
    aq_writer_reset (&w);
    aq_write_bin (&w, "x", 1);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &node) == 0 && !aq_json_dumps (&node));
    aq_writer_reset (&w);
    aq_write_map (&w, 1), aq_write_int (&w, 1), aq_write_int (&w, 2);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &node) == 0 && !aq_json_dumps (&node));
    //  and back: JSON text to msgpack to the same text
    aq_writer_reset (&w);
    const char *text_in = "{\"a\":[1,-2,3.5,\"x\"],\"b\":{\"c\":null,\"d\":false}}";
    assert (aq_json_parse (text_in, &w) == 0);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &node) == 0);
    text = aq_json_dumps (&node);
    assert (text && strcmp (text, text_in) == 0);
    free (text);
    assert (aq_json_parse ("{nope", &w) == -1);
    aq_writer_release (&w);
    if (verbose)
        printf ("aq_json: ok\n");
}
