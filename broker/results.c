/*  results.c - what a worker's RESULT means for its task */
#include "results.h"
#include "aq_log.h"
#include "aq_uuid.h"
#include "poll.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_POLL_RETRY_MAX_S 3600 //  longest Retry-After a throttled status poll waits

struct _bk_results_t {
    bk_engine_t *engine;       //  borrowed
    bk_leases_t *leases;       //  borrowed from dispatch
    bk_providers_t *providers; //  borrowed, may be NULL
};

bk_results_t *bk_results_new (bk_engine_t *engine, bk_leases_t *leases, bk_providers_t *providers) {
    bk_results_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    self->leases = leases;
    self->providers = providers;
    return self;
}

void bk_results_destroy (bk_results_t **self_p) {
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void bk_results_leases (bk_results_t *self, bk_leases_t *leases) {
    self->leases = leases;
}

//  --------------------------------------------------------------------------
//  An answer as a RESULT (or a kept provider op) carries it

typedef struct {
    int status_code;     //  -1 when there was no response
    aq_node_t headers;   //  response headers (a map), type 0 when absent
    aq_node_t body;      //  response body (a string), type 0 when absent
    bool truncated;      //  the body was cut at maxBody
    int64_t duration;    //  ms
    int64_t retry_after; //  s, -1 when absent
    aq_node_t error;     //  why there was no response, type 0 when absent
    bool permanent;      //  retrying cannot help
    bool refused;        //  the worker never started the call
} s_answer_t;

static void s_answer (const aq_node_t *body, s_answer_t *a) {
    memset (a, 0, sizeof *a);
    a->status_code = -1;
    a->retry_after = -1;
    aq_node_t value;
    if (aq_node_get (body, "statusCode", &value) && value.type == AQ_NODE_INT)
        a->status_code = (int) value.i;
    if (aq_node_get (body, "headers", &value) && value.type == AQ_NODE_MAP)
        a->headers = value;
    if (aq_node_get (body, "body", &value) && aq_node_is_str (&value))
        a->body = value;
    if (aq_node_get (body, "bodyTruncated", &value) && value.type == AQ_NODE_BOOL)
        a->truncated = value.b;
    if (aq_node_get (body, "duration", &value) && value.type == AQ_NODE_INT)
        a->duration = value.i;
    if (aq_node_get (body, "retryAfter", &value) && value.type == AQ_NODE_INT)
        a->retry_after = value.i;
    if (aq_node_get (body, "error", &value) && aq_node_is_str (&value))
        a->error = value;
    if (aq_node_get (body, "permanent", &value) && value.type == AQ_NODE_BOOL)
        a->permanent = value.b;
    if (aq_node_get (body, "refused", &value) && value.type == AQ_NODE_BOOL)
        a->refused = value.b;
}

//  The error text (in the task's arena), or NULL.
static const char *s_error (bk_task_t *task, const s_answer_t *a) {
    return a->error.type
               ? bk_arena_strndup (task->arena, (const char *) a->error.data, a->error.count)
               : NULL;
}

//  The task's result: {statusCode, headers, duration, body?, bodyTruncated?}.
static void s_set_result (bk_task_t *task, const s_answer_t *a) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 3 + (a->body.type != 0) + a->truncated);
    aq_write_kv_int (&w, "statusCode", a->status_code);
    aq_write_str (&w, "headers");
    if (a->headers.type)
        aq_write_raw (&w, a->headers.raw, a->headers.raw_size);
    else
        aq_write_map (&w, 0);
    aq_write_kv_int (&w, "duration", a->duration);
    if (a->body.type) {
        aq_write_str (&w, "body");
        aq_write_raw (&w, a->body.raw, a->body.raw_size);
    }
    if (a->truncated)
        aq_write_kv_bool (&w, "bodyTruncated", true);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    if (data)
        bk_task_set_blob (task, &task->result, data, size);
    aq_writer_release (&w);
}

