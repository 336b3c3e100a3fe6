/*  runs.c - runs of scheduled tasks: their steps as /v1/tasks tasks, their ends, their retries */
#include "runs.h"
#include "../backoff.h"
#include "../delay.h"
#include "aq_json.h"
#include "aq_uuid.h"
#include "schedules.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ERRLEN 300 //  a run's error: "step N: " and the task's message

//  --------------------------------------------------------------------------
//  A step's request

//  The template of step index in templates (an array), into *step.
static bool s_template (const bk_blob_t *templates, int index, aq_node_t *step) {
    aq_node_t array;
    if (aq_msg_parse (templates->data, templates->size, &array) != 0 || array.type != AQ_NODE_ARRAY)
        return false;
    aq_iter_t it;
    aq_node_iter (&array, &it);
    for (int i = 0; aq_iter_next (&it, NULL, step); i++)
        if (i == index)
            return step->type == AQ_NODE_MAP;
    return false;
}

//  Writes the POST /v1/tasks body of a step to w: its template, with the
//  event's data as its JSON body when it brings none (and Content-Type
//  application/json unless its headers say), and the run's priority as
//  the task's unless it gives one.
static void s_write_request (const aq_node_t *template, const bk_sched_run_t *run, aq_writer_t *w) {
    aq_node_t value, data = {.type = AQ_NODE_NIL};
    if (run->has_event && run->event_data.size)
        aq_msg_parse (run->event_data.data, run->event_data.size, &data);
    bool with_body = !aq_node_is_nil (&data) && !aq_node_get (template, "body", &value);
    bool with_priority = !aq_node_get (template, "priority", &value);
    if (!with_body && !with_priority) {
        aq_write_raw (w, template->raw, template->raw_size);
        return;
    }
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    bool headers = false;
    aq_iter_t it;
    aq_node_t key;
    aq_node_iter (template, &it);
    for (; aq_iter_next (&it, &key, &value); n++) {
        aq_write_raw (w, key.raw, key.raw_size);
        aq_node_t type;
        if (with_body && aq_node_streq (&key, "headers")) {
            headers = true;
            if (value.type == AQ_NODE_MAP && !aq_node_get (&value, "Content-Type", &type)) {
                aq_write_map (w, value.count + 1);
                aq_write_raw (w, value.data, value.raw_size - (size_t) (value.data - value.raw));
                aq_write_kv_str (w, "Content-Type", "application/json");
                continue;
            }
        }
        aq_write_raw (w, value.raw, value.raw_size);
    }
    if (with_body) {
        char *text = aq_json_dumps (&data);
        if (text)
            aq_write_kv_str (w, "body", text), n++;
        free (text);
        if (!headers) {
            aq_write_str (w, "headers"), n++;
            aq_write_map (w, 1);
            aq_write_kv_str (w, "Content-Type", "application/json");
        }
    }
    if (with_priority)
        aq_write_kv_int (w, "priority", bk_sched_task_queue_priority (run->priority)), n++;
    aq_write_map_close (w, mark, n);
}

//  --------------------------------------------------------------------------
//  A run's life

static void s_finish (bk_engine_t *engine, bk_sched_run_t *run, int status, const char *error);

//  A run is a trace of its own: its id is the trace id (so the two read
//  the same), and each step task is a child of the run's span, the id's
//  last 8 bytes (UUIDv7's random part).
static void s_trace (const bk_sched_run_t *run, bk_task_t *task) {
    task->trace.flags = 1;
    memcpy (task->trace.trace_id, run->id, 16);
    memcpy (task->trace.parent, run->id + 8, 8);
}

//  Makes the task of the run's current step. A step that cannot be built
//  (a token deleted since) fails the run. 0 or a store error.
static int s_step (bk_engine_t *engine, bk_sched_run_t *run) {
    char errbuf[256], error[S_ERRLEN];
    aq_node_t template, request;
    bk_task_t *task = NULL;
    aq_writer_t w;
    aq_writer_init (&w);
    if (s_template (&run->templates, run->step, &template)) {
        s_write_request (&template, run, &w);
        size_t size;
        const uint8_t *data = aq_writer_data (&w, &size);
        if (data && aq_msg_parse (data, size, &request) == 0)
            task = bk_engine_build (engine, run->team, &request, errbuf, sizeof errbuf);
    } else
        snprintf (errbuf, sizeof errbuf, "no such step");
    aq_writer_release (&w);
    if (!task) {
        snprintf (error, sizeof error, "step %d: %s", run->step, errbuf);
        s_finish (engine, run, BK_RUN_FAILED, error);
        return 0;
    }
    task->in_run = true;
    memcpy (task->schedule_id, run->schedule, 16);
    memcpy (task->run_id, run->id, 16);
    task->step = run->step;
    s_trace (run, task);
    int rc = bk_engine_insert (engine, task);
    bk_sched_run_add_step (run, run->step, task->id, task->status);
    run->status = BK_RUN_RUNNING;
    bk_task_destroy (&task);
    return rc;
}

