/*  results.h - RESULT frames waiting to be sent, oldest first, in one buffer

    Each RESULT is written straight into the buffer as a whole protocol
    frame (aq_proto.h: header, then the msgpack map), ready for zmq_send;
    the queue is the worker's outbox. Embedded in its owner:

        wk_results_t results;
        wk_results_init (&results);
        aq_writer_t *w = wk_results_begin (&results, &echo, duration, 1);
        aq_write_kv_str (w, "error", "invalid URL");
        wk_results_end (&results);
        ...wk_results_get (&results, 0, &size), send it, wk_results_pop
        wk_results_release (&results);
*/
#ifndef WK_RESULTS_H
#define WK_RESULTS_H

#include "aq_msg.h"
#include "job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t at;   //  where the frame starts in out
    size_t size; //  its bytes
} wk_results_frame_t;

typedef struct {
    aq_writer_t out;            //  the frames, one after another
    size_t frame_at;            //  where the frame being written starts
    wk_results_frame_t *frames; //  the frames in out: [head, count) are waiting
    size_t head;                //  the oldest waiting
    size_t count;               //  end of the waiting ones
    size_t frames_max;          //  allocated entries
} wk_results_t;

void wk_results_init (wk_results_t *self);
//  Frees what self holds; init it to use it again.
void wk_results_release (wk_results_t *self);

//  Starts a RESULT frame: the fields echo holds (id, attempt, kind?,
//  lease?) and duration, in a map with room for more pairs, which the
//  caller writes to the writer returned (borrowed) before wk_results_end.
aq_writer_t *wk_results_begin (wk_results_t *self, const wk_echo_t *echo, int64_t duration,
                               uint32_t more);

//  Queues the frame wk_results_begin started. When memory ran out on the
//  way, every waiting RESULT is lost (the broker retries those tasks when
//  their leases expire): -1 then, else 0.
int wk_results_end (wk_results_t *self);

//  Queues a RESULT of a call that did not run: error and, when permanent,
//  permanent. 0 or -1 as wk_results_end.
int wk_results_error (wk_results_t *self, const wk_echo_t *echo, int64_t duration,
                      const char *error, bool permanent);

//  The frame index places after the oldest waiting (0: the oldest), of
//  size bytes, or NULL when fewer wait. Borrowed until self changes.
const uint8_t *wk_results_get (const wk_results_t *self, size_t index, size_t *size);

//  Drops the oldest waiting frame (there must be one).
void wk_results_pop (wk_results_t *self);

//  Frames waiting.
size_t wk_results_size (const wk_results_t *self);

void wk_results_test (bool verbose);

#endif
