/*  sched_task.h - the scheduled task document: POST and PUT /tasks bodies

    Validates a request body in the seed's field order and builds the
    record's user fields with their defaults (priority 5, max_retries 3,
    backoff_strategy exponential_jitter, timezone UTC; optional fields
    null). The schedule itself is checked by schedule.h; each step
    template is a POST /v1/tasks body, checked by the broker, which can
    also see tokens and providers.
*/
#ifndef BK_SCHED_TASK_H
#define BK_SCHED_TASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BK_SCHED_TASK_ERRLEN     400    //  size of the errbuf the functions fill
#define BK_SCHED_TASK_MAX_STEPS  50     //  steps of a pipeline
#define BK_SCHED_TASK_DEDUPE_S   300    //  dedupe_window_seconds when only a key is given
#define BK_SCHED_TASK_SNOOZE_MAX 604800 //  one week

//  A POST /tasks body (old NULL) or a PUT body merged over old: a new
//  record holding the user fields, or NULL with the API error in errbuf.
//  Fields the server owns (id, status, times) are not touched.
json_t *bk_sched_task_from_request (const json_t *request, const json_t *old, char *errbuf);

//  The steps of a validated payload, as a new array: payload.steps, or
//  [payload] for a bare task template.
json_t *bk_sched_task_steps (const json_t *payload);

//  The scheduled-task priority (1 highest .. 9) as a /v1/tasks priority
//  (1 .. 10, higher first): 10 - priority, so the default 5 stays 5.
int bk_sched_task_queue_priority (int priority);

//  A snooze body: 0 with *seconds and *reason (borrowed, NULL if none),
//  or -1 with the API error in errbuf.
int bk_sched_task_snooze (const json_t *request, int64_t *seconds, const char **reason,
                          char *errbuf);

void bk_sched_task_test (bool verbose);

#endif
