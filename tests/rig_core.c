/*  rig_core.c - test rig: the broker's task modules wired as the loop wires them, no loop

    The turn follows loop.c's s_turn step by step, at the rig's clock and
    without the poll: what the test's sockets sent is already waiting.
*/
#include "rig_core.h"
#include "aq_json.h"
#include "aq_proto.h"
#include "aq_uuid.h"

#include "../broker/delay.h"
#include "../broker/poll.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TASKS_SEEN 512 //  tasks whose last status the rig follows

typedef struct {
    char id[AQ_UUID_TEXT]; //  a task
    int status;            //  its last status in an event
    char pending[512];     //  its statuses not yet asked for, space-separated
} s_seen_t;

typedef struct {
    s_seen_t tasks[S_TASKS_SEEN]; //  in order of first event
    int count;                    //  used
} s_seen_list_t;

//  A socket in zsys_init ()'s context that never lingers.
static void *s_socket (int type) {
    void *socket = zmq_socket (zsys_init (), type);
    assert (socket);
    int zero = 0;
    zmq_setsockopt (socket, ZMQ_LINGER, &zero, sizeof zero);
    return socket;
}

//  The modules, as loop.c's s_start makes them over an open store.
static void s_modules (rig_core_t *self) {
    self->outbox = bk_outbox_new (&self->pub, 1);
    bk_outbox_subscribers (self->outbox, 1); //  the rig's SUB hears everything
    self->engine = bk_engine_new (&self->cfg, self->store, self->outbox, self->plugins);
    crypto_generichash (self->engine->events_key, sizeof self->engine->events_key,
                        (const uint8_t *) "rig", 3, NULL, 0);
    self->keys = bk_keys_new (self->store);
    self->providers = bk_providers_new ("/nonexistent", self->dir, 5000, self->plugins);
    self->dispatch = bk_dispatch_new (self->engine, self->keys, self->providers);
    self->results =
        bk_results_new (self->engine, bk_dispatch_leases (self->dispatch), self->providers);
    self->scheduler = bk_scheduler_new (self->engine);
    self->bulk = bk_bulk_new (self->engine, bk_dispatch_leases (self->dispatch));
    self->handlers = bk_handlers_new (self->engine, self->keys, self->dispatch, self->scheduler,
                                      NULL, self->bulk, RIG_CORE_ADMIN);
    bk_engine_clock (self->engine, self->now, self->mono);
    bk_val_t val;
    if (bk_store_get (self->store, BK_DB_META, "seq", 3, &val) == 0 && val.size == 8)
        memcpy (&self->engine->seq, val.data, 8);
    bk_dispatch_recover (self->dispatch);
    bk_results_leases (self->results, bk_dispatch_leases (self->dispatch));
    bk_bulk_recover (self->bulk);
}

static void s_modules_destroy (rig_core_t *self) {
    bk_handlers_destroy (&self->handlers);
    bk_bulk_destroy (&self->bulk);
    bk_scheduler_destroy (&self->scheduler);
    bk_results_destroy (&self->results);
    bk_dispatch_destroy (&self->dispatch);
    bk_providers_destroy (&self->providers);
    bk_keys_destroy (&self->keys);
    bk_engine_destroy (&self->engine);
    bk_outbox_destroy (&self->outbox);
}

