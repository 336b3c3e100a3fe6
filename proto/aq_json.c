/*  aq_json.c - JSON text straight from msgpack, without a document tree */
#include "aq_json.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_text (aq_writer_t *out, const char *text) {
    aq_write_raw (out, text, strlen (text));
}

//  A JSON string literal: quotes, and escapes for '"', '\\' and control
//  characters (the short forms where JSON has them, else \u00XX in capitals),
//  as jansson writes it.
static void s_string (aq_writer_t *out, const uint8_t *text, size_t size) {
    aq_write_raw (out, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = text[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        aq_write_raw (out, text + start, i - start);
        char escape[8];
        switch (c) {
        case '"':
            s_text (out, "\\\"");
            break;
        case '\\':
            s_text (out, "\\\\");
            break;
        case '\b':
            s_text (out, "\\b");
            break;
        case '\f':
            s_text (out, "\\f");
            break;
        case '\n':
            s_text (out, "\\n");
            break;
        case '\r':
            s_text (out, "\\r");
            break;
        case '\t':
            s_text (out, "\\t");
            break;
        default:
            snprintf (escape, sizeof escape, "\\u%04X", c);
            s_text (out, escape);
        }
        start = i + 1;
    }
    aq_write_raw (out, text + start, size - start);
    aq_write_raw (out, "\"", 1);
}

//  A real as jansson formats it: 17 significant digits, ".0" when the
//  result would read as an integer, and an exponent without '+' or
//  leading zeros (1e+22 is 1e22, 1e-07 is 1e-7).
static int s_real (aq_writer_t *out, double value) {
    if (!isfinite (value))
        return -1;
    char text[40];
    snprintf (text, sizeof text, "%.17g", value);
    char *exponent = strchr (text, 'e');
    if (!exponent)
        strcat (text, strchr (text, '.') ? "" : ".0");
    else {
        char *digits = exponent + 1 + (exponent[1] == '-'), *from = exponent + 2;
        while (*from == '0')
            from++;
        memmove (digits, from, strlen (from) + 1);
    }
    s_text (out, text);
    return 0;
}

int aq_json_write (const aq_node_t *node, aq_writer_t *out) {
    char number[32];
    switch (node->type) {
    case AQ_NODE_NIL:
        s_text (out, "null");
        return 0;
    case AQ_NODE_BOOL:
        s_text (out, node->b ? "true" : "false");
        return 0;
    case AQ_NODE_INT:
        snprintf (number, sizeof number, "%lld", (long long) node->i);
        s_text (out, number);
        return 0;
    case AQ_NODE_FLOAT:
        return s_real (out, node->f);
    case AQ_NODE_STR:
        s_string (out, node->data, node->count);
        return 0;
    case AQ_NODE_ARRAY:
    case AQ_NODE_MAP: {
        bool map = node->type == AQ_NODE_MAP;
        aq_write_raw (out, map ? "{" : "[", 1);
        aq_iter_t it;
        aq_node_iter (node, &it);
        aq_node_t key, value;
        for (bool first = true; aq_iter_next (&it, &key, &value); first = false) {
            if (!first)
                aq_write_raw (out, ",", 1);
            if (map) {
                if (key.type != AQ_NODE_STR)
                    return -1;
                s_string (out, key.data, key.count);
                aq_write_raw (out, ":", 1);
            }
            if (aq_json_write (&value, out) != 0)
                return -1;
        }
        aq_write_raw (out, map ? "}" : "]", 1);
        return 0;
    }
    default: //  bin, and integers JSON readers would round
        return -1;
    }
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

void aq_json_test (bool verbose) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 6);
    aq_write_kv_str (&w, "s", "a\"b\\c\n\x01/\xc3\xa9");
    aq_write_kv_int (&w, "n", -42);
    aq_write_str (&w, "f");
    aq_write_double (&w, 2.0);
    aq_write_str (&w, "g");
    aq_write_double (&w, 0.1);
    aq_write_str (&w, "list");
    aq_write_array (&w, 3), aq_write_nil (&w), aq_write_bool (&w, true), aq_write_map (&w, 0);
    aq_write_str (&w, "empty");
    aq_write_array (&w, 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    const char *want = "{\"s\":\"a\\\"b\\\\c\\n\\u0001/\xc3\xa9\",\"n\":-42,\"f\":2.0,"
                       "\"g\":0.10000000000000001,\"list\":[null,true,{}],\"empty\":[]}";
    if (!text || strcmp (text, want) != 0) {
        fprintf (stderr, "aq_json: %s\n want %s\n", text ? text : "(null)", want);
        assert (false);
    }
    free (text);
    //  jansson's forms: control characters in capitals, exponents trimmed
    aq_writer_reset (&w);
    aq_write_array (&w, 6);
    aq_write_str (&w, "\x0b\x1f\x7f");
    aq_write_double (&w, 1e22), aq_write_double (&w, 1e300), aq_write_double (&w, -2.5e-7);
    aq_write_double (&w, 1e-300), aq_write_double (&w, 123456789.0);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &node) == 0);
    text = aq_json_dumps (&node);
    want = "[\"\\u000B\\u001F\x7f\",1e22,1.0000000000000001e300,-2.4999999999999999e-7,"
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
    aq_writer_release (&w);
    if (verbose)
        printf ("aq_json: ok\n");
}
