/*  zap.c - who may connect to the broker's CURVE endpoints

    czmq's zauth admits one set of keys for every domain, and its
    zcertstore aborts on a directory holding the same key twice; this
    handler keeps one allow list per domain, built from czmq's zcert, zdir
    and zhashx, and skips duplicates.
*/
#include "zap.h"
#include "aq_log.h"
#include "aq_time.h"
#include "store.h"

#include <assert.h>
#include <czmq.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_ENDPOINT   "inproc://zeromq.zap.01" //  where libzmq asks (RFC 27)
#define S_LOG_MS     60000                    //  one log line per address per minute
#define S_LOG_MEMORY 4096                     //  addresses remembered for that
#define S_GUARDS     16                       //  sockets watched at most

//  One allow list: the public certificates in a directory.
typedef struct {
    const char *dir; //  borrowed from the shared state, NULL: nobody
    zhashx_t *keys;  //  Z85 public key -> (void *) 1
    time_t modified; //  newest file time seen, as zdir reports it
    size_t count;    //  files seen
    off_t size;      //  their total size
    bool loaded;     //  read at least once
} s_allow_t;

//  What the actor and its owner share.
typedef struct {
    void *ctx;                    //  the guarded sockets' context
    char *dirs[2];                //  clients, workers
    atomic_uint_fast64_t refused; //  refusals so far
    int guards;                   //  monitors handed to the actor
    bool running;                 //  the handler is bound (set before the actor signals)
} s_shared_t;

struct _bk_zap_t {
    zactor_t *actor;    //  runs s_actor
    s_shared_t *shared; //  owned; outlives the actor
};

//  --------------------------------------------------------------------------
//  Allow lists

static void s_allow_init (s_allow_t *self, const char *dir) {
    memset (self, 0, sizeof *self);
    self->dir = dir;
    self->keys = zhashx_new ();
    assert (self->keys);
}

//  Reads the directory again when it changed since the last look.
static void s_allow_refresh (s_allow_t *self, const char *domain) {
    if (!self->dir)
        return;
    zdir_t *dir = zdir_new (self->dir, NULL);
    time_t modified = dir ? zdir_modified (dir) : 0;
    size_t count = dir ? (size_t) zdir_count (dir) : 0;
    off_t size = dir ? zdir_cursize (dir) : 0;
    if (self->loaded && modified == self->modified && count == self->count && size == self->size) {
        zdir_destroy (&dir);
        return;
    }
    zhashx_purge (self->keys);
    if (dir) {
        zfile_t **files = zdir_flatten (dir);
        for (size_t i = 0; files && files[i]; i++) {
            const char *name = zfile_filename (files[i], NULL);
            size_t len = strlen (name);
            if (!zfile_is_regular (files[i]) ||
                (len > 7 && strcmp (name + len - 7, "_secret") == 0))
                continue;
            zcert_t *cert = zcert_load (name);
            if (cert)
                zhashx_insert (self->keys, zcert_public_txt (cert), (void *) 1); //  -1: a duplicate
            zcert_destroy (&cert);
        }
        zdir_flatten_free (&files);
    }
    aq_log (AQ_LOG_INFO, "broker", "%s admits %zu keys from '%s'%s", domain,
            zhashx_size (self->keys), self->dir, dir ? "" : " (no such directory yet)");
    zdir_destroy (&dir);
    self->modified = modified;
    self->count = count;
    self->size = size;
    self->loaded = true;
}

//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    void *pair;      //  reads a monitored socket's events
    char domain[16]; //  whose socket
    int64_t logged;  //  mono ms of the last line about it
} s_guard_t;

typedef struct {
    s_shared_t *shared; //  borrowed
    void *handler;      //  REP bound to S_ENDPOINT
    s_allow_t allow[2]; //  clients, workers
    zhashx_t *logged;   //  address -> mono ms of its last log line
    s_guard_t guards[S_GUARDS];
    int nguards;
} s_zap_t;

//  True when once-a-minute logging allows a line about address now.
static bool s_may_log (s_zap_t *self, const char *address) {
    int64_t now = aq_time_mono_ms ();
    void *last = zhashx_lookup (self->logged, address);
    if (last && now - (int64_t) (intptr_t) last < S_LOG_MS)
        return false;
    if (zhashx_size (self->logged) >= S_LOG_MEMORY)
        zhashx_purge (self->logged);
    zhashx_update (self->logged, address, (void *) (intptr_t) now);
    return true;
}

