/*  engine.c - the task state machine: every change of a task's status */
#include "engine.h"
#include "aq_log.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "backoff.h"
#include "delay.h"
#include "poll.h"
#include "task_request.h"
#include "tokens.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PROMOTE_MAX 10000 //  delay-queue items moved per turn
#define S_RUNS_MAX    1000  //  of which sched/'s (a run writes several records)

static const int64_t s_latency_ms[BK_LATENCY_BUCKETS] = {5,   10,   25,   50,   100,   250,
                                                         500, 1000, 2500, 5000, 10000, INT64_MAX};

bk_engine_t *bk_engine_new (const bk_config_t *cfg, bk_store_t *store, bk_outbox_t *outbox,
                            aq_plugin_loader_t *plugins) {
    bk_engine_t *self = calloc (1, sizeof *self);
    assert (self);
    self->cfg = cfg;
    self->store = store;
    self->outbox = outbox;
    self->plugins = plugins;
    self->vault = plugins ? aq_plugin_loader_vault (plugins, NULL) : NULL;
    self->queue = bk_queue_new (store);
    self->flow = bk_flow_new (store, self->queue);
    self->waiters = bk_waiters_new ();
    self->minutes = bk_minutes_new ();
    self->next_due = 0;
    return self;
}

void bk_engine_destroy (bk_engine_t **self_p) {
    assert (self_p);
    bk_engine_t *self = *self_p;
    if (!self)
        return;
    bk_flow_destroy (&self->flow);
    bk_queue_destroy (&self->queue);
    bk_waiters_destroy (&self->waiters);
    bk_minutes_destroy (&self->minutes);
    free (self);
    *self_p = NULL;
}

void bk_engine_clock (bk_engine_t *self, int64_t now, int64_t mono) {
    self->now = now;
    self->mono = mono;
}

int64_t bk_engine_now (const bk_engine_t *self) {
    return self->now;
}

int64_t bk_engine_backoff_ms (const bk_engine_t *self, int strategy, int n) {
    return bk_backoff_ms (strategy, n, self->cfg->backoff_base_ms, self->cfg->backoff_cap_ms, -1);
}

bk_store_t *bk_engine_store (bk_engine_t *self) {
    return self->store;
}

void bk_engine_hooks (bk_engine_t *self, bk_engine_due_fn *due, bk_engine_step_fn *step,
                      void *arg) {
    self->due_hook = due;
    self->step_hook = step;
    self->hook_arg = arg;
}

char *bk_engine_topic (const bk_engine_t *self, const char *team, char topic[80]) {
    uint8_t mac[16];
    char hex[33];
    crypto_generichash (mac, sizeof mac, (const uint8_t *) team, strlen (team), self->events_key,
                        sizeof self->events_key);
    snprintf (topic, 80, "%s.%s", team, sodium_bin2hex (hex, sizeof hex, mac, sizeof mac));
    return topic;
}

//  --------------------------------------------------------------------------
//  Saving and announcing

//  A status change: an EVENT under the team's topic (while anyone
//  subscribes) and the answer of every long poll held for the task.
static void s_announce (bk_engine_t *self, const bk_task_t *task) {
    char id[AQ_UUID_TEXT], team[AQ_UUID_TEXT];
    aq_uuid_format (task->id, id);
    if (bk_outbox_subscribed (self->outbox)) {
        aq_uuid_format (task->team, team);
        aq_writer_t *w = bk_outbox_start (self->outbox, AQ_CMD_EVENT);
        aq_write_map (w, 4);
        aq_write_kv_str (w, "id", id);
        aq_write_kv_str (w, "teamId", team);
        aq_write_kv_str (w, "status", bk_status_name (task->status));
        aq_write_kv_int (w, "at", self->now);
        char topic[80];
        bk_outbox_queue_event (self->outbox, bk_engine_topic (self, team, topic));
    }
    bk_waiter_t waiter;
    while (bk_waiters_take (self->waiters, id, &waiter)) {
        aq_writer_t *w = bk_outbox_reply_start (self->outbox, waiter.corr, AQ_OK);
        aq_write_str (w, "body");
        aq_write_map (w, 1);
        aq_write_str (w, "task");
        bk_task_write_public (task, w);
        bk_outbox_reply_queue (self->outbox, waiter.socket, waiter.rid, waiter.rid_size, 1);
    }
}

bk_task_t *bk_engine_load (bk_engine_t *self, const uint8_t id[16]) {
    return bk_tasks_get (self->store, id);
}

