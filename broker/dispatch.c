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
        bk_leases_add (self->leases, index, task->id, BK_LEASE_CANCEL, 0,
                       self->engine->mono + S_NOTIFY_LEASE_MS);
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
        bk_leases_add (self->leases, index, task->id, BK_LEASE_NOTIFY, task->notify.attempt,
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
        bk_leases_add (self->leases, index, task->id, BK_LEASE_POLL, task->poll.seq,
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
        bk_leases_add (self->leases, index, task->id, BK_LEASE_CALL, task->attempts,
                       engine->mono + (int64_t) task->timeout_s * 1000 + grace);
        engine->stats.dispatched++;
    }
    bk_engine_save (engine, task, BK_ST_PENDING);
}

void bk_dispatch_run (bk_dispatch_t *self) {
    bk_engine_t *engine = self->engine;
    int index;
    uint8_t id[16];
    while ((index = bk_leases_next_worker (self->leases)) >= 0) {
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
        else if (task->status == BK_ST_PENDING)
            s_call (self, index, task);
        //  else a stale entry: the task moved on
        bk_task_destroy (&task);
    }
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
static void s_lease_lost (bk_dispatch_t *self, const uint8_t id[16], int kind, int attempt) {
    bk_engine_t *engine = self->engine;
    bk_task_t *task = bk_engine_load (engine, id);
    if (!task)
        return;
    int status = task->status;
    if (kind == BK_LEASE_NOTIFY && task->notify.active && task->notify.inflight &&
        task->notify.attempt == attempt) {
        bk_engine_delivery (engine, task, -1, "worker lost", false);
        bk_engine_save (engine, task, status);
    } else if (kind == BK_LEASE_POLL && status == BK_ST_POLLING && task->poll.inflight &&
               task->poll.seq == attempt) {
        bk_engine_poll_later (engine, task, 0); //  a lost poll is asked again
        bk_engine_save (engine, task, status);
    } else if (kind == BK_LEASE_CALL && status == BK_ST_PROCESSING && task->attempts == attempt) {
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
    int kind, attempt;
    while (bk_leases_expired (self->leases, engine->mono, id, &kind, &attempt))
        s_lease_lost (self, id, kind, attempt);
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
        bk_leases_add (self->leases, BK_LEASE_ORPHAN, id, BK_LEASE_CALL, task->attempts,
                       engine->mono + (int64_t) task->timeout_s * 1000 + grace);
    }
    bk_task_destroy (&task);
    return 0;
}

void bk_dispatch_recover (bk_dispatch_t *self) {
    bk_leases_destroy (&self->leases);
    self->leases = bk_leases_new ();
    bk_tasks_each_in_status (self->engine->store, BK_ST_PROCESSING, s_recover_one, self);
    if (bk_leases_count (self->leases))
        aq_log (AQ_LOG_INFO, "broker", "%zu tasks were processing: awaiting their results",
                bk_leases_count (self->leases));
}

int64_t bk_dispatch_next_deadline (bk_dispatch_t *self) {
    return bk_leases_next_deadline (self->leases);
}

//  --------------------------------------------------------------------------
//  Selftest: the worker dialog, credit, liveness, recovery and the URL
//  re-check over rig_core (fake workers over inproc, the rig's clock).

#include "../tests/rig_core.h"

//  The dispatcher's record of the fake worker, or NULL when it is unknown.
static bk_worker_t *s_known (rig_core_t *rig, rig_worker_t *worker) {
    bk_leases_t *leases = bk_dispatch_leases (rig->dispatch);
    return bk_leases_worker_at (leases, bk_leases_worker (leases, rig->workers, worker->name,
                                                          strlen (worker->name), false));
}

static void s_test_dialog (rig_core_t *rig) {
    //  READY: credit within 0..100000, a name or "worker"
    rig_worker_t *a = rig_core_worker (rig, "a", -5);
    assert (s_known (rig, a)->credit == 0 && strcmp (s_known (rig, a)->name, "a") == 0);
    rig_worker_send (a, AQ_CMD_READY, "{\"credit\": 1000000}");
    rig_core_turn (rig);
    assert (s_known (rig, a)->credit == 100000 && strcmp (s_known (rig, a)->name, "worker") == 0);
    rig_worker_send (a, AQ_CMD_READY, "{\"credit\": 2, \"name\": \"a\"}");
    rig_core_turn (rig);
    assert (bk_leases_workers_alive (bk_dispatch_leases (rig->dispatch)) == 1);
    //  credit: two calls go out, the third waits for a slot
    char ids[3][AQ_UUID_TEXT];
    for (int i = 0; i < 3; i++)
        rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", ids[i]);
    rig_worker_expect (a, ids[0], "");
    rig_worker_expect (a, ids[1], "");
    assert (!rig_worker_job (a) && s_known (rig, a)->credit == 0 && rig_core_ready (rig, ids[2]));
    rig_worker_answer (a, "{\"statusCode\": 200}"); //  a slot frees: the third goes
    rig_worker_expect (a, ids[2], "");
    assert (s_known (rig, a)->credit == 0);
    //  the broker heartbeats a worker it has sent nothing to for heartbeat_ms
    int beats = a->heartbeats;
    rig_core_later (rig, 999);
    assert (!rig_worker_job (a) && a->heartbeats == beats);
    rig_core_later (rig, 1);
    assert (!rig_worker_job (a) && a->heartbeats == beats + 1);
    rig_worker_answer (a, "{\"statusCode\": 200}");
    const bk_task_t *task = rig_core_is (rig, ids[0], BK_ST_PROCESSING);
    char answer[256];
    snprintf (answer, sizeof answer,
              "{\"id\": \"%s\", \"attempt\": 1, \"lease\": \"%s\", \"statusCode\": 200}", ids[0],
              task->lease);
    rig_worker_answer (a, answer);
    rig_core_is (rig, ids[0], BK_ST_COMPLETED);
    assert (s_known (rig, a)->credit == 2);

    //  a worker silent for heartbeat_ms x liveness is forgotten; when it
    //  speaks again it is told 410 and sends READY again
    rig_worker_t *b = rig_core_worker (rig, "b", 1);
    b->silent = true;
    rig_core_later (rig, 5001);
    assert (!s_known (rig, b) && s_known (rig, a));
    b->silent = false;
    rig_core_turn (rig); //  its HEARTBEAT
    assert (!rig_worker_job (b) && b->errors == 1 && b->last_error == 410);
    assert (strcmp (b->reason, "unknown worker: send READY") == 0 && !s_known (rig, b));
    rig_worker_send (b, AQ_CMD_READY, "{\"credit\": 1, \"name\": \"b\"}");
    rig_core_turn (rig);
    assert (s_known (rig, b) && s_known (rig, b)->credit == 1);
    //  a command that is no worker's
    uint64_t malformed = rig->engine->stats.malformed;
    rig_worker_send (b, AQ_CMD_TASK_GET, "{}");
    rig_core_turn (rig);
    assert (!rig_worker_job (b) && b->errors == 2 && b->last_error == AQ_BAD_REQUEST);
    assert (strcmp (b->reason, "unexpected command on the worker socket") == 0);
    assert (rig->engine->stats.malformed == malformed + 1 && s_known (rig, b));
    //  BYE: its leases end at once, their calls come back as lost attempts
    rig_worker_bye (a);
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", ids[0]);
    rig_worker_expect (b, ids[0], "");
    uint64_t lost = rig->engine->stats.lost;
    rig_worker_bye (b);
    task = rig_core_is (rig, ids[0], BK_ST_PENDING);
    assert (strcmp (task->error, "worker lost") == 0 && rig->engine->stats.lost == lost + 1);
    assert (rig_core_ready (rig, ids[0]) && !s_known (rig, b) && !s_known (rig, a));
    assert (bk_leases_workers_alive (bk_dispatch_leases (rig->dispatch)) == 0);
}

static void s_test_leases (rig_core_t *rig) {
    //  the pending task of the dialog goes to the next worker
    rig_worker_t *c = rig_core_worker (rig, "c", 4);
    assert (rig_worker_drain (c) == 1);
    rig_worker_answer (c, "{\"statusCode\": 200}");
    //  a call lease lasts the call's timeout and heartbeat_ms x liveness
    char id[AQ_UUID_TEXT], late[256];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\", \"timeout\": 5}", id);
    rig_worker_expect (c, id, "");
    assert (bk_dispatch_next_deadline (rig->dispatch) == rig->mono + 5000 + 5000);
    snprintf (late, sizeof late, "{\"attempt\": 1, \"lease\": \"%s\", \"statusCode\": 200}",
              c->lease);
    rig_core_later (rig, 9999);
    rig_core_is (rig, id, BK_ST_PROCESSING);
    rig_core_later (rig, 1); //  lost, back to the queue and out again to c
    rig_worker_expect (c, id, "");
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_PROCESSING);
    assert (c->attempt == 2 && task->retry_count == 1 && strcmp (task->error, "worker lost") == 0);
    //  the first attempt's answer comes after all: it counts for nothing
    uint64_t dropped = rig->engine->stats.dropped;
    rig_worker_result (c, late);
    rig_core_turn (rig);
    rig_core_is (rig, id, BK_ST_PROCESSING);
    assert (rig->engine->stats.dropped == dropped + 1);
    rig_worker_answer (c, "{\"statusCode\": 200}");
    rig_core_is (rig, id, BK_ST_COMPLETED);
    assert (bk_dispatch_next_deadline (rig->dispatch) == INT64_MAX);
    //  a long poll past its deadline is answered with the task as it is
    int64_t corr = rig_core_send (rig, AQ_CMD_TASK_GET,
                                  "{\"key\": \"%s\", \"id\": \"%s\", \"wait\": 0}", rig->key, id);
    rig_core_turn (rig);
    assert (rig_core_answer (rig) == AQ_OK && rig->answer_corr == corr);
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"delayUntil\": \"2030-01-01T00:00:00Z\"}", id);
    corr = rig_core_send (rig, AQ_CMD_TASK_GET, "{\"key\": \"%s\", \"id\": \"%s\", \"wait\": 2}",
                          rig->key, id);
    rig_core_turn (rig);
    rig_core_later (rig, 1999);
    assert (rig_core_answer (rig) < 0);
    rig_core_later (rig, 1);
    assert (rig_core_answer (rig) == AQ_OK && rig->answer_corr == corr);
    assert (rig_core_shows (rig, "\"status\":\"delayed\""));
    rig_worker_bye (c);
}