rig_core_t *rig_core_new (const char *name, bool plugins) {
    rig_core_t *self = calloc (1, sizeof *self);
    assert (self);
    self->seen = calloc (1, sizeof (s_seen_list_t));
    self->json = strdup ("");
    assert (self->seen && self->json);
    self->now = RIG_CORE_NOW;
    self->mono = 1000000;
    self->status = -1;
    bk_config_defaults (&self->cfg);
    char endpoint[128];
    self->clients = s_socket (ZMQ_ROUTER);
    self->workers = s_socket (ZMQ_ROUTER);
    self->pub = s_socket (ZMQ_PUB);
    self->client = s_socket (ZMQ_DEALER);
    self->sub = s_socket (ZMQ_SUB);
    const struct {
        void *bound, *connected;
        const char *what;
    } pairs[] = {{self->clients, self->client, "clients"},
                 {self->workers, NULL, "workers"},
                 {self->pub, self->sub, "events"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        snprintf (endpoint, sizeof endpoint, "inproc://rig-core-%s-%s", name, pairs[i].what);
        assert (zmq_bind (pairs[i].bound, endpoint) == 0);
        if (pairs[i].bound == self->workers)
            snprintf (self->workers_endpoint, sizeof self->workers_endpoint, "%s", endpoint);
        if (pairs[i].connected)
            assert (zmq_connect (pairs[i].connected, endpoint) == 0);
    }
    assert (zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, "", 0) == 0);
    self->store = bk_store_test_new (self->dir);
    if (plugins) {
        char *dir = aq_plugin_loader_default_dir ();
        assert (dir);
        self->plugins = aq_plugin_loader_new (self->dir);
        aq_plugin_loader_describe_only (self->plugins, AQ_PLUGIN_PROVIDER);
        assert (aq_plugin_loader_load_dir (self->plugins, dir) > 0);
        free (dir);
        self->vault = aq_plugin_loader_vault (self->plugins, NULL);
        assert (self->vault && aq_plugin_loader_provider (self->plugins, "fal"));
    }
    s_modules (self);
    //  team acme with a full and a read key, team globex with a full key
    bk_key_t key;
    assert (bk_keys_create (self->keys, "acme", BK_SCOPE_FULL, self->now, &key, self->key) == 0);
    memcpy (self->team, key.team, 16);
    assert (bk_keys_create (self->keys, "acme", BK_SCOPE_READ, self->now, &key, self->read_key) ==
            0);
    assert (bk_keys_create (self->keys, "globex", BK_SCOPE_FULL, self->now, &key,
                            self->other_key) == 0);
    rig_core_turn (self);
    return self;
}

void rig_core_destroy (rig_core_t **self_p) {
    assert (self_p);
    rig_core_t *self = *self_p;
    if (!self)
        return;
    while (self->workers_list) {
        rig_worker_t *worker = self->workers_list;
        self->workers_list = worker->next;
        rig_worker_vanish (worker);
        free (worker->frame);
        free (worker);
    }
    s_modules_destroy (self);
    aq_plugin_loader_destroy (&self->plugins);
    bk_store_test_destroy (&self->store, self->dir);
    zmq_close (self->clients), zmq_close (self->workers), zmq_close (self->pub);
    zmq_close (self->client), zmq_close (self->sub);
    free (self->frame);
    free (self->json);
    free (self->seen);
    bk_task_destroy (&self->looked);
    free (self);
    *self_p = NULL;
}

void rig_core_advance (rig_core_t *self, int64_t ms) {
    self->now += ms;
    self->mono += ms;
}

//  --------------------------------------------------------------------------
//  The turn

//  Every whole message waiting on a broker socket, handed on as s_receive
//  in loop.c does.
static void s_receive (rig_core_t *self, void *socket, bool from_workers) {
    zmq_msg_t rid, frame;
    zmq_msg_init (&rid);
    while (zmq_msg_recv (&rid, socket, ZMQ_DONTWAIT) >= 0) {
        assert (zmq_msg_more (&rid));
        zmq_msg_init (&frame);
        assert (zmq_msg_recv (&frame, socket, 0) >= 0 && !zmq_msg_more (&frame));
        int cmd;
        aq_node_t body;
        int rc = aq_msg_frame (zmq_msg_data (&frame), zmq_msg_size (&frame), &cmd, &body);
        assert (rc == 0);
        const uint8_t *id = zmq_msg_data (&rid);
        size_t size = zmq_msg_size (&rid);
        if (from_workers) {
            int index = bk_dispatch_worker (self->dispatch, socket, id, size, cmd, &body);
            if (cmd == AQ_CMD_RESULT)
                bk_results_handle (self->results, index, &body);
        } else
            bk_handlers_request (self->handlers, socket, id, size, cmd, &body);
        zmq_msg_close (&frame);
    }
    zmq_msg_close (&rid);
}

//  The provider hosts' finished ops (never started here: only the ops that
//  failed at once, e.g. for a provider no longer loaded).
static void s_providers (rig_core_t *self) {
    char *key, *error;
    uint8_t *reply;
    size_t size;
    while (bk_providers_take (self->providers, &key, &reply, &size, &error)) {
        aq_node_t node;
        bool readable = reply && aq_msg_parse (reply, size, &node) == 0;
        bk_results_provider_done (self->results, key, readable ? &node : NULL, error);
        free (key), free (error), free (reply);
    }
}

