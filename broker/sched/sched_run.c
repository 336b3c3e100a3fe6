/*  sched_run.c - a run of a scheduled task: the typed record, its store encoding, its public shape

    Changing the record: add a key to the table below (never reuse one) and
    to encode/decode; reshaping a key's value means bumping
    BK_SCHED_RUN_RECORD.
*/
#include "sched_run.h"
#include "../backoff.h"
#include "aq_json.h"
#include "aq_time.h"
#include "aq_uuid.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Record keys (msgpack map keys of the store record).
enum {
    K_VERSION = 0,
    K_ID,
    K_SCHEDULE,
    K_TEAM,
    K_TRIGGER,
    K_STATUS,
    K_ATTEMPT,
    K_STEP,
    K_STEPS_TOTAL,
    K_SCHEDULED_AT,
    K_STARTED_AT, //  10
    K_FINISHED_AT,
    K_NEXT_ATTEMPT_AT,
    K_ERROR,
    K_STEPS, //  [[step, task id, status], ...]
    K_EVENT_NAME,
    K_EVENT_DATA,
    K_TEMPLATES = 40,
    K_PRIORITY,
    K_MAX_RETRIES,
    K_BACKOFF,
    K_CONCURRENCY_KEY,
    K_DUE,
};

static const char *s_statuses[BK_RUN_STATUSES] = {NULL,       "pending",   "waiting", "running",
                                                  "retrying", "completed", "failed",  "skipped"};
static const char *s_triggers[BK_TRIGGERS] = {NULL, "schedule", "run_now", "event"};

const char *bk_run_status_name (int status) {
    return status > 0 && status < BK_RUN_STATUSES ? s_statuses[status] : NULL;
}

const char *bk_run_trigger_name (int trigger) {
    return trigger > 0 && trigger < BK_TRIGGERS ? s_triggers[trigger] : NULL;
}

//  --------------------------------------------------------------------------

bk_sched_run_t *bk_sched_run_new (size_t arena_size) {
    bk_arena_t *arena = bk_arena_new (sizeof (bk_sched_run_t) + arena_size);
    bk_sched_run_t *self = bk_arena_alloc (arena, sizeof *self);
    memset (self, 0, sizeof *self);
    self->arena = arena;
    self->attempt = 1;
    self->scheduled_at = self->started_at = self->finished_at = self->next_attempt_at = -1;
    self->due = -1;
    return self;
}

void bk_sched_run_destroy (bk_sched_run_t **self_p) {
    assert (self_p);
    if (*self_p) {
        bk_arena_t *arena = (*self_p)->arena; //  the run lives in its arena
        bk_arena_destroy (&arena);
        *self_p = NULL;
    }
}

void bk_sched_run_add_step (bk_sched_run_t *self, int step, const uint8_t task[16], int status) {
    if (self->nsteps == self->steps_room) {
        //  the old array stays in the arena: a run gains a step or two per load
        size_t room = self->steps_room ? 2 * self->steps_room : 4;
        bk_run_step_t *steps = bk_arena_alloc (self->arena, room * sizeof *steps);
        if (self->nsteps)
            memcpy (steps, self->steps, self->nsteps * sizeof *steps);
        self->steps = steps;
        self->steps_room = room;
    }
    bk_run_step_t *entry = &self->steps[self->nsteps++];
    entry->step = step;
    memcpy (entry->task, task, 16);
    entry->status = status;
}

bk_run_step_t *bk_sched_run_find_step (bk_sched_run_t *self, const uint8_t task[16]) {
    for (size_t i = 0; i < self->nsteps; i++)
        if (memcmp (self->steps[i].task, task, 16) == 0)
            return &self->steps[i];
    return NULL;
}

void bk_sched_run_set_error (bk_sched_run_t *self, const char *text) {
    self->error = bk_arena_strdup (self->arena, text);
}

//  --------------------------------------------------------------------------
//  The store record

static void s_kv_int (aq_writer_t *w, int key, int64_t value) {
    aq_write_int (w, key);
    aq_write_int (w, value);
}

#define PUT_INT(key, value, cond)                                                                  \
    if (cond) {                                                                                    \
        s_kv_int (w, key, value);                                                                  \
        n++;                                                                                       \
    }
#define PUT_STR(key, value)                                                                        \
    if (value) {                                                                                   \
        aq_write_int (w, key), aq_write_str (w, value);                                            \
        n++;                                                                                       \
    }
#define PUT_RAW(key, blob)                                                                         \
    if ((blob).size) {                                                                             \
        aq_write_int (w, key), aq_write_raw (w, (blob).data, (blob).size);                         \
        n++;                                                                                       \
    }

