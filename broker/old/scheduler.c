/*  scheduler.c - scheduled tasks (/tasks): commands, fire times, runs */
#include "scheduler.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "backoff.h"
#include "delay.h"
#include "sched_task.h"
#include "schedule.h"
#include "schedules.h"
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PREVIEW_DFLT 5
#define S_SEEK_MS      1000 //  a search that ran out of work goes on this much later

//  --------------------------------------------------------------------------
//  Helpers

static const char *s_str (const json_t *record, const char *field) {
    return json_string_value (json_object_get (record, field));
}

static int64_t s_int (const json_t *record, const char *field, int64_t dflt) {
    json_t *value = json_object_get (record, field);
    return json_is_integer (value) ? json_integer_value (value) : dflt;
}

static bool s_is (const json_t *record, const char *field, const char *want) {
    const char *value = s_str (record, field);
    return value && strcmp (value, want) == 0;
}

static void s_set_time (json_t *record, const char *field, int64_t ms) {
    json_object_set_new (record, field, ms >= 0 ? json_integer (ms) : json_null ());
}

static void s_answer_task (bk_broker_t *self, bk_req_t *req, int status, const json_t *record,
                           int rc) {
    if (rc == 0)
        bk_broker_answer (self, req, status,
                          json_pack ("{s:o}", "task", bk_schedules_public (record)), NULL);
    else
        bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
}

//  409 for an action on a canceled schedule; true when answered.
static bool s_refuse_canceled (bk_broker_t *self, bk_req_t *req, const json_t *record,
                               const char *done) {
    if (!s_is (record, "status", "canceled"))
        return false;
    char error[96];
    snprintf (error, sizeof error, "Task cannot be %s in status canceled", done);
    bk_broker_answer (self, req, AQ_CONFLICT, NULL, error);
    return true;
}

//  --------------------------------------------------------------------------
//  Fire times

//  The next fire time strictly after after_ms: -1 if none, BK_SCHEDULE_OVER
//  if *work ran out first. The record's "_cursor" keeps how far the search
//  got, so the next one (the next fire, or this one going on) starts there.
static int64_t s_next_fire (json_t *record, int64_t after_ms, int64_t *work) {
    json_t *cursor = json_object_get (record, "_cursor");
    if (!json_is_array (cursor)) {
        cursor = json_array ();
        json_object_set_new (record, "_cursor", cursor);
    }
    int64_t next = bk_schedule_next (s_str (record, "schedule_kind"),
                                     s_str (record, "schedule_expr"), s_str (record, "timezone"),
                                     s_int (record, "_anchor", 0), after_ms, cursor, work);
    if (json_array_size (cursor) == 0)
        json_object_del (record, "_cursor");
    return next;
}

//  Where an RRULE without DTSTART starts: the current minute, so its fire
//  times fall on whole minutes unless the rule says BYSECOND.
static int64_t s_anchor (bk_broker_t *self) {
    return self->now - self->now % 60000;
}

//  Takes the schedule's fire time out of the delay queue.
static int s_disarm (bk_broker_t *self, json_t *record) {
    json_t *due = json_object_get (record, "_due");
    int rc = 0;
    if (json_is_integer (due)) {
        uint8_t id[16];
        bk_schedules_ids (record, id, NULL);
        rc = bk_delay_remove (self->store, json_integer_value (due), BK_DELAY_SCHEDULE, id);
    }
    json_object_del (record, "_due");
    return rc;
}

