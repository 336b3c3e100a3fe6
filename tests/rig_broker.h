/*  rig_broker.h - test rig: a fake broker, a ROUTER that speaks the protocol

    For selftests only: linked into aq-selftest, never into a component
    library. It talks to one peer at a time, the one it last heard from (a
    worker's or a gateway's DEALER); the test decides every answer.

        rig_broker_t *broker = rig_broker_new (ctx, "inproc://x-test");
        json_t *body;
        int cmd = rig_broker_recv (broker, &body, 2000);    //  READY, say
        rig_broker_send (broker, AQ_CMD_JOB, json_pack (...));
        json_decref (body);
        rig_broker_destroy (&broker);

    Failures (bind, a frame that does not decode, a send) assert.
*/
#ifndef RIG_BROKER_H
#define RIG_BROKER_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rig_broker_t rig_broker_t;
typedef struct json_t json_t; //  jansson's: callers that use it include <jansson.h>

//  A ROUTER bound to endpoint in the ZeroMQ context ctx (the caller's).
rig_broker_t *rig_broker_new (void *ctx, const char *endpoint);

//  Closes the socket, frees the rig. Sets *self_p to NULL.
void rig_broker_destroy (rig_broker_t **self_p);

//  While rig_broker_recv waits, send the peer a HEARTBEAT every ms (0, the
//  default: never), the first one as soon as a peer is known.
void rig_broker_beat (rig_broker_t *self, int ms);

//  Answer every HEARTBEAT with one (default: false), as a live broker does.
void rig_broker_echo (rig_broker_t *self, bool echo);

//  The next message other than HEARTBEAT within ms (0: only what has
//  arrived): its command, with *body its fields (the caller's, may be NULL);
//  or -1 with *body NULL when none came.
int rig_broker_recv (rig_broker_t *self, json_t **body, int ms);

//  Sends cmd with body (taken; NULL for none) to the peer last heard.
void rig_broker_send (rig_broker_t *self, int cmd, json_t *body);

//  The same, read in place for a caller without jansson: *body views the
//  message, which the rig keeps until the next call or rig_broker_destroy.
int rig_broker_recv_msg (rig_broker_t *self, aq_node_t *body, int ms);

//  Sends cmd with its body given as JSON text, printf style (an object).
void rig_broker_send_json (rig_broker_t *self, int cmd, const char *format, ...);

//  Sends one frame that is not a protocol message to the peer last heard.
void rig_broker_send_raw (rig_broker_t *self, const void *data, size_t size);

//  The ROUTER, for a caller that polls it along with its own sockets.
void *rig_broker_socket (rig_broker_t *self);

//  The routing id of the peer last heard (borrowed) and its size in *size.
const uint8_t *rig_broker_peer (rig_broker_t *self, size_t *size);

#endif
