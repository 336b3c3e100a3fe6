/*  lexer.h - JSON tokens, read as jansson 2.14 reads them

    The gateway parsed request bodies with jansson until gateway/json.c
    took to writing msgpack straight from the text, and clients see where
    jansson gave up ("Invalid JSON at line L, column C"). This lexer reads
    the same tokens and gives up at the same places:
    - after a token the grammar refuses (a number or a word ends before the
      byte that ends it, a string with its closing quote);
    - before a byte that is not UTF-8 (no overlong forms, surrogates, or
      code points past U+10FFFF);
    - in a string: before a control character, after the character that
      makes an escape invalid, at the closing quote for a lone surrogate;
    - after a number strtoll or strtod cannot hold.
    Lines count from 1 and columns count characters, not bytes. One quirk
    of jansson's is kept: a NUL byte right after a number or a word is
    skipped (jansson puts the byte back, then reads past it), so
    {"a":1<NUL>} is a valid body.
*/
#ifndef GW_LEXER_H
#define GW_LEXER_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Tokens: these, or one of the characters { } [ ] : , itself.
#define GW_TOKEN_EOF     0
#define GW_TOKEN_INVALID (-1) //  the lexer failed (see gw_lexer_t.failed)
#define GW_TOKEN_STRING  256
#define GW_TOKEN_INTEGER 257
#define GW_TOKEN_REAL    258
#define GW_TOKEN_TRUE    259
#define GW_TOKEN_FALSE   260
#define GW_TOKEN_NULL    261

typedef struct {
    const uint8_t *text; //  what is read (borrowed)
    size_t size;         //  its length
    size_t i;            //  the next byte to read
    int token;           //  the token just read
    size_t start;        //  GW_TOKEN_STRING: its first byte after the quote
    size_t end;          //  GW_TOKEN_STRING: its closing quote
    size_t length;       //  GW_TOKEN_STRING: its bytes once unescaped
    bool escaped;        //  GW_TOKEN_STRING: it holds escapes
    bool nul;            //  GW_TOKEN_STRING: it holds \u0000
    int64_t integer;     //  GW_TOKEN_INTEGER: its value
    double real;         //  GW_TOKEN_REAL: its value
    bool failed;         //  an error is recorded (the first one stays)
    size_t failed_at;    //  the text before this offset is what jansson had read
    bool failed_nul;     //  the byte before failed_at is a NUL jansson counted
    bool oom;            //  out of memory
} gw_lexer_t;

//  Starts reading text (size bytes, need not be terminated; borrowed).
void gw_lexer_init (gw_lexer_t *self, const char *text, size_t size);

//  Reads the next token (whitespace skipped) and returns it; its value is
//  in self. GW_TOKEN_INVALID once the lexer has failed.
int gw_lexer_next (gw_lexer_t *self);

//  Records an error of the grammar at the lexer's position (after the
//  token just read), unless one is recorded already.
void gw_lexer_fail (gw_lexer_t *self);

//  Appends the unescaped bytes of the string token just read to out.
void gw_lexer_string (const gw_lexer_t *self, aq_writer_t *out);

//  The line and column jansson gives for the recorded error (column 0 at
//  the start of a line).
void gw_lexer_where (const gw_lexer_t *self, int *line, int *column);

//  The length of the UTF-8 character at p (left bytes there), 0 when it is
//  not one by jansson's rules.
size_t gw_lexer_utf8_char (const uint8_t *p, size_t left);

void gw_lexer_test (bool verbose);

#endif
