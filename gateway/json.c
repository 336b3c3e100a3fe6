/*  json.c - strict parsing of REST request bodies (the gateway's jansson parser)

    The only gateway file that parses JSON. jansson does the syntax (with
    JSON_REJECT_DUPLICATES) and reports where it stopped; a walk over the
    parsed document then enforces the depth and size limits, which jansson
    has no runtime options for.
*/
#include "json.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_not_object[] = "Request body must be a JSON object";

static bool s_blank (const char *text, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    return true;
}

//  Checks the limits over value at depth (1 for the top-level container).
//  Returns NULL, or the client message of the first limit exceeded.
static const char *s_check (const json_t *value, int depth) {
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        if (depth > GW_JSON_MAX_DEPTH)
            return GW_JSON_TOO_DEEP;
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            if (strlen (key) > GW_JSON_MAX_KEY)
                return "JSON object keys must be at most 256 bytes";
            const char *error = s_check (member, depth + 1);
            if (error)
                return error;
        }
        return NULL;
    }
    case JSON_ARRAY: {
        if (depth > GW_JSON_MAX_DEPTH)
            return GW_JSON_TOO_DEEP;
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item) {
            const char *error = s_check (item, depth + 1);
            if (error)
                return error;
        }
        return NULL;
    }
    case JSON_STRING:
        if (json_string_length (value) > GW_JSON_MAX_STRING)
            return "JSON strings must be at most 262144 bytes";
        return NULL;
    default:
        return NULL;
    }
}

json_t *gw_json_parse_object (const char *text, size_t size, char *error, size_t error_size) {
    assert (error && error_size >= GW_JSON_ERROR_MAX);
    if (!text || s_blank (text, size)) {
        snprintf (error, error_size, "%s", s_not_object);
        return NULL;
    }
    json_error_t where;
    json_t *value = json_loadb (text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &where);
    if (!value) {
        //  jansson counts from 1 and points at the end of the bad token; an
        //  undecodable first byte comes back as column 0.
        snprintf (error, error_size, "Invalid JSON at line %d, column %d",
                  where.line > 0 ? where.line : 1, where.column > 0 ? where.column : 1);
        return NULL;
    }
    if (!json_is_object (value)) {
        json_decref (value);
        snprintf (error, error_size, "%s", s_not_object);
        return NULL;
    }
    const char *limit = s_check (value, 1);
    if (limit) {
        json_decref (value);
        snprintf (error, error_size, "%s", limit);
        return NULL;
    }
    return value;
}

//  --------------------------------------------------------------------------
//  Dumping: jansson's compact text, written straight into one buffer.
//  json_dumps costs the gateway more than the rest of a reply (it keeps a
//  hash of the containers on its path, keyed by "%p" text, to find loops);
//  this writes the same bytes (gw_json_test compares the two).

#define S_DUMP_DEPTH 2048 //  deeper is refused, as jansson refuses a loop

typedef struct {
    char *data;  //  malloc'd, NULL once out of memory
    size_t size; //  bytes written
    size_t cap;  //  bytes allocated
} s_text_t;

static int s_put (s_text_t *text, const char *bytes, size_t size) {
    if (text->size + size + 1 > text->cap) {
        size_t cap = text->cap;
        while (text->size + size + 1 > cap)
            cap *= 2;
        char *data = realloc (text->data, cap);
        if (!data)
            return -1;
        text->data = data;
        text->cap = cap;
    }
    memcpy (text->data + text->size, bytes, size);
    text->size += size;
    return 0;
}

//  Length of the valid UTF-8 sequence at p (at most left bytes), 0 if
//  invalid: jansson's rules (no overlong forms, surrogates or > U+10FFFF).
static size_t s_utf8_length (const unsigned char *p, size_t left) {
    size_t length = p[0] < 0x80                    ? 1
                    : p[0] >= 0xC2 && p[0] <= 0xDF ? 2
                    : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
                    : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4
                                                   : 0;
    if (length == 0 || length > left)
        return 0;
    uint32_t code = length == 1 ? p[0] : p[0] & (0x7F >> length);
    for (size_t i = 1; i < length; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (p[i] & 0x3F);
    }
    if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) || (length == 3 && code < 0x800) ||
        (length == 4 && code < 0x10000))
        return 0;
    return length;
}

