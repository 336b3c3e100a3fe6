/*  upgrade_run.c - a run's record from layout 1 to layout 2

    Where each layout-1 field of a run goes (upgrade_sched.c says what
    layout 1 is and how the conversion treats it; the first release's
    broker/scheduler.c wrote runs in s_run_new, s_run_step, s_run_finish,
    bk_scheduler_step_done and bk_scheduler_due).

    runs: BK_DB_RUNS id(16) -> bk_sched_run_t (sched_run.h), bk_sched_run_encode
      id                    id (UUID text -> 16 bytes; must be the record's key)
      task_id team_id       schedule, team
      trigger status        trigger, status (their names -> bk_run_trigger_t,
                            bk_run_status_t)
      attempt step steps_total  attempt, step, steps_total
      scheduled_at started_at finished_at next_attempt_at
                            the same (null: -1)
      error                 error (null: none)
      steps                 steps: each {step, task_id, status} -> step, task,
                            status (its name -> bk_status_t)
      event {name data}     has_event, event_name, event_data (data's msgpack
                            bytes; nil when it was null)
      _steps                templates (the array's msgpack bytes, as they are)
      _priority _max_retries  priority, max_retries
      _backoff              backoff (its name -> bk_backoff_t)
      _concurrency          concurrency_key (null: none)
      _due                  due
*/
#include "upgrade_sched.h"
#include "../backoff.h"
#include "aq_uuid.h"
#include "sched_run.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(text) aq_node_streq (&name, text)

//  The steps array: each {step, task_id, status} into the run's steps.
static bool s_steps (bk_sched_run_t *run, const aq_node_t *value) {
    if (value->type != AQ_NODE_ARRAY)
        return false;
    aq_iter_t it, fields;
    aq_node_t entry, name, part;
    aq_node_iter (value, &it);
    while (aq_iter_next (&it, NULL, &entry)) {
        int step = -1, status = 0;
        uint8_t task[16];
        bool has_task = false;
        if (entry.type != AQ_NODE_MAP || entry.count != 3)
            return false;
        aq_node_iter (&entry, &fields);
        while (aq_iter_next (&fields, &name, &part)) {
            bool ok = false;
            if (FIELD ("step"))
                ok = bk_sched_upgrade_count (&part, &step);
            else if (FIELD ("task_id"))
                ok = has_task = bk_sched_upgrade_uuid (&part, task);
            else if (FIELD ("status"))
                ok = bk_sched_upgrade_name (&part, bk_status_parse, 0, &status);
            if (!ok)
                return false;
        }
        if (step < 0 || !has_task || !status)
            return false;
        bk_sched_run_add_step (run, step, task, status);
    }
    return true;
}

//  The event {name, data}: 0 or -1 with why filled.
static int s_event (bk_sched_why_t *self, bk_sched_run_t *run, const aq_node_t *value) {
    aq_node_t event_name = {.data = (const uint8_t *) "event", .count = 5};
    if (value->type != AQ_NODE_MAP)
        return bk_sched_upgrade_malformed (self, "", &event_name);
    aq_iter_t it;
    aq_node_t name, part;
    aq_node_iter (value, &it);
    while (aq_iter_next (&it, &name, &part)) {
        if (FIELD ("data")) //  any value; null stays nil, as a run of this build keeps it
            run->event_data =
                (bk_blob_t){bk_arena_memdup (run->arena, part.raw, part.raw_size), part.raw_size};
        else if (!FIELD ("name"))
            return bk_sched_upgrade_unknown (self, "event.", &name);
        else if (!bk_sched_upgrade_text (run->arena, &part, false, &run->event_name))
            return bk_sched_upgrade_malformed (self, "event.", &name);
    }
    if (!run->event_name)
        return bk_sched_upgrade_bad (self, "field 'event.name' is missing");
    if (!run->event_data.size)
        run->event_data = (bk_blob_t){(const uint8_t *) "\xc0", 1}; //  nil
    run->has_event = true;
    return 0;
}