void bk_sched_run_encode (const bk_sched_run_t *self, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (K_VERSION, BK_SCHED_RUN_RECORD, true);
    aq_write_int (w, K_ID), aq_write_bin (w, self->id, 16), n++;
    aq_write_int (w, K_SCHEDULE), aq_write_bin (w, self->schedule, 16), n++;
    aq_write_int (w, K_TEAM), aq_write_bin (w, self->team, 16), n++;
    PUT_INT (K_TRIGGER, self->trigger, true);
    PUT_INT (K_STATUS, self->status, true);
    PUT_INT (K_ATTEMPT, self->attempt, true);
    PUT_INT (K_STEP, self->step, true);
    PUT_INT (K_STEPS_TOTAL, self->steps_total, true);
    PUT_INT (K_SCHEDULED_AT, self->scheduled_at, self->scheduled_at >= 0);
    PUT_INT (K_STARTED_AT, self->started_at, self->started_at >= 0);
    PUT_INT (K_FINISHED_AT, self->finished_at, self->finished_at >= 0);
    PUT_INT (K_NEXT_ATTEMPT_AT, self->next_attempt_at, self->next_attempt_at >= 0);
    PUT_STR (K_ERROR, self->error);
    aq_write_int (w, K_STEPS), n++;
    aq_write_array (w, (uint32_t) self->nsteps);
    for (size_t i = 0; i < self->nsteps; i++) {
        aq_write_array (w, 3);
        aq_write_int (w, self->steps[i].step);
        aq_write_bin (w, self->steps[i].task, 16);
        aq_write_int (w, self->steps[i].status);
    }
    if (self->has_event) {
        PUT_STR (K_EVENT_NAME, self->event_name);
        PUT_RAW (K_EVENT_DATA, self->event_data);
    }
    PUT_RAW (K_TEMPLATES, self->templates);
    PUT_INT (K_PRIORITY, self->priority, true);
    PUT_INT (K_MAX_RETRIES, self->max_retries, true);
    PUT_INT (K_BACKOFF, self->backoff, true);
    PUT_STR (K_CONCURRENCY_KEY, self->concurrency_key);
    PUT_INT (K_DUE, self->due, self->due >= 0);
    aq_write_map_close (w, mark, n);
}

#undef PUT_INT
#undef PUT_STR
#undef PUT_RAW

static char *s_str (bk_sched_run_t *self, const aq_node_t *value) {
    return aq_node_is_str (value)
               ? bk_arena_strndup (self->arena, (const char *) value->data, value->count)
               : NULL;
}

static void s_uuid (const aq_node_t *value, uint8_t out[16], bool *ok) {
    if (value->type == AQ_NODE_BIN && value->count == 16)
        memcpy (out, value->data, 16);
    else
        *ok = false;
}

static void s_blob (bk_sched_run_t *self, bk_blob_t *blob, const aq_node_t *value) {
    *blob =
        (bk_blob_t){bk_arena_memdup (self->arena, value->raw, value->raw_size), value->raw_size};
}

//  The steps array: each entry [step, task id, status].
static void s_steps (bk_sched_run_t *self, const aq_node_t *value, bool *ok) {
    aq_iter_t it, inner;
    aq_node_t entry, part;
    if (value->type != AQ_NODE_ARRAY) {
        *ok = false;
        return;
    }
    aq_node_iter (value, &it);
    while (aq_iter_next (&it, NULL, &entry)) {
        int64_t step = -1, status = -1;
        uint8_t task[16];
        bool good = entry.type == AQ_NODE_ARRAY && entry.count == 3;
        aq_node_iter (&entry, &inner);
        if (good && aq_iter_next (&inner, NULL, &part) && part.type == AQ_NODE_INT)
            step = part.i;
        if (good && aq_iter_next (&inner, NULL, &part))
            s_uuid (&part, task, &good);
        if (good && aq_iter_next (&inner, NULL, &part) && part.type == AQ_NODE_INT)
            status = part.i;
        if (!good || step < 0 || status < 0) {
            *ok = false;
            return;
        }
        bk_sched_run_add_step (self, (int) step, task, (int) status);
    }
}