static int s_put_string (s_text_t *text, const char *string, size_t size) {
    const unsigned char *p = (const unsigned char *) string, *end = p + size;
    if (s_put (text, "\"", 1) != 0)
        return -1;
    while (p < end) {
        const unsigned char *run = p; //  bytes copied as they are
        size_t length;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' &&
               (length = s_utf8_length (p, (size_t) (end - p))) != 0)
            p += length;
        if (p > run && s_put (text, (const char *) run, (size_t) (p - run)) != 0)
            return -1;
        if (p == end)
            break;
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            return -1; //  invalid UTF-8
        char escape[8];
        const char *seq = *p == '"'    ? "\\\""
                          : *p == '\\' ? "\\\\"
                          : *p == '\b' ? "\\b"
                          : *p == '\f' ? "\\f"
                          : *p == '\n' ? "\\n"
                          : *p == '\r' ? "\\r"
                          : *p == '\t' ? "\\t"
                                       : NULL;
        if (!seq) {
            snprintf (escape, sizeof escape, "\\u%04X", *p);
            seq = escape;
        }
        if (s_put (text, seq, strlen (seq)) != 0)
            return -1;
        p++;
    }
    return s_put (text, "\"", 1);
}

static int s_put_value (s_text_t *text, const json_t *value, int depth) {
    char number[64];
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        if (depth > S_DUMP_DEPTH || s_put (text, "{", 1) != 0)
            return -1;
        bool first = true;
        const char *key;
        size_t key_size;
        json_t *member;
        json_object_keylen_foreach ((json_t *) value, key, key_size, member) {
            if ((!first && s_put (text, ",", 1) != 0) || s_put_string (text, key, key_size) != 0 ||
                s_put (text, ":", 1) != 0 || s_put_value (text, member, depth + 1) != 0)
                return -1;
            first = false;
        }
        return s_put (text, "}", 1);
    }
    case JSON_ARRAY: {
        if (depth > S_DUMP_DEPTH || s_put (text, "[", 1) != 0)
            return -1;
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item) {
            if ((index > 0 && s_put (text, ",", 1) != 0) ||
                s_put_value (text, item, depth + 1) != 0)
                return -1;
        }
        return s_put (text, "]", 1);
    }
    case JSON_STRING:
        return s_put_string (text, json_string_value (value), json_string_length (value));
    case JSON_INTEGER: {
        int n =
            snprintf (number, sizeof number, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
        return s_put (text, number, (size_t) n);
    }
    case JSON_REAL: { //  rare: jansson's own formatting, to the byte
        char *real = json_dumps (value, JSON_ENCODE_ANY | JSON_COMPACT);
        int rc = real ? s_put (text, real, strlen (real)) : -1;
        free (real);
        return rc;
    }
    case JSON_TRUE:
        return s_put (text, "true", 4);
    case JSON_FALSE:
        return s_put (text, "false", 5);
    case JSON_NULL:
        return s_put (text, "null", 4);
    }
    return -1;
}

char *gw_json_dump (const json_t *value, size_t *size) {
    s_text_t text = {.data = malloc (512), .cap = 512};
    if (!text.data || !value || s_put_value (&text, value, 1) != 0) {
        free (text.data);
        return NULL;
    }
    text.data[text.size] = 0;
    if (size)
        *size = text.size;
    return text.data;
}

//  --------------------------------------------------------------------------
//  Selftest

static void s_expect_error (const char *text, const char *message) {
    char error[GW_JSON_ERROR_MAX];
    json_t *value = gw_json_parse_object (text, text ? strlen (text) : 0, error, sizeof error);
    if (value || strcmp (error, message) != 0) {
        fprintf (stderr, "gw_json: '%s' gave '%s', expected '%s'\n", text, value ? "ok" : error,
                 message);
        assert (false);
    }
}

static char *s_nested (int depth) {
    char *text = malloc ((size_t) depth * 7 + 16);
    assert (text);
    char *p = text;
    for (int i = 0; i < depth; i++)
        p += sprintf (p, "{\"a\":");
    p += sprintf (p, "1");
    for (int i = 0; i < depth; i++)
        *p++ = '}';
    *p = 0;
    return text;
}

