/*  upgrade.c - the store from layout 1 (JSON records) to layout 2 (typed records)

    The walk over the store: every table that holds layout-1 records, a
    batch of records per transaction, each record tested (string keys:
    layout 1, to convert; integer keys: converted already) and handed to
    its table's converter (upgrade_v1.c, which lists where every layout-1
    field goes); then the layout set to 2 and one line logged.
*/
#include "upgrade.h"
#include "aq_log.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "upgrade_v1.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 512 //  longest LMDB key (511), and then some

typedef struct {
    bk_upgrade_v1_t v1;       //  the converters' state
    const char *dir;          //  the store's directory, for messages
    bk_upgrade_stats_t stats; //  so far
    uint64_t batches;         //  transactions committed
} s_upgrade_t;

typedef struct {
    bk_db_t db;       //  the table
    const char *name; //  as messages name it
} s_table_t;

static const s_table_t s_tables[] = {
    {BK_DB_TEAMS, "teams"}, {BK_DB_KEYS, "keys"},         {BK_DB_TOKENS, "tokens"},
    {BK_DB_TASKS, "tasks"}, {BK_DB_ATTEMPTS, "attempts"}, {BK_DB_SCHEDULES, "schedules"},
    {BK_DB_RUNS, "runs"},   {BK_DB_RUN_KEYS, "run_keys"},
};

static uint64_t *s_counter (bk_upgrade_stats_t *stats, bk_db_t db) {
    switch (db) {
    case BK_DB_TASKS:
        return &stats->tasks;
    case BK_DB_ATTEMPTS:
        return &stats->attempts;
    case BK_DB_TEAMS:
        return &stats->teams;
    case BK_DB_KEYS:
        return &stats->keys;
    case BK_DB_TOKENS:
        return &stats->tokens;
    case BK_DB_SCHEDULES:
        return &stats->schedules;
    case BK_DB_RUNS:
        return &stats->runs;
    default:
        return &stats->run_keys;
    }
}

//  A record's key as an operator reads it, into text.
static const char *s_key_text (bk_db_t db, const uint8_t *key, size_t size, char *text,
                               size_t text_size) {
    char uuid[AQ_UUID_TEXT] = "";
    size_t at = 0;
    if (db != BK_DB_KEYS && size >= 16) {
        aq_uuid_format (key, uuid);
        at = 16;
    }
    bool printable = true;
    for (size_t i = at; i < size; i++)
        printable &= key[i] >= 0x20 && key[i] < 0x7F;
    if (db == BK_DB_ATTEMPTS && size == 18)
        snprintf (text, text_size, "%s attempt %d", uuid, key[16] << 8 | key[17]);
    else if (db == BK_DB_RUN_KEYS && size > 16 && printable)
        snprintf (text, text_size, "%s %c %.*s", uuid, key[16], (int) (size - 17), key + 17);
    else if (printable)
        snprintf (text, text_size, "%s%s%.*s", uuid, *uuid && size > at ? " " : "",
                  (int) (size - at), key + at);
    else {
        size_t n = snprintf (text, text_size, "%s%s", uuid, *uuid ? " " : "");
        for (size_t i = at; i < size && n + 3 < text_size; i++)
            n += snprintf (text + n, text_size - n, "%02x", key[i]);
    }
    return text;
}

//  One record under key: 0 when it needs nothing (already layout 2, or
//  not a record), 1 when converted, -1 with err filled.
static int s_record (s_upgrade_t *self, const s_table_t *table, const uint8_t *key, size_t key_size,
                     const bk_val_t *val, char *err, size_t err_size) {
    if (table->db == BK_DB_RUN_KEYS && (key_size < 17 || (key[16] != 'c' && key[16] != 'd')))
        return 0; //  not a run key
    aq_node_t v1, first, ignored;
    aq_iter_t it;
    int rc = BK_UPGRADE_V1_BAD;
    if (table->db == BK_DB_RUN_KEYS && key[16] == 'd' && val->size == 8) {
        //  a dedupe key's start time as layout 1 kept it, 8 raw bytes (its
        //  layout-2 record, a small msgpack map, is never 8 bytes long)
        v1 = (aq_node_t){
            .type = AQ_NODE_BIN, .count = 8, .data = val->data, .raw = val->data, .raw_size = 8};
        rc = bk_upgrade_v1_convert (&self->v1, table->db, key, key_size, &v1);
    } else if (aq_msg_parse (val->data, val->size, &v1) != 0 || v1.type != AQ_NODE_MAP || !v1.count)
        snprintf (self->v1.why, sizeof self->v1.why, "it is not a msgpack map");
    else {
        aq_node_iter (&v1, &it);
        aq_iter_next (&it, &first, &ignored);
        if (first.type == AQ_NODE_INT) { //  layout 2
            (*s_counter (&self->stats, table->db))++;
            return 0;
        }
        if (first.type != AQ_NODE_STR)
            snprintf (self->v1.why, sizeof self->v1.why,
                      "its keys are neither strings nor integers");
        else
            rc = bk_upgrade_v1_convert (&self->v1, table->db, key, key_size, &v1);
    }
    if (rc == BK_UPGRADE_V1_DONE) {
        (*s_counter (&self->stats, table->db))++;
        self->stats.converted++;
        return 1;
    }
    if (rc == BK_UPGRADE_V1_LEFT) {
        self->stats.left++;
        return 0;
    }
    char text[160];
    s_key_text (table->db, key, key_size, text, sizeof text);
    if (rc == BK_UPGRADE_V1_STORE)
        snprintf (err, err_size,
                  "cannot upgrade store '%s' from layout 1 to 2: %s while writing table '%s'",
                  self->dir, self->v1.store_rc == BK_EFULL ? "the disk is full" : "storage error",
                  table->name);
    else
        snprintf (err, err_size,
                  "cannot upgrade store '%s' from layout 1 to 2: unreadable record in table "
                  "'%s' under key '%s': %s",
                  self->dir, table->name, text, self->v1.why);
    return -1;
}