//  The broker restarts with calls out at a worker: their leases are
//  orphans until the deadline; the worker's answer still counts
static void s_test_recover (rig_core_t *rig) {
    rig_worker_t *d = rig_core_worker (rig, "d", 2);
    char ids[2][AQ_UUID_TEXT], answer[256];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", ids[0]);
    rig_worker_expect (d, ids[0], "");
    snprintf (answer, sizeof answer,
              "{\"id\": \"%s\", \"attempt\": 1, \"lease\": \"%s\", \"statusCode\": 200}", ids[0],
              d->lease);
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", ids[1]);
    rig_worker_expect (d, ids[1], "");
    rig_core_restart (rig);
    bk_leases_t *leases = bk_dispatch_leases (rig->dispatch);
    assert (bk_leases_count (leases) == 2 && bk_leases_workers_alive (leases) == 0);
    assert (bk_dispatch_next_deadline (rig->dispatch) == rig->mono + 30000 + 2 * 5000);
    uint8_t raw[16];
    aq_uuid_parse (ids[0], raw);
    assert (bk_leases_holder (leases, raw, BK_LEASE_CALL, 1) == BK_LEASE_ORPHAN);
    //  the worker that outlived the broker's memory: its heartbeat is told
    //  410, its answer (it never said READY) settles its call
    rig_core_turn (rig);
    assert (!rig_worker_job (d) && d->errors == 1 && d->last_error == 410);
    rig_worker_result (d, answer);
    rig_core_turn (rig);
    rig_core_is (rig, ids[0], BK_ST_COMPLETED);
    rig_core_expect_events (rig, ids[0], "pending processing completed");
    rig_worker_send (d, AQ_CMD_READY, "{\"credit\": 2, \"name\": \"d\"}");
    rig_core_later (rig, 39999);
    rig_core_is (rig, ids[1], BK_ST_PROCESSING);
    assert (!rig_worker_job (d));
    rig_core_later (rig, 1); //  the orphan's deadline: a lost attempt, and out again
    rig_worker_expect (d, ids[1], "");
    const bk_task_t *task = rig_core_is (rig, ids[1], BK_ST_PROCESSING);
    assert (d->attempt == 2 && strcmp (task->error, "worker lost") == 0);
    rig_core_expect_events (rig, ids[1], "pending processing pending processing");
    rig_worker_answer (d, "{\"statusCode\": 200}");
    rig_core_is (rig, ids[1], BK_ST_COMPLETED);
    rig_worker_bye (d);
}

