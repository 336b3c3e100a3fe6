/*  text.h - the text of an outgoing call: header names and values, response
    headers, bodies as valid UTF-8

    Pure functions on bytes, no I/O: callout.c checks a JOB's headers with
    them and builds a RESULT's headers and body.
*/
#ifndef WK_TEXT_H
#define WK_TEXT_H

#include <stdbool.h>
#include <stddef.h>

//  Bytes wk_text_utf8 may write for size bytes of text and a limit of max.
size_t wk_text_utf8_room (size_t size, size_t max);

//  Writes text (size bytes) to out made valid UTF-8 (each invalid byte
//  becomes U+FFFD) and at most max bytes long; out has room for
//  wk_text_utf8_room (size, max) bytes. *cut says on entry that text itself
//  was cut short (a sequence broken at its end is then dropped, not
//  replaced) and on return whether anything was left out. Returns the
//  bytes written.
size_t wk_text_utf8 (const char *text, size_t size, size_t max, bool *cut, char *out);

//  True when name (size bytes) is a header name HTTP allows (an RFC 9110
//  token).
bool wk_text_is_token (const char *name, size_t size);

//  True when value (size bytes) can go on the wire as a header value as it
//  is (no CR, LF or NUL).
bool wk_text_is_value (const char *value, size_t size);

//  The response headers of one call: lower-case names, values trimmed and
//  valid UTF-8, a repeated header joined with ", " in its first place.
//  Embedded in its owner: zero it to start, release it at the end.
typedef struct {
    char *data;   //  entries: name size, value size (uint32 each), name, value
    size_t size;  //  bytes used
    size_t room;  //  bytes allocated
    size_t count; //  entries
} wk_text_headers_t;

//  Forgets the entries, keeping the memory.
void wk_text_headers_clear (wk_text_headers_t *self);
//  Frees the memory; self is empty (zeroed) again.
void wk_text_headers_release (wk_text_headers_t *self);

//  Adds one response header line (len bytes, no CR LF). Returns 0, or -1
//  when the line is not a header (or memory ran out): self is then
//  unchanged.
int wk_text_add_header (wk_text_headers_t *self, const char *line, size_t len);

//  Walks the entries: start with *at = 0; false at the end. The pointers
//  borrow self's memory until it changes.
bool wk_text_header_next (const wk_text_headers_t *self, size_t *at, const char **name,
                          size_t *name_size, const char **value, size_t *value_size);

//  The value of the header named name (lower case), or NULL; sets *size.
const char *wk_text_header (const wk_text_headers_t *self, const char *name, size_t *size);

void wk_text_test (bool verbose);

#endif