//  Queues the fire time next (-1: none) of an active schedule, held off
//  until the end of a snooze; sets next_run_at. The caller disarmed it.
//  A schedule whose search ran out of work ("_seek") has no next_run_at
//  yet: its search is queued to go on S_SEEK_MS from now.
static int s_arm (bk_broker_t *self, json_t *record, int64_t next) {
    bool seeking = json_object_get (record, "_seek") != NULL;
    if (seeking)
        next = self->now + S_SEEK_MS;
    int64_t snoozed = s_int (record, "snoozed_until", -1);
    if (!seeking && next >= 0 && snoozed > next)
        next = snoozed;
    s_set_time (record, "next_run_at", seeking ? -1 : next);
    if (next < 0 || !s_is (record, "status", "active"))
        return 0;
    uint8_t id[16];
    bk_schedules_ids (record, id, NULL);
    json_object_set_new (record, "_due", json_integer (next));
    return bk_broker_timer (self, next, BK_DELAY_SCHEDULE, id);
}

//  --------------------------------------------------------------------------
//  Runs

static json_t *s_run_entry (json_t *run, const char *task_id) {
    size_t index;
    json_t *entry;
    json_array_foreach (json_object_get (run, "steps"), index,
                        entry) if (s_is (entry, "task_id", task_id)) return entry;
    return NULL;
}

static void s_run_finish (bk_broker_t *self, json_t *run, const char *status, const char *error);

