/*  text.c - the text of an outgoing call: header names and values, response
    headers as JSON, bodies as valid UTF-8

    A target may answer anything; a RESULT carries JSON strings, so every
    byte that goes into one passes through wk_text_utf8_string.
*/
#include "text.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Length of the valid UTF-8 sequence at s (n > 0 bytes there): 1..4, or 0
//  when invalid; *partial is set when s ends inside a sequence still valid.
static size_t s_utf8_len (const unsigned char *s, size_t n, bool *partial) {
    *partial = false;
    if (s[0] < 0x80)
        return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; //  range of the second byte
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        need = 1;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 2;
        lo = s[0] == 0xE0 ? 0xA0 : lo; //  no overlongs
        hi = s[0] == 0xED ? 0x9F : hi; //  no surrogates
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 3;
        lo = s[0] == 0xF0 ? 0x90 : lo; //  no overlongs
        hi = s[0] == 0xF4 ? 0x8F : hi; //  nothing above U+10FFFF
    } else
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if (k == n) {
            *partial = true;
            return 0;
        }
        if (s[k] < (k == 1 ? lo : 0x80) || s[k] > (k == 1 ? hi : 0xBF))
            return 0;
    }
    return need + 1;
}

json_t *wk_text_utf8_string (const char *text, size_t size, size_t max, bool *cut) {
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t room = size > max / 3 ? max : size * 3;
    char *out = malloc (room + 1);
    if (!out)
        return NULL;
    const unsigned char *in = (const unsigned char *) text;
    size_t at = 0, used = 0;
    while (at < size) {
        bool partial;
        size_t len = s_utf8_len (in + at, size - at, &partial);
        if (partial && *cut)
            break;
        const char *piece = len ? text + at : replacement;
        size_t piece_size = len ? len : 3;
        if (used + piece_size > max) {
            *cut = true;
            break;
        }
        memcpy (out + used, piece, piece_size);
        used += piece_size;
        at += len ? len : 1;
    }
    json_t *string = json_stringn_nocheck (out, used);
    free (out);
    return string;
}

//  A character allowed in a header name (RFC 9110 token).
static bool s_is_tchar (int c) {
    return isalnum (c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

bool wk_text_is_token (const char *name) {
    for (const char *c = name; *c; c++)
        if (!s_is_tchar ((unsigned char) *c))
            return false;
    return *name != '\0';
}

bool wk_text_is_value (const json_t *value) {
    const char *text = json_string_value (value);
    size_t size = json_string_length (value);
    return text && !memchr (text, '\r', size) && !memchr (text, '\n', size) &&
           !memchr (text, '\0', size);
}

int wk_text_add_header (json_t *headers, const char *line, size_t len) {
    const char *colon = memchr (line, ':', len);
    char name[128];
    size_t name_len = colon ? (size_t) (colon - line) : 0;
    if (name_len == 0 || name_len >= sizeof name)
        return -1;
    for (size_t i = 0; i < name_len; i++) {
        if (!s_is_tchar ((unsigned char) line[i]))
            return -1;
        name[i] = (char) tolower ((unsigned char) line[i]);
    }
    name[name_len] = '\0';
    const char *value = colon + 1, *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    const char *old = json_string_value (json_object_get (headers, name));
    size_t old_len = old ? strlen (old) : 0;
    size_t size = old_len + 2 + (size_t) (end - value);
    char *joined = malloc (size);
    if (!joined)
        return -1;
    size_t at = 0;
    if (old) {
        memcpy (joined, old, old_len);
        memcpy (joined + old_len, ", ", 2);
        at = old_len + 2;
    }
    memcpy (joined + at, value, (size_t) (end - value));
    bool cut = false;
    json_object_set_new (headers, name,
                         wk_text_utf8_string (joined, at + (size_t) (end - value), SIZE_MAX, &cut));
    free (joined);
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

static bool s_streq (const char *a, const char *b) {
    return a && b && strcmp (a, b) == 0;
}

void wk_text_test (bool verbose) {
    //  Invalid UTF-8 becomes U+FFFD; max bounds the result, cut tells
    bool cut = false;
    json_t *text = wk_text_utf8_string ("ok\xff\xfe end \xe2\x82", 11, 100, &cut);
    assert (s_streq (json_string_value (text),
                     "ok\xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD") &&
            !cut);
    json_decref (text);
    text = wk_text_utf8_string ("\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 9, 100, &cut);
    assert (json_string_length (text) == 27 && !cut); //  overlong, surrogate, > U+10FFFF
    json_decref (text);
    text = wk_text_utf8_string ("a\xff", 2, 3, &cut);
    assert (s_streq (json_string_value (text), "a") && cut); //  no room for U+FFFD
    json_decref (text);
    cut = false;
    text = wk_text_utf8_string ("\xe2\x82\xac\xe2\x82\xac", 6, 4, &cut);
    assert (s_streq (json_string_value (text), "\xe2\x82\xac") && cut); //  whole characters
    json_decref (text);
    cut = true; //  the input was cut inside a sequence: dropped, not replaced
    text = wk_text_utf8_string ("a\xe2\x82", 3, 100, &cut);
    assert (s_streq (json_string_value (text), "a") && cut);
    json_decref (text);

    //  Header names are tokens; values carry no CR, LF or NUL
    assert (wk_text_is_token ("X-Custom") && wk_text_is_token ("a!#$%&'*+-.^_`|~9"));
    assert (!wk_text_is_token ("") && !wk_text_is_token ("Bad Name"));
    assert (!wk_text_is_token ("X:") && !wk_text_is_token ("caf\xc3\xa9"));
    json_t *value = json_string ("a value, with \"quotes\"");
    assert (wk_text_is_value (value));
    json_decref (value);
    value = json_string ("a\r\nInjected: 1");
    assert (!wk_text_is_value (value));
    json_decref (value);
    value = json_stringn ("a\0b", 3);
    assert (!wk_text_is_value (value));
    json_decref (value);
    value = json_integer (1);
    assert (!wk_text_is_value (value) && !wk_text_is_value (NULL));
    json_decref (value);

    //  Response headers: lower-case names, trimmed values, repeats joined
    json_t *headers = json_object ();
    const char *lines[] = {"Set-Cookie: a=1", "X-MiXeD:  spaced value \t", "set-cookie:b=2",
                           "Empty:", "X-Bytes: \xff"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        assert (wk_text_add_header (headers, lines[i], strlen (lines[i])) == 0);
    const char *skipped[] = {"HTTP/1.1 200 OK", ": no name", "Bad Name: x", "no colon"};
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++)
        assert (wk_text_add_header (headers, skipped[i], strlen (skipped[i])) == -1);
    if (verbose)
        json_dumpf (headers, stdout, JSON_INDENT (2)), printf ("\n");
    assert (json_object_size (headers) == 4);
    assert (s_streq (json_string_value (json_object_get (headers, "set-cookie")), "a=1, b=2"));
    assert (s_streq (json_string_value (json_object_get (headers, "x-mixed")), "spaced value"));
    assert (s_streq (json_string_value (json_object_get (headers, "empty")), ""));
    assert (s_streq (json_string_value (json_object_get (headers, "x-bytes")), "\xEF\xBF\xBD"));
    assert (wk_text_add_header (headers, "X-Cut: abc", 8) == 0); //  len bounds the line
    assert (s_streq (json_string_value (json_object_get (headers, "x-cut")), "a"));
    json_decref (headers);
}
