/*  upgrade_sched.c - the scheduler's records from layout 1 to layout 2

    The hook upgrade.c calls, the layout-1 value readers the converters
    share, and where each layout-1 field goes. Layout 1 is what the first
    release's scheduler wrote (its broker/scheduler.c, schedules.c and
    sched_task.c; parked in broker/old/ until commits 4cdd663 and bd0f78a):
    JSON documents packed as msgpack, times as integer ms (every time field
    went through its s_set_time: never ISO text), null for a time or an
    optional field that is unset, bookkeeping under '_' names. Each record
    is read into the layout-2 struct and written by that struct's own
    encoder, so it is exactly what this build writes. A field not listed
    makes the record unreadable: the upgrade stops and says so rather than
    drop what it does not know. null, or a '_' field missing, leaves the
    layout-2 field unset.

    schedules: BK_DB_SCHEDULES id(16) -> bk_sched_task_t (sched_task.h),
               bk_sched_task_encode
      id                    id (UUID text -> 16 bytes; must be the record's key)
      team_id               team
      title                 title
      description           description (null: none)
      schedule_kind         kind (its name -> bk_schedule_kind_t)
      schedule_expr         expr (null: none, an event task without a name)
      timezone              timezone
      payload               payload (the map's msgpack bytes, as they are)
      created_by            created_by (null: none)
      priority max_retries  priority, max_retries
      backoff_strategy      backoff (its name -> bk_backoff_t)
      dedupe_key            dedupe_key (null: none)
      dedupe_window_seconds dedupe_window_s (null: -1)
      concurrency_key       concurrency_key (null: none)
      status                status (its name -> bk_sched_status_t)
      next_run_at last_run_at snoozed_until
                            next_run_at, last_run_at, snoozed_until (null: -1)
      snooze_reason         snooze_reason (null: none)
      created_at updated_at created_at, updated_at
      _anchor               anchor (missing: 0)
      _due                  due
      _cursor               cursor: [pos, seen, bound] (rrule.h); kept only
                            when not empty
      _seek                 seek
    runs: BK_DB_RUNS -> bk_sched_run_t: upgrade_run.c
    run keys: BK_DB_RUN_KEYS team(16) kind(1) name -> the run key records of
              schedules.h, bk_schedules_key_encode and bk_schedules_dedupe_encode
      'c' running           the holder (UUID text -> 16 bytes)
      'c' waiting           the runs waiting, in order (each UUID text -> 16 bytes)
      'd'                   8 raw bytes, an int64 in host order: the start time
                            of the last run that held the key
*/
#include "upgrade_sched.h"
#include "../backoff.h"
#include "aq_uuid.h"
#include "sched_run.h"
#include "sched_task.h"
#include "schedules.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  For the converters (upgrade_sched.h says what each does)

int bk_sched_upgrade_bad (bk_sched_why_t *self, const char *fmt, ...) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->why, self->why_size, fmt, ap);
    va_end (ap);
    return -1;
}

int bk_sched_upgrade_malformed (bk_sched_why_t *self, const char *prefix, const aq_node_t *name) {
    return bk_sched_upgrade_bad (self, "field '%s%.*s' is malformed", prefix,
                                 (int) (name->count < 64 ? name->count : 64),
                                 (const char *) name->data);
}

int bk_sched_upgrade_unknown (bk_sched_why_t *self, const char *prefix, const aq_node_t *name) {
    return bk_sched_upgrade_bad (self, "unknown field '%s%.*s'", prefix,
                                 (int) (name->count < 64 ? name->count : 64),
                                 (const char *) name->data);
}

bool bk_sched_upgrade_uuid (const aq_node_t *value, uint8_t out[16]) {
    char text[AQ_UUID_TEXT];
    return aq_node_strcpy (value, text, sizeof text) && aq_uuid_parse (text, out) == 0;
}

bool bk_sched_upgrade_text (bk_arena_t *arena, const aq_node_t *value, bool nullable, char **out) {
    if (nullable && aq_node_is_nil (value)) {
        *out = NULL;
        return true;
    }
    if (!aq_node_is_str (value) || memchr (value->data, '\0', value->count))
        return false;
    *out = bk_arena_strndup (arena, (const char *) value->data, value->count);
    return true;
}

