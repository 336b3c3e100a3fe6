/*  aq_curve.h - CURVE keys for asyncqueue's ZeroMQ links (czmq certificates)

    Every tcp link to the broker may be encrypted and authenticated with
    CURVE (ZeroMQ RFC 26). Keys are czmq certificates: `aqctl cert create
    PATH` writes PATH (the public certificate, safe to copy) and PATH_secret
    (both keys, 0600, never leaves its machine). A client side (gateway,
    worker, aqctl, the C client library) holds its own secret certificate and
    the broker's public one; the broker holds its secret certificate and
    directories of the public certificates it admits (see broker/zap.h).
*/
#ifndef AQ_CURVE_H
#define AQ_CURVE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _aq_curve_t aq_curve_t;

//  Loads the keys of a client: its secret certificate (PATH_secret, which
//  must not be readable by group or others) and the broker's public
//  certificate. NULL on failure, with an operator message in err
//  ("cannot load certificate 'x': ...").
aq_curve_t *aq_curve_new_client (const char *secret_cert, const char *broker_cert, char *err,
                                 size_t err_size);
//  Loads the broker's secret certificate (same checks). NULL and err.
aq_curve_t *aq_curve_new_server (const char *secret_cert, char *err, size_t err_size);
void aq_curve_destroy (aq_curve_t **self_p);

//  Makes socket use CURVE with these keys: as the server for a server
//  side, as a client of the broker's key otherwise. Call before bind or
//  connect. 0, or -1 with errno from zmq_setsockopt.
int aq_curve_apply (aq_curve_t *self, void *socket);

//  Our public key in Z85 text (40 characters), borrowed.
const char *aq_curve_public_txt (aq_curve_t *self);

//  Writes a new key pair as czmq certificates: path (public) and
//  path_secret (mode 0600). Refuses to overwrite either file. 0, or -1
//  with an operator message in err.
int aq_curve_create (const char *path, char *err, size_t err_size);

void aq_curve_test (bool verbose);

#endif
