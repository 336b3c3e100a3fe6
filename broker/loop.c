/*  loop.c - the broker's event loop: the turn that ties the modules together

    One thread. Each turn: poll; open one write transaction; hand every
    message waiting on the worker and client sockets (bounded) to dispatch,
    results and handlers; read the provider hosts' answers; move due timers;
    take a bulk job's share (bulk.c: the loop does not sleep while one
    runs); expire dead workers and leases; dispatch to workers with credit; commit
    once; only then flush the outbox (group commit: nobody hears of a
    change before it is on disk). The modules never reach back into the
    loop: it owns them and calls them.
*/
#include "broker.h"
#include "aq_log.h"
#include "aq_msg.h"
#include "aq_notify.h"
#include "aq_proto.h"
#include "aq_secret.h"
#include "aq_time.h"
#include "bulk.h"
#include "dispatch.h"
#include "engine.h"
#include "handlers.h"
#include "keys.h"
#include "outbox.h"
#include "providers.h"
#include "results.h"
#include "sched/scheduler.h"
#include "sockets.h"
#include "store.h"
#include "task_index.h"
#include "upgrade.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_BATCH      1000       //  messages per socket per turn
#define S_TURN_BYTES (8u << 20) //  bytes per socket per turn (see BK_STORE_HEADROOM)
#define S_WAKE_MAX   100        //  longest sleep, ms: how soon a stop request is seen
#define S_INDEX_STEP 20000      //  stored tasks indexed per transaction at start
//  The time a bulk job may take in a turn (bulk.c): less when clients
//  wait for the turn's answers, since its commit answers them after it.
#define S_BULK_BUSY_US 500
#define S_BULK_IDLE_US 1500

typedef struct {
    const bk_config_t *cfg;        //  borrowed
    bk_store_t *store;             //  the state
    bk_sockets_t *sockets;         //  every socket, plain and CURVE
    void *clients[BK_SOCKETS_MAX]; //  client ROUTERs (borrowed from sockets)
    int nclients;
    void *workers[BK_SOCKETS_MAX]; //  worker ROUTERs
    int nworkers;
    void *events[BK_SOCKETS_MAX]; //  events XPUBs
    int nevents;
    aq_plugin_loader_t *plugins; //  provider descriptors and the vault
    bk_outbox_t *outbox;         //  sends after the commit
    bk_engine_t *engine;         //  the task state machine
    bk_keys_t *keys;             //  teams and keys
    bk_providers_t *providers;   //  provider hosts
    bk_dispatch_t *dispatch;     //  workers, leases, jobs
    bk_results_t *results;       //  RESULTs
    bk_scheduler_t *scheduler;   //  scheduled tasks
    bk_handlers_t *handlers;     //  client commands
    bk_bulk_t *bulk;             //  bulk jobs
    char admin[65];              //  the admin token
    uint64_t stored_seq;         //  the creation sequence in the store's meta
    bool recover;                //  re-lease processing tasks at the next turn
    int64_t last_reader_check;   //  mono ms
    int64_t last_release;        //  mono ms of the last bk_store_release_pages
} s_loop_t;

//  --------------------------------------------------------------------------
//  Reading messages