//  Starts a run that may start now (not waiting for its key).
static int s_begin (bk_engine_t *engine, bk_sched_run_t *run) {
    run->started_at = bk_engine_now (engine);
    return s_step (engine, run);
}

//  The run after the one giving its concurrency key up, if any, starts.
static int s_release (bk_engine_t *engine, const bk_sched_run_t *run) {
    if (!run->concurrency_key)
        return 0;
    bk_store_t *store = bk_engine_store (engine);
    uint8_t id[16];
    bool has_next;
    int rc = bk_schedules_key_pass (store, run->team, run->concurrency_key, run->id, id, &has_next);
    bk_sched_run_t *next = rc == 0 && has_next ? bk_schedules_run (store, id) : NULL;
    if (next) {
        rc = s_begin (engine, next);
        if (rc == 0)
            rc = bk_schedules_save_run (store, next, false);
        bk_sched_run_destroy (&next);
    }
    return rc;
}

static void s_finish (bk_engine_t *engine, bk_sched_run_t *run, int status, const char *error) {
    run->status = status;
    run->finished_at = bk_engine_now (engine);
    run->next_attempt_at = -1;
    bk_sched_run_set_error (run, error);
    s_release (engine, run);
}

bk_sched_run_t *bk_runs_start (bk_engine_t *engine, const bk_sched_task_t *record, int trigger,
                               int64_t scheduled_at, const char *event_name,
                               const aq_node_t *event_data) {
    bk_store_t *store = bk_engine_store (engine);
    int64_t now = bk_engine_now (engine);
    bk_sched_run_t *run = bk_sched_run_new (record->payload.size);
    aq_uuid_new (run->id);
    memcpy (run->schedule, record->id, 16);
    memcpy (run->team, record->team, 16);
    run->trigger = trigger;
    run->status = BK_RUN_PENDING;
    run->scheduled_at = scheduled_at;
    aq_writer_t w;
    aq_writer_init (&w);
    run->steps_total = bk_sched_task_write_steps (&record->payload, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (data);
    run->templates = (bk_blob_t){bk_arena_memdup (run->arena, data, size), size};
    if (event_name) {
        run->has_event = true;
        run->event_name = bk_arena_strdup (run->arena, event_name);
        aq_writer_reset (&w);
        if (event_data)
            aq_write_raw (&w, event_data->raw, event_data->raw_size);
        else
            aq_write_nil (&w);
        data = aq_writer_data (&w, &size);
        run->event_data = (bk_blob_t){bk_arena_memdup (run->arena, data, size), size};
    }
    aq_writer_release (&w);
    run->priority = record->priority;
    run->max_retries = record->max_retries;
    run->backoff = record->backoff;
    run->concurrency_key = bk_arena_strdup (run->arena, record->concurrency_key);

    int rc = 0;
    if (record->dedupe_key && trigger != BK_TRIGGER_RUN_NOW) {
        int64_t last = bk_schedules_dedupe (store, record->team, record->dedupe_key);
        int64_t window =
            record->dedupe_window_s >= 0 ? record->dedupe_window_s : BK_SCHED_TASK_DEDUPE_S;
        if (last >= 0 && now - last < window * 1000) {
            run->status = BK_RUN_SKIPPED;
            run->finished_at = now;
            bk_sched_run_set_error (run, "deduplicated");
            run->concurrency_key = NULL;
            goto save;
        }
        rc = bk_schedules_set_dedupe (store, record->team, record->dedupe_key, now);
    }
    if (rc == 0 && run->concurrency_key) {
        bool holds;
        rc = bk_schedules_key_take (store, run->team, run->concurrency_key, run->id, &holds);
        if (!holds) {
            run->status = BK_RUN_WAITING;
            goto save;
        }
    }
    if (rc == 0)
        rc = s_begin (engine, run);
save:
    if (rc == 0)
        rc = bk_schedules_save_run (store, run, true);
    if (rc != 0)
        bk_sched_run_destroy (&run);
    return run;
}

void bk_runs_step_done (bk_engine_t *engine, const bk_task_t *task) {
    bk_store_t *store = bk_engine_store (engine);
    bk_sched_run_t *run = task->in_run ? bk_schedules_run (store, task->run_id) : NULL;
    bk_run_step_t *entry = run ? bk_sched_run_find_step (run, task->id) : NULL;
    if (!entry) {
        bk_sched_run_destroy (&run);
        return;
    }
    entry->status = task->status;
    bool current = run->status == BK_RUN_RUNNING && entry == &run->steps[run->nsteps - 1];
    if (current && task->status == BK_ST_COMPLETED) {
        if (run->step + 1 >= run->steps_total)
            s_finish (engine, run, BK_RUN_COMPLETED, NULL);
        else {
            run->step++;
            s_step (engine, run);
        }
    } else if (current) {
        char error[S_ERRLEN];
        const char *why = task->error;
        snprintf (error, sizeof error, "step %d %s%s%.200s", run->step,
                  bk_status_name (task->status), why ? ": " : "", why ? why : "");
        if (task->status != BK_ST_CANCELLED && run->attempt <= run->max_retries) {
            //  again from the failed step, after the back-off
            int64_t due =
                bk_engine_now (engine) + bk_engine_backoff_ms (engine, run->backoff, run->attempt);
            run->attempt++;
            run->status = BK_RUN_RETRYING;
            bk_sched_run_set_error (run, error);
            run->next_attempt_at = run->due = due;
            bk_engine_timer (engine, due, BK_DELAY_RUN, run->id);
        } else
            s_finish (engine, run, BK_RUN_FAILED, error);
    }
    bk_schedules_save_run (store, run, false);
    bk_sched_run_destroy (&run);
}

void bk_runs_due (bk_engine_t *engine, const uint8_t id[16], int64_t due) {
    bk_store_t *store = bk_engine_store (engine);
    bk_sched_run_t *run = bk_schedules_run (store, id);
    if (run && run->status == BK_RUN_RETRYING && run->due == due) {
        run->due = -1;
        run->next_attempt_at = -1;
        s_step (engine, run);
        bk_schedules_save_run (store, run, false);
    }
    bk_sched_run_destroy (&run);
}

//  --------------------------------------------------------------------------
//  Selftest: a step's request, then runs through the task engine over a
//  test store (no sockets), their step tasks ended with the engine's own
//  functions as results and cancels end them.

//  The request of a step of template (JSON) in a run with event data
//  (JSON, or NULL for a run without an event), as compact JSON text.
static char *s_request_json (const char *template, const char *event) {
    bk_sched_run_t *run = bk_sched_run_new (0);
    run->priority = 2;
    aq_writer_t w;
    aq_writer_init (&w);
    size_t size;
    const uint8_t *data;
    if (event) {
        assert (aq_json_parse (event, &w) == 0);
        data = aq_writer_data (&w, &size);
        run->has_event = true;
        run->event_name = "e";
        run->event_data = (bk_blob_t){bk_arena_memdup (run->arena, data, size), size};
        aq_writer_reset (&w);
    }
    assert (aq_json_parse (template, &w) == 0);
    data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    aq_writer_t out;
    aq_writer_init (&out);
    s_write_request (&node, run, &out);
    data = aq_writer_data (&out, &size);
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_release (&out);
    aq_writer_release (&w);
    bk_sched_run_destroy (&run);
    return text;
}

static void s_due_hook (void *arg, int kind, const uint8_t id[16], int64_t due) {
    if (kind == BK_DELAY_RUN)
        bk_runs_due (arg, id, due);
}

static void s_step_hook (void *arg, const bk_task_t *task) {
    bk_runs_step_done (arg, task);
}

//  A scheduled task as the scheduler stores it, with payload (JSON).
static bk_sched_task_t *s_record (const char *payload, int max_retries, const char *concurrency,
                                  const char *dedupe) {
    bk_sched_task_t *record = bk_sched_task_new (0);
    aq_uuid_new (record->id);
    memset (record->team, 0x42, 16);
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (payload, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    record->payload = (bk_blob_t){bk_arena_memdup (record->arena, data, size), size};
    aq_writer_release (&w);
    record->kind = BK_SCHEDULE_EVENT;
    record->priority = 5;
    record->max_retries = max_retries;
    record->backoff = BK_BACKOFF_FIXED;
    record->concurrency_key = bk_arena_strdup (record->arena, concurrency);
    record->dedupe_key = bk_arena_strdup (record->arena, dedupe);
    return record;
}

//  The run as stored.
static bk_sched_run_t *s_stored (bk_engine_t *engine, const bk_sched_run_t *run) {
    bk_sched_run_t *stored = bk_schedules_run (bk_engine_store (engine), run->id);
    assert (stored);
    return stored;
}

//  The task of the run's latest step, as stored.
static bk_task_t *s_step_task (bk_engine_t *engine, const bk_sched_run_t *run) {
    bk_sched_run_t *stored = s_stored (engine, run);
    assert (stored->nsteps > 0);
    bk_task_t *task = bk_engine_load (engine, stored->steps[stored->nsteps - 1].task);
    assert (task && task->in_run && memcmp (task->run_id, run->id, 16) == 0);
    bk_sched_run_destroy (&stored);
    return task;
}

//  Ends the run's latest step task with status, as the engine ends tasks.
static void s_end_step (bk_engine_t *engine, const bk_sched_run_t *run, int status,
                        const char *error) {
    bk_task_t *task = s_step_task (engine, run);
    int old = task->status;
    bk_engine_finish (engine, task, status, error);
    assert (bk_engine_save (engine, task, old) == 0);
    bk_task_destroy (&task);
}

//  Runs through the engine: advance, retry, complete; fail; cancel.
static void s_test_pipeline (bk_engine_t *engine, int64_t t0) {
    bk_sched_task_t *record = s_record ("{\"steps\": [{\"targetUrl\": \"http://a/0\"}, "
                                        "{\"targetUrl\": \"http://a/1\", \"priority\": 3}]}",
                                        1, NULL, NULL);
    bk_sched_run_t *run = bk_runs_start (engine, record, BK_TRIGGER_SCHEDULE, t0 - 5, NULL, NULL);
    assert (run && run->status == BK_RUN_RUNNING && run->started_at == t0);
    assert (run->steps_total == 2 && run->nsteps == 1 && run->steps[0].status == BK_ST_PENDING);
    bk_task_t *task = s_step_task (engine, run);
    assert (memcmp (task->schedule_id, record->id, 16) == 0 && task->step == 0);
    assert (task->priority == 5 && strcmp (task->target_url, "http://a/0") == 0);
    bk_task_destroy (&task);
    //  step 0 completes: step 1 starts, with its own priority
    s_end_step (engine, run, BK_ST_COMPLETED, NULL);
    bk_sched_run_t *now = s_stored (engine, run);
    assert (now->status == BK_RUN_RUNNING && now->step == 1 && now->nsteps == 2);
    assert (now->steps[0].status == BK_ST_COMPLETED && now->steps[1].step == 1);
    bk_sched_run_destroy (&now);
    task = s_step_task (engine, run);
    assert (task->step == 1 && task->priority == 3);
    bk_task_destroy (&task);
    //  step 1 fails: the run retries from it after the back-off (fixed 100 ms)
    s_end_step (engine, run, BK_ST_FAILED, "HTTP 500");
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_RETRYING && now->attempt == 2 && now->nsteps == 2);
    assert (now->next_attempt_at == t0 + 100 && now->due == t0 + 100);
    assert (strcmp (now->error, "step 1 failed: HTTP 500") == 0);
    bk_sched_run_destroy (&now);
    bk_engine_clock (engine, t0 + 99, 0);
    bk_engine_promote_due (engine); //  not yet
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_RETRYING);
    bk_sched_run_destroy (&now);
    bk_engine_clock (engine, t0 + 100, 0);
    bk_engine_promote_due (engine);
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_RUNNING && now->nsteps == 3 && now->steps[2].step == 1);
    assert (now->next_attempt_at == -1 && now->due == -1);
    bk_sched_run_destroy (&now);
    //  the second attempt completes the run; step 0 was not made again
    s_end_step (engine, run, BK_ST_COMPLETED, NULL);
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_COMPLETED && now->finished_at == t0 + 100 && !now->error);
    assert (now->nsteps == 3 && now->steps[1].status == BK_ST_FAILED);
    bk_sched_run_destroy (&now);
    bk_sched_run_destroy (&run);

    //  retries used up: failed; a cancelled step fails the run with no retry
    record->max_retries = 0;
    run = bk_runs_start (engine, record, BK_TRIGGER_RUN_NOW, -1, NULL, NULL);
    s_end_step (engine, run, BK_ST_TIMEOUT, "Task exceeded maxWaitTime of 30s");
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_FAILED && now->attempt == 1 && now->finished_at == t0 + 100);
    assert (strcmp (now->error, "step 0 timeout: Task exceeded maxWaitTime of 30s") == 0);
    bk_sched_run_destroy (&now);
    bk_sched_run_destroy (&run);
    record->max_retries = 3;
    run = bk_runs_start (engine, record, BK_TRIGGER_RUN_NOW, -1, NULL, NULL);
    s_end_step (engine, run, BK_ST_CANCELLED, NULL);
    now = s_stored (engine, run);
    assert (now->status == BK_RUN_FAILED && strcmp (now->error, "step 0 cancelled") == 0);
    bk_sched_run_destroy (&now);
    bk_sched_run_destroy (&run);
    bk_sched_task_destroy (&record);
}

