/*  sockets.h - the broker's sockets, by role and by how they are secured

    Each role (the clients ROUTER, the workers ROUTER, the events XPUB) has
    up to two sockets, because ZeroMQ sets the security mechanism per socket:
    a plain one for ipc:// and inproc:// endpoints (guarded by file
    permissions: the data directory's ipc files are 0600) and for tcp://
    with --insecure, and a CURVE one for tcp:// endpoints when the broker
    has --cert, guarded by the ZAP handler (zap.h) with the --allow-clients
    and --allow-workers directories.

    The policy (bk_sockets_check): tcp beyond loopback needs --cert; tcp on
    loopback needs --cert or --insecure (every local user can reach it);
    --cert needs the allow directory of each role it serves over tcp.
*/
#ifndef BK_SOCKETS_H
#define BK_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { BK_CLIENTS, BK_WORKERS, BK_EVENTS, BK_ROLES } bk_role_t;

#define BK_SOCKETS_MAX 2 //  sockets of one role at most

typedef struct {
    const char *endpoints[BK_ROLES]; //  comma-separated lists to bind (NULL: none)
    const char *cert;                //  the broker's secret certificate, or NULL
    const char *allow_clients;       //  public certificates admitted on clients and events
    const char *allow_workers;       //  public certificates admitted on workers
    bool insecure;                   //  tcp without CURVE allowed (loopback only)
} bk_sockets_config_t;

typedef struct _bk_sockets_t bk_sockets_t;

//  NULL when cfg may be bound, else why not (an operator message, in buf
//  or static).
const char *bk_sockets_check (const bk_sockets_config_t *cfg, char *buf, size_t size);

//  Creates and binds every socket of cfg in zmq_ctx (ROUTERs with
//  ZMQ_ROUTER_MANDATORY, XPUBs with ZMQ_XPUB_MANUAL), starting the ZAP
//  handler first when there are CURVE sockets. ipc files are made 0600.
//  NULL on failure, logged as one line.
bk_sockets_t *bk_sockets_new (void *zmq_ctx, const bk_sockets_config_t *cfg);
//  Closes the sockets, then stops the ZAP handler.
void bk_sockets_destroy (bk_sockets_t **self_p);

//  The sockets of a role into out (at most BK_SOCKETS_MAX); returns how many.
int bk_sockets_of (bk_sockets_t *self, bk_role_t role, void *out[BK_SOCKETS_MAX]);
//  Connections the ZAP handler refused so far (0 without CURVE).
uint64_t bk_sockets_refused (bk_sockets_t *self);

void bk_sockets_test (bool verbose);

#endif