static int s_failed (s_upgrade_t *self, int rc, const char *what, char *err, size_t err_size) {
    snprintf (err, err_size, "cannot upgrade store '%s' from layout 1 to 2: %s while %s", self->dir,
              rc == BK_EFULL ? "the disk is full" : "storage error", what);
    return -1;
}

//  The first key after key (size bytes), or (key NULL) the table's first.
static int s_seek_after (bk_cursor_t *cursor, const uint8_t *key, size_t size, bk_val_t *k,
                         bk_val_t *v) {
    if (!key)
        return bk_cursor_seek (cursor, NULL, 0, k, v);
    int rc = bk_cursor_seek (cursor, key, size, k, v);
    if (rc == 0 && k->size == size && memcmp (k->data, key, size) == 0)
        rc = bk_cursor_next (cursor, k, v);
    return rc;
}

//  Every record of table, batch records (or BK_UPGRADE_BATCH_BYTES) per
//  transaction. 0 or -1 with err filled.
static int s_table (s_upgrade_t *self, const s_table_t *table, int batch, char *err,
                    size_t err_size) {
    uint8_t last[S_KEY_MAX];
    size_t last_size = 0;
    bool started = false; //  last holds a key
    for (bool end = false; !end;) {
        int rc = bk_store_begin (self->v1.store, true);
        bk_cursor_t *cursor = rc == 0 ? bk_cursor_open (self->v1.store, table->db) : NULL;
        if (!cursor) {
            if (rc == 0)
                bk_store_abort (self->v1.store);
            return s_failed (self, rc ? rc : BK_ESTORE, "reading", err, err_size);
        }
        self->v1.written = 0;
        bk_val_t k, v;
        rc = s_seek_after (cursor, started ? last : NULL, last_size, &k, &v);
        for (int n = 0; rc == 0 && n < batch && self->v1.written < BK_UPGRADE_BATCH_BYTES; n++) {
            assert (k.size <= sizeof last);
            memcpy (last, k.data, k.size);
            last_size = k.size;
            started = true;
            int done = s_record (self, table, last, last_size, &v, err, err_size);
            if (done < 0) {
                bk_cursor_close (&cursor);
                bk_store_abort (self->v1.store);
                return -1;
            }
            //  after a write, find the place again rather than trust the cursor
            rc = done ? s_seek_after (cursor, last, last_size, &k, &v)
                      : bk_cursor_next (cursor, &k, &v);
        }
        bk_cursor_close (&cursor);
        end = rc == BK_NOTFOUND;
        if (rc != 0 && !end) {
            bk_store_abort (self->v1.store);
            return s_failed (self, rc, "reading", err, err_size);
        }
        rc = bk_store_commit (self->v1.store);
        if (rc != 0)
            return s_failed (self, rc, "committing", err, err_size);
        bk_store_settle (self->v1.store); //  keeps the redo log short
        if (++self->batches % 16 == 0)    //  and the map's pages read out of memory
            bk_store_release_pages (self->v1.store);
    }
    return 0;
}