void gw_json_test (bool verbose) {
    if (verbose)
        printf (" * gw_json: ");

    //  A good body, with its member order kept
    char error[GW_JSON_ERROR_MAX];
    const char *good = "{\"targetUrl\": \"https://api.example.com/webhook\", \"maxRetries\": 3,"
                       " \"headers\": {\"Authorization\": \"Bearer x\"}, \"body\": \"\\u00e9\"}";
    json_t *task = gw_json_parse_object (good, strlen (good), error, sizeof error);
    assert (task);
    assert (json_integer_value (json_object_get (task, "maxRetries")) == 3);
    assert (strcmp (json_string_value (json_object_get (task, "body")), "\xc3\xa9") == 0);
    size_t size = 0;
    char *text = gw_json_dump (task, &size);
    assert (text && size == strlen (text));
    assert (strncmp (text, "{\"targetUrl\":\"https://api.example.com/webhook\",\"maxRetries\":3,",
                     62) == 0);
    free (text);
    json_decref (task);

    //  Not a size-terminated string: only size bytes are read
    task = gw_json_parse_object ("{\"a\":1}garbage", 7, error, sizeof error);
    assert (task);
    json_decref (task);

    //  Empty, blank and non-object bodies
    s_expect_error (NULL, "Request body must be a JSON object");
    s_expect_error ("", "Request body must be a JSON object");
    s_expect_error (" \r\n\t", "Request body must be a JSON object");
    s_expect_error ("[1, 2]", "Request body must be a JSON object");
    s_expect_error ("\"text\"", "Request body must be a JSON object");
    s_expect_error ("42", "Request body must be a JSON object");
    s_expect_error ("null", "Request body must be a JSON object");

    //  Malformed JSON is located (line, column of the token's end)
    s_expect_error ("{\"targetUrl\": \"x\", bad}", "Invalid JSON at line 1, column 22");
    s_expect_error ("{\"a\": 1,}", "Invalid JSON at line 1, column 9");
    s_expect_error ("{\n  \"a\": tru\n}", "Invalid JSON at line 2, column 10");
    s_expect_error ("{\"a\":", "Invalid JSON at line 1, column 5");
    s_expect_error ("{\"a\":1} x", "Invalid JSON at line 1, column 9");
    s_expect_error ("{\"a\":1,\"a\":2}", "Invalid JSON at line 1, column 10");
    s_expect_error ("{\"a\":\"\\u0000\"}", "Invalid JSON at line 1, column 13");
    s_expect_error ("\xff", "Invalid JSON at line 1, column 1");
    s_expect_error ("{\"a\":\"\xc3\x28\"}", "Invalid JSON at line 1, column 6");
    s_expect_error ("nul", "Invalid JSON at line 1, column 3");

    //  Nesting: 32 levels pass, 33 do not; arrays count as levels too
    char *deep = s_nested (GW_JSON_MAX_DEPTH);
    task = gw_json_parse_object (deep, strlen (deep), error, sizeof error);
    assert (task);
    json_decref (task);
    free (deep);
    deep = s_nested (GW_JSON_MAX_DEPTH + 1);
    s_expect_error (deep, "JSON nesting must be at most 32 levels deep");
    free (deep);
    s_expect_error ("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                    "JSON nesting must be at most 32 levels deep");

    //  String and key sizes
    size_t big = GW_JSON_MAX_STRING + 1;
    char *long_text = malloc (big + 16);
    assert (long_text);
    memcpy (long_text, "{\"a\":\"", 6);
    memset (long_text + 6, 'x', big);
    memcpy (long_text + 6 + big, "\"}", 3);
    s_expect_error (long_text, "JSON strings must be at most 262144 bytes");
    memcpy (long_text + 6 + big - 1, "\"}", 3); //  exactly the limit
    task = gw_json_parse_object (long_text, strlen (long_text), error, sizeof error);
    assert (task);
    json_decref (task);
    memcpy (long_text, "{\"", 2);
    memset (long_text + 2, 'k', GW_JSON_MAX_KEY + 1);
    memcpy (long_text + 2 + GW_JSON_MAX_KEY + 1, "\":1}", 5);
    s_expect_error (long_text, "JSON object keys must be at most 256 bytes");
    free (long_text);

    //  Dumping scalars works too (JSON_ENCODE_ANY)
    json_t *scalar = json_string ("x");
    text = gw_json_dump (scalar, NULL);
    assert (text && strcmp (text, "\"x\"") == 0);
    free (text);
    json_decref (scalar);

    //  The dump is jansson's compact text, byte for byte
    json_t *all = json_pack (
        "{s:s, s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:b, s:b, s:n, s:[], s:{}, s:[s, [i, {s:s}]]}",
        "text",
        "tab\t nl\n cr\r bs\b ff\f q\" back\\ slash/ del\x7f \x01\x1f \xc3\xa9 "
        "\xe2\x82\xac \xf0\x9f\x98\x80",
        "max", (json_int_t) INT64_MAX, "min", (json_int_t) INT64_MIN, "zero", 0, "real", 1.5,
        "whole", 3.0, "big", 1e300, "small", -2.5e-7, "yes", 1, "no", 0, "none", "empty", "nothing",
        "nested", "a", 7, "\xc3\xa9\"k\n", "v");
    assert (all);
    json_object_set_new (all, "nul", json_stringn ("a\0b", 3));
    json_object_setn_new (all, "key\0nul", 7, json_true ());
    size = 0;
    text = gw_json_dump (all, &size);
    char *theirs = json_dumps (all, JSON_COMPACT | JSON_ENCODE_ANY);
    assert (text && theirs && strcmp (text, theirs) == 0 && size == strlen (theirs));
    free (text);
    free (theirs);
    json_decref (all);
    //  text jansson cannot dump (invalid UTF-8) is refused the same way
    json_t *bad = json_pack ("{s:o}", "bad", json_string_nocheck ("\xc3\x28"));
    assert (bad && gw_json_dump (bad, NULL) == NULL);
    assert (json_dumps (bad, JSON_COMPACT | JSON_ENCODE_ANY) == NULL);
    json_decref (bad);

    if (verbose)
        printf ("OK\n");
}
