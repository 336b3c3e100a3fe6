/*  rig_jansson.c - test rig: the gateway's JSON as jansson made it, to compare with

    The code of gateway/json.c before it dropped jansson, unchanged (the
    limits walk, the error text, json_loadb's flags), and bodies to compare
    the two on.
*/
#include "rig_jansson.h"
#include "aq_codec.h"

#include <assert.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH  32
#define S_MAX_STRING 262144
#define S_MAX_KEY    256
#define S_TOO_DEEP   "JSON nesting must be at most 32 levels deep"

static const char s_not_object[] = "Request body must be a JSON object";

static bool s_blank (const char *text, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    return true;
}

static const char *s_check (const json_t *value, int depth) {
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        if (depth > S_MAX_DEPTH)
            return S_TOO_DEEP;
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            if (strlen (key) > S_MAX_KEY)
                return "JSON object keys must be at most 256 bytes";
            const char *error = s_check (member, depth + 1);
            if (error)
                return error;
        }
        return NULL;
    }
    case JSON_ARRAY: {
        if (depth > S_MAX_DEPTH)
            return S_TOO_DEEP;
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
        if (json_string_length (value) > S_MAX_STRING)
            return "JSON strings must be at most 262144 bytes";
        return NULL;
    default:
        return NULL;
    }
}

int rig_jansson_parse (const char *text, size_t size, uint8_t **data, size_t *data_size,
                       char *error, size_t error_size) {
    *data = NULL;
    if (!text || s_blank (text, size)) {
        snprintf (error, error_size, "%s", s_not_object);
        return -1;
    }
    json_error_t where;
    json_t *value = json_loadb (text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &where);
    if (!value) {
        snprintf (error, error_size, "Invalid JSON at line %d, column %d",
                  where.line > 0 ? where.line : 1, where.column > 0 ? where.column : 1);
        return -1;
    }
    const char *limit = json_is_object (value) ? s_check (value, 1) : s_not_object;
    if (limit) {
        json_decref (value);
        snprintf (error, error_size, "%s", limit);
        return -1;
    }
    *data = aq_codec_pack (value, data_size);
    json_decref (value);
    assert (*data);
    return 0;
}

char *rig_jansson_dump (const uint8_t *data, size_t size) {
    json_t *value = aq_codec_unpack (data, size);
    if (!value)
        return NULL;
    char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref (value);
    return text;
}

uint8_t *rig_jansson_frame (int cmd, const char *text, size_t *size) {
    json_t *msg = json_loads (text, JSON_REJECT_DUPLICATES, NULL);
    assert (msg && json_is_object (msg));
    uint8_t *frame = aq_codec_encode (cmd, msg, size);
    json_decref (msg);
    assert (frame);
    return frame;
}

//  --------------------------------------------------------------------------
//  Bodies to compare on

#define S_BODY(text)                                                                               \
    { text, sizeof text - 1 } //  a literal, NULs and all