int bk_sched_upgrade_run (bk_sched_why_t *self, const uint8_t *key, size_t key_size,
                          const aq_node_t *v1, aq_writer_t *w) {
    bk_sched_run_t *run = bk_sched_run_new (v1->raw_size);
    bk_arena_t *arena = run->arena;
    run->attempt = run->step = run->steps_total = -1;
    bool id = false, schedule = false, team = false;
    int rc = 0;
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (rc == 0 && aq_iter_next (&it, &name, &value)) {
        bool ok = true;
        if (FIELD ("id"))
            ok = id = bk_sched_upgrade_uuid (&value, run->id);
        else if (FIELD ("task_id"))
            ok = schedule = bk_sched_upgrade_uuid (&value, run->schedule);
        else if (FIELD ("team_id"))
            ok = team = bk_sched_upgrade_uuid (&value, run->team);
        else if (FIELD ("trigger"))
            ok =
                bk_sched_upgrade_named (&value, bk_run_trigger_name, 1, BK_TRIGGERS, &run->trigger);
        else if (FIELD ("status"))
            ok = bk_sched_upgrade_named (&value, bk_run_status_name, 1, BK_RUN_STATUSES,
                                         &run->status);
        else if (FIELD ("attempt"))
            ok = bk_sched_upgrade_count (&value, &run->attempt);
        else if (FIELD ("step"))
            ok = bk_sched_upgrade_count (&value, &run->step);
        else if (FIELD ("steps_total"))
            ok = bk_sched_upgrade_count (&value, &run->steps_total);
        else if (FIELD ("scheduled_at"))
            ok = bk_sched_upgrade_time (&value, true, &run->scheduled_at);
        else if (FIELD ("started_at"))
            ok = bk_sched_upgrade_time (&value, true, &run->started_at);
        else if (FIELD ("finished_at"))
            ok = bk_sched_upgrade_time (&value, true, &run->finished_at);
        else if (FIELD ("next_attempt_at"))
            ok = bk_sched_upgrade_time (&value, true, &run->next_attempt_at);
        else if (FIELD ("error"))
            ok = bk_sched_upgrade_text (arena, &value, true, &run->error);
        else if (FIELD ("steps"))
            ok = s_steps (run, &value);
        else if (FIELD ("event"))
            rc = s_event (self, run, &value);
        else if (FIELD ("_steps"))
            ok = bk_sched_upgrade_raw (arena, &value, AQ_NODE_ARRAY, &run->templates);
        else if (FIELD ("_priority"))
            ok = bk_sched_upgrade_count (&value, &run->priority);
        else if (FIELD ("_max_retries"))
            ok = bk_sched_upgrade_count (&value, &run->max_retries);
        else if (FIELD ("_backoff"))
            ok = bk_sched_upgrade_name (&value, bk_backoff_parse, -1, &run->backoff);
        else if (FIELD ("_concurrency"))
            ok = bk_sched_upgrade_text (arena, &value, true, &run->concurrency_key);
        else if (FIELD ("_due"))
            ok = bk_sched_upgrade_time (&value, true, &run->due);
        else
            rc = bk_sched_upgrade_unknown (self, "", &name);
        if (rc == 0 && !ok)
            rc = bk_sched_upgrade_malformed (self, "", &name);
    }
    const char *missing = !id                    ? "id"
                          : !schedule            ? "task_id"
                          : !team                ? "team_id"
                          : !run->trigger        ? "trigger"
                          : !run->status         ? "status"
                          : run->attempt < 0     ? "attempt"
                          : run->step < 0        ? "step"
                          : run->steps_total < 0 ? "steps_total"
                          : !run->templates.size ? "_steps"
                                                 : NULL;
    if (rc == 0 && missing)
        rc = bk_sched_upgrade_bad (self, "field '%s' is missing", missing);
    if (rc == 0 && (key_size != 16 || memcmp (run->id, key, 16) != 0))
        rc = bk_sched_upgrade_bad (self, "field 'id' is not the record's key");
    if (rc == 0)
        bk_sched_run_encode (run, w);
    bk_sched_run_destroy (&run);
    return rc;
}

#undef FIELD

