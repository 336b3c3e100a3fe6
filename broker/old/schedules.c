/*  schedules.c - scheduled tasks and their runs in the store, with indexes */
#include "schedules.h"
#include "aq_uuid.h"
#include "task.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_MAX 256 //  longest event name or run key in a store key

int bk_schedules_ids (const json_t *record, uint8_t id[16], uint8_t team[16]) {
    if (aq_uuid_parse (json_string_value (json_object_get (record, "id")), id) != 0)
        return -1;
    if (team && aq_uuid_parse (json_string_value (json_object_get (record, "team_id")), team) != 0)
        return -1;
    return 0;
}

json_t *bk_schedules_get (bk_store_t *store, const uint8_t id[16]) {
    return bk_store_get_record (store, BK_DB_SCHEDULES, id, 16);
}

//  The event-name index key of a record, or 0 when it has none (not an
//  event schedule, no name, or canceled).
static size_t s_event_key (const json_t *record, uint8_t key[16 + S_NAME_MAX + 1 + 16]) {
    uint8_t id[16], team[16];
    const char *kind = json_string_value (json_object_get (record, "schedule_kind"));
    const char *name = json_string_value (json_object_get (record, "schedule_expr"));
    const char *status = json_string_value (json_object_get (record, "status"));
    if (!record || !kind || strcmp (kind, "event") != 0 || !name || !*name ||
        strlen (name) > S_NAME_MAX || (status && strcmp (status, "canceled") == 0) ||
        bk_schedules_ids (record, id, team) != 0)
        return 0;
    size_t len = strlen (name);
    memcpy (key, team, 16);
    memcpy (key + 16, name, len + 1);
    memcpy (key + 16 + len + 1, id, 16);
    return 16 + len + 1 + 16;
}

int bk_schedules_save (bk_store_t *store, const json_t *record, const json_t *old) {
    uint8_t id[16], team[16];
    if (bk_schedules_ids (record, id, team) != 0)
        return BK_ESTORE;
    int rc = bk_store_put_record (store, BK_DB_SCHEDULES, id, 16, record);
    if (rc == 0 && !old) {
        uint8_t key[32];
        memcpy (key, team, 16);
        memcpy (key + 16, id, 16);
        rc = bk_store_put (store, BK_DB_TEAM_SCHEDULES, key, 32, "", 0);
    }
    uint8_t before[16 + S_NAME_MAX + 17], after[16 + S_NAME_MAX + 17];
    size_t before_size = old ? s_event_key (old, before) : 0;
    size_t after_size = s_event_key (record, after);
    if (rc == 0 && before_size &&
        (before_size != after_size || memcmp (before, after, before_size) != 0))
        rc = bk_store_del (store, BK_DB_EVENT_NAMES, before, before_size);
    if (rc == 0 && after_size)
        rc = bk_store_put (store, BK_DB_EVENT_NAMES, after, after_size, "", 0);
    return rc;
}

static bool s_field_is (const json_t *record, const char *field, const char *want) {
    if (!want)
        return true;
    const char *value = json_string_value (json_object_get (record, field));
    return value && strcmp (value, want) == 0;
}

//  Walks the keys that start with prefix, newest (largest) first; the id is
//  the last 16 bytes of each key. Appends matching records of db to an
//  array, counting every match in *total.
static json_t *s_page (bk_store_t *store, bk_db_t index, const uint8_t *prefix, size_t prefix_size,
                       bk_db_t db, bool (*keep) (const json_t *, void *), void *arg, int limit,
                       int offset, uint64_t *total) {
    json_t *page = json_array ();
    *total = 0;
    bk_cursor_t *cursor = bk_cursor_open (store, index);
    if (!cursor)
        return page;
    uint8_t after[64];
    assert (prefix_size + 1 <= sizeof after);
    memcpy (after, prefix, prefix_size);
    after[prefix_size] = 0xFF;
    bk_val_t k, v;
    int rc = bk_cursor_seek (cursor, after, prefix_size + 1, &k, &v);
    rc = rc == 0 ? bk_cursor_prev (cursor, &k, &v) : bk_cursor_last (cursor, &k, &v);
    for (; rc == 0; rc = bk_cursor_prev (cursor, &k, &v)) {
        if (k.size < prefix_size + 16 || memcmp (k.data, prefix, prefix_size) != 0)
            break;
        const uint8_t *id = (const uint8_t *) k.data + k.size - 16;
        bool cheap = !keep; //  no filter: count without reading the record
        if (cheap && ((int64_t) *total < offset || (int) json_array_size (page) >= limit)) {
            (*total)++;
            continue;
        }
        json_t *record = bk_store_get_record (store, db, id, 16);
        if (record && (!keep || keep (record, arg))) {
            if ((int64_t) *total >= offset && (int) json_array_size (page) < limit)
                json_array_append (page, record);
            (*total)++;
        }
        json_decref (record);
    }
    bk_cursor_close (&cursor);
    return page;
}

