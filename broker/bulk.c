/*  bulk.c - bulk jobs: cancel or retry what a filter matches, a few tasks per turn

    A job's record is a msgpack map with small integer keys, J_VERSION the
    record's version (BK_TASK_RECORD, as for tasks): the keys below. Its
    filter is kept as the client gave it (a checked "filter" map) and read
    again each turn; its ids as 16-byte task ids one after another.
*/
#include "bulk.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "task_filter.h"
#include "task_request.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    J_VERSION = 0,
    J_ID,
    J_TEAM,
    J_ACTION,
    J_STATUS,
    J_FILTER,
    J_IDS,
    J_SEQ_HI,
    J_CURSOR,
    J_MATCHED,
    J_EXACT,
    J_DONE,
    J_FAILED,
    J_CREATED_AT,
    J_COMPLETED_AT
};

typedef enum { S_CANCEL = 1, S_RETRY } s_action_t;
typedef enum { S_RUNNING = 1, S_COMPLETED } s_status_t;

static const char *s_actions[] = {NULL, "cancel", "retry"};
static const char *s_statuses[] = {NULL, "running", "completed"};

typedef struct {
    uint8_t id[16];       //  the job
    uint8_t team[16];     //  whose
    int action;           //  s_action_t
    int status;           //  s_status_t
    uint8_t *filter;      //  the filter map as given (owned), NULL with ids
    size_t filter_size;   //  its length
    uint8_t *ids;         //  16-byte task ids (owned), NULL with a filter
    size_t nids;          //  how many
    uint64_t seq_hi;      //  the newest task when the job was made
    uint64_t cursor;      //  filter: the last seq walked; ids: how many done
    uint64_t matched;     //  see bulk.h
    bool exact;           //  matched is exact
    uint64_t done;        //  tasks that took the action
    uint64_t failed;      //  tasks that could not
    int64_t created_at;   //  ms
    int64_t completed_at; //  ms, -1 while running
} s_job_t;

struct _bk_bulk_t {
    bk_engine_t *engine; //  borrowed
    bk_leases_t *leases; //  borrowed: a retried task's delivery still out ends its lease
    bool busy;           //  a job runs
    uint8_t last[16];    //  the job served last (turns go round the jobs)
};

bk_bulk_t *bk_bulk_new (bk_engine_t *engine, bk_leases_t *leases) {
    bk_bulk_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    self->leases = leases;
    self->busy = true; //  until bk_bulk_run finds none
    return self;
}

