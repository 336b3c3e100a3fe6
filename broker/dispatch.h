/*  dispatch.h - the ready queue to the workers: jobs, leases, heartbeats, recovery

    Keeps the workers that said READY and their credit (lease.h), and hands
    each ready task to the next worker with credit: the task's call, a poll,
    an onCompleteUrl delivery or a provider's cancel, whichever the record
    says is owed. A call of a flow control key starts only when the key
    admits it; otherwise the task is parked by its key (flow.h) and the
    worker takes the next one. JOBs go out at once, before the turn's commit: a worker's
    RESULT is handled in a later turn, after this one committed; if the
    commit fails the task is still pending and may run twice (at least
    once holds), and an fsync stays out of the due-to-call latency.

    A worker that goes silent loses its leases: their tasks come back as a
    lost attempt ("worker lost"). After a restart every task still
    processing is leased to nobody until its deadline (recovery).
*/
#ifndef BK_DISPATCH_H
#define BK_DISPATCH_H

#include "engine.h"
#include "keys.h"
#include "lease.h"
#include "providers.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bk_dispatch_t bk_dispatch_t;

//  keys give each team's signing secret; providers the headers a
//  provider's polls may carry (NULL: none loaded).
bk_dispatch_t *bk_dispatch_new (bk_engine_t *engine, bk_keys_t *keys, bk_providers_t *providers);
void bk_dispatch_destroy (bk_dispatch_t **self_p);

//  The workers and their leases (results.c checks who holds one).
bk_leases_t *bk_dispatch_leases (bk_dispatch_t *self);

//  A worker's READY, HEARTBEAT or BYE (RESULT goes to results.c) on socket
//  from rid. Returns the worker's index, or -1 when it is unknown (it has
//  been told ERROR 410 and sends READY again).
int bk_dispatch_worker (bk_dispatch_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                        int cmd, const aq_node_t *body);

//  Sends ready tasks to workers with credit until either runs out.
void bk_dispatch_run (bk_dispatch_t *self);
//  HEARTBEATs to workers we have not sent to within the interval.
void bk_dispatch_heartbeat (bk_dispatch_t *self);
//  Forgets silent workers; their leases, and leases past their deadline,
//  end as lost attempts; long polls past their deadline are answered.
void bk_dispatch_expire (bk_dispatch_t *self);
//  At start (and after a failed commit): every task processing is leased
//  to nobody until its deadline; workers are forgotten.
void bk_dispatch_recover (bk_dispatch_t *self);
//  The earliest lease deadline (monotonic ms), INT64_MAX when none.
int64_t bk_dispatch_next_deadline (bk_dispatch_t *self);

void bk_dispatch_test (bool verbose);

#endif
