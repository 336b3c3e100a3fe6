/*  http.h - libmicrohttpd glue: HTTP requests held while the broker answers

    The server runs from the caller's loop (no thread of its own): poll
    gw_http_fd for input together with the DEALER socket, for at most
    gw_http_timeout ms, hand every message from the broker to
    gw_http_deliver, then call gw_http_run. A request that needs the broker
    is suspended and sent with a fresh correlation id; its REPLY resumes it.
*/
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _gw_http_t gw_http_t;

//  Listens on cfg->listen and starts serving; requests go to the broker
//  over dealer (a connected DEALER socket, borrowed, used only from the
//  caller's thread). Returns NULL after logging one line when it cannot
//  listen. cfg is copied; its strings are not kept.
gw_http_t *gw_http_new (const gw_config_t *cfg, void *dealer);

//  Answers requests still held with 503, stops the server, frees it.
//  Accepts NULL; sets *self_p to NULL.
void gw_http_destroy (gw_http_t **self_p);

//  File descriptor to poll for input (libmicrohttpd's epoll set).
int gw_http_fd (gw_http_t *self);

//  The TCP port it listens on (useful with port 0).
int gw_http_port (gw_http_t *self);

//  Requests held for the broker's answer now.
size_t gw_http_held (const gw_http_t *self);

//  Milliseconds until gw_http_run has work due, at most a few hundred.
long gw_http_timeout (gw_http_t *self);

//  Accepts, reads, writes; cuts off clients past the request deadline,
//  answers 503 for requests the broker left too long, pings an idle broker.
void gw_http_run (gw_http_t *self);

//  Handles one message from the broker (a whole frame, borrowed; read in
//  place): a REPLY resumes the request with its corr and renders its
//  answer; anything else only shows the broker is alive. Returns 0, or the
//  AQ_EPROTO_* code of a frame that is not a protocol message (dropped).
int gw_http_deliver (gw_http_t *self, const uint8_t *frame, size_t size);

void gw_http_test (bool verbose);

#endif