int bk_upgrade_run (bk_store_t *store, const char *dir, int batch, bk_upgrade_stats_t *stats,
                    char *err, size_t err_size) {
    s_upgrade_t self = {.v1.store = store, .dir = dir};
    if (stats)
        memset (stats, 0, sizeof *stats);
    if (bk_store_layout (store) >= 2)
        return 0;
    int64_t started = aq_time_mono_ms ();
    aq_writer_init (&self.v1.w);
    int rc = 0;
    for (size_t t = 0; rc == 0 && t < sizeof s_tables / sizeof *s_tables; t++)
        rc = s_table (&self, &s_tables[t], batch > 0 ? batch : BK_UPGRADE_BATCH, err, err_size);
    aq_writer_release (&self.v1.w);
    if (rc == 0 && !self.stats.left) {
        rc = bk_store_begin (store, true);
        if (rc == 0 && (rc = bk_store_set_layout (store, 2)) != 0)
            bk_store_abort (store);
        else if (rc == 0)
            rc = bk_store_commit (store);
        if (rc != 0)
            rc = s_failed (&self, rc, "setting layout 2", err, err_size);
        bk_store_settle (store);
    }
    bk_upgrade_stats_t *s = &self.stats;
    s->ms = aq_time_mono_ms () - started;
    if (rc == 0 && !s->left)
        aq_log (AQ_LOG_INFO, "broker",
                "upgraded store '%s' from layout 1 to 2: %llu tasks, %llu attempts, %llu teams, "
                "%llu keys, %llu tokens, %llu schedules, %llu runs in %lld ms",
                dir, (unsigned long long) s->tasks, (unsigned long long) s->attempts,
                (unsigned long long) s->teams, (unsigned long long) s->keys,
                (unsigned long long) s->tokens, (unsigned long long) s->schedules,
                (unsigned long long) s->runs, (long long) s->ms);
    else if (rc == 0)
        aq_log (AQ_LOG_WARN, "broker",
                "store '%s' stays at layout 1: this build cannot convert %llu scheduled tasks, "
                "runs or concurrency records; it keeps them for a build that can",
                dir, (unsigned long long) s->left);
    if (stats)
        *stats = *s;
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

#include "../tests/rig_v1.h"
#include "aq_json.h"
#include "keys.h"
#include "sched/schedules.h"
#include "task.h"
#include "tasks.h"
#include "tokens.h"

#include <errno.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_T0 1765000000000LL

static void s_test_uuid (int n, uint8_t id[16], char text[AQ_UUID_TEXT]) {
    static const uint8_t base[16] = {0x01, 0x9a, 0xf1, 0x2c, 0x3b, 0x00, 0x70, 0x00,
                                     0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy (id, base, 16);
    id[14] = (uint8_t) (n >> 8), id[15] = (uint8_t) n;
    aq_uuid_format (id, text);
}

//  Layout-1 records of every kind, the same every time, in a write
//  transaction: 3 teams, 3 keys, 2 tokens, tasks tasks with an attempt
//  for every other one; with sched, a schedule, a run and a concurrency
//  record; and the binary tables' entries, which must not change.
static void s_test_fill (bk_store_t *store, int tasks, bool sched) {
    uint8_t team[3][16], id[16], key[64];
    char team_text[3][AQ_UUID_TEXT], text[AQ_UUID_TEXT];
    for (int t = 0; t < 3; t++) {
        char name[8];
        snprintf (name, sizeof name, "team%d", t);
        s_test_uuid (t + 1, team[t], team_text[t]);
        rig_v1_put (store, BK_DB_TEAMS, team[t], 16, "{s:s, s:s, s:I, s:s}", "id", team_text[t],
                    "name", name, "createdAt", S_T0 + t, "signingSecret", "whsec_c2VjcmV0");
        assert (bk_store_put (store, BK_DB_TEAM_NAMES, name, strlen (name), team[t], 16) == 0);
        char key_id[17], hash[65];
        snprintf (key_id, sizeof key_id, "%016x", 0xabc0 + t);
        memset (hash, 'a' + t, 64), hash[64] = '\0';
        rig_v1_put (store, BK_DB_KEYS, key_id, 16, "{s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "id",
                    key_id, "teamId", team_text[t], "team", name, "scope", t ? "read" : "full",
                    "createdAt", S_T0 + t, "revoked", 0, "hash", hash);
    }
    for (int t = 0; t < 2; t++) {
        char token_id[BK_TOKEN_ID_SIZE + 1];
        snprintf (token_id, sizeof token_id, "tok_%032x", 0x70 + t);
        memcpy (key, team[t], 16);
        memcpy (key + 16, token_id, BK_TOKEN_ID_SIZE);
        rig_v1_put (store, BK_DB_TOKENS, key, 16 + BK_TOKEN_ID_SIZE, "{s:s, s:s, s:I, s:s}", "id",
                    token_id, "name", "api", "createdAt", S_T0, "sealed", "c2VhbGVkIGJ5dGVz");
    }
    for (int i = 0; i < tasks; i++) {
        s_test_uuid (1000 + i, id, text);
        rig_v1_put (store, BK_DB_TASKS, id, 16,
                    "{s:s, s:s, s:s, s:s, s:{}, s:i, s:i, s:i, s:i, s:s, s:i, s:s, s:I, s:I, s:i}",
                    "id", text, "teamId", team_text[i % 3], "targetUrl", "https://example.com/x",
                    "method", "POST", "headers", "maxWaitTime", 30, "timeout", 30, "maxRetries", 3,
                    "retryCount", 0, "retryBackoff", "exponential", "priority", 5, "status",
                    i % 2 ? "completed" : "pending", "createdAt", S_T0 + i, "_seq",
                    (long long) i + 1, "_attempts", i % 2);
        if (i % 2) {
            memcpy (key, id, 16), key[16] = 0, key[17] = 1;
            rig_v1_put (store, BK_DB_ATTEMPTS, key, 18, "{s:i, s:I, s:I, s:i}", "attempt", 1,
                        "startedAt", S_T0 + i, "duration", 5LL, "statusCode", 200);
        } else {
            uint8_t ready[25] = {250};
            memcpy (ready + 1, team[i % 3], 16);
            ready[24] = (uint8_t) (i + 1);
            assert (bk_store_put (store, BK_DB_READY, ready, sizeof ready, id, 16) == 0);
        }
    }
    uint64_t count = (uint64_t) tasks;
    memcpy (key, team[0], 16), key[16] = 0;
    assert (bk_store_put (store, BK_DB_COUNTS, key, 17, &count, 8) == 0);
    memcpy (key, team[0], 16), memcpy (key + 16, "idem-1", 6);
    assert (bk_store_put (store, BK_DB_IDEM, key, 22, "0123456789abcdef01234567", 24) == 0);
    memcpy (key, team[1], 16), key[16] = 'd', memcpy (key + 17, "nightly", 7);
    assert (bk_store_put (store, BK_DB_RUN_KEYS, key, 24, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) ==
            0);
    if (sched) { //  shapes of broker/old/scheduler.c: s_create, s_run_new, s_run_step
        char run_text[AQ_UUID_TEXT], step_text[AQ_UUID_TEXT];
        s_test_uuid (900, id, text);
        s_test_uuid (1000, key, step_text); //  the first task is the run's step
        rig_v1_put (store, BK_DB_SCHEDULES, id, 16,
                    "{s:s, s:s, s:s, s:n, s:s, s:s, s:s, s:{s:s, s:s}, s:n, s:i, s:i, s:s, s:n, "
                    "s:n, s:s, s:s, s:I, s:I, s:n, s:n, s:I, s:I, s:I, s:I}",
                    "id", text, "team_id", team_text[1], "title", "nightly", "description",
                    "schedule_kind", "cron", "schedule_expr", "0 3 * * *", "timezone", "UTC",
                    "payload", "targetUrl", "https://example.com/nightly", "method", "POST",
                    "created_by", "priority", 5, "max_retries", 3, "backoff_strategy",
                    "exponential_jitter", "dedupe_key", "dedupe_window_seconds", "concurrency_key",
                    "serial", "status", "active", "next_run_at", S_T0 + 86400000, "last_run_at",
                    S_T0, "snoozed_until", "snooze_reason", "created_at", S_T0 - 1000, "updated_at",
                    S_T0 - 1000, "_anchor", S_T0 - 1000, "_due", S_T0 + 86400000);
        s_test_uuid (901, id, run_text);
        rig_v1_put (store, BK_DB_RUNS, id, 16,
                    "{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:n, s:n, s:n, "
                    "s:[{s:i, s:s, s:s}], s:[{s:s, s:s}], s:i, s:i, s:s, s:s}",
                    "id", run_text, "task_id", text, "team_id", team_text[1], "trigger", "schedule",
                    "status", "running", "attempt", 1, "step", 0, "steps_total", 1, "scheduled_at",
                    S_T0, "started_at", S_T0, "finished_at", "next_attempt_at", "error", "steps",
                    "step", 0, "task_id", step_text, "status", "pending", "_steps", "targetUrl",
                    "https://example.com/nightly", "method", "POST", "_priority", 5, "_max_retries",
                    3, "_backoff", "exponential_jitter", "_concurrency", "serial");
        memcpy (key, team[1], 16), key[16] = 'c', memcpy (key + 17, "serial", 6);
        rig_v1_put (store, BK_DB_RUN_KEYS, key, 23, "{s:s, s:[]}", "running", run_text, "waiting");
    }
}

//  A new layout-1 store in a new directory (full sync, as the broker
//  runs), filled by s_test_fill.
static bk_store_t *s_test_store (char dir[BK_STORE_TEST_DIR], int tasks, bool sched) {
    char err[256];
    bk_store_test_dir (dir);
    bk_store_t *store = bk_store_open (dir, 1 << 20, false, err, sizeof err);
    assert (store);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_set_layout (store, 1) == 0);
    s_test_fill (store, tasks, sched);
    assert (bk_store_commit (store) == 0 && bk_store_layout (store) == 1);
    return store;
}

//  Which tables s_test_dump dumps.
enum { S_TEST_ALL, S_TEST_SCHED, S_TEST_BINARY };

static bool s_test_dumped (int db, int which) {
    bool sched = db == BK_DB_SCHEDULES || db == BK_DB_RUNS || db == BK_DB_RUN_KEYS;
    bool record = sched || db == BK_DB_TASKS || db == BK_DB_ATTEMPTS || db == BK_DB_TEAMS ||
                  db == BK_DB_KEYS || db == BK_DB_TOKENS;
    return which == S_TEST_ALL || (which == S_TEST_SCHED && sched) ||
           (which == S_TEST_BINARY && !record);
}

//  The tables which says but meta (whose checkpoint counter differs from
//  run to run), keys and values, as one buffer in out.
static void s_test_dump (bk_store_t *store, aq_writer_t *out, int which) {
    aq_writer_reset (out);
    assert (bk_store_begin (store, false) == 0);
    for (int db = BK_DB_META + 1; db < BK_DB_COUNT; db++) {
        if (!s_test_dumped (db, which))
            continue;
        bk_cursor_t *cursor = bk_cursor_open (store, (bk_db_t) db);
        bk_val_t k, v;
        for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
             rc = bk_cursor_next (cursor, &k, &v)) {
            aq_write_int (out, db);
            aq_write_bin (out, k.data, k.size);
            aq_write_bin (out, v.data, v.size);
        }
        bk_cursor_close (&cursor);
    }
    bk_store_abort (store);
}