//  Creates the task of the run's current step. On a step that cannot be
//  built (a token deleted since), the run fails. 0 or a store error.
static int s_run_step (bk_broker_t *self, json_t *run) {
    int step = (int) s_int (run, "step", 0);
    json_t *request = json_deep_copy (json_array_get (json_object_get (run, "_steps"), step));
    json_t *event = json_object_get (run, "event");
    if (event && !json_is_null (json_object_get (event, "data")) &&
        !json_object_get (request, "body")) {
        //  an event's data is the body of steps that bring none
        char *text = json_dumps (json_object_get (event, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (text)
            json_object_set_new (request, "body", json_string (text));
        free (text);
        json_t *headers = json_object_get (request, "headers");
        if (!headers)
            json_object_set_new (request, "headers", headers = json_object ());
        if (json_is_object (headers) && !json_object_get (headers, "Content-Type"))
            json_object_set_new (headers, "Content-Type", json_string ("application/json"));
    }
    if (!json_object_get (request, "priority"))
        json_object_set_new (
            request, "priority",
            json_integer (bk_sched_task_queue_priority ((int) s_int (run, "_priority", 5))));
    uint8_t team[16];
    aq_uuid_parse (s_str (run, "team_id"), team);
    char errbuf[256], error[300];
    json_t *task = bk_broker_task_build (self, team, request, errbuf, sizeof errbuf);
    json_decref (request);
    if (!task) {
        snprintf (error, sizeof error, "step %d: %s", step, errbuf);
        s_run_finish (self, run, "failed", error);
        return 0;
    }
    json_object_set (task, "scheduleId", json_object_get (run, "task_id"));
    json_object_set (task, "runId", json_object_get (run, "id"));
    json_object_set_new (task, "step", json_integer (step));
    int rc = bk_broker_task_insert (self, task);
    json_array_append_new (json_object_get (run, "steps"),
                           json_pack ("{s:i, s:O, s:s}", "step", step, "task_id",
                                      json_object_get (task, "id"), "status",
                                      bk_status_name (bk_task_status (task))));
    json_object_set_new (run, "status", json_string ("running"));
    json_decref (task);
    return rc;
}

//  Starts a run that may start now (not waiting for its key).
static int s_run_begin (bk_broker_t *self, json_t *run) {
    s_set_time (run, "started_at", self->now);
    return s_run_step (self, run);
}

//  The run after the one releasing a concurrency key, or none.
static int s_run_release (bk_broker_t *self, const json_t *run) {
    const char *key = s_str (run, "_concurrency");
    if (!key)
        return 0;
    uint8_t team[16];
    aq_uuid_parse (s_str (run, "team_id"), team);
    json_t *holder = bk_runkeys_concurrency (self->store, team, key);
    if (!holder || !s_is (holder, "running", s_str (run, "id"))) {
        json_decref (holder);
        return 0;
    }
    int rc = 0;
    json_t *waiting = json_object_get (holder, "waiting");
    json_t *next = NULL;
    while (!next && json_array_size (waiting) > 0) {
        uint8_t id[16];
        if (aq_uuid_parse (json_string_value (json_array_get (waiting, 0)), id) == 0)
            next = bk_runs_get (self->store, id);
        json_array_remove (waiting, 0);
        if (next && !s_is (next, "status", "waiting")) {
            json_decref (next);
            next = NULL;
        }
    }
    if (next) {
        json_object_set (holder, "running", json_object_get (next, "id"));
        rc = bk_runkeys_set_concurrency (self->store, team, key, holder);
        if (rc == 0)
            rc = s_run_begin (self, next);
        if (rc == 0)
            rc = bk_runs_save (self->store, next, false);
        json_decref (next);
    } else
        rc = bk_runkeys_set_concurrency (self->store, team, key, NULL);
    json_decref (holder);
    return rc;
}

static void s_run_finish (bk_broker_t *self, json_t *run, const char *status, const char *error) {
    json_object_set_new (run, "status", json_string (status));
    s_set_time (run, "finished_at", self->now);
    s_set_time (run, "next_attempt_at", -1);
    json_object_set_new (run, "error", error ? json_string (error) : json_null ());
    s_run_release (self, run);
}

//  A new run of a schedule, started, waiting for its concurrency key or
//  skipped by its dedupe key, and stored. Returns the run (new reference)
//  or NULL on a store error.
static json_t *s_run_new (bk_broker_t *self, const json_t *record, const char *trigger,
                          int64_t scheduled_at, const json_t *event) {
    uint8_t id[16], team[16];
    char text[AQ_UUID_TEXT];
    aq_uuid_new (id);
    aq_uuid_parse (s_str (record, "team_id"), team);
    json_t *steps = bk_sched_task_steps (json_object_get (record, "payload"));
    json_t *run = json_pack (
        "{s:s, s:O, s:O, s:s, s:s, s:i, s:i, s:i, s:n, s:n, s:n, s:n, s:n, s:[], s:o, s:O, "
        "s:O, s:O, s:O}",
        "id", aq_uuid_format (id, text), "task_id", json_object_get (record, "id"), "team_id",
        json_object_get (record, "team_id"), "trigger", trigger, "status", "pending", "attempt", 1,
        "step", 0, "steps_total", (int) json_array_size (steps), "scheduled_at", "started_at",
        "finished_at", "next_attempt_at", "error", "steps", "_steps", steps, "_priority",
        json_object_get (record, "priority"), "_max_retries",
        json_object_get (record, "max_retries"), "_backoff",
        json_object_get (record, "backoff_strategy"), "_concurrency",
        json_object_get (record, "concurrency_key"));
    if (scheduled_at >= 0)
        s_set_time (run, "scheduled_at", scheduled_at);
    if (event)
        json_object_set (run, "event", (json_t *) event);
    if (json_is_null (json_object_get (run, "_concurrency")))
        json_object_del (run, "_concurrency");
    int rc = 0;
    const char *dedupe = s_str (record, "dedupe_key");
    const char *key = s_str (run, "_concurrency");
    if (dedupe && strcmp (trigger, "run_now") != 0) {
        int64_t last = bk_runkeys_dedupe (self->store, team, dedupe);
        int64_t window = s_int (record, "dedupe_window_seconds", BK_SCHED_TASK_DEDUPE_S) * 1000;
        if (last >= 0 && self->now - last < window) {
            json_object_set_new (run, "status", json_string ("skipped"));
            s_set_time (run, "finished_at", self->now);
            json_object_set_new (run, "error", json_string ("deduplicated"));
            json_object_del (run, "_concurrency");
            key = NULL;
            goto save;
        }
        rc = bk_runkeys_set_dedupe (self->store, team, dedupe, self->now);
    }
    if (rc == 0 && key) {
        json_t *holder = bk_runkeys_concurrency (self->store, team, key);
        if (holder && s_str (holder, "running")) {
            json_array_append (json_object_get (holder, "waiting"), json_object_get (run, "id"));
            json_object_set_new (run, "status", json_string ("waiting"));
            rc = bk_runkeys_set_concurrency (self->store, team, key, holder);
            json_decref (holder);
            goto save;
        }
        json_decref (holder);
        holder = json_pack ("{s:O, s:[]}", "running", json_object_get (run, "id"), "waiting");
        rc = bk_runkeys_set_concurrency (self->store, team, key, holder);
        json_decref (holder);
    }
    if (rc == 0)
        rc = s_run_begin (self, run);
save:
    if (rc == 0)
        rc = bk_runs_save (self->store, run, true);
    if (rc != 0) {
        json_decref (run);
        return NULL;
    }
    return run;
}

void bk_scheduler_step_done (bk_broker_t *self, const json_t *task) {
    uint8_t id[16];
    if (aq_uuid_parse (s_str (task, "runId"), id) != 0)
        return;
    json_t *run = bk_runs_get (self->store, id);
    json_t *entry = run ? s_run_entry (run, s_str (task, "id")) : NULL;
    if (!entry) {
        json_decref (run);
        return;
    }
    int status = bk_task_status (task);
    json_object_set_new (entry, "status", json_string (bk_status_name (status)));
    json_t *steps = json_object_get (run, "steps");
    bool current = s_is (run, "status", "running") &&
                   json_array_get (steps, json_array_size (steps) - 1) == entry;
    if (current && status == BK_ST_COMPLETED) {
        int step = (int) s_int (run, "step", 0) + 1;
        if (step >= s_int (run, "steps_total", 1))
            s_run_finish (self, run, "completed", NULL);
        else {
            json_object_set_new (run, "step", json_integer (step));
            s_run_step (self, run);
        }
    } else if (current) {
        char error[300];
        const char *why = s_str (task, "error");
        snprintf (error, sizeof error, "step %d %s%s%.200s", (int) s_int (run, "step", 0),
                  bk_status_name (status), why ? ": " : "", why ? why : "");
        int attempt = (int) s_int (run, "attempt", 1);
        if (status != BK_ST_CANCELLED && attempt <= s_int (run, "_max_retries", 0)) {
            //  again from the failed step, after the back-off
            int64_t due = self->now + bk_backoff_ms (s_str (run, "_backoff"), attempt,
                                                     self->cfg->backoff_base_ms,
                                                     self->cfg->backoff_cap_ms, -1);
            json_object_set_new (run, "attempt", json_integer (attempt + 1));
            json_object_set_new (run, "status", json_string ("retrying"));
            json_object_set_new (run, "error", json_string (error));
            s_set_time (run, "next_attempt_at", due);
            json_object_set_new (run, "_due", json_integer (due));
            bk_broker_timer (self, due, BK_DELAY_RUN, id);
        } else
            s_run_finish (self, run, "failed", error);
    }
    bk_runs_save (self->store, run, false);
    json_decref (run);
}

//  --------------------------------------------------------------------------
//  Timers

void bk_scheduler_due (bk_broker_t *self, int kind, const uint8_t id[16], int64_t due) {
    if (kind == BK_DELAY_RUN) {
        json_t *run = bk_runs_get (self->store, id);
        if (run && s_is (run, "status", "retrying") && s_int (run, "_due", -1) == due) {
            json_object_del (run, "_due");
            s_set_time (run, "next_attempt_at", -1);
            s_run_step (self, run);
            bk_runs_save (self->store, run, false);
        }
        json_decref (run);
        return;
    }
    json_t *old = bk_schedules_get (self->store, id);
    if (!old || !s_is (old, "status", "active") || s_int (old, "_due", -1) != due) {
        json_decref (old); //  stale: paused, canceled or moved since
        return;
    }
    json_t *record = json_deep_copy (old);
    json_object_del (record, "_due");
    json_t *seek = json_object_get (record, "_seek");
    int64_t after = json_integer_value (seek);
    if (!seek) {
        json_t *run = s_run_new (self, record, "schedule", due, NULL);
        json_decref (run);
        s_set_time (record, "last_run_at", self->now);
        //  the next fire time after now: missed ones (downtime) coalesce into this run
        after = self->now > due ? self->now : due;
    }
    //  A search that runs out of work is not a failure: it keeps how far it
    //  got and goes on S_SEEK_MS later, with a fresh budget, until it ends
    int64_t work = BK_SCHEDULE_WORK;
    int64_t next = s_next_fire (record, after, &work);
    if (next == BK_SCHEDULE_OVER)
        json_object_set_new (record, "_seek", json_integer (after));
    else
        json_object_del (record, "_seek");
    s_arm (self, record, next);
    bk_schedules_save (self->store, record, old);
    json_decref (record);
    json_decref (old);
}

//  --------------------------------------------------------------------------
//  Commands

//  Checks every step template of a payload as POST /v1/tasks would.
static int s_check_steps (bk_broker_t *self, bk_req_t *req, const json_t *payload) {
    json_t *steps = bk_sched_task_steps (payload);
    bool bare = !json_object_get (payload, "steps");
    size_t index;
    json_t *step;
    int rc = 0;
    json_array_foreach (steps, index, step) {
        char errbuf[256], error[320];
        json_t *task = bk_broker_task_build (self, req->team, step, errbuf, sizeof errbuf);
        if (!task) {
            if (bare)
                snprintf (error, sizeof error, "payload: %s", errbuf);
            else
                snprintf (error, sizeof error, "payload.steps[%zu]: %s", index, errbuf);
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, error);
            rc = -1;
            break;
        }
        json_decref (task);
    }
    json_decref (steps);
    return rc;
}

static void s_create (bk_broker_t *self, bk_req_t *req) {
    char errbuf[BK_SCHED_TASK_ERRLEN];
    json_t *fields =
        bk_sched_task_from_request (json_object_get (req->body, "schedule"), NULL, errbuf);
    if (!fields) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, errbuf);
        return;
    }
    if (s_check_steps (self, req, json_object_get (fields, "payload")) != 0) {
        json_decref (fields);
        return;
    }
    uint8_t id[16];
    char text[AQ_UUID_TEXT];
    aq_uuid_new (id);
    json_t *record = json_pack ("{s:s}", "id", aq_uuid_format (id, text));
    json_object_set_new (record, "team_id", json_string (aq_uuid_format (req->team, text)));
    json_object_update (record, fields);
    json_decref (fields);
    json_object_set_new (record, "status", json_string ("active"));
    json_object_set_new (record, "next_run_at", json_null ());
    json_object_set_new (record, "last_run_at", json_null ());
    json_object_set_new (record, "snoozed_until", json_null ());
    json_object_set_new (record, "snooze_reason", json_null ());
    s_set_time (record, "created_at", self->now);
    s_set_time (record, "updated_at", self->now);
    json_object_set_new (record, "_anchor", json_integer (s_anchor (self)));
    int64_t work = BK_SCHEDULE_WORK;
    int64_t next = s_next_fire (record, self->now, &work);
    if (next == BK_SCHEDULE_OVER) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, BK_SCHEDULE_OVER_ERROR);
        json_decref (record);
        return;
    }
    int rc = s_arm (self, record, next);
    if (rc == 0)
        rc = bk_schedules_save (self->store, record, NULL);
    s_answer_task (self, req, AQ_CREATED, record, rc);
    json_decref (record);
}

