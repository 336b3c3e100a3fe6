/*  dispatch.c - the ready queue to the workers: jobs, leases, heartbeats, recovery */
#include "dispatch.h"
#include "aq_log.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "delay.h"
#include "jobs.h"
#include "poll.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_NOTIFY_LEASE_MS 40000 //  a delivery's lease (its timeout is 30 s)
#define S_NOTIFY_WATCH_MS 45000 //  and its durable watchdog
#define S_POLL_GRACE_MS   10000 //  a poll's lease beyond its timeout
#define S_POLL_WATCH_MS   15000 //  and its watchdog's
#define S_PARK_MAX        2000  //  tasks parked by their flow key per turn, at most

struct _bk_dispatch_t {
    bk_engine_t *engine;       //  borrowed
    bk_keys_t *keys;           //  borrowed: signing secrets
    bk_providers_t *providers; //  borrowed: poll headers, may be NULL
    bk_leases_t *leases;       //  owned: workers and their leases
    aq_writer_t job;           //  the JOB being built
};

bk_dispatch_t *bk_dispatch_new (bk_engine_t *engine, bk_keys_t *keys, bk_providers_t *providers) {
    bk_dispatch_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    self->keys = keys;
    self->providers = providers;
    self->leases = bk_leases_new ();
    aq_writer_init (&self->job);
    return self;
}

void bk_dispatch_destroy (bk_dispatch_t **self_p) {
    assert (self_p);
    bk_dispatch_t *self = *self_p;
    if (!self)
        return;
    bk_leases_destroy (&self->leases);
    aq_writer_release (&self->job);
    free (self);
    *self_p = NULL;
}

bk_leases_t *bk_dispatch_leases (bk_dispatch_t *self) {
    return self->leases;
}

//  --------------------------------------------------------------------------
//  The worker dialog

static void s_to_worker (bk_dispatch_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                         int code, const char *reason) {
    aq_writer_t *w = bk_outbox_start (self->engine->outbox, AQ_CMD_ERROR);
    aq_write_map (w, 2);
    aq_write_kv_int (w, "code", code);
    aq_write_kv_str (w, "reason", reason);
    bk_outbox_queue (self->engine->outbox, socket, rid, rid_size);
}

int bk_dispatch_worker (bk_dispatch_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                        int cmd, const aq_node_t *body) {
    bk_engine_t *engine = self->engine;
    int index = bk_leases_worker (self->leases, socket, rid, rid_size, cmd == AQ_CMD_READY);
    bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
    if (worker)
        worker->last_seen = engine->mono;
    aq_node_t value;
    switch (cmd) {
    case AQ_CMD_READY: {
        int64_t credit = 0;
        if (aq_node_get (body, "credit", &value) && value.type == AQ_NODE_INT)
            credit = value.i < 0 ? 0 : value.i > 100000 ? 100000 : value.i;
        if (worker) {
            worker->credit = (int) credit;
            if (!aq_node_get (body, "name", &value) ||
                !aq_node_strcpy (&value, worker->name, sizeof worker->name))
                snprintf (worker->name, sizeof worker->name, "worker");
            aq_log (AQ_LOG_INFO, "broker", "worker '%s' ready with %d slots", worker->name,
                    worker->credit);
        }
        return index;
    }
    case AQ_CMD_RESULT:
    case AQ_CMD_HEARTBEAT:
        break;
    case AQ_CMD_BYE:
        if (worker) {
            aq_log (AQ_LOG_INFO, "broker", "worker '%s' left", worker->name);
            bk_leases_worker_remove (self->leases, index);
        }
        return -1;
    default:
        engine->stats.malformed++;
        s_to_worker (self, socket, rid, rid_size, AQ_BAD_REQUEST,
                     "unexpected command on the worker socket");
        return -1;
    }
    if (!worker) //  a result or heartbeat from before our restart: ask it in
        s_to_worker (self, socket, rid, rid_size, 410, "unknown worker: send READY");
    return index;
}

//  --------------------------------------------------------------------------
//  Dispatch

//  Sends the JOB in self->job to the worker at index. 0 when sent, 1 when
//  it is too large for any worker (error says so), -1 when the worker's
//  socket refused it (errno).
static int s_send (bk_dispatch_t *self, bk_worker_t *worker, char *error, size_t size) {
    size_t length;
    const uint8_t *data = aq_writer_data (&self->job, &length);
    if (!data) {
        errno = ENOMEM;
        return -1;
    }
    if (length > BK_JOBS_MAX) {
        snprintf (error, size, "job too large to send: %zu bytes (limit %d bytes)", length,
                  BK_JOBS_MAX);
        return 1;
    }
    if (zmq_send (worker->socket, worker->rid, worker->rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send (worker->socket, data, length, ZMQ_DONTWAIT) < 0)
        return -1; //  after a routed first frame the second cannot block (atomic)
    worker->last_sent = self->engine->mono;
    return 0;
}

//  Starts a JOB frame in self->job; returns the writer for its body.
static aq_writer_t *s_job (bk_dispatch_t *self) {
    aq_writer_reset (&self->job);
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION, AQ_CMD_JOB};
    aq_write_raw (&self->job, header, sizeof header);
    return &self->job;
}