static char *s_frame_str (zmsg_t *msg) {
    char *text = zmsg_popstr (msg);
    return text ? text : strdup ("");
}

//  Answers one ZAP request (RFC 27): version, request id, domain, address,
//  identity, mechanism, credentials.
static void s_handle_request (s_zap_t *self) {
    zmsg_t *request = zmsg_recv (self->handler);
    if (!request)
        return;
    char *version = s_frame_str (request), *sequence = s_frame_str (request);
    char *domain = s_frame_str (request), *address = s_frame_str (request);
    char *identity = s_frame_str (request), *mechanism = s_frame_str (request);
    zframe_t *key = zmsg_pop (request);
    char key_txt[41] = "";
    if (key && zframe_size (key) == 32)
        zmq_z85_encode (key_txt, zframe_data (key), 32);
    bool workers = strcmp (domain, BK_ZAP_WORKERS) == 0;
    bool known =
        workers || strcmp (domain, BK_ZAP_CLIENTS) == 0 || strcmp (domain, BK_ZAP_EVENTS) == 0;
    s_allow_t *allow = &self->allow[workers ? 1 : 0];
    bool ok = false;
    if (known && strcmp (mechanism, "CURVE") == 0 && *key_txt) {
        s_allow_refresh (allow, workers ? "--allow-workers" : "--allow-clients");
        ok = zhashx_lookup (allow->keys, key_txt) != NULL;
    }
    if (!ok) {
        atomic_fetch_add (&self->shared->refused, 1);
        if (s_may_log (self, address))
            aq_log (AQ_LOG_WARN, "broker",
                    "refused %s at %s: key '%s' is not in %s '%s' (logged once a minute)",
                    known ? domain : "a connection", *address ? address : "?",
                    *key_txt ? key_txt : "none", workers ? "--allow-workers" : "--allow-clients",
                    allow->dir ? allow->dir : "(not given)");
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence);
    zmsg_addstr (reply, ok ? "200" : "400");
    zmsg_addstr (reply, ok ? "OK" : "key not allowed");
    zmsg_addstr (reply, ok ? key_txt : "");
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, self->handler);
    zframe_destroy (&key);
    free (version);
    free (sequence);
    free (domain);
    free (address);
    free (identity);
    free (mechanism);
    zmsg_destroy (&request);
}

//  A monitored socket's event: a handshake that failed before ZAP.
static void s_handle_event (s_zap_t *self, s_guard_t *guard) {
    zmsg_t *event = zmsg_recv (guard->pair);
    zframe_t *head = event ? zmsg_first (event) : NULL;
    char *endpoint = event && zmsg_size (event) > 1 ? zframe_strdup (zmsg_next (event)) : NULL;
    if (head && zframe_size (head) >= 2) {
        uint16_t id;
        memcpy (&id, zframe_data (head), 2);
        atomic_fetch_add (&self->shared->refused, 1);
        int64_t now = aq_time_mono_ms ();
        if (now - guard->logged >= S_LOG_MS || guard->logged == 0) {
            guard->logged = now;
            aq_log (AQ_LOG_WARN, "broker",
                    "a peer failed the CURVE handshake on the %s endpoint '%s': a wrong secret "
                    "key, or no CURVE (logged once a minute)",
                    guard->domain, endpoint ? endpoint : "?");
        }
    }
    free (endpoint);
    zmsg_destroy (&event);
}

//  GUARD endpoint domain: connects to a socket's monitor. 0 or -1.
static int s_handle_guard (s_zap_t *self, zmsg_t *msg) {
    char *endpoint = zmsg_popstr (msg), *domain = zmsg_popstr (msg);
    int rc = -1;
    if (endpoint && domain && self->nguards < S_GUARDS) {
        s_guard_t *guard = &self->guards[self->nguards];
        memset (guard, 0, sizeof *guard);
        guard->pair = zmq_socket (self->shared->ctx, ZMQ_PAIR);
        int zero = 0;
        zmq_setsockopt (guard->pair, ZMQ_LINGER, &zero, sizeof zero);
        if (guard->pair && zmq_connect (guard->pair, endpoint) == 0) {
            snprintf (guard->domain, sizeof guard->domain, "%s", domain);
            self->nguards++;
            rc = 0;
        } else if (guard->pair)
            zmq_close (guard->pair);
    }
    free (endpoint);
    free (domain);
    return rc;
}