//  --------------------------------------------------------------------------
//  Selftest: a run in every state the first release's scheduler left one,
//  converted as upgrade.c converts it and read back through schedules.c,
//  field by field (upgrade_sched.c tests the rest).

#include "../../tests/rig_v1.h"
#include "../../tests/rig_upgrade.h"
#include "aq_json.h"
#include "schedules.h"

#define S_T0 1765000000000LL //  2025-12-06T05:46:40.000Z

//  The common part of a run: its fields up to steps_total.
#define S_RUN_HEAD                                                                                 \
    "{'id': '%s', 'task_id': '%s', 'team_id': '%s', 'trigger': '%s', 'status': '%s', "             \
    "'attempt': %d, 'step': %d, 'steps_total': %d, "

static void s_test_runs (bk_store_t *store, const uint8_t team[16], const char *team_text) {
    uint8_t schedule[16], step[4][16], run_id[6][16];
    char schedule_text[AQ_UUID_TEXT], text[6][AQ_UUID_TEXT], step_text[4][AQ_UUID_TEXT];
    char why[256];
    rig_upgrade_uuid (100, schedule, schedule_text);
    for (int i = 0; i < 6; i++)
        rig_upgrade_uuid (200 + i, run_id[i], text[i]);
    for (int i = 0; i < 4; i++)
        rig_upgrade_uuid (300 + i, step[i], step_text[i]);
    const char *one = "[{'targetUrl': 'http://x/1'}]";
    //  0: run_now, completed, with a concurrency key
    rig_v1_put_json (store, BK_DB_RUNS, run_id[0], 16,
                     S_RUN_HEAD
                     "'scheduled_at': null, 'started_at': %lld, 'finished_at': %lld, "
                     "'next_attempt_at': null, 'error': null, 'steps': [{'step': 0, "
                     "'task_id': '%s', 'status': 'completed'}], '_steps': %s, "
                     "'_priority': 5, '_max_retries': 3, '_backoff': 'exponential_jitter', "
                     "'_concurrency': 'reports'}",
                     text[0], schedule_text, team_text, "run_now", "completed", 1, 0, 1, S_T0,
                     S_T0 + 2, step_text[0], one);
    //  1: a fire time's run, running its first of two steps, holding a key
    rig_v1_put_json (store, BK_DB_RUNS, run_id[1], 16,
                     S_RUN_HEAD
                     "'scheduled_at': %lld, 'started_at': %lld, 'finished_at': null, "
                     "'next_attempt_at': null, 'error': null, 'steps': [{'step': 0, "
                     "'task_id': '%s', 'status': 'waiting'}], '_steps': [{'targetUrl': "
                     "'http://x/1', 'body': 'one'}, {'targetUrl': 'http://x/2', 'method': "
                     "'GET'}], '_priority': 2, '_max_retries': 2, '_backoff': 'linear', "
                     "'_concurrency': 'serial'}",
                     text[1], schedule_text, team_text, "schedule", "running", 1, 0, 2, S_T0 - 1,
                     S_T0, step_text[1]);
    //  2: waiting for that key: not started, no step yet
    rig_v1_put_json (store, BK_DB_RUNS, run_id[2], 16,
                     S_RUN_HEAD
                     "'scheduled_at': null, 'started_at': null, 'finished_at': null, "
                     "'next_attempt_at': null, 'error': null, 'steps': [], '_steps': %s, "
                     "'_priority': 5, '_max_retries': 3, '_backoff': 'exponential_jitter', "
                     "'_concurrency': 'serial'}",
                     text[2], schedule_text, team_text, "run_now", "waiting", 1, 0, 1, one);
    //  3: retrying from its failed second step, its retry queued
    rig_v1_put_json (store, BK_DB_RUNS, run_id[3], 16,
                     S_RUN_HEAD
                     "'scheduled_at': null, 'started_at': %lld, 'finished_at': null, "
                     "'next_attempt_at': %lld, 'error': 'step 1 failed: HTTP 500', "
                     "'steps': [{'step': 0, 'task_id': '%s', 'status': 'completed'}, "
                     "{'step': 1, 'task_id': '%s', 'status': 'failed'}], '_steps': "
                     "[{'targetUrl': 'http://x/1'}, {'targetUrl': 'http://x/500'}], "
                     "'_priority': 5, '_max_retries': 2, '_backoff': 'fixed', '_due': %lld}",
                     text[3], schedule_text, team_text, "run_now", "retrying", 2, 1, 2, S_T0,
                     S_T0 + 3600000, step_text[2], step_text[3], S_T0 + 3600000);
    //  4: an event's run, skipped by its dedupe key (its key dropped)
    rig_v1_put_json (store, BK_DB_RUNS, run_id[4], 16,
                     S_RUN_HEAD "'scheduled_at': null, 'started_at': null, 'finished_at': %lld, "
                                "'next_attempt_at': null, 'error': 'deduplicated', 'steps': [], "
                                "'_steps': %s, '_priority': 5, '_max_retries': 3, '_backoff': "
                                "'exponential_jitter', 'event': {'name': 'invoice.paid', 'data': "
                                "{'invoice': 'INV-2', 'cents': 1250}}}",
                     text[4], schedule_text, team_text, "event", "skipped", 1, 0, 1, S_T0, one);
    //  5: an event's run whose event had no data, failed
    rig_v1_put_json (store, BK_DB_RUNS, run_id[5], 16,
                     S_RUN_HEAD "'scheduled_at': null, 'started_at': %lld, 'finished_at': %lld, "
                                "'next_attempt_at': null, 'error': 'step 0: token not found', "
                                "'steps': [], '_steps': %s, '_priority': 1, '_max_retries': 0, "
                                "'_backoff': 'exponential_jitter', 'event': {'name': 'x', 'data': "
                                "null}}",
                     text[5], schedule_text, team_text, "event", "failed", 1, 0, 1, S_T0, S_T0,
                     one);
    for (int i = 0; i < 6; i++)
        assert (rig_upgrade_convert (store, BK_DB_RUNS, run_id[i], 16, why) == 0);

    bk_sched_run_t *run = bk_schedules_run (store, run_id[0]);
    assert (run && memcmp (run->id, run_id[0], 16) == 0);
    assert (memcmp (run->schedule, schedule, 16) == 0 && memcmp (run->team, team, 16) == 0);
    assert (run->trigger == BK_TRIGGER_RUN_NOW && run->status == BK_RUN_COMPLETED);
    assert (run->attempt == 1 && run->step == 0 && run->steps_total == 1);
    assert (run->scheduled_at == -1 && run->started_at == S_T0 && run->finished_at == S_T0 + 2);
    assert (run->next_attempt_at == -1 && !run->error && run->nsteps == 1);
    assert (run->steps[0].step == 0 && memcmp (run->steps[0].task, step[0], 16) == 0);
    assert (run->steps[0].status == BK_ST_COMPLETED && !run->has_event);
    rig_upgrade_json_is (&run->templates, "[{\"targetUrl\":\"http://x/1\"}]");
    assert (run->priority == 5 && run->max_retries == 3 && run->backoff == BK_BACKOFF_JITTER);
    assert (strcmp (run->concurrency_key, "reports") == 0 && run->due == -1);
    bk_sched_run_destroy (&run);

    run = bk_schedules_run (store, run_id[1]);
    assert (run && run->trigger == BK_TRIGGER_SCHEDULE && run->status == BK_RUN_RUNNING);
    assert (run->scheduled_at == S_T0 - 1 && run->started_at == S_T0 && run->steps_total == 2);
    assert (run->nsteps == 1 && run->steps[0].status == BK_ST_WAITING);
    assert (memcmp (run->steps[0].task, step[1], 16) == 0 && run->priority == 2);
    assert (run->max_retries == 2 && run->backoff == BK_BACKOFF_LINEAR);
    rig_upgrade_json_is (&run->templates, "[{\"targetUrl\":\"http://x/1\",\"body\":\"one\"},"
                                          "{\"targetUrl\":\"http://x/2\",\"method\":\"GET\"}]");
    assert (strcmp (run->concurrency_key, "serial") == 0);
    bk_sched_run_destroy (&run);

    run = bk_schedules_run (store, run_id[2]);
    assert (run && run->status == BK_RUN_WAITING && run->started_at == -1 && run->nsteps == 0);
    assert (strcmp (run->concurrency_key, "serial") == 0);
    bk_sched_run_destroy (&run);

    run = bk_schedules_run (store, run_id[3]);
    assert (run && run->status == BK_RUN_RETRYING && run->attempt == 2 && run->step == 1);
    assert (run->next_attempt_at == S_T0 + 3600000 && run->due == S_T0 + 3600000);
    assert (strcmp (run->error, "step 1 failed: HTTP 500") == 0 && run->nsteps == 2);
    assert (run->steps[0].status == BK_ST_COMPLETED && run->steps[1].status == BK_ST_FAILED);
    assert (run->steps[1].step == 1 && memcmp (run->steps[1].task, step[3], 16) == 0);
    assert (run->backoff == BK_BACKOFF_FIXED && !run->concurrency_key);
    bk_sched_run_destroy (&run);

    run = bk_schedules_run (store, run_id[4]);
    assert (run && run->trigger == BK_TRIGGER_EVENT && run->status == BK_RUN_SKIPPED);
    assert (run->finished_at == S_T0 && strcmp (run->error, "deduplicated") == 0);
    assert (run->has_event && strcmp (run->event_name, "invoice.paid") == 0);
    rig_upgrade_json_is (&run->event_data, "{\"invoice\":\"INV-2\",\"cents\":1250}");
    bk_sched_run_destroy (&run);

    run = bk_schedules_run (store, run_id[5]);
    assert (run && run->status == BK_RUN_FAILED && run->has_event && run->priority == 1);
    assert (strcmp (run->event_name, "x") == 0 && run->event_data.size == 1);
    assert (run->event_data.data[0] == 0xc0); //  nil, as a run of this build keeps none
    bk_sched_run_destroy (&run);

    //  what it refuses
    struct {
        const char *fields, *why;
    } bad[] = {
        {"'trigger': 'cron'", "field 'trigger' is malformed"},
        {"'steps': [{'step': 0, 'task_id': 'x', 'status': 'completed'}]",
         "field 'steps' is malformed"},
        {"'steps': [{'step': 0, 'task_id': '%s', 'status': 'done'}]", "field 'steps' is malformed"},
        {"'event': {'name': 'x', 'data': 1, 'x': 2}", "unknown field 'event.x'"},
        {"'event': {'data': 1}", "field 'event.name' is missing"},
        {"'event': 'x'", "field 'event' is malformed"},
        {"'_steps': {}", "field '_steps' is malformed"},
        {"'_steps': null", "field '_steps' is malformed"},
        {"'started_at': -5", "field 'started_at' is malformed"},
        {"'_runs': 1", "unknown field '_runs'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char fields[160];
        snprintf (fields, sizeof fields, bad[i].fields, step_text[0]);
        rig_v1_put_json (store, BK_DB_RUNS, run_id[0], 16, S_RUN_HEAD "'_steps': %s, %s}", text[0],
                         schedule_text, team_text, "run_now", "pending", 1, 0, 1, one, fields);
        assert (rig_upgrade_convert (store, BK_DB_RUNS, run_id[0], 16, why) == -1);
        if (strcmp (why, bad[i].why) != 0) {
            fprintf (stderr, "bk_sched_upgrade: %s gave '%s', want '%s'\n", fields, why,
                     bad[i].why);
            assert (false);
        }
    }
    rig_v1_put_json (store, BK_DB_RUNS, run_id[0], 16, S_RUN_HEAD "'steps': []}", text[0],
                     schedule_text, team_text, "run_now", "pending", 1, 0, 1);
    assert (rig_upgrade_convert (store, BK_DB_RUNS, run_id[0], 16, why) == -1);
    assert (strcmp (why, "field '_steps' is missing") == 0);
}

void bk_sched_upgrade_run_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], team_text[AQ_UUID_TEXT];
    uint8_t team[16];
    bk_store_t *store = bk_store_test_new (dir);
    rig_upgrade_uuid (1, team, team_text);
    s_test_runs (store, team, team_text);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_sched_upgrade_run: ok\n");
}