void bk_bulk_destroy (bk_bulk_t **self_p) {
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool bk_bulk_busy (bk_bulk_t *self) {
    return self->busy;
}

void bk_bulk_recover (bk_bulk_t *self) {
    bk_cursor_t *cursor = bk_cursor_open (self->engine->store, BK_DB_BULK_RUNNING);
    bk_val_t k;
    self->busy = !cursor || bk_cursor_seek (cursor, NULL, 0, &k, NULL) == 0;
    bk_cursor_close (&cursor);
}

static void s_job_release (s_job_t *job) {
    free (job->filter);
    free (job->ids);
    memset (job, 0, sizeof *job);
}

//  --------------------------------------------------------------------------
//  The record

static int s_save (bk_bulk_t *self, const s_job_t *job) {
    aq_writer_t w;
    aq_writer_init (&w);
    size_t mark = aq_write_map_open (&w);
    uint32_t n = 0;
#define KV(key, write)                                                                             \
    do {                                                                                           \
        aq_write_int (&w, key);                                                                    \
        write;                                                                                     \
        n++;                                                                                       \
    } while (0)
    KV (J_VERSION, aq_write_int (&w, BK_TASK_RECORD));
    KV (J_ID, aq_write_bin (&w, job->id, 16));
    KV (J_TEAM, aq_write_bin (&w, job->team, 16));
    KV (J_ACTION, aq_write_int (&w, job->action));
    KV (J_STATUS, aq_write_int (&w, job->status));
    if (job->filter)
        KV (J_FILTER, aq_write_raw (&w, job->filter, job->filter_size));
    if (job->ids)
        KV (J_IDS, aq_write_bin (&w, job->ids, 16 * job->nids));
    KV (J_SEQ_HI, aq_write_uint (&w, job->seq_hi));
    KV (J_CURSOR, aq_write_uint (&w, job->cursor));
    KV (J_MATCHED, aq_write_uint (&w, job->matched));
    KV (J_EXACT, aq_write_bool (&w, job->exact));
    KV (J_DONE, aq_write_uint (&w, job->done));
    KV (J_FAILED, aq_write_uint (&w, job->failed));
    KV (J_CREATED_AT, aq_write_int (&w, job->created_at));
    if (job->completed_at >= 0)
        KV (J_COMPLETED_AT, aq_write_int (&w, job->completed_at));
#undef KV
    aq_write_map_close (&w, mark, n);
    int rc = bk_store_put_writer (self->engine->store, BK_DB_BULK, job->id, 16, &w);
    aq_writer_release (&w);
    return rc;
}

static void *s_dup (const void *data, size_t size) {
    void *copy = malloc (size ? size : 1);
    assert (copy);
    memcpy (copy, data, size);
    return copy;
}

//  The job stored under id into *job (caller releases): 0, or -1 when
//  there is none or its record is not one this build reads.
static int s_load (bk_bulk_t *self, const uint8_t id[16], s_job_t *job) {
    memset (job, 0, sizeof *job);
    job->completed_at = -1;
    bk_val_t val;
    aq_node_t record, key, value;
    if (bk_store_get (self->engine->store, BK_DB_BULK, id, 16, &val) != 0 ||
        aq_msg_parse (val.data, val.size, &record) != 0 || record.type != AQ_NODE_MAP)
        return -1;
    bool versioned = false;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    while (aq_iter_next (&it, &key, &value)) {
        uint64_t u = value.type == AQ_NODE_INT ? value.u : 0;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case J_VERSION:
            versioned = value.type == AQ_NODE_INT && value.i == BK_TASK_RECORD;
            break;
        case J_ID:
        case J_TEAM:
            if (value.type == AQ_NODE_BIN && value.count == 16)
                memcpy (key.i == J_ID ? job->id : job->team, value.data, 16);
            break;
        case J_ACTION:
            job->action = (int) u;
            break;
        case J_STATUS:
            job->status = (int) u;
            break;
        case J_FILTER:
            if (value.type == AQ_NODE_MAP) {
                job->filter = s_dup (value.raw, value.raw_size);
                job->filter_size = value.raw_size;
            }
            break;
        case J_IDS:
            if (value.type == AQ_NODE_BIN && value.count % 16 == 0) {
                job->ids = s_dup (value.data, value.count);
                job->nids = value.count / 16;
            }
            break;
        case J_SEQ_HI:
            job->seq_hi = u;
            break;
        case J_CURSOR:
            job->cursor = u;
            break;
        case J_MATCHED:
            job->matched = u;
            break;
        case J_EXACT:
            job->exact = value.type == AQ_NODE_BOOL && value.b;
            break;
        case J_DONE:
            job->done = u;
            break;
        case J_FAILED:
            job->failed = u;
            break;
        case J_CREATED_AT:
            job->created_at = value.type == AQ_NODE_INT ? value.i : 0;
            break;
        case J_COMPLETED_AT:
            job->completed_at = value.type == AQ_NODE_INT ? value.i : -1;
            break;
        }
    }
    bool ok = versioned && job->action >= S_CANCEL && job->action <= S_RETRY &&
              job->status >= S_RUNNING && job->status <= S_COMPLETED &&
              (job->filter != NULL) != (job->ids != NULL);
    if (!ok)
        s_job_release (job);
    return ok ? 0 : -1;
}