int bk_engine_save (bk_engine_t *self, bk_task_t *task, int old_status) {
    int rc = bk_tasks_save (self->store, task, old_status);
    if (rc == 0 && task->flow_key)
        bk_flow_moved (self->flow, task, old_status, self->now);
    if (rc == 0 && task->status != old_status) {
        bk_minutes_touch (self->minutes, task->team); //  wakes GET /v1/stats?wait
        s_announce (self, task);
    }
    return rc;
}

int bk_engine_timer (bk_engine_t *self, int64_t due, int kind, const uint8_t id[16]) {
    if (due < self->next_due)
        self->next_due = due;
    return bk_delay_push (self->store, due, kind, id);
}

int bk_engine_ready (bk_engine_t *self, bk_task_t *task) {
    task->status = BK_ST_PENDING;
    task->due = -1;
    task->next_attempt_at = -1;
    if (task->flow_key)
        return bk_flow_ready (self->flow, task, self->now);
    return bk_queue_push (self->queue, task->priority, task->team, task->seq, task->id);
}

int bk_engine_delay (bk_engine_t *self, bk_task_t *task, int64_t due) {
    task->status = BK_ST_DELAYED;
    task->due = due;
    return bk_engine_timer (self, due, BK_DELAY_TASK, task->id);
}

void bk_engine_enqueue (bk_engine_t *self, bk_task_t *task) {
    bk_queue_push (self->queue, task->priority, task->team, task->seq, task->id);
}

void bk_engine_finish (bk_engine_t *self, bk_task_t *task, int status, const char *error) {
    if (status != BK_ST_CANCELLED && task->on_complete_url) {
        task->notify = (bk_notify_t){.active = true, .due = -1};
        task->on_complete = (bk_outcome_t){BK_OUTCOME_PENDING, 0, -1, NULL, -1};
        bk_engine_enqueue (self, task);
    }
    task->status = status;
    task->completed_at = self->now;
    task->next_attempt_at = -1;
    task->due = -1;
    if (error)
        task->error = bk_task_strdup (task, error);
    if (task->in_run && self->step_hook)
        self->step_hook (self->hook_arg, task); //  a step of a scheduled run
    if (status == BK_ST_COMPLETED) {
        self->stats.completed++;
        bk_minutes_add (self->minutes, task->team, BK_MINUTE_COMPLETED, self->now);
    } else if (status == BK_ST_FAILED) {
        self->stats.failed++;
        bk_minutes_add (self->minutes, task->team, BK_MINUTE_FAILED, self->now);
    }
}

int bk_engine_attempt_failed (bk_engine_t *self, bk_task_t *task, const char *error, bool permanent,
                              int64_t retry_after_ms, bool requeue_now) {
    if (permanent || task->retry_count >= task->max_retries) {
        bk_engine_finish (self, task, BK_ST_FAILED, error);
        return 0;
    }
    task->retry_count++;
    self->stats.retried++;
    task->error = bk_task_strdup (task, error);
    if (requeue_now)
        return bk_engine_ready (self, task);
    int64_t delay = bk_backoff_ms (task->backoff, task->retry_count, self->cfg->backoff_base_ms,
                                   self->cfg->backoff_cap_ms, retry_after_ms);
    int rc = bk_engine_delay (self, task, self->now + delay);
    task->next_attempt_at = self->now + delay;
    return rc;
}

void bk_engine_record_attempt (bk_engine_t *self, bk_task_t *task, int64_t duration,
                               int status_code, const char *error) {
    bool traced = bk_trace_known (&task->trace);
    bk_attempt_t attempt = {task->attempts,
                            task->attempt_at,
                            duration,
                            status_code,
                            error,
                            traced ? task->trace.trace_id : NULL,
                            traced ? task->span : NULL};
    bk_tasks_add_attempt (self->store, task->id, &attempt);
    self->stats.latency_sum_ms += (uint64_t) (duration > 0 ? duration : 0);
    for (int i = 0; i < BK_LATENCY_BUCKETS; i++)
        if (duration <= s_latency_ms[i]) {
            self->stats.latency[i]++;
            break;
        }
}

void bk_engine_cancel_job (bk_engine_t *self, bk_task_t *task) {
    //  a poll in flight keeps its lease token: its answer still ends the
    //  worker's lease (and is dropped as stale), or the worker's slot would
    //  stay taken until the lease's deadline
    task->poll.inflight = false;
    if (task->poll.op_pending && task->poll.op_stage == BK_POLL_INITIAL && !task->poll.cancel_url) {
        //  the job's plan, with its cancel URL, is still with the provider
        //  host: the cancel goes once it comes (bk_results_provider_done)
        task->poll.cancel_owed = true;
        return;
    }
    bk_poll_provider_drop (task); //  an answer its host still reads no longer counts
    if (!task->poll.cancel_url)
        return;
    task->poll.cancel_owed = true;
    bk_engine_enqueue (self, task);
}

