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

    The scheduler talks to the task engine through engine.h's functions
    for sched/ only (build and insert a step task, timers, the clock) and
    hooks the engine calls back (a due timer of its kinds, a step's end).
    Everything happens inside the broker's turn and transaction, so a run,
    its first step task and the next fire time are stored together.
*/
#ifndef BK_SCHEDULER_H
#define BK_SCHEDULER_H

#include "../engine.h"
#include "../request.h"

#include <stdbool.h>

typedef struct _bk_scheduler_t bk_scheduler_t;

//  A scheduler over engine; registers its hooks with the engine.
bk_scheduler_t *bk_scheduler_new (bk_engine_t *engine);
void bk_scheduler_destroy (bk_scheduler_t **self_p);

//  Answers one of the SCHEDULE_* and EVENT_FIRE client commands; the
//  caller has authenticated the key (read or write as the command needs).
void bk_scheduler_command (bk_scheduler_t *self, bk_req_t *req, int cmd);

void bk_scheduler_test (bool verbose);

#endif
