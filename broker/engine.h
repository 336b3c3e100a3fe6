/*  engine.h - the task state machine: every change of a task's status

    The engine holds what a turn works with (the store, the ready queue,
    the waiters, the outbox, the clock, the counters) and makes each status
    change of a task: created, ready, delayed, processing, waiting,
    polling, and the four ends. A change is saved with the record's
    indexes, then announced: an EVENT under the team's topic and the
    answer of any long poll waiting on the task. Nothing here touches a
    socket of its own; replies and events go through the outbox.

    The broker's task modules (dispatch, results, handlers) work on the
    engine's fields; the schedule engine (sched/) uses only the functions
    marked "for sched/".
*/
#ifndef BK_ENGINE_H
#define BK_ENGINE_H

#include "broker.h"
#include "flow.h"
#include "lease.h"
#include "loader.h"
#include "outbox.h"
#include "queue.h"
#include "store.h"
#include "task.h"
#include "minutes.h"
#include "tasks.h"
#include "waiters.h"

#include <stdbool.h>
#include <stdint.h>

#define BK_LATENCY_BUCKETS 12 //  attempt latency histogram buckets (engine.c lists them)

typedef struct {
    uint64_t created, dispatched, completed, failed, retried; //  tasks
    uint64_t malformed;                                       //  messages refused as malformed
    uint64_t lost;                                            //  attempts lost with their worker
    uint64_t dropped;                                         //  stale results, failed sends
    uint64_t refused_results;             //  results from a worker that does not hold the lease
    uint64_t latency[BK_LATENCY_BUCKETS]; //  attempts by duration bucket
    uint64_t latency_sum_ms;              //  their total duration
} bk_stats_t;

typedef struct _bk_engine_t bk_engine_t;

//  Called for a delay-queue item of a kind the engine does not own
//  (BK_DELAY_SCHEDULE, BK_DELAY_RUN), and when a step of a scheduled run
//  (a task with in_run) reaches a terminal status.
typedef void (bk_engine_due_fn) (void *arg, int kind, const uint8_t id[16], int64_t due);
typedef void (bk_engine_step_fn) (void *arg, const bk_task_t *task);

struct _bk_engine_t {
    const bk_config_t *cfg;         //  borrowed
    bk_store_t *store;              //  borrowed: the loop opens and commits it
    bk_queue_t *queue;              //  owned: the ready queue
    bk_flow_t *flow;                //  owned: flow control keys (their parked tasks)
    bk_waiters_t *waiters;          //  owned: held long polls
    bk_outbox_t *outbox;            //  borrowed: replies and events
    aq_plugin_loader_t *plugins;    //  borrowed: provider names, the vault
    const aq_plugin_vault_t *vault; //  borrowed, NULL without one
    uint8_t events_key[32];         //  keys each team's events topic
    int64_t now;                    //  wall ms of this turn
    int64_t mono;                   //  monotonic ms of this turn
    uint64_t seq;                   //  last creation sequence used
    int64_t last_created;           //  createdAt of the newest task (the next is not older)
    int64_t next_due;               //  earliest delay-queue time, INT64_MAX if none known
    bk_stats_t stats;               //  counters since start
    bk_minutes_t *minutes;          //  owned: the teams' last hour, minute by minute
    bk_engine_due_fn *due_hook;     //  sched/'s timers
    bk_engine_step_fn *step_hook;   //  sched/'s step ends
    void *hook_arg;                 //  their argument
};

//  A new engine over store; seq continues the store's (BK_DB_META "seq").
bk_engine_t *bk_engine_new (const bk_config_t *cfg, bk_store_t *store, bk_outbox_t *outbox,
                            aq_plugin_loader_t *plugins);
void bk_engine_destroy (bk_engine_t **self_p);
//  Sets this turn's clock (wall and monotonic ms).
void bk_engine_clock (bk_engine_t *self, int64_t now, int64_t mono);

//  ---- for sched/ -------------------------------------------------------

//  A new task from a POST /v1/tasks body for team, checked as that
//  endpoint checks it (fields, the team's tokens, the provider): it has
//  its id and team, status pending or delayed, and is not stored yet. NULL
//  with the API error in errbuf otherwise.
bk_task_t *bk_engine_build (bk_engine_t *self, const uint8_t team[16], const aq_node_t *request,
                            char *errbuf, size_t size);
