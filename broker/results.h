/*  results.h - what a worker's RESULT means for its task

    A RESULT settles the request its lease names: the task's call (2xx, 3xx
    and 4xx complete the task; 202 with AsyncQueue-Wait: true makes it wait
    for a signal; a 2xx starts polling a job; 5xx, errors and timeouts are
    retried; a 429, or a 503 with Retry-After, to a task of a flow control
    key holds the key and is retried), a poll (the job's status or
    result), an onCompleteUrl delivery, or a provider's cancel (fire and
    forget).

    A RESULT counts only from the worker that holds the request's lease,
    and only with the job's lease token, once: an outsider who learnt a
    task id cannot settle it, and a worker that outlived a broker restart
    (its lease forgotten, or an orphan) still can.
*/
#ifndef BK_RESULTS_H
#define BK_RESULTS_H

#include "aq_msg.h"
#include "engine.h"
#include "lease.h"
#include "providers.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_results_t bk_results_t;

//  leases: the dispatcher's (who holds what); providers: where a provider
//  task's answers are read (NULL: none loaded).
bk_results_t *bk_results_new (bk_engine_t *engine, bk_leases_t *leases, bk_providers_t *providers);
void bk_results_destroy (bk_results_t **self_p);
//  The dispatcher replaces its leases on recovery: follow it.
void bk_results_leases (bk_results_t *self, bk_leases_t *leases);

//  A RESULT body from the worker at index sender (-1: it never sent READY).
void bk_results_handle (bk_results_t *self, int sender, const aq_node_t *body);

//  A provider host's reading of a provider task's answer arrived (see
//  providers.h): key names the op ("<task id>/<op number>"), reply is the
//  host's reply, or failure says why there is none. Applies it (a stale
//  op, of a task that moved on, is dropped).
void bk_results_provider_done (bk_results_t *self, const char *key, const aq_node_t *reply,
                               const char *failure);
//  Sends the op a provider task keeps (if any) to its host again: after a
//  broker restart.
void bk_results_provider_resend (bk_results_t *self, const bk_task_t *task);

void bk_results_test (bool verbose);

#endif