//  A response header's value is text (case-insensitive).
static bool s_header_is (const s_answer_t *a, const char *name, const char *text) {
    aq_iter_t it;
    aq_node_iter (&a->headers, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value))
        if (aq_node_is_str (&key) && key.count == strlen (name) &&
            strncasecmp ((const char *) key.data, name, key.count) == 0)
            return aq_node_is_str (&value) && value.count == strlen (text) &&
                   strncasecmp ((const char *) value.data, text, value.count) == 0;
    return false;
}

//  --------------------------------------------------------------------------
//  Polling

//  What follows an answer once it is read (state, next_ms, error from
//  poll.c): poll again, fetch the result, or finish with the answer as
//  the result.
static void s_poll_next (bk_engine_t *engine, bk_task_t *task, int stage, const s_answer_t *a,
                         bk_poll_state_t state, int64_t next_ms, const char *error) {
    if (stage == BK_POLL_INITIAL && (state == BK_POLL_RUNNING || state == BK_POLL_FETCH) &&
        task->status != BK_ST_POLLING) {
        task->status = BK_ST_POLLING;
        bk_engine_set_deadline (engine, task);
    }
    if (state == BK_POLL_RUNNING) {
        task->poll.stage = BK_POLL_STATUS;
        bk_engine_poll_later (engine, task, next_ms);
    } else if (state == BK_POLL_FETCH) {
        task->poll.stage = BK_POLL_RESULT;
        bk_engine_poll_later (engine, task, 0);
    } else {
        bk_engine_clear_deadline (engine, task);
        s_set_result (task, a);
        if (state == BK_POLL_DONE)
            task->error = NULL;
        bk_engine_finish (engine, task, state == BK_POLL_DONE ? BK_ST_COMPLETED : BK_ST_FAILED,
                          error);
    }
}

//  Sends the op a provider task keeps to its provider host.
static void s_provider_submit (bk_results_t *self, const bk_task_t *task) {
    if (!task->provider)
        return;
    aq_writer_t request;
    aq_writer_init (&request);
    bk_poll_provider_request (task, &request);
    char key[BK_POLL_KEY_SIZE];
    size_t size;
    const uint8_t *data = aq_writer_data (&request, &size);
    if (data)
        bk_providers_submit (self->providers, task->provider, bk_poll_provider_key (task, key),
                             data, size);
    aq_writer_release (&request);
}

//  A polling task's answer (the call's, a status request's or the result
//  request's). A pollConfig is read here and now; a provider's answer goes
//  to its provider host and bk_results_provider_done goes on in a later
//  turn (the task is polling meanwhile, its maxWaitTime running).
static void s_poll_answer (bk_results_t *self, bk_task_t *task, int stage, const aq_node_t *body,
                           const s_answer_t *a) {
    bk_engine_t *engine = self->engine;
    if (task->provider) {
        if (stage == BK_POLL_INITIAL) {
            task->status = BK_ST_POLLING;
            bk_engine_set_deadline (engine, task);
        }
        bk_poll_provider_start (task, stage, body);
        s_provider_submit (self, task);
        return;
    }
    int64_t next_ms = 0;
    const char *error = NULL;
    bk_poll_state_t state = bk_poll_config_step (
        task, stage, a->body.type ? (const char *) a->body.data : NULL,
        a->body.type ? a->body.count : 0, engine->cfg->poll_interval_ms, &next_ms, &error);
    s_poll_next (engine, task, stage, a, state, next_ms, error);
}