static bool s_test_same (aq_writer_t *a, aq_writer_t *b) {
    size_t a_size, b_size;
    const uint8_t *a_data = aq_writer_data (a, &a_size), *b_data = aq_writer_data (b, &b_size);
    return a_size == b_size && memcmp (a_data, b_data, a_size) == 0;
}

//  Every record of the tables upgraded is layout 2 and decodes; returns
//  how many records there are.
static uint64_t s_test_all_v2 (bk_store_t *store) {
    uint64_t n = 0;
    assert (bk_store_begin (store, false) == 0);
    for (size_t t = 0; t < sizeof s_tables / sizeof *s_tables; t++) {
        bk_db_t db = s_tables[t].db;
        bk_cursor_t *cursor = bk_cursor_open (store, db);
        bk_val_t k, v;
        for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
             rc = bk_cursor_next (cursor, &k, &v), n++) {
            aq_node_t record, first, value;
            aq_iter_t it;
            assert (aq_msg_parse (v.data, v.size, &record) == 0 && record.type == AQ_NODE_MAP);
            aq_node_iter (&record, &it);
            assert (aq_iter_next (&it, &first, &value) && first.type == AQ_NODE_INT);
            bk_team_t team;
            bk_key_t key;
            bk_token_t token;
            bk_task_t *task = NULL;
            switch (db) {
            case BK_DB_TASKS:
                task = bk_task_decode (v.data, v.size);
                assert (task && memcmp (task->id, k.data, 16) == 0);
                bk_task_destroy (&task);
                break;
            case BK_DB_TEAMS:
                assert (bk_team_decode (v.data, v.size, &team) == 0);
                break;
            case BK_DB_KEYS:
                assert (bk_key_decode (v.data, v.size, &key) == 0);
                break;
            case BK_DB_TOKENS:
                assert (bk_token_decode (v.data, v.size, &token) == 0);
                break;
            default: //  attempts and the scheduler's: key 0 the version (decoded below, and
                     //  by their own tests)
                assert (first.i == 0 && value.type == AQ_NODE_INT);
                assert (value.i == (db == BK_DB_ATTEMPTS    ? BK_TASK_RECORD
                                    : db == BK_DB_SCHEDULES ? BK_SCHED_TASK_RECORD
                                    : db == BK_DB_RUNS      ? BK_SCHED_RUN_RECORD
                                                            : BK_RUNKEY_RECORD));
            }
        }
        bk_cursor_close (&cursor);
    }
    bk_store_abort (store);
    return n;
}