void rig_core_turn (rig_core_t *self) {
    for (rig_worker_t *w = self->workers_list; w; w = w->next)
        if (w->dealer && !w->silent)
            rig_worker_send (w, AQ_CMD_HEARTBEAT, NULL);
    bk_engine_t *engine = self->engine;
    bk_engine_clock (engine, self->now, self->mono);
    s_receive (self, self->workers, true);
    s_receive (self, self->clients, false);
    s_providers (self);
    if (engine->next_due <= engine->now)
        bk_engine_promote_due (engine);
    bk_bulk_run (self->bulk, 60 * 1000000); //  a whole batch: turns do not depend on the clock
    bk_dispatch_expire (self->dispatch);
    bk_dispatch_run (self->dispatch);
    bk_dispatch_heartbeat (self->dispatch);
    bk_handlers_tick (self->handlers);
    assert (bk_store_put (self->store, BK_DB_META, "seq", 3, &engine->seq, 8) == 0);
    assert (bk_store_commit (self->store) == 0);
    assert (bk_outbox_flush (self->outbox, true) == 0);
    assert (bk_store_begin (self->store, true) == 0);
}

void rig_core_restart (rig_core_t *self) {
    s_modules_destroy (self);
    assert (bk_store_commit (self->store) == 0);
    bk_store_destroy (&self->store);
    char err[256];
    self->store = bk_store_open (self->dir, 1 << 20, true, err, sizeof err);
    assert (self->store);
    assert (bk_store_begin (self->store, true) == 0);
    s_modules (self);
}

//  --------------------------------------------------------------------------
//  The client

//  A frame of cmd holding the fields of json plus corr (when >= 0), sent
//  from socket.
static void s_send (void *socket, int cmd, const char *json, int64_t corr) {
    aq_writer_t fields, frame;
    aq_writer_init (&fields);
    aq_writer_init (&frame);
    assert (aq_json_parse (json ? json : "{}", &fields) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&fields, &size);
    aq_node_t map, key, value;
    assert (aq_msg_parse (data, size, &map) == 0 && map.type == AQ_NODE_MAP);
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       (uint8_t) cmd};
    aq_write_raw (&frame, header, sizeof header);
    aq_write_map (&frame, map.count + (corr >= 0));
    if (corr >= 0)
        aq_write_kv_int (&frame, "corr", corr);
    aq_iter_t it;
    aq_node_iter (&map, &it);
    while (aq_iter_next (&it, &key, &value)) {
        aq_write_raw (&frame, key.raw, key.raw_size);
        aq_write_raw (&frame, value.raw, value.raw_size);
    }
    data = aq_writer_data (&frame, &size);
    assert (data && zmq_send (socket, data, size, 0) == (int) size);
    aq_writer_release (&fields);
    aq_writer_release (&frame);
}

static int64_t s_vsend (rig_core_t *self, int cmd, const char *fmt, va_list args) {
    char *json = NULL;
    assert (vasprintf (&json, fmt, args) >= 0);
    s_send (self->client, cmd, json, ++self->corr);
    free (json);
    return self->corr;
}

int64_t rig_core_send (rig_core_t *self, int cmd, const char *fmt, ...) {
    va_list args;
    va_start (args, fmt);
    int64_t corr = s_vsend (self, cmd, fmt, args);
    va_end (args);
    return corr;
}

int rig_core_answer (rig_core_t *self) {
    self->status = -1;
    self->answer_corr = -1;
    self->retry_after = -1;
    self->error[0] = self->json[0] = '\0';
    self->body.type = AQ_NODE_NIL;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, self->client, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&msg);
        return -1;
    }
    size_t size = zmq_msg_size (&msg);
    free (self->frame);
    self->frame = malloc (size);
    assert (self->frame);
    memcpy (self->frame, zmq_msg_data (&msg), size);
    zmq_msg_close (&msg);
    int cmd;
    aq_node_t reply, value;
    assert (aq_msg_frame (self->frame, size, &cmd, &reply) == 0);
    assert (cmd == AQ_CMD_REPLY || cmd == AQ_CMD_ERROR);
    if (aq_node_get (&reply, "corr", &value) && value.type == AQ_NODE_INT)
        self->answer_corr = value.i;
    assert (aq_node_get (&reply, cmd == AQ_CMD_REPLY ? "status" : "code", &value) &&
            value.type == AQ_NODE_INT);
    self->status = (int) value.i;
    if (aq_node_get (&reply, cmd == AQ_CMD_REPLY ? "error" : "reason", &value))
        assert (aq_node_strcpy (&value, self->error, sizeof self->error));
    if (aq_node_get (&reply, "retryAfter", &value) && value.type == AQ_NODE_INT)
        self->retry_after = value.i;
    if (aq_node_get (&reply, "body", &self->body)) {
        free (self->json);
        self->json = aq_json_dumps (&self->body);
        assert (self->json);
    } else
        self->body.type = AQ_NODE_NIL;
    return self->status;
}

