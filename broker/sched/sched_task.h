/*  sched_task.h - a scheduled task: the typed record, its store encoding, its public shape

    bk_sched_task_t holds the fields of seed 002 (snake_case, validated and
    defaulted from POST and PUT /tasks bodies here), the fields the server
    owns (status, times) and the bookkeeping of its fire times (anchor,
    delay-queue time, rrule cursor, a search going on). Strings and the
    payload live in the record's arena and go with it.

    The payload stays the msgpack map the client gave: its steps are
    POST /v1/tasks bodies, checked by the caller with bk_engine_build (which
    also sees tokens and providers) and built again when a run starts.

    Store encoding (bk_sched_task_encode/decode): a msgpack map with small
    integer keys (sched_task.c lists them), key 0 the record version
    BK_SCHED_TASK_RECORD. An added optional key is compatible; reshaping
    one is not. Layout version 1 stored the record as a JSON document
    packed as msgpack (the public fields, times as ms, bookkeeping under
    '_' names); the upgrade turns it into this record.
*/
#ifndef BK_SCHED_TASK_H
#define BK_SCHED_TASK_H

#include "../arena.h"
#include "../task.h"
#include "aq_msg.h"
#include "schedule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_SCHED_TASK_RECORD     2      //  the record's own version (layout 1 was JSON)
#define BK_SCHED_TASK_ERRLEN     400    //  size of the errbuf the functions fill
#define BK_SCHED_TASK_MAX_STEPS  50     //  steps of a pipeline
#define BK_SCHED_TASK_DEDUPE_S   300    //  dedupe_window_seconds when only a key is given
#define BK_SCHED_TASK_SNOOZE_MAX 604800 //  one week

typedef enum { BK_SCHED_ACTIVE = 1, BK_SCHED_PAUSED, BK_SCHED_CANCELED } bk_sched_status_t;

typedef struct {
    bk_arena_t *arena; //  owns every string and blob below
    uint8_t id[16];    //  UUIDv7
    uint8_t team[16];  //  owner
    //  the request (seed 002)
    char *title;           //  1..200 bytes
    char *description;     //  0..2000 bytes
    int kind;              //  bk_schedule_kind_t
    char *expr;            //  schedule_expr, NULL for an event task without one
    char *timezone;        //  an IANA name, "UTC" by default
    bk_blob_t payload;     //  the payload map as given
    char *created_by;      //  a UUID, as given
    int priority;          //  1 (highest) .. 9, default 5
    int max_retries;       //  0..10, default 3: retries of a failed run
    int backoff;           //  bk_backoff_t: BK_BACKOFF_JITTER, _LINEAR or _FIXED
    char *dedupe_key;      //  or NULL
    int dedupe_window_s;   //  1..2592000, -1 none
    char *concurrency_key; //  or NULL
    //  the server's
    int status;            //  bk_sched_status_t
    int64_t next_run_at;   //  ms, -1 none
    int64_t last_run_at;   //  ms, -1 none
    int64_t snoozed_until; //  ms, -1 none
    char *snooze_reason;   //  or NULL
    int64_t created_at;    //  ms
    int64_t updated_at;    //  ms
    //  bookkeeping
    int64_t anchor;              //  where an RRULE without DTSTART starts (ms)
    int64_t due;                 //  the fire time queued (BK_DELAY_SCHEDULE), -1 none
    bk_schedule_cursor_t cursor; //  how far the rrule searches got
    int64_t seek;                //  a search that ran out of work goes on after this, -1 none
    //  how the record stands in the store (schedules.c keeps these)
    bool stored;         //  it was read from (or written to) the store
    char *indexed_event; //  the event name it is indexed under there, or NULL
} bk_sched_task_t;

//  "active", "paused", "canceled"; NULL for another code.
const char *bk_sched_status_name (int status);
//  The status named by n bytes at name, or 0.
int bk_sched_status_parse (const char *name, size_t n);

//  A new empty record (no fields set, times -1) with an arena of arena_size.
bk_sched_task_t *bk_sched_task_new (size_t arena_size);
void bk_sched_task_destroy (bk_sched_task_t **self_p);
//  A copy, in an arena of its own (its store standing included).
bk_sched_task_t *bk_sched_task_dup (const bk_sched_task_t *self);

//  The store record, appended to w.
void bk_sched_task_encode (const bk_sched_task_t *self, aq_writer_t *w);
//  A record from its store bytes; NULL when they are not a record of a
//  version this build reads.
bk_sched_task_t *bk_sched_task_decode (const uint8_t *data, size_t size);
//  The public shape, appended to w as a map: the seed's snake_case fields
//  in the seed's order, times ISO 8601, null where unset.
void bk_sched_task_write_public (const bk_sched_task_t *self, aq_writer_t *w);

//  A POST /tasks body (old NULL) or a PUT body over old: a new record with
//  the request's fields (checked whole, in the seed's order, defaults
//  filled in) and, for a PUT, everything else of old; NULL with the API
//  error in errbuf (BK_SCHED_TASK_ERRLEN bytes). request NULL: none given.
bk_sched_task_t *bk_sched_task_from_request (const aq_node_t *request, const bk_sched_task_t *old,
                                             char *errbuf);

//  The step templates of a validated payload: payload.steps, or the bare
//  template as one step. Calls fn for each (a map) with its index; stops
//  when fn returns non-zero and returns that. bare says which form it is.
typedef int (bk_sched_step_fn) (void *arg, int index, const aq_node_t *step);
int bk_sched_task_each_step (const bk_blob_t *payload, bk_sched_step_fn *fn, void *arg, bool *bare);
//  The step templates as one msgpack array (payload.steps, or [payload]),
//  appended to w; returns how many.
int bk_sched_task_write_steps (const bk_blob_t *payload, aq_writer_t *w);

//  The scheduled-task priority (1 highest .. 9) as a /v1/tasks priority
//  (1 .. 10, higher first): 10 - priority, so the default 5 stays 5.
int bk_sched_task_queue_priority (int priority);

//  A snooze body (request NULL: none given): 0 with *seconds and *reason
//  (the reason string, borrowing request, or nil when none), or -1 with
//  the API error in errbuf.
int bk_sched_task_snooze (const aq_node_t *request, int64_t *seconds, aq_node_t *reason,
                          char *errbuf);

//  Checks every key of map is one of known (NULL-terminated). Returns
//  NULL, or errbuf holding "Unknown field: <name>" (the API's message).
const char *bk_sched_task_unknown_field (const aq_node_t *map, const char *const known[],
                                         char *errbuf, size_t size);

void bk_sched_task_test (bool verbose);

#endif
