/*  text.c - the text of an outgoing call: header names and values, response
    headers, bodies as valid UTF-8

    A target may answer anything; a RESULT carries msgpack strings (the
    broker and the gateway take them for UTF-8), so every byte that goes
    into one passes through wk_text_utf8.
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

size_t wk_text_utf8_room (size_t size, size_t max) {
    return size > max / 3 ? max : size * 3;
}

size_t wk_text_utf8 (const char *text, size_t size, size_t max, bool *cut, char *out) {
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *in = (const unsigned char *) text;
    size_t at = 0, used = 0;
    while (at < size) {
        if (in[at] < 0x80 && used < max) { //  ASCII, the common case
            out[used++] = text[at++];
            continue;
        }
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
    return used;
}

//  A character allowed in a header name (RFC 9110 token).
static bool s_is_tchar (int c) {
    return isalnum (c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

bool wk_text_is_token (const char *name, size_t size) {
    for (size_t i = 0; i < size; i++)
        if (!s_is_tchar ((unsigned char) name[i]))
            return false;
    return size > 0;
}

bool wk_text_is_value (const char *value, size_t size) {
    return !memchr (value, '\r', size) && !memchr (value, '\n', size) &&
           !memchr (value, '\0', size);
}

//  --------------------------------------------------------------------------
//  Response headers

#define S_ENTRY_HEAD (2 * sizeof (uint32_t)) //  an entry's two sizes

void wk_text_headers_clear (wk_text_headers_t *self) {
    self->size = 0;
    self->count = 0;
}

void wk_text_headers_release (wk_text_headers_t *self) {
    free (self->data);
    *self = (wk_text_headers_t){0};
}

//  Room for more bytes after the used ones; 0 or -1.
static int s_reserve (wk_text_headers_t *self, size_t more) {
    if (self->size + more <= self->room)
        return 0;
    size_t room = self->room ? self->room : 512;
    while (room < self->size + more)
        room *= 2;
    char *data = realloc (self->data, room);
    if (!data)
        return -1;
    self->data = data;
    self->room = room;
    return 0;
}

bool wk_text_header_next (const wk_text_headers_t *self, size_t *at, const char **name,
                          size_t *name_size, const char **value, size_t *value_size) {
    if (*at >= self->size)
        return false;
    uint32_t sizes[2];
    memcpy (sizes, self->data + *at, sizeof sizes);
    *name = self->data + *at + S_ENTRY_HEAD;
    *name_size = sizes[0];
    *value = *name + sizes[0];
    *value_size = sizes[1];
    *at += S_ENTRY_HEAD + sizes[0] + sizes[1];
    return true;
}

//  The offset of the entry named name (len bytes), or -1.
static long s_find (const wk_text_headers_t *self, const char *name, size_t len) {
    size_t at = 0, entry = 0, name_size, value_size;
    const char *got, *value;
    while (entry = at, wk_text_header_next (self, &at, &got, &name_size, &value, &value_size))
        if (name_size == len && memcmp (got, name, len) == 0)
            return (long) entry;
    return -1;
}

const char *wk_text_header (const wk_text_headers_t *self, const char *name, size_t *size) {
    long entry = s_find (self, name, strlen (name));
    if (entry < 0)
        return NULL;
    size_t at = (size_t) entry, name_size;
    const char *got, *value;
    wk_text_header_next (self, &at, &got, &name_size, &value, size);
    return value;
}

int wk_text_add_header (wk_text_headers_t *self, const char *line, size_t len) {
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
    const char *value = colon + 1, *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t raw = (size_t) (end - value);
    //  Room for a new entry, or for a repeat's ", " and value as well as
    //  the value converted past them
    if (raw > UINT32_MAX / 8 || s_reserve (self, S_ENTRY_HEAD + name_len + 2 + 6 * raw) != 0)
        return -1;
    bool cut = false;
    long entry = s_find (self, name, name_len);
    uint32_t sizes[2] = {(uint32_t) name_len, 0};
    if (entry < 0) { //  a new entry at the end
        char *at = self->data + self->size;
        memcpy (at + S_ENTRY_HEAD, name, name_len);
        sizes[1] =
            (uint32_t) wk_text_utf8 (value, raw, SIZE_MAX, &cut, at + S_ENTRY_HEAD + name_len);
        memcpy (at, sizes, sizeof sizes);
        self->size += S_ENTRY_HEAD + name_len + sizes[1];
        self->count++;
        return 0;
    }
    //  A repeat: ", " and the value join the entry's value where it is
    char *at = self->data + entry;
    memcpy (sizes, at, sizeof sizes);
    char *tail = at + S_ENTRY_HEAD + sizes[0] + sizes[1];
    size_t tail_size = self->size - (size_t) (tail - self->data);
    char *piece = self->data + self->size + 2 + 3 * raw; //  past the tail once moved
    size_t piece_size = wk_text_utf8 (value, raw, SIZE_MAX, &cut, piece);
    memmove (tail + 2 + piece_size, tail, tail_size);
    memcpy (tail, ", ", 2);
    memcpy (tail + 2, piece, piece_size);
    sizes[1] += (uint32_t) (2 + piece_size);
    memcpy (at, sizes, sizeof sizes);
    self->size += 2 + piece_size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

//  text made valid UTF-8 as a string (in a static buffer) and cut's outcome.
static const char *s_utf8 (const char *text, size_t size, size_t max, bool *cut, size_t *used) {
    static char out[256];
    assert (wk_text_utf8_room (size, max) < sizeof out);
    *used = wk_text_utf8 (text, size, max, cut, out);
    assert (*used <= wk_text_utf8_room (size, max));
    out[*used] = '\0';
    return out;
}

//  True when headers has name with value (size bytes).
static bool s_has (const wk_text_headers_t *headers, const char *name, const char *value) {
    size_t size;
    const char *got = wk_text_header (headers, name, &size);
    return got && size == strlen (value) && memcmp (got, value, size) == 0;
}

void wk_text_test (bool verbose) {
    //  Invalid UTF-8 becomes U+FFFD; max bounds the result, cut tells
    bool cut = false;
    size_t used;
    const char *text = s_utf8 ("ok\xff\xfe end \xe2\x82", 11, 100, &cut, &used);
    assert (strcmp (text, "ok\xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD") == 0 && !cut);
    text = s_utf8 ("\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 9, 100, &cut, &used);
    assert (used == 27 && !cut); //  overlong, surrogate, > U+10FFFF
    text = s_utf8 ("a\xff", 2, 3, &cut, &used);
    assert (strcmp (text, "a") == 0 && cut); //  no room for U+FFFD
    cut = false;
    text = s_utf8 ("\xe2\x82\xac\xe2\x82\xac", 6, 4, &cut, &used);
    assert (strcmp (text, "\xe2\x82\xac") == 0 && cut); //  whole characters
    cut = false;
    text = s_utf8 ("abc", 3, 2, &cut, &used);
    assert (strcmp (text, "ab") == 0 && cut); //  ASCII cut at max too
    cut = true; //  the input was cut inside a sequence: dropped, not replaced
    text = s_utf8 ("a\xe2\x82", 3, 100, &cut, &used);
    assert (strcmp (text, "a") == 0 && cut);
    assert (wk_text_utf8_room (10, 100) == 30 && wk_text_utf8_room (10, 20) == 20);

    //  Header names are tokens; values carry no CR, LF or NUL
    assert (wk_text_is_token ("X-Custom", 8) && wk_text_is_token ("a!#$%&'*+-.^_`|~9", 17));
    assert (!wk_text_is_token ("", 0) && !wk_text_is_token ("Bad Name", 8));
    assert (!wk_text_is_token ("X:", 2) && !wk_text_is_token ("caf\xc3\xa9", 5));
    assert (!wk_text_is_token ("a\0b", 3));
    assert (wk_text_is_value ("a value, with \"quotes\"", 22) && wk_text_is_value ("", 0));
    assert (!wk_text_is_value ("a\r\nInjected: 1", 14));
    assert (!wk_text_is_value ("a\0b", 3));

    //  Response headers: lower-case names, trimmed values, repeats joined
    //  in the first one's place
    wk_text_headers_t headers = {0};
    const char *lines[] = {"Set-Cookie: a=1", "X-MiXeD:  spaced value \t",
                           "set-cookie:b=2",  "Empty:",
                           "X-Bytes: \xff",   "SET-COOKIE: c=\xff"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        assert (wk_text_add_header (&headers, lines[i], strlen (lines[i])) == 0);
    const char *skipped[] = {"HTTP/1.1 200 OK", ": no name", "Bad Name: x", "no colon"};
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++)
        assert (wk_text_add_header (&headers, skipped[i], strlen (skipped[i])) == -1);
    assert (headers.count == 4);
    assert (s_has (&headers, "set-cookie", "a=1, b=2, c=\xEF\xBF\xBD"));
    assert (s_has (&headers, "x-mixed", "spaced value"));
    assert (s_has (&headers, "empty", ""));
    assert (s_has (&headers, "x-bytes", "\xEF\xBF\xBD"));
    assert (!wk_text_header (&headers, "Set-Cookie", &used));
    const char *order[] = {"set-cookie", "x-mixed", "empty", "x-bytes"};
    size_t at = 0, name_size, value_size, i = 0;
    const char *name, *value;
    while (wk_text_header_next (&headers, &at, &name, &name_size, &value, &value_size)) {
        if (verbose)
            printf ("  %.*s: %.*s\n", (int) name_size, name, (int) value_size, value);
        assert (i < 4 && name_size == strlen (order[i]) && memcmp (name, order[i], name_size) == 0);
        i++;
    }
    assert (i == 4);
    assert (wk_text_add_header (&headers, "X-Cut: abc", 8) == 0); //  len bounds the line
    assert (s_has (&headers, "x-cut", "a"));
    wk_text_headers_clear (&headers);
    assert (headers.count == 0 && !wk_text_header (&headers, "x-cut", &used));
    for (int k = 0; k < 200; k++) { //  growth, and repeats with entries behind them
        char line[64];
        snprintf (line, sizeof line, "X-H%d: %d", k % 50, k);
        assert (wk_text_add_header (&headers, line, strlen (line)) == 0);
    }
    assert (headers.count == 50 && s_has (&headers, "x-h7", "7, 57, 107, 157"));
    assert (s_has (&headers, "x-h49", "49, 99, 149, 199"));
    wk_text_headers_release (&headers);
    assert (headers.data == NULL && headers.count == 0);
}