void bk_engine_poll_later (bk_engine_t *self, bk_task_t *task, int64_t ms) {
    task->poll.due = self->now + ms;
    task->poll.inflight = false;
    task->poll.lease[0] = '\0';
    bk_engine_timer (self, task->poll.due, BK_DELAY_POLL, task->id);
}

void bk_engine_set_deadline (bk_engine_t *self, bk_task_t *task) {
    task->deadline = self->now + (int64_t) task->max_wait_s * 1000;
    bk_engine_timer (self, task->deadline, BK_DELAY_TIMEOUT, task->id);
}

void bk_engine_clear_deadline (bk_engine_t *self, bk_task_t *task) {
    if (task->deadline >= 0)
        bk_delay_remove (self->store, task->deadline, BK_DELAY_TIMEOUT, task->id);
    task->deadline = -1;
}

#define S_NOTIFY_TRIES 4 //  onCompleteUrl deliveries: the first and 3 retries

void bk_engine_delivery (bk_engine_t *self, bk_task_t *task, int status_code, const char *error,
                         bool permanent) {
    int attempt = task->notify.attempt;
    bk_outcome_t *outcome = &task->on_complete;
    *outcome = (bk_outcome_t){BK_OUTCOME_DELIVERED, attempt, status_code, NULL, -1};
    task->notify.inflight = false;
    task->notify.lease[0] = '\0';
    if (status_code >= 200 && status_code < 300) {
        outcome->delivered_at = self->now;
        task->notify = (bk_notify_t){.due = -1};
        return;
    }
    char text[64];
    if (!error) {
        snprintf (text, sizeof text, "HTTP %d", status_code);
        error = text;
    }
    outcome->error = bk_task_strdup (task, error);
    if (attempt < S_NOTIFY_TRIES && !permanent) {
        outcome->status = BK_OUTCOME_RETRYING;
        task->notify.due =
            self->now + bk_backoff_ms (BK_BACKOFF_EXPONENTIAL, attempt, self->cfg->backoff_base_ms,
                                       self->cfg->backoff_cap_ms, -1);
        bk_engine_timer (self, task->notify.due, BK_DELAY_NOTIFY, task->id);
    } else {
        outcome->status = BK_OUTCOME_FAILED;
        task->notify = (bk_notify_t){.due = -1};
    }
}

int bk_engine_cancel (bk_engine_t *self, bk_task_t *task) {
    int status = task->status, rc = 0;
    if (status == BK_ST_PENDING)
        rc = bk_queue_remove (self->queue, task->priority, task->team, task->seq);
    else if (status == BK_ST_DELAYED)
        rc = bk_delay_remove (self->store, task->due, BK_DELAY_TASK, task->id);
    else if (status == BK_ST_WAITING || status == BK_ST_POLLING) {
        if (status == BK_ST_POLLING)
            bk_engine_cancel_job (self, task);
        bk_engine_clear_deadline (self, task);
        task->signal[0] = '\0';
    } else
        return BK_ENGINE_REFUSED;
    bk_engine_finish (self, task, BK_ST_CANCELLED, NULL);
    return rc ? rc : bk_engine_save (self, task, status);
}

int bk_engine_retry (bk_engine_t *self, bk_task_t *task, bk_leases_t *leases) {
    int status = task->status;
    if (status != BK_ST_FAILED && status != BK_ST_TIMEOUT)
        return BK_ENGINE_REFUSED;
    task->retry_count = 0;
    task->error = NULL;
    task->result = (bk_blob_t){0};
    task->completed_at = -1;
    if (task->notify.inflight && leases) //  its answer no longer counts: the worker's slot is free
        bk_leases_end (leases, task->id, BK_LEASE_NOTIFY, task->notify.attempt);
    task->notify = (bk_notify_t){.due = -1};
    task->on_complete = (bk_outcome_t){BK_OUTCOME_NONE, 0, -1, NULL, -1};
    int rc = bk_engine_ready (self, task);
    return rc ? rc : bk_engine_save (self, task, status);
}

//  --------------------------------------------------------------------------
//  Creating