//  A stored plan's URLs are checked again before each request: one its
//  provider may no longer use (an origin the operator took away, a plugin
//  gone) fails the task or skips the cancel, and nothing is sent
static void s_test_urls (rig_core_t *rig) {
    rig_worker_t *e = rig_core_worker (rig, "e", 1);
    for (int i = 0; i < 3; i++) { //  a status URL, the provider, a cancel URL taken away
        char id[AQ_UUID_TEXT];
        rig_core_created (
            rig, "{\"targetUrl\": \"https://queue.fal.run/x\", \"provider\": \"fal\"}", id);
        rig_worker_expect (e, id, "");
        rig_worker_answer (e, "{\"statusCode\": 200, \"body\": \"{}\"}");
        rig_core_provider_reply (
            rig, id,
            "{\"state\": 0, \"plan\": {\"statusUrl\": \"https://queue.fal.run/x/status\", "
            "\"cancelUrl\": \"https://queue.fal.run/x/cancel\", \"intervalMs\": 1000}}",
            NULL);
        bk_task_t *task = rig_core_task (rig, id);
        if (i == 0)
            task->poll.status_url = bk_task_strdup (task, "https://elsewhere.test/x/status");
        else if (i == 1)
            task->provider = bk_task_strdup (task, "gone");
        else
            task->poll.cancel_url = bk_task_strdup (task, "http://127.0.0.1/x/cancel");
        assert (bk_tasks_save (rig->store, task, task->status) == 0);
        bk_task_destroy (&task);
        if (i < 2) {
            rig_core_later (rig, 1000);
            assert (!rig_worker_job (e));
            const bk_task_t *failed = rig_core_is (rig, id, BK_ST_FAILED);
            if (i == 0)
                assert (strcmp (failed->error, "provider 'fal' answered a status URL outside its "
                                               "hosts: https://elsewhere.test/x/status") == 0);
            else
                assert (strcmp (failed->error, "provider plugin is no longer loaded") == 0);
            assert (failed->deadline < 0);
        } else {
            assert (rig_core_call (rig, AQ_CMD_TASK_CANCEL, "{\"key\": \"%s\", \"id\": \"%s\"}",
                                   rig->key, id) == AQ_OK);
            assert (!rig_worker_job (e));
            assert (!rig_core_is (rig, id, BK_ST_CANCELLED)->poll.cancel_owed);
        }
    }
    rig_worker_bye (e);
}

void bk_dispatch_test (bool verbose) {
    rig_core_t *rig = rig_core_new ("dispatch", true);
    s_test_dialog (rig);
    s_test_leases (rig);
    s_test_recover (rig);
    s_test_urls (rig);
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_dispatch: ok\n");
}