static bk_job_ctx_t s_ctx (bk_dispatch_t *self, const bk_task_t *task) {
    bk_engine_t *engine = self->engine;
    return (bk_job_ctx_t){engine->store, engine->vault,
                          bk_keys_signing_secret (self->keys, task->team), engine->now,
                          engine->cfg->max_body};
}

//  The headers a poll or cancel may carry: a provider's own list (never
//  NULL: at least empty), or NULL for a pollConfig (the task's headers).
static const char *const *s_poll_headers (bk_dispatch_t *self, const bk_task_t *task) {
    return task->provider ? bk_providers_poll_headers (self->providers, task->provider) : NULL;
}

//  NULL when the URL a provider task's next request (which: BK_POLL_STATUS,
//  _RESULT or _CANCEL) goes to is one its provider may use, else why not.
static const char *s_url_refused (bk_dispatch_t *self, const bk_task_t *task, int which, char *buf,
                                  size_t size) {
    if (!task->provider)
        return NULL;
    const aq_plugin_provider_t *provider =
        aq_plugin_loader_provider (self->engine->plugins, task->provider);
    if (!provider)
        return "provider plugin is no longer loaded";
    return bk_poll_provider_url_error (provider, task, which, buf, size);
}

//  The worker's socket refused a JOB: forget the worker, put the task back.
static void s_refused (bk_dispatch_t *self, int index, bk_task_t *task) {
    bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
    aq_log (AQ_LOG_WARN, "broker", "cannot send a job to worker '%s': %s", worker->name,
            zmq_strerror (errno));
    bk_leases_worker_remove (self->leases, index);
    bk_engine_enqueue (self->engine, task);
}

static void s_cancel (bk_dispatch_t *self, int index, bk_task_t *task) {
    bk_job_ctx_t ctx = s_ctx (self, task);
    task->poll.cancel_owed = false;
    char error[400];
    const char *refused = s_url_refused (self, task, BK_POLL_CANCEL, error, sizeof error);
    if (refused) {
        char id[AQ_UUID_TEXT];
        aq_log (AQ_LOG_WARN, "broker", "not cancelling task '%s' at its provider: %s",
                aq_uuid_format (task->id, id), refused);
    }
    int sent =
        !refused && bk_jobs_cancel (&ctx, task, s_poll_headers (self, task), s_job (self)) == 0
            ? s_send (self, bk_leases_worker_at (self->leases, index), error, sizeof error)
            : 1;
    if (sent == 0)
        bk_leases_add (self->leases, index, task->id, 0, self->engine->mono + S_NOTIFY_LEASE_MS);
    else if (sent < 0) {
        task->poll.cancel_owed = true;
        s_refused (self, index, task);
        return;
    }
    if (task->notify.active && !task->notify.inflight && task->notify.due < 0)
        bk_engine_enqueue (self->engine, task); //  a delivery is owed too
    bk_engine_save (self->engine, task, task->status);
}

static void s_notify (bk_dispatch_t *self, int index, bk_task_t *task) {
    bk_engine_t *engine = self->engine;
    bk_job_ctx_t ctx = s_ctx (self, task);
    task->notify.attempt++;
    bk_jobs_notify (&ctx, task, s_job (self));
    char error[128];
    int sent = s_send (self, bk_leases_worker_at (self->leases, index), error, sizeof error);
    if (sent > 0) //  too large: this delivery fails for good
        bk_engine_delivery (engine, task, -1, error, true);
    else if (sent < 0) {
        task->notify.attempt--;
        s_refused (self, index, task);
        return;
    } else {
        task->notify.inflight = true;
        bk_leases_add (self->leases, index, task->id, task->notify.attempt,
                       engine->mono + S_NOTIFY_LEASE_MS);
        //  the delay queue outlives a restart where leases do not: if the
        //  answer has not come by then, the delivery is made again
        task->notify.due = engine->now + S_NOTIFY_WATCH_MS;
        bk_engine_timer (engine, task->notify.due, BK_DELAY_NOTIFY, task->id);
    }
    bk_engine_save (engine, task, task->status);
}

