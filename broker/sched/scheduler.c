/*  scheduler.c - scheduled tasks (/tasks): commands, fire times, runs */
#include "scheduler.h"
#include "../delay.h"
#include "aq_json.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "runs.h"
#include "sched_task.h"
#include "schedule.h"
#include "schedules.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_PREVIEW_DFLT 5
#define S_SEEK_MS      1000 //  a search that ran out of work goes on this much later

struct _bk_scheduler_t {
    bk_engine_t *engine; //  borrowed
};

//  --------------------------------------------------------------------------
//  Helpers

static void s_answer_task (bk_req_t *req, int status, const bk_sched_task_t *record, int rc) {
    if (rc == 0) {
        bk_sched_task_write_public (record, bk_req_named (req, status, "task"));
        bk_req_done (req);
    } else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
}

//  409 for an action on a canceled schedule; true when answered.
static bool s_refuse_canceled (bk_req_t *req, const bk_sched_task_t *record, const char *done) {
    if (record->status != BK_SCHED_CANCELED)
        return false;
    char error[96];
    snprintf (error, sizeof error, "Task cannot be %s in status canceled", done);
    bk_req_error (req, AQ_CONFLICT, error);
    return true;
}

//  --------------------------------------------------------------------------
//  Fire times

//  The next fire time strictly after after_ms: -1 if none, BK_SCHEDULE_OVER
//  if *work ran out first. The record's cursor keeps how far the search
//  got, so the next one (the next fire, or this one going on) starts there.
static int64_t s_next_fire (bk_sched_task_t *record, int64_t after_ms, int64_t *work) {
    return bk_schedule_next (record->kind, record->expr, record->timezone, record->anchor, after_ms,
                             &record->cursor, work);
}

//  Where an RRULE without DTSTART starts: the current minute, so its fire
//  times fall on whole minutes unless the rule says BYSECOND.
static int64_t s_anchor (bk_scheduler_t *self) {
    int64_t now = bk_engine_now (self->engine);
    return now - now % 60000;
}

//  Takes the schedule's fire time out of the delay queue.
static int s_disarm (bk_scheduler_t *self, bk_sched_task_t *record) {
    int rc = 0;
    if (record->due >= 0)
        rc = bk_delay_remove (bk_engine_store (self->engine), record->due, BK_DELAY_SCHEDULE,
                              record->id);
    record->due = -1;
    return rc;
}

//  Queues the fire time next (-1: none) of an active schedule, held off
//  until the end of a snooze; sets next_run_at. The caller disarmed it.
//  A schedule whose search ran out of work (seek) has no next_run_at yet:
//  its search is queued to go on S_SEEK_MS from now.
static int s_arm (bk_scheduler_t *self, bk_sched_task_t *record, int64_t next) {
    bool seeking = record->seek >= 0;
    if (seeking)
        next = bk_engine_now (self->engine) + S_SEEK_MS;
    if (!seeking && next >= 0 && record->snoozed_until > next)
        next = record->snoozed_until;
    record->next_run_at = seeking || next < 0 ? -1 : next;
    if (next < 0 || record->status != BK_SCHED_ACTIVE)
        return 0;
    record->due = next;
    return bk_engine_timer (self->engine, next, BK_DELAY_SCHEDULE, record->id);
}

//  The schedule's fire time (id, due) fell due: a run starts (unless the
//  item is stale: paused, canceled or moved since), and the next fire
//  time after it is queued. Missed fire times (downtime) coalesce into
//  this run.
static void s_fire (bk_scheduler_t *self, const uint8_t id[16], int64_t due) {
    bk_store_t *store = bk_engine_store (self->engine);
    int64_t now = bk_engine_now (self->engine);
    bk_sched_task_t *record = bk_schedules_get (store, id);
    if (!record || record->status != BK_SCHED_ACTIVE || record->due != due) {
        bk_sched_task_destroy (&record);
        return;
    }
    record->due = -1;
    int64_t after = record->seek;
    if (after < 0) {
        bk_sched_run_t *run =
            bk_runs_start (self->engine, record, BK_TRIGGER_SCHEDULE, due, NULL, NULL);
        bk_sched_run_destroy (&run);
        record->last_run_at = now;
        after = now > due ? now : due;
    }
    //  A search that runs out of work is not a failure: it keeps how far it
    //  got and goes on S_SEEK_MS later, with a fresh budget, until it ends
    int64_t work = BK_SCHEDULE_WORK;
    int64_t next = s_next_fire (record, after, &work);
    record->seek = next == BK_SCHEDULE_OVER ? after : -1;
    s_arm (self, record, next);
    bk_schedules_save (store, record);
    bk_sched_task_destroy (&record);
}