static void s_poll_result (bk_results_t *self, bk_task_t *task, int attempt,
                           const aq_node_t *body) {
    bk_engine_t *engine = self->engine;
    bk_poll_t *poll = &task->poll;
    if (task->status != BK_ST_POLLING || !poll->inflight || poll->seq != attempt) {
        engine->stats.dropped++;
        return;
    }
    poll->inflight = false;
    poll->lease[0] = '\0'; //  one answer per request
    s_answer_t a;
    s_answer (body, &a);
    int stage = poll->stage ? poll->stage : BK_POLL_STATUS;
    if (a.permanent) { //  e.g. refused by the SSRF guard
        bk_engine_clear_deadline (engine, task);
        bk_engine_finish (engine, task, BK_ST_FAILED, s_error (task, &a));
    } else if (a.status_code < 0 ||
               ((a.status_code >= 500 || a.status_code == 429) && stage == BK_POLL_STATUS)) {
        //  a transport error, or a 429 or 5xx while running: ask again later,
        //  after the Retry-After if one came (a finished job's result URL
        //  may answer an error: that is its result)
        int64_t after = a.retry_after;
        bk_engine_poll_later (engine, task,
                              after >= 0
                                  ? (after < S_POLL_RETRY_MAX_S ? after : S_POLL_RETRY_MAX_S) * 1000
                              : poll->interval_ms >= 0 ? poll->interval_ms
                                                       : engine->cfg->poll_interval_ms);
    } else
        s_poll_answer (self, task, stage, body, &a);
    bk_engine_save (engine, task, BK_ST_POLLING);
}

//  A task cancelled or timed out while the provider host read its job's
//  first answer: the plan it gives now holds the cancel URL the provider's
//  job is cancelled with (bk_engine_cancel_job left that owed).
static void s_cancel_after_plan (bk_engine_t *engine, bk_task_t *task, const aq_node_t *reply,
                                 const char *failure) {
    const aq_plugin_provider_t *provider =
        aq_plugin_loader_provider (engine->plugins, task->provider);
    int64_t next_ms = 0;
    const char *error = NULL;
    if (provider && reply && !failure)
        bk_poll_provider_reply (provider, task, reply, engine->cfg->poll_interval_ms, &next_ms,
                                &error);
    bk_poll_provider_drop (task);
    task->poll.cancel_owed = task->poll.cancel_url != NULL;
    if (task->poll.cancel_owed)
        bk_engine_enqueue (engine, task);
    bk_engine_save (engine, task, task->status);
}

void bk_results_provider_done (bk_results_t *self, const char *key, const aq_node_t *reply,
                               const char *failure) {
    bk_engine_t *engine = self->engine;
    uint8_t id[16];
    int64_t n;
    bk_task_t *task = bk_poll_provider_key_parse (key, id, &n) ? bk_engine_load (engine, id) : NULL;
    if (task && bk_status_terminal (task->status) && task->poll.op_pending &&
        task->poll.op_n == n) {
        s_cancel_after_plan (engine, task, reply, failure);
        bk_task_destroy (&task);
        return;
    }
    if (!task || !bk_poll_provider_awaits (task, n)) {
        engine->stats.dropped++; //  cancelled, timed out, or asked again after a restart
        bk_task_destroy (&task);
        return;
    }
    //  the answer stays in the task's arena after the reply is applied: the
    //  result if this was the last
    int stage = task->poll.op_stage;
    aq_node_t answer;
    s_answer_t a;
    memset (&a, 0, sizeof a);
    if (aq_msg_parse (task->poll.op.data, task->poll.op.size, &answer) == 0)
        s_answer (&answer, &a);
    const aq_plugin_provider_t *provider =
        aq_plugin_loader_provider (engine->plugins, task->provider);
    int64_t next_ms = 0;
    const char *error = NULL;
    bk_poll_state_t state = BK_POLL_FAILED;
    char text[AQ_UUID_TEXT];
    aq_uuid_format (task->id, text);
    if (failure || !provider || !reply) {
        bk_poll_provider_drop (task);
        error = failure ? bk_task_strdup (task, failure) : "provider plugin is no longer loaded";
    } else
        state = bk_poll_provider_reply (provider, task, reply, engine->cfg->poll_interval_ms,
                                        &next_ms, &error);
    if (state == BK_POLL_FAILED && error && strstr (error, "outside its hosts"))
        aq_log (AQ_LOG_WARN, "broker", "task '%s': %s", text, error);
    s_poll_next (engine, task, stage, &a, state, next_ms, error);
    bk_engine_save (engine, task, BK_ST_POLLING);
    bk_task_destroy (&task);
}

