/*  text.h - the text of an outgoing call: header names and values, response
    headers as JSON, bodies as valid UTF-8

    Pure functions on bytes and JSON, no I/O: callout.c checks a JOB's
    headers with them and builds a RESULT's headers and body.
*/
#ifndef WK_TEXT_H
#define WK_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  A new JSON string of text made valid UTF-8 (each invalid byte becomes
//  U+FFFD) and at most max bytes long. *cut says on entry that text itself
//  was cut short (a sequence broken at its end is then dropped, not
//  replaced) and on return whether anything was left out. NULL if no memory.
json_t *wk_text_utf8_string (const char *text, size_t size, size_t max, bool *cut);

//  True when name is a header name HTTP allows (an RFC 9110 token).
bool wk_text_is_token (const char *name);

//  True when value is a string that can go on the wire as a header value
//  as it is (no CR, LF or NUL).
bool wk_text_is_value (const json_t *value);

//  Adds one response header line (len bytes, no CR LF) to headers under its
//  lower-case name, its value trimmed and made valid UTF-8; a repeated
//  header is joined with ", ". Returns 0, or -1 when the line is not a
//  header (or memory ran out): headers is then unchanged.
int wk_text_add_header (json_t *headers, const char *line, size_t len);

void wk_text_test (bool verbose);

#endif
