/*  trace.h - W3C trace context (traceparent, tracestate) for tasks and their calls

    A task belongs to a trace: the one its creator was in (the create
    request's traceparent, or a traceparent among the task's own headers),
    or a fresh one. Every request the broker has a worker make for it (each
    attempt of the call, each poll, each onCompleteUrl delivery, a provider
    cancel) is a new span of that trace, a child of the creator's span:
    the worker sends `traceparent: 00-<trace id>-<span id>-<flags>` and the
    creator's `tracestate` as it was. A scheduled run is a trace of its
    own, its steps children of the run's span.

    https://www.w3.org/TR/trace-context/ (version 00).
*/
#ifndef BK_TRACE_H
#define BK_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_TRACE_HEADER    56  //  room for a traceparent value and its NUL
#define BK_TRACE_STATE_MAX 512 //  longest tracestate kept (the spec's limit)

typedef struct {
    uint8_t trace_id[16]; //  all zero: none
    uint8_t parent[8];    //  the creator's span, all zero: none (a fresh trace)
    uint8_t flags;        //  trace-flags (bit 0: sampled)
} bk_trace_t;

//  Parses a traceparent value (n bytes). 0, or -1 when it is not one (a
//  malformed value is ignored, as the spec says: a fresh trace starts).
int bk_trace_parse (const char *text, size_t n, bk_trace_t *trace);
//  A fresh trace: random trace id, no parent, sampled.
void bk_trace_fresh (bk_trace_t *trace);
//  True when the trace has an id.
bool bk_trace_known (const bk_trace_t *trace);
//  A new random span id (never all zero).
void bk_trace_span (uint8_t span[8]);
//  The traceparent of a request made as span of trace into out.
char *bk_trace_header (const bk_trace_t *trace, const uint8_t span[8], char out[BK_TRACE_HEADER]);
//  Lower-case hex of n bytes into out (2n + 1 bytes).
char *bk_trace_hex (const uint8_t *bytes, size_t n, char *out);
//  True when a tracestate value may be kept: printable ASCII, at most
//  BK_TRACE_STATE_MAX bytes.
bool bk_trace_state_ok (const char *text, size_t n);

void bk_trace_test (bool verbose);

#endif