//  Validates limit and offset; false after answering 400.
static bool s_page_args (bk_broker_t *self, bk_req_t *req, int64_t *limit, int64_t *offset) {
    *limit = bk_broker_query_int (json_object_get (req->body, "limit"), 50);
    *offset = bk_broker_query_int (json_object_get (req->body, "offset"), 0);
    if (*limit < 1 || *limit > 100)
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "limit must be a number between 1 and 100");
    else if (*offset < 0)
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "offset must be a non-negative number");
    else
        return true;
    return false;
}

static void s_list (bk_broker_t *self, bk_req_t *req) {
    const char *status = aq_field_str (req->body, "status");
    const char *kind = aq_field_str (req->body, "schedule_kind");
    const char *created_by = aq_field_str (req->body, "created_by");
    uint8_t uuid[16];
    if (status && strcmp (status, "active") != 0 && strcmp (status, "paused") != 0 &&
        strcmp (status, "canceled") != 0) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "status must be one of: active, paused, canceled");
        return;
    }
    if (kind && !bk_schedule_kind_known (kind)) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, BK_SCHEDULE_KINDS_ERROR);
        return;
    }
    if (created_by && aq_uuid_parse (created_by, uuid) != 0) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "created_by must be a UUID");
        return;
    }
    int64_t limit, offset;
    if (!s_page_args (self, req, &limit, &offset))
        return;
    uint64_t total;
    json_t *records = bk_schedules_list (self->store, req->team, status, kind, created_by,
                                         (int) limit, (int) offset, &total);
    bk_broker_answer_page (self, req, "tasks", records, bk_schedules_public, "has_more", total,
                           limit, offset);
}