//  Reads one whole message (all frames) from a ROUTER and hands it on,
//  adding its size to *bytes. Returns false when nothing was waiting.
static bool s_receive (s_loop_t *self, void *socket, bool from_workers, size_t *bytes) {
    zmq_msg_t rid, frame;
    zmq_msg_init (&rid);
    if (zmq_msg_recv (&rid, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&rid);
        return false;
    }
    zmq_msg_init (&frame);
    int parts = 1;
    bool ok = zmq_msg_more (&rid) && zmq_msg_recv (&frame, socket, 0) >= 0;
    if (ok)
        parts++;
    bool more = ok && zmq_msg_more (&frame);
    while (more) { //  extra frames: drain and refuse
        zmq_msg_t extra;
        zmq_msg_init (&extra);
        more = zmq_msg_recv (&extra, socket, 0) >= 0 && zmq_msg_more (&extra);
        zmq_msg_close (&extra);
        parts++;
    }
    int cmd = 0;
    aq_node_t body;
    int rc = ok && parts == 2
                 ? aq_msg_frame (zmq_msg_data (&frame), zmq_msg_size (&frame), &cmd, &body)
                 : AQ_EPROTO_MALFORMED;
    const uint8_t *id = zmq_msg_data (&rid);
    size_t id_size = zmq_msg_size (&rid);
    *bytes += zmq_msg_size (&frame);
    if (rc != 0) {
        self->engine->stats.malformed++;
        if (self->cfg->verbose)
            aq_log (AQ_LOG_DEBUG, "broker", "dropped a malformed message: %s",
                    aq_proto_strerror (rc));
        aq_writer_t *w = bk_outbox_start (self->outbox, AQ_CMD_ERROR);
        aq_write_map (w, 2);
        aq_write_kv_int (w, "code", AQ_BAD_REQUEST);
        aq_write_kv_str (w, "reason", aq_proto_strerror (rc));
        bk_outbox_queue (self->outbox, socket, id, id_size);
    } else if (from_workers) {
        int index = bk_dispatch_worker (self->dispatch, socket, id, id_size, cmd, &body);
        if (cmd == AQ_CMD_RESULT)
            bk_results_handle (self->results, index, &body);
    } else
        bk_handlers_request (self->handlers, socket, id, id_size, cmd, &body);
    zmq_msg_close (&frame);
    zmq_msg_close (&rid);
    return true;
}

//  Subscriptions on an events XPUB (ZMQ_XPUB_MANUAL): a byte 1 or 0 and a
//  topic. Only a team's whole topic (bk_engine_topic) is passed on to
//  ZeroMQ, so no subscriber gets another team's events, nor everyone's
//  with an empty prefix.
static void s_subscriptions (s_loop_t *self, void *socket) {
    uint8_t frame[256];
    int size;
    while ((size = zmq_recv (socket, frame, sizeof frame - 1, ZMQ_DONTWAIT)) > 0) {
        char *topic = (char *) frame + 1, want[80];
        size_t len = (size_t) size - 1;
        if (len != 36 + 33 || (frame[0] != 0 && frame[0] != 1))
            continue;
        topic[len] = '\0';
        char team[37];
        snprintf (team, sizeof team, "%.36s", topic);
        if (sodium_memcmp (bk_engine_topic (self->engine, team, want), topic, len) != 0)
            continue;
        bool subscribe = frame[0] == 1;
        zmq_setsockopt (socket, subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic, len);
        bk_outbox_subscribers (self->outbox, subscribe ? 1 : -1);
    }
}

//  The provider hosts' finished ops, applied to their tasks.
static void s_providers (s_loop_t *self) {
    bk_providers_work (self->providers, self->engine->mono);
    char *key, *error;
    uint8_t *reply;
    size_t size;
    while (bk_providers_take (self->providers, &key, &reply, &size, &error)) {
        aq_node_t node;
        bool readable = reply && aq_msg_parse (reply, size, &node) == 0;
        bk_results_provider_done (self->results, key, readable ? &node : NULL,
                                  error      ? error
                                  : readable ? NULL
                                             : "provider host answered something unreadable");
        free (key);
        free (error);
        free (reply);
    }
}

static int s_provider_resend (void *arg, const uint8_t id[16]) {
    s_loop_t *self = arg;
    bk_task_t *task = bk_engine_load (self->engine, id);
    if (task)
        bk_results_provider_resend (self->results, task);
    bk_task_destroy (&task);
    return 0;
}

//  --------------------------------------------------------------------------
//  Setup

