/*  lexer.c - JSON tokens, read as jansson 2.14 reads them

    jansson's lexer (src/load.c) reads a character at a time, puts back the
    one that ends a number or a word, checks a string whole before it
    unescapes it, and reports where its stream stands. This one reads the
    same bytes in runs and records, for an error, how much of the text
    jansson had read by then; gw_lexer_where turns that into its line and
    column. json.c's selftest holds the two to each other over a corpus.
*/
#include "lexer.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_lexer_init (gw_lexer_t *self, const char *text, size_t size) {
    assert (self && (text || size == 0));
    *self = (gw_lexer_t){.text = (const uint8_t *) text, .size = size};
}

//  Records an error at offset at (the first one stays) and returns
//  GW_TOKEN_INVALID.
static int s_fail (gw_lexer_t *self, size_t at, bool nul) {
    if (!self->failed) {
        self->failed = true;
        self->failed_at = at;
        self->failed_nul = nul;
    }
    return self->token = GW_TOKEN_INVALID;
}

void gw_lexer_fail (gw_lexer_t *self) {
    s_fail (self, self->i, false);
}

//  Fails after the character at i, which jansson read and refused; before
//  it when it is not UTF-8.
static int s_fail_after (gw_lexer_t *self, size_t i) {
    uint8_t c = self->text[i];
    if (c < 0x80)
        return s_fail (self, i + 1, c == 0);
    size_t length = gw_lexer_utf8_char (self->text + i, self->size - i);
    return s_fail (self, length ? i + length : i, false);
}