static void s_update (bk_broker_t *self, bk_req_t *req, json_t *old) {
    if (s_refuse_canceled (self, req, old, "updated"))
        return;
    char errbuf[BK_SCHED_TASK_ERRLEN];
    const json_t *changes = json_object_get (req->body, "schedule");
    json_t *record = bk_sched_task_from_request (changes, old, errbuf);
    if (!record) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, errbuf);
        return;
    }
    if (json_object_get (changes, "payload") &&
        s_check_steps (self, req, json_object_get (record, "payload")) != 0) {
        json_decref (record);
        return;
    }
    int rc = 0;
    if (json_object_get (changes, "schedule_kind") || json_object_get (changes, "schedule_expr") ||
        json_object_get (changes, "timezone")) {
        json_object_set_new (record, "_anchor", json_integer (s_anchor (self)));
        json_object_del (record, "_cursor");
        json_object_del (record, "_seek");
        int64_t work = BK_SCHEDULE_WORK;
        int64_t next = s_next_fire (record, self->now, &work);
        if (next == BK_SCHEDULE_OVER) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, BK_SCHEDULE_OVER_ERROR);
            json_decref (record);
            return;
        }
        rc = s_disarm (self, record);
        if (rc == 0)
            rc = s_arm (self, record, next);
    }
    s_set_time (record, "updated_at", self->now);
    if (rc == 0)
        rc = bk_schedules_save (self->store, record, old);
    s_answer_task (self, req, AQ_OK, record, rc);
    json_decref (record);
}