//  Stores a built task and queues it (ready or delayed). Its seq is the
//  next creation sequence and its createdAt at least the last task's:
//  creation order and createdAt agree even when the wall clock steps
//  back, which lets a createdAfter/createdBefore filter find its range by
//  seq (task_filter.h). Its flowControl limits become its key's. 0 or a
//  store error.
int bk_engine_insert (bk_engine_t *self, bk_task_t *task);
//  Puts an item in the delay queue and wakes the loop in time for it.
int bk_engine_timer (bk_engine_t *self, int64_t due, int kind, const uint8_t id[16]);
//  The clock and the retry settings, for schedules and runs.
int64_t bk_engine_now (const bk_engine_t *self);
int64_t bk_engine_backoff_ms (const bk_engine_t *self, int strategy, int n);
bk_store_t *bk_engine_store (bk_engine_t *self);
//  Registers sched/'s hooks (see above).
void bk_engine_hooks (bk_engine_t *self, bk_engine_due_fn *due, bk_engine_step_fn *step, void *arg);

//  ---- for the task modules ------------------------------------------------

//  The stored task, or NULL. Caller destroys.
bk_task_t *bk_engine_load (bk_engine_t *self, const uint8_t id[16]);
//  Persists a task whose stored status was old_status and announces a
//  status change (event, waiters); its flow control key counts it in or
//  out of flight. 0 or a store error.
int bk_engine_save (bk_engine_t *self, bk_task_t *task, int old_status);
//  Status pending, in the ready queue (a task of a flow control key whose
//  limits hold it back is parked by its key instead). 0 or a store error.
int bk_engine_ready (bk_engine_t *self, bk_task_t *task);
//  Status delayed until due (ms). 0 or a store error.
int bk_engine_delay (bk_engine_t *self, bk_task_t *task, int64_t due);
//  Into the ready queue whatever its status, for a request other than its
//  call (a poll, an onCompleteUrl delivery): dispatch decides from the
//  record what the JOB is.
void bk_engine_enqueue (bk_engine_t *self, bk_task_t *task);
//  Ends a task: status (a terminal one), completedAt, the error (NULL
//  keeps none), the onCompleteUrl delivery owed, the run's step hook.
void bk_engine_finish (bk_engine_t *self, bk_task_t *task, int status, const char *error);
//  What bk_engine_cancel and bk_engine_retry return when the task's
//  status does not allow it (a store error is negative).
#define BK_ENGINE_REFUSED 1
//  Cancels a pending, delayed, waiting or polling task and saves it:
//  0, BK_ENGINE_REFUSED (any other status; nothing changed) or a store
//  error. A polling task's provider job is cancelled too.
int bk_engine_cancel (bk_engine_t *self, bk_task_t *task);
//  Replays a failed or timed-out task (a new attempt series: status
//  pending, retryCount 0, error, result, completedAt and onComplete
//  cleared) and saves it: 0, BK_ENGINE_REFUSED or a store error. An
//  onCompleteUrl delivery still out ends its lease in leases (NULL: none
//  kept), so the worker's slot is free at once.
int bk_engine_retry (bk_engine_t *self, bk_task_t *task, bk_leases_t *leases);
//  An attempt ended without a usable answer: retry after the back-off
//  (or at once with requeue_now), or fail when retries are used up or
//  permanent. retry_after_ms >= 0 is the target's Retry-After.
int bk_engine_attempt_failed (bk_engine_t *self, bk_task_t *task, const char *error, bool permanent,
                              int64_t retry_after_ms, bool requeue_now);
//  Records the current attempt (its duration, status code or error).
void bk_engine_record_attempt (bk_engine_t *self, bk_task_t *task, int64_t duration,
                               int status_code, const char *error);
//  An onCompleteUrl delivery (task->notify.attempt) answered status_code
//  (-1: none, then error says why): record it in onComplete, retry with
//  back-off up to 4 tries unless permanent, or give up. The caller saves.
void bk_engine_delivery (bk_engine_t *self, bk_task_t *task, int status_code, const char *error,
                         bool permanent);
//  A polling task's next request after ms (status or result URL, as
//  task->poll.stage says), through the delay queue.
void bk_engine_poll_later (bk_engine_t *self, bk_task_t *task, int64_t ms);
//  A polling task that ends before its job (cancel, timeout): the
//  provider's cancel request is owed (dispatch sends it when a worker is
//  free), and no poll answer counts any more (the one in flight still ends
//  its lease).
void bk_engine_cancel_job (bk_engine_t *self, bk_task_t *task);
//  The maxWaitTime timer of a waiting or polling task: set from now, or
//  cleared.
void bk_engine_set_deadline (bk_engine_t *self, bk_task_t *task);
void bk_engine_clear_deadline (bk_engine_t *self, bk_task_t *task);
//  Moves every due delay-queue item: delayed tasks become ready, polls and
//  deliveries are queued, deadlines end tasks (timeout), sched/'s items go
//  to its hook. Bounded per turn.
void bk_engine_promote_due (bk_engine_t *self);
//  The team's events topic "<team id>.<32 hex digits>" into topic.
char *bk_engine_topic (const bk_engine_t *self, const char *team, char topic[80]);

void bk_engine_test (bool verbose);

#endif
