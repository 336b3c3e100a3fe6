/*  tasks.c - task records in the store, with their indexes and counters */
#include "tasks.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "task.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t s_all_teams[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

static void s_put64 (uint8_t *out, uint64_t value) {
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t) (value >> (56 - 8 * i));
}

int bk_tasks_ids (const json_t *task, uint8_t id[16], uint8_t team[16]) {
    if (aq_uuid_parse (json_string_value (json_object_get (task, "id")), id) != 0)
        return -1;
    if (team && aq_uuid_parse (json_string_value (json_object_get (task, "teamId")), team) != 0)
        return -1;
    return 0;
}

uint64_t bk_tasks_seq (const json_t *task) {
    return (uint64_t) json_integer_value (json_object_get (task, "_seq"));
}

json_t *bk_tasks_get (bk_store_t *store, const uint8_t id[16]) {
    return bk_store_get_record (store, BK_DB_TASKS, id, 16);
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

int bk_tasks_save (bk_store_t *store, const json_t *task, int old_status) {
    uint8_t id[16], team[16];
    if (bk_tasks_ids (task, id, team) != 0)
        return BK_ESTORE;
    int status = bk_task_status (task);
    uint64_t seq = bk_tasks_seq (task);
    int rc = bk_store_put_record (store, BK_DB_TASKS, id, 16, task);
    uint8_t key[25];
    if (rc == 0 && old_status == 0) {
        memcpy (key, team, 16);
        s_put64 (key + 16, seq);
        rc = bk_store_put (store, BK_DB_TEAM_TASKS, key, 24, id, 16);
        if (rc == 0)
            rc = s_count (store, team, 0, 1);
    }
    if (rc == 0 && old_status != status) {
        if (old_status) {
            s_status_key (key, team, old_status, seq);
            rc = bk_store_del (store, BK_DB_TEAM_STATUS, key, 25);
            if (rc == 0)
                rc = s_count (store, team, old_status, -1);
        }
        s_status_key (key, team, status, seq);
        if (rc == 0)
            rc = bk_store_put (store, BK_DB_TEAM_STATUS, key, 25, id, 16);
        if (rc == 0)
            rc = s_count (store, team, status, 1);
    }
    return rc;
}

uint64_t bk_tasks_count (bk_store_t *store, const uint8_t *team, int status) {
    uint8_t key[17];
    memcpy (key, team ? team : s_all_teams, 16);
    key[16] = (uint8_t) status;
    return bk_store_counter (store, BK_DB_COUNTS, key, 17);
}

json_t *bk_tasks_list (bk_store_t *store, const uint8_t team[16], int status, int limit, int offset,
                       bool ascending, uint64_t *total) {
    *total = bk_tasks_count (store, team, status);
    json_t *tasks = json_array ();
    bk_db_t db = status ? BK_DB_TEAM_STATUS : BK_DB_TEAM_TASKS;
    uint8_t prefix[18];
    size_t prefix_size = 16;
    memcpy (prefix, team, 16);
    if (status)
        prefix[prefix_size++] = (uint8_t) status;
    bk_cursor_t *cursor = bk_cursor_open (store, db);
    if (!cursor)
        return tasks;
    bk_val_t k, v;
    int rc;
    if (ascending)
        rc = bk_cursor_seek (cursor, prefix, prefix_size, &k, &v);
    else {
        //  one past the prefix's last key, then step back
        uint8_t after[18 + 9];
        memcpy (after, prefix, prefix_size);
        memset (after + prefix_size, 0xFF, 9);
        rc = bk_cursor_seek (cursor, after, prefix_size + 9, &k, &v);
        rc = rc == 0 ? bk_cursor_prev (cursor, &k, &v) : bk_cursor_last (cursor, &k, &v);
    }
    for (int index = 0; rc == 0 && (int) json_array_size (tasks) < limit; index++) {
        if (k.size < prefix_size || memcmp (k.data, prefix, prefix_size) != 0)
            break;
        if (index >= offset && v.size == 16) {
            json_t *task = bk_tasks_get (store, v.data);
            if (task)
                json_array_append_new (tasks, task);
        }
        rc = ascending ? bk_cursor_next (cursor, &k, &v) : bk_cursor_prev (cursor, &k, &v);
    }
    bk_cursor_close (&cursor);
    return tasks;
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

int bk_tasks_add_attempt (bk_store_t *store, const uint8_t id[16], int n, const json_t *attempt) {
    uint8_t key[18];
    memcpy (key, id, 16);
    key[16] = (uint8_t) (n >> 8), key[17] = (uint8_t) n;
    return bk_store_put_record (store, BK_DB_ATTEMPTS, key, 18, attempt);
}

json_t *bk_tasks_attempts (bk_store_t *store, const uint8_t id[16]) {
    json_t *list = json_array ();
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_ATTEMPTS);
    bk_val_t k, v;
    for (int rc = bk_cursor_seek (cursor, id, 16, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size != 18 || memcmp (k.data, id, 16) != 0)
            break;
        json_t *attempt = aq_proto_unpack (v.data, v.size);
        json_t *started = json_object_get (attempt, "startedAt");
        if (json_is_integer (started)) {
            char stamp[32];
            json_object_set_new (
                attempt, "startedAt",
                json_string (aq_time_format (json_integer_value (started), stamp)));
        }
        if (attempt)
            json_array_append_new (list, attempt);
    }
    bk_cursor_close (&cursor);
    return list;
}

//  --------------------------------------------------------------------------

static int s_collect (void *arg, const uint8_t id[16]) {
    (*(int *) arg)++;
    return 0;
}

void bk_tasks_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    uint8_t team[16], other[16], id[16];
    char text[AQ_UUID_TEXT], team_text[AQ_UUID_TEXT];
    aq_uuid_new (team);
    aq_uuid_new (other);
    assert (bk_store_put (store, BK_DB_TEAMS, team, 16, "x", 1) == 0);
    aq_uuid_format (team, team_text);
    uint8_t ids[10][16];
    for (int i = 0; i < 10; i++) {
        aq_uuid_new (ids[i]);
        json_t *task = json_pack ("{s:s, s:s, s:s, s:I}", "id", aq_uuid_format (ids[i], text),
                                  "teamId", team_text, "status", i < 4 ? "pending" : "delayed",
                                  "_seq", (json_int_t) (i + 1));
        assert (bk_tasks_save (store, task, 0) == 0);
        json_decref (task);
    }
    assert (bk_tasks_count (store, team, 0) == 10);
    assert (bk_tasks_count (store, team, BK_ST_PENDING) == 4);
    assert (bk_tasks_count (store, NULL, BK_ST_DELAYED) == 6);
    assert (bk_tasks_count (store, other, 0) == 0);

    //  a status change moves the index entry and both counters
    json_t *task = bk_tasks_get (store, ids[0]);
    assert (task);
    json_object_set_new (task, "status", json_string ("completed"));
    assert (bk_tasks_save (store, task, BK_ST_PENDING) == 0);
    json_decref (task);
    assert (bk_tasks_count (store, team, BK_ST_PENDING) == 3);
    assert (bk_tasks_count (store, NULL, BK_ST_COMPLETED) == 1);

    uint64_t total;
    json_t *page = bk_tasks_list (store, team, 0, 3, 0, false, &total);
    assert (total == 10 && json_array_size (page) == 3);
    assert (bk_tasks_seq (json_array_get (page, 0)) == 10);
    json_decref (page);
    page = bk_tasks_list (store, team, 0, 100, 8, true, &total);
    assert (json_array_size (page) == 2 && bk_tasks_seq (json_array_get (page, 0)) == 9);
    json_decref (page);
    page = bk_tasks_list (store, team, BK_ST_PENDING, 100, 0, true, &total);
    assert (total == 3 && json_array_size (page) == 3);
    assert (bk_tasks_seq (json_array_get (page, 0)) == 2);
    json_decref (page);
    page = bk_tasks_list (store, other, 0, 100, 0, false, &total);
    assert (total == 0 && json_array_size (page) == 0);
    json_decref (page);

    int seen = 0;
    bk_tasks_each_in_status (store, BK_ST_DELAYED, s_collect, &seen);
    assert (seen == 6);

    json_t *attempt = json_pack ("{s:i, s:I, s:i, s:i}", "attempt", 1, "startedAt", (json_int_t) 0,
                                 "duration", 12, "statusCode", 503);
    assert (bk_tasks_add_attempt (store, ids[1], 1, attempt) == 0);
    json_object_set_new (attempt, "attempt", json_integer (2));
    assert (bk_tasks_add_attempt (store, ids[1], 2, attempt) == 0);
    json_decref (attempt);
    json_t *list = bk_tasks_attempts (store, ids[1]);
    assert (json_array_size (list) == 2);
    assert (strcmp (json_string_value (json_object_get (json_array_get (list, 0), "startedAt")),
                    "1970-01-01T00:00:00.000Z") == 0);
    json_decref (list);
    list = bk_tasks_attempts (store, ids[2]);
    assert (json_array_size (list) == 0);
    json_decref (list);
    aq_uuid_new (id);
    assert (bk_tasks_get (store, id) == NULL);

    bk_store_test_destroy (&store, dir);
    if (verbose)
        printf ("bk_tasks: ok\n");
}
