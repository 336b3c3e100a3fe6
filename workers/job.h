/*  job.h - a JOB's fields where they lie in its frame, and what a RESULT
    echoes of it

    Views, nothing copied: a wk_job_t and a wk_echo_t borrow the frame the
    JOB came in (aq_msg.h) and live no longer than it.
*/
#ifndef WK_JOB_H
#define WK_JOB_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  A JOB's fields; a node's type is 0 when the JOB does not have it.
typedef struct {
    aq_node_t id, attempt, url, method, headers, body, timeout, max_body, kind, lease;
} wk_job_t;

//  What a RESULT echoes of its JOB.
typedef struct {
    const char *id;    //  the task id ("" when the JOB had none)
    size_t id_size;    //  its bytes
    int64_t attempt;   //  the JOB's attempt (0 when it had none)
    const char *kind;  //  the JOB's kind, or NULL
    size_t kind_size;  //  its bytes
    const char *lease; //  the JOB's lease, or NULL
    size_t lease_size; //  its bytes
} wk_echo_t;

//  Fills job from a JOB body (a map); of repeated keys the last counts,
//  unknown keys are ignored.
void wk_job_read (const aq_node_t *body, wk_job_t *job);

//  What a RESULT of job echoes: its id and attempt, and kind and lease
//  when they are strings. Borrows the job's frame.
wk_echo_t wk_job_echo (const wk_job_t *job);

void wk_job_test (bool verbose);

#endif
