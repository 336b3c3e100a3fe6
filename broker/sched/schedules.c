/*  schedules.c - scheduled tasks and their runs in the store, with indexes */
#include "schedules.h"
#include "aq_uuid.h"
#include "../request.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_MAX 256 //  longest event name or run key in a store key

//  Run key record keys.
enum { R_VERSION = 0, R_VALUE = 1, R_WAITING = 2 }; //  R_VALUE: dedupe ms, or the holder

//  The event name a record is indexed under, or NULL (not an event
//  schedule, no name, or canceled).
static const char *s_event_name (const bk_sched_task_t *record) {
    if (record->kind != BK_SCHEDULE_EVENT || !record->expr || !*record->expr ||
        strlen (record->expr) > S_NAME_MAX || record->status == BK_SCHED_CANCELED)
        return NULL;
    return record->expr;
}

//  The event-name index key: team(16) name 0 id(16).
static size_t s_event_key (uint8_t key[16 + S_NAME_MAX + 1 + 16], const uint8_t team[16],
                           const char *name, const uint8_t id[16]) {
    size_t len = strlen (name);
    memcpy (key, team, 16);
    memcpy (key + 16, name, len + 1);
    memcpy (key + 16 + len + 1, id, 16);
    return 16 + len + 1 + 16;
}

bk_sched_task_t *bk_schedules_get (bk_store_t *store, const uint8_t id[16]) {
    bk_val_t val;
    if (bk_store_get (store, BK_DB_SCHEDULES, id, 16, &val) != 0)
        return NULL;
    bk_sched_task_t *record = bk_sched_task_decode (val.data, val.size);
    if (record && memcmp (record->id, id, 16) != 0)
        bk_sched_task_destroy (&record);
    if (record) {
        record->stored = true;
        record->indexed_event = (char *) s_event_name (record);
    }
    return record;
}

int bk_schedules_save (bk_store_t *store, bk_sched_task_t *record) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_sched_task_encode (record, &w);
    int rc = bk_store_put_writer (store, BK_DB_SCHEDULES, record->id, 16, &w);
    aq_writer_release (&w);
    if (rc == 0 && !record->stored) {
        uint8_t key[32];
        memcpy (key, record->team, 16);
        memcpy (key + 16, record->id, 16);
        rc = bk_store_put (store, BK_DB_TEAM_SCHEDULES, key, 32, "", 0);
    }
    uint8_t key[16 + S_NAME_MAX + 17];
    const char *before = record->stored ? record->indexed_event : NULL;
    const char *after = s_event_name (record);
    if (rc == 0 && before && (!after || strcmp (before, after) != 0))
        rc = bk_store_del (store, BK_DB_EVENT_NAMES, key,
                           s_event_key (key, record->team, before, record->id));
    if (rc == 0 && after)
        rc = bk_store_put (store, BK_DB_EVENT_NAMES, key,
                           s_event_key (key, record->team, after, record->id), "", 0);
    if (rc == 0) {
        record->stored = true;
        record->indexed_event = (char *) after; //  the record's own expr
    }
    return rc;
}

//  A record of a page: true when it is one to show, then written to w
//  when w is given.
typedef bool (s_show_fn) (void *arg, const bk_val_t *val, aq_writer_t *w);

