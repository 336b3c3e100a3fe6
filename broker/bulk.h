/*  bulk.h - bulk jobs: cancel or retry what a filter matches, a few tasks per turn

    POST /v1/tasks/bulk {"action": "cancel" | "retry", "filter": {...} |
    "ids": [...]} makes a job and answers 202 at once; the job then works
    in the broker's turns, for the time the loop gives it (and at most
    BK_BULK_TASKS tasks and a bounded walk of the indexes) per turn, so
    the loop keeps answering everyone else while a million tasks are
    retried. Each turn's progress commits with the tasks it changed, so a
    job survives a broker restart and resumes where it stopped.

    A job by filter walks the filter's matches (task_filter.h) in creation
    order, from the oldest, up to the newest task when it was made (tasks
    created later are not its business). A task that cannot take the
    action (cancel: not pending, delayed, waiting or polling; retry: not
    failed or timeout; an id that names no task of the team) counts in
    failed. `matched` is the number of matches when the job was made
    (exact from the counters when they can say; else counted within the
    list budget, when `matchedExact` is false); when the job completes it
    becomes done + failed, the tasks the job met.

    Records: BK_DB_BULK id(16) -> packed job (keys in bulk.c), and
    BK_DB_BULK_RUNNING id(16) -> "" while it runs.
*/
#ifndef BK_BULK_H
#define BK_BULK_H

#include "engine.h"
#include "request.h"

#include <stdbool.h>

#define BK_BULK_TASKS  200   //  tasks a job acts on per turn at most
#define BK_BULK_BUDGET 20000 //  walk budget per turn (task_filter.c units, ~1 ms)
#define BK_BULK_IDS    1000  //  ids one job may name

typedef struct _bk_bulk_t bk_bulk_t;

//  The bulk jobs of engine's store; a retry ends a delivery's lease in
//  leases (bk_engine_retry). Caller destroys.
bk_bulk_t *bk_bulk_new (bk_engine_t *engine, bk_leases_t *leases);
void bk_bulk_destroy (bk_bulk_t **self_p);

//  Answers TASK_BULK (202 with the new job) and BULK_GET (200 with one of
//  the team's jobs, 404 "Bulk job not found"); req is authenticated.
void bk_bulk_command (bk_bulk_t *self, bk_req_t *req, int cmd);

//  A turn's share of the running jobs' work, in the turn's transaction:
//  one job's, until budget_us microseconds have passed (at least one task
//  is acted on, so every turn moves on).
void bk_bulk_run (bk_bulk_t *self, int64_t budget_us);
//  True while a job runs: the loop must not sleep.
bool bk_bulk_busy (bk_bulk_t *self);
//  Learns from the store whether a job runs (at start, and after a failed
//  commit, when memory may be ahead of the store). Inside a transaction.
void bk_bulk_recover (bk_bulk_t *self);

void bk_bulk_test (bool verbose);

#endif