//  Any integer.
static bool s_int (const aq_node_t *value, int64_t *out) {
    if (value->type != AQ_NODE_INT)
        return false;
    *out = value->i;
    return true;
}

bool bk_sched_upgrade_count (const aq_node_t *value, int *out) {
    if (value->type != AQ_NODE_INT || value->i < 0 || value->i > INT_MAX)
        return false;
    *out = (int) value->i;
    return true;
}

bool bk_sched_upgrade_time (const aq_node_t *value, bool nullable, int64_t *out) {
    if (nullable && aq_node_is_nil (value)) {
        *out = -1;
        return true;
    }
    if (value->type != AQ_NODE_INT || value->i < 0)
        return false;
    *out = value->i;
    return true;
}

bool bk_sched_upgrade_name (const aq_node_t *value, int (*parse) (const char *, size_t),
                            int invalid, int *out) {
    if (!aq_node_is_str (value))
        return false;
    *out = parse ((const char *) value->data, value->count);
    return *out != invalid;
}

bool bk_sched_upgrade_named (const aq_node_t *value, const char *(*name_of) (int), int first,
                             int count, int *out) {
    for (int i = first; i < count; i++)
        if (name_of (i) && aq_node_streq (value, name_of (i))) {
            *out = i;
            return true;
        }
    return false;
}

bool bk_sched_upgrade_raw (bk_arena_t *arena, const aq_node_t *value, aq_node_type_t type,
                           bk_blob_t *out) {
    if (value->type != type)
        return false;
    *out = (bk_blob_t){bk_arena_memdup (arena, value->raw, value->raw_size), value->raw_size};
    return true;
}

//  An rrule cursor [pos, seen, bound]; [] and null leave it unset.
static bool s_cursor (const aq_node_t *value, bk_schedule_cursor_t *out) {
    if (aq_node_is_nil (value) || (value->type == AQ_NODE_ARRAY && value->count == 0))
        return true;
    if (value->type != AQ_NODE_ARRAY || value->count != 3)
        return false;
    int64_t parts[3];
    aq_iter_t it;
    aq_node_t item;
    aq_node_iter (value, &it);
    for (int n = 0; n < 3; n++)
        if (!aq_iter_next (&it, NULL, &item) || item.type != AQ_NODE_INT)
            return false;
        else
            parts[n] = item.i;
    *out = (bk_schedule_cursor_t){true, {parts[0], parts[1], parts[2]}};
    return true;
}

#define FIELD(text) aq_node_streq (&name, text)

//  --------------------------------------------------------------------------
//  Scheduled tasks

//  The first required field record lacks, or NULL.
static const char *s_task_missing (const bk_sched_task_t *record, bool id, bool team) {
    return !id                       ? "id"
           : !team                   ? "team_id"
           : !record->title          ? "title"
           : record->kind < 0        ? "schedule_kind"
           : !record->timezone       ? "timezone"
           : !record->payload.size   ? "payload"
           : record->priority < 0    ? "priority"
           : record->max_retries < 0 ? "max_retries"
           : record->backoff < 0     ? "backoff_strategy"
           : !record->status         ? "status"
           : record->created_at < 0  ? "created_at"
           : record->updated_at < 0  ? "updated_at"
                                     : NULL;
}