bk_sched_run_t *bk_sched_run_decode (const uint8_t *data, size_t size) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return NULL;
    bk_sched_run_t *self = bk_sched_run_new (size);
    bool ok = true, versioned = false;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case K_VERSION:
            versioned = i == BK_SCHED_RUN_RECORD;
            break;
        case K_ID:
            s_uuid (&value, self->id, &ok);
            break;
        case K_SCHEDULE:
            s_uuid (&value, self->schedule, &ok);
            break;
        case K_TEAM:
            s_uuid (&value, self->team, &ok);
            break;
        case K_TRIGGER:
            self->trigger = (int) i;
            break;
        case K_STATUS:
            self->status = (int) i;
            break;
        case K_ATTEMPT:
            self->attempt = (int) i;
            break;
        case K_STEP:
            self->step = (int) i;
            break;
        case K_STEPS_TOTAL:
            self->steps_total = (int) i;
            break;
        case K_SCHEDULED_AT:
            self->scheduled_at = i;
            break;
        case K_STARTED_AT:
            self->started_at = i;
            break;
        case K_FINISHED_AT:
            self->finished_at = i;
            break;
        case K_NEXT_ATTEMPT_AT:
            self->next_attempt_at = i;
            break;
        case K_ERROR:
            self->error = s_str (self, &value);
            break;
        case K_STEPS:
            s_steps (self, &value, &ok);
            break;
        case K_EVENT_NAME:
            self->event_name = s_str (self, &value);
            self->has_event = self->event_name != NULL;
            break;
        case K_EVENT_DATA:
            s_blob (self, &self->event_data, &value);
            break;
        case K_TEMPLATES:
            if (value.type == AQ_NODE_ARRAY)
                s_blob (self, &self->templates, &value);
            break;
        case K_PRIORITY:
            self->priority = (int) i;
            break;
        case K_MAX_RETRIES:
            self->max_retries = (int) i;
            break;
        case K_BACKOFF:
            self->backoff = (int) i;
            break;
        case K_CONCURRENCY_KEY:
            self->concurrency_key = s_str (self, &value);
            break;
        case K_DUE:
            self->due = i;
            break;
        }
    }
    if (!ok || !versioned || !bk_run_status_name (self->status) ||
        !bk_run_trigger_name (self->trigger) || !self->templates.size)
        bk_sched_run_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  The public shape

static void s_time (aq_writer_t *w, const char *key, int64_t ms) {
    char stamp[32];
    aq_write_kv_str (w, key, ms >= 0 ? aq_time_format (ms, stamp) : NULL);
}

static void s_uuid_text (aq_writer_t *w, const char *key, const uint8_t id[16]) {
    char text[AQ_UUID_TEXT];
    aq_write_kv_str (w, key, aq_uuid_format (id, text));
}

void bk_sched_run_write_public (const bk_sched_run_t *self, aq_writer_t *w) {
    aq_write_map (w, 14 + self->has_event);
    s_uuid_text (w, "id", self->id);
    s_uuid_text (w, "task_id", self->schedule);
    s_uuid_text (w, "team_id", self->team);
    aq_write_kv_str (w, "trigger", bk_run_trigger_name (self->trigger));
    aq_write_kv_str (w, "status", bk_run_status_name (self->status));
    aq_write_kv_int (w, "attempt", self->attempt);
    aq_write_kv_int (w, "step", self->step);
    aq_write_kv_int (w, "steps_total", self->steps_total);
    s_time (w, "scheduled_at", self->scheduled_at);
    s_time (w, "started_at", self->started_at);
    s_time (w, "finished_at", self->finished_at);
    s_time (w, "next_attempt_at", self->next_attempt_at);
    aq_write_kv_str (w, "error", self->error);
    aq_write_str (w, "steps");
    aq_write_array (w, (uint32_t) self->nsteps);
    for (size_t i = 0; i < self->nsteps; i++) {
        aq_write_map (w, 3);
        aq_write_kv_int (w, "step", self->steps[i].step);
        s_uuid_text (w, "task_id", self->steps[i].task);
        aq_write_kv_str (w, "status", bk_status_name (self->steps[i].status));
    }
    if (self->has_event) {
        aq_write_str (w, "event");
        aq_write_map (w, 2);
        aq_write_kv_str (w, "name", self->event_name);
        aq_write_str (w, "data");
        if (self->event_data.size)
            aq_write_raw (w, self->event_data.data, self->event_data.size);
        else
            aq_write_nil (w);
    }
}

//  --------------------------------------------------------------------------
//  Selftest

//  The public shape as JSON text (caller frees).
static char *s_public_json (const bk_sched_run_t *run) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_sched_run_write_public (run, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_release (&w);
    return text;
}