//  Walks the keys of index that start with prefix, newest (largest) first;
//  the id is the last 16 bytes of each key, its record in db. Writes the
//  records show accepts within [offset, offset + limit) to w as an array,
//  counting every one it accepts in *total. filtered false: every record
//  is shown, and those outside the page are counted without being read.
static size_t s_page (bk_store_t *store, bk_db_t index, const uint8_t *prefix, size_t prefix_size,
                      bk_db_t db, s_show_fn *show, void *arg, bool filtered, int limit, int offset,
                      aq_writer_t *w, uint64_t *total) {
    size_t shown = 0, mark = aq_write_array_open (w);
    *total = 0;
    bk_cursor_t *cursor = bk_cursor_open (store, index);
    uint8_t after[64];
    assert (prefix_size + 1 <= sizeof after);
    memcpy (after, prefix, prefix_size);
    after[prefix_size] = 0xFF;
    bk_val_t k, v;
    int rc = cursor ? bk_cursor_seek (cursor, after, prefix_size + 1, &k, &v) : BK_NOTFOUND;
    if (cursor)
        rc = rc == 0 ? bk_cursor_prev (cursor, &k, &v) : bk_cursor_last (cursor, &k, &v);
    for (; rc == 0; rc = bk_cursor_prev (cursor, &k, &v)) {
        if (k.size < prefix_size + 16 || memcmp (k.data, prefix, prefix_size) != 0)
            break;
        const uint8_t *id = (const uint8_t *) k.data + k.size - 16;
        bool in_page =
            (int64_t) *total >= offset && shown < (size_t) limit && w->size - mark < BK_PAGE_BYTES;
        bk_val_t record;
        if (!filtered && !in_page)
            (*total)++;
        else if (bk_store_get (store, db, id, 16, &record) == 0 &&
                 show (arg, &record, in_page ? w : NULL)) {
            shown += in_page;
            (*total)++;
        }
    }
    bk_cursor_close (&cursor);
    aq_write_array_close (w, mark, (uint32_t) shown);
    return shown;
}

static bool s_show_schedule (void *arg, const bk_val_t *val, aq_writer_t *w) {
    const bk_schedules_filter_t *filter = arg;
    bk_sched_task_t *record = bk_sched_task_decode (val->data, val->size);
    bool keep = record && (!filter->status || record->status == filter->status) &&
                (filter->kind < 0 || record->kind == filter->kind) &&
                (!filter->created_by ||
                 (record->created_by && strcmp (record->created_by, filter->created_by) == 0));
    if (keep && w)
        bk_sched_task_write_public (record, w);
    bk_sched_task_destroy (&record);
    return keep;
}

size_t bk_schedules_write_page (bk_store_t *store, const uint8_t team[16],
                                const bk_schedules_filter_t *filter, int limit, int offset,
                                aq_writer_t *w, uint64_t *total) {
    bool filtered = filter->status || filter->kind >= 0 || filter->created_by;
    return s_page (store, BK_DB_TEAM_SCHEDULES, team, 16, BK_DB_SCHEDULES, s_show_schedule,
                   (void *) filter, filtered, limit, offset, w, total);
}

uint8_t *bk_schedules_by_event (bk_store_t *store, const uint8_t team[16], const char *name,
                                size_t *count) {
    uint8_t *found = NULL;
    size_t len = strlen (name), room = 0;
    *count = 0;
    if (len == 0 || len > S_NAME_MAX)
        return NULL;
    uint8_t prefix[16 + S_NAME_MAX + 1];
    memcpy (prefix, team, 16);
    memcpy (prefix + 16, name, len + 1);
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_EVENT_NAMES);
    bk_val_t k, v;
    int rc = cursor ? bk_cursor_seek (cursor, prefix, 16 + len + 1, &k, &v) : BK_NOTFOUND;
    for (; rc == 0; rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size != 16 + len + 1 + 16 || memcmp (k.data, prefix, 16 + len + 1) != 0)
            break;
        if (*count == room) {
            room = room ? 2 * room : 8;
            found = realloc (found, room * 16);
            assert (found);
        }
        memcpy (found + 16 * (*count)++, (const uint8_t *) k.data + 16 + len + 1, 16);
    }
    bk_cursor_close (&cursor);
    return found;
}

//  --------------------------------------------------------------------------
//  Runs

bk_sched_run_t *bk_schedules_run (bk_store_t *store, const uint8_t id[16]) {
    bk_val_t val;
    if (bk_store_get (store, BK_DB_RUNS, id, 16, &val) != 0)
        return NULL;
    bk_sched_run_t *run = bk_sched_run_decode (val.data, val.size);
    if (run && memcmp (run->id, id, 16) != 0)
        bk_sched_run_destroy (&run);
    return run;
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

int bk_schedules_save_run (bk_store_t *store, const bk_sched_run_t *run, bool is_new) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_sched_run_encode (run, &w);
    int rc = bk_store_put_writer (store, BK_DB_RUNS, run->id, 16, &w);
    aq_writer_release (&w);
    if (rc == 0 && is_new) {
        uint8_t key[32];
        memcpy (key, run->schedule, 16);
        memcpy (key + 16, run->id, 16);
        rc = bk_store_put (store, BK_DB_SCHEDULE_RUNS, key, 32, "", 0);
        if (rc == 0)
            rc = s_trim_runs (store, run->schedule);
    }
    return rc;
}

