/*  jobs.h - the JOBs a task sends a worker: its call, polls, deliveries, cancels

    Each writes a JOB's body (a map) into a writer: the URL, method and
    headers to send, with token-vault references replaced by their values,
    Standard Webhooks signature headers (webhook-id is the task id, the same
    on every attempt, so a target can de-duplicate; "<id>.complete" for an
    onCompleteUrl delivery), and a one-time lease token (the RESULT must
    echo it). The call also carries the one-time AsyncQueue-Signal-Token a
    waiting target signals with; polls and cancels never do, and send only
    the headers the provider asks for (a pollConfig's polls send the task's
    headers). The task keeps the hashes and tokens these imply.
*/
#ifndef BK_JOBS_H
#define BK_JOBS_H

#include "aq_msg.h"
#include "loader.h"
#include "store.h"
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  What every JOB needs besides its task.
typedef struct {
    bk_store_t *store;              //  the token records
    const aq_plugin_vault_t *vault; //  opens them; NULL: tokens cannot be used
    const char *whsec;              //  the team's signing secret, NULL: unsigned
    int64_t now;                    //  wall ms (the signature's timestamp)
    int max_body;                   //  bytes of a response body a worker returns
} bk_job_ctx_t;

//  The task's call, attempt task->attempts: sets task->lease and
//  task->signal. 0, or -1 with the task's error in error (a token the
//  headers name is gone: the task fails, no retry).
int bk_jobs_call (const bk_job_ctx_t *ctx, bk_task_t *task, aq_writer_t *w, char *error,
                  size_t size);
//  A polling task's next request (status or result URL), number
//  task->poll.seq; poll_headers lists the header names the provider lets
//  polls carry (NULL: the task's own headers, for a pollConfig). Sets
//  task->poll.lease. 0 or -1 as for the call.
int bk_jobs_poll (const bk_job_ctx_t *ctx, bk_task_t *task, const char *const *poll_headers,
                  aq_writer_t *w, char *error, size_t size);
//  The onCompleteUrl delivery number task->notify.attempt: the task as GET
//  /v1/tasks/:id returns it, as JSON. Sets task->notify.lease.
void bk_jobs_notify (const bk_job_ctx_t *ctx, bk_task_t *task, aq_writer_t *w);
//  The provider's cancel request (fire and forget: no lease).
int bk_jobs_cancel (const bk_job_ctx_t *ctx, const bk_task_t *task, const char *const *poll_headers,
                    aq_writer_t *w);

//  The size a JOB may have: what a worker's socket accepts, less room for
//  the frame's own header.
#define BK_JOBS_MAX (AQ_PROTO_MAX_MSG - 1024)

void bk_jobs_test (bool verbose);

#endif