//  Reads DATA/admin.token, creating it (0600) on first start. A token that
//  is a symbolic link, not a regular file, another user's or open to group
//  or others is refused (aq_secret_open); one shorter than 32 characters
//  (an empty file left by a crash at first start) is made anew. Returns 0,
//  or -1 after logging why.
static int s_admin_token (s_loop_t *self, const char *dir) {
    char path[4096], err[4600] = "";
    snprintf (path, sizeof path, "%s/admin.token", dir);
    int rc = -1;
    bool again = true;
    for (int round = 0; round < 2 && again; round++) {
        again = false;
        bool created = false;
        int fd = aq_secret_open (path, "admin token", true, &created, err, sizeof err);
        if (fd < 0)
            break;
        if (created) {
            uint8_t raw[32];
            randombytes_buf (raw, sizeof raw);
            sodium_bin2hex (self->admin, sizeof self->admin, raw, sizeof raw);
            sodium_memzero (raw, sizeof raw);
            if (write (fd, self->admin, 64) == 64 && fsync (fd) == 0)
                rc = 0;
            else
                snprintf (err, sizeof err, "cannot write admin token '%s': %s", path,
                          strerror (errno));
        } else {
            char *token = aq_secret_read_fd (fd, path, "admin token", err, sizeof err);
            size_t length = token ? strlen (token) : 0;
            if (token && length >= sizeof self->admin)
                snprintf (err, sizeof err, "admin token '%s' is longer than %zu characters", path,
                          sizeof self->admin - 1);
            else if (token && length >= 32) {
                memcpy (self->admin, token, length + 1);
                rc = 0;
            } else if (token) { //  too short, or empty after a crash at first start
                snprintf (err, sizeof err, "admin token '%s' holds %zu characters, 32 needed", path,
                          length);
                again = unlink (path) == 0;
            }
            if (token)
                sodium_memzero (token, length);
            free (token);
        }
        close (fd);
    }
    if (rc != 0)
        aq_log (AQ_LOG_ERROR, "broker", "%s", err);
    return rc;
}

//  The plugins: provider descriptors and the vault, and the origins an
//  operator lets providers use besides their own (--provider-origin).
static void s_plugins (s_loop_t *self) {
    const bk_config_t *cfg = self->cfg;
    self->plugins = aq_plugin_loader_new (cfg->data_dir);
    //  provider plugins are described here and run in provider hosts
    aq_plugin_loader_describe_only (self->plugins, AQ_PLUGIN_PROVIDER);
    char *dir = cfg->plugin_dir ? strdup (cfg->plugin_dir) : aq_plugin_loader_default_dir ();
    if (dir && aq_plugin_loader_load_dir (self->plugins, dir) < 0)
        aq_log (AQ_LOG_WARN, "broker", "cannot read plugin directory '%s'", dir);
    free (dir);
    if (!aq_plugin_loader_vault (self->plugins, NULL))
        aq_log (AQ_LOG_WARN, "broker", "no vault plugin loaded: /v1/tokens is unavailable");
    for (int i = 0; i < cfg->provider_origin_count; i++) {
        const char *given = cfg->provider_origins[i], *eq = strchr (given, '=');
        char name[64];
        snprintf (name, sizeof name, "%.*s", (int) (eq - given), given);
        if (aq_plugin_loader_allow_origin (self->plugins, name, eq + 1) != 0)
            aq_log (AQ_LOG_WARN, "broker", "--provider-origin '%s': no provider '%s' is loaded",
                    given, name);
        else
            aq_log (AQ_LOG_WARN, "broker", "provider '%s' may also poll '%s' (--provider-origin)",
                    name, eq + 1);
    }
}

//  Binds every socket cfg asks for.
static int s_bind (s_loop_t *self, void *zmq_ctx) {
    bk_sockets_config_t config;
    char *clients = bk_config_sockets (self->cfg, &config);
    self->sockets = bk_sockets_new (zmq_ctx, &config);
    free (clients);
    if (!self->sockets)
        return -1;
    self->nclients = bk_sockets_of (self->sockets, BK_CLIENTS, self->clients);
    self->nworkers = bk_sockets_of (self->sockets, BK_WORKERS, self->workers);
    self->nevents = bk_sockets_of (self->sockets, BK_EVENTS, self->events);
    return 0;
}

