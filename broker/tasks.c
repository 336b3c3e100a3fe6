/*  tasks.c - task records in the store, with their indexes and counters

    An attempt record is a msgpack map with small integer keys, as the task
    record is: A_VERSION (BK_TASK_RECORD), then the fields below.
*/
#include "tasks.h"
#include "aq_time.h"
#include "request.h"
#include "aq_uuid.h"
#include "trace.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    A_VERSION = 0,
    A_ATTEMPT,
    A_STARTED_AT,
    A_DURATION,
    A_STATUS_CODE,
    A_ERROR,
    A_TRACE,
    A_SPAN
};

static const uint8_t s_all_teams[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

static void s_put64 (uint8_t *out, uint64_t value) {
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (value >> (56 - 8 * i));
}

bk_task_t *bk_tasks_get (bk_store_t *store, const uint8_t id[16]) {
    bk_val_t val;
    if (bk_store_get (store, BK_DB_TASKS, id, 16, &val) != 0)
        return NULL;
    return bk_task_decode (val.data, val.size);
}

static int s_count (bk_store_t *store, const uint8_t team[16], int status, int delta) {
    uint8_t key[17];
    memcpy (key, team, 16);
    key[16] = (uint8_t) status;
    int rc = bk_store_add (store, BK_DB_COUNTS, key, 17, delta);
    memcpy (key, s_all_teams, 16);
    return rc ? rc : bk_store_add (store, BK_DB_COUNTS, key, 17, delta);
}

static void s_status_key (uint8_t key[25], const uint8_t team[16], int status, uint64_t seq) {
    memcpy (key, team, 16);
    key[16] = (uint8_t) status;
    s_put64 (key + 17, seq);
}

int bk_tasks_save (bk_store_t *store, const bk_task_t *task, int old_status) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_task_encode (task, &w);
    int rc = bk_store_put_writer (store, BK_DB_TASKS, task->id, 16, &w);
    aq_writer_release (&w);
    uint8_t key[25];
    if (rc == 0 && old_status == 0) {
        memcpy (key, task->team, 16);
        s_put64 (key + 16, task->seq);
        rc = bk_store_put (store, BK_DB_TEAM_TASKS, key, 24, task->id, 16);
        if (rc == 0)
            rc = s_count (store, task->team, 0, 1);
    }
    if (rc == 0 && old_status != task->status) {
        if (old_status) {
            s_status_key (key, task->team, old_status, task->seq);
            rc = bk_store_del (store, BK_DB_TEAM_STATUS, key, 25);
            if (rc == 0)
                rc = s_count (store, task->team, old_status, -1);
        }
        s_status_key (key, task->team, task->status, task->seq);
        if (rc == 0)
            rc = bk_store_put (store, BK_DB_TEAM_STATUS, key, 25, task->id, 16);
        if (rc == 0)
            rc = s_count (store, task->team, task->status, 1);
    }
    return rc;
}

uint64_t bk_tasks_count (bk_store_t *store, const uint8_t *team, int status) {
    uint8_t key[17];
    memcpy (key, team ? team : s_all_teams, 16);
    key[16] = (uint8_t) status;
    return bk_store_counter (store, BK_DB_COUNTS, key, 17);
}

