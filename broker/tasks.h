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
#include "task.h"

#include <stdbool.h>
#include <stdint.h>

//  The task stored under id, or NULL (absent, or unreadable). Caller destroys.
bk_task_t *bk_tasks_get (bk_store_t *store, const uint8_t id[16]);
//  Writes a task. old_status is the status stored before (0 for a new
//  task); indexes and counters follow the change. 0 or a store error.
int bk_tasks_save (bk_store_t *store, const bk_task_t *task, int old_status);

//  Writes one page of a team's tasks (newest first unless ascending;
//  status 0 for all) to w as an array of public tasks: limit of them, or
//  fewer once they take BK_PAGE_BYTES (request.h). Sets *total to the
//  count matching and returns how many were written.
size_t bk_tasks_write_page (bk_store_t *store, const uint8_t team[16], int status, int limit,
                            int offset, bool ascending, aq_writer_t *w, uint64_t *total);
//  Number of tasks in a status (0: all), for one team or (team NULL) all.
uint64_t bk_tasks_count (bk_store_t *store, const uint8_t *team, int status);
//  Every task id currently in a status, across teams (startup recovery).
//  Calls fn for each; stops early when fn returns non-zero.
void bk_tasks_each_in_status (bk_store_t *store, int status,
                              int (*fn) (void *arg, const uint8_t id[16]), void *arg);

//  One attempt of a task's call, as GET /v1/tasks/:id/attempts lists it.
typedef struct {
    int attempt;             //  its number, from 1
    int64_t started_at;      //  ms
    int64_t duration;        //  ms
    int status_code;         //  the answer's status, -1 when there was none
    const char *error;       //  why there was none (or NULL)
    const uint8_t *trace_id; //  the task's trace (16 bytes), or NULL
    const uint8_t *span;     //  the attempt's span in it (8 bytes), or NULL
} bk_attempt_t;

//  Appends attempt number n of task id. 0 or a store error.
int bk_tasks_add_attempt (bk_store_t *store, const uint8_t id[16], const bk_attempt_t *attempt);
//  Writes every attempt of task id to w as an array of public attempts.
void bk_tasks_write_attempts (bk_store_t *store, const uint8_t id[16], aq_writer_t *w);

void bk_tasks_test (bool verbose);

#endif