static void s_actor (zsock_t *pipe, void *arg) {
    s_zap_t self = {.shared = arg};
    self.handler = zmq_socket (self.shared->ctx, ZMQ_REP);
    int zero = 0;
    if (self.handler)
        zmq_setsockopt (self.handler, ZMQ_LINGER, &zero, sizeof zero);
    if (!self.handler || zmq_bind (self.handler, S_ENDPOINT) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "cannot start the ZAP handler: %s", zmq_strerror (errno));
        if (self.handler)
            zmq_close (self.handler);
        zsock_signal (pipe, 1);
        return;
    }
    s_allow_init (&self.allow[0], self.shared->dirs[0]);
    s_allow_init (&self.allow[1], self.shared->dirs[1]);
    s_allow_refresh (&self.allow[0], "--allow-clients");
    s_allow_refresh (&self.allow[1], "--allow-workers");
    self.logged = zhashx_new ();
    self.shared->running = true;
    zsock_signal (pipe, 0);

    while (true) {
        zmq_pollitem_t items[2 + S_GUARDS] = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
                                              {self.handler, 0, ZMQ_POLLIN, 0}};
        for (int i = 0; i < self.nguards; i++)
            items[2 + i] = (zmq_pollitem_t){self.guards[i].pair, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (items, 2 + self.nguards, -1) < 0 && errno != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg ? zmsg_popstr (msg) : NULL;
            bool stop = !command || strcmp (command, "$TERM") == 0;
            int rc = command && strcmp (command, "GUARD") == 0 ? s_handle_guard (&self, msg) : -1;
            free (command);
            zmsg_destroy (&msg);
            if (stop)
                break;
            zsock_signal (pipe, (byte) (rc == 0 ? 0 : 1));
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_request (&self);
        for (int i = 0; i < self.nguards; i++)
            if (items[2 + i].revents & ZMQ_POLLIN)
                s_handle_event (&self, &self.guards[i]);
    }
    for (int i = 0; i < self.nguards; i++)
        zmq_close (self.guards[i].pair);
    zmq_close (self.handler);
    zhashx_destroy (&self.allow[0].keys);
    zhashx_destroy (&self.allow[1].keys);
    zhashx_destroy (&self.logged);
}

//  --------------------------------------------------------------------------
//  The owner's side

bk_zap_t *bk_zap_new (void *zmq_ctx, const char *clients_dir, const char *workers_dir) {
    assert (zmq_ctx);
    bk_zap_t *self = calloc (1, sizeof *self);
    assert (self);
    self->shared = calloc (1, sizeof *self->shared);
    assert (self->shared);
    self->shared->ctx = zmq_ctx;
    self->shared->dirs[0] = clients_dir ? strdup (clients_dir) : NULL;
    self->shared->dirs[1] = workers_dir ? strdup (workers_dir) : NULL;
    self->actor = zactor_new (s_actor, self->shared); //  returns once the actor signalled
    if (!self->actor || !self->shared->running)
        bk_zap_destroy (&self);
    return self;
}

void bk_zap_destroy (bk_zap_t **self_p) {
    assert (self_p);
    bk_zap_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self->shared->dirs[0]);
    free (self->shared->dirs[1]);
    free (self->shared);
    free (self);
    *self_p = NULL;
}

int bk_zap_guard (bk_zap_t *self, void *socket, const char *domain) {
    assert (self && socket && domain);
    if (zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, domain, strlen (domain)) != 0)
        return -1;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://aq-zap-guard-%p-%d", (void *) self,
              self->shared->guards++);
    if (zmq_socket_monitor (socket, endpoint,
                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0)
        return -1;
    zstr_sendx (self->actor, "GUARD", endpoint, domain, NULL);
    return zsock_wait (self->actor) == 0 ? 0 : -1;
}

uint64_t bk_zap_refused (bk_zap_t *self) {
    assert (self);
    return atomic_load (&self->shared->refused);
}

//  --------------------------------------------------------------------------
//  Selftest: a CURVE ROUTER guarded for workers; who gets an answer.

//  A DEALER with keys from secret (NULL: no CURVE) that sends "hi" to
//  endpoint; true when the ROUTER heard it within ms.
static bool s_heard (void *ctx, void *router, const char *endpoint, const char *secret,
                     const char *server_public, int ms) {
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (secret) {
        zcert_t *cert = zcert_load (secret), *server = zcert_load (server_public);
        assert (cert && server);
        zcert_apply (cert, dealer);
        zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, zcert_public_key (server), 32);
        zcert_destroy (&cert);
        zcert_destroy (&server);
    }
    assert (zmq_connect (dealer, endpoint) == 0);
    zmq_send (dealer, "hi", 2, ZMQ_DONTWAIT);
    zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
    bool heard = zmq_poll (&item, 1, ms) == 1;
    if (heard) {
        zmsg_t *msg = zmsg_recv (router);
        zmsg_destroy (&msg);
    }
    zmq_close (dealer);
    return heard;
}

