/*  results.c - RESULT frames waiting to be sent, oldest first, in one buffer

    Frames are appended to one aq_writer buffer and indexed; taking them
    moves the head. When the queue empties the buffer starts over; when half
    of a long queue is gone, the rest moves to the front, so a broker that
    keeps a few behind does not make the buffer grow without end.
*/
#include "results.h"
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wk_results_init (wk_results_t *self) {
    memset (self, 0, sizeof *self);
    aq_writer_init (&self->out);
}

void wk_results_release (wk_results_t *self) {
    aq_writer_release (&self->out);
    free (self->frames);
    memset (self, 0, sizeof *self);
}

aq_writer_t *wk_results_begin (wk_results_t *self, const wk_echo_t *echo, int64_t duration,
                               uint32_t more) {
    aq_writer_t *w = &self->out;
    self->frame_at = w->size;
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       AQ_CMD_RESULT};
    aq_write_raw (w, header, sizeof header);
    aq_write_map (w, 3 + (echo->kind != NULL) + (echo->lease != NULL) + more);
    aq_write_str (w, "id");
    aq_write_strn (w, echo->id, echo->id_size);
    aq_write_kv_int (w, "attempt", echo->attempt);
    if (echo->kind) {
        aq_write_str (w, "kind");
        aq_write_strn (w, echo->kind, echo->kind_size);
    }
    if (echo->lease) {
        aq_write_str (w, "lease");
        aq_write_strn (w, echo->lease, echo->lease_size);
    }
    aq_write_kv_int (w, "duration", duration);
    return w;
}

int wk_results_end (wk_results_t *self) {
    if (self->count == self->frames_max) {
        size_t max = self->frames_max ? 2 * self->frames_max : 64;
        wk_results_frame_t *frames = realloc (self->frames, max * sizeof *frames);
        if (!frames)
            self->out.err = -1;
        else {
            self->frames = frames;
            self->frames_max = max;
        }
    }
    if (self->out.err) {
        aq_writer_reset (&self->out);
        self->head = self->count = 0;
        return -1;
    }
    self->frames[self->count++] =
        (wk_results_frame_t){.at = self->frame_at, .size = self->out.size - self->frame_at};
    return 0;
}

int wk_results_error (wk_results_t *self, const wk_echo_t *echo, int64_t duration,
                      const char *error, bool permanent) {
    aq_writer_t *w = wk_results_begin (self, echo, duration, 1 + permanent);
    aq_write_kv_str (w, "error", error);
    if (permanent)
        aq_write_kv_bool (w, "permanent", true);
    return wk_results_end (self);
}

const uint8_t *wk_results_get (const wk_results_t *self, size_t index, size_t *size) {
    assert (size);
    if (index >= self->count - self->head)
        return NULL;
    *size = self->frames[self->head + index].size;
    return self->out.data + self->frames[self->head + index].at;
}

void wk_results_pop (wk_results_t *self) {
    assert (self->head < self->count);
    if (++self->head == self->count) {
        self->head = self->count = 0;
        aq_writer_reset (&self->out);
    } else if (self->head >= 64 && 2 * self->head >= self->count) {
        //  Half are gone: move the rest to the front
        size_t from = self->frames[self->head].at;
        memmove (self->out.data, self->out.data + from, self->out.size - from);
        self->out.size -= from;
        self->count -= self->head;
        memmove (self->frames, self->frames + self->head, self->count * sizeof *self->frames);
        self->head = 0;
        for (size_t i = 0; i < self->count; i++)
            self->frames[i].at -= from;
    }
}

size_t wk_results_size (const wk_results_t *self) {
    return self->count - self->head;
}

//  --------------------------------------------------------------------------
//  Selftest

//  The id of the frame index places after the oldest, in buf.
static const char *s_id (wk_results_t *results, size_t index, char *buf, size_t size) {
    size_t frame_size;
    const uint8_t *frame = wk_results_get (results, index, &frame_size);
    int cmd;
    aq_node_t body, id;
    assert (frame && aq_msg_frame (frame, frame_size, &cmd, &body) == 0 && cmd == AQ_CMD_RESULT);
    assert (aq_node_get (&body, "id", &id) && aq_node_strcpy (&id, buf, size));
    return buf;
}

void wk_results_test (bool verbose) {
    wk_results_t results;
    wk_results_init (&results);
    size_t size;
    assert (wk_results_size (&results) == 0 && !wk_results_get (&results, 0, &size));

    //  A RESULT: the echo, duration, the caller's fields
    wk_echo_t echo = {.id = "t1", .id_size = 2, .attempt = 2, .lease = "ab", .lease_size = 2};
    assert (wk_results_error (&results, &echo, 5, "invalid URL", true) == 0);
    const uint8_t *frame = wk_results_get (&results, 0, &size);
    int cmd;
    aq_node_t body, value;
    assert (aq_msg_frame (frame, size, &cmd, &body) == 0 && cmd == AQ_CMD_RESULT);
    assert (body.count == 6); //  id attempt lease duration error permanent
    assert (aq_node_get (&body, "lease", &value) && aq_node_streq (&value, "ab"));
    assert (aq_node_get (&body, "duration", &value) && value.i == 5);
    assert (aq_node_get (&body, "permanent", &value) && value.b);
    assert (!aq_node_get (&body, "kind", &value));
    wk_results_pop (&results);
    assert (wk_results_size (&results) == 0);

    //  Many waiting, taken oldest first while more come: the buffer moves
    //  up as they go
    char id[16], got[16];
    for (int i = 0; i < 300; i++) {
        snprintf (id, sizeof id, "q%d", i);
        echo = (wk_echo_t){.id = id, .id_size = strlen (id)};
        aq_writer_t *w = wk_results_begin (&results, &echo, 0, 1);
        aq_write_kv_int (w, "statusCode", 200);
        assert (wk_results_end (&results) == 0);
        if (i % 3 == 2) {
            snprintf (id, sizeof id, "q%d", i / 3);
            assert (strcmp (s_id (&results, 0, got, sizeof got), id) == 0);
            wk_results_pop (&results);
        }
    }
    assert (wk_results_size (&results) == 200 && !wk_results_get (&results, 200, &size));
    assert (strcmp (s_id (&results, 5, got, sizeof got), "q105") == 0);
    for (int i = 100; i < 300; i++) {
        snprintf (id, sizeof id, "q%d", i);
        assert (strcmp (s_id (&results, 0, got, sizeof got), id) == 0);
        wk_results_pop (&results);
    }
    assert (wk_results_size (&results) == 0);
    if (verbose)
        printf ("  300 results queued and taken in order\n");
    wk_results_release (&results);
}