int rig_core_call (rig_core_t *self, int cmd, const char *fmt, ...) {
    va_list args;
    va_start (args, fmt);
    int64_t corr = s_vsend (self, cmd, fmt, args);
    va_end (args);
    rig_core_turn (self);
    int status = rig_core_answer (self);
    assert (status < 0 || self->answer_corr == corr);
    return status;
}

int rig_core_create (rig_core_t *self, const char *task, char id[AQ_UUID_TEXT]) {
    int status = rig_core_call (self, AQ_CMD_TASK_CREATE, "{\"key\": \"%s\", \"task\": %s}",
                                self->key, task);
    id[0] = '\0';
    aq_node_t created, value;
    if (status == AQ_CREATED) {
        assert (aq_node_get (&self->body, "task", &created));
        assert (aq_node_get (&created, "id", &value) && aq_node_strcpy (&value, id, AQ_UUID_TEXT));
    }
    return status;
}

bool rig_core_shows (rig_core_t *self, const char *text) {
    if (strstr (self->json, text))
        return true;
    fprintf (stderr, "rig_core: %d %s %s lacks %s\n", self->status, self->error, self->json, text);
    return false;
}

//  --------------------------------------------------------------------------
//  Events

static s_seen_t *s_seen (rig_core_t *self, const char *id) {
    s_seen_list_t *list = self->seen;
    for (int i = 0; i < list->count; i++)
        if (strcmp (list->tasks[i].id, id) == 0)
            return &list->tasks[i];
    assert (list->count < S_TASKS_SEEN);
    s_seen_t *seen = &list->tasks[list->count++];
    snprintf (seen->id, sizeof seen->id, "%s", id);
    return seen;
}

//  Reads every event published so far into the tasks' lists.
static void s_events_drain (rig_core_t *self) {
    char topic[128];
    int size;
    while ((size = zmq_recv (self->sub, topic, sizeof topic - 1, ZMQ_DONTWAIT)) >= 0) {
        topic[size] = '\0';
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        assert (zmq_msg_recv (&msg, self->sub, 0) >= 0);
        int cmd;
        aq_node_t event, value;
        char id[AQ_UUID_TEXT], team[AQ_UUID_TEXT], status[16], want[80];
        assert (aq_msg_frame (zmq_msg_data (&msg), zmq_msg_size (&msg), &cmd, &event) == 0);
        assert (cmd == AQ_CMD_EVENT);
        assert (aq_node_get (&event, "id", &value) && aq_node_strcpy (&value, id, sizeof id));
        assert (aq_node_get (&event, "teamId", &value) &&
                aq_node_strcpy (&value, team, sizeof team));
        assert (aq_node_get (&event, "status", &value) &&
                aq_node_strcpy (&value, status, sizeof status));
        assert (aq_node_get (&event, "at", &value) && value.i >= RIG_CORE_NOW &&
                value.i <= self->now);
        assert (strcmp (topic, bk_engine_topic (self->engine, team, want)) == 0);
        zmq_msg_close (&msg);
        s_seen_t *seen = s_seen (self, id);
        int to = bk_status_parse (status, strlen (status));
        assert (to > 0 && to != seen->status);
        self->transitions[seen->status][to] = true;
        seen->status = to;
        size_t used = strlen (seen->pending);
        snprintf (seen->pending + used, sizeof seen->pending - used, "%s%s", used ? " " : "",
                  status);
    }
}

const char *rig_core_events (rig_core_t *self, const char *id) {
    s_events_drain (self);
    s_seen_t *seen = s_seen (self, id);
    snprintf (self->events, sizeof self->events, "%s", seen->pending);
    seen->pending[0] = '\0';
    return self->events;
}

//  --------------------------------------------------------------------------
//  The store

static uint64_t s_get64 (const uint8_t *data) {
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = value << 8 | data[i];
    return value;
}