static void s_action (bk_broker_t *self, bk_req_t *req, json_t *old, int cmd) {
    static const char *done[] = {"run", "snoozed", "paused", "resumed", "canceled"};
    if (s_refuse_canceled (self, req, old, done[cmd - AQ_CMD_SCHEDULE_RUN_NOW]))
        return;
    json_t *record = json_deep_copy (old);
    int rc = 0;
    bool active = s_is (record, "status", "active");
    if (cmd == AQ_CMD_SCHEDULE_RUN_NOW) {
        json_t *run = s_run_new (self, record, "run_now", -1, NULL);
        s_set_time (record, "last_run_at", self->now);
        rc = run ? bk_schedules_save (self->store, record, old) : BK_ESTORE;
        if (rc == 0)
            bk_broker_answer (self, req, AQ_CREATED,
                              json_pack ("{s:o}", "run", bk_schedules_public (run)), NULL);
        else
            bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
        json_decref (run);
        json_decref (record);
        return;
    }
    if (cmd == AQ_CMD_SCHEDULE_SNOOZE) {
        int64_t seconds;
        const char *reason;
        char errbuf[BK_SCHED_TASK_ERRLEN];
        if (bk_sched_task_snooze (json_object_get (req->body, "snooze"), &seconds, &reason,
                                  errbuf) != 0) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, errbuf);
            json_decref (record);
            return;
        }
        s_set_time (record, "snoozed_until", self->now + seconds * 1000);
        json_object_set_new (record, "snooze_reason", reason ? json_string (reason) : json_null ());
        if (active) {
            rc = s_disarm (self, record);
            if (rc == 0)
                rc = s_arm (self, record, s_int (record, "next_run_at", -1));
        }
    } else if (cmd == AQ_CMD_SCHEDULE_PAUSE && active) {
        //  next_run_at stays: a resume after it runs once for the missed times
        rc = s_disarm (self, record);
        json_object_set_new (record, "status", json_string ("paused"));
    } else if (cmd == AQ_CMD_SCHEDULE_RESUME && s_is (record, "status", "paused")) {
        json_object_set_new (record, "status", json_string ("active"));
        int64_t next = s_int (record, "next_run_at", -1);
        rc = s_arm (self, record, next >= 0 && next < self->now ? self->now : next);
    } else if (cmd == AQ_CMD_SCHEDULE_CANCEL) {
        rc = s_disarm (self, record);
        json_object_set_new (record, "status", json_string ("canceled"));
        s_set_time (record, "next_run_at", -1);
    }
    s_set_time (record, "updated_at", self->now);
    if (rc == 0)
        rc = bk_schedules_save (self->store, record, old);
    s_answer_task (self, req, AQ_OK, record, rc);
    json_decref (record);
}