static uint64_t s_last_seq (bk_store_t *store) {
    //  Creation sequence numbers: continue after the highest ever used.
    bk_val_t val;
    uint64_t seq = 0;
    if (bk_store_get (store, BK_DB_META, "seq", 3, &val) == 0 && val.size == 8)
        memcpy (&seq, val.data, 8);
    return seq;
}

//  Indexes the tasks an older build stored for the list filters
//  (task_index.h), S_INDEX_STEP tasks per transaction. 0, or -1 after
//  logging why.
static int s_index (s_loop_t *self) {
    int64_t total = 0;
    bool done = false;
    while (!done) {
        if (bk_store_begin (self->store, true) != 0)
            return -1;
        int64_t n = bk_task_index_build (self->store, S_INDEX_STEP, &done);
        if (n < 0)
            bk_store_abort (self->store);
        if (n < 0 || bk_store_commit (self->store) != 0) {
            aq_log (AQ_LOG_ERROR, "broker", "cannot index stored tasks for the list filters");
            return -1;
        }
        bk_store_settle (self->store);
        total += n;
    }
    if (total)
        aq_log (AQ_LOG_INFO, "broker", "indexed %lld stored tasks for the list filters",
                (long long) total);
    return 0;
}

static int s_start (s_loop_t *self, void *zmq_ctx) {
    const bk_config_t *cfg = self->cfg;
    char err[512];
    self->store = bk_store_open (cfg->data_dir, cfg->map_size, cfg->nosync, err, sizeof err);
    if (!self->store) {
        aq_log (AQ_LOG_ERROR, "broker", "%s", err);
        return -1;
    }
    bk_store_set_checkpoint (self->store, cfg->checkpoint_ms, BK_STORE_CHECKPOINT_BYTES);
    if (bk_store_replayed (self->store))
        aq_log (AQ_LOG_INFO, "broker", "replayed %llu commits from the redo log",
                (unsigned long long) bk_store_replayed (self->store));
    if (bk_upgrade_run (self->store, cfg->data_dir, 0, NULL, err, sizeof err) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "%s", err);
        return -1;
    }
    if (s_index (self) != 0)
        return -1;
    if (s_admin_token (self, cfg->data_dir) != 0)
        return -1;
    s_plugins (self);
    //  provider ops run in provider hosts: this program, re-executed
    self->providers =
        bk_providers_new ("/proc/self/exe", cfg->data_dir, cfg->provider_timeout_ms, self->plugins);
    if (s_bind (self, zmq_ctx) != 0)
        return -1;
    self->outbox = bk_outbox_new (self->events, self->nevents);
    self->engine = bk_engine_new (cfg, self->store, self->outbox, self->plugins);
    //  events topics are keyed from the admin token: a new token, new topics
    crypto_generichash (self->engine->events_key, sizeof self->engine->events_key,
                        (const uint8_t *) "asyncqueue events topics", 24,
                        (const uint8_t *) self->admin, strlen (self->admin));
    self->keys = bk_keys_new (self->store);
    self->dispatch = bk_dispatch_new (self->engine, self->keys, self->providers);
    self->results =
        bk_results_new (self->engine, bk_dispatch_leases (self->dispatch), self->providers);
    self->scheduler = bk_scheduler_new (self->engine);
    self->bulk = bk_bulk_new (self->engine, bk_dispatch_leases (self->dispatch));
    self->handlers = bk_handlers_new (self->engine, self->keys, self->dispatch, self->scheduler,
                                      self->sockets, self->bulk, self->admin);
    bk_engine_clock (self->engine, aq_time_now_ms (), aq_time_mono_ms ());
    if (bk_store_begin (self->store, false) != 0)
        return -1;
    self->engine->seq = self->stored_seq = s_last_seq (self->store);
    self->engine->last_created = bk_tasks_last_created (self->store);
    bk_dispatch_recover (self->dispatch);
    bk_results_leases (self->results, bk_dispatch_leases (self->dispatch));
    bk_tasks_each_in_status (self->store, BK_ST_POLLING, s_provider_resend, self);
    bk_bulk_recover (self->bulk);
    bk_store_abort (self->store);
    self->last_reader_check = self->engine->mono;
    aq_log (AQ_LOG_INFO, "broker", "ready: data '%s', clients '%s', workers '%s', events '%s'",
            cfg->data_dir, cfg->client_endpoints ? cfg->client_endpoints : "",
            cfg->worker_endpoints ? cfg->worker_endpoints : "",
            cfg->event_endpoints ? cfg->event_endpoints : "");
    return 0;
}

