/*  sched_run.h - a run of a scheduled task: the typed record, its store encoding, its public shape

    A run is one firing of a scheduled task: its pipeline's steps run one
    after the other, each a /v1/tasks task (runs.h makes them). The record
    keeps what the public run shows (seed 002: status, attempt, the step
    reached, times, the step tasks made) and what the run took from its
    scheduled task when it started (the step templates, priority, retries,
    back-off, concurrency key), so a later PUT does not change a run under
    way. An event run keeps the event ({name, data}; data stays the msgpack
    the client gave).

    Store encoding (bk_sched_run_encode/decode): a msgpack map with small
    integer keys (sched_run.c lists them), key 0 the record version
    BK_SCHED_RUN_RECORD. Layout version 1 stored a JSON document packed as
    msgpack; the upgrade turns it into this record.
*/
#ifndef BK_SCHED_RUN_H
#define BK_SCHED_RUN_H

#include "../arena.h"
#include "../task.h"
#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_SCHED_RUN_RECORD 2 //  the record's own version (layout 1 was JSON)

typedef enum {
    BK_RUN_PENDING = 1, //  about to start
    BK_RUN_WAITING,     //  for its concurrency key
    BK_RUN_RUNNING,     //  a step task is under way
    BK_RUN_RETRYING,    //  a step failed: it starts again from it at next_attempt_at
    BK_RUN_COMPLETED,
    BK_RUN_FAILED,
    BK_RUN_SKIPPED, //  deduplicated: never started
    BK_RUN_STATUSES
} bk_run_status_t;

typedef enum {
    BK_TRIGGER_SCHEDULE = 1, //  a fire time
    BK_TRIGGER_RUN_NOW,
    BK_TRIGGER_EVENT,
    BK_TRIGGERS
} bk_run_trigger_t;

//  A step task the run made.
typedef struct {
    int step;         //  its index in the pipeline
    uint8_t task[16]; //  the /v1/tasks task's id
    int status;       //  that task's status (bk_status_t) as the run last saw it
} bk_run_step_t;

typedef struct {
    bk_arena_t *arena;       //  owns every string, blob and the steps below
    uint8_t id[16];          //  UUIDv7 (a step task's runId)
    uint8_t schedule[16];    //  the scheduled task (public task_id)
    uint8_t team[16];        //  its team
    int trigger;             //  bk_run_trigger_t
    int status;              //  bk_run_status_t
    int attempt;             //  1, then 2 for the first retry ...
    int step;                //  the current step's index, or the last one reached
    int steps_total;         //  steps in the pipeline
    int64_t scheduled_at;    //  the fire time it is for (ms), -1 for run_now and event runs
    int64_t started_at;      //  its first step task made, -1
    int64_t finished_at;     //  -1
    int64_t next_attempt_at; //  while retrying, -1
    char *error;             //  why it failed, "deduplicated", or NULL
    bk_run_step_t *steps;    //  the step tasks made, in order
    size_t nsteps;           //  how many
    size_t steps_room;       //  room in steps
    bool has_event;          //  an event run: the two below are set
    char *event_name;        //  the event's name
    bk_blob_t event_data;    //  its data (nil when none was given)
    //  taken from the scheduled task when the run began
    bk_blob_t templates;   //  the step templates: a msgpack array of maps
    int priority;          //  the scheduled task's priority (1..9)
    int max_retries;       //  retries of the run
    int backoff;           //  bk_backoff_t between them
    char *concurrency_key; //  or NULL
    int64_t due;           //  the retry's delay-queue time (BK_DELAY_RUN), -1
} bk_sched_run_t;

//  "pending" ... "skipped"; NULL for another code.
const char *bk_run_status_name (int status);
//  "schedule", "run_now", "event"; NULL for another code.
const char *bk_run_trigger_name (int trigger);

//  A new empty run (times -1, attempt 1) with an arena of arena_size.
bk_sched_run_t *bk_sched_run_new (size_t arena_size);
void bk_sched_run_destroy (bk_sched_run_t **self_p);

//  Appends a step task (its index, id and status) to the run's steps.
void bk_sched_run_add_step (bk_sched_run_t *self, int step, const uint8_t task[16], int status);
//  The entry of the step task id, or NULL.
bk_run_step_t *bk_sched_run_find_step (bk_sched_run_t *self, const uint8_t task[16]);
//  Sets error to a copy of text (NULL: none).
void bk_sched_run_set_error (bk_sched_run_t *self, const char *text);

//  The store record, appended to w.
void bk_sched_run_encode (const bk_sched_run_t *self, aq_writer_t *w);
//  A run from its store bytes; NULL when they are not a run record of a
//  version this build reads.
bk_sched_run_t *bk_sched_run_decode (const uint8_t *data, size_t size);
//  The public shape, appended to w as a map: {id, task_id, team_id,
//  trigger, status, attempt, step, steps_total, scheduled_at, started_at,
//  finished_at, next_attempt_at, error, steps: [{step, task_id, status}],
//  event?}, times ISO 8601, null where unset.
void bk_sched_run_write_public (const bk_sched_run_t *self, aq_writer_t *w);

void bk_sched_run_test (bool verbose);

#endif