//  An event's data as the step's body; concurrency and dedupe keys.
static void s_test_keys (bk_engine_t *engine, int64_t t0) {
    bk_sched_task_t *record = s_record ("{\"targetUrl\": \"http://e\"}", 0, "k", NULL);
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse ("{\"n\": 7}", &w) == 0);
    size_t size;
    const uint8_t *bytes = aq_writer_data (&w, &size);
    aq_node_t data;
    assert (aq_msg_parse (bytes, size, &data) == 0);
    bk_sched_run_t *first = bk_runs_start (engine, record, BK_TRIGGER_EVENT, -1, "deploy", &data);
    aq_writer_release (&w);
    assert (first && first->status == BK_RUN_RUNNING && first->has_event);
    bk_task_t *task = s_step_task (engine, first);
    assert (task->body && strcmp (task->body, "{\"n\":7}") == 0 && task->headers.size);
    bk_task_destroy (&task);
    //  the key is held: the next run waits, and starts when the first ends
    bk_sched_run_t *second = bk_runs_start (engine, record, BK_TRIGGER_RUN_NOW, -1, NULL, NULL);
    assert (second && second->status == BK_RUN_WAITING && second->nsteps == 0);
    assert (second->started_at == -1);
    bk_engine_clock (engine, t0 + 1000, 0);
    s_end_step (engine, first, BK_ST_COMPLETED, NULL);
    bk_sched_run_t *now = s_stored (engine, second);
    assert (now->status == BK_RUN_RUNNING && now->started_at == t0 + 1000 && now->nsteps == 1);
    bk_sched_run_destroy (&now);
    s_end_step (engine, second, BK_ST_COMPLETED, NULL);
    bk_sched_run_destroy (&first);
    bk_sched_run_destroy (&second);
    //  dedupe: a second run within the window is skipped, run_now never
    record->concurrency_key = NULL;
    record->dedupe_key = "d";
    record->dedupe_window_s = 60;
    first = bk_runs_start (engine, record, BK_TRIGGER_SCHEDULE, t0, NULL, NULL);
    second = bk_runs_start (engine, record, BK_TRIGGER_EVENT, -1, "deploy", NULL);
    assert (first->status == BK_RUN_RUNNING && second->status == BK_RUN_SKIPPED);
    assert (strcmp (second->error, "deduplicated") == 0 && second->finished_at == t0 + 1000);
    assert (second->started_at == -1 && second->nsteps == 0);
    bk_sched_run_destroy (&second);
    second = bk_runs_start (engine, record, BK_TRIGGER_RUN_NOW, -1, NULL, NULL);
    assert (second->status == BK_RUN_RUNNING);
    bk_sched_run_destroy (&second);
    bk_engine_clock (engine, t0 + 61000, 0); //  the window has passed
    second = bk_runs_start (engine, record, BK_TRIGGER_SCHEDULE, t0 + 60000, NULL, NULL);
    assert (second->status == BK_RUN_RUNNING);
    bk_sched_run_destroy (&second);
    bk_sched_run_destroy (&first);
    bk_sched_task_destroy (&record);
}

