/*  upgrade_task.c - layout-1 tasks and attempts to their layout-2 records

    The converters of BK_DB_TASKS and BK_DB_ATTEMPTS for upgrade_v1.c,
    whose opening comment lists where every layout-1 field goes.
*/
#include "upgrade_v1.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "backoff.h"
#include "task.h"
#include "tasks.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DONE  BK_UPGRADE_V1_DONE
#define S_BAD   BK_UPGRADE_V1_BAD
#define S_STORE BK_UPGRADE_V1_STORE

//  A string, copied into the task's arena.
static bool s_text (bk_task_t *task, const aq_node_t *value, char **out) {
    if (!aq_node_is_str (value))
        return false;
    *out = bk_arena_strndup (task->arena, (const char *) value->data, value->count);
    return true;
}

//  A value of any type, its msgpack bytes copied into the task's arena.
static void s_blob (bk_task_t *task, const aq_node_t *value, bk_blob_t *out) {
    bk_task_set_blob (task, out, value->raw, value->raw_size);
}

//  An ISO 8601 time (as layout 1 wrote onComplete.deliveredAt), or ms.
static bool s_iso_time (const aq_node_t *value, int64_t *out) {
    char text[64];
    if (value->type == AQ_NODE_INT)
        return bk_upgrade_v1_int (value, out);
    return aq_node_strcpy (value, text, sizeof text) && aq_time_parse (text, out) == 0;
}
#define FIELD(text) aq_node_streq (&name, text)

//  --------------------------------------------------------------------------
//  Tasks

static int s_task_poll (bk_upgrade_v1_t *self, bk_task_t *task, const aq_node_t *map) {
    if (map->type != AQ_NODE_MAP)
        return bk_upgrade_v1_bad (self, "field '_poll' is malformed");
    bk_poll_t *poll = &task->poll;
    poll->active = true;
    int64_t ops = 0, op_n = 0;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok;
        if (FIELD ("stage"))
            ok = bk_upgrade_v1_count (&value, &poll->stage);
        else if (FIELD ("seq"))
            ok = bk_upgrade_v1_count (&value, &poll->seq);
        else if (FIELD ("inflight"))
            ok = bk_upgrade_v1_bool (&value, &poll->inflight);
        else if (FIELD ("due"))
            ok = bk_upgrade_v1_int (&value, &poll->due);
        else if (FIELD ("interval"))
            ok = bk_upgrade_v1_int (&value, &poll->interval_ms);
        else if (FIELD ("statusUrl"))
            ok = s_text (task, &value, &poll->status_url);
        else if (FIELD ("resultUrl"))
            ok = s_text (task, &value, &poll->result_url);
        else if (FIELD ("cancelUrl"))
            ok = s_text (task, &value, &poll->cancel_url);
        else if (FIELD ("cancelMethod"))
            ok = s_text (task, &value, &poll->cancel_method);
        else if (FIELD ("fetchState"))
            ok = bk_upgrade_v1_count (&value, &poll->fetch_state);
        else if (FIELD ("fetchError"))
            ok = s_text (task, &value, &poll->fetch_error);
        else if (FIELD ("lease"))
            ok = aq_node_strcpy (&value, poll->lease, sizeof poll->lease);
        else if (FIELD ("ops"))
            ok = bk_upgrade_v1_int (&value, &ops) && ops >= 0;
        else if (FIELD ("op")) {
            //  a provider op waiting for its host's reply: {n, stage, answer}
            aq_node_t n, stage, answer;
            ok = value.type == AQ_NODE_MAP && value.count == 3 && aq_node_get (&value, "n", &n) &&
                 bk_upgrade_v1_int (&n, &op_n) && op_n > 0 &&
                 aq_node_get (&value, "stage", &stage) &&
                 bk_upgrade_v1_count (&stage, &poll->op_stage) &&
                 aq_node_get (&value, "answer", &answer) && answer.type == AQ_NODE_MAP;
            if (ok) {
                s_blob (task, &answer, &poll->op);
                poll->op_pending = true;
            }
        } else
            return bk_upgrade_v1_unknown (self, "_poll.", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "_poll.", &name);
    }
    //  the op's number is the one its host's reply names; ops counts them
    poll->op_n = poll->op_pending ? op_n : ops;
    return S_DONE;
}

static int s_task_notify (bk_upgrade_v1_t *self, bk_task_t *task, const aq_node_t *map) {
    if (map->type != AQ_NODE_MAP)
        return bk_upgrade_v1_bad (self, "field '_notify' is malformed");
    bk_notify_t *notify = &task->notify;
    notify->active = true;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok;
        if (FIELD ("attempt"))
            ok = bk_upgrade_v1_count (&value, &notify->attempt);
        else if (FIELD ("inflight"))
            ok = bk_upgrade_v1_bool (&value, &notify->inflight);
        else if (FIELD ("due"))
            ok = bk_upgrade_v1_int (&value, &notify->due);
        else if (FIELD ("lease"))
            ok = aq_node_strcpy (&value, notify->lease, sizeof notify->lease);
        else
            return bk_upgrade_v1_unknown (self, "_notify.", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "_notify.", &name);
    }
    return S_DONE;
}

