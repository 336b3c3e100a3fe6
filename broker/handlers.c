/*  handlers.c - the client commands: who may send each, and its answer */
#include "handlers.h"
#include "admin.h"
#include "aq_proto.h"
#include "aq_uuid.h"
#include "delay.h"
#include "figures.h"
#include "request.h"
#include "task_filter.h"
#include "task_request.h"
#include "tasks.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_IDEM_TTL   (24 * 3600000LL) //  an Idempotency-Key replays for a day
#define S_IDEM_MAX   255              //  and is at most this long
#define S_IDEM_BATCH 0xFF             //  before a batch's key: its own namespace
#define S_MAX_WAIT_S 25               //  GET ?wait=N
#define S_BATCH_MAX  1000             //  tasks in one POST /v1/tasks/batch

struct _bk_handlers_t {
    bk_engine_t *engine;       //  borrowed
    bk_keys_t *keys;           //  borrowed
    bk_limits_t *limits;       //  owned: the teams' request buckets
    bk_dispatch_t *dispatch;   //  borrowed: workers and leases
    bk_scheduler_t *scheduler; //  borrowed
    bk_sockets_t *sockets;     //  borrowed: refused connections, for STATS
    bk_bulk_t *bulk;           //  borrowed: bulk jobs
    bk_figures_t *figures;     //  owned: STATS answers and their long polls
    char admin[80];            //  the admin token
};

bk_handlers_t *bk_handlers_new (bk_engine_t *engine, bk_keys_t *keys, bk_dispatch_t *dispatch,
                                bk_scheduler_t *scheduler, bk_sockets_t *sockets, bk_bulk_t *bulk,
                                const char *admin) {
    bk_handlers_t *self = calloc (1, sizeof *self);
    assert (self);
    self->engine = engine;
    self->keys = keys;
    self->limits = bk_limits_new ();
    self->dispatch = dispatch;
    self->scheduler = scheduler;
    self->sockets = sockets;
    self->bulk = bulk;
    self->figures = bk_figures_new (engine, dispatch, sockets);
    snprintf (self->admin, sizeof self->admin, "%s", admin);
    return self;
}

