/*  runs.h - runs of scheduled tasks: their steps as /v1/tasks tasks, their ends, their retries

    A run starts from its scheduled task (a fire, run_now or an event),
    unless its dedupe key skips it or its concurrency key makes it wait for
    the run holding the key. Each step is a task made from its template by
    the task engine (bk_engine_build, then bk_engine_insert) with
    scheduleId, runId and step set; the engine calls back when such a task
    ends (bk_runs_step_done). A completed step starts the next; another end
    fails the run, or retries it from that step after the back-off
    (BK_DELAY_RUN, bk_runs_due) while max_retries allow; a cancelled step
    fails it for good. A run that ends passes its concurrency key on.

    An event run's step whose template has no body is sent the event's
    data as its JSON body (aq_json_dumps: jansson's compact text), with
    Content-Type application/json unless the template's headers say.

    Everything runs inside the broker's turn and transaction.
*/
#ifndef BK_RUNS_H
#define BK_RUNS_H

#include "../engine.h"
#include "sched_run.h"
#include "sched_task.h"

#include <stdbool.h>
#include <stdint.h>

//  Starts a run of record (trigger: bk_run_trigger_t; scheduled_at: the
//  fire time it is for, -1 none; event_name NULL but for an event run,
//  event_data then its data or NULL) and stores it. Returns the run
//  (caller destroys) or NULL on a store error.
bk_sched_run_t *bk_runs_start (bk_engine_t *engine, const bk_sched_task_t *record, int trigger,
                               int64_t scheduled_at, const char *event_name,
                               const aq_node_t *event_data);

//  A step task (task->in_run) reached a terminal status: advance, retry or
//  finish its run. task is the task as it will be saved.
void bk_runs_step_done (bk_engine_t *engine, const bk_task_t *task);

//  The BK_DELAY_RUN item (id, due) fell due: a retrying run starts again
//  from its failed step, if the item is still the one it waits for.
void bk_runs_due (bk_engine_t *engine, const uint8_t id[16], int64_t due);

void bk_runs_test (bool verbose);

#endif