size_t gw_lexer_utf8_char (const uint8_t *p, size_t left) {
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

static bool s_digit (uint8_t c) {
    return c >= '0' && c <= '9';
}

static int s_hex (uint8_t c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

//  A NUL right after a number or a word is skipped (see lexer.h).
static size_t s_skip_nul (gw_lexer_t *self, size_t i) {
    return i < self->size && self->text[i] == 0 ? i + 1 : i;
}

//  Bytes that go into a string as they are: printable ASCII but '"' and '\'.
static const bool s_plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1};

//  A string, from its opening quote: checks it whole, as jansson's first
//  pass does, and measures it unescaped. A surrogate that is not half of a
//  pair fails at the closing quote, as jansson's second pass finds it.
static int s_string (gw_lexer_t *self) {
    const uint8_t *p = self->text;
    size_t n = self->size, i = self->i + 1, length = 0;
    bool escaped = false, nul = false, bad = false;
    bool high = false; //  a high surrogate waits for its low half
    self->start = i;
    for (;;) {
        size_t run = i;
        while (i < n && s_plain[p[i]])
            i++;
        length += i - run;
        if (i > run && high)
            bad = true, high = false;
        if (i == n)
            return s_fail (self, n, false); //  premature end of input
        uint8_t c = p[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return s_fail (self, i, false); //  a control character, before it
        if (c >= 0x80) {
            size_t size = gw_lexer_utf8_char (p + i, n - i);
            if (!size)
                return s_fail (self, i, false);
            bad |= high, high = false;
            i += size;
            length += size;
            continue;
        }
        escaped = true; //  a backslash
        if (++i == n)
            return s_fail (self, n, false);
        c = p[i];
        if (c != 'u') {
            if (c == 0 || !strchr ("\"\\/bfnrt", c))
                return s_fail_after (self, i); //  invalid escape
            bad |= high, high = false;
            i++;
            length++;
            continue;
        }
        uint32_t unit = 0;
        for (int k = 0; k < 4; k++) {
            if (++i == n)
                return s_fail (self, n, false);
            int digit = s_hex (p[i]);
            if (digit < 0)
                return s_fail_after (self, i);
            unit = unit << 4 | (uint32_t) digit;
        }
        i++;
        if (high) { //  only a low half may follow
            high = false;
            if (unit >= 0xDC00 && unit <= 0xDFFF) {
                length += 4;
                continue;
            }
            bad = true;
        }
        if (unit >= 0xD800 && unit <= 0xDBFF)
            high = true;
        else if (unit >= 0xDC00 && unit <= 0xDFFF)
            bad = true;
        else {
            length += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
            nul |= unit == 0;
        }
    }
    self->end = i;
    self->i = i + 1;
    if (bad || high)
        return s_fail (self, self->i, false);
    self->length = length;
    self->escaped = escaped;
    self->nul = nul;
    return self->token = GW_TOKEN_STRING;
}

void gw_lexer_string (const gw_lexer_t *self, aq_writer_t *out) {
    assert (self->token == GW_TOKEN_STRING);
    const uint8_t *p = self->text;
    size_t i = self->start, end = self->end;
    while (i < end) {
        size_t run = i;
        while (i < end && p[i] != '\\')
            i++;
        aq_write_raw (out, p + run, i - run);
        if (i == end)
            break;
        uint8_t c = p[i + 1], bytes[4];
        i += 2;
        if (c != 'u') {
            bytes[0] = c == 'b'   ? '\b'
                       : c == 'f' ? '\f'
                       : c == 'n' ? '\n'
                       : c == 'r' ? '\r'
                       : c == 't' ? '\t'
                                  : c;
            aq_write_raw (out, bytes, 1);
            continue;
        }
        uint32_t code = 0;
        for (int k = 0; k < 4; k++)
            code = code << 4 | (uint32_t) s_hex (p[i++]);
        if (code >= 0xD800 && code <= 0xDBFF) { //  and its low half, "\uDCxx"
            uint32_t low = 0;
            for (int k = 2; k < 6; k++)
                low = low << 4 | (uint32_t) s_hex (p[i + (size_t) k]);
            i += 6;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        size_t size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
        if (size == 1)
            bytes[0] = (uint8_t) code;
        else {
            static const uint8_t lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
            for (size_t k = size - 1; k > 0; k--, code >>= 6)
                bytes[k] = (uint8_t) (0x80 | (code & 0x3F));
            bytes[0] = (uint8_t) (lead[size] | code);
        }
        aq_write_raw (out, bytes, size);
    }
}

//  A number: an integer when it has no fraction and no exponent (what
//  strtoll holds), else strtod's double (overflow refused, underflow not).
static int s_number (gw_lexer_t *self) {
    const uint8_t *p = self->text;
    size_t n = self->size, start = self->i, i = start;
    bool negative = p[i] == '-';
    i += negative;
    if (i < n && p[i] == '0') {
        if (++i < n && s_digit (p[i]))
            return s_fail (self, i, false);
    } else if (i < n && s_digit (p[i])) {
        while (i < n && s_digit (p[i]))
            i++;
    } else
        return s_fail (self, i, false);
    if (i == n || (p[i] != '.' && p[i] != 'e' && p[i] != 'E')) {
        uint64_t value = 0, max = (uint64_t) INT64_MAX + negative;
        for (size_t k = start + negative; k < i; k++) {
            unsigned digit = p[k] - '0';
            if (value > (max - digit) / 10)
                return s_fail (self, i, false); //  too big an integer
            value = value * 10 + digit;
        }
        self->integer = !negative ? (int64_t) value : value ? -(int64_t) (value - 1) - 1 : 0;
        self->i = s_skip_nul (self, i);
        return self->token = GW_TOKEN_INTEGER;
    }
    if (p[i] == '.') {
        if (++i == n || !s_digit (p[i]))
            return s_fail (self, i, false);
        while (i < n && s_digit (p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        if (++i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i == n || !s_digit (p[i]))
            return s_fail (self, i, false);
        while (i < n && s_digit (p[i]))
            i++;
    }
    char small[64], *copy = i - start < sizeof small ? small : malloc (i - start + 1);
    if (!copy) {
        self->oom = true;
        return s_fail (self, i, false);
    }
    memcpy (copy, p + start, i - start);
    copy[i - start] = 0;
    errno = 0;
    self->real = strtod (copy, NULL);
    bool overflow = (self->real == HUGE_VAL || self->real == -HUGE_VAL) && errno == ERANGE;
    if (copy != small)
        free (copy);
    if (overflow)
        return s_fail (self, i, false);
    self->i = s_skip_nul (self, i);
    return self->token = GW_TOKEN_REAL;
}

//  A word: true, false, null, or an invalid token.
static int s_word (gw_lexer_t *self) {
    const uint8_t *p = self->text;
    size_t start = self->i, i = start;
    while (i < self->size && (p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z')
        i++;
    const char *word = (const char *) p + start;
    size_t size = i - start;
    int token = size == 4 && memcmp (word, "true", 4) == 0    ? GW_TOKEN_TRUE
                : size == 5 && memcmp (word, "false", 5) == 0 ? GW_TOKEN_FALSE
                : size == 4 && memcmp (word, "null", 4) == 0  ? GW_TOKEN_NULL
                                                              : GW_TOKEN_INVALID;
    if (token == GW_TOKEN_INVALID)
        return s_fail (self, i, false);
    self->i = s_skip_nul (self, i);
    return self->token = token;
}

int gw_lexer_next (gw_lexer_t *self) {
    if (self->failed)
        return self->token = GW_TOKEN_INVALID;
    const uint8_t *p = self->text;
    size_t n = self->size, i = self->i;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    self->i = i;
    if (i == n)
        return self->token = GW_TOKEN_EOF;
    uint8_t c = p[i];
    if (c && strchr ("{}[]:,", c)) {
        self->i = i + 1;
        return self->token = c;
    }
    if (c == '"')
        return s_string (self);
    if (c == '-' || s_digit (c))
        return s_number (self);
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return s_word (self);
    return s_fail_after (self, i); //  any other character
}

void gw_lexer_where (const gw_lexer_t *self, int *line, int *column) {
    *line = 1, *column = 0;
    for (size_t k = 0; k < self->failed_at; k++) {
        uint8_t c = self->text[k];
        if (c == '\n')
            ++*line, *column = 0;
        else if (c == 0) //  skipped, unless the error is that very NUL
            *column += self->failed_nul && k + 1 == self->failed_at;
        else if ((c & 0xC0) != 0x80) //  not a UTF-8 continuation byte
            ++*column;
    }
}

//  --------------------------------------------------------------------------
//  Selftest: tokens and their values; where each kind of error stops

//  Reads tokens from text until EOF or a failure; returns the last token
//  and leaves the lexer in *lexer.
static int s_read_all (gw_lexer_t *lexer, const char *text, size_t size) {
    gw_lexer_init (lexer, text, size);
    int token;
    while ((token = gw_lexer_next (lexer)) != GW_TOKEN_EOF && token != GW_TOKEN_INVALID)
        ;
    return token;
}

//  text fails at line, column.
static void s_expect_stop (const char *text, size_t size, int line, int column) {
    gw_lexer_t lexer;
    int got_line = 0, got_column = 0;
    if (s_read_all (&lexer, text, size) == GW_TOKEN_INVALID)
        gw_lexer_where (&lexer, &got_line, &got_column);
    if (got_line != line || got_column != column) {
        fprintf (stderr, "gw_lexer: '%s' stopped at %d:%d, not %d:%d\n", text, got_line, got_column,
                 line, column);
        assert (false);
    }
}

void gw_lexer_test (bool verbose) {
    if (verbose)
        printf (" * gw_lexer: ");

    //  Tokens and their values
    const char *text = " {\"a\\u00e9\\ud83d\\ude00\\n\" :-12,1.5e3,0, true\tfalse\r\nnull[]}";
    gw_lexer_t lexer;
    gw_lexer_init (&lexer, text, strlen (text));
    assert (gw_lexer_next (&lexer) == '{');
    assert (gw_lexer_next (&lexer) == GW_TOKEN_STRING && lexer.escaped && !lexer.nul);
    assert (lexer.length == 1 + 2 + 4 + 1);
    aq_writer_t w;
    aq_writer_init (&w);
    gw_lexer_string (&lexer, &w);
    size_t size;
    const uint8_t *bytes = aq_writer_data (&w, &size);
    assert (size == 8 && memcmp (bytes, "a\xc3\xa9\xf0\x9f\x98\x80\n", 8) == 0);
    aq_writer_release (&w);
    assert (gw_lexer_next (&lexer) == ':');
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER && lexer.integer == -12);
    assert (gw_lexer_next (&lexer) == ',');
    assert (gw_lexer_next (&lexer) == GW_TOKEN_REAL && lexer.real == 1500.0);
    assert (gw_lexer_next (&lexer) == ',');
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER && lexer.integer == 0);
    assert (gw_lexer_next (&lexer) == ',');
    assert (gw_lexer_next (&lexer) == GW_TOKEN_TRUE);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_FALSE);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_NULL);
    assert (gw_lexer_next (&lexer) == '[' && gw_lexer_next (&lexer) == ']');
    assert (gw_lexer_next (&lexer) == '}' && gw_lexer_next (&lexer) == GW_TOKEN_EOF);
    assert (!lexer.failed);

    //  Integers at strtoll's edges; \u0000 is noted, not refused here
    gw_lexer_init (&lexer, "-9223372036854775808 9223372036854775807 -0 \"\\u0000\"", 52);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER && lexer.integer == INT64_MIN);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER && lexer.integer == INT64_MAX);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER && lexer.integer == 0);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_STRING && lexer.nul && lexer.length == 1);

    //  Where each kind of error stops (as jansson's json_error_t has it)
    s_expect_stop ("tru", 3, 1, 3);   //  after a word
    s_expect_stop ("[1,@]", 5, 1, 4); //  after a stray character
    s_expect_stop ("01", 2, 1, 1);    //  after the 0
    s_expect_stop ("1.x", 3, 1, 2);   //  after the point
    s_expect_stop ("1e+", 3, 1, 3);   //  after the sign
    s_expect_stop ("-", 1, 1, 1);     //  after the minus
    s_expect_stop ("9223372036854775808", 19, 1, 19);
    s_expect_stop ("1e309", 5, 1, 5);                  //  overflow; 1e-400 is 0.0
    s_expect_stop ("\"ab", 3, 1, 3);                   //  premature end
    s_expect_stop ("\"a\tb\"", 5, 1, 2);               //  before a control character
    s_expect_stop ("\n\n  \"a\nb\"", 9, 3, 4);         //  before a raw newline
    s_expect_stop ("\"\\q\"", 4, 1, 3);                //  after an invalid escape
    s_expect_stop ("\"\\u12x4\"", 8, 1, 6);            //  after the bad hex digit
    s_expect_stop ("\"\\ud83d\"", 8, 1, 8);            //  a lone surrogate: at the quote
    s_expect_stop ("\"\xc3\xa9\xc3\xa9\" x", 8, 1, 6); //  characters, not bytes
    s_expect_stop ("\"\xc3\xa9\xff\"", 5, 1, 2);       //  before a byte not UTF-8
    s_expect_stop ("\"\xed\xa0\x80\"", 5, 1, 1);       //  a surrogate in UTF-8
    s_expect_stop ("1\0x", 3, 1, 2);                   //  the NUL after 1 is skipped
    s_expect_stop ("\"a\" \0", 5, 1, 5);               //  a NUL elsewhere counts
    s_expect_stop ("\"\\\n\"", 4, 2, 0);               //  escape of a newline: next line
    gw_lexer_init (&lexer, "1e-400", 6);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_REAL && lexer.real == 0.0);

    //  The first error stays; the grammar's errors stop after the token
    gw_lexer_init (&lexer, "{\"a\" 1}", 7);
    assert (gw_lexer_next (&lexer) == '{' && gw_lexer_next (&lexer) == GW_TOKEN_STRING);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INTEGER);
    gw_lexer_fail (&lexer); //  ':' expected
    int line, column;
    gw_lexer_where (&lexer, &line, &column);
    assert (line == 1 && column == 6);
    assert (gw_lexer_next (&lexer) == GW_TOKEN_INVALID);
    gw_lexer_fail (&lexer);
    gw_lexer_where (&lexer, &line, &column);
    assert (line == 1 && column == 6);

    //  UTF-8 by jansson's rules
    assert (gw_lexer_utf8_char ((const uint8_t *) "\xf0\x9f\x98\x80", 4) == 4);
    assert (gw_lexer_utf8_char ((const uint8_t *) "\xf0\x9f\x98", 3) == 0);
    assert (gw_lexer_utf8_char ((const uint8_t *) "\xc0\x80", 2) == 0);
    assert (gw_lexer_utf8_char ((const uint8_t *) "\xf4\x90\x80\x80", 4) == 0);
    assert (gw_lexer_utf8_char ((const uint8_t *) "\x80", 1) == 0);
    assert (gw_lexer_utf8_char ((const uint8_t *) "\0", 1) == 1);

    if (verbose)
        printf ("OK\n");
}