typedef struct {
    const char *status, *kind, *created_by;
} s_filter_t;

static bool s_keep_schedule (const json_t *record, void *arg) {
    s_filter_t *filter = arg;
    return s_field_is (record, "status", filter->status) &&
           s_field_is (record, "schedule_kind", filter->kind) &&
           s_field_is (record, "created_by", filter->created_by);
}

json_t *bk_schedules_list (bk_store_t *store, const uint8_t team[16], const char *status,
                           const char *kind, const char *created_by, int limit, int offset,
                           uint64_t *total) {
    s_filter_t filter = {status, kind, created_by};
    bool any = !status && !kind && !created_by;
    return s_page (store, BK_DB_TEAM_SCHEDULES, team, 16, BK_DB_SCHEDULES,
                   any ? NULL : s_keep_schedule, &filter, limit, offset, total);
}

json_t *bk_schedules_by_event (bk_store_t *store, const uint8_t team[16], const char *name) {
    json_t *found = json_array ();
    size_t len = strlen (name);
    if (len == 0 || len > S_NAME_MAX)
        return found;
    uint8_t prefix[16 + S_NAME_MAX + 1];
    memcpy (prefix, team, 16);
    memcpy (prefix + 16, name, len + 1);
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_EVENT_NAMES);
    bk_val_t k, v;
    int rc = cursor ? bk_cursor_seek (cursor, prefix, 16 + len + 1, &k, &v) : BK_NOTFOUND;
    for (; rc == 0; rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size != 16 + len + 1 + 16 || memcmp (k.data, prefix, 16 + len + 1) != 0)
            break;
        json_t *record = bk_schedules_get (store, (const uint8_t *) k.data + 16 + len + 1);
        if (record)
            json_array_append_new (found, record);
    }
    bk_cursor_close (&cursor);
    return found;
}

//  --------------------------------------------------------------------------
//  Runs

json_t *bk_runs_get (bk_store_t *store, const uint8_t id[16]) {
    return bk_store_get_record (store, BK_DB_RUNS, id, 16);
}

//  Drops the schedule's oldest runs beyond BK_RUNS_KEPT.
static int s_trim_runs (bk_store_t *store, const uint8_t schedule[16]) {
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_SCHEDULE_RUNS);
    if (!cursor)
        return BK_ESTORE;
    uint8_t after[17];
    memcpy (after, schedule, 16);
    after[16] = 0xFF;
    bk_val_t k, v;
    int rc = bk_cursor_seek (cursor, after, 17, &k, &v);
    rc = rc == 0 ? bk_cursor_prev (cursor, &k, &v) : bk_cursor_last (cursor, &k, &v);
    int seen = 0, err = 0;
    while (rc == 0 && err == 0 && k.size == 32 && memcmp (k.data, schedule, 16) == 0) {
        if (++seen > BK_RUNS_KEPT) {
            uint8_t run[16];
            memcpy (run, (const uint8_t *) k.data + 16, 16);
            err = bk_store_del (store, BK_DB_RUNS, run, 16);
            if (err == 0)
                err = bk_cursor_del (cursor);
        }
        rc = bk_cursor_prev (cursor, &k, &v);
        if (seen > BK_RUNS_KEPT + 64)
            break; //  a few per new run keep up; no need to walk them all
    }
    bk_cursor_close (&cursor);
    return err;
}