static int s_test_commits_left; //  the commit that fails: when this reaches 0

static int s_test_failing_commit (void) {
    return --s_test_commits_left == 0 ? ENOSPC : 0;
}

static int s_test_killing_commit (void) {
    if (--s_test_commits_left == 0)
        _exit (0);
    return 0;
}

//  expected[name] (under "body" when it has one) is what w holds.
static void s_test_expect (const aq_node_t *expected, const char *name, aq_writer_t *w) {
    aq_node_t answer, body, shown;
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    assert (aq_node_get (expected, name, &answer));
    if (aq_node_get (&answer, "body", &body))
        answer = body;
    assert (aq_msg_parse (data, size, &shown) == 0);
    if (!rig_v1_equal (&answer, &shown) || !rig_v1_equal (&shown, &answer)) {
        char *want = aq_json_dumps (&answer), *got = aq_json_dumps (&shown);
        fprintf (stderr, "bk_upgrade: %s\n  first release: %s\n  upgraded:      %s\n", name, want,
                 got);
        free (want);
        free (got);
        assert (false);
    }
    aq_writer_reset (w);
}

//  What the fixture's broker answered to GET /v1/tasks/ID,
//  GET /v1/tasks/ID/attempts, GET /tasks/ID and GET /tasks/ID/runs (its
//  runs; expected.json) is what the converted records show. Returns how
//  many answers were compared, those of scheduled tasks in *schedules.
static int s_test_fixture_answers (bk_store_t *store, const aq_node_t *expected, int *schedules) {
    aq_iter_t it;
    aq_node_t name, answer, status, body, shown_node;
    aq_writer_t shown;
    aq_writer_init (&shown);
    int compared = 0;
    *schedules = 0;
    aq_node_iter (expected, &it);
    while (aq_iter_next (&it, &name, &answer)) {
        char line[160], id_text[AQ_UUID_TEXT];
        if (!aq_node_strcpy (&name, line, sizeof line))
            continue;
        const char *path = strstr (line, " GET /");
        bool task = path && strncmp (path, " GET /v1/tasks/", 15) == 0;
        size_t at = task ? 15 : 12; //  the id's offset
        if (!path || (!task && strncmp (path, " GET /tasks/", 12) != 0) ||
            strlen (path) < at + 36 || !aq_node_get (&answer, "status", &status) ||
            status.i != 200 || !aq_node_get (&answer, "body", &body))
            continue;
        snprintf (id_text, sizeof id_text, "%.36s", path + at);
        bool list = strcmp (path + at + 36, task ? "/attempts" : "/runs") == 0;
        uint8_t id[16];
        if (aq_uuid_parse (id_text, id) != 0 || (path[at + 36] && !list))
            continue;
        aq_writer_reset (&shown);
        aq_write_map (&shown, 1);
        uint64_t total;
        if (task && list) {
            aq_write_str (&shown, "attempts");
            bk_tasks_write_attempts (store, id, &shown);
        } else if (task) {
            bk_task_t *record = bk_tasks_get (store, id);
            assert (record);
            aq_write_str (&shown, "task");
            bk_task_write_public (record, &shown);
            bk_task_destroy (&record);
        } else if (list) { //  the runs, without the pagination
            aq_write_str (&shown, "runs");
            bk_schedules_write_runs (store, id, 100, 0, &shown, &total);
            assert (aq_node_get (&body, "runs", &body) && total == body.count);
        } else {
            bk_sched_task_t *record = bk_schedules_get (store, id);
            assert (record);
            aq_write_str (&shown, "task");
            bk_sched_task_write_public (record, &shown);
            bk_sched_task_destroy (&record);
        }
        size_t size;
        const uint8_t *data = aq_writer_data (&shown, &size);
        assert (aq_msg_parse (data, size, &shown_node) == 0);
        if (!task && list)
            assert (aq_node_get (&shown_node, "runs", &shown_node));
        if (!rig_v1_equal (&body, &shown_node) || !rig_v1_equal (&shown_node, &body)) {
            char *want = aq_json_dumps (&body), *got = aq_json_dumps (&shown_node);
            fprintf (stderr, "bk_upgrade: %s\n  first release: %s\n  upgraded:      %s\n", line,
                     want, got);
            free (want);
            free (got);
            assert (false);
        }
        compared++;
        *schedules += !task;
    }
    aq_writer_release (&shown);
    return compared;
}