void bk_handlers_destroy (bk_handlers_t **self_p) {
    assert (self_p);
    bk_handlers_t *self = *self_p;
    if (!self)
        return;
    bk_limits_destroy (&self->limits);
    bk_figures_destroy (&self->figures);
    sodium_memzero (self->admin, sizeof self->admin);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Credentials

//  True when text (a node) is the admin token, compared in constant time.
static bool s_is_admin (bk_handlers_t *self, const aq_node_t *text) {
    size_t length = strlen (self->admin);
    return aq_node_is_str (text) && text->count == length &&
           sodium_memcmp (text->data, self->admin, length) == 0;
}

//  The admin token in the request's "admin"; answers and returns -1 when
//  it is absent or wrong.
static int s_admin (bk_handlers_t *self, bk_req_t *req) {
    aq_node_t token;
    bool given = bk_req_get (req, "admin", &token);
    if (given && s_is_admin (self, &token))
        return 0;
    bk_req_error (req, AQ_UNAUTH, given ? "Invalid admin token" : "Admin token required");
    return -1;
}

//  Checks the API key (write: a full-scope one) and takes the team's rate
//  limit; answers and returns -1 when the caller may not go on.
static int s_authenticate (bk_handlers_t *self, bk_req_t *req, bool write) {
    char key[256];
    if (!bk_req_str (req, "key", key, sizeof key) || !*key) {
        aq_node_t given;
        bool present = bk_req_get (req, "key", &given) && aq_node_is_str (&given) && given.count;
        bk_req_error (req, AQ_UNAUTH, present ? "Invalid or revoked API key" : "API key required");
        return -1;
    }
    if (bk_keys_check (self->keys, key, req->team, &req->read_only) != 0) {
        bk_req_error (req, AQ_UNAUTH, "Invalid or revoked API key");
        return -1;
    }
    if (write && req->read_only) {
        bk_req_error (req, AQ_FORBIDDEN, "Access denied");
        return -1;
    }
    double rps = self->engine->cfg->rate_limit_rps, burst = self->engine->cfg->rate_limit_burst;
    bk_keys_rate_limit (self->keys, req->team, &rps, &burst);
    int retry_after = 1;
    if (!bk_limits_take (self->limits, req->team, rps, burst, self->engine->mono, &retry_after)) {
        aq_writer_t *w = bk_outbox_reply_start (req->outbox, req->corr, AQ_TOO_MANY);
        aq_write_kv_str (w, "error", "Rate limit exceeded. Upgrade your plan for higher limits.");
        aq_write_kv_int (w, "retryAfter", retry_after);
        bk_outbox_reply_queue (req->outbox, req->socket, req->rid, req->rid_size, 2);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Task commands

//  Answers {"task": ...} with status.
static void s_answer_task (bk_req_t *req, int status, const bk_task_t *task) {
    bk_task_write_public (task, bk_req_named (req, status, "task"));
    bk_req_done (req);
}

//  The task the request's "id" names, if it is the caller's team's; else
//  answers 404 "Task not found" and returns NULL.
static bk_task_t *s_own (bk_handlers_t *self, bk_req_t *req) {
    char text[AQ_UUID_TEXT];
    uint8_t id[16];
    bk_task_t *task = NULL;
    if (bk_req_str (req, "id", text, sizeof text) && aq_uuid_parse (text, id) == 0)
        task = bk_engine_load (self->engine, id);
    if (task && memcmp (task->team, req->team, 16) != 0)
        bk_task_destroy (&task);
    if (!task)
        bk_req_error (req, AQ_NOT_FOUND, "Task not found");
    return task;
}

//  Answers with a task a request changed and saved (rc: how that went),
//  or with 503 when the store failed. Takes the task.
static void s_answer_saved (bk_handlers_t *self, bk_req_t *req, bk_task_t **task_p, int rc) {
    if (rc == 0)
        s_answer_task (req, AQ_OK, *task_p);
    else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    bk_task_destroy (task_p);
}

//  409 "Task cannot be <done> in status <status>". Takes the task.
static void s_conflict (bk_req_t *req, bk_task_t **task_p, const char *done) {
    char error[128];
    snprintf (error, sizeof error, "Task cannot be %s in status %s", done,
              bk_status_name ((*task_p)->status));
    bk_req_error (req, AQ_CONFLICT, error);
    bk_task_destroy (task_p);
}

//  The request's Idempotency-Key as its BK_DB_IDEM key (team, then the
//  key; a batch's after S_IDEM_BATCH) into key: its size, 0 without one,
//  -1 after answering 400.
static int s_idem_key (bk_req_t *req, bool batch, uint8_t key[17 + S_IDEM_MAX]) {
    aq_node_t idem;
    if (!bk_req_get (req, "idem", &idem) || !aq_node_is_str (&idem) || idem.count == 0)
        return 0;
    if (idem.count > S_IDEM_MAX) {
        bk_req_error (req, AQ_BAD_REQUEST, "Idempotency-Key must be at most 255 characters");
        return -1;
    }
    size_t size = 0;
    memcpy (key, req->team, 16), size += 16;
    if (batch)
        key[size++] = S_IDEM_BATCH;
    memcpy (key + size, idem.data, idem.count);
    return (int) (size + idem.count);
}

//  The task joins the creator's trace: the request's traceparent (and
//  tracestate) when the gateway passed one, else one among the task's own
//  headers, else a fresh trace (trace.h).
static void s_trace_of_request (bk_req_t *req, bk_task_t *task) {
    aq_node_t traceparent, tracestate;
    bool traced = bk_req_get (req, "traceparent", &traceparent);
    if (!bk_req_get (req, "tracestate", &tracestate))
        tracestate.type = AQ_NODE_NIL;
    bk_task_set_trace (task, traced ? &traceparent : NULL, &tracestate);
}

static void s_task_create (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_engine_t *engine = self->engine;
    aq_node_t request;
    uint8_t key[17 + S_IDEM_MAX];
    int key_size = s_idem_key (req, false, key);
    if (key_size < 0)
        return;
    if (key_size) {
        bk_val_t val;
        if (bk_store_get (engine->store, BK_DB_IDEM, key, (size_t) key_size, &val) == 0 &&
            val.size == 24) {
            int64_t created;
            uint8_t id[16];
            memcpy (id, val.data, 16);
            memcpy (&created, (const uint8_t *) val.data + 16, 8);
            bk_task_t *first =
                created + S_IDEM_TTL > engine->now ? bk_engine_load (engine, id) : NULL;
            if (first) {
                s_answer_task (req, AQ_OK, first);
                bk_task_destroy (&first);
                return;
            }
        }
    }
    if (!bk_req_get (req, "task", &request))
        request.type = AQ_NODE_NIL;
    char errbuf[256];
    bk_task_t *task = bk_engine_build (engine, req->team, &request, errbuf, sizeof errbuf);
    if (!task) {
        bk_req_error (req, AQ_BAD_REQUEST, errbuf);
        return;
    }
    s_trace_of_request (req, task);
    int rc = bk_engine_insert (engine, task);
    if (rc == 0 && key_size) {
        uint8_t val[24];
        memcpy (val, task->id, 16);
        memcpy (val + 16, &engine->now, 8);
        rc = bk_store_put (engine->store, BK_DB_IDEM, key, (size_t) key_size, val, sizeof val);
    }
    if (rc == 0)
        s_answer_task (req, AQ_CREATED, task);
    else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    bk_task_destroy (&task);
}

//  Answers {"tasks": [...]} with status, the tasks in order.
static void s_answer_tasks (bk_req_t *req, int status, bk_task_t **tasks, size_t n) {
    aq_writer_t *w = bk_req_named (req, status, "tasks");
    aq_write_array (w, (uint32_t) n);
    for (size_t i = 0; i < n; i++)
        bk_task_write_public (tasks[i], w);
    bk_req_done (req);
}

//  A batch's Idempotency-Key seen within a day: answers 200 with its tasks
//  as they are now and returns true. val: created ms(8), then the ids.
static bool s_batch_replay (bk_handlers_t *self, bk_req_t *req, const bk_val_t *val) {
    int64_t created;
    if (val->size < 8 || (val->size - 8) % 16)
        return false;
    memcpy (&created, val->data, 8);
    size_t n = (val->size - 8) / 16;
    if (created + S_IDEM_TTL <= self->engine->now || n == 0 || n > S_BATCH_MAX)
        return false;
    bk_task_t **tasks = calloc (n, sizeof *tasks);
    assert (tasks);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        memcpy (id, (const uint8_t *) val->data + 8 + 16 * i, 16);
        if ((tasks[found] = bk_engine_load (self->engine, id)))
            found++;
    }
    if (found == n)
        s_answer_tasks (req, AQ_OK, tasks, n);
    for (size_t i = 0; i < found; i++)
        bk_task_destroy (&tasks[i]);
    free (tasks);
    return found == n;
}

//  POST /v1/tasks/batch: every task checked first; one bad, 400 naming it
//  and nothing created; else all created in this turn's transaction.
static void s_task_batch (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_engine_t *engine = self->engine;
    uint8_t key[17 + S_IDEM_MAX];
    int key_size = s_idem_key (req, true, key);
    bk_val_t val;
    if (key_size < 0 ||
        (key_size && bk_store_get (engine->store, BK_DB_IDEM, key, (size_t) key_size, &val) == 0 &&
         s_batch_replay (self, req, &val)))
        return;
    static const char *const fields[] = {"tasks", NULL};
    aq_node_t batch, list, item;
    char errbuf[512], message[600];
    const char *error = NULL;
    if (!bk_req_get (req, "batch", &batch) || batch.type != AQ_NODE_MAP)
        error = "Request body must be a JSON object";
    else if (!(error = bk_task_unknown_field (&batch, fields, "", errbuf, sizeof errbuf)) &&
             !(aq_node_get (&batch, "tasks", &list) && list.type == AQ_NODE_ARRAY &&
               list.count >= 1 && list.count <= S_BATCH_MAX))
        error = "tasks must be an array of 1 to 1000 tasks";
    if (error) {
        bk_req_error (req, AQ_BAD_REQUEST, error);
        return;
    }
    bk_task_t **tasks = calloc (list.count, sizeof *tasks);
    assert (tasks);
    size_t n = 0;
    aq_iter_t it;
    for (aq_node_iter (&list, &it); aq_iter_next (&it, NULL, &item); n++) {
        tasks[n] = bk_engine_build (engine, req->team, &item, errbuf, sizeof errbuf);
        if (tasks[n])
            s_trace_of_request (req, tasks[n]);
        else {
            snprintf (message, sizeof message, "tasks[%zu]: %s", n, errbuf);
            aq_writer_t *w = bk_req_body (req, AQ_BAD_REQUEST);
            aq_write_map (w, 2);
            aq_write_kv_str (w, "error", message);
            aq_write_kv_int (w, "index", (int64_t) n);
            bk_req_done (req);
            goto out;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = bk_engine_insert (engine, tasks[i]);
    if (rc == 0 && key_size) {
        size_t size = 8 + 16 * n;
        uint8_t *ids = malloc (size);
        assert (ids);
        memcpy (ids, &engine->now, 8);
        for (size_t i = 0; i < n; i++)
            memcpy (ids + 8 + 16 * i, tasks[i]->id, 16);
        rc = bk_store_put (engine->store, BK_DB_IDEM, key, (size_t) key_size, ids, size);
        free (ids);
    }
    //  a failed insert fails the turn's commit too: nothing of the batch stays
    if (rc == 0)
        s_answer_tasks (req, AQ_CREATED, tasks, n);
    else
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
out:
    for (size_t i = 0; i < list.count; i++)
        bk_task_destroy (&tasks[i]);
    free (tasks);
}

static void s_task_get (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_task_t *task = s_own (self, req);
    if (!task)
        return;
    aq_node_t wait;
    int64_t seconds = 0;
    if (bk_req_get (req, "wait", &wait) && wait.type == AQ_NODE_INT)
        seconds = wait.i;
    char id[AQ_UUID_TEXT];
    aq_uuid_format (task->id, id);
    if (seconds < 0 || seconds > S_MAX_WAIT_S)
        bk_req_error (req, AQ_BAD_REQUEST, "wait must be a number between 0 and 25");
    else if (seconds > 0 && !bk_status_terminal (task->status) &&
             bk_waiters_add (self->engine->waiters, req->socket, req->rid, req->rid_size, req->corr,
                             id, self->engine->mono + seconds * 1000)) {
        //  held: answered on the next status change or at the deadline
    } else
        s_answer_task (req, AQ_OK, task);
    bk_task_destroy (&task);
}

//  limit (1..100, default 50) and offset (>= 0, default 0) of a list;
//  false after answering 400.
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

//  GET /v1/tasks: a page of the team's tasks matching the filter
//  (task_filter.h), counted from the indexes' counters or, when the
//  filter combines them, by a walk within BK_QUERY_BUDGET.
static void s_task_list (bk_handlers_t *self, bk_req_t *req, int cmd) {
    aq_node_t value;
    bk_task_filter_t filter;
    char errbuf[256];
    const char *error = bk_task_filter_query (&filter, &req->body, errbuf, sizeof errbuf);
    if (error) {
        bk_req_error (req, AQ_BAD_REQUEST, error);
        return;
    }
    int64_t limit, offset;
    if (!s_page_args (req, &limit, &offset))
        return;
    bool ascending = false;
    if (bk_req_get (req, "sortOrder", &value) && !aq_node_is_nil (&value)) {
        if (!aq_node_streq (&value, "asc") && !aq_node_streq (&value, "desc")) {
            bk_req_error (req, AQ_BAD_REQUEST, "sortOrder must be one of: asc, desc");
            return;
        }
        ascending = aq_node_streq (&value, "asc");
    }
    bk_task_query_t *query = bk_task_query_new (self->engine->store, req->team, &filter);
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    aq_write_map (w, 2);
    aq_write_str (w, "tasks");
    uint64_t total;
    bool exact, more;
    bk_task_query_page (query, ascending, offset, limit, BK_QUERY_BUDGET, w, &total, &exact, &more);
    bk_task_query_destroy (&query);
    aq_write_str (w, "pagination");
    aq_write_map (w, exact ? 4 : 5);
    aq_write_kv_int (w, "total", (int64_t) total);
    aq_write_kv_int (w, "limit", limit);
    aq_write_kv_int (w, "offset", offset);
    aq_write_kv_bool (w, "hasMore", more);
    if (!exact)
        aq_write_kv_bool (w, "totalExact", false);
    bk_req_done (req);
}

static void s_task_cancel (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_task_t *task = s_own (self, req);
    if (!task)
        return;
    int rc = bk_engine_cancel (self->engine, task);
    if (rc == BK_ENGINE_REFUSED)
        s_conflict (req, &task, "cancelled");
    else
        s_answer_saved (self, req, &task, rc);
}

static void s_task_retry (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_task_t *task = s_own (self, req);
    if (!task)
        return;
    int rc = bk_engine_retry (self->engine, task, bk_dispatch_leases (self->dispatch));
    if (rc == BK_ENGINE_REFUSED)
        s_conflict (req, &task, "retried");
    else
        s_answer_saved (self, req, &task, rc);
}

static void s_task_attempts (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_task_t *task = s_own (self, req);
    if (!task)
        return;
    bk_tasks_write_attempts (self->engine->store, task->id, bk_req_named (req, AQ_OK, "attempts"));
    bk_req_done (req);
    bk_task_destroy (&task);
}

//  BLAKE2b of a one-time token, in hex, into hex[65].
static void s_hash_hex (const char *token, char hex[65]) {
    uint8_t hash[32];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) token, strlen (token), NULL, 0);
    sodium_bin2hex (hex, 65, hash, sizeof hash);
}

//  POST /v1/tasks/:id/signal: with the team's key, or with the one-time
//  signal token the waiting call carried (then "key" holds "sig_...").
static void s_task_signal (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_engine_t *engine = self->engine;
    char key[80] = "";
    bool by_token = bk_req_str (req, "key", key, sizeof key) && strncmp (key, "sig_", 4) == 0;
    if (!by_token && s_authenticate (self, req, true) != 0)
        return;
    char text[AQ_UUID_TEXT];
    uint8_t id[16];
    bk_task_t *task = NULL;
    if (bk_req_str (req, "id", text, sizeof text) && aq_uuid_parse (text, id) == 0)
        task = bk_engine_load (engine, id);
    if (by_token) {
        char hash[65];
        s_hash_hex (key, hash);
        if (!task || strlen (task->signal) != 64 || sodium_memcmp (task->signal, hash, 64) != 0) {
            bk_req_error (req, AQ_UNAUTH, "Invalid or revoked API key");
            bk_task_destroy (&task);
            return;
        }
        memcpy (req->team, task->team, 16);
    } else if (task && memcmp (task->team, req->team, 16) != 0)
        bk_task_destroy (&task);
    if (!task) {
        bk_req_error (req, AQ_NOT_FOUND, "Task not found");
        return;
    }
    aq_node_t signal, outcome, result;
    static const char *const fields[] = {"status", "result", NULL};
    const char *error = NULL;
    char errbuf[128];
    if (!bk_req_get (req, "signal", &signal) || signal.type != AQ_NODE_MAP)
        error = "Request body must be a JSON object";
    else
        error = bk_task_unknown_field (&signal, fields, "", errbuf, sizeof errbuf);
    bool completed = false;
    if (!error && aq_node_get (&signal, "status", &outcome) &&
        (aq_node_streq (&outcome, "completed") || aq_node_streq (&outcome, "failed")))
        completed = aq_node_streq (&outcome, "completed");
    else if (!error)
        error = "status must be one of: completed, failed";
    if (error) {
        bk_req_error (req, AQ_BAD_REQUEST, error);
        bk_task_destroy (&task);
        return;
    }
    int status = task->status;
    if (status != BK_ST_WAITING) {
        s_conflict (req, &task, "signalled");
        return;
    }
    bk_engine_clear_deadline (engine, task);
    task->signal[0] = '\0'; //  one time only
    if (aq_node_get (&signal, "result", &result))
        bk_task_set_blob (task, &task->result, result.raw, result.raw_size);
    bk_engine_finish (engine, task, completed ? BK_ST_COMPLETED : BK_ST_FAILED,
                      completed ? NULL : "failed by signal");
    s_answer_saved (self, req, &task, bk_engine_save (engine, task, status));
}

//  AUTH: the key's team and scope, and the team's events topic.
static void s_auth (bk_handlers_t *self, bk_req_t *req, int cmd) {
    char team[AQ_UUID_TEXT], topic[80];
    aq_uuid_format (req->team, team);
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    const bk_team_t *record = bk_keys_team (self->keys, req->team);
    aq_write_map (w, 4);
    aq_write_kv_str (w, "teamId", team);
    aq_write_kv_str (w, "team", record ? record->name : "");
    aq_write_kv_str (w, "scope", req->read_only ? "read" : "full");
    aq_write_kv_str (w, "events", bk_engine_topic (self->engine, team, topic));
    bk_req_done (req);
}

//  STATS: with the admin token (its `admin` field, or as the `key`, which
//  is how a gateway passes GET /metrics' bearer) the whole broker's
//  figures; with a team key only that team's (figures.h).
static void s_stats (bk_handlers_t *self, bk_req_t *req, int cmd) {
    aq_node_t admin, key;
    if (bk_req_get (req, "admin", &admin)) {
        if (s_admin (self, req) != 0)
            return;
    } else if (!(bk_req_get (req, "key", &key) && s_is_admin (self, &key))) {
        if (s_authenticate (self, req, false) != 0)
            return;
        char view[16] = "";
        bool console = bk_req_str (req, "view", view, sizeof view) && !strcmp (view, "console");
        if (console && bk_figures_hold (self->figures, req))
            return; //  answered by bk_handlers_tick
        bk_figures_team (self->figures, bk_req_body (req, AQ_OK), req->team, console);
        bk_req_done (req);
        return;
    }
    bk_figures_global (self->figures, bk_req_body (req, AQ_OK));
    bk_req_done (req);
}

//  --------------------------------------------------------------------------
//  Flow control keys (SPEC 11): /v1/flow-control

#define S_FLOW_NOT_FOUND "Flow control key not found"

//  The key named by the request's "id" into key; false when it is no
//  valid key name.
static bool s_flow_key (bk_req_t *req, char key[BK_FLOW_KEY_MAX + 1]) {
    return bk_req_str (req, "id", key, BK_FLOW_KEY_MAX + 1) &&
           bk_flow_key_valid (key, strlen (key));
}

//  Answers {"flowControl": {...}} for the caller's key, or 404.
static void s_flow_answer (bk_handlers_t *self, bk_req_t *req, const char *key) {
    bk_engine_t *engine = self->engine;
    bk_flow_info_t info;
    if (bk_flow_get (engine->flow, req->team, key, engine->now, &info) != 0) {
        bk_req_error (req, AQ_NOT_FOUND, S_FLOW_NOT_FOUND);
        return;
    }
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    aq_write_map (w, 1);
    aq_write_str (w, "flowControl");
    bk_flow_write_public (&info, engine->now, w);
    bk_req_done (req);
}

static void s_flow_list (bk_handlers_t *self, bk_req_t *req, int cmd) {
    int64_t limit, offset;
    if (!s_page_args (req, &limit, &offset))
        return;
    aq_writer_t *w = bk_req_body (req, AQ_OK);
    aq_write_map (w, 2);
    aq_write_str (w, "keys");
    uint64_t total;
    size_t shown = bk_flow_write_page (self->engine->flow, req->team, (int) limit, (int) offset,
                                       self->engine->now, w, &total);
    aq_write_str (w, "pagination");
    bk_req_write_pagination (w, total, limit, offset, shown, "hasMore");
    bk_req_done (req);
}

static void s_flow_get (bk_handlers_t *self, bk_req_t *req, int cmd) {
    char key[BK_FLOW_KEY_MAX + 1];
    if (!s_flow_key (req, key))
        bk_req_error (req, AQ_NOT_FOUND, S_FLOW_NOT_FOUND);
    else
        s_flow_answer (self, req, key);
}

//  PUT /v1/flow-control/:key {rate?, period?, parallelism?}: the key's
//  limits as a whole (a new key is made).
static void s_flow_set (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_engine_t *engine = self->engine;
    char key[BK_FLOW_KEY_MAX + 1], unused[BK_FLOW_KEY_MAX + 1], errbuf[160];
    if (!s_flow_key (req, key)) {
        bk_req_error (req, AQ_BAD_REQUEST, "key must be 1-100 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    aq_node_t body;
    if (!bk_req_get (req, "limits", &body))
        body.type = AQ_NODE_NIL;
    bk_flow_limits_t limits;
    const char *error = bk_flow_parse (&body, false, "", unused, &limits, errbuf, sizeof errbuf);
    if (error)
        bk_req_error (req, AQ_BAD_REQUEST, error);
    else if (bk_flow_set (engine->flow, req->team, key, &limits, engine->now) != 0)
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    else
        s_flow_answer (self, req, key);
}

static void s_flow_pause (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_engine_t *engine = self->engine;
    char key[BK_FLOW_KEY_MAX + 1];
    int rc = s_flow_key (req, key) ? bk_flow_pause (engine->flow, req->team, key,
                                                    cmd == AQ_CMD_FLOW_PAUSE, engine->now)
                                   : BK_NOTFOUND;
    if (rc == BK_NOTFOUND)
        bk_req_error (req, AQ_NOT_FOUND, S_FLOW_NOT_FOUND);
    else if (rc != 0)
        bk_req_error (req, AQ_UNAVAILABLE, BK_REPLY_FAILED);
    else
        s_flow_answer (self, req, key);
}

void bk_handlers_tick (bk_handlers_t *self) {
    bk_figures_tick (self->figures);
}

int64_t bk_handlers_next_deadline (bk_handlers_t *self) {
    return bk_figures_next_deadline (self->figures);
}

static void s_admin_command (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_admin_command (self->engine->store, self->keys, self->engine->vault, req, cmd,
                      self->engine->now);
}

static void s_scheduler_command (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_scheduler_command (self->scheduler, req, cmd);
}

static void s_bulk_command (bk_handlers_t *self, bk_req_t *req, int cmd) {
    bk_bulk_command (self->bulk, req, cmd);
}

//  --------------------------------------------------------------------------
//  The table

typedef struct {
    int cmd;                                                //  AQ_CMD_*
    bk_access_t access;                                     //  who may send it
    void (*handler) (bk_handlers_t *, bk_req_t *, int cmd); //  answers it
} s_route_t;

static const s_route_t s_routes[] = {
    {AQ_CMD_TASK_CREATE, BK_ACCESS_WRITE, s_task_create},
    {AQ_CMD_TASK_BATCH, BK_ACCESS_WRITE, s_task_batch},
    {AQ_CMD_TASK_BULK, BK_ACCESS_WRITE, s_bulk_command},
    {AQ_CMD_BULK_GET, BK_ACCESS_READ, s_bulk_command},
    {AQ_CMD_TASK_GET, BK_ACCESS_READ, s_task_get},
    {AQ_CMD_TASK_LIST, BK_ACCESS_READ, s_task_list},
    {AQ_CMD_TASK_CANCEL, BK_ACCESS_WRITE, s_task_cancel},
    {AQ_CMD_TASK_RETRY, BK_ACCESS_WRITE, s_task_retry},
    {AQ_CMD_TASK_ATTEMPTS, BK_ACCESS_READ, s_task_attempts},
    {AQ_CMD_TASK_SIGNAL, BK_ACCESS_OWN, s_task_signal},
    {AQ_CMD_TOKEN_CREATE, BK_ACCESS_WRITE, s_admin_command},
    {AQ_CMD_TOKEN_LIST, BK_ACCESS_READ, s_admin_command},
    {AQ_CMD_TOKEN_DELETE, BK_ACCESS_WRITE, s_admin_command},
    {AQ_CMD_AUTH, BK_ACCESS_READ, s_auth},
    {AQ_CMD_STATS, BK_ACCESS_OWN, s_stats},
    {AQ_CMD_TEAM_CREATE, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_LIST, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_KEY_CREATE, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_KEY_LIST, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_KEY_REVOKE, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_SECRET, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_LIMIT, BK_ACCESS_ADMIN, s_admin_command},
    {AQ_CMD_SCHEDULE_CREATE, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_LIST, BK_ACCESS_READ, s_scheduler_command},
    {AQ_CMD_SCHEDULE_GET, BK_ACCESS_READ, s_scheduler_command},
    {AQ_CMD_SCHEDULE_UPDATE, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_RUN_NOW, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_SNOOZE, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_PAUSE, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_RESUME, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_CANCEL, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_SCHEDULE_RUNS, BK_ACCESS_READ, s_scheduler_command},
    {AQ_CMD_SCHEDULE_PREVIEW, BK_ACCESS_READ, s_scheduler_command},
    {AQ_CMD_EVENT_FIRE, BK_ACCESS_WRITE, s_scheduler_command},
    {AQ_CMD_FLOW_LIST, BK_ACCESS_READ, s_flow_list},
    {AQ_CMD_FLOW_GET, BK_ACCESS_READ, s_flow_get},
    {AQ_CMD_FLOW_SET, BK_ACCESS_WRITE, s_flow_set},
    {AQ_CMD_FLOW_PAUSE, BK_ACCESS_WRITE, s_flow_pause},
    {AQ_CMD_FLOW_RESUME, BK_ACCESS_WRITE, s_flow_pause},
};

int bk_handlers_access (int cmd, size_t *count) {
    size_t routes = sizeof s_routes / sizeof *s_routes;
    if (count)
        *count = routes;
    for (size_t r = 0; r < routes; r++)
        if (s_routes[r].cmd == cmd)
            return (int) s_routes[r].access;
    return -1;
}

void bk_handlers_request (bk_handlers_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                          int cmd, const aq_node_t *body) {
    bk_outbox_t *outbox = self->engine->outbox;
    bk_req_t req = {outbox, socket, rid, rid_size, 0, *body, {0}, false};
    aq_node_t corr;
    if (aq_node_get (body, "corr", &corr) && corr.type == AQ_NODE_INT)
        req.corr = corr.i;
    if (cmd == AQ_CMD_HEARTBEAT) {
        aq_write_map (bk_outbox_start (outbox, AQ_CMD_HEARTBEAT), 0);
        bk_outbox_queue (outbox, socket, rid, rid_size);
        return;
    }
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        const s_route_t *route = &s_routes[i];
        if (route->cmd != cmd)
            continue;
        if (route->access == BK_ACCESS_ADMIN ? s_admin (self, &req) != 0
            : route->access == BK_ACCESS_OWN
                ? false
                : s_authenticate (self, &req, route->access == BK_ACCESS_WRITE) != 0)
            return;
        route->handler (self, &req, cmd);
        return;
    }
    self->engine->stats.malformed++;
    aq_writer_t *w = bk_outbox_start (outbox, AQ_CMD_ERROR);
    aq_write_map (w, 2 + (req.corr > 0));
    aq_write_kv_int (w, "code", AQ_BAD_REQUEST);
    aq_write_kv_str (w, "reason", "unexpected command on the client socket");
    if (req.corr > 0) //  readable, just not ours: the client need not wait
        aq_write_kv_int (w, "corr", req.corr);
    bk_outbox_queue (outbox, socket, rid, rid_size);
}