static const struct {
    const char *text; //  the body
    size_t size;      //  its length
} s_corpus[] = {
    S_BODY ("{}"),
    S_BODY (" {} "),
    S_BODY ("{\"a\":{}}"),
    S_BODY ("{\"a\":[]}"),
    S_BODY ("{\"a\":[1,[2,[3]]]}"),
    S_BODY ("{\"\":1}"),
    S_BODY ("{\"a\":1,\"\\u0061\":2}"),
    S_BODY ("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"),
    S_BODY ("{\"a\":{\"b\":1},\"a\":2}"),
    //  surrogates: pairs, lone halves, a half then anything else
    S_BODY ("{\"a\":\"\\ud83d\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\u0041\"}"),
    S_BODY ("{\"a\":\"\\ud83dx\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\n\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\ud83d\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\ude00\\ud83d\"}"),
    S_BODY ("{\"a\":\"\\ud83d\", \"\\n\": 1}"),
    S_BODY ("{\"a\":\"\\ud83d\xc3\xa9\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ud83dx\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\n\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\ud83d\\ude00\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\t\"}"),
    S_BODY ("{\"a\":\"\\ud83d\\ude00\\ude00\"}"),
    S_BODY ("{\"a\":\"\\uDBFF\\uDFFF\"}"),
    S_BODY ("{\"a\":\"\\uD800\\uDC00\"}"),
    S_BODY ("{\"\\ud83d\\ude00\":\"\\u20ac\"}"),
    S_BODY ("{\"a\":\"\\u00E9\\u00e9\"}"),
    //  escapes
    S_BODY ("{\"a\":\"\\u12\"}"),
    S_BODY ("{\"a\":\"\\u12G4\"}"),
    S_BODY ("{\"a\":\"\\uZZZZ\"}"),
    S_BODY ("{\"a\":\"\\x\"}"),
    S_BODY ("{\"a\":\"\\u00\xc3\xa9\"}"),
    S_BODY ("{\"a\":\"\\u00\xc3\"}"),
    S_BODY ("{\"a\":\"\\\xc3\xa9\"}"),
    S_BODY ("{\"a\":\"\\\xff\"}"),
    S_BODY ("{\"a\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"}"),
    S_BODY ("{\"a\":\"tab\there\"}"),
    S_BODY ("{\"a\":\"\x1f\"}"),
    S_BODY ("{\"a\":\"\x01\"}"),
    S_BODY ("{\"a\":\"nl\nhere\"}"),
    S_BODY ("{\"\\u0000\":1}"),
    S_BODY ("{\"a\\u0000b\":1}"),
    S_BODY ("{\"a\":\"x\\u0000\"}"),
    S_BODY ("{\"a\":[\"\\u0000\"]}"),
    //  UTF-8, good and bad, in strings and out of them
    S_BODY ("{\"a\":\"\x7f\"}"),
    S_BODY ("{\"a\":\"\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}"),
    S_BODY ("{\"a\":\"\xc0\x80\"}"),
    S_BODY ("{\"a\":\"\xe0\x80\x80\"}"),
    S_BODY ("{\"a\":\"\xed\xa0\x80\"}"),
    S_BODY ("{\"a\":\"\xf4\x90\x80\x80\"}"),
    S_BODY ("{\"a\":\"\xf5\x80\x80\x80\"}"),
    S_BODY ("{\"a\":\"\x80\"}"),
    S_BODY ("{\"a\":\"\xe2\x82"),
    S_BODY ("{\"a\":1\xff}"),
    S_BODY ("{\"a\":true\xff}"),
    S_BODY ("{\"a\":\"x\"\xff}"),
    S_BODY ("{\xff:1}"),
    S_BODY ("{ \xc3\xa9:1}"),
    S_BODY ("{\"a\":\xe2\x82\xac}"),
    S_BODY ("\xef\xbb\xbf{}"),
    S_BODY ("{\"a\":\"\xc3\xa9\xc3\xa9\xc3\xa9\" x}"),
    //  numbers
    S_BODY ("{\"a\":0}"),
    S_BODY ("{\"a\":-0}"),
    S_BODY ("{\"a\":01}"),
    S_BODY ("{\"a\":-01}"),
    S_BODY ("{\"a\":1.}"),
    S_BODY ("{\"a\":1.e5}"),
    S_BODY ("{\"a\":.5}"),
    S_BODY ("{\"a\":-}"),
    S_BODY ("{\"a\":-a}"),
    S_BODY ("{\"a\":1e}"),
    S_BODY ("{\"a\":1e+}"),
    S_BODY ("{\"a\":1E-2}"),
    S_BODY ("{\"a\":-1e400}"),
    S_BODY ("{\"a\":1e-400}"),
    S_BODY ("{\"a\":9223372036854775807}"),
    S_BODY ("{\"a\":-9223372036854775808}"),
    S_BODY ("{\"a\":-9223372036854775809}"),
    S_BODY ("{\"a\":18446744073709551616}"),
    S_BODY ("{\"a\":1.7976931348623157e308}"),
    S_BODY ("{\"a\":1.7976931348623159e308}"),
    S_BODY ("{\"a\":4.9e-324}"),
    S_BODY ("{\"a\":2.4703282292062327e-324}"),
    S_BODY ("{\"a\":0.1}"),
    S_BODY ("{\"a\":123456789012345678901234567890}"),
    S_BODY ("{\"a\":1e00001}"),
    S_BODY ("{\"a\":1.000000000000000000000000000000000000000000000000000000000000000000001}"),
    S_BODY ("{\"a\":-0.0}"),
    S_BODY ("{\"a\":+1}"),
    S_BODY ("{\"a\":0x10}"),
    S_BODY ("{\"a\":1_0}"),
    S_BODY ("{\"a\":1 2}"),
    S_BODY ("{\"a\":[127,128,255,256,65535,65536,-32,-33,-128,-129]}"),
    S_BODY ("{\"a\":[-32768,-32769,4294967295,4294967296,-2147483648,-2147483649]}"),
    //  words
    S_BODY ("{\"a\":tru}"),
    S_BODY ("{\"a\":True}"),
    S_BODY ("{\"a\":nulll}"),
    S_BODY ("{\"a\":truefalse}"),
    S_BODY ("{\"a\":true1}"),
    S_BODY ("{\"a\":nan}"),
    S_BODY ("{\"a\":Infinity}"),
    //  structure
    S_BODY ("{\"a\":1,}"),
    S_BODY ("{\"a\" 1}"),
    S_BODY ("{\"a\":}"),
    S_BODY ("{,}"),
    S_BODY ("{\"a\":1 \"b\":2}"),
    S_BODY ("{\"a\":[1,]}"),
    S_BODY ("{\"a\":[,1]}"),
    S_BODY ("{\"a\":[1 2]}"),
    S_BODY ("{\"a\":[}"),
    S_BODY ("{\"a\":[\n"),
    S_BODY ("{\"a\":{"),
    S_BODY ("{\"a\""),
    S_BODY ("{\"a"),
    S_BODY ("{\"a\\"),
    S_BODY ("{\"a\\u00"),
    S_BODY ("{"),
    S_BODY ("}"),
    S_BODY ("{}}"),
    S_BODY ("{}{}"),
    S_BODY ("{}\n\n"),
    S_BODY ("{} \n x"),
    S_BODY ("{'a':1}"),
    S_BODY ("{a:1}"),
    S_BODY ("{\"a\":1}\r\n"),
    S_BODY ("\r\n{\r\n\"a\"\r\n:\r\nx}"),
    S_BODY ("{\n\n\n\"a\":\n   @}"),
    S_BODY ("{\"a\":[1,2,3],\"b\":{\"c\":[{\"d\":null}]}}"),
    S_BODY ("[]"),
    S_BODY ("[1,2"),
    S_BODY ("\"x"),
    S_BODY ("tru"),
    S_BODY ("-"),
    S_BODY ("1e5"),
    //  NUL bytes: jansson skips one right after a number or a word
    S_BODY ("{\"a\":1\0}"),
    S_BODY ("{\"a\":true\0}"),
    S_BODY ("{\"a\":1\0\0}"),
    S_BODY ("{\"a\":1.5\0 }"),
    S_BODY ("{\"a\":nul\0l}"),
    S_BODY ("{\"a\":\"x\"\0}"),
    S_BODY ("{\0}"),
    S_BODY ("{\"a\":1}\0"),
    S_BODY ("{\"a\":-\0}"),
    S_BODY ("{\"a\":[1\0,2]}"),
    S_BODY ("{\"a\":\"\\\0\"}"),
    S_BODY ("{\"a\":\"\\u0\0\"}"),
    S_BODY ("{\"a\":\"x\0\"}"),
    S_BODY ("{\"a\":1e\0}"),
    S_BODY ("{\"a\":0\0}"),
    S_BODY ("{\"a\":null\0\n\0}"),
    S_BODY ("\0"),
    S_BODY ("{\"a\":1\0\n x}"),
    S_BODY ("{\"a\":\n1\0\n\0}"),
};