size_t bk_tasks_write_page (bk_store_t *store, const uint8_t team[16], int status, int limit,
                            int offset, bool ascending, aq_writer_t *w, uint64_t *total) {
    *total = bk_tasks_count (store, team, status);
    size_t mark = aq_write_array_open (w), shown = 0;
    bk_db_t db = status ? BK_DB_TEAM_STATUS : BK_DB_TEAM_TASKS;
    uint8_t prefix[18];
    size_t prefix_size = 16;
    memcpy (prefix, team, 16);
    if (status)
        prefix[prefix_size++] = (uint8_t) status;
    bk_cursor_t *cursor = bk_cursor_open (store, db);
    bk_val_t k, v;
    int rc = BK_NOTFOUND;
    if (cursor && ascending)
        rc = bk_cursor_seek (cursor, prefix, prefix_size, &k, &v);
    else if (cursor) {
        //  one past the prefix's last key, then step back
        uint8_t after[18 + 9];
        memcpy (after, prefix, prefix_size);
        memset (after + prefix_size, 0xFF, 9);
        rc = bk_cursor_seek (cursor, after, prefix_size + 9, &k, &v);
        rc = rc == 0 ? bk_cursor_prev (cursor, &k, &v) : bk_cursor_last (cursor, &k, &v);
    }
    for (int index = 0; rc == 0 && shown < (size_t) limit && w->size - mark < BK_PAGE_BYTES;
         index++) {
        if (k.size < prefix_size || memcmp (k.data, prefix, prefix_size) != 0)
            break;
        if (index >= offset && v.size == 16) {
            uint8_t id[16];
            memcpy (id, v.data, 16);
            bk_task_t *task = bk_tasks_get (store, id);
            if (task) {
                bk_task_write_public (task, w);
                shown++;
            }
            bk_task_destroy (&task);
        }
        rc = ascending ? bk_cursor_next (cursor, &k, &v) : bk_cursor_prev (cursor, &k, &v);
    }
    bk_cursor_close (&cursor);
    aq_write_array_close (w, mark, (uint32_t) shown);
    return shown;
}

void bk_tasks_each_in_status (bk_store_t *store, int status,
                              int (*fn) (void *arg, const uint8_t id[16]), void *arg) {
    bk_cursor_t *teams = bk_cursor_open (store, BK_DB_TEAMS);
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_TEAM_STATUS);
    bk_val_t tk, k, v;
    int stop = 0;
    for (int rc = bk_cursor_seek (teams, NULL, 0, &tk, NULL); rc == 0 && !stop;
         rc = bk_cursor_next (teams, &tk, NULL)) {
        if (tk.size != 16)
            continue;
        uint8_t prefix[17];
        memcpy (prefix, tk.data, 16);
        prefix[16] = (uint8_t) status;
        for (int r = bk_cursor_seek (cursor, prefix, 17, &k, &v); r == 0 && !stop;
             r = bk_cursor_next (cursor, &k, &v)) {
            if (k.size < 17 || memcmp (k.data, prefix, 17) != 0)
                break;
            if (v.size == 16) {
                uint8_t id[16];
                memcpy (id, v.data, 16);
                stop = fn (arg, id);
            }
        }
    }
    bk_cursor_close (&cursor);
    bk_cursor_close (&teams);
}

int bk_tasks_add_attempt (bk_store_t *store, const uint8_t id[16], const bk_attempt_t *attempt) {
    uint8_t key[18];
    memcpy (key, id, 16);
    key[16] = (uint8_t) (attempt->attempt >> 8), key[17] = (uint8_t) attempt->attempt;
    aq_writer_t w;
    aq_writer_init (&w);
    bool traced = attempt->trace_id && attempt->span;
    aq_write_map (&w, 4 + (attempt->status_code >= 0) + (attempt->error != NULL) + 2 * traced);
    aq_write_int (&w, A_VERSION), aq_write_int (&w, BK_TASK_RECORD);
    aq_write_int (&w, A_ATTEMPT), aq_write_int (&w, attempt->attempt);
    aq_write_int (&w, A_STARTED_AT), aq_write_int (&w, attempt->started_at);
    aq_write_int (&w, A_DURATION), aq_write_int (&w, attempt->duration);
    if (attempt->status_code >= 0)
        aq_write_int (&w, A_STATUS_CODE), aq_write_int (&w, attempt->status_code);
    if (attempt->error)
        aq_write_int (&w, A_ERROR), aq_write_str (&w, attempt->error);
    if (traced) {
        aq_write_int (&w, A_TRACE), aq_write_bin (&w, attempt->trace_id, 16);
        aq_write_int (&w, A_SPAN), aq_write_bin (&w, attempt->span, 8);
    }
    int rc = bk_store_put_writer (store, BK_DB_ATTEMPTS, key, 18, &w);
    aq_writer_release (&w);
    return rc;
}