void bk_sched_run_test (bool verbose) {
    assert (strcmp (bk_run_status_name (BK_RUN_SKIPPED), "skipped") == 0);
    assert (!bk_run_status_name (0) && !bk_run_status_name (BK_RUN_STATUSES));
    assert (strcmp (bk_run_trigger_name (BK_TRIGGER_RUN_NOW), "run_now") == 0);

    bk_sched_run_t *run = bk_sched_run_new (0);
    memset (run->id, 0x01, 16), memset (run->schedule, 0x02, 16), memset (run->team, 0x03, 16);
    run->trigger = BK_TRIGGER_EVENT;
    run->status = BK_RUN_RETRYING;
    run->attempt = 2, run->step = 1, run->steps_total = 2;
    run->started_at = 1705314600004, run->next_attempt_at = 1705314660000;
    bk_sched_run_set_error (run, "step 1 failed: HTTP 500");
    uint8_t task[16];
    for (int i = 0; i < 9; i++) { //  past the first room: the steps move
        memset (task, 0x10 + i, 16);
        bk_sched_run_add_step (run, i < 1 ? 0 : 1, task, i < 1 ? BK_ST_COMPLETED : BK_ST_FAILED);
    }
    memset (task, 0x10, 16);
    assert (bk_sched_run_find_step (run, task) == &run->steps[0]);
    memset (task, 0x7F, 16);
    assert (!bk_sched_run_find_step (run, task));
    run->has_event = true;
    run->event_name = bk_arena_strdup (run->arena, "invoice.paid");
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse ("{\"n\":7}", &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    run->event_data = (bk_blob_t){bk_arena_memdup (run->arena, data, size), size};
    aq_writer_reset (&w);
    assert (aq_json_parse ("[{\"targetUrl\":\"http://a\"},{\"targetUrl\":\"http://b\"}]", &w) == 0);
    data = aq_writer_data (&w, &size);
    run->templates = (bk_blob_t){bk_arena_memdup (run->arena, data, size), size};
    run->priority = 2, run->max_retries = 3, run->backoff = BK_BACKOFF_LINEAR;
    run->concurrency_key = bk_arena_strdup (run->arena, "db");
    run->due = 1705314660000;

    //  through the store encoding and back
    aq_writer_reset (&w);
    bk_sched_run_encode (run, &w);
    data = aq_writer_data (&w, &size);
    bk_sched_run_t *back = bk_sched_run_decode (data, size);
    assert (back && back->nsteps == 9 && back->steps[8].step == 1);
    assert (back->steps[0].status == BK_ST_COMPLETED && back->steps[0].task[0] == 0x10);
    assert (back->has_event && strcmp (back->event_name, "invoice.paid") == 0);
    assert (back->event_data.size == run->event_data.size);
    assert (back->templates.size == run->templates.size && back->priority == 2);
    assert (back->max_retries == 3 && back->backoff == BK_BACKOFF_LINEAR);
    assert (strcmp (back->concurrency_key, "db") == 0 && back->due == run->due);
    assert (back->scheduled_at == -1 && back->finished_at == -1);
    char *one = s_public_json (run), *two = s_public_json (back);
    assert (strcmp (one, two) == 0);
    free (two);
    bk_sched_run_destroy (&back);

    //  the public shape: seed names in order, ISO times, nulls, no bookkeeping
    const char *want =
        "{\"id\":\"01010101-0101-0101-0101-010101010101\",\"task_id\":\"02020202-0202-0202-0202-"
        "020202020202\",\"team_id\":\"03030303-0303-0303-0303-030303030303\",\"trigger\":"
        "\"event\",\"status\":\"retrying\",\"attempt\":2,\"step\":1,\"steps_total\":2,"
        "\"scheduled_at\":null,\"started_at\":\"2024-01-15T10:30:00.004Z\",\"finished_at\":null,"
        "\"next_attempt_at\":\"2024-01-15T10:31:00.000Z\",\"error\":\"step 1 failed: HTTP 500\","
        "\"steps\":[{\"step\":0,\"task_id\":\"10101010-1010-1010-1010-101010101010\",\"status\":"
        "\"completed\"},{\"step\":1,\"task_id\":\"11111111-1111-1111-1111-111111111111\","
        "\"status\":\"failed\"}";
    if (strncmp (one, want, strlen (want)) != 0 ||
        !strstr (one, "\"event\":{\"name\":\"invoice.paid\",\"data\":{\"n\":7}}}")) {
        fprintf (stderr, "bk_sched_run: public %s\n", one);
        assert (false);
    }
    free (one);

    //  what decode refuses: another version, a run without templates, garbage
    assert (!bk_sched_run_decode ((const uint8_t *) "\x81\x00\x01", 3));
    run->templates.size = 0;
    aq_writer_reset (&w);
    bk_sched_run_encode (run, &w);
    data = aq_writer_data (&w, &size);
    assert (!bk_sched_run_decode (data, size));
    assert (!bk_sched_run_decode ((const uint8_t *) "\xc1", 1));
    aq_writer_release (&w);
    bk_sched_run_destroy (&run);
    assert (!run);
    if (verbose)
        printf ("bk_sched_run: ok\n");
}