static bool s_show_run (void *arg, const bk_val_t *val, aq_writer_t *w) {
    bk_sched_run_t *run = bk_sched_run_decode (val->data, val->size);
    if (run && w)
        bk_sched_run_write_public (run, w);
    bool shown = run != NULL;
    bk_sched_run_destroy (&run);
    return shown;
}

size_t bk_schedules_write_runs (bk_store_t *store, const uint8_t schedule[16], int limit,
                                int offset, aq_writer_t *w, uint64_t *total) {
    return s_page (store, BK_DB_SCHEDULE_RUNS, schedule, 16, BK_DB_RUNS, s_show_run, NULL, false,
                   limit, offset, w, total);
}

//  --------------------------------------------------------------------------
//  Run keys

//  The value under the integer key of a record map; false when none.
static bool s_get (const aq_node_t *record, int64_t key, aq_node_t *value) {
    aq_iter_t it;
    aq_node_t name;
    aq_node_iter (record, &it);
    while (aq_iter_next (&it, &name, value))
        if (name.type == AQ_NODE_INT && name.i == key)
            return true;
    return false;
}

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

//  A run key's record, copied out of the store into *copy (caller frees)
//  and parsed into *record: 0, or BK_NOTFOUND (absent or unreadable).
static int s_runkey_get (bk_store_t *store, const uint8_t *key, size_t key_size, uint8_t **copy,
                         aq_node_t *record) {
    bk_val_t val;
    *copy = NULL;
    if (bk_store_get (store, BK_DB_RUN_KEYS, key, key_size, &val) != 0 || val.size == 0)
        return BK_NOTFOUND;
    *copy = malloc (val.size);
    assert (*copy);
    memcpy (*copy, val.data, val.size);
    aq_node_t version;
    if (aq_msg_parse (*copy, val.size, record) != 0 || record->type != AQ_NODE_MAP ||
        !s_get (record, R_VERSION, &version) || version.type != AQ_NODE_INT ||
        version.i != BK_RUNKEY_RECORD) {
        free (*copy);
        *copy = NULL;
        return BK_NOTFOUND;
    }
    return 0;
}

int64_t bk_schedules_dedupe (bk_store_t *store, const uint8_t team[16], const char *key) {
    uint8_t k[17 + S_NAME_MAX], *copy;
    aq_node_t record, value;
    int64_t ms = -1;
    if (s_runkey_get (store, k, s_runkey (k, team, 'd', key), &copy, &record) == 0 &&
        s_get (&record, R_VALUE, &value) && value.type == AQ_NODE_INT)
        ms = value.i;
    free (copy);
    return ms;
}

void bk_schedules_dedupe_encode (int64_t ms, aq_writer_t *w) {
    aq_write_map (w, 2);
    aq_write_int (w, R_VERSION), aq_write_int (w, BK_RUNKEY_RECORD);
    aq_write_int (w, R_VALUE), aq_write_int (w, ms);
}

void bk_schedules_key_encode (const uint8_t holder[16], const uint8_t *waiting, size_t n,
                              aq_writer_t *w) {
    aq_write_map (w, 3);
    aq_write_int (w, R_VERSION), aq_write_int (w, BK_RUNKEY_RECORD);
    aq_write_int (w, R_VALUE), aq_write_bin (w, holder, 16);
    aq_write_int (w, R_WAITING);
    aq_write_array (w, (uint32_t) n);
    for (size_t i = 0; i < n; i++)
        aq_write_bin (w, waiting + 16 * i, 16);
}

int bk_schedules_set_dedupe (bk_store_t *store, const uint8_t team[16], const char *key,
                             int64_t ms) {
    uint8_t k[17 + S_NAME_MAX];
    aq_writer_t w;
    aq_writer_init (&w);
    bk_schedules_dedupe_encode (ms, &w);
    int rc = bk_store_put_writer (store, BK_DB_RUN_KEYS, k, s_runkey (k, team, 'd', key), &w);
    aq_writer_release (&w);
    return rc;
}