//  The JSON file name beside tarball, parsed into w; *node views it.
static void s_test_read_json (const char *tarball, const char *name, aq_writer_t *w,
                              aq_node_t *node) {
    char path[512];
    snprintf (path, sizeof path, "%.*s/%s", (int) (strrchr (tarball, '/') - tarball), tarball,
              name);
    FILE *file = fopen (path, "r");
    assert (file);
    char *text = calloc (1, 4 << 20);
    assert (text && fread (text, 1, (4 << 20) - 1, file) > 0);
    fclose (file);
    aq_writer_init (w);
    assert (aq_json_parse (text, w) == 0);
    free (text);
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    assert (aq_msg_parse (data, size, node) == 0);
}

//  A copy of the first release's data directory (tests/fixtures/v1), when
//  there is one: every record converts; the tasks, attempts, teams, keys
//  and tokens show what the first release showed (expected.json); keys,
//  tokens and the signal token work as the fixture says.
static void s_test_fixture (bool verbose) {
    const char *tarball = getenv ("AQ_UPGRADE_FIXTURE");
    if (!tarball)
        tarball = "tests/fixtures/v1/data.tar.gz";
    FILE *file = fopen (tarball, "r");
    if (!file) {
        printf ("bk_upgrade: no '%s'; the fixture check skipped\n", tarball);
        return;
    }
    fclose (file);
    char dir[BK_STORE_TEST_DIR], command[512], err[512];
    bk_store_test_dir (dir);
    snprintf (command, sizeof command, "tar -xzf '%s' -C '%s' data.mdb", tarball, dir);
    assert (system (command) == 0);
    bk_store_t *store = bk_store_open (dir, 0, false, err, sizeof err);
    assert (store && bk_store_layout (store) == 1);
    bk_upgrade_stats_t stats;
    int rc = bk_upgrade_run (store, dir, 0, &stats, err, sizeof err);
    if (rc != 0)
        printf ("bk_upgrade: %s\n", err);
    assert (rc == 0);
    assert (stats.tasks > 50 && stats.attempts > 0 && stats.teams == 3 && stats.keys > 0);
    assert (stats.tokens == 3 && stats.schedules > 10 && stats.runs > 10);
    assert (stats.run_keys == 2 && stats.left == 0 && bk_store_layout (store) == 2);
    uint64_t records = s_test_all_v2 (store);
    assert (records == stats.tasks + stats.attempts + stats.teams + stats.keys + stats.tokens +
                           stats.schedules + stats.runs + stats.run_keys);
    if (verbose)
        printf ("bk_upgrade: fixture '%s': %llu tasks, %llu attempts, %llu teams, %llu keys, "
                "%llu tokens, %llu schedules, %llu runs, %llu run keys converted in %lld ms\n",
                tarball, (unsigned long long) stats.tasks, (unsigned long long) stats.attempts,
                (unsigned long long) stats.teams, (unsigned long long) stats.keys,
                (unsigned long long) stats.tokens, (unsigned long long) stats.schedules,
                (unsigned long long) stats.runs, (unsigned long long) stats.run_keys,
                (long long) stats.ms);

    //  what the fixture's broker showed (expected.json) and handed out
    //  (fixture.json) still holds
    aq_writer_t expected_w, fixture_w, w;
    aq_node_t expected, fixture;
    s_test_read_json (tarball, "expected.json", &expected_w, &expected);
    s_test_read_json (tarball, "fixture.json", &fixture_w, &fixture);
    aq_writer_init (&w);
    assert (bk_store_begin (store, false) == 0);
    int schedules, compared = s_test_fixture_answers (store, &expected, &schedules);
    assert (compared - schedules > 150 && schedules == (int) (2 * stats.schedules));
    if (verbose)
        printf ("bk_upgrade: fixture: %d answers of GET /v1/tasks/ID(/attempts) and %d of "
                "GET /tasks/ID(/runs) the same\n",
                compared - schedules, schedules);
    bk_keys_t *cache = bk_keys_new (store);
    bk_keys_write_teams (cache, &w);
    s_test_expect (&expected, "aqctl team list", &w);
    bk_keys_write_keys (cache, NULL, &w);
    s_test_expect (&expected, "aqctl key list", &w);
    const char *teams[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        char name[64];
        bk_team_t team;
        assert (bk_keys_team_find (cache, teams[i], &team) == 0);
        bk_team_write_public (&team, true, &w);
        snprintf (name, sizeof name, "aqctl team secret %s", teams[i]);
        s_test_expect (&expected, name, &w);
        aq_write_map (&w, 1);
        aq_write_str (&w, "tokens");
        bk_tokens_write_list (store, team.id, &w);
        snprintf (name, sizeof name, "%s GET /v1/tokens", teams[i]);
        s_test_expect (&expected, name, &w);
    }

    //  its keys authenticate with their scopes, revoked ones do not
    aq_node_t keys, item, name, field, tasks, tokens;
    assert (aq_node_get (&fixture, "keys", &keys));
    aq_iter_t it;
    aq_node_iter (&keys, &it);
    int checked = 0;
    while (aq_iter_next (&it, &name, &item)) {
        char secret[BK_KEY_TEXT], scope[8];
        assert (aq_node_get (&item, "secret", &field) &&
                aq_node_strcpy (&field, secret, sizeof secret));
        assert (aq_node_get (&item, "scope", &field) && aq_node_strcpy (&field, scope, 8));
        assert (aq_node_get (&item, "revoked", &field) && field.type == AQ_NODE_BOOL);
        uint8_t team[16];
        bool read_only = false;
        rc = bk_keys_check (cache, secret, team, &read_only);
        assert (field.b ? rc == -1 : rc == 0 && read_only == (strcmp (scope, "read") == 0));
        checked++;
    }
    assert (checked >= 6);
    bk_keys_destroy (&cache);
    //  its tokens are there, the deleted one is not
    assert (aq_node_get (&fixture, "tokens", &tokens));
    aq_node_iter (&tokens, &it);
    while (aq_iter_next (&it, &name, &item)) {
        char id[BK_TOKEN_ID_SIZE + 1], team_name[64];
        bk_val_t team;
        assert (aq_node_get (&item, "id", &field) && aq_node_strcpy (&field, id, sizeof id));
        assert (aq_node_get (&item, "team", &field) &&
                aq_node_strcpy (&field, team_name, sizeof team_name));
        assert (bk_store_get (store, BK_DB_TEAM_NAMES, team_name, strlen (team_name), &team) == 0);
        assert (aq_node_get (&item, "deleted", &field) && field.type == AQ_NODE_BOOL);
        assert (bk_tokens_exists (store, team.data, id) == !field.b);
    }
    //  the waiting task's signal token still signals it
    aq_node_t tokens_by_role, token_node, id_node;
    char token[64], id_text[AQ_UUID_TEXT], hash[65];
    uint8_t id[16], raw[32];
    assert (aq_node_get (&fixture, "signalTokens", &tokens_by_role) &&
            aq_node_get (&tokens_by_role, "a_waiting", &token_node) &&
            aq_node_strcpy (&token_node, token, sizeof token));
    assert (aq_node_get (&fixture, "tasks", &tasks) &&
            aq_node_get (&tasks, "a_waiting", &id_node) &&
            aq_node_strcpy (&id_node, id_text, sizeof id_text) && aq_uuid_parse (id_text, id) == 0);
    crypto_generichash (raw, sizeof raw, (const uint8_t *) token, strlen (token), NULL, 0);
    sodium_bin2hex (hash, sizeof hash, raw, sizeof raw);
    bk_task_t *task = bk_tasks_get (store, id);
    assert (task && task->status == BK_ST_WAITING && strcmp (task->signal, hash) == 0);
    bk_task_destroy (&task);
    bk_store_abort (store);
    aq_writer_release (&w);
    aq_writer_release (&expected_w);
    aq_writer_release (&fixture_w);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);
}