//  Entries of db whose key starts with prefix (size bytes).
static uint64_t s_entries (bk_store_t *store, bk_db_t db, const uint8_t *prefix, size_t size) {
    bk_cursor_t *cursor = bk_cursor_open (store, db);
    assert (cursor);
    bk_val_t k, v;
    uint64_t count = 0;
    for (int rc = bk_cursor_seek (cursor, prefix, size, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v)) {
        if (k.size < size || memcmp (k.data, prefix, size) != 0)
            break;
        count++;
    }
    bk_cursor_close (&cursor);
    return count;
}

bk_task_t *rig_core_task (rig_core_t *self, const char *id) {
    uint8_t raw[16];
    assert (aq_uuid_parse (id, raw) == 0);
    bk_task_t *task = bk_tasks_get (self->store, raw);
    if (!task)
        return NULL;
    //  exactly one team-status entry, under its team, status and seq
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_TEAM_STATUS);
    bk_val_t k, v;
    int found = 0;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
         rc = bk_cursor_next (cursor, &k, &v))
        if (v.size == 16 && memcmp (v.data, raw, 16) == 0) {
            const uint8_t *key = k.data;
            assert (k.size == 25 && memcmp (key, task->team, 16) == 0);
            assert (key[16] == task->status && s_get64 (key + 17) == task->seq);
            found++;
        }
    bk_cursor_close (&cursor);
    assert (found == 1);
    uint8_t key[25];
    memcpy (key, task->team, 16);
    for (int i = 0; i < 8; i++)
        key[16 + i] = (uint8_t) (task->seq >> (56 - 8 * i));
    assert (bk_store_get (self->store, BK_DB_TEAM_TASKS, key, 24, &v) == 0 && v.size == 16 &&
            memcmp (v.data, raw, 16) == 0);
    //  the counters agree with the indexes, for the team and for all teams
    assert (bk_tasks_count (self->store, task->team, 0) ==
            s_entries (self->store, BK_DB_TEAM_TASKS, task->team, 16));
    uint64_t all = 0;
    for (int status = 1; status < BK_ST_COUNT; status++) {
        key[16] = (uint8_t) status;
        uint64_t team = s_entries (self->store, BK_DB_TEAM_STATUS, key, 17);
        assert (bk_tasks_count (self->store, task->team, status) == team);
        uint64_t everyone = 0;
        cursor = bk_cursor_open (self->store, BK_DB_TEAM_STATUS);
        for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0;
             rc = bk_cursor_next (cursor, &k, &v))
            everyone += ((const uint8_t *) k.data)[16] == status;
        bk_cursor_close (&cursor);
        assert (bk_tasks_count (self->store, NULL, status) == everyone);
        all += everyone;
    }
    assert (bk_tasks_count (self->store, NULL, 0) == all);
    return task;
}

bool rig_core_ready (rig_core_t *self, const char *id) {
    uint8_t raw[16];
    assert (aq_uuid_parse (id, raw) == 0);
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_READY);
    bk_val_t k, v;
    bool found = false;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0 && !found;
         rc = bk_cursor_next (cursor, &k, &v))
        found = v.size == 16 && memcmp (v.data, raw, 16) == 0;
    bk_cursor_close (&cursor);
    return found;
}

bool rig_core_timer (rig_core_t *self, int kind, const char *id, int64_t due) {
    uint8_t raw[16];
    assert (aq_uuid_parse (id, raw) == 0);
    bk_cursor_t *cursor = bk_cursor_open (self->store, BK_DB_DELAY);
    bk_val_t k, v;
    bool found = false;
    for (int rc = bk_cursor_seek (cursor, NULL, 0, &k, &v); rc == 0 && !found;
         rc = bk_cursor_next (cursor, &k, &v)) {
        const uint8_t *key = k.data;
        found = k.size == 25 && key[8] == kind && memcmp (key + 9, raw, 16) == 0 &&
                (due < 0 || (int64_t) s_get64 (key) == due);
    }
    bk_cursor_close (&cursor);
    return found;
}

//  --------------------------------------------------------------------------
//  What the selftests assert

const bk_task_t *rig_core_is (rig_core_t *self, const char *id, int status) {
    bk_task_destroy (&self->looked);
    self->looked = rig_core_task (self, id);
    assert (self->looked);
    if (self->looked->status != status)
        fprintf (stderr, "rig_core: task is %s, not %s\n", bk_status_name (self->looked->status),
                 bk_status_name (status));
    assert (self->looked->status == status);
    return self->looked;
}

