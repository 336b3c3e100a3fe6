/*  outbox.c - what the broker sends once the turn's changes are on disk */
#include "outbox.h"
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RID_MAX 256 //  longest routing id kept (ZeroMQ's own limit is 255)

typedef struct {
    void *socket;    //  a ROUTER, or NULL for an EVENT
    size_t rid;      //  offset of the routing id (EVENT: the topic) in the buffer
    size_t rid_size; //  its length
    size_t frame;    //  offset of the frame
    size_t size;     //  its length
    int64_t corr;    //  a REPLY's correlation id, -1 for other frames
} s_entry_t;

struct _bk_outbox_t {
    void *events[4];    //  events sockets (borrowed)
    int nevents;        //  how many
    int subscribers;    //  valid subscriptions seen
    aq_writer_t buf;    //  every frame and routing id of the turn
    size_t start;       //  offset of the frame being written
    size_t reply_mark;  //  offset of a REPLY's map, for its count
    int64_t corr;       //  the REPLY being written, -1 for other frames
    s_entry_t *entries; //  queued frames
    size_t count, cap;  //  used and allocated
};

bk_outbox_t *bk_outbox_new (void *const *events, int n) {
    bk_outbox_t *self = calloc (1, sizeof *self);
    assert (self && n >= 0 && n <= 4);
    for (int i = 0; i < n; i++)
        self->events[i] = events[i];
    self->nevents = n;
    aq_writer_init (&self->buf);
    return self;
}

void bk_outbox_destroy (bk_outbox_t **self_p) {
    assert (self_p);
    bk_outbox_t *self = *self_p;
    if (!self)
        return;
    aq_writer_release (&self->buf);
    free (self->entries);
    free (self);
    *self_p = NULL;
}

aq_writer_t *bk_outbox_start (bk_outbox_t *self, int cmd) {
    self->start = self->buf.size;
    self->corr = -1;
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       (uint8_t) cmd};
    aq_write_raw (&self->buf, header, sizeof header);
    return &self->buf;
}

static void s_push (bk_outbox_t *self, void *socket, const void *rid, size_t rid_size) {
    if (self->count == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 256;
        self->entries = realloc (self->entries, self->cap * sizeof *self->entries);
        assert (self->entries);
    }
    s_entry_t *entry = &self->entries[self->count++];
    entry->socket = socket;
    entry->frame = self->start;
    entry->size = self->buf.size - self->start;
    entry->corr = self->corr;
    entry->rid = self->buf.size;
    entry->rid_size = rid_size <= S_RID_MAX ? rid_size : 0;
    aq_write_raw (&self->buf, rid, entry->rid_size);
}

void bk_outbox_queue (bk_outbox_t *self, void *socket, const void *rid, size_t rid_size) {
    assert (socket);
    s_push (self, socket, rid, rid_size);
}

void bk_outbox_queue_event (bk_outbox_t *self, const char *topic) {
    s_push (self, NULL, topic, strlen (topic));
}

aq_writer_t *bk_outbox_reply_start (bk_outbox_t *self, int64_t corr, int status) {
    bk_outbox_start (self, AQ_CMD_REPLY);
    self->corr = corr;
    self->reply_mark = aq_write_map_open (&self->buf);
    aq_write_kv_int (&self->buf, "corr", corr);
    aq_write_kv_int (&self->buf, "status", status);
    return &self->buf;
}

void bk_outbox_reply_queue (bk_outbox_t *self, void *socket, const void *rid, size_t rid_size,
                            uint32_t pairs) {
    aq_write_map_close (&self->buf, self->reply_mark, 2 + pairs);
    bk_outbox_queue (self, socket, rid, rid_size);
}

void bk_outbox_subscribers (bk_outbox_t *self, int delta) {
    self->subscribers += delta;
    if (self->subscribers < 0)
        self->subscribers = 0;
}

bool bk_outbox_subscribed (bk_outbox_t *self) {
    return self->nevents > 0 && self->subscribers > 0;
}