void bk_results_provider_resend (bk_results_t *self, const bk_task_t *task) {
    if (task->poll.op_pending)
        s_provider_submit (self, task);
}

//  --------------------------------------------------------------------------
//  The call

static void s_call_result (bk_results_t *self, bk_task_t *task, int attempt,
                           const aq_node_t *body) {
    bk_engine_t *engine = self->engine;
    if (task->status != BK_ST_PROCESSING || task->attempts != attempt) {
        engine->stats.dropped++; //  a stale result: the attempt was already settled
        return;
    }
    task->lease[0] = '\0'; //  one result per attempt
    s_answer_t a;
    s_answer (body, &a);
    if (a.refused) { //  the worker never started the call (full, or stopping): not an attempt
        task->attempts = attempt - 1;
        bk_engine_ready (engine, task);
        bk_engine_save (engine, task, BK_ST_PROCESSING);
        return;
    }
    const char *error = s_error (task, &a);
    bk_engine_record_attempt (engine, task, a.duration, a.status_code, error);
    int code = a.status_code;
    if (code >= 0)
        s_set_result (task, &a);
    if ((task->provider || task->poll_config.size) && code >= 0 && code < 500) {
        //  a job API: a 2xx starts polling; any other answer means no job
        task->error = NULL;
        if (code >= 200 && code < 300)
            s_poll_answer (self, task, BK_POLL_INITIAL, body, &a);
        else {
            char text[32];
            snprintf (text, sizeof text, "HTTP %d", code);
            bk_engine_finish (engine, task, BK_ST_FAILED, text);
        }
    } else if (code == 202 && s_header_is (&a, "asyncqueue-wait", "true")) {
        //  the target will signal the outcome; it has maxWaitTime to do so
        task->error = NULL;
        task->status = BK_ST_WAITING;
        bk_engine_set_deadline (engine, task);
    } else if (code >= 0 && code < 500) {
        task->error = NULL;
        bk_engine_finish (engine, task, BK_ST_COMPLETED, NULL);
    } else {
        char text[64];
        if (!error) {
            snprintf (text, sizeof text, "HTTP %d", code);
            error = text;
        }
        bk_engine_attempt_failed (engine, task, error, a.permanent,
                                  a.retry_after >= 0 ? a.retry_after * 1000 : -1, false);
    }
    bk_engine_save (engine, task, BK_ST_PROCESSING);
}

//  --------------------------------------------------------------------------

//  The lease token the task keeps for a request of kind (NULL: the call).
static const char *s_token (const bk_task_t *task, const aq_node_t *kind) {
    if (aq_node_streq (kind, "poll"))
        return task->poll.lease;
    if (aq_node_streq (kind, "notify"))
        return task->notify.lease;
    return task->lease;
}