static int s_task (bk_sched_why_t *self, const uint8_t *key, size_t key_size, const aq_node_t *v1,
                   aq_writer_t *w) {
    bk_sched_task_t *record = bk_sched_task_new (v1->raw_size);
    bk_arena_t *arena = record->arena;
    record->kind = record->backoff = record->priority = record->max_retries = -1;
    bool id = false, team = false;
    int rc = 0;
    aq_iter_t it;
    aq_node_iter (v1, &it);
    aq_node_t name, value;
    while (rc == 0 && aq_iter_next (&it, &name, &value)) {
        bool ok = true;
        if (FIELD ("id"))
            ok = id = bk_sched_upgrade_uuid (&value, record->id);
        else if (FIELD ("team_id"))
            ok = team = bk_sched_upgrade_uuid (&value, record->team);
        else if (FIELD ("title"))
            ok = bk_sched_upgrade_text (arena, &value, false, &record->title);
        else if (FIELD ("description"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->description);
        else if (FIELD ("schedule_kind"))
            ok = bk_sched_upgrade_name (&value, bk_schedule_kind_parse, -1, &record->kind);
        else if (FIELD ("schedule_expr"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->expr);
        else if (FIELD ("timezone"))
            ok = bk_sched_upgrade_text (arena, &value, false, &record->timezone);
        else if (FIELD ("payload"))
            ok = bk_sched_upgrade_raw (arena, &value, AQ_NODE_MAP, &record->payload);
        else if (FIELD ("created_by"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->created_by);
        else if (FIELD ("priority"))
            ok = bk_sched_upgrade_count (&value, &record->priority);
        else if (FIELD ("max_retries"))
            ok = bk_sched_upgrade_count (&value, &record->max_retries);
        else if (FIELD ("backoff_strategy"))
            ok = bk_sched_upgrade_name (&value, bk_backoff_parse, -1, &record->backoff);
        else if (FIELD ("dedupe_key"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->dedupe_key);
        else if (FIELD ("dedupe_window_seconds"))
            ok = aq_node_is_nil (&value)
                     ? (record->dedupe_window_s = -1, true)
                     : bk_sched_upgrade_count (&value, &record->dedupe_window_s);
        else if (FIELD ("concurrency_key"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->concurrency_key);
        else if (FIELD ("status"))
            ok = bk_sched_upgrade_name (&value, bk_sched_status_parse, 0, &record->status);
        else if (FIELD ("next_run_at"))
            ok = bk_sched_upgrade_time (&value, true, &record->next_run_at);
        else if (FIELD ("last_run_at"))
            ok = bk_sched_upgrade_time (&value, true, &record->last_run_at);
        else if (FIELD ("snoozed_until"))
            ok = bk_sched_upgrade_time (&value, true, &record->snoozed_until);
        else if (FIELD ("snooze_reason"))
            ok = bk_sched_upgrade_text (arena, &value, true, &record->snooze_reason);
        else if (FIELD ("created_at"))
            ok = bk_sched_upgrade_time (&value, false, &record->created_at);
        else if (FIELD ("updated_at"))
            ok = bk_sched_upgrade_time (&value, false, &record->updated_at);
        else if (FIELD ("_anchor"))
            ok = aq_node_is_nil (&value) || s_int (&value, &record->anchor);
        else if (FIELD ("_due"))
            ok = bk_sched_upgrade_time (&value, true, &record->due);
        else if (FIELD ("_cursor"))
            ok = s_cursor (&value, &record->cursor);
        else if (FIELD ("_seek"))
            ok = bk_sched_upgrade_time (&value, true, &record->seek);
        else
            rc = bk_sched_upgrade_unknown (self, "", &name);
        if (rc == 0 && !ok)
            rc = bk_sched_upgrade_malformed (self, "", &name);
    }
    const char *missing = s_task_missing (record, id, team);
    if (rc == 0 && missing)
        rc = bk_sched_upgrade_bad (self, "field '%s' is missing", missing);
    if (rc == 0 && (key_size != 16 || memcmp (record->id, key, 16) != 0))
        rc = bk_sched_upgrade_bad (self, "field 'id' is not the record's key");
    if (rc == 0)
        bk_sched_task_encode (record, w);
    bk_sched_task_destroy (&record);
    return rc;
}

//  --------------------------------------------------------------------------
//  Run keys

//  A concurrency key's {"running": id, "waiting": [id, ...]}.
static int s_concurrency (bk_sched_why_t *self, const aq_node_t *v1, aq_writer_t *w) {
    uint8_t holder[16], *waiting = NULL;
    size_t n = 0;
    bool running = false, queue = false;
    int rc = 0;
    aq_iter_t it, items;
    aq_node_t name, value, item;
    aq_node_iter (v1, &it);
    while (rc == 0 && aq_iter_next (&it, &name, &value)) {
        bool ok = true;
        if (FIELD ("running"))
            ok = running = bk_sched_upgrade_uuid (&value, holder);
        else if (FIELD ("waiting")) {
            ok = queue = value.type == AQ_NODE_ARRAY && !waiting;
            if (ok) {
                waiting = malloc (16 * (value.count + 1));
                assert (waiting);
                aq_node_iter (&value, &items);
                while (ok && aq_iter_next (&items, NULL, &item))
                    ok = bk_sched_upgrade_uuid (&item, waiting + 16 * n++);
            }
        } else
            rc = bk_sched_upgrade_unknown (self, "", &name);
        if (rc == 0 && !ok)
            rc = bk_sched_upgrade_malformed (self, "", &name);
    }
    if (rc == 0 && (!running || !queue))
        rc = bk_sched_upgrade_bad (self, "field '%s' is missing", running ? "waiting" : "running");
    if (rc == 0)
        bk_schedules_key_encode (holder, waiting, n, w);
    free (waiting);
    return rc;
}

#undef FIELD

//  --------------------------------------------------------------------------

int bk_sched_upgrade_record (bk_store_t *store, bk_db_t db, const void *key, size_t key_size,
                             const aq_node_t *v1, aq_writer_t *w, char *why, size_t why_size) {
    bk_sched_why_t self = {why, why_size};
    if (why_size)
        *why = '\0';
    const uint8_t *k = key;
    bool map = v1->type == AQ_NODE_MAP;
    if (db == BK_DB_SCHEDULES && map)
        return s_task (&self, k, key_size, v1, w);
    if (db == BK_DB_RUNS && map)
        return bk_sched_upgrade_run (&self, k, key_size, v1, w);
    if (db == BK_DB_RUN_KEYS && key_size >= 17 && k[16] == 'c' && map)
        return s_concurrency (&self, v1, w);
    if (db == BK_DB_RUN_KEYS && key_size >= 17 && k[16] == 'd' && v1->type == AQ_NODE_BIN &&
        v1->count == 8) {
        int64_t ms;
        memcpy (&ms, v1->data, 8); //  host order, as layout 1 wrote it
        bk_schedules_dedupe_encode (ms, w);
        return 0;
    }
    return bk_sched_upgrade_bad (&self, "it is not a record of the scheduler's in layout 1");
}

//  --------------------------------------------------------------------------
//  Selftest: one layout-1 record per interesting state, in the shapes the
//  first release's scheduler wrote (the fixture's records, tests/fixtures/
//  v1, are models), converted as upgrade.c converts them, stored, and read
//  back through schedules.c as the scheduler reads them, field by field.

#include "../../tests/rig_v1.h"
#include "../../tests/rig_upgrade.h"
#include "aq_json.h"

#define S_T0 1765000000000LL //  2025-12-06T05:46:40.000Z

//  The common part of a scheduled task: its fields up to status.
#define S_TASK_HEAD                                                                                \
    "{'id': '%s', 'team_id': '%s', 'title': '%s', 'description': 'fixture', "                      \
    "'schedule_kind': '%s', 'schedule_expr': %s, 'timezone': '%s', 'payload': %s, "                \
    "'created_by': '5f0c2a8e-3b1d-4c6e-9a7f-2d4b6c8e0a13', 'priority': %d, 'max_retries': %d, "    \
    "'backoff_strategy': '%s', 'dedupe_key': %s, 'dedupe_window_seconds': %s, "                    \
    "'concurrency_key': %s, 'status': '%s', "

static void s_test_schedules (bk_store_t *store, const uint8_t team[16], const char *team_text) {
    uint8_t id[6][16];
    char text[6][AQ_UUID_TEXT], why[256];
    for (int i = 0; i < 6; i++)
        rig_upgrade_uuid (100 + i, id[i], text[i]);
    //  0: cron, active, two steps and a concurrency key, fired before,
    //  its next fire queued
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[0], 16,
                     S_TASK_HEAD "'next_run_at': %lld, 'last_run_at': %lld, 'snoozed_until': null, "
                                 "'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld, "
                                 "'_anchor': %lld, '_due': %lld}",
                     text[0], team_text, "yearly report", "cron", "'0 0 1 1 *'", "Europe/Chisinau",
                     "{'steps': [{'targetUrl': 'http://x/1', 'body': 'one'}, "
                     "{'targetUrl': 'http://x/2', 'method': 'GET', 'timeout': 10}]}",
                     2, 2, "linear", "null", "null", "'reports'", "active", S_T0 + 86400000, S_T0,
                     S_T0 - 10, S_T0 - 5, S_T0 - 60000, S_T0 + 86400000);
    //  1: rrule, active, snoozed, with a dedupe key and the cursor of its
    //  last search
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[1], 16,
                     S_TASK_HEAD "'next_run_at': %lld, 'last_run_at': null, 'snoozed_until': %lld, "
                                 "'snooze_reason': 'maintenance window', 'created_at': %lld, "
                                 "'updated_at': %lld, '_anchor': %lld, '_cursor': [%lld, 3, %lld], "
                                 "'_due': %lld}",
                     text[1], team_text, "daily at 3", "rrule", "'FREQ=DAILY;BYHOUR=3;COUNT=10'",
                     "America/New_York", "{'targetUrl': 'http://x/daily'}", 5, 3,
                     "exponential_jitter", "'daily'", "300", "null", "active", S_T0 + 3 * 86400000,
                     S_T0 + 3 * 86400000, S_T0, S_T0 + 1, S_T0 - 60000, S_T0 / 1000 + 3600,
                     S_T0 / 1000, S_T0 + 3 * 86400000);
    //  2: cron, paused: next_run_at stays, nothing queued
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[2], 16,
                     S_TASK_HEAD "'next_run_at': %lld, 'last_run_at': %lld, 'snoozed_until': null, "
                                 "'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld, "
                                 "'_anchor': %lld}",
                     text[2], team_text, "minutely, paused", "cron", "'* * * * *'", "UTC",
                     "{'targetUrl': 'http://x/m', 'headers': {'Authorization': 'tok_x'}}", 9, 0,
                     "fixed", "'m'", "86400", "null", "paused", S_T0 + 60000, S_T0, S_T0, S_T0 + 2,
                     S_T0);
    //  3: once, canceled (an empty cursor left: none)
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[3], 16,
                     S_TASK_HEAD "'next_run_at': null, 'last_run_at': null, 'snoozed_until': null, "
                                 "'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld, "
                                 "'_anchor': %lld, '_cursor': []}",
                     text[3], team_text, "once, canceled", "once", "'2099-06-01T12:00:00'",
                     "Europe/Berlin", "{'targetUrl': 'http://x/o'}", 5, 3, "exponential_jitter",
                     "null", "null", "null", "canceled", S_T0, S_T0 + 3, S_T0);
    //  4: event without a name, description or creator (bk_upgrade's
    //  s_test_fill), no anchor
    rig_v1_put_json (
        store, BK_DB_SCHEDULES, id[4], 16,
        "{'id': '%s', 'team_id': '%s', 'title': 'holds the serial key', 'description': "
        "null, 'schedule_kind': 'event', 'schedule_expr': null, 'timezone': 'UTC', "
        "'payload': {'targetUrl': 'http://x/hold', 'maxWaitTime': 3600}, 'created_by': "
        "null, 'priority': 5, 'max_retries': 3, 'backoff_strategy': 'exponential_jitter', "
        "'dedupe_key': null, 'dedupe_window_seconds': null, 'concurrency_key': 'serial', "
        "'status': 'active', 'next_run_at': null, 'last_run_at': %lld, 'snoozed_until': "
        "null, 'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld}",
        text[4], team_text, S_T0, S_T0 - 1, S_T0 - 1);
    //  5: rrule whose search ran out of work: no next_run_at, the search
    //  queued to go on
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[5], 16,
                     S_TASK_HEAD "'next_run_at': null, 'last_run_at': null, 'snoozed_until': null, "
                                 "'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld, "
                                 "'_anchor': %lld, '_cursor': [%lld, 100000, %lld], '_due': %lld, "
                                 "'_seek': %lld}",
                     text[5], team_text, "rare", "rrule", "'FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30'",
                     "UTC", "{'targetUrl': 'http://x/r'}", 5, 3, "exponential_jitter", "null",
                     "null", "null", "active", S_T0, S_T0, S_T0, S_T0 / 1000 + 100000,
                     S_T0 / 1000 + 99999, S_T0 + 1000, S_T0);
    for (int i = 0; i < 6; i++)
        assert (rig_upgrade_convert (store, BK_DB_SCHEDULES, id[i], 16, why) == 0);

    bk_sched_task_t *t = bk_schedules_get (store, id[0]);
    assert (t && memcmp (t->id, id[0], 16) == 0 && memcmp (t->team, team, 16) == 0);
    assert (strcmp (t->title, "yearly report") == 0 && strcmp (t->description, "fixture") == 0);
    assert (t->kind == BK_SCHEDULE_CRON && strcmp (t->expr, "0 0 1 1 *") == 0);
    assert (strcmp (t->timezone, "Europe/Chisinau") == 0);
    rig_upgrade_json_is (&t->payload,
                         "{\"steps\":[{\"targetUrl\":\"http://x/1\",\"body\":\"one\"},"
                         "{\"targetUrl\":\"http://x/2\",\"method\":\"GET\",\"timeout\":10}]}");
    assert (strcmp (t->created_by, "5f0c2a8e-3b1d-4c6e-9a7f-2d4b6c8e0a13") == 0);
    assert (t->priority == 2 && t->max_retries == 2 && t->backoff == BK_BACKOFF_LINEAR);
    assert (!t->dedupe_key && t->dedupe_window_s == -1 &&
            strcmp (t->concurrency_key, "reports") == 0);
    assert (t->status == BK_SCHED_ACTIVE && t->next_run_at == S_T0 + 86400000);
    assert (t->last_run_at == S_T0 && t->snoozed_until == -1 && !t->snooze_reason);
    assert (t->created_at == S_T0 - 10 && t->updated_at == S_T0 - 5);
    assert (t->anchor == S_T0 - 60000 && t->due == S_T0 + 86400000);
    assert (!t->cursor.set && t->seek == -1 && !t->indexed_event);
    bk_sched_task_destroy (&t);

    t = bk_schedules_get (store, id[1]);
    assert (t && t->kind == BK_SCHEDULE_RRULE && t->status == BK_SCHED_ACTIVE);
    assert (strcmp (t->expr, "FREQ=DAILY;BYHOUR=3;COUNT=10") == 0);
    assert (strcmp (t->timezone, "America/New_York") == 0 && t->backoff == BK_BACKOFF_JITTER);
    assert (strcmp (t->dedupe_key, "daily") == 0 && t->dedupe_window_s == 300);
    assert (!t->concurrency_key && t->last_run_at == -1);
    assert (t->next_run_at == S_T0 + 3 * 86400000 && t->snoozed_until == S_T0 + 3 * 86400000);
    assert (strcmp (t->snooze_reason, "maintenance window") == 0);
    assert (t->cursor.set && t->cursor.at.pos == S_T0 / 1000 + 3600 && t->cursor.at.seen == 3);
    assert (t->cursor.at.bound == S_T0 / 1000 && t->due == S_T0 + 3 * 86400000 && t->seek == -1);
    bk_sched_task_destroy (&t);

    t = bk_schedules_get (store, id[2]);
    assert (t && t->status == BK_SCHED_PAUSED && t->next_run_at == S_T0 + 60000 && t->due == -1);
    assert (t->priority == 9 && t->max_retries == 0 && t->backoff == BK_BACKOFF_FIXED);
    assert (t->dedupe_window_s == 86400 && strcmp (t->dedupe_key, "m") == 0);
    rig_upgrade_json_is (
        &t->payload, "{\"targetUrl\":\"http://x/m\",\"headers\":{\"Authorization\":\"tok_x\"}}");
    bk_sched_task_destroy (&t);

    t = bk_schedules_get (store, id[3]);
    assert (t && t->status == BK_SCHED_CANCELED && t->kind == BK_SCHEDULE_ONCE);
    assert (t->next_run_at == -1 && !t->cursor.set && t->due == -1);
    assert (strcmp (t->expr, "2099-06-01T12:00:00") == 0);
    bk_sched_task_destroy (&t);

    t = bk_schedules_get (store, id[4]);
    assert (t && t->kind == BK_SCHEDULE_EVENT && !t->expr && !t->description && !t->created_by);
    assert (t->anchor == 0 && t->next_run_at == -1 && strcmp (t->concurrency_key, "serial") == 0);
    bk_sched_task_destroy (&t);

    t = bk_schedules_get (store, id[5]);
    assert (t && t->next_run_at == -1 && t->due == S_T0 + 1000 && t->seek == S_T0);
    assert (t->cursor.set && t->cursor.at.seen == 100000);
    bk_sched_task_destroy (&t);

    //  what it refuses, naming the field (never its value)
    struct {
        const char *fields, *why;
    } bad[] = {
        {"'name': 'nightly'", "unknown field 'name'"},
        {"'status': 'sleeping'", "field 'status' is malformed"},
        {"'next_run_at': '2025-12-06T05:46:40.000Z'", "field 'next_run_at' is malformed"},
        {"'_cursor': [1, 2]", "field '_cursor' is malformed"},
        {"'payload': [1]", "field 'payload' is malformed"},
        {"'backoff_strategy': 'sometimes'", "field 'backoff_strategy' is malformed"},
        {"'title': null", "field 'title' is malformed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rig_v1_put_json (store, BK_DB_SCHEDULES, id[0], 16,
                         "{'id': '%s', 'team_id': '%s', 'title': 't', 'schedule_kind': 'cron', "
                         "'timezone': 'UTC', 'payload': {}, 'status': 'active', %s}",
                         text[0], team_text, bad[i].fields);
        assert (rig_upgrade_convert (store, BK_DB_SCHEDULES, id[0], 16, why) == -1);
        if (strcmp (why, bad[i].why) != 0) {
            fprintf (stderr, "bk_sched_upgrade: %s gave '%s', want '%s'\n", bad[i].fields, why,
                     bad[i].why);
            assert (false);
        }
    }
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[0], 16,
                     "{'id': '%s', 'team_id': '%s', 'schedule_kind': 'cron', 'timezone': 'UTC', "
                     "'payload': {}, 'status': 'active'}",
                     text[0], team_text);
    assert (rig_upgrade_convert (store, BK_DB_SCHEDULES, id[0], 16, why) == -1);
    assert (strcmp (why, "field 'title' is missing") == 0);
    rig_v1_put_json (store, BK_DB_SCHEDULES, id[0], 16,
                     S_TASK_HEAD "'next_run_at': null, 'last_run_at': null, 'snoozed_until': null, "
                                 "'snooze_reason': null, 'created_at': %lld, 'updated_at': %lld}",
                     text[1], team_text, "t", "cron", "null", "UTC", "{}", 5, 3, "fixed", "null",
                     "null", "null", "active", S_T0, S_T0);
    assert (rig_upgrade_convert (store, BK_DB_SCHEDULES, id[0], 16, why) == -1);
    assert (strcmp (why, "field 'id' is not the record's key") == 0);
}