void bk_runs_test (bool verbose) {
    struct {
        const char *template, *event, *want;
    } cases[] = {
        //  the run's priority (2 -> 8) unless the template gives one
        {"{\"targetUrl\":\"http://x\"}", NULL, "{\"targetUrl\":\"http://x\",\"priority\":8}"},
        {"{\"targetUrl\":\"http://x\",\"priority\":3}", NULL,
         "{\"targetUrl\":\"http://x\",\"priority\":3}"},
        //  an event's data as the body, in jansson's compact text
        {"{\"targetUrl\":\"http://x\",\"priority\":1}",
         "{\"order\": 42, \"note\": \"caf\\u00e9\", \"items\": [1, 2.5, {\"sku\": \"A-1\"}], "
         "\"paid\": true, \"none\": null, \"f\": 0.1, \"big\": 1e300, \"q\": \"a\\\"b/\\n\"}",
         "{\"targetUrl\":\"http://x\",\"priority\":1,\"body\":\"{\\\"order\\\":42,\\\"note\\\":"
         "\\\"caf\xc3\xa9\\\",\\\"items\\\":[1,2.5,{\\\"sku\\\":\\\"A-1\\\"}],\\\"paid\\\":true,"
         "\\\"none\\\":null,\\\"f\\\":0.10000000000000001,\\\"big\\\":1.0000000000000001e300,"
         "\\\"q\\\":\\\"a\\\\\\\"b/\\\\n\\\"}\",\"headers\":{\"Content-Type\":"
         "\"application/json\"}}"},
        {"{\"targetUrl\":\"http://x\",\"priority\":1}", "\"text\"",
         "{\"targetUrl\":\"http://x\",\"priority\":1,\"body\":\"\\\"text\\\"\",\"headers\":"
         "{\"Content-Type\":\"application/json\"}}"},
        //  the template's headers get Content-Type unless they have one
        {"{\"headers\":{\"X-A\":\"1\"},\"targetUrl\":\"http://x\",\"priority\":1}", "[1]",
         "{\"headers\":{\"X-A\":\"1\",\"Content-Type\":\"application/json\"},\"targetUrl\":"
         "\"http://x\",\"priority\":1,\"body\":\"[1]\"}"},
        {"{\"headers\":{\"Content-Type\":\"text/csv\"},\"targetUrl\":\"http://x\"}", "1",
         "{\"headers\":{\"Content-Type\":\"text/csv\"},\"targetUrl\":\"http://x\",\"body\":\"1\","
         "\"priority\":8}"},
        //  a template with a body (even null) keeps it; null data sends none
        {"{\"targetUrl\":\"http://x\",\"body\":\"fixed\",\"priority\":1}", "{\"a\":1}",
         "{\"targetUrl\":\"http://x\",\"body\":\"fixed\",\"priority\":1}"},
        {"{\"targetUrl\":\"http://x\",\"body\":null,\"priority\":1}", "{\"a\":1}",
         "{\"targetUrl\":\"http://x\",\"body\":null,\"priority\":1}"},
        {"{\"targetUrl\":\"http://x\",\"priority\":1}", "null",
         "{\"targetUrl\":\"http://x\",\"priority\":1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = s_request_json (cases[i].template, cases[i].event);
        if (!got || strcmp (got, cases[i].want) != 0) {
            fprintf (stderr, "bk_runs: %s with %s\n   got %s\n  want %s\n", cases[i].template,
                     cases[i].event ? cases[i].event : "no event", got ? got : "NULL",
                     cases[i].want);
            assert (false);
        }
        free (got);
    }

    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_outbox_t *outbox = bk_outbox_new (NULL, 0);
    bk_config_t cfg;
    bk_config_defaults (&cfg);
    cfg.backoff_base_ms = 100;
    bk_engine_t *engine = bk_engine_new (&cfg, store, outbox, NULL);
    bk_engine_hooks (engine, s_due_hook, s_step_hook, engine);
    int64_t t0 = 1705314600000;
    bk_engine_clock (engine, t0, 0);
    s_test_pipeline (engine, t0);
    s_test_keys (engine, t0);
    bk_engine_destroy (&engine);
    bk_outbox_destroy (&outbox);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_runs: ok\n");
}
