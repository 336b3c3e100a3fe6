/*  trace.c - W3C trace context (traceparent, tracestate) for tasks and their calls */
#include "trace.h"
#include "aq_uuid.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static int s_nibble (char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

//  n bytes from 2n lower-case hex digits; -1 on anything else.
static int s_unhex (const char *text, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = s_nibble (text[2 * i]), lo = s_nibble (text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

static bool s_zero (const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bytes[i])
            return false;
    return true;
}

int bk_trace_parse (const char *text, size_t n, bk_trace_t *trace) {
    //  version "-" trace-id "-" parent-id "-" flags; a later version may
    //  append "-" and more, which this version reads past
    uint8_t version;
    if (!text || n < 55 || s_unhex (text, &version, 1) || version == 0xff || text[2] != '-' ||
        text[35] != '-' || text[52] != '-')
        return -1;
    if ((version == 0 && n != 55) || (n > 55 && text[55] != '-'))
        return -1;
    bk_trace_t parsed;
    if (s_unhex (text + 3, parsed.trace_id, 16) || s_unhex (text + 36, parsed.parent, 8) ||
        s_unhex (text + 53, &parsed.flags, 1) || s_zero (parsed.trace_id, 16) ||
        s_zero (parsed.parent, 8))
        return -1;
    *trace = parsed;
    return 0;
}

void bk_trace_fresh (bk_trace_t *trace) {
    do
        aq_uuid_random (trace->trace_id, sizeof trace->trace_id);
    while (s_zero (trace->trace_id, sizeof trace->trace_id));
    memset (trace->parent, 0, sizeof trace->parent);
    trace->flags = 1;
}

bool bk_trace_known (const bk_trace_t *trace) {
    return !s_zero (trace->trace_id, sizeof trace->trace_id);
}

void bk_trace_span (uint8_t span[8]) {
    do
        aq_uuid_random (span, 8);
    while (s_zero (span, 8));
}

char *bk_trace_hex (const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

char *bk_trace_header (const bk_trace_t *trace, const uint8_t span[8], char out[BK_TRACE_HEADER]) {
    char id[33], parent[17];
    snprintf (out, BK_TRACE_HEADER, "00-%s-%s-%02x", bk_trace_hex (trace->trace_id, 16, id),
              bk_trace_hex (span, 8, parent), trace->flags);
    return out;
}

bool bk_trace_state_ok (const char *text, size_t n) {
    if (n > BK_TRACE_STATE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            return false;
    return true;
}

//  --------------------------------------------------------------------------

void bk_trace_test (bool verbose) {
    if (verbose)
        printf (" * bk_trace: ");
    bk_trace_t t;
    const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert (bk_trace_parse (good, strlen (good), &t) == 0);
    assert (t.trace_id[0] == 0x4b && t.trace_id[15] == 0x36 && t.parent[7] == 0xb7);
    assert (t.flags == 1 && bk_trace_known (&t));
    char header[BK_TRACE_HEADER], hex[17];
    assert (strcmp (bk_trace_header (&t, t.parent, header), good) == 0);
    assert (strcmp (bk_trace_hex (t.parent, 8, hex), "00f067aa0ba902b7") == 0);
    //  a later version may carry more after the flags; version 00 may not
    const char *later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes";
    assert (bk_trace_parse (later, strlen (later), &t) == 0 && t.flags == 0);
    const char *bad[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  //  00 with more
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    //  version ff
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    //  zero trace
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    //  zero parent
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    //  upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       //  short
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    //  separators
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xyz", //  no dash after
        NULL};
    for (int i = 0; bad[i]; i++)
        assert (bk_trace_parse (bad[i], strlen (bad[i]), &t) == -1);
    assert (bk_trace_parse (NULL, 0, &t) == -1);
    //  fresh traces and spans are random and never zero
    bk_trace_t a, b;
    bk_trace_fresh (&a);
    bk_trace_fresh (&b);
    assert (bk_trace_known (&a) && memcmp (a.trace_id, b.trace_id, 16) != 0 && a.flags == 1);
    uint8_t span[8];
    bk_trace_span (span);
    assert (!s_zero (span, 8));
    memset (&a, 0, sizeof a);
    assert (!bk_trace_known (&a));
    assert (bk_trace_state_ok ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 39));
    assert (!bk_trace_state_ok ("a\nb", 3));
    if (verbose)
        printf ("OK\n");
}
