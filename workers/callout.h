/*  callout.h - the outgoing HTTP calls of a worker: many in flight at once

    One engine runs every call of a worker without a thread per call: the
    caller folds its sockets and timer into its own zmq_poll.

        wk_callout_t *callout = wk_callout_new (false, 64);
        wk_callout_start (callout, job);           //  a JOB body
        for (;;) {
            int n = wk_callout_poll_items (callout, items, max);
            zmq_poll (items, n, wk_callout_timeout_ms (callout));
            wk_callout_handle (callout, items, n);
            json_t *result;
            while ((result = wk_callout_next_result (callout)))
                ...send it as a RESULT, json_decref (result)
        }

    A JOB body is {id, attempt, url, method, headers, body?, timeout (s),
    maxBody}; a RESULT body is {id, attempt, duration (ms)} plus either
    {statusCode, headers, body, bodyTruncated?, retryAfter?} when the target
    answered (any status: redirects are not followed) or {error, permanent?}
    when it did not. The engine keeps calls away from private addresses unless
    allow_private (see ssrf.h); it never logs.
*/
#ifndef WK_CALLOUT_H
#define WK_CALLOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define WK_USER_AGENT "asyncqueue/0.1"

typedef struct _wk_callout_t wk_callout_t;

//  A new engine for up to slots calls at once; it keeps up to 4 idle
//  connections per slot for the next calls. NULL if curl cannot be set up.
wk_callout_t *wk_callout_new (bool allow_private, int slots);

//  Aborts the calls in flight (no results for them), drops unread results,
//  frees the engine. Accepts NULL; sets *self_p to NULL.
void wk_callout_destroy (wk_callout_t **self_p);

//  A new RESULT body for job: its id and attempt, and the fields a RESULT
//  echoes (kind, so the broker knows which request answered; lease, to
//  prove the job was ours). NULL when out of memory; the caller owns it.
json_t *wk_callout_result_new (const json_t *job);

//  Starts the call a JOB body describes; job stays the caller's. Returns 0,
//  or -1 when the call cannot start (invalid URL, method or header): its
//  RESULT, an error, is then ready at once (unless memory ran out even for
//  that).
int wk_callout_start (wk_callout_t *self, const json_t *job);

//  Fills up to max poll items with the sockets calls wait on (raw fds).
//  Returns how many there are, which may exceed max: then give more room.
int wk_callout_poll_items (wk_callout_t *self, zmq_pollitem_t *items, int max);

//  Milliseconds until the engine needs wk_callout_handle without socket
//  activity (0: now), or -1 when it has no timer.
long wk_callout_timeout_ms (wk_callout_t *self);

//  Runs the calls after zmq_poll: items and n as filled by
//  wk_callout_poll_items (with revents set), or n = 0 after a timeout.
void wk_callout_handle (wk_callout_t *self, zmq_pollitem_t *items, int n);

//  The oldest RESULT body not yet taken, or NULL; the caller owns it.
json_t *wk_callout_next_result (wk_callout_t *self);

//  Calls in flight.
size_t wk_callout_active (wk_callout_t *self);

void wk_callout_test (bool verbose);

#endif
