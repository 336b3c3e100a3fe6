/*  schedules.h - scheduled tasks and their runs in the store, with indexes

    Keeps BK_DB_SCHEDULES, BK_DB_TEAM_SCHEDULES and BK_DB_EVENT_NAMES
    consistent (every change goes through bk_schedules_save with the record
    as it was before), and BK_DB_RUNS with BK_DB_SCHEDULE_RUNS. Records are
    JSON documents: the public snake_case fields, times as ms integers, and
    bookkeeping fields starting with '_'. Ids are UUIDv7, so a team's
    schedules and a schedule's runs are kept in creation order for free.
    BK_DB_RUN_KEYS holds the dedupe and concurrency keys of runs.
    Calls run inside the caller's transaction.
*/
#ifndef BK_SCHEDULES_H
#define BK_SCHEDULES_H

#include "store.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BK_RUNS_KEPT 1000 //  runs kept per schedule: older ones are dropped

//  Raw id and team of a schedule or run record ("id" and "team_id"). 0 or -1.
int bk_schedules_ids (const json_t *record, uint8_t id[16], uint8_t team[16]);

//  The record of a schedule, or NULL. New reference.
json_t *bk_schedules_get (bk_store_t *store, const uint8_t id[16]);
//  Writes a schedule; old is the record as stored before (NULL when new),
//  so the team and event-name indexes follow. 0 or a store error.
int bk_schedules_save (bk_store_t *store, const json_t *record, const json_t *old);
//  One page of a team's schedules, newest first, filtered by status,
//  schedule_kind and created_by (each NULL for any). Sets *total to the
//  number matching. Returns an array of records.
json_t *bk_schedules_list (bk_store_t *store, const uint8_t team[16], const char *status,
                           const char *kind, const char *created_by, int limit, int offset,
                           uint64_t *total);
//  Every event schedule of the team named name that is not canceled, as an
//  array of records (paused ones included: the caller decides).
json_t *bk_schedules_by_event (bk_store_t *store, const uint8_t team[16], const char *name);

//  Runs: "id", "task_id" (the schedule) and "team_id" identify them.
json_t *bk_runs_get (bk_store_t *store, const uint8_t id[16]);
//  Writes a run; is_new indexes it under its schedule and drops the
//  schedule's oldest runs beyond BK_RUNS_KEPT.
int bk_runs_save (bk_store_t *store, const json_t *run, bool is_new);
//  One page of a schedule's runs, newest first; *total as for schedules.
json_t *bk_runs_list (bk_store_t *store, const uint8_t schedule[16], int limit, int offset,
                      uint64_t *total);

//  Run keys of a team. Dedupe: the start time (ms) of the last run that
//  held the key, or -1. Concurrency: {"running": run id, "waiting": [run
//  ids]}, or NULL (new reference); NULL record deletes it.
int64_t bk_runkeys_dedupe (bk_store_t *store, const uint8_t team[16], const char *key);
int bk_runkeys_set_dedupe (bk_store_t *store, const uint8_t team[16], const char *key, int64_t ms);
json_t *bk_runkeys_concurrency (bk_store_t *store, const uint8_t team[16], const char *key);
int bk_runkeys_set_concurrency (bk_store_t *store, const uint8_t team[16], const char *key,
                                const json_t *record);

//  The public shape of a schedule or run record: no '_' fields, times
//  (fields ending in "_at" or "_until") as ISO 8601. New reference.
json_t *bk_schedules_public (const json_t *record);

void bk_schedules_test (bool verbose);

#endif