static void s_runs (bk_broker_t *self, bk_req_t *req, json_t *record) {
    int64_t limit, offset;
    if (!s_page_args (self, req, &limit, &offset))
        return;
    uint8_t id[16];
    bk_schedules_ids (record, id, NULL);
    uint64_t total;
    json_t *runs = bk_runs_list (self->store, id, (int) limit, (int) offset, &total);
    bk_broker_answer_page (self, req, "runs", runs, bk_schedules_public, "has_more", total, limit,
                           offset);
}

static void s_preview (bk_broker_t *self, bk_req_t *req) {
    json_t *given = json_object_get (req->body, "schedule");
    json_t *record = NULL;
    uint8_t id[16];
    static const char *const fields[] = {"schedule_kind", "schedule_expr", "timezone", "count",
                                         NULL};
    char error[140];
    if (given) {
        if (bk_task_unknown_field (given, fields, "", error, sizeof error)) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, error);
            return;
        }
        record = json_deep_copy (given);
        if (!json_is_string (json_object_get (record, "timezone")))
            json_object_set_new (record, "timezone", json_string ("UTC"));
        char errbuf[BK_SCHEDULE_ERRLEN];
        const char *kind = s_str (record, "schedule_kind");
        if (bk_schedule_validate (kind ? kind : "", s_str (record, "schedule_expr"),
                                  s_str (record, "timezone"), errbuf) != 0) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                              kind ? errbuf : "schedule_kind is required");
            json_decref (record);
            return;
        }
    } else if (!(record = bk_broker_own (self, req, id, bk_schedules_get, bk_schedules_ids)))
        return;
    json_t *count_value =
        given ? json_object_get (given, "count") : json_object_get (req->body, "count");
    int64_t count = bk_broker_query_int (count_value, S_PREVIEW_DFLT);
    if (count < 1 || count > BK_SCHEDULE_PREVIEW_MAX) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "count must be a number between 1 and 1000");
        json_decref (record);
        return;
    }
    //  one budget for the whole list, a little more for a longer one; a
    //  stored schedule's cursor saves counting a COUNT rule again
    int64_t anchor = s_int (record, "_anchor", s_anchor (self));
    int64_t work = BK_SCHEDULE_WORK + BK_SCHEDULE_PREVIEW_ITEM * count;
    bool truncated;
    char errbuf[BK_SCHEDULE_ERRLEN];
    json_t *times =
        bk_schedule_preview (s_str (record, "schedule_kind"), s_str (record, "schedule_expr"),
                             s_str (record, "timezone"), anchor, self->now, (int) count,
                             json_object_get (record, "_cursor"), &work, &truncated, errbuf);
    if (!times) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, errbuf);
        json_decref (record);
        return;
    }
    json_t *expr = json_object_get (record, "schedule_expr");
    json_t *body = json_pack ("{s:O, s:O, s:O, s:o}", "schedule_kind",
                              json_object_get (record, "schedule_kind"), "schedule_expr",
                              expr ? expr : json_null (), "timezone",
                              json_object_get (record, "timezone"), "fire_times", times);
    if (truncated)
        json_object_set_new (body, "truncated", json_true ());
    bk_broker_answer (self, req, AQ_OK, body, NULL);
    json_decref (record);
}