//  One stored attempt as its public map; false when the record is unreadable.
static bool s_attempt_public (const bk_val_t *v, aq_writer_t *w) {
    aq_node_t record, key, value;
    if (aq_msg_parse (v->data, v->size, &record) != 0 || record.type != AQ_NODE_MAP)
        return false;
    bk_attempt_t a = {.attempt = -1, .started_at = -1, .status_code = -1};
    aq_node_t error = {0}, trace = {0}, span = {0};
    aq_iter_t it;
    aq_node_iter (&record, &it);
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case A_ATTEMPT:
            a.attempt = (int) i;
            break;
        case A_STARTED_AT:
            a.started_at = i;
            break;
        case A_DURATION:
            a.duration = i;
            break;
        case A_STATUS_CODE:
            a.status_code = (int) i;
            break;
        case A_ERROR:
            error = value;
            break;
        case A_TRACE:
            trace = value;
            break;
        case A_SPAN:
            span = value;
            break;
        }
    }
    if (a.attempt < 0)
        return false;
    bool has_error = aq_node_is_str (&error);
    bool traced = trace.type == AQ_NODE_BIN && trace.count == 16 && span.type == AQ_NODE_BIN &&
                  span.count == 8;
    aq_write_map (w, 3 + (a.status_code >= 0) + has_error + 2 * traced);
    aq_write_kv_int (w, "attempt", a.attempt);
    char stamp[32];
    aq_write_kv_str (w, "startedAt", aq_time_format (a.started_at, stamp));
    aq_write_kv_int (w, "duration", a.duration);
    if (a.status_code >= 0)
        aq_write_kv_int (w, "statusCode", a.status_code);
    if (has_error) {
        aq_write_str (w, "error");
        aq_write_raw (w, error.raw, error.raw_size);
    }
    if (traced) {
        char hex[33];
        aq_write_kv_str (w, "traceId", bk_trace_hex (trace.data, 16, hex));
        aq_write_kv_str (w, "spanId", bk_trace_hex (span.data, 8, hex));
    }
    return true;
}

void bk_tasks_write_attempts (bk_store_t *store, const uint8_t id[16], aq_writer_t *w) {
    size_t mark = aq_write_array_open (w);
    uint32_t n = 0;
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_ATTEMPTS);
    bk_val_t k, v;
    for (int rc = cursor ? bk_cursor_seek (cursor, id, 16, &k, &v) : BK_NOTFOUND; rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size != 18 || memcmp (k.data, id, 16) != 0)
            break;
        n += s_attempt_public (&v, w);
    }
    bk_cursor_close (&cursor);
    aq_write_array_close (w, mark, n);
}

//  --------------------------------------------------------------------------

static int s_collect (void *arg, const uint8_t id[16]) {
    (*(int *) arg)++;
    return 0;
}

static bk_task_t *s_task (const uint8_t team[16], int status, uint64_t seq) {
    bk_task_t *task = bk_task_new (0);
    aq_uuid_new (task->id);
    memcpy (task->team, team, 16);
    task->status = status;
    task->seq = seq;
    task->target_url = bk_task_strdup (task, "http://x");
    task->created_at = 0;
    return task;
}

