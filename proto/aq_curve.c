/*  aq_curve.c - CURVE keys for asyncqueue's ZeroMQ links (czmq certificates) */
#include "aq_curve.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _aq_curve_t {
    zcert_t *cert;       //  our keys (secret included)
    bool server;         //  the broker's side
    uint8_t broker[32];  //  the broker's public key (client side)
    char broker_txt[41]; //  the same in Z85
};

//  A secret certificate file must be ours alone: a regular file, not a
//  symlink, not readable or writable by group or others.
static int s_check_secret (const char *path, char *err, size_t err_size) {
    struct stat st;
    if (lstat (path, &st) != 0) {
        snprintf (err, err_size, "cannot load certificate '%s': %s", path, strerror (errno));
        return -1;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, err_size, "cannot load certificate '%s': not a regular file", path);
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf (err, err_size,
                  "secret certificate '%s' is readable by group or others (mode %04o): "
                  "chmod 600 it",
                  path, (unsigned) (st.st_mode & 07777));
        return -1;
    }
    return 0;
}

static bool s_has_secret (zcert_t *cert) {
    static const char zeros[] = "0000000000000000000000000000000000000000";
    return strcmp (zcert_secret_txt (cert), zeros) != 0;
}

static aq_curve_t *s_load (const char *secret_cert, bool server, char *err, size_t err_size) {
    if (!secret_cert || !*secret_cert) {
        snprintf (err, err_size, "--cert needs a secret certificate (PATH_secret)");
        return NULL;
    }
    if (s_check_secret (secret_cert, err, err_size) != 0)
        return NULL;
    zcert_t *cert = zcert_load (secret_cert);
    if (!cert || !s_has_secret (cert)) {
        snprintf (err, err_size,
                  "cannot load certificate '%s': not a czmq secret certificate "
                  "(make one with 'aqctl cert create PATH', then use PATH_secret)",
                  secret_cert);
        zcert_destroy (&cert);
        return NULL;
    }
    aq_curve_t *self = calloc (1, sizeof *self);
    assert (self);
    self->cert = cert;
    self->server = server;
    return self;
}

aq_curve_t *aq_curve_new_server (const char *secret_cert, char *err, size_t err_size) {
    return s_load (secret_cert, true, err, err_size);
}

aq_curve_t *aq_curve_new_client (const char *secret_cert, const char *broker_cert, char *err,
                                 size_t err_size) {
    if (!broker_cert || !*broker_cert) {
        snprintf (err, err_size,
                  "--cert needs --broker-cert PATH (the broker's public certificate)");
        return NULL;
    }
    aq_curve_t *self = s_load (secret_cert, false, err, err_size);
    if (!self)
        return NULL;
    zcert_t *broker = access (broker_cert, R_OK) == 0 ? zcert_load (broker_cert) : NULL;
    if (!broker) {
        snprintf (err, err_size, "cannot load certificate '%s': %s", broker_cert,
                  access (broker_cert, R_OK) == 0 ? "not a czmq certificate" : strerror (errno));
        aq_curve_destroy (&self);
        return NULL;
    }
    memcpy (self->broker, zcert_public_key (broker), 32);
    snprintf (self->broker_txt, sizeof self->broker_txt, "%s", zcert_public_txt (broker));
    zcert_destroy (&broker);
    return self;
}

void aq_curve_destroy (aq_curve_t **self_p) {
    assert (self_p);
    aq_curve_t *self = *self_p;
    if (!self)
        return;
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

int aq_curve_apply (aq_curve_t *self, void *socket) {
    assert (self && socket);
    int rc = zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (self->cert), 32);
    if (rc == 0)
        rc = zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_key (self->cert), 32);
    if (rc == 0 && self->server) {
        int one = 1;
        rc = zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one);
    } else if (rc == 0)
        rc = zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, self->broker, 32);
    return rc;
}

const char *aq_curve_public_txt (aq_curve_t *self) {
    assert (self);
    return zcert_public_txt (self->cert);
}