//  A new key pair: its secret certificate saved as secret, its public one
//  in each directory of dirs (NULL-terminated) under name.
static void s_new_cert (const char *secret, const char *name, const char *const *dirs) {
    zcert_t *cert = zcert_new ();
    assert (cert && zcert_save_secret (cert, secret) == 0);
    for (; *dirs; dirs++) {
        char path[300];
        snprintf (path, sizeof path, "%s/%s", *dirs, name);
        assert (zcert_save_public (cert, path) == 0);
    }
    zcert_destroy (&cert);
}

void bk_zap_test (bool verbose) {
    char dir[BK_STORE_TEST_DIR], workers[200], clients[200];
    bk_store_test_dir (dir);
    snprintf (workers, sizeof workers, "%s/workers", dir);
    snprintf (clients, sizeof clients, "%s/clients", dir);
    assert (mkdir (workers, 0700) == 0 && mkdir (clients, 0700) == 0);
    char broker[200], worker[200], client[200], stranger[200];
    snprintf (broker, sizeof broker, "%s/broker", dir);
    snprintf (worker, sizeof worker, "%s/worker_secret", dir);
    snprintf (client, sizeof client, "%s/client_secret", dir);
    snprintf (stranger, sizeof stranger, "%s/stranger_secret", dir);
    zcert_t *keys = zcert_new ();
    assert (keys && zcert_save (keys, broker) == 0);
    const char *const none[] = {NULL}, *const in_workers[] = {workers, NULL},
                      *const in_clients[] = {clients, NULL};
    s_new_cert (worker, "w1", in_workers);
    zcert_t *again = zcert_load (worker);
    char path[300];
    snprintf (path, sizeof path, "%s/w1-copy", workers);
    assert (zcert_save_public (again, path) == 0); //  the same key twice is fine
    zcert_destroy (&again);
    s_new_cert (client, "c1", in_clients);
    s_new_cert (stranger, "s1", none);

    void *ctx = zmq_ctx_new ();
    bk_zap_t *zap = bk_zap_new (ctx, clients, workers);
    assert (zap && bk_zap_refused (zap) == 0);
    assert (!bk_zap_new (ctx, NULL, NULL)); //  one handler per context
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    int zero = 0, one = 1;
    zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
    zcert_apply (keys, router);
    zmq_setsockopt (router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zcert_destroy (&keys);
    assert (bk_zap_guard (zap, router, BK_ZAP_WORKERS) == 0);
    assert (zmq_bind (router, "tcp://127.0.0.1:*") == 0);
    char endpoint[128];
    size_t size = sizeof endpoint;
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &size);

    assert (s_heard (ctx, router, endpoint, worker, broker, 5000));
    assert (bk_zap_refused (zap) == 0);
    //  a client's key never admits a worker, nor does a stranger's
    assert (!s_heard (ctx, router, endpoint, client, broker, 300));
    assert (!s_heard (ctx, router, endpoint, stranger, broker, 300));
    assert (bk_zap_refused (zap) == 2);
    //  no CURVE at all: a failed handshake, counted by the monitor
    assert (!s_heard (ctx, router, endpoint, NULL, NULL, 300));
    for (int i = 0; i < 100 && bk_zap_refused (zap) < 3; i++)
        zclock_sleep (10);
    assert (bk_zap_refused (zap) == 3);
    //  the allow directory is read again: the stranger is admitted...
    zcert_t *cert = zcert_load (stranger);
    snprintf (path, sizeof path, "%s/s1", workers);
    assert (zcert_save_public (cert, path) == 0);
    zcert_destroy (&cert);
    assert (s_heard (ctx, router, endpoint, stranger, broker, 5000));
    //  ...and turned away once its certificate is gone
    assert (unlink (path) == 0);
    assert (!s_heard (ctx, router, endpoint, stranger, broker, 300));

    zmq_close (router);
    bk_zap_destroy (&zap);
    assert (!zap);
    zmq_ctx_term (ctx);
    bk_store_test_remove (dir);
    if (verbose)
        printf ("bk_zap: ok\n");
}