//  Writes a concurrency key's record: holder, then the waiting runs
//  (those of the array node waiting from the first-th on, then added).
static int s_key_put (bk_store_t *store, const uint8_t *key, size_t key_size,
                      const uint8_t holder[16], const aq_node_t *waiting, uint32_t first,
                      const uint8_t added[16]) {
    bool queue = waiting && waiting->type == AQ_NODE_ARRAY;
    uint8_t *ids = malloc (16 * ((queue ? waiting->count : 0) + 1));
    assert (ids);
    size_t n = 0;
    uint32_t index = 0;
    aq_iter_t it;
    aq_node_t item;
    if (queue) {
        aq_node_iter (waiting, &it);
        for (; aq_iter_next (&it, NULL, &item); index++)
            if (index >= first && item.type == AQ_NODE_BIN && item.count == 16)
                memcpy (ids + 16 * n++, item.data, 16);
    }
    if (added)
        memcpy (ids + 16 * n++, added, 16);
    aq_writer_t w;
    aq_writer_init (&w);
    bk_schedules_key_encode (holder, ids, n, &w);
    int rc = bk_store_put_writer (store, BK_DB_RUN_KEYS, key, key_size, &w);
    aq_writer_release (&w);
    free (ids);
    return rc;
}

//  The holder of a concurrency record into holder; false when none.
static bool s_holder (const aq_node_t *record, uint8_t holder[16]) {
    aq_node_t value;
    if (!s_get (record, R_VALUE, &value) || value.type != AQ_NODE_BIN || value.count != 16)
        return false;
    memcpy (holder, value.data, 16);
    return true;
}

int bk_schedules_key_take (bk_store_t *store, const uint8_t team[16], const char *key,
                           const uint8_t run[16], bool *holds) {
    uint8_t k[17 + S_NAME_MAX], *copy, holder[16];
    size_t k_size = s_runkey (k, team, 'c', key);
    aq_node_t record, waiting;
    int rc;
    *holds = !(s_runkey_get (store, k, k_size, &copy, &record) == 0 && s_holder (&record, holder));
    if (*holds)
        rc = s_key_put (store, k, k_size, run, NULL, 0, NULL);
    else {
        if (!s_get (&record, R_WAITING, &waiting))
            waiting.type = AQ_NODE_NIL;
        rc = s_key_put (store, k, k_size, holder, &waiting, 0, run);
    }
    free (copy);
    return rc;
}

