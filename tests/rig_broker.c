/*  rig_broker.c - test rig: a fake broker, a ROUTER that speaks the protocol

    Everything runs in the caller's thread: rig_broker_recv polls the ROUTER
    in short slices so it can heartbeat the peer while it waits.
*/
#include "rig_broker.h"
#include "aq_codec.h"
#include "aq_time.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#define S_SLICE_MS 10 //  longest single wait inside rig_broker_recv

struct _rig_broker_t {
    void *router;     //  the fake broker's socket
    uint8_t rid[256]; //  the peer's routing id, from its last message
    size_t rid_size;  //  its length, 0 before any message
    int beat_ms;      //  heartbeat the peer this often while waiting, 0: never
    int64_t beat_at;  //  next heartbeat, mono ms
    bool echo;        //  answer each HEARTBEAT with one
    zmq_msg_t last;   //  rig_broker_recv_msg's message
};

rig_broker_t *rig_broker_new (void *ctx, const char *endpoint) {
    rig_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->router = zmq_socket (ctx, ZMQ_ROUTER);
    assert (self->router);
    int rc = zmq_bind (self->router, endpoint);
    assert (rc == 0);
    zmq_msg_init (&self->last);
    return self;
}

void rig_broker_destroy (rig_broker_t **self_p) {
    assert (self_p);
    rig_broker_t *self = *self_p;
    if (self) {
        zmq_msg_close (&self->last);
        zmq_close (self->router);
        free (self);
        *self_p = NULL;
    }
}

void rig_broker_beat (rig_broker_t *self, int ms) {
    self->beat_ms = ms;
}

void rig_broker_echo (rig_broker_t *self, bool echo) {
    self->echo = echo;
}

int rig_broker_recv (rig_broker_t *self, json_t **body, int ms) {
    int64_t end = aq_time_mono_ms () + ms;
    for (;;) {
        int64_t now = aq_time_mono_ms ();
        if (self->beat_ms && self->rid_size && now >= self->beat_at) {
            rig_broker_send (self, AQ_CMD_HEARTBEAT, NULL);
            self->beat_at = now + self->beat_ms;
        }
        int64_t left = end - now;
        zmq_pollitem_t item = {.socket = self->router, .events = ZMQ_POLLIN};
        if (zmq_poll (&item, 1,
                      left <= 0           ? 0
                      : left < S_SLICE_MS ? (long) left
                                          : S_SLICE_MS) <= 0) {
            if (aq_time_mono_ms () >= end)
                break;
            continue;
        }
        int rid_size = zmq_recv (self->router, self->rid, sizeof self->rid, 0);
        assert (rid_size > 0 && rid_size <= (int) sizeof self->rid);
        self->rid_size = (size_t) rid_size;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        zmq_msg_recv (&msg, self->router, 0);
        int cmd;
        int rc = aq_codec_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &cmd, body);
        zmq_msg_close (&msg);
        assert (rc == 0);
        if (cmd != AQ_CMD_HEARTBEAT)
            return cmd;
        json_decref (*body);
        if (self->echo)
            rig_broker_send (self, AQ_CMD_HEARTBEAT, NULL);
    }
    *body = NULL;
    return -1;
}

void rig_broker_send (rig_broker_t *self, int cmd, json_t *body) {
    int rc = aq_codec_send (self->router, self->rid, self->rid_size, cmd, body, 0);
    assert (rc == 0);
    json_decref (body);
}

void rig_broker_send_raw (rig_broker_t *self, const void *data, size_t size) {
    zmq_send (self->router, self->rid, self->rid_size, ZMQ_SNDMORE);
    zmq_send (self->router, data, size, 0);
}

void *rig_broker_socket (rig_broker_t *self) {
    return self->router;
}

const uint8_t *rig_broker_peer (rig_broker_t *self, size_t *size) {
    *size = self->rid_size;
    return self->rid;
}

int rig_broker_recv_msg (rig_broker_t *self, aq_node_t *body, int ms) {
    int64_t end = aq_time_mono_ms () + ms;
    for (;;) {
        int64_t now = aq_time_mono_ms ();
        if (self->beat_ms && self->rid_size && now >= self->beat_at) {
            rig_broker_send (self, AQ_CMD_HEARTBEAT, NULL);
            self->beat_at = now + self->beat_ms;
        }
        int64_t left = end - now;
        zmq_pollitem_t item = {.socket = self->router, .events = ZMQ_POLLIN};
        if (zmq_poll (&item, 1,
                      left <= 0           ? 0
                      : left < S_SLICE_MS ? (long) left
                                          : S_SLICE_MS) <= 0) {
            if (aq_time_mono_ms () >= end)
                return -1;
            continue;
        }
        int rid_size = zmq_recv (self->router, self->rid, sizeof self->rid, 0);
        assert (rid_size > 0 && rid_size <= (int) sizeof self->rid);
        self->rid_size = (size_t) rid_size;
        zmq_msg_close (&self->last);
        zmq_msg_init (&self->last);
        zmq_msg_recv (&self->last, self->router, 0);
        const uint8_t *data = zmq_msg_data (&self->last);
        size_t size = zmq_msg_size (&self->last);
        assert (size > AQ_PROTO_HEADER && data[0] == AQ_PROTO_SIG0 && data[1] == AQ_PROTO_SIG1);
        assert (data[2] == AQ_PROTO_VERSION);
        assert (aq_msg_parse (data + AQ_PROTO_HEADER, size - AQ_PROTO_HEADER, body) == 0);
        assert (body->type == AQ_NODE_MAP);
        if (data[3] != AQ_CMD_HEARTBEAT)
            return data[3];
        if (self->echo)
            rig_broker_send (self, AQ_CMD_HEARTBEAT, NULL);
    }
}

void rig_broker_send_json (rig_broker_t *self, int cmd, const char *format, ...) {
    va_list args;
    va_start (args, format);
    char *text = NULL;
    int rc = vasprintf (&text, format, args);
    va_end (args);
    assert (rc >= 0);
    json_error_t error;
    json_t *body = json_loads (text, 0, &error);
    if (!body || !json_is_object (body)) {
        fprintf (stderr, "rig_broker: not an object: %s (%s)\n", text, error.text);
        assert (false);
    }
    free (text);
    rig_broker_send (self, cmd, body);
}