void bk_tasks_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16], id[16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    assert (bk_store_put (store, BK_DB_TEAMS, team, 16, "x", 1) == 0);
    uint8_t ids[10][16];
    for (int i = 0; i < 10; i++) {
        bk_task_t *task = s_task (team, i < 4 ? BK_ST_PENDING : BK_ST_DELAYED, (uint64_t) i + 1);
        memcpy (ids[i], task->id, 16);
        assert (bk_tasks_save (store, task, 0) == 0);
        bk_task_destroy (&task);
    }
    assert (bk_tasks_count (store, team, 0) == 10);
    assert (bk_tasks_count (store, team, BK_ST_PENDING) == 4);
    assert (bk_tasks_count (store, NULL, BK_ST_DELAYED) == 6);
    assert (bk_tasks_count (store, other, 0) == 0);

    //  a status change moves the index entry and both counters
    bk_task_t *task = bk_tasks_get (store, ids[0]);
    assert (task && task->seq == 1);
    task->status = BK_ST_COMPLETED;
    assert (bk_tasks_save (store, task, BK_ST_PENDING) == 0);
    bk_task_destroy (&task);
    assert (bk_tasks_count (store, team, BK_ST_PENDING) == 3);
    assert (bk_tasks_count (store, NULL, BK_ST_COMPLETED) == 1);

    aq_writer_t w;
    aq_writer_init (&w);
    uint64_t total;
    size_t size;
    aq_node_t page, item, value;
    assert (bk_tasks_write_page (store, team, 0, 3, 0, false, &w, &total) == 3 && total == 10);
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &page) == 0 && page.type == AQ_NODE_ARRAY);
    aq_iter_t it;
    aq_node_iter (&page, &it);
    assert (aq_iter_next (&it, NULL, &item) && aq_node_get (&item, "status", &value) &&
            aq_node_streq (&value, "delayed")); //  the newest first: seq 10
    aq_writer_reset (&w);
    assert (bk_tasks_write_page (store, team, 0, 100, 8, true, &w, &total) == 2);
    aq_writer_reset (&w);
    assert (bk_tasks_write_page (store, team, BK_ST_PENDING, 100, 0, true, &w, &total) == 3 &&
            total == 3);
    aq_writer_reset (&w);
    assert (bk_tasks_write_page (store, other, 0, 100, 0, false, &w, &total) == 0 && total == 0);
    data = aq_writer_data (&w, &size);
    assert (size == 1 && data[0] == 0x90);
    aq_writer_reset (&w);

    int seen = 0;
    bk_tasks_each_in_status (store, BK_ST_DELAYED, s_collect, &seen);
    assert (seen == 6);

    bk_attempt_t attempt = {1, 0, 12, 503, NULL, NULL, NULL};
    assert (bk_tasks_add_attempt (store, ids[1], &attempt) == 0);
    const uint8_t trace[16] = {0xab, 1}, span[8] = {0xcd, 2};
    attempt = (bk_attempt_t){2, 1000, 5, -1, "fetch failed: ECONNREFUSED", trace, span};
    assert (bk_tasks_add_attempt (store, ids[1], &attempt) == 0);
    bk_tasks_write_attempts (store, ids[1], &w);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &page) == 0 && page.count == 2);
    aq_node_iter (&page, &it);
    assert (aq_iter_next (&it, NULL, &item));
    assert (aq_node_get (&item, "startedAt", &value) &&
            aq_node_streq (&value, "1970-01-01T00:00:00.000Z"));
    assert (aq_node_get (&item, "statusCode", &value) && value.i == 503);
    assert (!aq_node_get (&item, "error", &value));
    assert (!aq_node_get (&item, "traceId", &value) && !aq_node_get (&item, "spanId", &value));
    assert (aq_iter_next (&it, NULL, &item));
    assert (aq_node_get (&item, "error", &value) &&
            aq_node_streq (&value, "fetch failed: ECONNREFUSED"));
    assert (aq_node_get (&item, "traceId", &value) &&
            aq_node_streq (&value, "ab010000000000000000000000000000"));
    assert (aq_node_get (&item, "spanId", &value) && aq_node_streq (&value, "cd02000000000000"));
    assert (!aq_node_get (&item, "statusCode", &value));
    aq_writer_reset (&w);
    bk_tasks_write_attempts (store, ids[2], &w);
    data = aq_writer_data (&w, &size);
    assert (size == 1 && data[0] == 0x90);
    aq_writer_release (&w);
    aq_uuid_new (id);
    assert (bk_tasks_get (store, id) == NULL);

    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_tasks: ok\n");
}