int bk_schedules_key_pass (bk_store_t *store, const uint8_t team[16], const char *key,
                           const uint8_t run[16], uint8_t next[16], bool *has_next) {
    uint8_t k[17 + S_NAME_MAX], *copy, holder[16];
    size_t k_size = s_runkey (k, team, 'c', key);
    aq_node_t record, waiting, item;
    *has_next = false;
    if (s_runkey_get (store, k, k_size, &copy, &record) != 0 || !s_holder (&record, holder) ||
        memcmp (holder, run, 16) != 0) {
        free (copy);
        return 0; //  not the holder
    }
    uint32_t index = 0;
    aq_iter_t it;
    if (s_get (&record, R_WAITING, &waiting) && waiting.type == AQ_NODE_ARRAY) {
        aq_node_iter (&waiting, &it);
        while (!*has_next && aq_iter_next (&it, NULL, &item)) {
            index++;
            if (item.type != AQ_NODE_BIN || item.count != 16)
                continue;
            bk_sched_run_t *queued = bk_schedules_run (store, item.data);
            if (queued && queued->status == BK_RUN_WAITING) {
                memcpy (next, item.data, 16);
                *has_next = true;
            }
            bk_sched_run_destroy (&queued);
        }
    }
    int rc = *has_next ? s_key_put (store, k, k_size, next, &waiting, index, NULL)
                       : bk_store_del (store, BK_DB_RUN_KEYS, k, k_size);
    free (copy);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

static bk_sched_task_t *s_schedule (const uint8_t id[16], const uint8_t team[16], int kind,
                                    const char *expr, int status) {
    bk_sched_task_t *record = bk_sched_task_new (0);
    memcpy (record->id, id, 16);
    memcpy (record->team, team, 16);
    record->title = bk_arena_strdup (record->arena, "t");
    record->description = bk_arena_strdup (record->arena, "");
    record->kind = kind;
    record->expr = bk_arena_strdup (record->arena, expr);
    record->timezone = bk_arena_strdup (record->arena, "UTC");
    record->payload = (bk_blob_t){(const uint8_t *) "\x80", 1};
    record->created_by = bk_arena_strdup (record->arena, kind == BK_SCHEDULE_ONCE ? "u2" : "u1");
    record->status = status;
    record->backoff = 3;
    return record;
}

static bk_sched_run_t *s_run (const uint8_t schedule[16], int n, int status) {
    bk_sched_run_t *run = bk_sched_run_new (0);
    aq_uuid_new (run->id);
    memcpy (run->schedule, schedule, 16);
    run->trigger = BK_TRIGGER_RUN_NOW;
    run->status = status;
    run->step = n;
    run->templates = (bk_blob_t){(const uint8_t *) "\x91\x80", 2};
    return run;
}

//  The ids a page wrote, as the indexes of ids (by their first byte).
static void s_page_ids (aq_writer_t *w, const char *field, const char *want) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    aq_node_t page, item, value;
    assert (aq_msg_parse (data, size, &page) == 0 && page.type == AQ_NODE_ARRAY);
    char got[64] = "";
    aq_iter_t it;
    aq_node_iter (&page, &it);
    while (aq_iter_next (&it, NULL, &item)) {
        assert (aq_node_get (&item, field, &value) && aq_node_is_str (&value));
        got[strlen (got)] = (char) value.data[0]; //  the id's first hex digit
    }
    if (strcmp (got, want) != 0) {
        fprintf (stderr, "bk_schedules: page %s, want %s\n", got, want);
        assert (false);
    }
    aq_writer_reset (w);
}

