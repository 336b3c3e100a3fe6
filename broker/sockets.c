/*  sockets.c - the broker's sockets, by role and by how they are secured */
#include "sockets.h"
#include "aq_curve.h"
#include "aq_log.h"
#include "aq_proto.h"
#include "zap.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define S_HWM 100000 //  messages queued each way per peer

static const char *s_role_name[BK_ROLES] = {"client", "worker", "event"};
static const char *s_domain[BK_ROLES] = {BK_ZAP_CLIENTS, BK_ZAP_WORKERS, BK_ZAP_EVENTS};

typedef enum { S_LOCAL, S_LOOPBACK, S_NETWORK, S_INVALID } s_kind_t;

struct _bk_sockets_t {
    void *plain[BK_ROLES]; //  ipc, inproc, insecure tcp; NULL if none
    void *curve[BK_ROLES]; //  tcp with CURVE; NULL if none
    aq_curve_t *keys;      //  the broker's certificate, with --cert
    bk_zap_t *zap;         //  the ZAP handler, with --cert
};

//  What an endpoint reaches: the machine only (ipc, inproc), its loopback
//  interface, or a network.
static s_kind_t s_kind (const char *endpoint) {
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return S_LOCAL;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return S_INVALID;
    const char *host = endpoint + 6, *colon = strrchr (host, ':');
    if (!colon || colon == host)
        return S_INVALID;
    size_t len = (size_t) (colon - host);
    if ((len == 9 && strncmp (host, "localhost", 9) == 0) ||
        (len == 5 && strncmp (host, "[::1]", 5) == 0) ||
        (len == 3 && strncmp (host, "::1", 3) == 0) || (len == 2 && strncmp (host, "lo", 2) == 0))
        return S_LOOPBACK;
    //  127.0.0.0/8, written as a dotted quad
    unsigned a, b, c, d;
    char tail;
    char text[64];
    if (len < sizeof text) {
        memcpy (text, host, len);
        text[len] = '\0';
        if (sscanf (text, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
            c < 256 && d < 256)
            return S_LOOPBACK;
    }
    return S_NETWORK;
}

//  Calls fn for each endpoint of a comma-separated list; stops at the
//  first non-zero return and returns it.
typedef int (s_each_fn) (void *arg, bk_role_t role, const char *endpoint);
static int s_each (const char *list, bk_role_t role, s_each_fn *fn, void *arg) {
    if (!list || !*list)
        return 0;
    char *copy = strdup (list), *save = NULL;
    assert (copy);
    int rc = 0;
    for (char *ep = strtok_r (copy, ",", &save); ep && rc == 0; ep = strtok_r (NULL, ",", &save))
        rc = fn (arg, role, ep);
    free (copy);
    return rc;
}

typedef struct {
    const bk_sockets_config_t *cfg;
    char *buf;
    size_t size;
} s_check_t;

static int s_check_one (void *arg, bk_role_t role, const char *endpoint) {
    s_check_t *check = arg;
    const bk_sockets_config_t *cfg = check->cfg;
    s_kind_t kind = s_kind (endpoint);
    const char *allow = role == BK_WORKERS ? cfg->allow_workers : cfg->allow_clients;
    if (kind == S_INVALID)
        snprintf (check->buf, check->size,
                  "cannot bind %s endpoint '%s': use ipc://, inproc:// or tcp://HOST:PORT",
                  s_role_name[role], endpoint);
    else if (kind == S_NETWORK && !cfg->cert)
        snprintf (check->buf, check->size,
                  "refusing to bind %s endpoint '%s' beyond loopback without --cert: anyone "
                  "who reaches it could take jobs or send requests (docs/operations.md, "
                  "\"Several machines\")",
                  s_role_name[role], endpoint);
    else if (kind == S_LOOPBACK && !cfg->cert && !cfg->insecure)
        snprintf (check->buf, check->size,
                  "%s endpoint '%s' needs --cert (CURVE) or --insecure: every local user can "
                  "reach a tcp port",
                  s_role_name[role], endpoint);
    else if (kind != S_LOCAL && cfg->cert && !allow)
        snprintf (check->buf, check->size, "%s endpoint '%s' with --cert needs %s DIR",
                  s_role_name[role], endpoint,
                  role == BK_WORKERS ? "--allow-workers" : "--allow-clients");
    else
        return 0;
    return -1;
}

const char *bk_sockets_check (const bk_sockets_config_t *cfg, char *buf, size_t size) {
    if ((cfg->allow_clients || cfg->allow_workers) && !cfg->cert)
        return "--allow-clients and --allow-workers need --cert";
    s_check_t check = {cfg, buf, size};
    for (int role = 0; role < BK_ROLES; role++)
        if (s_each (cfg->endpoints[role], (bk_role_t) role, s_check_one, &check) != 0)
            return buf;
    return NULL;
}

//  --------------------------------------------------------------------------

static void *s_socket (void *ctx, bk_role_t role) {
    void *socket = zmq_socket (ctx, role == BK_EVENTS ? ZMQ_XPUB : ZMQ_ROUTER);
    if (!socket)
        return NULL;
    int one = 1, zero = 0, hwm = S_HWM;
    int64_t max = AQ_PROTO_MAX_MSG;
    zmq_setsockopt (socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (role == BK_EVENTS) //  subscriptions are checked by the broker (topics are keys)
        zmq_setsockopt (socket, ZMQ_XPUB_MANUAL, &one, sizeof one);
    else {
        zmq_setsockopt (socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
        zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    }
    return socket;
}

typedef struct {
    bk_sockets_t *self;
    void *ctx;
} s_bind_t;

static int s_bind_one (void *arg, bk_role_t role, const char *endpoint) {
    s_bind_t *bind = arg;
    bk_sockets_t *self = bind->self;
    bool curve = s_kind (endpoint) != S_LOCAL && self->keys;
    void **slot = curve ? &self->curve[role] : &self->plain[role];
    if (!*slot) {
        *slot = s_socket (bind->ctx, role);
        if (*slot && curve &&
            (aq_curve_apply (self->keys, *slot) != 0 ||
             bk_zap_guard (self->zap, *slot, s_domain[role]) != 0)) {
            aq_log (AQ_LOG_ERROR, "broker", "cannot set up CURVE on the %s socket: %s",
                    s_role_name[role], zmq_strerror (errno));
            return -1;
        }
    }
    if (!*slot || zmq_bind (*slot, endpoint) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "cannot bind %s endpoint '%s': %s", s_role_name[role],
                endpoint, zmq_strerror (errno));
        return -1;
    }
    if (strncmp (endpoint, "ipc://", 6) == 0 && chmod (endpoint + 6, 0600) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "cannot make '%s' private: %s", endpoint + 6,
                strerror (errno));
        return -1;
    }
    if (!curve && s_kind (endpoint) != S_LOCAL)
        aq_log (AQ_LOG_WARN, "broker",
                "%s endpoint '%s' has no CURVE (--insecure): any local user can connect",
                s_role_name[role], endpoint);
    else if (curve)
        aq_log (AQ_LOG_INFO, "broker", "%s endpoint '%s' with CURVE, broker key '%s'",
                s_role_name[role], endpoint, aq_curve_public_txt (self->keys));
    return 0;
}

bk_sockets_t *bk_sockets_new (void *zmq_ctx, const bk_sockets_config_t *cfg) {
    char problem[512];
    const char *why = bk_sockets_check (cfg, problem, sizeof problem);
    if (why) {
        aq_log (AQ_LOG_ERROR, "broker", "%s", why);
        return NULL;
    }
    bk_sockets_t *self = calloc (1, sizeof *self);
    assert (self);
    if (cfg->cert) {
        self->keys = aq_curve_new_server (cfg->cert, problem, sizeof problem);
        if (!self->keys) {
            aq_log (AQ_LOG_ERROR, "broker", "%s", problem);
            goto fail;
        }
        //  the handler first: a CURVE socket without one would admit anybody
        self->zap = bk_zap_new (zmq_ctx, cfg->allow_clients, cfg->allow_workers);
        if (!self->zap)
            goto fail;
    }
    s_bind_t bind = {self, zmq_ctx};
    for (int role = 0; role < BK_ROLES; role++)
        if (s_each (cfg->endpoints[role], (bk_role_t) role, s_bind_one, &bind) != 0)
            goto fail;
    return self;
fail:
    bk_sockets_destroy (&self);
    return NULL;
}

void bk_sockets_destroy (bk_sockets_t **self_p) {
    assert (self_p);
    bk_sockets_t *self = *self_p;
    if (!self)
        return;
    for (int role = 0; role < BK_ROLES; role++) {
        if (self->plain[role])
            zmq_close (self->plain[role]);
        if (self->curve[role])
            zmq_close (self->curve[role]);
    }
    bk_zap_destroy (&self->zap);
    aq_curve_destroy (&self->keys);
    free (self);
    *self_p = NULL;
}

int bk_sockets_of (bk_sockets_t *self, bk_role_t role, void *out[BK_SOCKETS_MAX]) {
    assert (self && role < BK_ROLES);
    int n = 0;
    if (self->plain[role])
        out[n++] = self->plain[role];
    if (self->curve[role])
        out[n++] = self->curve[role];
    return n;
}

uint64_t bk_sockets_refused (bk_sockets_t *self) {
    assert (self);
    return self->zap ? bk_zap_refused (self->zap) : 0;
}

void bk_sockets_test (bool verbose) {
    assert (s_kind ("ipc:///tmp/x.ipc") == S_LOCAL && s_kind ("inproc://x") == S_LOCAL);
    assert (s_kind ("tcp://127.0.0.1:5570") == S_LOOPBACK &&
            s_kind ("tcp://127.9.8.7:1") == S_LOOPBACK);
    assert (s_kind ("tcp://localhost:1") == S_LOOPBACK && s_kind ("tcp://[::1]:1") == S_LOOPBACK);
    assert (s_kind ("tcp://lo:1") == S_LOOPBACK);
    assert (s_kind ("tcp://0.0.0.0:1") == S_NETWORK && s_kind ("tcp://*:1") == S_NETWORK);
    assert (s_kind ("tcp://10.0.0.1:1") == S_NETWORK &&
            s_kind ("tcp://127.0.0.1.evil:1") == S_NETWORK);
    assert (s_kind ("tcp://eth0:1") == S_NETWORK && s_kind ("tcp://128.0.0.1:1") == S_NETWORK);
    assert (s_kind ("pgm://x") == S_INVALID && s_kind ("tcp://nocolon") == S_INVALID);

    char buf[512];
    bk_sockets_config_t cfg = {{"ipc:///tmp/c.ipc", "inproc://w", NULL}, NULL, NULL, NULL, false};
    assert (bk_sockets_check (&cfg, buf, sizeof buf) == NULL);
    cfg.endpoints[BK_WORKERS] = "inproc://w,tcp://127.0.0.1:5571";
    assert (
        strstr (bk_sockets_check (&cfg, buf, sizeof buf), "needs --cert (CURVE) or --insecure"));
    cfg.insecure = true;
    assert (bk_sockets_check (&cfg, buf, sizeof buf) == NULL);
    cfg.endpoints[BK_CLIENTS] = "tcp://0.0.0.0:5570";
    assert (strstr (bk_sockets_check (&cfg, buf, sizeof buf), "beyond loopback without --cert"));
    cfg.cert = "/x_secret";
    assert (strstr (bk_sockets_check (&cfg, buf, sizeof buf), "needs --allow-clients DIR"));
    cfg.allow_clients = "/c";
    assert (strstr (bk_sockets_check (&cfg, buf, sizeof buf), "needs --allow-workers DIR"));
    cfg.allow_workers = "/w";
    assert (bk_sockets_check (&cfg, buf, sizeof buf) == NULL);
    cfg.endpoints[BK_EVENTS] = "udp://x:1";
    assert (strstr (bk_sockets_check (&cfg, buf, sizeof buf), "use ipc://, inproc:// or tcp://"));
    bk_sockets_config_t loose = {{NULL, NULL, NULL}, NULL, "/c", NULL, false};
    assert (strstr (bk_sockets_check (&loose, buf, sizeof buf), "need --cert"));

    //  plain sockets on inproc: two roles, no CURVE, nothing refused
    void *ctx = zmq_ctx_new ();
    bk_sockets_config_t local = {
        {"inproc://t-c", "inproc://t-w", "inproc://t-e"}, NULL, NULL, NULL, false};
    bk_sockets_t *sockets = bk_sockets_new (ctx, &local);
    assert (sockets);
    void *out[BK_SOCKETS_MAX];
    assert (bk_sockets_of (sockets, BK_CLIENTS, out) == 1 &&
            bk_sockets_of (sockets, BK_EVENTS, out) == 1);
    assert (bk_sockets_refused (sockets) == 0);
    bk_sockets_destroy (&sockets);
    assert (!sockets);
    zmq_ctx_term (ctx);
    if (verbose)
        printf ("bk_sockets: ok\n");
}