static void s_stop (s_loop_t *self) {
    bk_handlers_destroy (&self->handlers);
    bk_bulk_destroy (&self->bulk);
    bk_scheduler_destroy (&self->scheduler);
    bk_results_destroy (&self->results);
    bk_dispatch_destroy (&self->dispatch);
    bk_keys_destroy (&self->keys);
    bk_engine_destroy (&self->engine);
    bk_outbox_destroy (&self->outbox);
    bk_sockets_destroy (&self->sockets);
    bk_providers_destroy (&self->providers);
    aq_plugin_loader_destroy (&self->plugins);
    bk_store_destroy (&self->store);
    sodium_memzero (self->admin, sizeof self->admin);
}

//  --------------------------------------------------------------------------
//  The turn

//  How long the loop may sleep: until the next timer, lease deadline, long
//  poll deadline or provider wake, at most S_WAKE_MAX.
static long s_wake (s_loop_t *self) {
    if (bk_bulk_busy (self->bulk))
        return 0; //  a bulk job goes on in the next turn
    int64_t now = aq_time_now_ms (), mono = aq_time_mono_ms ();
    int64_t wake = S_WAKE_MAX, next = self->engine->next_due;
    if (next != INT64_MAX && next - now < wake)
        wake = next - now;
    int64_t deadlines[] = {bk_dispatch_next_deadline (self->dispatch),
                           bk_waiters_next_deadline (self->engine->waiters),
                           bk_handlers_next_deadline (self->handlers),
                           bk_providers_next_wake (self->providers)};
    for (size_t i = 0; i < sizeof deadlines / sizeof *deadlines; i++)
        if (deadlines[i] != INT64_MAX && deadlines[i] - mono < wake)
            wake = deadlines[i] - mono;
    return wake < 0 ? 0 : (long) wake;
}