static int s_task_outcome (bk_upgrade_v1_t *self, bk_task_t *task, const aq_node_t *map) {
    static const char *const names[] = {NULL, "pending", "retrying", "delivered", "failed"};
    if (map->type != AQ_NODE_MAP)
        return bk_upgrade_v1_bad (self, "field 'onComplete' is malformed");
    bk_outcome_t *outcome = &task->on_complete;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok = false;
        if (FIELD ("status")) {
            for (int i = BK_OUTCOME_PENDING; i <= BK_OUTCOME_FAILED && !ok; i++)
                if (aq_node_streq (&value, names[i]))
                    outcome->status = i, ok = true;
        } else if (FIELD ("attempts"))
            ok = bk_upgrade_v1_count (&value, &outcome->attempts);
        else if (FIELD ("statusCode"))
            ok = bk_upgrade_v1_count (&value, &outcome->status_code);
        else if (FIELD ("error"))
            ok = s_text (task, &value, &outcome->error);
        else if (FIELD ("deliveredAt"))
            ok = s_iso_time (&value, &outcome->delivered_at);
        else
            return bk_upgrade_v1_unknown (self, "onComplete.", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "onComplete.", &name);
    }
    if (outcome->status == BK_OUTCOME_NONE)
        return bk_upgrade_v1_bad (self, "field 'onComplete.status' is missing");
    return S_DONE;
}

//  The task's fields, into task; S_DONE or S_BAD.
static int s_task_fields (bk_upgrade_v1_t *self, bk_task_t *task, const aq_node_t *v1) {
    enum { ID = 1, TEAM = 2, STATUS = 4, URL = 8, CREATED = 16, SEQ = 32 };
    enum { SCHEDULE = 1, RUN = 2, STEP = 4 };
    int seen = 0, run = 0;
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok = false;
        int64_t number;
        int rc = S_DONE;
        if (FIELD ("id"))
            ok = bk_upgrade_v1_uuid (&value, task->id), seen |= ID;
        else if (FIELD ("teamId"))
            ok = bk_upgrade_v1_uuid (&value, task->team), seen |= TEAM;
        else if (FIELD ("status"))
            ok = aq_node_is_str (&value) &&
                 (task->status = bk_status_parse ((const char *) value.data, value.count)) != 0,
            seen |= STATUS;
        else if (FIELD ("targetUrl"))
            ok = s_text (task, &value, &task->target_url), seen |= URL;
        else if (FIELD ("method")) {
            for (int i = BK_METHOD_GET; i <= BK_METHOD_DELETE && !ok; i++)
                if (aq_node_streq (&value, bk_method_name (i)))
                    task->method = i, ok = true;
        } else if (FIELD ("headers")) {
            ok = value.type == AQ_NODE_MAP;
            s_blob (task, &value, &task->headers);
        } else if (FIELD ("body")) {
            ok = aq_node_is_str (&value);
            if (ok) {
                task->body = bk_arena_strndup (task->arena, (const char *) value.data, value.count);
                task->body_size = value.count;
            }
        } else if (FIELD ("maxWaitTime"))
            ok = bk_upgrade_v1_count (&value, &task->max_wait_s);
        else if (FIELD ("timeout"))
            ok = bk_upgrade_v1_count (&value, &task->timeout_s);
        else if (FIELD ("delayUntil"))
            ok = bk_upgrade_v1_int (&value, &task->delay_until);
        else if (FIELD ("maxRetries"))
            ok = bk_upgrade_v1_count (&value, &task->max_retries);
        else if (FIELD ("retryCount"))
            ok = bk_upgrade_v1_count (&value, &task->retry_count);
        else if (FIELD ("retryBackoff"))
            ok = aq_node_is_str (&value) &&
                 (task->backoff = bk_backoff_parse ((const char *) value.data, value.count)) >= 0;
        else if (FIELD ("priority"))
            ok = bk_upgrade_v1_count (&value, &task->priority);
        else if (FIELD ("onCompleteUrl"))
            ok = s_text (task, &value, &task->on_complete_url);
        else if (FIELD ("provider"))
            ok = s_text (task, &value, &task->provider);
        else if (FIELD ("pollConfig")) {
            ok = value.type == AQ_NODE_MAP;
            s_blob (task, &value, &task->poll_config);
        } else if (FIELD ("scheduleId"))
            ok = bk_upgrade_v1_uuid (&value, task->schedule_id), run |= SCHEDULE;
        else if (FIELD ("runId"))
            ok = bk_upgrade_v1_uuid (&value, task->run_id), run |= RUN;
        else if (FIELD ("step"))
            ok = bk_upgrade_v1_count (&value, &task->step), run |= STEP;
        else if (FIELD ("result")) {
            ok = true;
            s_blob (task, &value, &task->result);
        } else if (FIELD ("error"))
            ok = s_text (task, &value, &task->error);
        else if (FIELD ("onComplete"))
            ok = (rc = s_task_outcome (self, task, &value)) == S_DONE;
        else if (FIELD ("nextAttemptAt"))
            ok = bk_upgrade_v1_int (&value, &task->next_attempt_at);
        else if (FIELD ("createdAt"))
            ok = bk_upgrade_v1_int (&value, &task->created_at), seen |= CREATED;
        else if (FIELD ("startedAt"))
            ok = bk_upgrade_v1_int (&value, &task->started_at);
        else if (FIELD ("completedAt"))
            ok = bk_upgrade_v1_int (&value, &task->completed_at);
        else if (FIELD ("_seq")) {
            ok = bk_upgrade_v1_int (&value, &number) && number >= 0, seen |= SEQ;
            task->seq = (uint64_t) number;
        } else if (FIELD ("_attempts"))
            ok = bk_upgrade_v1_count (&value, &task->attempts);
        else if (FIELD ("_attemptAt"))
            ok = bk_upgrade_v1_int (&value, &task->attempt_at);
        else if (FIELD ("_due"))
            ok = bk_upgrade_v1_int (&value, &task->due);
        else if (FIELD ("_deadline"))
            ok = bk_upgrade_v1_int (&value, &task->deadline);
        else if (FIELD ("_lease"))
            ok = aq_node_strcpy (&value, task->lease, sizeof task->lease);
        else if (FIELD ("_signal"))
            ok = aq_node_strcpy (&value, task->signal, sizeof task->signal);
        else if (FIELD ("_poll"))
            ok = (rc = s_task_poll (self, task, &value)) == S_DONE;
        else if (FIELD ("_notify"))
            ok = (rc = s_task_notify (self, task, &value)) == S_DONE;
        else
            return bk_upgrade_v1_unknown (self, "", &name);
        if (rc != S_DONE)
            return rc;
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "", &name);
    }
    static const char *const required[] = {"id",        "teamId",    "status",
                                           "targetUrl", "createdAt", "_seq"};
    for (int i = 0; i < 6; i++)
        if (!(seen & (1 << i)))
            return bk_upgrade_v1_bad (self, "field '%s' is missing", required[i]);
    if (run && run != (SCHEDULE | RUN | STEP))
        return bk_upgrade_v1_bad (self, "fields 'scheduleId', 'runId' and 'step' come together");
    task->in_run = run != 0;
    return S_DONE;
}