//  The job as clients see it: {id, action, status, matched, done, failed,
//  createdAt, completedAt?, matchedExact?, filter? | ids?} into w.
static void s_public (const s_job_t *job, aq_writer_t *w) {
    char text[AQ_UUID_TEXT], stamp[32];
    bool lower = !job->exact && job->status == S_RUNNING;
    aq_write_map (w, 8 + (job->completed_at >= 0) + lower);
    aq_write_kv_str (w, "id", aq_uuid_format (job->id, text));
    aq_write_kv_str (w, "action", s_actions[job->action]);
    aq_write_kv_str (w, "status", s_statuses[job->status]);
    aq_write_kv_int (w, "matched", (int64_t) job->matched);
    if (lower)
        aq_write_kv_bool (w, "matchedExact", false);
    aq_write_kv_int (w, "done", (int64_t) job->done);
    aq_write_kv_int (w, "failed", (int64_t) job->failed);
    aq_write_kv_str (w, "createdAt", aq_time_format (job->created_at, stamp));
    if (job->completed_at >= 0)
        aq_write_kv_str (w, "completedAt", aq_time_format (job->completed_at, stamp));
    if (job->filter) {
        aq_write_str (w, "filter");
        aq_write_raw (w, job->filter, job->filter_size);
    } else {
        aq_write_str (w, "ids");
        aq_write_int (w, (int64_t) job->nids);
    }
}

//  --------------------------------------------------------------------------
//  Commands

//  The ids array (1 to BK_BULK_IDS task ids) into job, duplicates dropped;
//  false when it is not one.
static bool s_ids (const aq_node_t *ids, s_job_t *job) {
    if (ids->type != AQ_NODE_ARRAY || ids->count < 1 || ids->count > BK_BULK_IDS)
        return false;
    job->ids = malloc (16 * (size_t) ids->count);
    assert (job->ids);
    aq_iter_t it;
    aq_node_t item;
    char text[AQ_UUID_TEXT];
    for (aq_node_iter (ids, &it); aq_iter_next (&it, NULL, &item);) {
        uint8_t id[16];
        if (!aq_node_strcpy (&item, text, sizeof text) || aq_uuid_parse (text, id) != 0)
            return false;
        bool seen = false;
        for (size_t i = 0; i < job->nids && !seen; i++)
            seen = memcmp (job->ids + 16 * i, id, 16) == 0;
        if (!seen)
            memcpy (job->ids + 16 * job->nids++, id, 16);
    }
    return true;
}

//  How many tasks the job's filter matches now, exact or a lower bound.
static void s_count (bk_bulk_t *self, s_job_t *job, const bk_task_filter_t *filter) {
    bk_task_query_t *query = bk_task_query_new (self->engine->store, job->team, filter);
    job->exact = bk_task_query_counted (query, &job->matched);
    if (!job->exact) {
        aq_writer_t sink;
        aq_writer_init (&sink);
        bool more;
        bk_task_query_page (query, true, 0, 0, BK_QUERY_BUDGET, &sink, &job->matched, &job->exact,
                            &more);
        aq_writer_release (&sink);
    }
    bk_task_query_destroy (&query);
}

