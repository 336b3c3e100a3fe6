/*  task_test.c - the task record's selftest: encode, decode, the public shape, what decode refuses
 */
#include "task.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "backoff.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  --------------------------------------------------------------------------

void bk_task_test (bool verbose) {
    assert (bk_status_parse ("cancelled", 9) == BK_ST_CANCELLED && !bk_status_parse ("nope", 4));
    assert (bk_status_parse ("pending", 3) == 0); //  a prefix is no status
    assert (strcmp (bk_status_name (BK_ST_PENDING), "pending") == 0 && !bk_status_name (0));
    assert (bk_status_terminal (BK_ST_TIMEOUT) && !bk_status_terminal (BK_ST_DELAYED));

    //  every field through the record and back
    bk_task_t *task = bk_task_new (0);
    aq_uuid_new (task->id);
    aq_uuid_new (task->team);
    task->seq = 1ULL << 40;
    task->status = BK_ST_POLLING;
    task->target_url = bk_task_strdup (task, "https://api.example.com/jobs");
    task->method = BK_METHOD_PUT;
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 1), aq_write_kv_str (&w, "Authorization", "tok_0123");
    size_t size;
    const uint8_t *bytes = aq_writer_data (&w, &size);
    bk_task_set_blob (task, &task->headers, bytes, size);
    aq_writer_reset (&w);
    task->body = bk_arena_memdup (task->arena, "a\0b", 4), task->body_size = 3;
    task->max_wait_s = 600, task->timeout_s = 12, task->max_retries = 4, task->retry_count = 2;
    task->backoff = BK_BACKOFF_JITTER, task->priority = 9;
    task->on_complete_url = bk_task_strdup (task, "https://hooks.example.com/done");
    task->in_run = true, task->step = 2;
    aq_uuid_new (task->schedule_id), aq_uuid_new (task->run_id);
    task->error = bk_task_strdup (task, "HTTP 503");
    task->on_complete = (bk_outcome_t){BK_OUTCOME_RETRYING, 2, 500, NULL, -1};
    task->on_complete.error = bk_task_strdup (task, "HTTP 500");
    task->created_at = 1705314600000, task->started_at = 1705314601000;
    task->attempts = 3, task->attempt_at = 1705314602000, task->deadline = 1705315200000;
    snprintf (task->lease, sizeof task->lease, "%s", "00112233445566778899aabbccddeeff");
    task->poll = (bk_poll_t){.active = true,
                             .stage = 1,
                             .seq = 7,
                             .inflight = true,
                             .due = 5,
                             .interval_ms = 2000,
                             .fetch_state = -1};
    task->poll.status_url = bk_task_strdup (task, "https://api.example.com/jobs/1");
    task->poll.cancel_owed = true;
    task->poll.op_pending = true, task->poll.op_n = 3, task->poll.op_stage = 1;
    aq_write_map (&w, 1), aq_write_kv_int (&w, "statusCode", 200);
    bytes = aq_writer_data (&w, &size);
    bk_task_set_blob (task, &task->poll.op, bytes, size);
    aq_writer_reset (&w);
    task->notify = (bk_notify_t){.active = true, .attempt = 1, .due = 99};
    task->flow_key = bk_task_strdup (task, "fal-prod");
    aq_write_map (&w, 1), aq_write_kv_str (&w, "env", "prod");
    bytes = aq_writer_data (&w, &size);
    bk_task_set_blob (task, &task->labels, bytes, size);
    aq_writer_reset (&w);
    task->flow_rate = 10, task->flow_period = 60;
    bk_task_encode (task, &w);
    bytes = aq_writer_data (&w, &size);
    bk_task_t *back = bk_task_decode (bytes, size);
    assert (back);
    assert (memcmp (back->id, task->id, 16) == 0 && memcmp (back->team, task->team, 16) == 0);
    assert (back->seq == task->seq && back->status == BK_ST_POLLING);
    assert (strcmp (back->target_url, task->target_url) == 0 && back->method == BK_METHOD_PUT);
    assert (back->headers.size == task->headers.size &&
            memcmp (back->headers.data, task->headers.data, back->headers.size) == 0);
    assert (back->body_size == 3 && memcmp (back->body, "a\0b", 3) == 0);
    assert (back->max_wait_s == 600 && back->timeout_s == 12 && back->delay_until == -1);
    assert (back->max_retries == 4 && back->retry_count == 2 && back->backoff == BK_BACKOFF_JITTER);
    assert (back->priority == 9 && strcmp (back->on_complete_url, task->on_complete_url) == 0);
    assert (!back->provider && !back->poll_config.size && !back->result.size);
    assert (back->in_run && back->step == 2 && memcmp (back->run_id, task->run_id, 16) == 0);
    assert (strcmp (back->error, "HTTP 503") == 0);
    assert (back->on_complete.status == BK_OUTCOME_RETRYING &&
            back->on_complete.status_code == 500 &&
            strcmp (back->on_complete.error, "HTTP 500") == 0);
    assert (back->created_at == task->created_at && back->completed_at == -1);
    assert (back->attempts == 3 && back->attempt_at == task->attempt_at && back->due == -1);
    assert (back->deadline == task->deadline && strcmp (back->lease, task->lease) == 0);
    assert (!*back->signal);
    assert (back->poll.active && back->poll.seq == 7 && back->poll.inflight &&
            back->poll.interval_ms == 2000 &&
            strcmp (back->poll.status_url, task->poll.status_url) == 0);
    assert (!back->poll.result_url && back->poll.fetch_state == -1 && back->poll.cancel_owed);
    assert (back->poll.op_pending && back->poll.op_n == 3 && back->poll.op_stage == 1);
    assert (back->poll.op.size == task->poll.op.size &&
            memcmp (back->poll.op.data, task->poll.op.data, back->poll.op.size) == 0);
    assert (back->notify.active && back->notify.attempt == 1 && back->notify.due == 99);
    assert (back->labels.size == task->labels.size &&
            memcmp (back->labels.data, task->labels.data, back->labels.size) == 0);
    assert (strcmp (back->flow_key, "fal-prod") == 0 && back->flow_rate == 10);
    assert (back->flow_period == 60 && back->flow_parallelism == 0);
    //  an op applied: its number stays (the next one follows it), its answer goes
    back->poll.op_pending = false;
    aq_writer_t again;
    aq_writer_init (&again);
    bk_task_encode (back, &again);
    size_t again_size;
    const uint8_t *again_bytes = aq_writer_data (&again, &again_size);
    bk_task_t *applied = bk_task_decode (again_bytes, again_size);
    assert (applied && !applied->poll.op_pending && applied->poll.op_n == 3);
    assert (!applied->poll.op.size);
    bk_task_destroy (&applied);
    aq_writer_release (&again);

    //  the public shape: seed names, ISO times, no bookkeeping
    aq_writer_reset (&w);
    bk_task_write_public (back, &w);
    bytes = aq_writer_data (&w, &size);
    aq_node_t shown, value;
    assert (aq_msg_parse (bytes, size, &shown) == 0);
    assert (aq_node_get (&shown, "status", &value) && aq_node_streq (&value, "polling"));
    assert (aq_node_get (&shown, "method", &value) && aq_node_streq (&value, "PUT"));
    assert (aq_node_get (&shown, "retryBackoff", &value) &&
            aq_node_streq (&value, "exponential_jitter"));
    assert (aq_node_get (&shown, "createdAt", &value) &&
            aq_node_streq (&value, "2024-01-15T10:30:00.000Z"));
    assert (aq_node_get (&shown, "step", &value) && value.i == 2);
    assert (aq_node_get (&shown, "onComplete", &value) && value.type == AQ_NODE_MAP);
    aq_node_t inner;
    assert (aq_node_get (&value, "status", &inner) && aq_node_streq (&inner, "retrying"));
    assert (aq_node_get (&shown, "labels", &value) && aq_node_get (&value, "env", &inner) &&
            aq_node_streq (&inner, "prod"));
    assert (aq_node_get (&shown, "flowControl", &value) && value.count == 3);
    assert (aq_node_get (&value, "key", &inner) && aq_node_streq (&inner, "fal-prod"));
    assert (aq_node_get (&value, "period", &inner) && inner.i == 60);
    assert (!aq_node_get (&value, "parallelism", &inner));
    assert (!aq_node_get (&shown, "attempts", &value) && !aq_node_get (&shown, "lease", &value));
    assert (!aq_node_get (&shown, "completedAt", &value));

    //  what decode refuses: another version, a missing field, garbage
    aq_writer_reset (&w);
    aq_write_map (&w, 1), aq_write_int (&w, 0), aq_write_int (&w, 1);
    bytes = aq_writer_data (&w, &size);
    assert (!bk_task_decode (bytes, size));
    assert (!bk_task_decode ((const uint8_t *) "\x81\xa2id\x01", 5));
    //  and an enumeration out of range (found by tests/fuzz/task_record.c)
    for (int field = 0; field < 3; field++) {
        back->method = field == 0 ? 4 : BK_METHOD_PUT;
        back->backoff = field == 1 ? BK_BACKOFF_COUNT : BK_BACKOFF_JITTER;
        back->on_complete.status = field == 2 ? BK_OUTCOME_FAILED + 1 : BK_OUTCOME_RETRYING;
        aq_writer_reset (&w);
        bk_task_encode (back, &w);
        bytes = aq_writer_data (&w, &size);
        assert (!bk_task_decode (bytes, size));
    }
    //  a seq above INT64_MAX (it would encode back as a negative number)
    back->on_complete.status = BK_OUTCOME_RETRYING;
    back->seq = (uint64_t) INT64_MAX + 1;
    aq_writer_reset (&w);
    bk_task_encode (back, &w); //  written as an int64: negative
    bytes = aq_writer_data (&w, &size);
    assert (!bk_task_decode (bytes, size));
    aq_writer_release (&w);
    bk_task_destroy (&back);
    bk_task_destroy (&task);
    assert (!task);
    if (verbose)
        printf ("bk_task: ok\n");
}