void rig_core_expect_events (rig_core_t *self, const char *id, const char *want) {
    const char *got = rig_core_events (self, id);
    if (strcmp (got, want) != 0)
        fprintf (stderr, "rig_core: events '%s', want '%s'\n", got, want);
    assert (strcmp (got, want) == 0);
}

void rig_core_created (rig_core_t *self, const char *task, char id[AQ_UUID_TEXT]) {
    int status = rig_core_create (self, task, id);
    if (status != AQ_CREATED)
        fprintf (stderr, "rig_core: create %s: %d %s\n", task, status, self->error);
    assert (status == AQ_CREATED);
}

void rig_core_get_shows (rig_core_t *self, const char *id, const char *text) {
    assert (rig_core_call (self, AQ_CMD_TASK_GET, "{\"key\": \"%s\", \"id\": \"%s\"}", self->key,
                           id) == AQ_OK);
    assert (rig_core_shows (self, text));
}

void rig_core_later (rig_core_t *self, int64_t ms) {
    rig_core_advance (self, ms);
    rig_core_turn (self);
}

void rig_core_provider_reply (rig_core_t *self, const char *id, const char *reply,
                              const char *failure) {
    bk_task_t *task = rig_core_task (self, id);
    assert (task && task->poll.op_pending);
    char key[BK_POLL_KEY_SIZE];
    bk_poll_provider_key (task, key);
    bk_task_destroy (&task);
    aq_writer_t w;
    aq_writer_init (&w);
    aq_node_t node;
    size_t size;
    if (reply) {
        assert (aq_json_parse (reply, &w) == 0);
        const uint8_t *data = aq_writer_data (&w, &size);
        assert (aq_msg_parse (data, size, &node) == 0);
    }
    bk_engine_clock (self->engine, self->now, self->mono);
    bk_results_provider_done (self->results, key, reply ? &node : NULL, failure);
    aq_writer_release (&w);
    rig_core_turn (self);
}

//  --------------------------------------------------------------------------
//  Fake workers

rig_worker_t *rig_core_worker (rig_core_t *self, const char *name, int credit) {
    rig_worker_t *worker = calloc (1, sizeof *worker);
    assert (worker);
    worker->rig = self;
    if (name)
        snprintf (worker->name, sizeof worker->name, "%s", name);
    else
        snprintf (worker->name, sizeof worker->name, "w%d", ++self->named);
    name = worker->name;
    worker->dealer = s_socket (ZMQ_DEALER);
    assert (zmq_setsockopt (worker->dealer, ZMQ_ROUTING_ID, name, strlen (name)) == 0);
    assert (zmq_connect (worker->dealer, self->workers_endpoint) == 0);
    worker->next = self->workers_list;
    self->workers_list = worker;
    char ready[128];
    snprintf (ready, sizeof ready, "{\"credit\": %d, \"name\": \"%s\"}", credit, name);
    rig_worker_send (worker, AQ_CMD_READY, ready);
    rig_core_turn (self);
    return worker;
}

void rig_worker_expect (rig_worker_t *self, const char *id, const char *kind) {
    assert (rig_worker_job (self));
    if (strcmp (self->id, id) != 0 || strcmp (self->kind, kind) != 0)
        fprintf (stderr, "rig_core: job '%s' for %s, want '%s' for %s\n", self->kind, self->id,
                 kind, id);
    assert (strcmp (self->id, id) == 0 && strcmp (self->kind, kind) == 0);
}

void rig_worker_answer (rig_worker_t *self, const char *json) {
    rig_worker_result (self, json);
    rig_core_turn (self->rig);
}

void rig_worker_send (rig_worker_t *self, int cmd, const char *json) {
    assert (self->dealer);
    s_send (self->dealer, cmd, json, -1);
}