void bk_results_handle (bk_results_t *self, int sender, const aq_node_t *body) {
    bk_engine_t *engine = self->engine;
    aq_node_t value, kind = {0}, given = {0};
    char text[AQ_UUID_TEXT];
    uint8_t id[16];
    int attempt = -1;
    if (!aq_node_get (body, "id", &value) || !aq_node_strcpy (&value, text, sizeof text) ||
        aq_uuid_parse (text, id) != 0) {
        engine->stats.malformed++;
        return;
    }
    if (aq_node_get (body, "attempt", &value) && value.type == AQ_NODE_INT)
        attempt = (int) value.i;
    aq_node_get (body, "kind", &kind);
    int leased = aq_node_streq (&kind, "poll")     ? BK_LEASE_POLL
                 : aq_node_streq (&kind, "notify") ? BK_LEASE_NOTIFY
                 : aq_node_streq (&kind, "cancel") ? BK_LEASE_CANCEL
                                                   : BK_LEASE_CALL;
    int holder = bk_leases_holder (self->leases, id, leased, attempt);
    if (holder >= 0 && holder != sender) {
        engine->stats.refused_results++; //  the lease is another worker's
        return;
    }
    if (leased == BK_LEASE_CANCEL) { //  fire and forget
        if (holder == sender)
            bk_leases_end (self->leases, id, leased, attempt);
        return;
    }
    bk_task_t *task = bk_engine_load (engine, id);
    const char *want = task ? s_token (task, &kind) : NULL;
    aq_node_get (body, "lease", &given);
    if (!want || !*want || !aq_node_is_str (&given) || given.count != strlen (want) ||
        sodium_memcmp (want, given.data, given.count) != 0) {
        engine->stats.refused_results += holder == sender; //  its own lease, a wrong token
        engine->stats.dropped += holder != sender;         //  stale, or never ours
        bk_task_destroy (&task);
        return;
    }
    bk_leases_end (self->leases, id, leased, attempt);
    if (aq_node_streq (&kind, "poll"))
        s_poll_result (self, task, attempt, body);
    else if (aq_node_streq (&kind, "notify")) {
        if (task->notify.active && task->notify.inflight && task->notify.attempt == attempt) {
            s_answer_t a;
            s_answer (body, &a);
            bk_engine_delivery (engine, task, a.status_code, s_error (task, &a), a.permanent);
            bk_engine_save (engine, task, task->status);
        } else
            engine->stats.dropped++;
    } else
        s_call_result (self, task, attempt, body);
    bk_task_destroy (&task);
}

//  --------------------------------------------------------------------------
//  Selftest over rig_core: who may settle a request, and what each kind of
//  RESULT means (the status changes themselves: engine_test.c).

#include "../tests/rig_core.h"
#include "aq_proto.h"

//  A RESULT from worker for the JOB holder got (its id and attempt), with
//  lease (NULL: the JOB's; "": none) and fields (JSON pairs, "" none); a
//  turn runs.
static void s_send_as (rig_worker_t *worker, rig_worker_t *holder, const char *lease,
                       const char *fields) {
    char json[512], token[80] = "";
    lease = lease ? lease : holder->lease;
    if (*lease)
        snprintf (token, sizeof token, ", \"lease\": \"%s\"", lease);
    snprintf (json, sizeof json, "{\"id\": \"%s\", \"attempt\": %d%s%s%s}", holder->id,
              holder->attempt, token, *fields ? ", " : "", fields);
    rig_worker_result (worker, json);
    rig_core_turn (worker->rig);
}