static void s_test_run_keys (bk_store_t *store, const uint8_t team[16]) {
    uint8_t run[6][16];
    char run_text[6][AQ_UUID_TEXT], why[256];
    for (int i = 0; i < 6; i++) { //  waiting runs, in layout 2 (upgrade_run.c converts them)
        rig_upgrade_uuid (200 + i, run[i], run_text[i]);
        bk_sched_run_t *waiting = bk_sched_run_new (0);
        memcpy (waiting->id, run[i], 16);
        waiting->trigger = BK_TRIGGER_RUN_NOW;
        waiting->status = BK_RUN_WAITING;
        waiting->templates = (bk_blob_t){(const uint8_t *) "\x91\x80", 2}; //  [{}]
        assert (bk_schedules_save_run (store, waiting, true) == 0);
        bk_sched_run_destroy (&waiting);
    }
    uint8_t serial[32], reports[32], invoice[32];
    memcpy (serial, team, 16), serial[16] = 'c', memcpy (serial + 17, "serial", 6);
    memcpy (reports, team, 16), reports[16] = 'c', memcpy (reports + 17, "reports", 7);
    memcpy (invoice, team, 16), invoice[16] = 'd', memcpy (invoice + 17, "invoice", 7);
    //  run 1 holds serial, run 2 waits for it; run 0 holds reports
    rig_v1_put_json (store, BK_DB_RUN_KEYS, serial, 23, "{'running': '%s', 'waiting': ['%s']}",
                     run_text[1], run_text[2]);
    rig_v1_put_json (store, BK_DB_RUN_KEYS, reports, 24, "{'running': '%s', 'waiting': []}",
                     run_text[0]);
    int64_t last = S_T0 - 5000; //  bk_runkeys_set_dedupe's 8 bytes
    assert (bk_store_put (store, BK_DB_RUN_KEYS, invoice, 24, &last, 8) == 0);
    assert (rig_upgrade_convert (store, BK_DB_RUN_KEYS, serial, 23, why) == 0);
    assert (rig_upgrade_convert (store, BK_DB_RUN_KEYS, reports, 24, why) == 0);
    assert (rig_upgrade_convert (store, BK_DB_RUN_KEYS, invoice, 24, why) == 0);

    //  the scheduler reads them: the dedupe time; a run queues behind the
    //  holder, and when it passes the key the first run waiting takes it
    assert (bk_schedules_dedupe (store, team, "invoice") == S_T0 - 5000);
    bool holds, has_next;
    uint8_t next[16];
    assert (bk_schedules_key_take (store, team, "serial", run[5], &holds) == 0 && !holds);
    assert (bk_schedules_key_pass (store, team, "serial", run[1], next, &has_next) == 0);
    assert (has_next && memcmp (next, run[2], 16) == 0);
    assert (bk_schedules_key_pass (store, team, "reports", run[0], next, &has_next) == 0);
    assert (!has_next);
    bk_val_t val;
    assert (bk_store_get (store, BK_DB_RUN_KEYS, reports, 24, &val) == BK_NOTFOUND);

    //  a dedupe record of this build is never 8 bytes long: upgrade.c
    //  tells the layouts apart by that
    int64_t times[] = {0, 1, 127, 128, 255, 256, 65535, 65536, S_T0, INT64_MAX, -1, -33, INT64_MIN};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        aq_writer_t w;
        aq_writer_init (&w);
        bk_schedules_dedupe_encode (times[i], &w);
        size_t size;
        assert (aq_writer_data (&w, &size) && size != 8);
        aq_writer_release (&w);
    }

    //  what it refuses
    struct {
        const char *record, *why;
    } bad[] = {
        {"{'running': '%s', 'waiting': ['nope']}", "field 'waiting' is malformed"},
        {"{'running': '%s', 'waiting': {}}", "field 'waiting' is malformed"},
        {"{'running': 7, 'waiting': []}", "field 'running' is malformed"},
        {"{'waiting': []}", "field 'running' is missing"},
        {"{'running': '%s'}", "field 'waiting' is missing"},
        {"{'running': '%s', 'waiting': [], 'since': 1}", "unknown field 'since'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char record[200];
        snprintf (record, sizeof record, bad[i].record, run_text[1]);
        rig_v1_put_json (store, BK_DB_RUN_KEYS, serial, 23, "%s", record);
        assert (rig_upgrade_convert (store, BK_DB_RUN_KEYS, serial, 23, why) == -1);
        if (strcmp (why, bad[i].why) != 0) {
            fprintf (stderr, "bk_sched_upgrade: %s gave '%s', want '%s'\n", record, why,
                     bad[i].why);
            assert (false);
        }
    }
    //  a dedupe key that is a map of string keys is neither layout
    rig_v1_put_json (store, BK_DB_RUN_KEYS, invoice, 24, "{'at': %lld}", S_T0);
    assert (rig_upgrade_convert (store, BK_DB_RUN_KEYS, invoice, 24, why) == -1);
    assert (strcmp (why, "it is not a record of the scheduler's in layout 1") == 0);
}

void bk_sched_upgrade_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], team_text[AQ_UUID_TEXT];
    uint8_t team[16];
    bk_store_t *store = bk_store_test_new (dir);
    rig_upgrade_uuid (1, team, team_text);
    s_test_schedules (store, team, team_text);
    s_test_run_keys (store, team);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_sched_upgrade: ok\n");
}