bool rig_worker_job (rig_worker_t *self) {
    zmq_msg_t msg;
    while (self->dealer) {
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->dealer, ZMQ_DONTWAIT) < 0)
            break;
        int cmd;
        aq_node_t body, value;
        size_t size = zmq_msg_size (&msg);
        uint8_t *frame = malloc (size);
        assert (frame);
        memcpy (frame, zmq_msg_data (&msg), size);
        zmq_msg_close (&msg);
        assert (aq_msg_frame (frame, size, &cmd, &body) == 0);
        if (cmd != AQ_CMD_JOB) {
            assert (cmd == AQ_CMD_HEARTBEAT || cmd == AQ_CMD_ERROR);
            if (cmd == AQ_CMD_ERROR) {
                assert (aq_node_get (&body, "code", &value) && value.type == AQ_NODE_INT);
                self->errors++;
                self->last_error = (int) value.i;
                assert (aq_node_get (&body, "reason", &value) &&
                        aq_node_strcpy (&value, self->reason, sizeof self->reason));
            } else
                self->heartbeats++;
            free (frame);
            continue;
        }
        free (self->frame);
        self->frame = frame;
        self->job = body;
        assert (aq_node_get (&body, "id", &value) &&
                aq_node_strcpy (&value, self->id, sizeof self->id));
        assert (aq_node_get (&body, "attempt", &value) && value.type == AQ_NODE_INT);
        self->attempt = (int) value.i;
        self->kind[0] = self->lease[0] = '\0';
        if (aq_node_get (&body, "kind", &value))
            assert (aq_node_strcpy (&value, self->kind, sizeof self->kind));
        if (aq_node_get (&body, "lease", &value))
            assert (aq_node_strcpy (&value, self->lease, sizeof self->lease));
        return true;
    }
    zmq_msg_close (&msg);
    return false;
}

void rig_worker_result (rig_worker_t *self, const char *json) {
    aq_writer_t given, frame;
    aq_writer_init (&given);
    aq_writer_init (&frame);
    assert (aq_json_parse (json ? json : "{}", &given) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&given, &size);
    aq_node_t extra, key, value;
    assert (aq_msg_parse (data, size, &extra) == 0 && extra.type == AQ_NODE_MAP);
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       AQ_CMD_RESULT};
    aq_write_raw (&frame, header, sizeof header);
    size_t map = aq_write_map_open (&frame);
    uint32_t pairs = extra.count;
    if (!aq_node_get (&extra, "id", &value)) {
        aq_write_kv_str (&frame, "id", self->id);
        pairs++;
    }
    if (!aq_node_get (&extra, "attempt", &value)) {
        aq_write_kv_int (&frame, "attempt", self->attempt);
        pairs++;
    }
    if (*self->kind && !aq_node_get (&extra, "kind", &value)) {
        aq_write_kv_str (&frame, "kind", self->kind);
        pairs++;
    }
    if (*self->lease && !aq_node_get (&extra, "lease", &value)) {
        aq_write_kv_str (&frame, "lease", self->lease);
        pairs++;
    }
    aq_iter_t it;
    aq_node_iter (&extra, &it);
    while (aq_iter_next (&it, &key, &value)) {
        aq_write_raw (&frame, key.raw, key.raw_size);
        aq_write_raw (&frame, value.raw, value.raw_size);
    }
    aq_write_map_close (&frame, map, pairs);
    data = aq_writer_data (&frame, &size);
    assert (data && zmq_send (self->dealer, data, size, 0) == (int) size);
    aq_writer_release (&given);
    aq_writer_release (&frame);
}

char *rig_worker_field (rig_worker_t *self, const char *path, char *buf, size_t size) {
    buf[0] = '\0';
    aq_node_t map = self->job, value;
    const char *dot = strchr (path, '.');
    if (dot) {
        char first[64];
        snprintf (first, sizeof first, "%.*s", (int) (dot - path), path);
        if (!aq_node_get (&self->job, first, &map))
            return buf;
        path = dot + 1;
    }
    if (!aq_node_get (&map, path, &value))
        return buf;
    if (value.type == AQ_NODE_INT)
        snprintf (buf, size, "%lld", (long long) value.i);
    else if (!aq_node_strcpy (&value, buf, size))
        buf[0] = '\0';
    return buf;
}

int rig_worker_drain (rig_worker_t *self) {
    int jobs = 0;
    while (rig_worker_job (self))
        jobs++;
    return jobs;
}

void rig_worker_vanish (rig_worker_t *self) {
    if (self->dealer)
        zmq_close (self->dealer);
    self->dealer = NULL;
}

void rig_worker_bye (rig_worker_t *self) {
    self->silent = true;
    rig_worker_send (self, AQ_CMD_BYE, NULL);
    rig_core_turn (self->rig);
    rig_worker_vanish (self);
}