static void s_test_who (rig_core_t *rig) {
    bk_stats_t *stats = &rig->engine->stats;
    rig_worker_t *holder = rig_core_worker (rig, "holder", 1);
    rig_worker_t *other = rig_core_worker (rig, "other", 0);
    rig_worker_t *stranger = rig_core_worker (rig, "stranger", 0);
    rig_worker_send (stranger, AQ_CMD_BYE, NULL); //  known no more, still connected
    stranger->silent = true;
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", id);
    rig_worker_expect (holder, id, "");
    uint8_t raw[16];
    aq_uuid_parse (id, raw);
    bk_leases_t *leases = bk_dispatch_leases (rig->dispatch);
    int index = bk_leases_holder (leases, raw, BK_LEASE_CALL, 1);
    assert (index >= 0);

    //  another worker with the id, attempt and token: refused
    uint64_t refused = stats->refused_results, dropped = stats->dropped;
    s_send_as (other, holder, NULL, "\"statusCode\": 200");
    assert (stats->refused_results == refused + 1);
    //  a peer that never said READY (it is told 410): refused
    s_send_as (stranger, holder, NULL, "\"statusCode\": 200");
    assert (stats->refused_results == refused + 2);
    assert (!rig_worker_job (stranger) && stranger->last_error == 410);
    //  the holder with a wrong token, or none: refused
    s_send_as (holder, holder, "00000000000000000000000000000000", "\"statusCode\": 200");
    s_send_as (holder, holder, "", "\"lease\": 7, \"statusCode\": 200");
    assert (stats->refused_results == refused + 4 && stats->dropped == dropped);
    //  the call's token for a request of another kind, or of another
    //  attempt, which it does not hold: dropped
    s_send_as (holder, holder, NULL, "\"kind\": \"poll\", \"statusCode\": 200");
    s_send_as (holder, holder, NULL, "\"kind\": \"notify\", \"statusCode\": 200");
    holder->attempt++;
    s_send_as (holder, holder, NULL, "\"statusCode\": 200");
    holder->attempt--;
    assert (stats->refused_results == refused + 4 && stats->dropped == dropped + 3);
    //  none of them settled the call or ended the lease
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_PROCESSING);
    assert (strcmp (task->lease, holder->lease) == 0);
    assert (bk_leases_holder (leases, raw, BK_LEASE_CALL, 1) == index &&
            bk_leases_count (leases) == 1);
    //  the holder's own answer, once
    s_send_as (holder, holder, NULL, "\"statusCode\": 200");
    assert (!rig_core_is (rig, id, BK_ST_COMPLETED)->lease[0]);
    assert (bk_leases_holder (leases, raw, BK_LEASE_CALL, 1) == BK_LEASE_NONE &&
            bk_leases_count (leases) == 0);
    s_send_as (holder, holder, NULL, "\"statusCode\": 500");
    assert (stats->dropped == dropped + 4 && stats->refused_results == refused + 4);
    rig_core_is (rig, id, BK_ST_COMPLETED);
    //  no id, or not a task id: malformed
    uint64_t malformed = stats->malformed;
    rig_worker_result (holder, "{\"id\": \"nope\"}");
    rig_worker_result (holder, "{\"id\": 5}");
    rig_core_turn (rig);
    assert (stats->malformed == malformed + 2);
    rig_worker_bye (holder);
    rig_worker_bye (other);
    rig_worker_vanish (stranger);
}