static void s_due (void *arg, int kind, const uint8_t id[16], int64_t due) {
    bk_scheduler_t *self = arg;
    if (kind == BK_DELAY_RUN)
        bk_runs_due (self->engine, id, due);
    else if (kind == BK_DELAY_SCHEDULE)
        s_fire (self, id, due);
}

static void s_step_done (void *arg, const bk_task_t *task) {
    bk_scheduler_t *self = arg;
    bk_runs_step_done (self->engine, task);
}

bk_scheduler_t *bk_scheduler_new (bk_engine_t *engine) {
    bk_scheduler_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    bk_engine_hooks (engine, s_due, s_step_done, self);
    return self;
}

void bk_scheduler_destroy (bk_scheduler_t **self_p) {
    assert (self_p);
    bk_scheduler_t *self = *self_p;
    if (!self)
        return;
    bk_engine_hooks (self->engine, NULL, NULL, NULL);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Commands

typedef struct {
    bk_scheduler_t *self; //  the scheduler
    bk_req_t *req;        //  the request, answered on the first bad step
    bool bare;            //  the payload is one bare template
} s_steps_t;

static int s_check_step (void *arg, int index, const aq_node_t *step) {
    s_steps_t *check = arg;
    char errbuf[256], error[320];
    bk_task_t *task =
        bk_engine_build (check->self->engine, check->req->team, step, errbuf, sizeof errbuf);
    if (task) {
        bk_task_destroy (&task);
        return 0;
    }
    if (check->bare)
        snprintf (error, sizeof error, "payload: %s", errbuf);
    else
        snprintf (error, sizeof error, "payload.steps[%d]: %s", index, errbuf);
    bk_req_error (check->req, AQ_BAD_REQUEST, error);
    return -1;
}

//  Checks every step template of a payload as POST /v1/tasks would; -1
//  after answering 400.
static int s_check_steps (bk_scheduler_t *self, bk_req_t *req, const bk_sched_task_t *record) {
    s_steps_t check = {self, req, false};
    return bk_sched_task_each_step (&record->payload, s_check_step, &check, &check.bare);
}

//  The request's map field name (absent: NULL, into *value).
static const aq_node_t *s_field (bk_req_t *req, const char *name, aq_node_t *value) {
    return bk_req_get (req, name, value) ? value : NULL;
}

static void s_create (bk_scheduler_t *self, bk_req_t *req) {
    char errbuf[BK_SCHED_TASK_ERRLEN];
    aq_node_t given;
    bk_sched_task_t *record =
        bk_sched_task_from_request (s_field (req, "schedule", &given), NULL, errbuf);
    if (!record) {
        bk_req_error (req, AQ_BAD_REQUEST, errbuf);
        return;
    }
    if (s_check_steps (self, req, record) != 0) {
        bk_sched_task_destroy (&record);
        return;
    }
    aq_node_t traceparent, tracestate; //  the creator's: its runs join that trace
    bk_sched_task_set_trace (record, s_field (req, "traceparent", &traceparent),
                             s_field (req, "tracestate", &tracestate));
    int64_t now = bk_engine_now (self->engine);
    aq_uuid_new (record->id);
    memcpy (record->team, req->team, 16);
    record->status = BK_SCHED_ACTIVE;
    record->created_at = record->updated_at = now;
    record->anchor = s_anchor (self);
    int64_t work = BK_SCHEDULE_WORK;
    int64_t next = s_next_fire (record, now, &work);
    if (next == BK_SCHEDULE_OVER) {
        bk_req_error (req, AQ_BAD_REQUEST, BK_SCHEDULE_OVER_ERROR);
        bk_sched_task_destroy (&record);
        return;
    }
    int rc = s_arm (self, record, next);
    if (rc == 0)
        rc = bk_schedules_save (bk_engine_store (self->engine), record);
    s_answer_task (req, AQ_CREATED, record, rc);
    bk_sched_task_destroy (&record);
}

//  Validates limit and offset; false after answering 400.
static bool s_page_args (bk_req_t *req, int64_t *limit, int64_t *offset) {
    *limit = bk_req_query_int (req, "limit", 50);
    *offset = bk_req_query_int (req, "offset", 0);
    if (*limit < 1 || *limit > 100)
        bk_req_error (req, AQ_BAD_REQUEST, "limit must be a number between 1 and 100");
    else if (*offset < 0)
        bk_req_error (req, AQ_BAD_REQUEST, "offset must be a non-negative number");
    else
        return true;
    return false;
}

static void s_list (bk_scheduler_t *self, bk_req_t *req) {
    bk_schedules_filter_t filter = {0, -1, NULL};
    aq_node_t value;
    char created_by[AQ_UUID_TEXT];
    uint8_t uuid[16];
    if (bk_req_get (req, "status", &value) && aq_node_is_str (&value) &&
        !(filter.status = bk_sched_status_parse ((const char *) value.data, value.count))) {
        bk_req_error (req, AQ_BAD_REQUEST, "status must be one of: active, paused, canceled");
        return;
    }
    if (bk_req_get (req, "schedule_kind", &value) && aq_node_is_str (&value) &&
        (filter.kind = bk_schedule_kind_parse ((const char *) value.data, value.count)) < 0) {
        bk_req_error (req, AQ_BAD_REQUEST, BK_SCHEDULE_KINDS_ERROR);
        return;
    }
    if (bk_req_get (req, "created_by", &value) && aq_node_is_str (&value)) {
        if (!aq_node_strcpy (&value, created_by, sizeof created_by) ||
            aq_uuid_parse (created_by, uuid) != 0) {
            bk_req_error (req, AQ_BAD_REQUEST, "created_by must be a UUID");
            return;
        }
        filter.created_by = created_by;
    }
    int64_t limit, offset;
    if (!s_page_args (req, &limit, &offset))
        return;
    uint64_t total;
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    aq_write_map (w, 2);
    aq_write_str (w, "tasks");
    size_t shown = bk_schedules_write_page (bk_engine_store (self->engine), req->team, &filter,
                                            (int) limit, (int) offset, w, &total);
    aq_write_str (w, "pagination");
    bk_req_write_pagination (w, total, limit, offset, shown, "has_more");
    bk_req_done (req);
}

static void s_update (bk_scheduler_t *self, bk_req_t *req, const bk_sched_task_t *old) {
    if (s_refuse_canceled (req, old, "updated"))
        return;
    char errbuf[BK_SCHED_TASK_ERRLEN];
    aq_node_t changes, value;
    bool given = bk_req_get (req, "schedule", &changes);
    bk_sched_task_t *record = bk_sched_task_from_request (given ? &changes : NULL, old, errbuf);
    if (!record) {
        bk_req_error (req, AQ_BAD_REQUEST, errbuf);
        return;
    }
    if (aq_node_get (&changes, "payload", &value) && s_check_steps (self, req, record) != 0) {
        bk_sched_task_destroy (&record);
        return;
    }
    int rc = 0;
    if (aq_node_get (&changes, "schedule_kind", &value) ||
        aq_node_get (&changes, "schedule_expr", &value) ||
        aq_node_get (&changes, "timezone", &value)) {
        record->anchor = s_anchor (self);
        record->cursor.set = false;
        record->seek = -1;
        int64_t work = BK_SCHEDULE_WORK;
        int64_t next = s_next_fire (record, bk_engine_now (self->engine), &work);
        if (next == BK_SCHEDULE_OVER) {
            bk_req_error (req, AQ_BAD_REQUEST, BK_SCHEDULE_OVER_ERROR);
            bk_sched_task_destroy (&record);
            return;
        }
        rc = s_disarm (self, record);
        if (rc == 0)
            rc = s_arm (self, record, next);
    }
    record->updated_at = bk_engine_now (self->engine);
    if (rc == 0)
        rc = bk_schedules_save (bk_engine_store (self->engine), record);
    s_answer_task (req, AQ_OK, record, rc);
    bk_sched_task_destroy (&record);
}

static void s_run_now (bk_scheduler_t *self, bk_req_t *req, bk_sched_task_t *record) {
    bk_sched_run_t *run = bk_runs_start (self->engine, record, BK_TRIGGER_RUN_NOW, -1, NULL, NULL);
    record->last_run_at = bk_engine_now (self->engine);
    int rc = run ? bk_schedules_save (bk_engine_store (self->engine), record) : BK_ESTORE;
    if (rc == 0) {
        bk_sched_run_write_public (run, bk_req_named (req, AQ_CREATED, "run"));
        bk_req_done (req);
    } else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    bk_sched_run_destroy (&run);
}

//  RUN_NOW, SNOOZE, PAUSE, RESUME and CANCEL on record.
static void s_action (bk_scheduler_t *self, bk_req_t *req, bk_sched_task_t *record, int cmd) {
    static const char *done[] = {"run", "snoozed", "paused", "resumed", "canceled"};
    if (s_refuse_canceled (req, record, done[cmd - AQ_CMD_SCHEDULE_RUN_NOW]))
        return;
    if (cmd == AQ_CMD_SCHEDULE_RUN_NOW) {
        s_run_now (self, req, record);
        return;
    }
    int64_t now = bk_engine_now (self->engine);
    int rc = 0;
    bool active = record->status == BK_SCHED_ACTIVE;
    if (cmd == AQ_CMD_SCHEDULE_SNOOZE) {
        int64_t seconds;
        aq_node_t given, reason;
        char errbuf[BK_SCHED_TASK_ERRLEN];
        if (bk_sched_task_snooze (s_field (req, "snooze", &given), &seconds, &reason, errbuf) !=
            0) {
            bk_req_error (req, AQ_BAD_REQUEST, errbuf);
            return;
        }
        record->snoozed_until = now + seconds * 1000;
        record->snooze_reason =
            aq_node_is_str (&reason)
                ? bk_arena_strndup (record->arena, (const char *) reason.data, reason.count)
                : NULL;
        if (active) {
            rc = s_disarm (self, record);
            if (rc == 0)
                rc = s_arm (self, record, record->next_run_at);
        }
    } else if (cmd == AQ_CMD_SCHEDULE_PAUSE && active) {
        //  next_run_at stays: a resume after it runs once for the missed times
        rc = s_disarm (self, record);
        record->status = BK_SCHED_PAUSED;
    } else if (cmd == AQ_CMD_SCHEDULE_RESUME && record->status == BK_SCHED_PAUSED) {
        record->status = BK_SCHED_ACTIVE;
        int64_t next = record->next_run_at;
        rc = s_arm (self, record, next >= 0 && next < now ? now : next);
    } else if (cmd == AQ_CMD_SCHEDULE_CANCEL) {
        rc = s_disarm (self, record);
        record->status = BK_SCHED_CANCELED;
        record->next_run_at = -1;
    }
    record->updated_at = now;
    if (rc == 0)
        rc = bk_schedules_save (bk_engine_store (self->engine), record);
    s_answer_task (req, AQ_OK, record, rc);
}

static void s_runs (bk_scheduler_t *self, bk_req_t *req, const bk_sched_task_t *record) {
    int64_t limit, offset;
    if (!s_page_args (req, &limit, &offset))
        return;
    uint64_t total;
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    aq_write_map (w, 2);
    aq_write_str (w, "runs");
    size_t shown = bk_schedules_write_runs (bk_engine_store (self->engine), record->id, (int) limit,
                                            (int) offset, w, &total);
    aq_write_str (w, "pagination");
    bk_req_write_pagination (w, total, limit, offset, shown, "has_more");
    bk_req_done (req);
}

//  The record the request's "id" names, if it is the caller's team's;
//  else answers 404 "Task not found" and returns NULL.
static bk_sched_task_t *s_own (bk_scheduler_t *self, bk_req_t *req) {
    char text[AQ_UUID_TEXT];
    uint8_t id[16];
    bk_sched_task_t *record = NULL;
    if (bk_req_str (req, "id", text, sizeof text) && aq_uuid_parse (text, id) == 0)
        record = bk_schedules_get (bk_engine_store (self->engine), id);
    if (record && memcmp (record->team, req->team, 16) != 0)
        bk_sched_task_destroy (&record);
    if (!record)
        bk_req_error (req, AQ_NOT_FOUND, "Task not found");
    return record;
}

//  The next fire times of a stored schedule (the request's "id") or of one
//  given (its "schedule").
static void s_preview (bk_scheduler_t *self, bk_req_t *req) {
    aq_node_t given;
    bool draft = bk_req_get (req, "schedule", &given);
    bk_sched_task_t *record = NULL;
    static const char *const fields[] = {"schedule_kind", "schedule_expr", "timezone", "count",
                                         NULL};
    char kind[16], errbuf[BK_SCHEDULE_ERRLEN], *expr = NULL, *zone = NULL;
    const char *timezone = "UTC"; //  unless a string is given
    if (draft) {
        aq_node_t value;
        bool map = given.type == AQ_NODE_MAP;
        if (map && bk_sched_task_unknown_field (&given, fields, errbuf, sizeof errbuf)) {
            bk_req_error (req, AQ_BAD_REQUEST, errbuf);
            return;
        }
        if (map && aq_node_get (&given, "schedule_expr", &value))
            expr = aq_node_strdup (&value);
        if (map && aq_node_get (&given, "timezone", &value) && aq_node_is_str (&value))
            timezone = zone = aq_node_strdup (&value);
        bool named =
            map && aq_node_get (&given, "schedule_kind", &value) && aq_node_is_str (&value);
        if (!named || !aq_node_strcpy (&value, kind, sizeof kind))
            kind[0] = '\0';
        if (bk_schedule_validate (kind, expr, timezone ? timezone : "", errbuf) != 0) {
            bk_req_error (req, AQ_BAD_REQUEST, named ? errbuf : "schedule_kind is required");
            free (expr);
            free (zone);
            return;
        }
    } else if (!(record = s_own (self, req)))
        return;
    bk_req_t in = *req; //  a given schedule's count is in it
    if (draft)
        in.body = given.type == AQ_NODE_MAP ? given : (aq_node_t){.type = AQ_NODE_NIL};
    int64_t count = bk_req_query_int (&in, "count", S_PREVIEW_DFLT);
    if (count < 1 || count > BK_SCHEDULE_PREVIEW_MAX) {
        bk_req_error (req, AQ_BAD_REQUEST, "count must be a number between 1 and 1000");
        free (expr);
        free (zone);
        bk_sched_task_destroy (&record);
        return;
    }
    //  one budget for the whole list, a little more for a longer one; a
    //  stored schedule's cursor saves counting a COUNT rule again
    int64_t work = BK_SCHEDULE_WORK + BK_SCHEDULE_PREVIEW_ITEM * count;
    int64_t times[BK_SCHEDULE_PREVIEW_MAX];
    bool truncated;
    int found =
        record ? bk_schedule_preview (record->kind, record->expr, record->timezone, record->anchor,
                                      bk_engine_now (self->engine), (int) count, &record->cursor,
                                      &work, times, &truncated, errbuf)
               : bk_schedule_preview (bk_schedule_kind_parse (kind, strlen (kind)), expr, timezone,
                                      s_anchor (self), bk_engine_now (self->engine), (int) count,
                                      NULL, &work, times, &truncated, errbuf);
    if (found < 0)
        bk_req_error (req, AQ_BAD_REQUEST, errbuf);
    else {
        aq_writer_t *w = bk_req_body (req, AQ_OK);
        aq_write_map (w, 4 + truncated);
        aq_node_t value;
        aq_write_str (w, "schedule_kind");
        if (record)
            aq_write_str (w, bk_schedule_kind_name (record->kind));
        else
            aq_write_str (w, kind);
        aq_write_str (w, "schedule_expr");
        if (record)
            aq_write_str (w, record->expr);
        else if (aq_node_get (&given, "schedule_expr", &value))
            aq_write_raw (w, value.raw, value.raw_size);
        else
            aq_write_nil (w);
        aq_write_kv_str (w, "timezone", record ? record->timezone : timezone);
        aq_write_str (w, "fire_times");
        aq_write_array (w, (uint32_t) found);
        for (int i = 0; i < found; i++) {
            char iso[32];
            aq_write_str (w, aq_time_format (times[i], iso));
        }
        if (truncated)
            aq_write_kv_bool (w, "truncated", true);
        bk_req_done (req);
    }
    free (expr);
    free (zone);
    bk_sched_task_destroy (&record);
}

//  POST /events: a run of every active event schedule of the team the
//  name matches.
static void s_event (bk_scheduler_t *self, bk_req_t *req) {
    bk_store_t *store = bk_engine_store (self->engine);
    static const char *const fields[] = {"name", "data", NULL};
    char error[140], name[BK_SCHEDULE_EVENT_MAX + 1];
    aq_node_t event, value, data;
    if (!bk_req_get (req, "event", &event) || event.type != AQ_NODE_MAP) {
        bk_req_error (req, AQ_BAD_REQUEST, "Request body must be a JSON object");
        return;
    }
    if (bk_sched_task_unknown_field (&event, fields, error, sizeof error)) {
        bk_req_error (req, AQ_BAD_REQUEST, error);
        return;
    }
    if (!aq_node_get (&event, "name", &value) || aq_node_is_nil (&value)) {
        bk_req_error (req, AQ_BAD_REQUEST, "name is required");
        return;
    }
    if (value.count < 1 || !aq_node_strcpy (&value, name, sizeof name)) {
        bk_req_error (req, AQ_BAD_REQUEST, "name must be a string of 1 to 200 characters");
        return;
    }
    bool with_data = aq_node_get (&event, "data", &data);
    size_t count;
    uint8_t *ids = bk_schedules_by_event (store, req->team, name, &count);
    aq_writer_t runs;
    aq_writer_init (&runs);
    size_t mark = aq_write_array_open (&runs);
    uint32_t matched = 0;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        bk_sched_task_t *record = bk_schedules_get (store, ids + 16 * i);
        if (record && record->status == BK_SCHED_ACTIVE) {
            bk_sched_run_t *run = bk_runs_start (self->engine, record, BK_TRIGGER_EVENT, -1, name,
                                                 with_data ? &data : NULL);
            if (run) {
                bk_sched_run_write_public (run, &runs);
                matched++;
                record->last_run_at = bk_engine_now (self->engine);
                rc = bk_schedules_save (store, record);
            } else
                rc = BK_ESTORE;
            bk_sched_run_destroy (&run);
        }
        bk_sched_task_destroy (&record);
    }
    free (ids);
    aq_write_array_close (&runs, mark, matched);
    size_t size;
    const uint8_t *bytes = aq_writer_data (&runs, &size);
    if (rc == 0 && bytes) {
        aq_writer_t *w = bk_req_body (req, AQ_OK);
        aq_write_map (w, 2);
        aq_write_str (w, "event");
        aq_write_map (w, 2);
        aq_write_kv_str (w, "name", name);
        aq_write_kv_int (w, "matched", matched);
        aq_write_str (w, "runs");
        aq_write_raw (w, bytes, size);
        bk_req_done (req);
    } else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    aq_writer_release (&runs);
}

void bk_scheduler_command (bk_scheduler_t *self, bk_req_t *req, int cmd) {
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
    assert (cmd >= AQ_CMD_SCHEDULE_GET && cmd <= AQ_CMD_SCHEDULE_RUNS);
    bk_sched_task_t *record = s_own (self, req);
    if (!record)
        return;
    if (cmd == AQ_CMD_SCHEDULE_GET)
        s_answer_task (req, AQ_OK, record, 0);
    else if (cmd == AQ_CMD_SCHEDULE_UPDATE)
        s_update (self, req, record);
    else if (cmd == AQ_CMD_SCHEDULE_RUNS)
        s_runs (self, req, record);
    else
        s_action (self, req, record, cmd);
    bk_sched_task_destroy (&record);
}