int aq_curve_create (const char *path, char *err, size_t err_size) {
    char secret[4096];
    if (!path || !*path || strlen (path) > 240) { //  czmq keeps a path in 256 bytes
        snprintf (err, err_size, "cert create needs a PATH of 1 to 240 characters");
        return -1;
    }
    snprintf (secret, sizeof secret, "%s_secret", path);
    if (access (path, F_OK) == 0 || access (secret, F_OK) == 0) {
        snprintf (err, err_size, "cannot create certificate '%s': it exists (remove it first)",
                  access (path, F_OK) == 0 ? path : secret);
        return -1;
    }
    //  Reserve the secret file with mode 0600 before czmq writes it
    int fd = open (secret, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf (err, err_size, "cannot create certificate '%s': %s", secret, strerror (errno));
        return -1;
    }
    close (fd);
    zcert_t *cert = zcert_new ();
    int rc = cert ? zcert_save (cert, path) : -1;
    zcert_destroy (&cert);
    if (rc == 0)
        rc = chmod (secret, 0600);
    if (rc != 0) {
        snprintf (err, err_size, "cannot create certificate '%s': %s", path, strerror (errno));
        unlink (secret);
        unlink (path);
        return -1;
    }
    return 0;
}

void aq_curve_test (bool verbose) {
    char dir[] = "/tmp/aq-curve-test-XXXXXX", path[128], secret[140], err[512];
    assert (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/broker", dir);
    snprintf (secret, sizeof secret, "%s/broker_secret", dir);
    assert (aq_curve_create (path, err, sizeof err) == 0);
    struct stat st;
    assert (stat (secret, &st) == 0 && (st.st_mode & 0777) == 0600);
    assert (aq_curve_create (path, err, sizeof err) == -1 && strstr (err, "it exists"));

    aq_curve_t *server = aq_curve_new_server (secret, err, sizeof err);
    assert (server && strlen (aq_curve_public_txt (server)) == 40);
    //  a public certificate is not a key pair
    assert (!aq_curve_new_server (path, err, sizeof err));
    //  a secret others can read is refused, naming the file
    assert (chmod (secret, 0640) == 0);
    assert (!aq_curve_new_server (secret, err, sizeof err) && strstr (err, "chmod 600"));
    assert (chmod (secret, 0600) == 0);

    char client_path[128], client_secret[140];
    snprintf (client_path, sizeof client_path, "%s/client", dir);
    snprintf (client_secret, sizeof client_secret, "%s/client_secret", dir);
    assert (aq_curve_create (client_path, err, sizeof err) == 0);
    assert (!aq_curve_new_client (client_secret, NULL, err, sizeof err));
    assert (!aq_curve_new_client (client_secret, "/nonexistent", err, sizeof err) &&
            strstr (err, "/nonexistent"));
    aq_curve_t *client = aq_curve_new_client (client_secret, path, err, sizeof err);
    assert (client && strcmp (client->broker_txt, aq_curve_public_txt (server)) == 0);

    //  a CURVE round trip over tcp loopback
    void *ctx = zmq_ctx_new ();
    void *rep = zmq_socket (ctx, ZMQ_REP), *req = zmq_socket (ctx, ZMQ_REQ);
    int zero = 0, ms = 5000;
    zmq_setsockopt (rep, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (req, ZMQ_RCVTIMEO, &ms, sizeof ms);
    zmq_setsockopt (rep, ZMQ_RCVTIMEO, &ms, sizeof ms);
    assert (aq_curve_apply (server, rep) == 0 && aq_curve_apply (client, req) == 0);
    assert (zmq_bind (rep, "tcp://127.0.0.1:*") == 0);
    char endpoint[128];
    size_t size = sizeof endpoint;
    zmq_getsockopt (rep, ZMQ_LAST_ENDPOINT, endpoint, &size);
    assert (zmq_connect (req, endpoint) == 0);
    char buf[8];
    assert (zmq_send (req, "ping", 4, 0) == 4);
    assert (zmq_recv (rep, buf, sizeof buf, 0) == 4 && memcmp (buf, "ping", 4) == 0);
    zmq_close (rep);
    zmq_close (req);
    zmq_ctx_term (ctx);

    aq_curve_destroy (&client);
    aq_curve_destroy (&server);
    assert (!server && !client);
    unlink (secret);
    unlink (path);
    unlink (client_secret);
    unlink (client_path);
    rmdir (dir);
    if (verbose)
        printf ("aq_curve: ok\n");
}