void bk_upgrade_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], err[512];
    bk_upgrade_stats_t stats;
    aq_writer_t reference, dump;
    aq_writer_init (&reference);
    aq_writer_init (&dump);

    //  a store of every kind of record, 7 records per transaction: all of
    //  them converted (the dedupe time's 8 raw bytes too), the binary
    //  tables untouched, layout 2
    bk_store_t *store = s_test_store (dir, 40, false);
    aq_writer_t before;
    aq_writer_init (&before);
    s_test_dump (store, &before, S_TEST_BINARY);
    assert (bk_upgrade_run (store, dir, 7, &stats, err, sizeof err) == 0);
    assert (bk_store_layout (store) == 2);
    assert (stats.tasks == 40 && stats.attempts == 20 && stats.teams == 3 && stats.keys == 3);
    assert (stats.tokens == 2 && stats.schedules == 0 && stats.runs == 0 && stats.left == 0);
    assert (stats.run_keys == 1 && stats.converted == 69 && stats.ms >= 0);
    assert (s_test_all_v2 (store) == 69);
    s_test_dump (store, &dump, S_TEST_BINARY);
    assert (s_test_same (&before, &dump));
    uint8_t team[16];
    int64_t dedupe_ms;
    char team_text[AQ_UUID_TEXT];
    s_test_uuid (2, team, team_text);
    memcpy (&dedupe_ms, "\x01\x02\x03\x04\x05\x06\x07\x08", 8); //  s_test_fill's
    assert (bk_store_begin (store, false) == 0);
    assert (bk_schedules_dedupe (store, team, "nightly") == dedupe_ms);
    bk_store_abort (store);
    s_test_dump (store, &reference, S_TEST_ALL);
    bk_store_destroy (&store);
    char open_err[256];
    store = bk_store_open (dir, 0, false, open_err, sizeof open_err);
    assert (store && bk_store_layout (store) == 2);

    //  twice: a layout-2 store is left alone
    assert (bk_upgrade_run (store, dir, 7, &stats, err, sizeof err) == 0);
    assert (stats.converted == 0 && stats.tasks == 0);
    //  and every record knows it is converted: a run over a store said to
    //  be at layout 1 again changes nothing
    assert (bk_store_begin (store, true) == 0 && bk_store_set_layout (store, 1) == 0);
    assert (bk_store_commit (store) == 0);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == 0);
    assert (stats.converted == 0 && stats.tasks == 40 && stats.attempts == 20);
    assert (stats.run_keys == 1);
    assert (bk_store_layout (store) == 2);
    s_test_dump (store, &dump, S_TEST_ALL);
    assert (s_test_same (&reference, &dump));
    bk_store_destroy (&store);
    bk_store_test_remove (dir);

    //  stopped at every commit in turn (a full disk), then started again:
    //  the same store in the end
    int stops = 0;
    for (int n = 1;; n++) {
        store = s_test_store (dir, 40, false);
        s_test_commits_left = n;
        bk_store_set_commit_hook (store, s_test_failing_commit);
        int rc = bk_upgrade_run (store, dir, 7, &stats, err, sizeof err);
        bk_store_set_commit_hook (store, NULL);
        if (rc == 0) { //  n is past the last commit
            bk_store_destroy (&store);
            bk_store_test_remove (dir);
            break;
        }
        assert (strstr (err, "cannot upgrade store '") && strstr (err, "the disk is full"));
        assert (bk_store_layout (store) == 1);
        bk_store_destroy (&store);
        store = bk_store_open (dir, 0, false, open_err, sizeof open_err);
        assert (store && bk_store_layout (store) == 1);
        assert (bk_upgrade_run (store, dir, 7, &stats, err, sizeof err) == 0);
        assert (bk_store_layout (store) == 2 && stats.tasks == 40 && stats.attempts == 20);
        s_test_dump (store, &dump, S_TEST_ALL);
        assert (s_test_same (&reference, &dump));
        bk_store_destroy (&store);
        bk_store_test_remove (dir);
        stops++;
    }
    assert (stops >= 10); //  68 records, 7 a batch, and the layout's own commit

    //  killed (as kill -9 would) at its fifth commit: what was committed
    //  before comes back from the redo log, and a new run finishes the job
    store = s_test_store (dir, 40, false);
    bk_store_destroy (&store);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        store = bk_store_open (dir, 0, false, open_err, sizeof open_err);
        assert (store);
        bk_store_set_checkpoint (store, 3600 * 1000, 1 << 30); //  everything stays in the log
        s_test_commits_left = 5;
        bk_store_set_commit_hook (store, s_test_killing_commit);
        bk_upgrade_run (store, dir, 7, &stats, err, sizeof err);
        _exit (1); //  not reached
    }
    int status;
    assert (waitpid (child, &status, 0) == child && WIFEXITED (status) &&
            WEXITSTATUS (status) == 0);
    store = bk_store_open (dir, 0, false, open_err, sizeof open_err);
    assert (store && bk_store_layout (store) == 1 && bk_store_replayed (store) >= 1);
    assert (bk_upgrade_run (store, dir, 7, &stats, err, sizeof err) == 0);
    assert (stats.converted < 68 && stats.tasks == 40 && bk_store_layout (store) == 2);
    s_test_dump (store, &dump, S_TEST_ALL);
    assert (s_test_same (&reference, &dump));
    bk_store_destroy (&store);
    bk_store_test_remove (dir);

    //  a record it cannot read: it stops, names the table and the key, and
    //  keeps everything
    store = s_test_store (dir, 10, false);
    uint8_t id[16];
    char text[AQ_UUID_TEXT], want[256];
    s_test_uuid (2000, id, text);
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_put (store, BK_DB_TASKS, id, 16, "\x81\xa2id", 4) == 0); //  cut short
    assert (bk_store_commit (store) == 0);
    assert (bk_upgrade_run (store, dir, 4, &stats, err, sizeof err) == -1);
    snprintf (want, sizeof want,
              "cannot upgrade store '%s' from layout 1 to 2: unreadable record in "
              "table 'tasks' under key '%s': it is not a msgpack map",
              dir, text);
    assert (strcmp (err, want) == 0);
    assert (bk_store_layout (store) == 1);
    assert (bk_store_begin (store, true) == 0);
    rig_v1_put (store, BK_DB_TASKS, id, 16, "{s:s, s:s, s:s, s:s, s:I, s:I, s:i}", "id", text,
                "teamId", text, "targetUrl", "http://x", "status", "pending", "createdAt", S_T0,
                "_seq", 99LL, "_cursor", 1);
    assert (bk_store_commit (store) == 0);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == -1);
    assert (strstr (err, "under key '") && strstr (err, "': unknown field '_cursor'"));
    assert (bk_store_begin (store, true) == 0);
    assert (bk_store_del (store, BK_DB_TASKS, id, 16) == 0);
    assert (bk_store_commit (store) == 0);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == 0);
    assert (stats.tasks == 10 && bk_store_layout (store) == 2);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);

    //  the scheduler's records: converted by the scheduler module
    //  (upgrade_sched.c tests them field by field), and known as converted
    //  by a second run
    store = s_test_store (dir, 4, true);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == 0);
    assert (stats.tasks == 4 && stats.teams == 3 && stats.left == 0);
    assert (stats.schedules == 1 && stats.runs == 1 && stats.run_keys == 2);
    assert (stats.converted == 18 && bk_store_layout (store) == 2);
    assert (s_test_all_v2 (store) == 18);
    s_test_dump (store, &before, S_TEST_SCHED);
    assert (bk_store_begin (store, true) == 0 && bk_store_set_layout (store, 1) == 0);
    assert (bk_store_commit (store) == 0);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == 0);
    assert (stats.converted == 0 && stats.schedules == 1 && stats.runs == 1);
    assert (stats.run_keys == 2 && bk_store_layout (store) == 2);
    s_test_dump (store, &dump, S_TEST_SCHED);
    assert (s_test_same (&before, &dump));
    aq_writer_release (&before);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);

    //  a new store is at layout 2 already: nothing to do
    store = bk_store_test_new (dir);
    bk_store_abort (store);
    assert (bk_upgrade_run (store, dir, 0, &stats, err, sizeof err) == 0);
    assert (stats.converted == 0 && stats.ms == 0);
    bk_store_destroy (&store);
    bk_store_test_remove (dir);

    s_test_fixture (verbose);
    aq_writer_release (&reference);
    aq_writer_release (&dump);
    if (verbose)
        printf ("bk_upgrade: ok\n");
}