static void s_event (bk_broker_t *self, bk_req_t *req) {
    json_t *event = json_object_get (req->body, "event");
    static const char *const fields[] = {"name", "data", NULL};
    char error[140];
    if (!json_is_object (event)) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "Request body must be a JSON object");
        return;
    }
    if (bk_task_unknown_field (event, fields, "", error, sizeof error)) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, error);
        return;
    }
    json_t *name = json_object_get (event, "name");
    if (!name || json_is_null (name)) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "name is required");
        return;
    }
    if (!json_is_string (name) || json_string_length (name) < 1 ||
        json_string_length (name) > BK_SCHEDULE_EVENT_MAX) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "name must be a string of 1 to 200 characters");
        return;
    }
    json_t *fired = json_pack ("{s:O, s:O}", "name", name, "data",
                               json_object_get (event, "data") ? json_object_get (event, "data")
                                                               : json_null ());
    json_t *records = bk_schedules_by_event (self->store, req->team, json_string_value (name));
    json_t *runs = json_array ();
    size_t index;
    json_t *record;
    int rc = 0;
    json_array_foreach (records, index, record) {
        if (rc != 0 || !s_is (record, "status", "active"))
            continue;
        json_t *run = s_run_new (self, record, "event", -1, fired);
        if (!run) {
            rc = BK_ESTORE;
            continue;
        }
        json_array_append_new (runs, bk_schedules_public (run));
        json_decref (run);
        json_t *updated = json_deep_copy (record);
        s_set_time (updated, "last_run_at", self->now);
        rc = bk_schedules_save (self->store, updated, record);
        json_decref (updated);
    }
    json_decref (records);
    if (rc == 0)
        bk_broker_answer (self, req, AQ_OK,
                          json_pack ("{s:{s:O, s:I}, s:o}", "event", "name", name, "matched",
                                     (json_int_t) json_array_size (runs), "runs", runs),
                          NULL);
    else {
        json_decref (runs);
        bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
    }
    json_decref (fired);
}

void bk_scheduler_command (bk_broker_t *self, bk_req_t *req, int cmd) {
    switch (cmd) {
    case AQ_CMD_SCHEDULE_CREATE:
        s_create (self, req);
        return;
    case AQ_CMD_SCHEDULE_LIST:
        s_list (self, req);
        return;
    case AQ_CMD_SCHEDULE_PREVIEW:
        s_preview (self, req);
        return;
    case AQ_CMD_EVENT_FIRE:
        s_event (self, req);
        return;
    default:
        break;
    }
    uint8_t id[16];
    json_t *record = bk_broker_own (self, req, id, bk_schedules_get, bk_schedules_ids);
    if (!record)
        return;
    if (cmd == AQ_CMD_SCHEDULE_GET)
        s_answer_task (self, req, AQ_OK, record, 0);
    else if (cmd == AQ_CMD_SCHEDULE_UPDATE)
        s_update (self, req, record);
    else if (cmd == AQ_CMD_SCHEDULE_RUNS)
        s_runs (self, req, record);
    else
        s_action (self, req, record, cmd);
    json_decref (record);
}
