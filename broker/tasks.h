/*  tasks.h - task records in the store, with their indexes and counters

    Keeps BK_DB_TASKS, BK_DB_TEAM_TASKS, BK_DB_TEAM_STATUS, BK_DB_COUNTS and
    BK_DB_ATTEMPTS consistent: every status change goes through bk_tasks_save
    with the status the record had before. Counters are kept per team and
    for all teams (team id all 0xFF); status 0 counts every task.
    Calls run inside the caller's transaction.
*/
#ifndef BK_TASKS_H
#define BK_TASKS_H

#include "store.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

//  Raw id and team of a record (parsed from "id" and "teamId"). 0 or -1.
int bk_tasks_ids (const json_t *task, uint8_t id[16], uint8_t team[16]);
uint64_t bk_tasks_seq (const json_t *task);

//  The record of a task, or NULL. New reference.
json_t *bk_tasks_get (bk_store_t *store, const uint8_t id[16]);
//  Writes a record. old_status is the status stored before (0 for a new
//  task); indexes and counters follow the change. 0 or a store error.
int bk_tasks_save (bk_store_t *store, const json_t *task, int old_status);

//  One page of a team's tasks, newest first unless ascending; status 0 for
//  all. Sets *total to the count matching. Returns an array of records.
json_t *bk_tasks_list (bk_store_t *store, const uint8_t team[16], int status, int limit, int offset,
                       bool ascending, uint64_t *total);
//  Number of tasks in a status (0: all), for one team or (team NULL) all.
uint64_t bk_tasks_count (bk_store_t *store, const uint8_t *team, int status);
//  Every task id currently in a status, across teams (startup recovery).
//  Calls fn for each; stops early when fn returns non-zero.
void bk_tasks_each_in_status (bk_store_t *store, int status,
                              int (*fn) (void *arg, const uint8_t id[16]), void *arg);

//  Attempt history: appends record number n, lists them all (public shape).
int bk_tasks_add_attempt (bk_store_t *store, const uint8_t id[16], int n, const json_t *attempt);
json_t *bk_tasks_attempts (bk_store_t *store, const uint8_t id[16]);

void bk_tasks_test (bool verbose);

#endif