int bk_upgrade_task_convert (bk_upgrade_v1_t *self, const uint8_t *key, size_t key_size,
                             const aq_node_t *v1) {
    bk_task_t *task = bk_task_new (v1->raw_size);
    int rc = s_task_fields (self, task, v1);
    if (rc == S_DONE && (key_size != 16 || memcmp (task->id, key, 16) != 0))
        rc = bk_upgrade_v1_bad (self, "field 'id' is not the record's key");
    if (rc == S_DONE) {
        bk_task_encode (task, &self->w);
        size_t size;
        const uint8_t *data = aq_writer_data (&self->w, &size);
        bk_task_t *check = data ? bk_task_decode (data, size) : NULL;
        rc = check ? bk_upgrade_v1_put (self, BK_DB_TASKS, key, key_size)
                   : bk_upgrade_v1_bad (self, "its layout-2 record does not decode");
        bk_task_destroy (&check);
    }
    bk_task_destroy (&task);
    return rc;
}

//  --------------------------------------------------------------------------
//  Attempts

int bk_upgrade_task_attempt (bk_upgrade_v1_t *self, const uint8_t *key, size_t key_size,
                             const aq_node_t *v1) {
    if (key_size != 18)
        return bk_upgrade_v1_bad (self, "the key is not a task id and an attempt number");
    bk_attempt_t attempt = {.attempt = -1, .started_at = -1, .status_code = -1};
    aq_node_t error = {.type = AQ_NODE_NIL};
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        bool ok;
        if (FIELD ("attempt"))
            ok = bk_upgrade_v1_count (&value, &attempt.attempt);
        else if (FIELD ("startedAt"))
            ok = bk_upgrade_v1_int (&value, &attempt.started_at);
        else if (FIELD ("duration"))
            ok = bk_upgrade_v1_int (&value, &attempt.duration);
        else if (FIELD ("statusCode"))
            ok = bk_upgrade_v1_count (&value, &attempt.status_code);
        else if (FIELD ("error"))
            ok = aq_node_is_str (&value), error = value;
        else
            return bk_upgrade_v1_unknown (self, "", &name);
        if (!ok)
            return bk_upgrade_v1_bad_field (self, "", &name);
    }
    if (attempt.attempt != (key[16] << 8 | key[17]))
        return bk_upgrade_v1_bad (self, "field 'attempt' is not the key's attempt number");
    if (attempt.started_at < 0)
        return bk_upgrade_v1_bad (self, "field 'startedAt' is missing");
    char *text = error.type == AQ_NODE_STR
                     ? strndup ((const char *) error.data, error.count) //  may hold a NUL
                     : NULL;
    attempt.error = text;
    uint8_t id[16];
    memcpy (id, key, 16);
    int rc = bk_tasks_add_attempt (self->store, id, &attempt);
    free (text);
    if (rc != 0) {
        self->store_rc = rc;
        return S_STORE;
    }
    self->written += v1->raw_size;
    return S_DONE;
}
#undef FIELD

//  --------------------------------------------------------------------------
//  Selftest: one layout-1 record per interesting state, written with the
//  old code's json_pack shapes (broker/old/), converted, then read with
//  the layout-2 decoders and compared field by field.

#include "../tests/rig_v1.h"
#include "aq_json.h"

#define S_T0 1765000000000LL //  2025-12-06T05:46:40.000Z