bk_task_t *bk_engine_build (bk_engine_t *self, const uint8_t team[16], const aq_node_t *request,
                            char *errbuf, size_t size) {
    const char *error;
    bk_task_t *task = bk_task_from_request (request, self->now, &error, errbuf, size);
    aq_node_t headers;
    if (task && task->headers.size &&
        aq_msg_parse (task->headers.data, task->headers.size, &headers) == 0)
        error = bk_tokens_check_headers (self->store, team, &headers, errbuf, size);
    if (task && !error && task->provider &&
        !(self->plugins && aq_plugin_loader_provider (self->plugins, task->provider))) {
        char *names = self->plugins ? aq_plugin_loader_providers (self->plugins) : NULL;
        snprintf (errbuf, size, "Unknown provider: %.64s. Loaded providers: %s", task->provider,
                  names && *names ? names : "none");
        free (names);
        error = errbuf;
    }
    if (task && !error) {
        aq_uuid_new (task->id);
        memcpy (task->team, team, 16);
        return task;
    }
    if (error != errbuf)
        snprintf (errbuf, size, "%s", error);
    bk_task_destroy (&task);
    return NULL;
}

int bk_engine_insert (bk_engine_t *self, bk_task_t *task) {
    if (!bk_trace_known (&task->trace)) //  the creator gave none
        bk_task_set_trace (task, NULL, NULL);
    task->seq = ++self->seq;
    if (task->created_at < self->last_created)
        task->created_at = self->last_created; //  the clock stepped back
    self->last_created = task->created_at;
    task->attempts = 0;
    int rc = 0;
    if (task->flow_key) { //  the latest limits given win
        bk_flow_limits_t limits = {task->flow_rate, task->flow_period, task->flow_parallelism};
        rc = bk_flow_set (self->flow, task->team, task->flow_key, &limits, self->now);
    }
    if (rc == 0)
        rc = task->status == BK_ST_DELAYED ? bk_engine_delay (self, task, task->delay_until)
                                           : bk_engine_ready (self, task);
    if (rc == 0)
        rc = bk_engine_save (self, task, 0);
    if (rc == 0) {
        self->stats.created++;
        bk_minutes_add (self->minutes, task->team, BK_MINUTE_CREATED, self->now);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Timers

//  The delay-queue item (kind, due) of a task, if it is still the one the
//  task waits for (a stale item is skipped).
static void s_task_due (bk_engine_t *self, int kind, const uint8_t id[16], int64_t due) {
    bk_task_t *task = bk_engine_load (self, id);
    if (!task)
        return;
    int status = task->status;
    if (kind == BK_DELAY_TASK && status == BK_ST_DELAYED && task->due == due) {
        bk_engine_ready (self, task);
        bk_engine_save (self, task, status);
    } else if (kind == BK_DELAY_NOTIFY && task->notify.active && task->notify.due == due) {
        task->notify.due = -1;
        task->notify.inflight = false;
        task->notify.lease[0] = '\0';
        bk_engine_enqueue (self, task);
        bk_engine_save (self, task, status);
    } else if (kind == BK_DELAY_POLL && status == BK_ST_POLLING && task->poll.due == due) {
        task->poll.due = -1;
        task->poll.inflight = false;
        task->poll.lease[0] = '\0';
        bk_engine_enqueue (self, task); //  into the ready queue: takes a worker slot
        bk_engine_save (self, task, status);
    } else if (kind == BK_DELAY_TIMEOUT && (status == BK_ST_WAITING || status == BK_ST_POLLING) &&
               task->deadline == due) {
        if (status == BK_ST_POLLING)
            bk_engine_cancel_job (self, task);
        char error[96];
        snprintf (error, sizeof error, "Task exceeded maxWaitTime of %ds", task->max_wait_s);
        task->signal[0] = '\0';
        task->deadline = -1;
        bk_engine_finish (self, task, BK_ST_TIMEOUT, error);
        bk_engine_save (self, task, status);
    }
    bk_task_destroy (&task);
}

void bk_engine_promote_due (bk_engine_t *self) {
    int64_t due;
    int kind;
    uint8_t id[16];
    for (int n = 0, runs = 0; n < S_PROMOTE_MAX && runs < S_RUNS_MAX; n++) {
        if (bk_delay_pop (self->store, self->now, &due, &kind, id) != 0)
            break;
        if (kind == BK_DELAY_SCHEDULE || kind == BK_DELAY_RUN) {
            if (self->due_hook)
                self->due_hook (self->hook_arg, kind, id, due);
            runs++;
        } else
            s_task_due (self, kind, id, due);
    }
    self->next_due = INT64_MAX;
    if (bk_delay_next (self->store, &due) == 0)
        self->next_due = due;
}