static void s_poll (bk_dispatch_t *self, int index, bk_task_t *task) {
    bk_engine_t *engine = self->engine;
    bk_job_ctx_t ctx = s_ctx (self, task);
    task->poll.seq++;
    char error[400];
    const char *refused = s_url_refused (
        self, task, task->poll.stage == BK_POLL_RESULT ? BK_POLL_RESULT : BK_POLL_STATUS, error,
        sizeof error);
    if (refused && refused != error)
        snprintf (error, sizeof error, "%s", refused);
    int sent = !refused && bk_jobs_poll (&ctx, task, s_poll_headers (self, task), s_job (self),
                                         error, sizeof error) == 0
                   ? s_send (self, bk_leases_worker_at (self->leases, index), error, sizeof error)
                   : 1;
    if (sent > 0) { //  no request, or one too large to send: no retry
        bk_engine_clear_deadline (engine, task);
        bk_engine_finish (engine, task, BK_ST_FAILED, error);
    } else if (sent < 0) {
        task->poll.seq--;
        s_refused (self, index, task);
        return;
    } else {
        task->poll.inflight = true;
        int64_t timeout = (int64_t) task->timeout_s * 1000;
        bk_leases_add (self->leases, index, task->id, task->poll.seq,
                       engine->mono + timeout + S_POLL_GRACE_MS);
        task->poll.due = engine->now + timeout + S_POLL_WATCH_MS;
        bk_engine_timer (engine, task->poll.due, BK_DELAY_POLL, task->id);
    }
    bk_engine_save (engine, task, BK_ST_POLLING);
}

static void s_call (bk_dispatch_t *self, int index, bk_task_t *task) {
    bk_engine_t *engine = self->engine;
    task->attempts++;
    task->attempt_at = engine->now;
    if (task->started_at < 0)
        task->started_at = engine->now;
    task->status = BK_ST_PROCESSING;
    bk_job_ctx_t ctx = s_ctx (self, task);
    char error[160];
    int sent = bk_jobs_call (&ctx, task, s_job (self), error, sizeof error) == 0
                   ? s_send (self, bk_leases_worker_at (self->leases, index), error, sizeof error)
                   : 1;
    if (sent > 0) { //  a token gone, or too large for any worker: fails, no retry
        bk_engine_record_attempt (engine, task, 0, -1, error);
        bk_engine_finish (engine, task, BK_ST_FAILED, error);
    } else if (sent < 0) {
        bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
        aq_log (AQ_LOG_WARN, "broker", "cannot send a job to worker '%s': %s", worker->name,
                zmq_strerror (errno));
        bk_leases_worker_remove (self->leases, index);
        bk_task_t *again = bk_engine_load (engine, task->id); //  as stored: pending
        if (again)
            bk_engine_enqueue (engine, again);
        bk_task_destroy (&again);
        return;
    } else {
        int64_t grace = (int64_t) engine->cfg->heartbeat_ms * engine->cfg->heartbeat_liveness;
        bk_leases_add (self->leases, index, task->id, task->attempts,
                       engine->mono + (int64_t) task->timeout_s * 1000 + grace);
        engine->stats.dispatched++;
    }
    bk_engine_save (engine, task, BK_ST_PENDING);
}

void bk_dispatch_run (bk_dispatch_t *self) {
    bk_engine_t *engine = self->engine;
    int index, parked = 0;
    uint8_t id[16];
    bk_flow_work (engine->flow, engine->now); //  what flow keys can start now, to the queue
    while ((index = bk_leases_next_worker (self->leases)) >= 0) {
        if (parked == S_PARK_MAX) { //  a long turn delays every answer: go on in the next
            engine->next_due = engine->now;
            break;
        }
        if (bk_queue_pop (engine->queue, id) != 0)
            break;
        bk_task_t *task = bk_engine_load (engine, id);
        if (!task)
            continue;
        bool terminal = bk_status_terminal (task->status);
        if (terminal && task->poll.cancel_owed)
            s_cancel (self, index, task);
        else if (terminal && task->notify.active && !task->notify.inflight && task->notify.due < 0)
            s_notify (self, index, task);
        else if (task->status == BK_ST_POLLING && task->poll.active && !task->poll.inflight &&
                 task->poll.due < 0)
            s_poll (self, index, task);
        else if (task->status == BK_ST_PENDING) {
            //  a task whose flow key cannot start one now waits in the key's
            //  FIFO (still pending), out of the ready queue, without a worker
            if (task->flow_key && !bk_flow_admit (engine->flow, task, engine->now))
                parked++;
            else
                s_call (self, index, task);
        }
        //  else a stale entry: the task moved on
        bk_task_destroy (&task);
    }
    int64_t wake = bk_flow_next_wake (engine->flow, engine->now); //  a hold ends, a window turns
    if (wake < engine->next_due)
        engine->next_due = wake;
}

//  --------------------------------------------------------------------------
//  Liveness

