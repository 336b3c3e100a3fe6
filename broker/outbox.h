/*  outbox.h - what the broker sends once the turn's changes are on disk

    Replies to clients and events wait here until the turn's commit (group
    commit: nobody hears of a change before it is durable). A failed commit
    turns every reply into 503 BK_REPLY_FAILED and drops the events. JOBs do
    not wait (dispatch.c sends them at once).

    A frame is written in place: start it, write its body into the writer
    the outbox hands out, queue it. Frames and routing ids of a turn share
    one buffer, so a reply costs no allocation of its own.

        aq_writer_t *w = bk_outbox_reply_start (outbox, corr, 200);
        aq_write_str (w, "body");
        ...the body map...
        bk_outbox_reply_queue (outbox, socket, rid, rid_size, 1);
*/
#ifndef BK_OUTBOX_H
#define BK_OUTBOX_H

#include "aq_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BK_REPLY_FAILED "Storage unavailable, try again" //  the 503 a failed commit gives

typedef struct _bk_outbox_t bk_outbox_t;

//  events: the events sockets (n of them, borrowed), where events go.
bk_outbox_t *bk_outbox_new (void *const *events, int n);
void bk_outbox_destroy (bk_outbox_t **self_p);

//  Starts a frame of cmd; the caller writes its body (a map) into the
//  writer returned, then queues it. One frame at a time.
aq_writer_t *bk_outbox_start (bk_outbox_t *self, int cmd);
//  Queues the frame started last, to rid on socket (a ROUTER).
void bk_outbox_queue (bk_outbox_t *self, void *socket, const void *rid, size_t rid_size);
//  Queues the frame started last as an EVENT under topic, for every
//  events socket.
void bk_outbox_queue_event (bk_outbox_t *self, const char *topic);

//  Starts a REPLY: a map holding corr and status so far. The caller adds
//  its other pairs (error, body, retryAfter) and counts them in pairs.
aq_writer_t *bk_outbox_reply_start (bk_outbox_t *self, int64_t corr, int status);
void bk_outbox_reply_queue (bk_outbox_t *self, void *socket, const void *rid, size_t rid_size,
                            uint32_t pairs);

//  Valid subscriptions on the events sockets (the loop keeps count).
void bk_outbox_subscribers (bk_outbox_t *self, int delta);
bool bk_outbox_subscribed (bk_outbox_t *self);

//  Sends everything queued, in order, and empties the queue. With
//  committed false, replies say 503 BK_REPLY_FAILED instead and events are
//  dropped. Returns how many sends failed (a peer gone away).
size_t bk_outbox_flush (bk_outbox_t *self, bool committed);
//  Frames queued.
size_t bk_outbox_size (bk_outbox_t *self);

void bk_outbox_test (bool verbose);

#endif