static void s_test_kinds (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, "kinds", 1);
    char id[AQ_UUID_TEXT];
    //  a call's answer is the result: status, headers, duration, body, truncation
    rig_core_created (rig, "{\"targetUrl\": \"http://t.test/x\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 202, \"headers\": {\"AsyncQueue-Wait\": "
                               "\"false\"}, \"body\": \"abc\", \"bodyTruncated\": true, "
                               "\"duration\": 9}");
    rig_core_get_shows (rig, id,
                        "\"result\":{\"statusCode\":202,\"headers\":{\"AsyncQueue-Wait\":"
                        "\"false\"},\"duration\":9,\"body\":\"abc\",\"bodyTruncated\":true}");
    //  polls: an error or a 429 while running asks again later, after
    //  Retry-After (at most an hour) or the interval
    rig_core_created (rig,
                      "{\"targetUrl\": \"http://t.test/jobs\", \"maxWaitTime\": 86400, "
                      "\"pollConfig\": {\"urlTemplate\": \"http://t.test/jobs/1\", "
                      "\"statusPath\": \"s\", \"doneValues\": [\"ok\"], \"failValues\": []}}",
                      id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    static const struct {
        const char *answer;
        int64_t next; //  ms to the next poll
    } polls[] = {{"{\"statusCode\": 429, \"retryAfter\": 7200}", 3600000},
                 {"{\"statusCode\": 503, \"retryAfter\": 5}", 5000},
                 {"{\"error\": \"fetch failed: ECONNREFUSED\"}", 2000},
                 {"{\"statusCode\": 200, \"body\": \"{\\\"s\\\": \\\"busy\\\"}\"}", 2000}};
    for (size_t i = 0; i < sizeof polls / sizeof *polls; i++) {
        rig_core_later (rig, i ? polls[i - 1].next : 2000);
        rig_worker_expect (worker, id, "poll");
        //  the poll's token for a call it does not hold: dropped
        uint64_t dropped = rig->engine->stats.dropped;
        s_send_as (worker, worker, NULL, "\"kind\": \"call\", \"statusCode\": 200");
        assert (rig->engine->stats.dropped == dropped + 1);
        rig_worker_answer (worker, polls[i].answer);
        const bk_task_t *task = rig_core_is (rig, id, BK_ST_POLLING);
        assert (!task->poll.inflight && task->poll.due == rig->now + polls[i].next);
    }
    rig_core_later (rig, 2000);
    rig_worker_expect (worker, id, "poll");
    rig_worker_answer (worker, "{\"statusCode\": 200, \"body\": \"{\\\"s\\\": \\\"ok\\\"}\"}");
    rig_core_is (rig, id, BK_ST_COMPLETED);
    //  deliveries: an answer to a delivery no longer in flight counts for nothing
    rig_core_created (
        rig, "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": \"http://h.test/\"}", id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_worker_expect (worker, id, "notify");
    rig_worker_answer (worker, "{\"statusCode\": 500}");
    uint64_t dropped = rig->engine->stats.dropped;
    rig_worker_answer (worker, "{\"statusCode\": 200}"); //  the same delivery again
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_COMPLETED);
    assert (task->on_complete.status == BK_OUTCOME_RETRYING && task->on_complete.attempts == 1);
    assert (rig->engine->stats.dropped == dropped + 1);
    rig_core_later (rig, 1000);
    rig_worker_expect (worker, id, "notify");
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    assert (rig_core_is (rig, id, BK_ST_COMPLETED)->on_complete.status == BK_OUTCOME_DELIVERED);
    //  a failed task retried while its delivery is out: the worker's slot
    //  frees at once (the retried call takes it), the delivery's answer no
    //  longer counts
    rig_core_created (rig,
                      "{\"targetUrl\": \"http://t.test/x\", \"maxRetries\": 0, "
                      "\"onCompleteUrl\": \"http://h.test/\"}",
                      id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker, "{\"statusCode\": 500}");
    rig_worker_expect (worker, id, "notify");
    char delivered[256];
    snprintf (delivered, sizeof delivered,
              "{\"kind\": \"notify\", \"attempt\": 1, \"lease\": \"%s\", \"statusCode\": 200}",
              worker->lease);
    assert (rig_core_call (rig, AQ_CMD_TASK_RETRY, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    rig_worker_expect (worker, id, "");
    assert (worker->attempt == 2);
    uint64_t refused = rig->engine->stats.refused_results;
    dropped = rig->engine->stats.dropped;
    rig_worker_result (worker, delivered);
    rig_core_turn (rig);
    assert (rig->engine->stats.dropped == dropped + 1);
    assert (rig->engine->stats.refused_results == refused);
    assert (rig_core_is (rig, id, BK_ST_PROCESSING)->on_complete.status == BK_OUTCOME_NONE);
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    rig_worker_expect (worker, id, "notify");
    assert (worker->attempt == 1);
    rig_worker_answer (worker, "{\"statusCode\": 200}");
    assert (rig_core_is (rig, id, BK_ST_COMPLETED)->on_complete.status == BK_OUTCOME_DELIVERED);
    rig_worker_bye (worker);
}

//  A lease is named by its kind too: a poll still out when its task timed
//  out and the task's delivery both carry number 1, at two workers; each
//  answer counts for its own request
static void s_test_names (rig_core_t *rig) {
    rig_worker_t *a = rig_core_worker (rig, "names-a", 1);
    char id[AQ_UUID_TEXT];
    rig_core_created (rig,
                      "{\"targetUrl\": \"http://t.test/jobs\", \"maxWaitTime\": 5, "
                      "\"onCompleteUrl\": \"http://h.test/\", \"pollConfig\": {\"urlTemplate\": "
                      "\"http://t.test/jobs/1\", \"statusPath\": \"s\", \"doneValues\": "
                      "[\"ok\"], \"failValues\": [], \"intervalSeconds\": 1}}",
                      id);
    rig_worker_expect (a, id, "");
    rig_worker_answer (a, "{\"statusCode\": 200}");
    rig_core_later (rig, 1000);
    rig_worker_expect (a, id, "poll"); //  never answered before the timeout
    assert (a->attempt == 1);
    rig_worker_t *b = rig_core_worker (rig, "names-b", 1);
    rig_core_later (rig, 4000);
    rig_worker_expect (b, id, "notify");
    assert (b->attempt == 1);
    uint64_t refused = rig->engine->stats.refused_results;
    rig_worker_answer (b, "{\"statusCode\": 200}");
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_TIMEOUT);
    assert (task->on_complete.status == BK_OUTCOME_DELIVERED);
    uint64_t dropped = rig->engine->stats.dropped;
    rig_worker_answer (a, "{\"statusCode\": 200, \"body\": \"{\\\"s\\\": \\\"ok\\\"}\"}");
    assert (rig->engine->stats.refused_results == refused);
    assert (rig->engine->stats.dropped == dropped + 1);
    assert (bk_leases_count (bk_dispatch_leases (rig->dispatch)) == 0);
    rig_core_is (rig, id, BK_ST_TIMEOUT);
    rig_worker_bye (a);
    rig_worker_bye (b);
}

//  A provider task cancelled while its host still reads the job's first
//  answer: the plan that comes after gives the cancel URL, and the cancel
//  goes out (the provider's job does not run on unwatched).
static void s_test_cancel_before_plan (rig_core_t *rig) {
    rig_worker_t *worker = rig_core_worker (rig, "plan", 1);
    char id[AQ_UUID_TEXT], text[256];
    rig_core_created (rig,
                      "{\"targetUrl\": \"https://queue.fal.run/fal-ai/flux\", \"provider\": "
                      "\"fal\", \"headers\": {\"Authorization\": \"Key k1\"}}",
                      id);
    rig_worker_expect (worker, id, "");
    rig_worker_answer (worker,
                       "{\"statusCode\": 200, \"body\": \"{\\\"request_id\\\": \\\"r9\\\"}\"}");
    assert (rig_core_is (rig, id, BK_ST_POLLING)->poll.op_pending);
    assert (rig_core_call (rig, AQ_CMD_TASK_CANCEL, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_CANCELLED);
    assert (task->poll.cancel_owed && task->poll.op_pending && !task->poll.cancel_url);
    rig_core_provider_reply (
        rig, id,
        "{\"state\": 0, \"plan\": {\"statusUrl\": "
        "\"https://queue.fal.run/fal-ai/flux/requests/r9/status\", \"cancelUrl\": "
        "\"https://queue.fal.run/fal-ai/flux/requests/r9/cancel\", \"cancelMethod\": \"PUT\"}}",
        NULL);
    rig_worker_expect (worker, id, "cancel");
    assert (strcmp (rig_worker_field (worker, "url", text, sizeof text),
                    "https://queue.fal.run/fal-ai/flux/requests/r9/cancel") == 0);
    assert (strcmp (rig_worker_field (worker, "method", text, sizeof text), "PUT") == 0);
    task = rig_core_is (rig, id, BK_ST_CANCELLED);
    assert (!task->poll.cancel_owed && !task->poll.op_pending);
    rig_worker_answer (worker, "{\"statusCode\": 202}");
    rig_worker_bye (worker);
}

void bk_results_test (bool verbose) {
    rig_core_t *rig = rig_core_new ("results", false);
    s_test_who (rig);
    s_test_kinds (rig);
    s_test_names (rig);
    rig_core_destroy (&rig);
    rig = rig_core_new ("results-plan", true);
    s_test_cancel_before_plan (rig);
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_results: ok\n");
}