//  One turn; false when the loop must stop (the store failed).
static bool s_turn (s_loop_t *self, aq_actor_t *actor) {
    bk_engine_t *engine = self->engine;
    zmq_pollitem_t items[3 * BK_SOCKETS_MAX + 32];
    int nitems = 0;
    for (int i = 0; i < self->nclients; i++)
        items[nitems++] = (zmq_pollitem_t){self->clients[i], 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < self->nworkers; i++)
        items[nitems++] = (zmq_pollitem_t){self->workers[i], 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < self->nevents; i++)
        items[nitems++] = (zmq_pollitem_t){self->events[i], 0, ZMQ_POLLIN, 0};
    nitems += bk_providers_poll_items (self->providers, items + nitems, 31);
    items[nitems++] = (zmq_pollitem_t){aq_actor_socket (actor), 0, ZMQ_POLLIN, 0};
    if (zmq_poll (items, nitems, s_wake (self)) < 0 && errno != EINTR)
        return false;
    if ((items[nitems - 1].revents & ZMQ_POLLIN) && aq_actor_command (actor) != AQ_ACTOR_RUN)
        return true; //  the loop ends; every turn before has committed
    for (int i = 0; i < self->nevents; i++)
        s_subscriptions (self, self->events[i]);

    bk_engine_clock (engine, aq_time_now_ms (), aq_time_mono_ms ());
    if (bk_store_begin (self->store, true) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "cannot begin a store transaction");
        return false;
    }
    if (self->recover) {
        bk_dispatch_recover (self->dispatch);
        bk_results_leases (self->results, bk_dispatch_leases (self->dispatch));
        bk_bulk_recover (self->bulk);
        self->recover = false;
    }
    //  A turn takes in at most S_BATCH messages and S_TURN_BYTES per
    //  socket, so one transaction stays well inside the store's headroom.
    for (int i = 0; i < self->nworkers; i++) {
        size_t bytes = 0;
        for (int n = 0; n < S_BATCH && bytes < S_TURN_BYTES &&
                        s_receive (self, self->workers[i], true, &bytes);
             n++)
            ;
    }
    size_t taken = 0; //  client requests in this turn
    for (int i = 0; i < self->nclients; i++) {
        size_t bytes = 0;
        int n = 0;
        while (n < S_BATCH && bytes < S_TURN_BYTES &&
               s_receive (self, self->clients[i], false, &bytes))
            n++;
        taken += (size_t) n;
    }
    s_providers (self);
    if (engine->next_due <= engine->now)
        bk_engine_promote_due (engine);
    bk_bulk_run (self->bulk, taken ? S_BULK_BUSY_US : S_BULK_IDLE_US);
    bk_dispatch_expire (self->dispatch);
    bk_dispatch_run (self->dispatch);
    bk_dispatch_heartbeat (self->dispatch);
    bk_handlers_tick (self->handlers);
    if (engine->seq != self->stored_seq &&
        bk_store_put (self->store, BK_DB_META, "seq", 3, &engine->seq, 8) == 0)
        self->stored_seq = engine->seq;
    int commit = bk_store_commit (self->store);
    if (commit != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "commit failed (%s): %zu messages answered 503",
                commit == BK_EFULL ? "disk or map full" : "storage error",
                bk_outbox_size (self->outbox));
        self->recover = true; //  memory may be ahead of the store
        bk_keys_forget (self->keys);
        engine->next_due = 0;
        self->stored_seq = 0; //  the turn's seq is not stored either
    }
    engine->stats.dropped += bk_outbox_flush (self->outbox, commit == 0);
    bk_store_settle (self->store);
    if (engine->mono - self->last_release > 1000) {
        bk_store_release_pages (self->store);
        self->last_release = engine->mono;
    }
    if (engine->mono - self->last_reader_check > 10000) {
        int dead = bk_store_reader_check (self->store);
        if (dead)
            aq_log (AQ_LOG_WARN, "broker", "cleared %d stale LMDB reader slots", dead);
        self->last_reader_check = engine->mono;
    }
    return true;
}

int bk_broker_run (const bk_config_t *cfg, aq_actor_t *actor) {
    if (sodium_init () < 0)
        return -1;
    s_loop_t self = {.cfg = cfg};
    int rc = -1;
    if (s_start (&self, aq_actor_ctx (actor)) == 0) {
        aq_actor_ready (actor);
        aq_notify_ready ("broker"); //  store open, log replayed, sockets bound
        int loop = aq_notify_loop_new ("broker");
        bool ok = true;
        while (ok && aq_actor_level (actor) == AQ_ACTOR_RUN) {
            aq_notify_loop_turn (loop); //  a stalled turn stops petting systemd's watchdog
            ok = s_turn (&self, actor);
        }
        aq_notify_stopping ();
        aq_notify_loop_end (loop);
        rc = ok ? 0 : -1;
        aq_log (ok ? AQ_LOG_INFO : AQ_LOG_ERROR, "broker",
                ok ? "stopped" : "stopped after a failure");
    }
    s_stop (&self);
    return rc;
}
