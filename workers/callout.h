/*  callout.h - the outgoing HTTP calls of a worker: many in flight at once

    One engine runs every call of a worker without a thread per call; its
    wait is the caller's poll too: the caller's fds (a ZeroMQ socket's
    ZMQ_FD) join the calls' sockets in one set.

        wk_callout_t *callout = wk_callout_new (false, 64);
        wk_callout_watch (callout, zmq_fd, 1);
        wk_callout_start (callout, &job);          //  a JOB body (aq_msg.h)
        for (;;) {
            unsigned fired = wk_callout_wait (callout, wk_callout_timeout_ms (callout));
            if (fired & 1)
                ...read the ZeroMQ socket until EAGAIN
            const uint8_t *frame;
            size_t size;
            while ((frame = wk_callout_result (callout, &size))) {
                ...send the frame (a whole RESULT message)
                wk_callout_pop_result (callout);
            }
        }

    A JOB body is {id, attempt, url, method, headers, body?, timeout (s),
    maxBody, kind?, lease?}; a RESULT body is {id, attempt, kind?, lease?,
    duration (ms)} plus either {statusCode, headers, body, bodyTruncated?,
    retryAfter?} when the target answered (any status: redirects are not
    followed) or {error, permanent?} when it did not. The engine keeps calls
    away from private addresses unless allow_private (see ssrf.h); it never
    logs.
*/
#ifndef WK_CALLOUT_H
#define WK_CALLOUT_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WK_USER_AGENT "asyncqueue/0.1"

typedef struct _wk_callout_t wk_callout_t;

//  A new engine for up to slots calls at once; it keeps up to 4 idle
//  connections per slot for the next calls. NULL if curl cannot be set up.
wk_callout_t *wk_callout_new (bool allow_private, int slots);

//  Aborts the calls in flight (no results for them), drops unsent results,
//  frees the engine. Accepts NULL; sets *self_p to NULL.
void wk_callout_destroy (wk_callout_t **self_p);

//  Starts the call a JOB body (a map; borrowed, read before this returns)
//  describes. Returns 0, or -1 when the call cannot start (invalid URL,
//  method or header): its RESULT, an error, is then ready at once (unless
//  memory ran out even for that).
int wk_callout_start (wk_callout_t *self, const aq_node_t *job);

//  Queues the RESULT of a JOB the worker does not run: the fields it
//  echoes, duration 0, error and refused. 0, or -1 when out of memory.
int wk_callout_refuse (wk_callout_t *self, const aq_node_t *job, const char *error);

//  Adds fd (the caller's) to what wk_callout_wait waits for: readable, it
//  makes wk_callout_wait return bits (any nonzero bits below 1 << 31).
//  Level-triggered: read fd until it is not readable. 0, or -1 with errno.
int wk_callout_watch (wk_callout_t *self, int fd, unsigned bits);

//  Stops watching fd (before the caller closes it).
void wk_callout_unwatch (wk_callout_t *self, int fd);

//  Milliseconds until the engine needs wk_callout_handle without socket
//  activity (0: now), or -1 when it has no timer.
long wk_callout_timeout_ms (wk_callout_t *self);

//  Waits at most timeout_ms (0: not at all, -1: no limit) for a call's
//  socket or a watched fd, runs the calls whose sockets are ready and
//  curl's timer when it is due. Returns the bits of the watched fds that
//  are readable (0 when none).
unsigned wk_callout_wait (wk_callout_t *self, long timeout_ms);

//  Runs curl's timer when it is due (after wk_callout_start, this sends
//  the new calls at once rather than on the next wait).
void wk_callout_timer (wk_callout_t *self);

//  The oldest RESULT not yet taken, a whole frame (aq_proto.h) of size
//  bytes, or NULL. Borrowed until the engine is used again.
const uint8_t *wk_callout_result (wk_callout_t *self, size_t *size);

//  Drops the oldest RESULT (there must be one).
void wk_callout_pop_result (wk_callout_t *self);

//  RESULTs waiting to be taken.
size_t wk_callout_results (wk_callout_t *self);

//  Calls in flight.
size_t wk_callout_active (wk_callout_t *self);

//  Seconds a Retry-After value asks to wait (delta-seconds or an HTTP-date;
//  a huge number reads as INT32_MAX), or -1 when value is NULL or
//  unreadable. What a RESULT's retryAfter holds.
int64_t wk_callout_retry_after (const char *value);

void wk_callout_test (bool verbose);

#endif
