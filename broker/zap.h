/*  zap.h - who may connect to the broker's CURVE endpoints

    A czmq actor answers ZeroMQ's ZAP requests (RFC 27) for the broker's
    CURVE sockets. A socket's ZAP domain names the directory of public
    certificates it admits: "clients" and "events" admit --allow-clients,
    "workers" admits --allow-workers, so a client key never admits a worker
    and the other way round. A directory is read again whenever its files
    change (added, removed or edited), checked at each handshake: adding or
    revoking a key needs no restart.

    The actor also watches each CURVE socket's handshake failures that
    never reach ZAP (a wrong secret for an allowed public key, a peer
    without CURVE). Every refusal is counted; each is logged once per
    address (ZAP) or per endpoint (failed handshakes) per minute.
*/
#ifndef BK_ZAP_H
#define BK_ZAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _bk_zap_t bk_zap_t;

#define BK_ZAP_CLIENTS "clients" //  ZAP domains: the client ROUTER,
#define BK_ZAP_WORKERS "workers" //  the worker ROUTER,
#define BK_ZAP_EVENTS  "events"  //  and the events XPUB (admits clients)

//  Starts the ZAP handler in zmq_ctx (the context of the sockets it
//  guards; one handler per context). clients_dir and workers_dir hold the
//  admitted public certificates (NULL: nobody). NULL if the handler cannot
//  bind (another one runs in this context), logged.
bk_zap_t *bk_zap_new (void *zmq_ctx, const char *clients_dir, const char *workers_dir);
//  Stops the actor. Call after closing the watched sockets.
void bk_zap_destroy (bk_zap_t **self_p);

//  Makes socket (already set up as a CURVE server) ask this handler, under
//  domain, and counts its failed handshakes. Call before binding it. 0 or -1.
int bk_zap_guard (bk_zap_t *self, void *socket, const char *domain);

//  Connections refused so far (ZAP denials and failed handshakes).
uint64_t bk_zap_refused (bk_zap_t *self);

void bk_zap_test (bool verbose);

#endif