int bk_runs_save (bk_store_t *store, const json_t *run, bool is_new) {
    uint8_t id[16], schedule[16];
    if (aq_uuid_parse (json_string_value (json_object_get (run, "id")), id) != 0 ||
        aq_uuid_parse (json_string_value (json_object_get (run, "task_id")), schedule) != 0)
        return BK_ESTORE;
    int rc = bk_store_put_record (store, BK_DB_RUNS, id, 16, run);
    if (rc == 0 && is_new) {
        uint8_t key[32];
        memcpy (key, schedule, 16);
        memcpy (key + 16, id, 16);
        rc = bk_store_put (store, BK_DB_SCHEDULE_RUNS, key, 32, "", 0);
        if (rc == 0)
            rc = s_trim_runs (store, schedule);
    }
    return rc;
}

json_t *bk_runs_list (bk_store_t *store, const uint8_t schedule[16], int limit, int offset,
                      uint64_t *total) {
    return s_page (store, BK_DB_SCHEDULE_RUNS, schedule, 16, BK_DB_RUNS, NULL, NULL, limit, offset,
                   total);
}

//  --------------------------------------------------------------------------
//  Run keys

static size_t s_runkey (uint8_t out[16 + 1 + S_NAME_MAX], const uint8_t team[16], char type,
                        const char *key) {
    size_t len = strlen (key);
    if (len > S_NAME_MAX)
        len = S_NAME_MAX;
    memcpy (out, team, 16);
    out[16] = (uint8_t) type;
    memcpy (out + 17, key, len);
    return 17 + len;
}

int64_t bk_runkeys_dedupe (bk_store_t *store, const uint8_t team[16], const char *key) {
    uint8_t k[17 + S_NAME_MAX];
    bk_val_t val;
    int64_t ms = -1;
    if (bk_store_get (store, BK_DB_RUN_KEYS, k, s_runkey (k, team, 'd', key), &val) == 0 &&
        val.size == 8)
        memcpy (&ms, val.data, 8);
    return ms;
}

int bk_runkeys_set_dedupe (bk_store_t *store, const uint8_t team[16], const char *key, int64_t ms) {
    uint8_t k[17 + S_NAME_MAX];
    return bk_store_put (store, BK_DB_RUN_KEYS, k, s_runkey (k, team, 'd', key), &ms, 8);
}

json_t *bk_runkeys_concurrency (bk_store_t *store, const uint8_t team[16], const char *key) {
    uint8_t k[17 + S_NAME_MAX];
    return bk_store_get_record (store, BK_DB_RUN_KEYS, k, s_runkey (k, team, 'c', key));
}

int bk_runkeys_set_concurrency (bk_store_t *store, const uint8_t team[16], const char *key,
                                const json_t *record) {
    uint8_t k[17 + S_NAME_MAX];
    size_t k_size = s_runkey (k, team, 'c', key);
    if (!record)
        return bk_store_del (store, BK_DB_RUN_KEYS, k, k_size);
    return bk_store_put_record (store, BK_DB_RUN_KEYS, k, k_size, record);
}

//  --------------------------------------------------------------------------

static bool s_is_time (const char *field) {
    size_t len = strlen (field);
    return (len > 3 && strcmp (field + len - 3, "_at") == 0) ||
           (len > 6 && strcmp (field + len - 6, "_until") == 0);
}

json_t *bk_schedules_public (const json_t *record) {
    return bk_task_public_with (record, s_is_time);
}

//  --------------------------------------------------------------------------
//  Selftest

static json_t *s_schedule (const uint8_t id[16], const uint8_t team[16], const char *kind,
                           const char *expr, const char *status) {
    char a[AQ_UUID_TEXT], b[AQ_UUID_TEXT];
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", aq_uuid_format (id, a), "team_id",
                      aq_uuid_format (team, b), "schedule_kind", kind, "schedule_expr", expr,
                      "status", status, "created_by", "u1");
}