void bk_dispatch_heartbeat (bk_dispatch_t *self) {
    bk_engine_t *engine = self->engine;
    for (int i = 0; i < bk_leases_worker_count (self->leases); i++) {
        bk_worker_t *w = bk_leases_worker_at (self->leases, i);
        if (w && w->last_sent + engine->cfg->heartbeat_ms <= engine->mono) {
            w->last_sent = engine->mono;
            aq_write_map (bk_outbox_start (engine->outbox, AQ_CMD_HEARTBEAT), 0);
            bk_outbox_queue (engine->outbox, w->socket, w->rid, w->rid_size);
        }
    }
}

//  A lease ended without a result: the worker died, stalled or left.
static void s_lease_lost (bk_dispatch_t *self, const uint8_t id[16], int attempt) {
    bk_engine_t *engine = self->engine;
    bk_task_t *task = bk_engine_load (engine, id);
    if (!task)
        return;
    int status = task->status;
    if (task->notify.active && task->notify.inflight && task->notify.attempt == attempt) {
        bk_engine_delivery (engine, task, -1, "worker lost", false);
        bk_engine_save (engine, task, status);
    } else if (status == BK_ST_POLLING && task->poll.inflight && task->poll.seq == attempt) {
        bk_engine_poll_later (engine, task, 0); //  a lost poll is asked again
        bk_engine_save (engine, task, status);
    } else if (status == BK_ST_PROCESSING && task->attempts == attempt) {
        engine->stats.lost++;
        bk_engine_record_attempt (engine, task, engine->now - task->attempt_at, -1, "worker lost");
        task->lease[0] = '\0';
        bk_engine_attempt_failed (engine, task, "worker lost", false, -1, true);
        bk_engine_save (engine, task, status);
    }
    bk_task_destroy (&task);
}

void bk_dispatch_expire (bk_dispatch_t *self) {
    bk_engine_t *engine = self->engine;
    int64_t silence = (int64_t) engine->cfg->heartbeat_ms * engine->cfg->heartbeat_liveness;
    for (int i = 0; i < bk_leases_worker_count (self->leases); i++) {
        bk_worker_t *w = bk_leases_worker_at (self->leases, i);
        if (w && w->last_seen + silence < engine->mono) {
            aq_log (AQ_LOG_WARN, "broker", "worker '%s' lost: silent for %lld ms", w->name,
                    (long long) (engine->mono - w->last_seen));
            bk_leases_worker_remove (self->leases, i);
        }
    }
    uint8_t id[16];
    int attempt;
    while (bk_leases_expired (self->leases, engine->mono, id, &attempt))
        s_lease_lost (self, id, attempt);
    size_t count;
    bk_waiter_t *expired = bk_waiters_expire (engine->waiters, engine->mono, &count);
    for (size_t i = 0; i < count; i++) {
        bk_waiter_t *w = &expired[i];
        uint8_t raw[16];
        bk_task_t *task = aq_uuid_parse (w->id, raw) == 0 ? bk_engine_load (engine, raw) : NULL;
        aq_writer_t *out =
            bk_outbox_reply_start (engine->outbox, w->corr, task ? AQ_OK : AQ_NOT_FOUND);
        if (task) {
            aq_write_str (out, "body");
            aq_write_map (out, 1);
            aq_write_str (out, "task");
            bk_task_write_public (task, out);
        } else
            aq_write_kv_str (out, "error", "Task not found");
        bk_outbox_reply_queue (engine->outbox, w->socket, w->rid, w->rid_size, 1);
        bk_task_destroy (&task);
    }
    free (expired);
}

//  Leases a processing task to nobody (an orphan lease), so it either gets
//  its result from a worker that outlived the broker's memory or returns to
//  the queue at the deadline.
static int s_recover_one (void *arg, const uint8_t id[16]) {
    bk_dispatch_t *self = arg;
    bk_engine_t *engine = self->engine;
    bk_task_t *task = bk_engine_load (engine, id);
    if (task) {
        int64_t grace = 2LL * engine->cfg->heartbeat_ms * engine->cfg->heartbeat_liveness;
        bk_leases_add (self->leases, BK_LEASE_ORPHAN, id, task->attempts,
                       engine->mono + (int64_t) task->timeout_s * 1000 + grace);
    }
    bk_task_destroy (&task);
    return 0;
}

void bk_dispatch_recover (bk_dispatch_t *self) {
    bk_leases_destroy (&self->leases);
    self->leases = bk_leases_new ();
    bk_flow_recover (self->engine->flow); //  what flow keys have in flight and parked
    bk_tasks_each_in_status (self->engine->store, BK_ST_PROCESSING, s_recover_one, self);
    if (bk_leases_count (self->leases))
        aq_log (AQ_LOG_INFO, "broker", "%zu tasks were processing: awaiting their results",
                bk_leases_count (self->leases));
}

int64_t bk_dispatch_next_deadline (bk_dispatch_t *self) {
    return bk_leases_next_deadline (self->leases);
}
