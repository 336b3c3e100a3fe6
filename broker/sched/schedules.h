/*  schedules.h - scheduled tasks and their runs in the store, with indexes

    Keeps BK_DB_SCHEDULES, BK_DB_TEAM_SCHEDULES and BK_DB_EVENT_NAMES
    consistent (every change goes through bk_schedules_save, which knows
    how the record stands in the store), and BK_DB_RUNS with
    BK_DB_SCHEDULE_RUNS. Ids are UUIDv7, so a team's schedules and a
    schedule's runs are kept in creation order for free.

    BK_DB_RUN_KEYS holds the team's run keys, each a versioned msgpack
    record (BK_RUNKEY_RECORD, key 0 the version): a dedupe key's
    {1: start ms of the last run that held it}, and a concurrency key's
    {1: the run holding it (16 bytes), 2: the runs waiting for it, in
    order (an array of 16-byte ids)}; a concurrency key nobody holds has
    no record. Layout version 1 kept a dedupe key as 8 raw bytes (int64,
    host order) and a concurrency key as JSON {"running": id text,
    "waiting": [id text, ...]} packed as msgpack.

    Calls run inside the caller's transaction.
*/
#ifndef BK_SCHEDULES_H
#define BK_SCHEDULES_H

#include "../store.h"
#include "aq_msg.h"
#include "sched_run.h"
#include "sched_task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_RUNS_KEPT     1000 //  runs kept per schedule: older ones are dropped
#define BK_RUNKEY_RECORD 2    //  the run keys' record version (layout 1: raw bytes, JSON)

//  The schedule stored under id, or NULL (absent, or unreadable); it knows
//  how it stands in the store. Caller destroys.
bk_sched_task_t *bk_schedules_get (bk_store_t *store, const uint8_t id[16]);
//  Writes a schedule, new or read with bk_schedules_get (or a copy or
//  change of one), and moves its team and event-name index entries with
//  it. 0 or a store error.
int bk_schedules_save (bk_store_t *store, bk_sched_task_t *record);

//  Which schedules a list shows: each field "any" when 0, -1 or NULL.
typedef struct {
    int status;             //  bk_sched_status_t, 0 any
    int kind;               //  bk_schedule_kind_t, -1 any
    const char *created_by; //  exactly this text, NULL any
} bk_schedules_filter_t;

//  Writes one page of a team's schedules, newest first, to w as an array
//  of public shapes: limit of them, or fewer once they take BK_PAGE_BYTES
//  (request.h). Sets *total to the number matching; returns how many were
//  written.
size_t bk_schedules_write_page (bk_store_t *store, const uint8_t team[16],
                                const bk_schedules_filter_t *filter, int limit, int offset,
                                aq_writer_t *w, uint64_t *total);
//  The ids of every event schedule of the team named name that is not
//  canceled (paused ones included: the caller decides), 16 bytes each, in
//  a malloc'd array (caller frees; NULL when there are none). Sets *count.
uint8_t *bk_schedules_by_event (bk_store_t *store, const uint8_t team[16], const char *name,
                                size_t *count);

//  The run stored under id, or NULL. Caller destroys.
bk_sched_run_t *bk_schedules_run (bk_store_t *store, const uint8_t id[16]);
//  Writes a run; is_new indexes it under its schedule and drops the
//  schedule's oldest runs beyond BK_RUNS_KEPT. 0 or a store error.
int bk_schedules_save_run (bk_store_t *store, const bk_sched_run_t *run, bool is_new);
//  Writes one page of a schedule's runs, newest first, to w as an array
//  of public shapes; *total and the result as for schedules.
size_t bk_schedules_write_runs (bk_store_t *store, const uint8_t schedule[16], int limit,
                                int offset, aq_writer_t *w, uint64_t *total);

//  A dedupe key of a team: the start time (ms) of the last run that held
//  it, or -1; and setting it. 0 or a store error.
int64_t bk_schedules_dedupe (bk_store_t *store, const uint8_t team[16], const char *key);
int bk_schedules_set_dedupe (bk_store_t *store, const uint8_t team[16], const char *key,
                             int64_t ms);
//  A run key's store record, appended to w: a dedupe key's (ms, the start
//  time of the last run that held it), and a concurrency key's (its
//  holder, then the n runs waiting for it, in order, 16 bytes each at
//  waiting). The functions around them write these; the upgrade from
//  layout 1 (upgrade_sched.c) too.
void bk_schedules_dedupe_encode (int64_t ms, aq_writer_t *w);
void bk_schedules_key_encode (const uint8_t holder[16], const uint8_t *waiting, size_t n,
                              aq_writer_t *w);
//  A concurrency key of a team: run takes it when nobody holds it (*holds
//  set), else queues behind the holder (*holds false). 0 or a store error.
int bk_schedules_key_take (bk_store_t *store, const uint8_t team[16], const char *key,
                           const uint8_t run[16], bool *holds);
//  run gives the key up, if it holds it: the first run queued that is
//  still waiting takes it (its id in next, *has_next set; the caller
//  starts it), or the key is free. 0 or a store error.
int bk_schedules_key_pass (bk_store_t *store, const uint8_t team[16], const char *key,
                           const uint8_t run[16], uint8_t next[16], bool *has_next);

void bk_schedules_test (bool verbose);

#endif
