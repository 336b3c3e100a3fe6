/*  flow.h - flow control per key: limits on a key's calls that back off by themselves

    A key is a name within a team (flowControl.key of a task, SPEC 11). Its
    limits bound the outgoing calls of the tasks that name it: rate calls
    started per period seconds, and parallelism tasks of the key in
    processing, waiting or polling at once (a provider job holds its slot
    until it ends). A call answered 429, or 503 with Retry-After, holds the
    whole key until Retry-After and halves its effective rate, which climbs
    back by a tenth of the rate each period without one (AIMD). Polls and
    onCompleteUrl deliveries are not calls: only a task's own call counts.

    Where a task of a key waits: a pending task whose key cannot start a
    call now is parked in the key's FIFO (BK_DB_FLOW_WAIT: priority, then
    age), out of the ready queue, and keeps status pending. The key
    releases the FIFO's head into the ready queue when it can start one: a
    slot frees, the rate window turns, a hold ends, resume, new limits.
    Keys that wait for a time sit in a timer heap; keys that wait for a
    slot cost nothing until it frees. So a key with 100,000 parked tasks
    costs no CPU while it waits and delays no other key's or key-less task.

    The rate window is a sliding one: at most rate calls start in any
    period (plus 1/40 of it, at most 1 s, for the network's jitter), as
    the destination counts them; an effective rate below the rate spaces
    calls further apart (rate 10 halved to 5: five per period).

    Durable (the store, in the caller's transaction): each key's limits,
    paused and AIMD state in BK_DB_FLOW; parked tasks in BK_DB_FLOW_WAIT.
    In memory, rebuilt from the store by bk_flow_recover: in-flight and
    parked counts, tasks released to the ready queue, the recent call
    starts, the timers. Calls run inside the caller's transaction.
*/
#ifndef BK_FLOW_H
#define BK_FLOW_H

#include "aq_msg.h"
#include "queue.h"
#include "store.h"
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_FLOW_KEY_MAX 100 //  longest key name

typedef struct {
    int rate;        //  calls started per period, 0: no rate limit
    int period;      //  seconds, 1..86400 (default 1)
    int parallelism; //  tasks of the key in flight at once, 0: no limit
} bk_flow_limits_t;

//  A key as GET /v1/flow-control/:key shows it.
typedef struct {
    char key[BK_FLOW_KEY_MAX + 1]; //  its name
    bk_flow_limits_t limits;       //  as set
    double effective_rate;         //  calls per period now (the rate unless lowered)
    int64_t in_flight;             //  tasks processing, waiting or polling
    int64_t waiting;               //  tasks parked by the key's limits
    bool paused;                   //  dispatch stopped
    int64_t held_until;            //  ms while a 429 holds it, else -1
} bk_flow_info_t;

typedef struct _bk_flow_t bk_flow_t;

//  Flow control over store; released tasks go to queue (both borrowed).
bk_flow_t *bk_flow_new (bk_store_t *store, bk_queue_t *queue);
void bk_flow_destroy (bk_flow_t **self_p);

//  True when name (size bytes) is a valid key: 1-100 of A-Z a-z 0-9 . _ : -
bool bk_flow_key_valid (const char *name, size_t size);

//  Reads limits from map (a flowControl object, or a PUT body): its key
//  (with_key: required, into key) and rate, period, parallelism; null
//  stands for not given. Returns NULL, or the client message (static, or
//  in errbuf), every field named with prefix ("flowControl.").
const char *bk_flow_parse (const aq_node_t *map, bool with_key, const char *prefix,
                           char key[BK_FLOW_KEY_MAX + 1], bk_flow_limits_t *limits, char *errbuf,
                           size_t size);

//  ---- the API --------------------------------------------------------------

//  Sets a key's limits (creating the key): the latest given wins. Changed
//  limits restart the effective rate at the rate; a hold stays. 0 or a
//  store error.
int bk_flow_set (bk_flow_t *self, const uint8_t team[16], const char *key,
                 const bk_flow_limits_t *limits, int64_t now);
//  Pauses or resumes a key: 0, BK_NOTFOUND (no such key) or a store error.
int bk_flow_pause (bk_flow_t *self, const uint8_t team[16], const char *key, bool paused,
                   int64_t now);
//  A key's state: 0 or BK_NOTFOUND.
int bk_flow_get (bk_flow_t *self, const uint8_t team[16], const char *key, int64_t now,
                 bk_flow_info_t *info);
//  Appends the public map of a key to w.
void bk_flow_write_public (const bk_flow_info_t *info, int64_t now, aq_writer_t *w);
//  Writes one page of a team's keys (by name) to w as an array of public
//  maps; sets *total to the team's key count and returns how many were
//  written.
size_t bk_flow_write_page (bk_flow_t *self, const uint8_t team[16], int limit, int offset,
                           int64_t now, aq_writer_t *w, uint64_t *total);

//  ---- the tasks of a key (task->flow_key set) ------------------------------

//  A task became pending (created, retried, back from delayed): into the
//  ready queue when its key can start a call now and parks no task, else
//  parked. 0 or a store error.
int bk_flow_ready (bk_flow_t *self, const bk_task_t *task, int64_t now);
//  A pending task of a key came out of the ready queue: true when its call
//  may start now (counted as started), false when it was parked instead.
bool bk_flow_admit (bk_flow_t *self, const bk_task_t *task, int64_t now);
//  A task of a key was saved with a new status (old_status before):
//  counts it in or out of flight (processing, waiting, polling), unparks
//  a cancelled one, and releases what a freed slot allows.
void bk_flow_moved (bk_flow_t *self, const bk_task_t *task, int old_status, int64_t now);
//  A call of the task's key answered 429, or 503 with Retry-After:
//  retry_after_ms (-1: none, 1 s) capped by cap_ms holds the key, and its
//  effective rate halves unless a hold was already on. 0 or a store error.
int bk_flow_throttled (bk_flow_t *self, const bk_task_t *task, int64_t retry_after_ms,
                       int64_t cap_ms, int64_t now);

//  ---- the turn -------------------------------------------------------------

//  Releases what keys whose timer came, or that recover marked, can start.
void bk_flow_work (bk_flow_t *self, int64_t now);
//  When bk_flow_work next has something to do (wall ms), INT64_MAX never.
int64_t bk_flow_next_wake (bk_flow_t *self, int64_t now);
//  Rebuilds the memory from the store (at start, and after a failed
//  commit): limits, parked counts, tasks in flight; every key that parks
//  tasks is looked at by the next bk_flow_work. Reads only.
void bk_flow_recover (bk_flow_t *self);

void bk_flow_test (bool verbose);

#endif