static void s_create (bk_bulk_t *self, bk_req_t *req) {
    static const char *const fields[] = {"action", "filter", "ids", NULL};
    aq_node_t bulk, action, filter, ids;
    char errbuf[256];
    const char *error = NULL;
    s_job_t job = {.completed_at = -1};
    bk_task_filter_t parsed;
    if (!bk_req_get (req, "bulk", &bulk) || bulk.type != AQ_NODE_MAP)
        error = "Request body must be a JSON object";
    else
        error = bk_task_unknown_field (&bulk, fields, "", errbuf, sizeof errbuf);
    if (error)
        ;
    else if (!aq_node_get (&bulk, "action", &action) ||
             !(aq_node_streq (&action, "cancel") || aq_node_streq (&action, "retry")))
        error = "action must be one of: cancel, retry";
    else {
        bool by_filter = aq_node_get (&bulk, "filter", &filter) && !aq_node_is_nil (&filter);
        bool by_ids = aq_node_get (&bulk, "ids", &ids) && !aq_node_is_nil (&ids);
        if (by_filter && by_ids)
            error = "filter and ids cannot be used together";
        else if (!by_filter && !by_ids)
            error = "filter or ids is required";
        else if (by_ids && !s_ids (&ids, &job))
            error = "ids must be an array of 1 to 1000 task ids";
        else if (by_filter)
            error = bk_task_filter_map (&parsed, &filter, errbuf, sizeof errbuf);
        if (!error && by_filter) {
            job.filter = s_dup (filter.raw, filter.raw_size);
            job.filter_size = filter.raw_size;
        }
    }
    if (error) {
        bk_req_error (req, AQ_BAD_REQUEST, error);
        s_job_release (&job);
        return;
    }
    bk_engine_t *engine = self->engine;
    aq_uuid_new (job.id);
    memcpy (job.team, req->team, 16);
    job.action = aq_node_streq (&action, "cancel") ? S_CANCEL : S_RETRY;
    job.status = S_RUNNING;
    job.seq_hi = engine->seq; //  the tasks there are now
    job.created_at = engine->now;
    if (job.ids) {
        job.matched = job.nids;
        job.exact = true;
    } else
        s_count (self, &job, &parsed);
    int rc = s_save (self, &job);
    if (rc == 0)
        rc = bk_store_put (engine->store, BK_DB_BULK_RUNNING, job.id, 16, "", 0);
    if (rc == 0) {
        self->busy = true;
        s_public (&job, bk_req_named (req, AQ_ACCEPTED, "bulk"));
        bk_req_done (req);
    } else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    s_job_release (&job);
}

static void s_get (bk_bulk_t *self, bk_req_t *req) {
    char text[AQ_UUID_TEXT];
    uint8_t id[16];
    s_job_t job;
    if (!bk_req_str (req, "id", text, sizeof text) || aq_uuid_parse (text, id) != 0 ||
        s_load (self, id, &job) != 0) {
        bk_req_error (req, AQ_NOT_FOUND, "Bulk job not found");
        return;
    }
    if (memcmp (job.team, req->team, 16) != 0)
        bk_req_error (req, AQ_NOT_FOUND, "Bulk job not found");
    else {
        s_public (&job, bk_req_named (req, AQ_OK, "bulk"));
        bk_req_done (req);
    }
    s_job_release (&job);
}

void bk_bulk_command (bk_bulk_t *self, bk_req_t *req, int cmd) {
    if (cmd == AQ_CMD_TASK_BULK)
        s_create (self, req);
    else
        s_get (self, req);
}

//  --------------------------------------------------------------------------
//  The work

//  Takes the action on one task of the job's; counts how it went. A store
//  error fails the turn's commit: the turn's work is then done again.
static void s_act (bk_bulk_t *self, s_job_t *job, const uint8_t id[16]) {
    bk_task_t *task = bk_engine_load (self->engine, id);
    int rc = BK_ENGINE_REFUSED;
    if (task && memcmp (task->team, job->team, 16) == 0)
        rc = job->action == S_CANCEL ? bk_engine_cancel (self->engine, task)
                                     : bk_engine_retry (self->engine, task, self->leases);
    if (rc == 0)
        job->done++;
    else
        job->failed++;
    bk_task_destroy (&task);
}