static void s_test_uuid (int n, uint8_t id[16], char text[AQ_UUID_TEXT]) {
    static const uint8_t base[16] = {0x01, 0x9a, 0xf1, 0x2c, 0x3b, 0x00, 0x70, 0x00,
                                     0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy (id, base, 16);
    id[14] = (uint8_t) (n >> 8), id[15] = (uint8_t) n;
    aq_uuid_format (id, text);
}

//  Converts the record under key; returns what the converter said, its
//  reason in why (when not NULL).
static int s_test_convert (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                           char *why) {
    bk_val_t val;
    aq_node_t v1;
    assert (bk_store_get (store, db, key, key_size, &val) == 0);
    assert (aq_msg_parse (val.data, val.size, &v1) == 0);
    bk_upgrade_v1_t self = {.store = store};
    aq_writer_init (&self.w);
    int rc = bk_upgrade_v1_convert (&self, db, key, key_size, &v1);
    if (why)
        snprintf (why, 256, "%s", self.why);
    aq_writer_release (&self.w);
    return rc;
}
//  The task converted from its layout-1 record, as layout 2 reads it.
static bk_task_t *s_test_task (bk_store_t *store, const uint8_t id[16]) {
    assert (s_test_convert (store, BK_DB_TASKS, id, 16, NULL) == S_DONE);
    bk_task_t *task = bk_tasks_get (store, id);
    assert (task);
    return task;
}

static void s_test_str (const char *got, const char *want) {
    assert (want ? got && strcmp (got, want) == 0 : !got);
}

//  A blob's JSON text is want (NULL: no blob).
static void s_test_json (const bk_blob_t *blob, const char *want) {
    if (!want) {
        assert (!blob->size);
        return;
    }
    aq_node_t node;
    assert (aq_msg_parse (blob->data, blob->size, &node) == 0);
    char *text = aq_json_dumps (&node);
    assert (text && strcmp (text, want) == 0);
    free (text);
}

//  The bookkeeping a task without it has: nothing in flight, no timers.
static void s_test_idle (const bk_task_t *task) {
    assert (!*task->lease && !*task->signal && task->due == -1 && task->deadline == -1);
    assert (!task->poll.active && !task->notify.active && !task->in_run);
}

static void s_test_tasks (bk_store_t *store, const uint8_t alpha[16], const char *alpha_text,
                          const uint8_t beta[16], const char *beta_text) {
    uint8_t id[20][16];
    char text[20][AQ_UUID_TEXT];
    for (int i = 0; i < 20; i++)
        s_test_uuid (100 + i, id[i], text[i]);
    const char *lease = "0123456789abcdef0123456789abcdef";
    const char *signal = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
    bk_task_t *task;

    //  pending, as bk_task_from_request, bk_broker_task_build and _insert left it
    rig_v1_put (store, BK_DB_TASKS, id[0], 16,
                "{s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:I, "
                "s:I, s:i}",
                "id", text[0], "teamId", alpha_text, "targetUrl", "https://api.example.com/hook",
                "method", "PUT", "headers", "Authorization", "tok_0123456789abcdef0123456789abcdef",
                "body", "{\"n\":1}", "maxWaitTime", 30, "timeout", 20, "maxRetries", 5,
                "retryCount", 0, "retryBackoff", "linear", "priority", 9, "onCompleteUrl",
                "https://hooks.example.com/done", "status", "pending", "createdAt", S_T0, "_seq",
                1LL, "_attempts", 0);
    task = s_test_task (store, id[0]);
    assert (memcmp (task->id, id[0], 16) == 0 && memcmp (task->team, alpha, 16) == 0);
    assert (task->seq == 1 && task->status == BK_ST_PENDING && task->method == BK_METHOD_PUT);
    s_test_str (task->target_url, "https://api.example.com/hook");
    s_test_json (&task->headers, "{\"Authorization\":\"tok_0123456789abcdef0123456789abcdef\"}");
    assert (task->body_size == 7 && memcmp (task->body, "{\"n\":1}", 7) == 0);
    assert (task->max_wait_s == 30 && task->timeout_s == 20 && task->delay_until == -1);
    assert (task->max_retries == 5 && task->retry_count == 0 && task->priority == 9);
    assert (task->backoff == BK_BACKOFF_LINEAR);
    s_test_str (task->on_complete_url, "https://hooks.example.com/done");
    assert (!task->provider && !task->poll_config.size && !task->result.size && !task->error);
    assert (task->on_complete.status == BK_OUTCOME_NONE && task->next_attempt_at == -1);
    assert (task->created_at == S_T0 && task->started_at == -1 && task->completed_at == -1);
    assert (task->attempts == 0 && task->attempt_at == -1);
    s_test_idle (task);
    bk_task_destroy (&task);

    //  delayed until a time: in the delay queue (_due)
    rig_v1_put (store, BK_DB_TASKS, id[1], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:I, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, "
                "s:I}",
                "id", text[1], "teamId", alpha_text, "targetUrl", "http://10.0.0.1:8080/x",
                "method", "GET", "headers", "maxWaitTime", 30, "timeout", 30, "delayUntil",
                S_T0 + 3600000, "maxRetries", 3, "retryCount", 0, "retryBackoff",
                "exponential_jitter", "priority", 5, "status", "delayed", "createdAt", S_T0, "_seq",
                2LL, "_attempts", 0, "_due", S_T0 + 3600000);
    task = s_test_task (store, id[1]);
    assert (task->status == BK_ST_DELAYED && task->method == BK_METHOD_GET && !task->body);
    s_test_json (&task->headers, "{}");
    assert (task->delay_until == S_T0 + 3600000 && task->due == S_T0 + 3600000);
    assert (task->backoff == BK_BACKOFF_JITTER && task->seq == 2);
    bk_task_destroy (&task);

    //  delayed for a retry after a 503, with its attempt
    rig_v1_put (store, BK_DB_TASKS, id[2], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, s:I, "
                "s:I, s:s, s:I, s:I}",
                "id", text[2], "teamId", alpha_text, "targetUrl", "https://api.example.com/busy",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 3,
                "retryCount", 1, "retryBackoff", "exponential", "priority", 5, "status", "delayed",
                "createdAt", S_T0, "_seq", 3LL, "_attempts", 1, "_attemptAt", S_T0 + 10,
                "startedAt", S_T0 + 10, "error", "HTTP 503", "nextAttemptAt", S_T0 + 3600010,
                "_due", S_T0 + 3600010);
    uint8_t akey[18];
    memcpy (akey, id[2], 16), akey[16] = 0, akey[17] = 1;
    rig_v1_put (store, BK_DB_ATTEMPTS, akey, 18, "{s:i, s:I, s:I, s:i}", "attempt", 1, "startedAt",
                S_T0 + 10, "duration", 120LL, "statusCode", 503);
    task = s_test_task (store, id[2]);
    assert (task->status == BK_ST_DELAYED && task->retry_count == 1 && task->attempts == 1);
    assert (task->backoff == BK_BACKOFF_EXPONENTIAL && task->method == BK_METHOD_POST);
    s_test_str (task->error, "HTTP 503");
    assert (task->next_attempt_at == S_T0 + 3600010 && task->due == S_T0 + 3600010);
    assert (task->attempt_at == S_T0 + 10 && task->started_at == S_T0 + 10);
    bk_task_destroy (&task);
    assert (s_test_convert (store, BK_DB_ATTEMPTS, akey, 18, NULL) == S_DONE);
    aq_writer_t w;
    aq_writer_init (&w);
    bk_tasks_write_attempts (store, id[2], &w);
    size_t size;
    const uint8_t *bytes = aq_writer_data (&w, &size);
    aq_node_t list;
    assert (aq_msg_parse (bytes, size, &list) == 0);
    char *shown = aq_json_dumps (&list);
    assert (strcmp (shown, "[{\"attempt\":1,\"startedAt\":\"2025-12-06T05:46:40.010Z\","
                           "\"duration\":120,\"statusCode\":503}]") == 0);
    free (shown);

    //  processing: its lease token kept for a worker that outlived the stop
    rig_v1_put (store, BK_DB_TASKS, id[3], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, s:I, "
                "s:I, s:s, s:s}",
                "id", text[3], "teamId", alpha_text, "targetUrl", "https://api.example.com/slow",
                "method", "DELETE", "headers", "maxWaitTime", 30, "timeout", 300, "maxRetries", 3,
                "retryCount", 1, "retryBackoff", "fixed", "priority", 1, "status", "processing",
                "createdAt", S_T0, "_seq", 4LL, "_attempts", 2, "_attemptAt", S_T0 + 2000,
                "startedAt", S_T0 + 5, "error", "worker lost", "_lease", lease);
    memcpy (akey, id[3], 16), akey[17] = 1;
    rig_v1_put (store, BK_DB_ATTEMPTS, akey, 18, "{s:i, s:I, s:I, s:s}", "attempt", 1, "startedAt",
                S_T0 + 5, "duration", 1995LL, "error", "worker lost");
    task = s_test_task (store, id[3]);
    assert (task->status == BK_ST_PROCESSING && task->method == BK_METHOD_DELETE);
    assert (task->attempts == 2 && task->attempt_at == S_T0 + 2000 && task->timeout_s == 300);
    assert (strcmp (task->lease, lease) == 0 && task->backoff == BK_BACKOFF_FIXED);
    assert (task->priority == 1 && task->retry_count == 1);
    bk_task_destroy (&task);
    assert (s_test_convert (store, BK_DB_ATTEMPTS, akey, 18, NULL) == S_DONE);
    aq_writer_reset (&w);
    bk_tasks_write_attempts (store, id[3], &w);
    bytes = aq_writer_data (&w, &size);
    assert (aq_msg_parse (bytes, size, &list) == 0);
    shown = aq_json_dumps (&list);
    assert (strcmp (shown, "[{\"attempt\":1,\"startedAt\":\"2025-12-06T05:46:40.005Z\","
                           "\"duration\":1995,\"error\":\"worker lost\"}]") == 0);
    free (shown);

    //  waiting for a signal: the token's hash, the maxWaitTime timer, the 202
    rig_v1_put (store, BK_DB_TASKS, id[4], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, s:I, "
                "s:I, s:{s:i, s:{s:s}, s:I, s:s}, s:I, s:s}",
                "id", text[4], "teamId", alpha_text, "targetUrl", "https://api.example.com/later",
                "method", "POST", "headers", "maxWaitTime", 600, "timeout", 30, "maxRetries", 3,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "status", "waiting",
                "createdAt", S_T0, "_seq", 5LL, "_attempts", 1, "_attemptAt", S_T0 + 1, "startedAt",
                S_T0 + 1, "result", "statusCode", 202, "headers", "asyncqueue-wait", "true",
                "duration", 15LL, "body", "queued", "_deadline", S_T0 + 600016, "_signal", signal);
    task = s_test_task (store, id[4]);
    assert (task->status == BK_ST_WAITING && task->max_wait_s == 600);
    assert (task->deadline == S_T0 + 600016 && strcmp (task->signal, signal) == 0);
    s_test_json (&task->result, "{\"statusCode\":202,\"headers\":{\"asyncqueue-wait\":\"true\"},"
                                "\"duration\":15,\"body\":\"queued\"}");
    assert (!*task->lease && task->due == -1);
    bk_task_destroy (&task);

    //  polling a provider, its result-fetch op waiting for the provider host
    rig_v1_put (
        store, BK_DB_TASKS, id[5], 16,
        "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:i, s:I, "
        "s:I, s:{s:i, s:{}, s:I, s:s}, s:I, s:{s:I, s:{s:I, s:i, s:{s:i, s:{s:s}, s:s, s:I}}, "
        "s:i, s:i, s:b, s:s, s:s, s:s, s:s, s:I, s:i, s:s}}",
        "id", text[5], "teamId", alpha_text, "targetUrl", "https://queue.fal.run/fal-ai/flux",
        "method", "POST", "headers", "maxWaitTime", 3600, "timeout", 60, "maxRetries", 3,
        "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "provider", "fal", "status",
        "polling", "createdAt", S_T0, "_seq", 6LL, "_attempts", 1, "_attemptAt", S_T0 + 2,
        "startedAt", S_T0 + 2, "result", "statusCode", 200, "headers", "duration", 30LL, "body",
        "{\"request_id\":\"r1\"}", "_deadline", S_T0 + 3600032, "_poll", "ops", 3LL, "op", "n", 3LL,
        "stage", 2, "answer", "statusCode", 200, "headers", "content-type", "application/json",
        "body", "{\"images\":[]}", "duration", 7LL, "stage", 2, "seq", 2, "inflight", 0,
        "statusUrl", "https://queue.fal.run/r1/status", "resultUrl", "https://queue.fal.run/r1",
        "cancelUrl", "https://queue.fal.run/r1/cancel", "cancelMethod", "PUT", "interval", 1000LL,
        "fetchState", 1, "fetchError", "the model gave up");
    task = s_test_task (store, id[5]);
    assert (task->status == BK_ST_POLLING && task->deadline == S_T0 + 3600032);
    s_test_str (task->provider, "fal");
    const bk_poll_t *poll = &task->poll;
    assert (poll->active && poll->stage == 2 && poll->seq == 2 && !poll->inflight);
    assert (poll->due == -1 && poll->interval_ms == 1000 && !*poll->lease && !poll->cancel_owed);
    s_test_str (poll->status_url, "https://queue.fal.run/r1/status");
    s_test_str (poll->result_url, "https://queue.fal.run/r1");
    s_test_str (poll->cancel_url, "https://queue.fal.run/r1/cancel");
    s_test_str (poll->cancel_method, "PUT");
    assert (poll->fetch_state == 1);
    s_test_str (poll->fetch_error, "the model gave up");
    assert (poll->op_pending && poll->op_n == 3 && poll->op_stage == 2);
    s_test_json (&poll->op,
                 "{\"statusCode\":200,\"headers\":{\"content-type\":\"application/json\"},"
                 "\"body\":\"{\\\"images\\\":[]}\",\"duration\":7}");
    s_test_json (
        &task->result,
        "{\"statusCode\":200,\"headers\":{},\"duration\":30,\"body\":\"{\\\"request_id\\\":"
        "\\\"r1\\\"}\"}");
    bk_task_destroy (&task);

    //  polling with a pollConfig, a status request in flight with its lease
    rig_v1_put (store, BK_DB_TASKS, id[6], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:{s:s, s:s, s:[s], "
                "s:[s, s], s:i}, s:s, s:I, s:I, s:i, s:I, s:I, s:I, s:{s:I, s:s, s:i, s:i, s:b, "
                "s:s, s:I}}",
                "id", text[6], "teamId", alpha_text, "targetUrl", "https://api.example.com/jobs",
                "method", "POST", "headers", "maxWaitTime", 900, "timeout", 10, "maxRetries", 3,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "pollConfig",
                "urlTemplate", "https://api.example.com/jobs/{{id}}", "statusPath", "state",
                "doneValues", "done", "failValues", "error", "lost", "intervalSeconds", 5, "status",
                "polling", "createdAt", S_T0, "_seq", 7LL, "_attempts", 1, "_attemptAt", S_T0 + 3,
                "startedAt", S_T0 + 3, "_deadline", S_T0 + 900040, "_poll", "interval", 5000LL,
                "statusUrl", "https://api.example.com/jobs/42", "stage", 1, "seq", 4, "inflight", 1,
                "lease", lease, "due", S_T0 + 45000);
    task = s_test_task (store, id[6]);
    assert (task->status == BK_ST_POLLING && !task->provider);
    s_test_json (&task->poll_config,
                 "{\"urlTemplate\":\"https://api.example.com/jobs/{{id}}\",\"statusPath\":"
                 "\"state\",\"doneValues\":[\"done\"],\"failValues\":[\"error\",\"lost\"],"
                 "\"intervalSeconds\":5}");
    poll = &task->poll;
    assert (poll->active && poll->stage == 1 && poll->seq == 4 && poll->inflight);
    assert (poll->due == S_T0 + 45000 && poll->interval_ms == 5000);
    assert (strcmp (poll->lease, lease) == 0 && poll->fetch_state == -1 && !poll->fetch_error);
    assert (!poll->op_pending && poll->op_n == 0 && !poll->result_url && !poll->cancel_url);
    s_test_str (poll->status_url, "https://api.example.com/jobs/42");
    bk_task_destroy (&task);

    //  completed, its onCompleteUrl delivered (deliveredAt: ISO 8601 text)
    rig_v1_put (store, BK_DB_TASKS, id[7], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:i, "
                "s:I, s:I, s:{s:i, s:{s:s}, s:I, s:s, s:b}, s:I, s:{s:s, s:i, s:i, s:s}}",
                "id", text[7], "teamId", alpha_text, "targetUrl", "https://api.example.com/ok",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 3,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "onCompleteUrl",
                "https://hooks.example.com/done", "status", "completed", "createdAt", S_T0, "_seq",
                8LL, "_attempts", 1, "_attemptAt", S_T0 + 4, "startedAt", S_T0 + 4, "result",
                "statusCode", 200, "headers", "content-type", "text/plain", "duration", 42LL,
                "body", "ok", "bodyTruncated", 1, "completedAt", S_T0 + 46, "onComplete", "status",
                "delivered", "attempts", 1, "statusCode", 204, "deliveredAt",
                "2025-12-06T05:46:41.000Z");
    task = s_test_task (store, id[7]);
    assert (task->status == BK_ST_COMPLETED && task->completed_at == S_T0 + 46);
    s_test_json (&task->result, "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/plain\"},"
                                "\"duration\":42,\"body\":\"ok\",\"bodyTruncated\":true}");
    const bk_outcome_t *outcome = &task->on_complete;
    assert (outcome->status == BK_OUTCOME_DELIVERED && outcome->attempts == 1);
    assert (outcome->status_code == 204 && !outcome->error && outcome->delivered_at == S_T0 + 1000);
    s_test_idle (task);
    bk_task_destroy (&task);

    //  failed after its retries, the onCompleteUrl delivery waiting to retry
    rig_v1_put (store, BK_DB_TASKS, id[8], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:i, "
                "s:I, s:I, s:s, s:I, s:{s:s, s:i, s:i, s:s}, s:{s:i, s:b, s:I}}",
                "id", text[8], "teamId", alpha_text, "targetUrl", "https://api.example.com/err",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 2,
                "retryCount", 2, "retryBackoff", "exponential", "priority", 5, "onCompleteUrl",
                "https://hooks.example.com/done", "status", "failed", "createdAt", S_T0, "_seq",
                9LL, "_attempts", 3, "_attemptAt", S_T0 + 3000, "startedAt", S_T0 + 6, "error",
                "HTTP 500", "completedAt", S_T0 + 3050, "onComplete", "status", "retrying",
                "attempts", 2, "statusCode", 503, "error", "HTTP 503", "_notify", "attempt", 2,
                "inflight", 0, "due", S_T0 + 7000);
    task = s_test_task (store, id[8]);
    assert (task->status == BK_ST_FAILED && task->retry_count == 2 && task->max_retries == 2);
    s_test_str (task->error, "HTTP 500");
    outcome = &task->on_complete;
    assert (outcome->status == BK_OUTCOME_RETRYING && outcome->attempts == 2);
    assert (outcome->status_code == 503 && outcome->delivered_at == -1);
    s_test_str (outcome->error, "HTTP 503");
    assert (task->notify.active && task->notify.attempt == 2 && !task->notify.inflight);
    assert (task->notify.due == S_T0 + 7000 && !*task->notify.lease);
    bk_task_destroy (&task);

    //  timed out, its delivery in flight (lease and watchdog)
    rig_v1_put (store, BK_DB_TASKS, id[9], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:i, "
                "s:I, s:I, s:s, s:I, s:{s:s, s:i}, s:{s:i, s:b, s:s, s:I}}",
                "id", text[9], "teamId", alpha_text, "targetUrl", "https://api.example.com/never",
                "method", "POST", "headers", "maxWaitTime", 1, "timeout", 30, "maxRetries", 3,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "onCompleteUrl",
                "https://hooks.example.com/done", "status", "timeout", "createdAt", S_T0, "_seq",
                10LL, "_attempts", 1, "_attemptAt", S_T0 + 7, "startedAt", S_T0 + 7, "error",
                "Task exceeded maxWaitTime of 1s", "completedAt", S_T0 + 1100, "onComplete",
                "status", "pending", "attempts", 0, "_notify", "attempt", 1, "inflight", 1, "lease",
                lease, "due", S_T0 + 46100);
    task = s_test_task (store, id[9]);
    assert (task->status == BK_ST_TIMEOUT && task->max_wait_s == 1);
    assert (task->on_complete.status == BK_OUTCOME_PENDING && task->on_complete.attempts == 0);
    assert (task->on_complete.status_code == -1 && !task->on_complete.error);
    assert (task->notify.active && task->notify.attempt == 1 && task->notify.inflight);
    assert (task->notify.due == S_T0 + 46100 && strcmp (task->notify.lease, lease) == 0);
    bk_task_destroy (&task);

    //  cancelled while delayed
    rig_v1_put (store, BK_DB_TASKS, id[10], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:I, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, "
                "s:I}",
                "id", text[10], "teamId", alpha_text, "targetUrl", "https://api.example.com/x",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "delayUntil",
                S_T0 + 86400000, "maxRetries", 3, "retryCount", 0, "retryBackoff", "exponential",
                "priority", 5, "status", "cancelled", "createdAt", S_T0, "_seq", 11LL, "_attempts",
                0, "completedAt", S_T0 + 9);
    task = s_test_task (store, id[10]);
    assert (task->status == BK_ST_CANCELLED && task->delay_until == S_T0 + 86400000);
    assert (task->completed_at == S_T0 + 9 && task->started_at == -1);
    s_test_idle (task);
    bk_task_destroy (&task);

    //  a step of a scheduled run, completed by a signal with any JSON result
    uint8_t schedule[16], run[16];
    char schedule_text[AQ_UUID_TEXT], run_text[AQ_UUID_TEXT];
    s_test_uuid (900, schedule, schedule_text);
    s_test_uuid (901, run, run_text);
    rig_v1_put (store, BK_DB_TASKS, id[11], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:s, s:s, s:i, "
                "s:I, s:i, s:I, s:I, s:[i, s, n, f, {s:b}], s:I}",
                "id", text[11], "teamId", beta_text, "targetUrl", "https://api.example.com/step",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 0,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 3, "status",
                "completed", "createdAt", S_T0, "scheduleId", schedule_text, "runId", run_text,
                "step", 1, "_seq", 12LL, "_attempts", 1, "_attemptAt", S_T0 + 8, "startedAt",
                S_T0 + 8, "result", 1, "two", 3.5, "k", 0, "completedAt", S_T0 + 90);
    task = s_test_task (store, id[11]);
    assert (memcmp (task->team, beta, 16) == 0 && task->in_run && task->step == 1);
    assert (memcmp (task->schedule_id, schedule, 16) == 0 && memcmp (task->run_id, run, 16) == 0);
    s_test_json (&task->result, "[1,\"two\",null,3.5,{\"k\":false}]");
    assert (task->max_retries == 0 && task->priority == 3);
    bk_task_destroy (&task);

    //  failed by a signal whose result is null: still a result
    rig_v1_put (store, BK_DB_TASKS, id[12], 16,
                "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i, s:I, "
                "s:I, s:n, s:s, s:I}",
                "id", text[12], "teamId", alpha_text, "targetUrl", "https://api.example.com/sig",
                "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 3,
                "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "status", "failed",
                "createdAt", S_T0, "_seq", 13LL, "_attempts", 1, "_attemptAt", S_T0 + 8,
                "startedAt", S_T0 + 8, "result", "error", "failed by signal", "completedAt",
                S_T0 + 95);
    task = s_test_task (store, id[12]);
    assert (task->status == BK_ST_FAILED && task->result.size == 1);
    s_test_json (&task->result, "null");
    s_test_str (task->error, "failed by signal");
    bk_task_destroy (&task);

    //  what a converter refuses, leaving the record as it was
    struct {
        const char *why; //  the reason it gives
        int n;           //  the task id used
    } refused[] = {
        {"unknown field 'labels'", 13},
        {"field '_seq' is missing", 14},
        {"field 'maxRetries' is malformed", 15},
        {"field 'id' is not the record's key", 16},
        {"field '_poll.op' is malformed", 17},
        {"field 'onComplete.status' is malformed", 18},
        {"fields 'scheduleId', 'runId' and 'step' come together", 19},
    };
    rig_v1_put (store, BK_DB_TASKS, id[13], 16, "{s:s, s:s, s:s, s:s, s:I, s:I, s:{}}", "id",
                text[13], "teamId", alpha_text, "targetUrl", "http://x", "status", "pending",
                "createdAt", S_T0, "_seq", 14LL, "labels");
    rig_v1_put (store, BK_DB_TASKS, id[14], 16, "{s:s, s:s, s:s, s:s, s:I}", "id", text[14],
                "teamId", alpha_text, "targetUrl", "http://x", "status", "pending", "createdAt",
                S_T0);
    rig_v1_put (store, BK_DB_TASKS, id[15], 16, "{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "id",
                text[15], "teamId", alpha_text, "targetUrl", "http://x", "status", "pending",
                "createdAt", S_T0, "_seq", 16LL, "maxRetries", "3");
    rig_v1_put (store, BK_DB_TASKS, id[16], 16, "{s:s, s:s, s:s, s:s, s:I, s:I}", "id", text[0],
                "teamId", alpha_text, "targetUrl", "http://x", "status", "pending", "createdAt",
                S_T0, "_seq", 17LL);
    rig_v1_put (store, BK_DB_TASKS, id[17], 16,
                "{s:s, s:s, s:s, s:s, s:I, s:I, s:{s:I, s:{s:I, s:i}}}", "id", text[17], "teamId",
                alpha_text, "targetUrl", "http://x", "status", "polling", "createdAt", S_T0, "_seq",
                18LL, "_poll", "ops", 1LL, "op", "n", 1LL, "stage", 0);
    rig_v1_put (store, BK_DB_TASKS, id[18], 16, "{s:s, s:s, s:s, s:s, s:I, s:I, s:{s:s, s:i}}",
                "id", text[18], "teamId", alpha_text, "targetUrl", "http://x", "status", "failed",
                "createdAt", S_T0, "_seq", 19LL, "onComplete", "status", "sent", "attempts", 1);
    rig_v1_put (store, BK_DB_TASKS, id[19], 16, "{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "id",
                text[19], "teamId", alpha_text, "targetUrl", "http://x", "status", "pending",
                "createdAt", S_T0, "_seq", 20LL, "runId", run_text);
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        bk_val_t val;
        assert (bk_store_get (store, BK_DB_TASKS, id[refused[i].n], 16, &val) == 0);
        uint8_t *before = malloc (val.size);
        memcpy (before, val.data, val.size);
        size_t before_size = val.size;
        char why[256];
        assert (s_test_convert (store, BK_DB_TASKS, id[refused[i].n], 16, why) == S_BAD);
        assert (strcmp (why, refused[i].why) == 0);
        assert (bk_store_get (store, BK_DB_TASKS, id[refused[i].n], 16, &val) == 0);
        assert (val.size == before_size && memcmp (val.data, before, val.size) == 0);
        free (before);
    }
    memcpy (akey, id[0], 16), akey[17] = 2; //  an attempt under another number
    rig_v1_put (store, BK_DB_ATTEMPTS, akey, 18, "{s:i, s:I, s:I}", "attempt", 1, "startedAt", S_T0,
                "duration", 1LL);
    char why[256];
    assert (s_test_convert (store, BK_DB_ATTEMPTS, akey, 18, why) == S_BAD);
    assert (strcmp (why, "field 'attempt' is not the key's attempt number") == 0);
    aq_writer_release (&w);
}

void bk_upgrade_task_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t alpha[16], beta[16];
    char alpha_text[AQ_UUID_TEXT], beta_text[AQ_UUID_TEXT];
    s_test_uuid (1, alpha, alpha_text);
    s_test_uuid (2, beta, beta_text);
    s_test_tasks (store, alpha, alpha_text, beta, beta_text);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_upgrade_task: ok\n");
}