const char *rig_jansson_corpus (size_t index, size_t *size) {
    if (index >= sizeof s_corpus / sizeof *s_corpus)
        return NULL;
    *size = s_corpus[index].size;
    return s_corpus[index].text;
}

static uint64_t s_random (uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static size_t s_pick (uint64_t *state, size_t n) {
    return (size_t) (s_random (state) % n);
}

#define S_COUNT(array) (sizeof array / sizeof *array)

static void s_put (aq_writer_t *out, const char *text) {
    aq_write_raw (out, text, strlen (text));
}

//  A random JSON value at depth (containers only up to depth 6).
static void s_value (aq_writer_t *out, uint64_t *state, int depth) {
    static const char *spaces[] = {"", "", "", " ", "\n", "\r\n\t", "  "};
    static const char *strings[] = {"",
                                    "a",
                                    "targetUrl",
                                    "\\u0061",
                                    "\\u00e9",
                                    "\xc3\xa9",
                                    "\\n\\t\\/",
                                    "\\\"",
                                    "\\\\",
                                    "\\ud83d\\ude00",
                                    "\\ud83d",
                                    "\\ude00",
                                    "\\u20AC",
                                    "\xe2\x82\xac",
                                    "\xf0\x9f\x98\x80",
                                    "\\u0000",
                                    "\x7f",
                                    "\\b\\f\\r",
                                    "x y",
                                    "\\uD834\\uDD1E",
                                    "\\ud83d\\u0041",
                                    "\t",
                                    "\\u001f"};
    static const char *numbers[] = {"0",
                                    "-0",
                                    "1",
                                    "-1",
                                    "127",
                                    "128",
                                    "-32",
                                    "-33",
                                    "255",
                                    "256",
                                    "65535",
                                    "65536",
                                    "-129",
                                    "-32769",
                                    "4294967296",
                                    "9223372036854775807",
                                    "9223372036854775808",
                                    "-9223372036854775808",
                                    "-9223372036854775809",
                                    "0.5",
                                    "-0.0",
                                    "1e5",
                                    "1E+2",
                                    "1e-2",
                                    "2.5e-7",
                                    "1e22",
                                    "1e400",
                                    "-1e400",
                                    "1e-400",
                                    "1.7976931348623157e308",
                                    "4.9e-324",
                                    "0.1",
                                    "123456789.0",
                                    "3.141592653589793238",
                                    "1.0",
                                    "10000000000000000000000"};
    static const char *words[] = {"true", "false", "null"};
    s_put (out, spaces[s_pick (state, S_COUNT (spaces))]);
    size_t kind = depth > 6 ? 2 + s_pick (state, 3) : s_pick (state, 5);
    if (kind <= 1) { //  an object or an array
        bool map = kind == 0;
        s_put (out, map ? "{" : "[");
        for (size_t i = 0, count = s_pick (state, 5); i < count; i++) {
            if (i)
                s_put (out, ",");
            if (map) { //  few keys, so some repeat
                s_put (out, "\"");
                s_put (out, strings[s_pick (state, 6)]);
                s_put (out, "\":");
            }
            s_value (out, state, depth + 1);
        }
        s_put (out, map ? "}" : "]");
    } else if (kind == 2) {
        s_put (out, "\"");
        for (size_t i = s_pick (state, 4); i > 0; i--)
            s_put (out, strings[s_pick (state, S_COUNT (strings))]);
        s_put (out, "\"");
    } else
        s_put (out, kind == 3 ? numbers[s_pick (state, S_COUNT (numbers))]
                              : words[s_pick (state, S_COUNT (words))]);
    s_put (out, spaces[s_pick (state, S_COUNT (spaces))]);
}

void rig_jansson_random (uint64_t *state, aq_writer_t *out) {
    static const uint8_t bytes[] = {'"',  '\\', '{',  '}',  '[',  ']', ',', ':',  0,    '\n',
                                    ' ',  'e',  '.',  '-',  '0',  'u', 't', 0x80, 0xC3, 0xE2,
                                    0xED, 0xF0, 0xF4, 0xFF, 0x01, 'a', '/', 'E',  '+',  '\r'};
    aq_writer_reset (out);
    s_put (out, "{");
    for (size_t i = s_pick (state, 4); i > 0; i--) {
        char key[8];
        snprintf (key, sizeof key, "\"k%c\":", (char) ('a' + s_pick (state, 8)));
        s_put (out, key);
        s_value (out, state, 1);
        if (i > 1)
            s_put (out, ",");
    }
    s_put (out, "}");
    if (s_pick (state, 2))
        return;
    aq_write_raw (out, "", 1); //  room for one insert
    size_t size = out->size - 1;
    uint8_t *text = out->data;
    for (size_t edits = 1 + s_pick (state, 3); edits > 0; edits--) {
        size_t at = s_pick (state, size + 1), what = s_pick (state, 4);
        uint8_t byte = bytes[s_pick (state, S_COUNT (bytes))];
        if (what == 0 && at < size) { //  delete
            memmove (text + at, text + at + 1, size - at - 1);
            size--;
        } else if (what == 1) { //  insert
            aq_write_raw (out, "", 1);
            text = out->data;
            memmove (text + at + 1, text + at, size - at);
            text[at] = byte;
            size++;
        } else if (what == 2 && at < size) //  replace
            text[at] = byte;
        else //  cut short
            size = at;
    }
    out->size = size;
}