//  Microseconds on the monotonic clock.
static int64_t s_now_us (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct {
    uint64_t seqs[BK_BULK_TASKS];   //  the matches of this turn
    uint8_t ids[BK_BULK_TASKS][16]; //  their tasks
    size_t n;                       //  how many
} s_batch_t;

static int s_collect (void *arg, uint64_t seq, const uint8_t id[16], bk_task_t *task) {
    s_batch_t *batch = arg;
    batch->seqs[batch->n] = seq;
    memcpy (batch->ids[batch->n++], id, 16);
    return batch->n == BK_BULK_TASKS;
}

//  One turn of a job by filter until the clock passes until (us): returns
//  true when it has met every match.
static bool s_filter_turn (bk_bulk_t *self, s_job_t *job, s_batch_t *batch, int64_t until) {
    aq_node_t map;
    bk_task_filter_t filter;
    char errbuf[256];
    if (aq_msg_parse (job->filter, job->filter_size, &map) != 0 ||
        bk_task_filter_map (&filter, &map, errbuf, sizeof errbuf) != NULL)
        return true; //  a record this build cannot read: nothing more to do
    bk_task_query_t *query = bk_task_query_new (self->engine->store, job->team, &filter);
    int64_t budget = BK_BULK_BUDGET;
    batch->n = 0;
    int rc =
        bk_task_query_walk (query, true, job->cursor + 1, job->seq_hi, &budget, s_collect, batch);
    uint64_t reached = bk_task_query_reached (query);
    bk_task_query_destroy (&query);
    size_t acted = 0;
    while (acted < batch->n && (acted == 0 || s_now_us () < until))
        s_act (self, job, batch->ids[acted++]);
    if (acted < batch->n) { //  out of time: the rest is the next turn's
        job->cursor = batch->seqs[acted - 1];
        return false;
    }
    if (rc == BK_WALK_STOP)
        job->cursor = batch->seqs[batch->n - 1];
    else if (rc == BK_WALK_BUDGET && reached > job->cursor)
        job->cursor = reached; //  every entry up to it was seen
    return rc == BK_WALK_END || rc < 0;
}

void bk_bulk_run (bk_bulk_t *self, int64_t budget_us) {
    if (!self->busy)
        return;
    int64_t until = s_now_us () + budget_us;
    bk_store_t *store = self->engine->store;
    bk_cursor_t *cursor = bk_cursor_open (store, BK_DB_BULK_RUNNING);
    bk_val_t k;
    uint8_t after[17];
    memcpy (after, self->last, 16);
    after[16] = 0; //  the first key after the job served last, or the first
    int rc = cursor ? bk_cursor_seek (cursor, after, 17, &k, NULL) : BK_ESTORE;
    if (rc == BK_NOTFOUND)
        rc = bk_cursor_seek (cursor, NULL, 0, &k, NULL);
    uint8_t id[16];
    bool found = rc == 0 && k.size == 16;
    if (found)
        memcpy (id, k.data, 16);
    bk_cursor_close (&cursor);
    if (!found) {
        self->busy = rc != BK_NOTFOUND;
        return;
    }
    memcpy (self->last, id, 16);
    s_job_t job;
    if (s_load (self, id, &job) != 0 || job.status != S_RUNNING) {
        bk_store_del (store, BK_DB_BULK_RUNNING, id, 16); //  unreadable or over: drop it
        return;
    }
    bool over;
    if (job.ids) {
        size_t end = job.cursor + BK_BULK_TASKS < job.nids ? job.cursor + BK_BULK_TASKS : job.nids;
        size_t i = job.cursor;
        while (i < end && (i == job.cursor || s_now_us () < until))
            s_act (self, &job, job.ids + 16 * i++);
        job.cursor = i;
        over = i == job.nids;
    } else {
        s_batch_t *batch = malloc (sizeof *batch);
        assert (batch);
        over = s_filter_turn (self, &job, batch, until);
        free (batch);
    }
    if (over) {
        job.status = S_COMPLETED;
        job.completed_at = self->engine->now;
        job.matched = job.done + job.failed; //  the tasks it met
        job.exact = true;
        bk_store_del (store, BK_DB_BULK_RUNNING, id, 16);
    } else if (job.done + job.failed > job.matched)
        job.matched = job.done + job.failed; //  a lower bound passed
    s_save (self, &job);
    s_job_release (&job);
}

//  --------------------------------------------------------------------------
//  Selftest

#include "aq_json.h"
#include <zmq.h>

//  Sends cmd with json's fields as team; returns the new job's id (the
//  one BK_DB_BULK_RUNNING holds last) or NULL when it was refused.
static void *s_test_socket;           //  the answers go there (never sent)
#define S_TEST_FOREVER (60 * 1000000) //  a turn's time: all BK_BULK_TASKS

static const uint8_t *s_test_create (bk_bulk_t *self, bk_outbox_t *outbox, const uint8_t team[16],
                                     const char *json) {
    static uint8_t id[16];
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (json, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_req_t req = {
        .outbox = outbox, .socket = s_test_socket, .rid = (const uint8_t *) "peer", .rid_size = 4};
    assert (aq_msg_parse (data, size, &req.body) == 0);
    memcpy (req.team, team, 16);
    size_t before = bk_outbox_size (outbox);
    bk_bulk_command (self, &req, AQ_CMD_TASK_BULK);
    assert (bk_outbox_size (outbox) == before + 1); //  answered once
    aq_writer_release (&w);
    bk_cursor_t *cursor = bk_cursor_open (self->engine->store, BK_DB_BULK_RUNNING);
    bk_val_t k;
    const uint8_t *found = NULL;
    if (bk_cursor_last (cursor, &k, NULL) == 0 && memcmp (k.data, id, 16) != 0) {
        memcpy (id, k.data, 16);
        found = id;
    }
    bk_cursor_close (&cursor);
    return found;
}

static s_job_t s_test_job (bk_bulk_t *self, const uint8_t id[16]) {
    s_job_t job;
    assert (s_load (self, id, &job) == 0);
    return job;
}

void bk_bulk_test (bool verbose) {
    void *ctx = zmq_ctx_new ();
    s_test_socket = zmq_socket (ctx, ZMQ_ROUTER);
    char dir[BK_STORE_TEST_DIR];
    bk_store_t *store = bk_store_test_new (dir);
    bk_outbox_t *outbox = bk_outbox_new (NULL, 0);
    bk_config_t cfg;
    bk_config_defaults (&cfg);
    bk_engine_t *engine = bk_engine_new (&cfg, store, outbox, NULL);
    bk_engine_clock (engine, 1705314600000, 0);
    bk_bulk_t *bulk = bk_bulk_new (engine, NULL);
    bk_bulk_recover (bulk);
    assert (!bk_bulk_busy (bulk));
    bk_bulk_run (bulk, S_TEST_FOREVER); //  nothing to do
    uint8_t team[16], other[16];
    aq_uuid_new (team);
    aq_uuid_new (other);
    //  450 failed tasks labelled run=a, 10 of them completed; 5 of another team
    uint8_t first[16], done_id[16];
    for (int i = 0; i < 465; i++) {
        bk_task_t *task = bk_task_new (0);
        aq_uuid_new (task->id);
        memcpy (task->team, i < 460 ? team : other, 16);
        task->seq = ++engine->seq;
        task->status = i % 46 == 45 ? BK_ST_COMPLETED : BK_ST_FAILED;
        task->target_url = bk_task_strdup (task, "http://h/x");
        task->priority = 5;
        task->created_at = engine->now;
        aq_writer_t w;
        aq_writer_init (&w);
        aq_write_map (&w, 1), aq_write_kv_str (&w, "run", "a");
        size_t size;
        const uint8_t *data = aq_writer_data (&w, &size);
        bk_task_set_blob (task, &task->labels, data, size);
        aq_writer_release (&w);
        assert (bk_tasks_save (store, task, 0) == 0);
        if (i == 0)
            memcpy (first, task->id, 16);
        if (i == 45)
            memcpy (done_id, task->id, 16);
        bk_task_destroy (&task);
    }
    //  refused
    assert (!s_test_create (bulk, outbox, team, "{\"bulk\": {\"action\": \"retry\"}}"));
    assert (!s_test_create (bulk, outbox, team, "{\"bulk\": {\"action\": \"x\", \"ids\": []}}"));
    //  by filter: counted exactly, then 200 a turn
    const uint8_t *id = s_test_create (
        bulk, outbox, team,
        "{\"bulk\": {\"action\": \"retry\", \"filter\": {\"labels\": {\"run\": \"a\"}}}}");
    assert (id && bk_bulk_busy (bulk));
    uint8_t job_id[16];
    memcpy (job_id, id, 16);
    s_job_t job = s_test_job (bulk, job_id);
    assert (job.status == S_RUNNING && job.matched == 460 && job.exact && job.seq_hi == 465);
    s_job_release (&job);
    bk_bulk_run (bulk, S_TEST_FOREVER);
    job = s_test_job (bulk, job_id);
    assert (job.status == S_RUNNING && job.done + job.failed == BK_BULK_TASKS);
    assert (job.cursor == BK_BULK_TASKS); //  seqs 1..200 walked
    s_job_release (&job);
    bk_task_t *task = bk_tasks_get (store, first);
    assert (task && task->status == BK_ST_PENDING);
    bk_task_destroy (&task);
    bk_bulk_run (bulk, 0); //  no time: one task, so every turn moves on
    job = s_test_job (bulk, job_id);
    assert (job.status == S_RUNNING && job.done + job.failed == BK_BULK_TASKS + 1);
    assert (job.cursor == BK_BULK_TASKS + 1);
    s_job_release (&job);
    bk_bulk_run (bulk, S_TEST_FOREVER);
    bk_bulk_run (bulk, S_TEST_FOREVER);
    job = s_test_job (bulk, job_id);
    assert (job.status == S_COMPLETED && job.done == 450 && job.failed == 10 && job.matched == 460);
    assert (job.completed_at == engine->now);
    aq_writer_t w;
    aq_writer_init (&w);
    s_public (&job, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t shown;
    assert (aq_msg_parse (data, size, &shown) == 0);
    char *text = aq_json_dumps (&shown);
    assert (text && strstr (text, "\"status\":\"completed\"") && strstr (text, "\"done\":450") &&
            strstr (text, "\"filter\":{\"labels\":{\"run\":\"a\"}}") && !strstr (text, "Exact"));
    free (text);
    aq_writer_release (&w);
    s_job_release (&job);
    bk_bulk_run (bulk, S_TEST_FOREVER); //  finds none running
    assert (!bk_bulk_busy (bulk));

    //  by ids: a completed task, an unknown id, another team's, one given twice
    char json[512], a[AQ_UUID_TEXT], b[AQ_UUID_TEXT];
    snprintf (json, sizeof json,
              "{\"bulk\": {\"action\": \"cancel\", \"ids\": [\"%s\", \"%s\", "
              "\"01a2ffff-0000-7000-8000-000000000000\", \"%s\"]}}",
              aq_uuid_format (first, a), aq_uuid_format (done_id, b), a);
    id = s_test_create (bulk, outbox, team, json);
    assert (id);
    memcpy (job_id, id, 16);
    job = s_test_job (bulk, job_id);
    assert (job.nids == 3 && job.matched == 3);
    s_job_release (&job);
    bk_bulk_run (bulk, S_TEST_FOREVER);
    job = s_test_job (bulk, job_id);
    assert (job.status == S_COMPLETED && job.done == 1 && job.failed == 2);
    s_job_release (&job);
    task = bk_tasks_get (store, first);
    assert (task && task->status == BK_ST_CANCELLED);
    bk_task_destroy (&task);

    //  a job survives the object: a new one finds it running
    id =
        s_test_create (bulk, outbox, other,
                       "{\"bulk\": {\"action\": \"retry\", \"filter\": {\"status\": \"failed\"}}}");
    assert (id);
    bk_bulk_destroy (&bulk);
    bulk = bk_bulk_new (engine, NULL);
    bk_bulk_recover (bulk);
    assert (bk_bulk_busy (bulk));
    bk_bulk_run (bulk, S_TEST_FOREVER);
    job = s_test_job (bulk, id);
    assert (job.status == S_COMPLETED && job.done == 5);
    s_job_release (&job);

    bk_bulk_destroy (&bulk);
    bk_engine_destroy (&engine);
    bk_outbox_destroy (&outbox);
    bk_store_test_destroy (&store, dir);
    zmq_close (s_test_socket);
    zmq_ctx_term (ctx);
    if (verbose)
        printf ("bk_bulk: ok\n");
}
