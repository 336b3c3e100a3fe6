/*  scheduler.h - scheduled tasks (/tasks): commands, fire times, runs

    A scheduled task's next fire time is one item in the delay queue
    (BK_DELAY_SCHEDULE), so an idle schedule costs no memory and no work.
    When it fires, a run starts: a pipeline of /v1/tasks tasks (steps) run
    one after the other, each carrying scheduleId, runId and step. A step
    that ends other than completed fails the run; the run is retried from
    that step up to max_retries times after a back-off (BK_DELAY_RUN).
    Missed fire times coalesce: after a restart or a resume a schedule runs
    once, then continues from the current time. dedupe_key skips a run
    when one with the key started within the window; concurrency_key makes
    a run wait while another run holding the key is unfinished.

    Everything happens inside the broker's turn and transaction, so a run,
    its first step task and the next fire time are stored together.
*/
#ifndef BK_SCHEDULER_H
#define BK_SCHEDULER_H

#include "broker_int.h"

//  Answers one of the SCHEDULE_* and EVENT_FIRE client commands; the
//  caller has authenticated the key (read or write as the command needs).
void bk_scheduler_command (bk_broker_t *self, bk_req_t *req, int cmd);

//  A delay-queue item of kind BK_DELAY_SCHEDULE (schedule id) or
//  BK_DELAY_RUN (run id) fell due.
void bk_scheduler_due (bk_broker_t *self, int kind, const uint8_t id[16], int64_t due);

//  A step task (a task with "runId") reached a terminal status: advance,
//  retry or finish its run. task is the task's record as it will be saved.
void bk_scheduler_step_done (bk_broker_t *self, const json_t *task);

#endif