static int s_send (void *socket, const void *head, size_t head_size, const void *data,
                   size_t size) {
    if (zmq_send (socket, head, head_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send (socket, data, size, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

size_t bk_outbox_flush (bk_outbox_t *self, bool committed) {
    size_t failed = 0;
    if (self->buf.err) //  out of memory while writing: nothing can be trusted
        committed = false;
    aq_writer_t failure;
    aq_writer_init (&failure);
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries[i];
        const uint8_t *data = self->buf.data + entry->frame;
        size_t size = entry->size;
        const uint8_t *rid = self->buf.data + entry->rid;
        if (!entry->socket) { //  an EVENT on every events socket
            for (int k = 0; committed && k < self->nevents; k++)
                failed += s_send (self->events[k], rid, entry->rid_size, data, size) != 0;
            continue;
        }
        if (!committed && entry->corr >= 0) {
            aq_writer_reset (&failure);
            uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                               AQ_CMD_REPLY};
            aq_write_raw (&failure, header, sizeof header);
            aq_write_map (&failure, 3);
            aq_write_kv_int (&failure, "corr", entry->corr);
            aq_write_kv_int (&failure, "status", AQ_UNAVAILABLE);
            aq_write_kv_str (&failure, "error", BK_REPLY_FAILED);
            data = aq_writer_data (&failure, &size);
            if (!data)
                continue;
        }
        failed += s_send (entry->socket, rid, entry->rid_size, data, size) != 0;
    }
    aq_writer_release (&failure);
    self->count = 0;
    aq_writer_reset (&self->buf);
    return failed;
}

size_t bk_outbox_size (bk_outbox_t *self) {
    return self->count;
}

//  --------------------------------------------------------------------------

void bk_outbox_test (bool verbose) {
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER), *dealer = zmq_socket (ctx, ZMQ_DEALER);
    void *pub = zmq_socket (ctx, ZMQ_PUB), *sub = zmq_socket (ctx, ZMQ_SUB);
    assert (zmq_setsockopt (dealer, ZMQ_ROUTING_ID, "peer", 4) == 0);
    assert (zmq_bind (router, "inproc://outbox-test") == 0);
    assert (zmq_connect (dealer, "inproc://outbox-test") == 0);
    assert (zmq_bind (pub, "inproc://outbox-events") == 0);
    assert (zmq_connect (sub, "inproc://outbox-events") == 0);
    assert (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "team.", 5) == 0);
    //  the router learns the dealer's id from its first message
    assert (zmq_send (dealer, "x", 1, 0) == 1);
    char buf[512];
    assert (zmq_recv (router, buf, sizeof buf, 0) == 4 &&
            zmq_recv (router, buf, sizeof buf, 0) == 1);

    bk_outbox_t *outbox = bk_outbox_new (&pub, 1);
    assert (!bk_outbox_subscribed (outbox));
    bk_outbox_subscribers (outbox, 1);
    assert (bk_outbox_subscribed (outbox));
    aq_writer_t *w = bk_outbox_reply_start (outbox, 7, 200);
    aq_write_str (w, "body");
    aq_write_map (w, 1), aq_write_kv_str (w, "id", "t1");
    bk_outbox_reply_queue (outbox, router, "peer", 4, 1);
    w = bk_outbox_start (outbox, AQ_CMD_EVENT);
    aq_write_map (w, 1), aq_write_kv_str (w, "id", "t1");
    bk_outbox_queue_event (outbox, "team.abc");
    w = bk_outbox_reply_start (outbox, 8, 201);
    bk_outbox_reply_queue (outbox, router, "peer", 4, 0);
    assert (bk_outbox_size (outbox) == 3);
    assert (bk_outbox_flush (outbox, true) == 0 && bk_outbox_size (outbox) == 0);

    int size = zmq_recv (dealer, buf, sizeof buf, 0);
    aq_node_t body, value;
    assert (size > AQ_PROTO_HEADER && (uint8_t) buf[3] == AQ_CMD_REPLY);
    assert (aq_msg_parse ((uint8_t *) buf + 4, (size_t) size - 4, &body) == 0 && body.count == 3);
    assert (aq_node_get (&body, "corr", &value) && value.i == 7);
    assert (aq_node_get (&body, "body", &value) && value.type == AQ_NODE_MAP);
    size = zmq_recv (dealer, buf, sizeof buf, 0);
    assert (aq_msg_parse ((uint8_t *) buf + 4, (size_t) size - 4, &body) == 0 && body.count == 2);
    assert (aq_node_get (&body, "status", &value) && value.i == 201);
    assert (zmq_recv (sub, buf, sizeof buf, 0) == 8 && memcmp (buf, "team.abc", 8) == 0);
    size = zmq_recv (sub, buf, sizeof buf, 0);
    assert (size > AQ_PROTO_HEADER && (uint8_t) buf[3] == AQ_CMD_EVENT);

    //  a failed commit: the reply says 503, the event is dropped
    w = bk_outbox_reply_start (outbox, 9, 201);
    aq_write_str (w, "body"), aq_write_map (w, 0);
    bk_outbox_reply_queue (outbox, router, "peer", 4, 1);
    bk_outbox_start (outbox, AQ_CMD_EVENT);
    aq_write_map (w, 0);
    bk_outbox_queue_event (outbox, "team.abc");
    assert (bk_outbox_flush (outbox, false) == 0);
    size = zmq_recv (dealer, buf, sizeof buf, 0);
    assert (aq_msg_parse ((uint8_t *) buf + 4, (size_t) size - 4, &body) == 0);
    assert (aq_node_get (&body, "corr", &value) && value.i == 9);
    assert (aq_node_get (&body, "status", &value) && value.i == AQ_UNAVAILABLE);
    assert (aq_node_get (&body, "error", &value) && aq_node_streq (&value, BK_REPLY_FAILED));
    assert (!aq_node_get (&body, "body", &value));
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    assert (zmq_poll (&item, 1, 50) == 0);

    bk_outbox_destroy (&outbox);
    assert (!outbox);
    zmq_close (router), zmq_close (dealer), zmq_close (pub), zmq_close (sub);
    zmq_ctx_term (ctx);
    if (verbose)
        printf ("bk_outbox: ok\n");
}