void bk_schedules_test (bool verbose) {
    if (verbose)
        printf (" * bk_schedules: ");
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16], ids[5][16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    json_t *records[5];
    const char *kinds[5] = {"cron", "event", "event", "once", "event"};
    const char *exprs[5] = {"* * * * *", "deploy", "deploy", "2030-01-01T00:00:00Z", "deploy"};
    for (int i = 0; i < 5; i++) {
        aq_uuid_new (ids[i]);
        records[i] = s_schedule (ids[i], i == 4 ? other : team, kinds[i], exprs[i],
                                 i == 2 ? "paused" : "active");
        assert (bk_schedules_save (store, records[i], NULL) == 0);
    }
    //  newest first, filters, pagination totals
    uint64_t total;
    json_t *page = bk_schedules_list (store, team, NULL, NULL, NULL, 2, 1, &total);
    assert (total == 4 && json_array_size (page) == 2);
    uint8_t got[16];
    assert (bk_schedules_ids (json_array_get (page, 0), got, NULL) == 0);
    assert (memcmp (got, ids[2], 16) == 0);
    json_decref (page);
    page = bk_schedules_list (store, team, "active", "event", NULL, 10, 0, &total);
    assert (total == 1 && json_array_size (page) == 1);
    json_decref (page);
    //  the event index: same team, same name, not canceled
    json_t *found = bk_schedules_by_event (store, team, "deploy");
    assert (json_array_size (found) == 2);
    json_decref (found);
    json_t *changed = json_deep_copy (records[1]);
    json_object_set_new (changed, "status", json_string ("canceled"));
    assert (bk_schedules_save (store, changed, records[1]) == 0);
    found = bk_schedules_by_event (store, team, "deploy");
    assert (json_array_size (found) == 1);
    json_decref (found);
    found = bk_schedules_by_event (store, team, "deplo");
    assert (json_array_size (found) == 0);
    json_decref (found);
    json_decref (changed);
    //  runs: newest first, trimmed to BK_RUNS_KEPT
    char sid[AQ_UUID_TEXT], rid[AQ_UUID_TEXT];
    aq_uuid_format (ids[0], sid);
    uint8_t first[16];
    for (int i = 0; i < BK_RUNS_KEPT + 3; i++) {
        uint8_t run[16];
        aq_uuid_new (run);
        if (i == 0)
            memcpy (first, run, 16);
        json_t *record =
            json_pack ("{s:s, s:s, s:i}", "id", aq_uuid_format (run, rid), "task_id", sid, "n", i);
        assert (bk_runs_save (store, record, true) == 0);
        json_decref (record);
    }
    page = bk_runs_list (store, ids[0], 1, 0, &total);
    assert (total == BK_RUNS_KEPT);
    assert (json_integer_value (json_object_get (json_array_get (page, 0), "n")) ==
            BK_RUNS_KEPT + 2);
    json_decref (page);
    assert (bk_runs_get (store, first) == NULL);
    //  run keys
    assert (bk_runkeys_dedupe (store, team, "k") == -1);
    assert (bk_runkeys_set_dedupe (store, team, "k", 1234) == 0);
    assert (bk_runkeys_dedupe (store, team, "k") == 1234);
    assert (bk_runkeys_dedupe (store, other, "k") == -1);
    json_t *conc = json_pack ("{s:s, s:[]}", "running", "r1", "waiting");
    assert (bk_runkeys_set_concurrency (store, team, "k", conc) == 0);
    json_t *back = bk_runkeys_concurrency (store, team, "k");
    assert (json_equal (back, conc));
    json_decref (back);
    json_decref (conc);
    assert (bk_runkeys_set_concurrency (store, team, "k", NULL) == 0);
    assert (bk_runkeys_concurrency (store, team, "k") == NULL);
    //  public shape
    json_t *record = json_pack ("{s:s, s:I, s:I, s:n, s:i}", "id", "x", "next_run_at",
                                (json_int_t) 1705314600000LL, "snoozed_until",
                                (json_int_t) 1705314600000LL, "last_run_at", "_due", 5);
    json_t *shown = bk_schedules_public (record);
    assert (strcmp (json_string_value (json_object_get (shown, "next_run_at")),
                    "2024-01-15T10:30:00.000Z") == 0);
    assert (json_is_string (json_object_get (shown, "snoozed_until")));
    assert (json_is_null (json_object_get (shown, "last_run_at")));
    assert (!json_object_get (shown, "_due"));
    json_decref (shown);
    json_decref (record);
    for (int i = 0; i < 5; i++)
        json_decref (records[i]);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("OK\n");
}