void bk_schedules_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16], ids[5][16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    bk_sched_task_t *records[5];
    int kinds[5] = {BK_SCHEDULE_CRON, BK_SCHEDULE_EVENT, BK_SCHEDULE_EVENT, BK_SCHEDULE_ONCE,
                    BK_SCHEDULE_EVENT};
    const char *exprs[5] = {"* * * * *", "deploy", "deploy", "2030-01-01T00:00:00Z", "deploy"};
    for (int i = 0; i < 5; i++) {
        memset (ids[i], 0x10 * (i + 1), 16); //  sorted; the first hex digit is i + 1
        records[i] = s_schedule (ids[i], i == 4 ? other : team, kinds[i], exprs[i],
                                 i == 2 ? BK_SCHED_PAUSED : BK_SCHED_ACTIVE);
        assert (bk_schedules_save (store, records[i]) == 0 && records[i]->stored);
    }
    bk_sched_task_t *got = bk_schedules_get (store, ids[1]);
    assert (got && got->stored && strcmp (got->indexed_event, "deploy") == 0);
    assert (!bk_schedules_get (store, team));
    //  newest first, filters, pagination totals
    uint64_t total;
    aq_writer_t w;
    aq_writer_init (&w);
    bk_schedules_filter_t any = {0, -1, NULL};
    assert (bk_schedules_write_page (store, team, &any, 2, 1, &w, &total) == 2 && total == 4);
    s_page_ids (&w, "id", "32");
    bk_schedules_filter_t events = {BK_SCHED_ACTIVE, BK_SCHEDULE_EVENT, NULL};
    assert (bk_schedules_write_page (store, team, &events, 10, 0, &w, &total) == 1 && total == 1);
    s_page_ids (&w, "id", "2");
    bk_schedules_filter_t by = {0, -1, "u2"};
    assert (bk_schedules_write_page (store, team, &by, 10, 0, &w, &total) == 1 && total == 1);
    s_page_ids (&w, "id", "4");
    assert (bk_schedules_write_page (store, team, &any, 10, 9, &w, &total) == 0 && total == 4);
    s_page_ids (&w, "id", "");
    //  the event index: same team, same name, not canceled
    size_t count;
    uint8_t *found = bk_schedules_by_event (store, team, "deploy", &count);
    assert (count == 2 && memcmp (found, ids[1], 16) == 0 && memcmp (found + 16, ids[2], 16) == 0);
    free (found);
    got->status = BK_SCHED_CANCELED;
    assert (bk_schedules_save (store, got) == 0 && !got->indexed_event);
    found = bk_schedules_by_event (store, team, "deploy", &count);
    assert (count == 1 && memcmp (found, ids[2], 16) == 0);
    free (found);
    assert (!bk_schedules_by_event (store, team, "deplo", &count) && count == 0);
    bk_sched_task_destroy (&got);
    got = bk_sched_task_dup (records[2]); //  renamed: the index follows
    got->expr = bk_arena_strdup (got->arena, "release");
    assert (bk_schedules_save (store, got) == 0);
    assert (!bk_schedules_by_event (store, team, "deploy", &count));
    found = bk_schedules_by_event (store, team, "release", &count);
    assert (count == 1 && memcmp (found, ids[2], 16) == 0);
    free (found);
    bk_sched_task_destroy (&got);

    //  runs: newest first, trimmed to BK_RUNS_KEPT
    uint8_t first[16];
    for (int i = 0; i < BK_RUNS_KEPT + 3; i++) {
        bk_sched_run_t *run = s_run (ids[0], i, BK_RUN_COMPLETED);
        if (i == 0)
            memcpy (first, run->id, 16);
        assert (bk_schedules_save_run (store, run, true) == 0);
        bk_sched_run_destroy (&run);
    }
    assert (bk_schedules_write_runs (store, ids[0], 1, 0, &w, &total) == 1);
    assert (total == BK_RUNS_KEPT);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t page, item, value;
    assert (aq_msg_parse (data, size, &page) == 0 && page.count == 1);
    aq_iter_t it;
    aq_node_iter (&page, &it);
    assert (aq_iter_next (&it, NULL, &item) && aq_node_get (&item, "step", &value));
    assert (value.i == BK_RUNS_KEPT + 2);
    aq_writer_reset (&w);
    assert (!bk_schedules_run (store, first));

    //  run keys: dedupe
    assert (bk_schedules_dedupe (store, team, "k") == -1);
    assert (bk_schedules_set_dedupe (store, team, "k", 1234) == 0);
    assert (bk_schedules_dedupe (store, team, "k") == 1234);
    assert (bk_schedules_dedupe (store, other, "k") == -1);
    //  concurrency: a holder, runs queued in order, passed on to those still waiting
    bk_sched_run_t *runs[4];
    bool holds, has_next;
    uint8_t next[16];
    for (int i = 0; i < 4; i++) {
        runs[i] = s_run (ids[0], i, i == 2 ? BK_RUN_FAILED : BK_RUN_WAITING);
        assert (bk_schedules_save_run (store, runs[i], true) == 0);
        assert (bk_schedules_key_take (store, team, "k", runs[i]->id, &holds) == 0);
        assert (holds == (i == 0));
    }
    assert (bk_schedules_key_pass (store, team, "k", runs[2]->id, next, &has_next) == 0);
    assert (!has_next); //  not the holder: nothing changes
    assert (bk_schedules_key_pass (store, team, "k", runs[0]->id, next, &has_next) == 0);
    assert (has_next && memcmp (next, runs[1]->id, 16) == 0);
    assert (bk_schedules_key_take (store, team, "k", runs[0]->id, &holds) == 0 && !holds);
    assert (bk_schedules_key_pass (store, team, "k", runs[1]->id, next, &has_next) == 0);
    assert (has_next && memcmp (next, runs[3]->id, 16) == 0); //  runs[2] is no longer waiting
    assert (bk_schedules_key_pass (store, team, "k", runs[3]->id, next, &has_next) == 0);
    assert (has_next && memcmp (next, runs[0]->id, 16) == 0);
    assert (bk_schedules_key_pass (store, team, "k", runs[0]->id, next, &has_next) == 0);
    assert (!has_next);
    assert (bk_schedules_key_take (store, team, "k", runs[3]->id, &holds) == 0 && holds);
    for (int i = 0; i < 4; i++)
        bk_sched_run_destroy (&runs[i]);
    aq_writer_release (&w);
    for (int i = 0; i < 5; i++)
        bk_sched_task_destroy (&records[i]);
    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_schedules: ok\n");
}
