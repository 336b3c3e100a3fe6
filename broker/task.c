/*  task.c - a /v1/tasks task: the typed record, its store encoding, its public shape

    Changing the record: add a key to the table below (never reuse one) and
    to encode/decode; reshaping a key's value means bumping BK_TASK_RECORD.
*/
#include "task.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "backoff.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Record keys (msgpack map keys of the store record).
enum {
    K_VERSION = 0,
    K_ID,
    K_TEAM,
    K_SEQ,
    K_STATUS,
    K_TARGET_URL,
    K_METHOD,
    K_HEADERS,
    K_BODY,
    K_MAX_WAIT,
    K_TIMEOUT, //  10
    K_DELAY_UNTIL,
    K_MAX_RETRIES,
    K_RETRY_COUNT,
    K_BACKOFF,
    K_PRIORITY,
    K_ON_COMPLETE_URL,
    K_PROVIDER,
    K_POLL_CONFIG,
    K_SCHEDULE_ID,
    K_RUN_ID, //  20
    K_STEP,
    K_RESULT,
    K_ERROR,
    K_ON_COMPLETE,
    K_NEXT_ATTEMPT_AT,
    K_CREATED_AT,
    K_STARTED_AT,
    K_COMPLETED_AT,
    K_FLOW_KEY = 29,  //  flowControl's key
    K_LABELS = 30,    //  the labels map
    K_FLOW_RATE = 31, //  the flowControl limits the task gave
    K_FLOW_PERIOD,
    K_FLOW_PARALLELISM,
    K_ATTEMPTS = 40,
    K_ATTEMPT_AT,
    K_DUE,
    K_DEADLINE,
    K_LEASE,
    K_SIGNAL,
    K_POLL,
    K_NOTIFY,
    K_TRACE_STATE = BK_TRACE_KEY_STATE, //  50-52: the trace (trace.h)
    K_SPAN,                             //  bin 8: the current attempt's span
};

_Static_assert(K_FLOW_KEY == 29 && K_FLOW_PARALLELISM == 33, "record keys are assigned");

//  Keys of the poll plan's own map (K_POLL), and of the notify state (K_NOTIFY).
enum {
    P_STAGE = 1,
    P_SEQ,
    P_INFLIGHT,
    P_DUE,
    P_INTERVAL,
    P_STATUS_URL,
    P_RESULT_URL,
    P_CANCEL_URL,
    P_CANCEL_METHOD,
    P_FETCH_STATE,
    P_FETCH_ERROR,
    P_LEASE,
    P_CANCEL_OWED,
    P_OP_N,     //  the provider op's number (poll.h)
    P_OP_STAGE, //  while one is pending: its stage
    P_OP        //  and its answer (a map)
};
enum { N_ATTEMPT = 1, N_INFLIGHT, N_DUE, N_LEASE };
//  Keys of the public outcome (K_ON_COMPLETE).
enum { O_STATUS = 1, O_ATTEMPTS, O_STATUS_CODE, O_ERROR, O_DELIVERED_AT };

static const char *s_status_names[BK_ST_COUNT] = {NULL,      "pending",  "delayed",   "processing",
                                                  "waiting", "polling",  "completed", "failed",
                                                  "timeout", "cancelled"};
static const char *s_methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *s_outcomes[] = {NULL, "pending", "retrying", "delivered", "failed"};

const char *bk_status_name (int status) {
    return status > 0 && status < BK_ST_COUNT ? s_status_names[status] : NULL;
}

int bk_status_parse (const char *name, size_t n) {
    for (int i = 1; name && i < BK_ST_COUNT; i++)
        if (strlen (s_status_names[i]) == n && memcmp (name, s_status_names[i], n) == 0)
            return i;
    return 0;
}

bool bk_status_terminal (int status) {
    return status == BK_ST_COMPLETED || status == BK_ST_FAILED || status == BK_ST_TIMEOUT ||
           status == BK_ST_CANCELLED;
}

const char *bk_method_name (int method) {
    return method >= 0 && method <= BK_METHOD_DELETE ? s_methods[method] : "POST";
}

//  --------------------------------------------------------------------------

bk_task_t *bk_task_new (size_t arena_size) {
    bk_arena_t *arena = bk_arena_new (sizeof (bk_task_t) + arena_size);
    bk_task_t *self = bk_arena_alloc (arena, sizeof *self);
    memset (self, 0, sizeof *self);
    self->arena = arena;
    self->delay_until = self->next_attempt_at = self->created_at = -1;
    self->started_at = self->completed_at = self->attempt_at = -1;
    self->due = self->deadline = -1;
    self->method = BK_METHOD_POST;
    self->on_complete.status_code = -1;
    self->on_complete.delivered_at = -1;
    self->poll.due = self->poll.interval_ms = -1;
    self->poll.fetch_state = -1;
    self->notify.due = -1;
    return self;
}

void bk_task_destroy (bk_task_t **self_p) {
    assert (self_p);
    if (*self_p) {
        bk_arena_t *arena = (*self_p)->arena; //  the task lives in its arena
        bk_arena_destroy (&arena);
        *self_p = NULL;
    }
}

char *bk_task_strdup (bk_task_t *self, const char *text) {
    return bk_arena_strdup (self->arena, text);
}

void bk_task_set_blob (bk_task_t *self, bk_blob_t *blob, const void *data, size_t size) {
    blob->data = size ? bk_arena_memdup (self->arena, data, size) : NULL;
    blob->size = size;
}

//  --------------------------------------------------------------------------
//  Trace context

//  The value of a header (case-insensitive name) in the task's headers.
static bool s_header (const bk_task_t *self, const char *name, aq_node_t *value) {
    aq_node_t headers, key;
    if (!self->headers.size || aq_msg_parse (self->headers.data, self->headers.size, &headers))
        return false;
    aq_iter_t it;
    aq_node_iter (&headers, &it);
    while (aq_iter_next (&it, &key, value))
        if (aq_node_is_str (&key) && key.count == strlen (name) &&
            strncasecmp ((const char *) key.data, name, key.count) == 0)
            return aq_node_is_str (value);
    return false;
}

void bk_task_set_trace (bk_task_t *self, const aq_node_t *traceparent,
                        const aq_node_t *tracestate) {
    aq_node_t parent = {.type = AQ_NODE_NIL}, state = {.type = AQ_NODE_NIL};
    if (traceparent && aq_node_is_str (traceparent)) {
        parent = *traceparent;
        if (tracestate)
            state = *tracestate;
    } else if (!s_header (self, "traceparent", &parent))
        parent.type = AQ_NODE_NIL;
    else if (!s_header (self, "tracestate", &state))
        state.type = AQ_NODE_NIL;
    self->trace_state = NULL;
    if (aq_node_is_str (&parent) &&
        bk_trace_parse ((const char *) parent.data, parent.count, &self->trace) == 0) {
        if (aq_node_is_str (&state) && state.count &&
            bk_trace_state_ok ((const char *) state.data, state.count))
            self->trace_state =
                bk_arena_strndup (self->arena, (const char *) state.data, state.count);
    } else
        bk_trace_fresh (&self->trace);
}

//  --------------------------------------------------------------------------
//  The store record

static void s_kv_int (aq_writer_t *w, int key, int64_t value) {
    aq_write_int (w, key);
    aq_write_int (w, value);
}

static void s_kv_str (aq_writer_t *w, int key, const char *value) {
    aq_write_int (w, key);
    aq_write_str (w, value);
}

static void s_kv_bin (aq_writer_t *w, int key, const uint8_t *data, size_t size) {
    aq_write_int (w, key);
    aq_write_bin (w, data, size);
}

static void s_kv_raw (aq_writer_t *w, int key, const bk_blob_t *blob) {
    aq_write_int (w, key);
    aq_write_raw (w, blob->data, blob->size);
}

//  Entries counted as they are written; n is bumped by the caller's macro.
#define PUT_INT(key, value, cond)                                                                  \
    if (cond) {                                                                                    \
        s_kv_int (w, key, value);                                                                  \
        n++;                                                                                       \
    }
#define PUT_STR(key, value)                                                                        \
    if (value) {                                                                                   \
        s_kv_str (w, key, value);                                                                  \
        n++;                                                                                       \
    }
#define PUT_RAW(key, blob)                                                                         \
    if ((blob).size) {                                                                             \
        s_kv_raw (w, key, &(blob));                                                                \
        n++;                                                                                       \
    }

static void s_encode_poll (const bk_poll_t *poll, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (P_STAGE, poll->stage, true);
    PUT_INT (P_SEQ, poll->seq, true);
    PUT_INT (P_INFLIGHT, poll->inflight, poll->inflight);
    PUT_INT (P_DUE, poll->due, poll->due >= 0);
    PUT_INT (P_INTERVAL, poll->interval_ms, poll->interval_ms >= 0);
    PUT_STR (P_STATUS_URL, poll->status_url);
    PUT_STR (P_RESULT_URL, poll->result_url);
    PUT_STR (P_CANCEL_URL, poll->cancel_url);
    PUT_STR (P_CANCEL_METHOD, poll->cancel_method);
    PUT_INT (P_FETCH_STATE, poll->fetch_state, poll->fetch_state >= 0);
    PUT_STR (P_FETCH_ERROR, poll->fetch_error);
    PUT_STR (P_LEASE, *poll->lease ? poll->lease : NULL);
    PUT_INT (P_CANCEL_OWED, 1, poll->cancel_owed);
    PUT_INT (P_OP_N, poll->op_n, poll->op_n > 0);
    PUT_INT (P_OP_STAGE, poll->op_stage, poll->op_pending);
    if (poll->op_pending)
        PUT_RAW (P_OP, poll->op);
    aq_write_map_close (w, mark, n);
}

static void s_encode_notify (const bk_notify_t *notify, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (N_ATTEMPT, notify->attempt, true);
    PUT_INT (N_INFLIGHT, notify->inflight, notify->inflight);
    PUT_INT (N_DUE, notify->due, notify->due >= 0);
    PUT_STR (N_LEASE, *notify->lease ? notify->lease : NULL);
    aq_write_map_close (w, mark, n);
}

static void s_encode_outcome (const bk_outcome_t *outcome, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (O_STATUS, outcome->status, true);
    PUT_INT (O_ATTEMPTS, outcome->attempts, true);
    PUT_INT (O_STATUS_CODE, outcome->status_code, outcome->status_code >= 0);
    PUT_STR (O_ERROR, outcome->error);
    PUT_INT (O_DELIVERED_AT, outcome->delivered_at, outcome->delivered_at >= 0);
    aq_write_map_close (w, mark, n);
}

void bk_task_encode (const bk_task_t *self, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (K_VERSION, BK_TASK_RECORD, true);
    s_kv_bin (w, K_ID, self->id, 16), n++;
    s_kv_bin (w, K_TEAM, self->team, 16), n++;
    PUT_INT (K_SEQ, (int64_t) self->seq, true);
    PUT_INT (K_STATUS, self->status, true);
    PUT_STR (K_TARGET_URL, self->target_url);
    PUT_INT (K_METHOD, self->method, true);
    PUT_RAW (K_HEADERS, self->headers);
    if (self->body) {
        aq_write_int (w, K_BODY);
        aq_write_strn (w, self->body, self->body_size);
        n++;
    }
    PUT_INT (K_MAX_WAIT, self->max_wait_s, true);
    PUT_INT (K_TIMEOUT, self->timeout_s, true);
    PUT_INT (K_DELAY_UNTIL, self->delay_until, self->delay_until >= 0);
    PUT_INT (K_MAX_RETRIES, self->max_retries, true);
    PUT_INT (K_RETRY_COUNT, self->retry_count, true);
    PUT_INT (K_BACKOFF, self->backoff, true);
    PUT_INT (K_PRIORITY, self->priority, true);
    PUT_STR (K_ON_COMPLETE_URL, self->on_complete_url);
    PUT_STR (K_PROVIDER, self->provider);
    PUT_RAW (K_POLL_CONFIG, self->poll_config);
    PUT_STR (K_FLOW_KEY, self->flow_key);
    PUT_RAW (K_LABELS, self->labels);
    PUT_INT (K_FLOW_RATE, self->flow_rate, self->flow_key && self->flow_rate);
    PUT_INT (K_FLOW_PERIOD, self->flow_period, self->flow_key);
    PUT_INT (K_FLOW_PARALLELISM, self->flow_parallelism, self->flow_key && self->flow_parallelism);
    if (self->in_run) {
        s_kv_bin (w, K_SCHEDULE_ID, self->schedule_id, 16), n++;
        s_kv_bin (w, K_RUN_ID, self->run_id, 16), n++;
        PUT_INT (K_STEP, self->step, true);
    }
    PUT_RAW (K_RESULT, self->result);
    PUT_STR (K_ERROR, self->error);
    if (self->on_complete.status != BK_OUTCOME_NONE) {
        aq_write_int (w, K_ON_COMPLETE);
        s_encode_outcome (&self->on_complete, w);
        n++;
    }
    PUT_INT (K_NEXT_ATTEMPT_AT, self->next_attempt_at, self->next_attempt_at >= 0);
    PUT_INT (K_CREATED_AT, self->created_at, self->created_at >= 0);
    PUT_INT (K_STARTED_AT, self->started_at, self->started_at >= 0);
    PUT_INT (K_COMPLETED_AT, self->completed_at, self->completed_at >= 0);
    PUT_INT (K_ATTEMPTS, self->attempts, true);
    PUT_INT (K_ATTEMPT_AT, self->attempt_at, self->attempt_at >= 0);
    PUT_INT (K_DUE, self->due, self->due >= 0);
    PUT_INT (K_DEADLINE, self->deadline, self->deadline >= 0);
    PUT_STR (K_LEASE, *self->lease ? self->lease : NULL);
    PUT_STR (K_SIGNAL, *self->signal ? self->signal : NULL);
    if (self->poll.active) {
        aq_write_int (w, K_POLL);
        s_encode_poll (&self->poll, w);
        n++;
    }
    if (self->notify.active) {
        aq_write_int (w, K_NOTIFY);
        s_encode_notify (&self->notify, w);
        n++;
    }
    if (bk_trace_known (&self->trace)) {
        n += bk_trace_write_fields (w, &self->trace);
        PUT_STR (K_TRACE_STATE, self->trace_state);
        s_kv_bin (w, K_SPAN, self->span, 8), n++;
    }
    aq_write_map_close (w, mark, n);
}

#undef PUT_INT
#undef PUT_STR
#undef PUT_RAW

//  Decoding helpers: each reads value into a field when it has the right
//  type and leaves the field alone otherwise.
static char *s_str (bk_task_t *self, const aq_node_t *value) {
    return aq_node_is_str (value)
               ? bk_arena_strndup (self->arena, (const char *) value->data, value->count)
               : NULL;
}

static void s_uuid (const aq_node_t *value, uint8_t out[16], bool *ok) {
    if (value->type == AQ_NODE_BIN && value->count == 16)
        memcpy (out, value->data, 16);
    else if (ok)
        *ok = false;
}

//  n bytes of a bin value into out; out unchanged (zero) otherwise.
static void s_bytes (const aq_node_t *value, uint8_t *out, size_t n) {
    if (value->type == AQ_NODE_BIN && value->count == n)
        memcpy (out, value->data, n);
}

static void s_lease (const aq_node_t *value, char out[33]) {
    if (!aq_node_strcpy (value, out, 33))
        out[0] = '\0';
}

static void s_decode_poll (bk_task_t *self, const aq_node_t *map) {
    bk_poll_t *poll = &self->poll;
    poll->active = true;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case P_STAGE:
            poll->stage = (int) i;
            break;
        case P_SEQ:
            poll->seq = (int) i;
            break;
        case P_INFLIGHT:
            poll->inflight = i > 0;
            break;
        case P_DUE:
            poll->due = i;
            break;
        case P_INTERVAL:
            poll->interval_ms = i;
            break;
        case P_STATUS_URL:
            poll->status_url = s_str (self, &value);
            break;
        case P_RESULT_URL:
            poll->result_url = s_str (self, &value);
            break;
        case P_CANCEL_URL:
            poll->cancel_url = s_str (self, &value);
            break;
        case P_CANCEL_METHOD:
            poll->cancel_method = s_str (self, &value);
            break;
        case P_FETCH_STATE:
            poll->fetch_state = (int) i;
            break;
        case P_FETCH_ERROR:
            poll->fetch_error = s_str (self, &value);
            break;
        case P_LEASE:
            s_lease (&value, poll->lease);
            break;
        case P_CANCEL_OWED:
            poll->cancel_owed = i > 0;
            break;
        case P_OP_N:
            poll->op_n = i > 0 ? i : 0;
            break;
        case P_OP_STAGE:
            poll->op_stage = (int) i;
            break;
        case P_OP:
            if (value.type == AQ_NODE_MAP) {
                bk_task_set_blob (self, &poll->op, value.raw, value.raw_size);
                poll->op_pending = true;
            }
            break;
        }
    }
}

static void s_decode_notify (bk_notify_t *notify, const aq_node_t *map) {
    notify->active = true;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case N_ATTEMPT:
            notify->attempt = (int) i;
            break;
        case N_INFLIGHT:
            notify->inflight = i > 0;
            break;
        case N_DUE:
            notify->due = i;
            break;
        case N_LEASE:
            s_lease (&value, notify->lease);
            break;
        }
    }
}

static void s_decode_outcome (bk_task_t *self, const aq_node_t *map) {
    bk_outcome_t *outcome = &self->on_complete;
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case O_STATUS:
            outcome->status = (int) i;
            break;
        case O_ATTEMPTS:
            outcome->attempts = (int) i;
            break;
        case O_STATUS_CODE:
            outcome->status_code = (int) i;
            break;
        case O_ERROR:
            outcome->error = s_str (self, &value);
            break;
        case O_DELIVERED_AT:
            outcome->delivered_at = i;
            break;
        }
    }
}

bk_task_t *bk_task_decode (const uint8_t *data, size_t size) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return NULL;
    bk_task_t *self = bk_task_new (size);
    bool ok = true, versioned = false;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case K_VERSION:
            versioned = i == BK_TASK_RECORD;
            break;
        case K_ID:
            s_uuid (&value, self->id, &ok);
            break;
        case K_TEAM:
            s_uuid (&value, self->team, &ok);
            break;
        case K_SEQ: //  stored as an int64: one above INT64_MAX is no seq of ours
            if (value.type == AQ_NODE_INT && value.i >= 0)
                self->seq = value.u;
            else
                ok = false;
            break;
        case K_STATUS:
            self->status = (int) i;
            break;
        case K_TARGET_URL:
            self->target_url = s_str (self, &value);
            break;
        case K_METHOD:
            self->method = (int) i;
            break;
        case K_HEADERS:
            bk_task_set_blob (self, &self->headers, value.raw, value.raw_size);
            break;
        case K_BODY:
            if (aq_node_is_str (&value)) {
                self->body = bk_arena_strndup (self->arena, (const char *) value.data, value.count);
                self->body_size = value.count;
            }
            break;
        case K_MAX_WAIT:
            self->max_wait_s = (int) i;
            break;
        case K_TIMEOUT:
            self->timeout_s = (int) i;
            break;
        case K_DELAY_UNTIL:
            self->delay_until = i;
            break;
        case K_MAX_RETRIES:
            self->max_retries = (int) i;
            break;
        case K_RETRY_COUNT:
            self->retry_count = (int) i;
            break;
        case K_BACKOFF:
            self->backoff = (int) i;
            break;
        case K_PRIORITY:
            self->priority = (int) i;
            break;
        case K_ON_COMPLETE_URL:
            self->on_complete_url = s_str (self, &value);
            break;
        case K_PROVIDER:
            self->provider = s_str (self, &value);
            break;
        case K_POLL_CONFIG:
            bk_task_set_blob (self, &self->poll_config, value.raw, value.raw_size);
            break;
        case K_FLOW_KEY:
            self->flow_key = s_str (self, &value);
            break;
        case K_LABELS:
            if (value.type == AQ_NODE_MAP)
                bk_task_set_blob (self, &self->labels, value.raw, value.raw_size);
            break;
        case K_FLOW_RATE:
            self->flow_rate = (int) i;
            break;
        case K_FLOW_PERIOD:
            self->flow_period = (int) i;
            break;
        case K_FLOW_PARALLELISM:
            self->flow_parallelism = (int) i;
            break;
        case K_SCHEDULE_ID:
            s_uuid (&value, self->schedule_id, &ok), self->in_run = true;
            break;
        case K_RUN_ID:
            s_uuid (&value, self->run_id, &ok);
            break;
        case K_STEP:
            self->step = (int) i;
            break;
        case K_RESULT:
            bk_task_set_blob (self, &self->result, value.raw, value.raw_size);
            break;
        case K_ERROR:
            self->error = s_str (self, &value);
            break;
        case K_ON_COMPLETE:
            s_decode_outcome (self, &value);
            break;
        case K_NEXT_ATTEMPT_AT:
            self->next_attempt_at = i;
            break;
        case K_CREATED_AT:
            self->created_at = i;
            break;
        case K_STARTED_AT:
            self->started_at = i;
            break;
        case K_COMPLETED_AT:
            self->completed_at = i;
            break;
        case K_ATTEMPTS:
            self->attempts = (int) i;
            break;
        case K_ATTEMPT_AT:
            self->attempt_at = i;
            break;
        case K_DUE:
            self->due = i;
            break;
        case K_DEADLINE:
            self->deadline = i;
            break;
        case K_LEASE:
            s_lease (&value, self->lease);
            break;
        case K_SIGNAL:
            if (!aq_node_strcpy (&value, self->signal, sizeof self->signal))
                self->signal[0] = '\0';
            break;
        case K_POLL:
            s_decode_poll (self, &value);
            break;
        case K_NOTIFY:
            s_decode_notify (&self->notify, &value);
            break;
        case K_TRACE_STATE:
            self->trace_state = s_str (self, &value);
            break;
        case K_SPAN:
            s_bytes (&value, self->span, 8);
            break;
        default:
            bk_trace_read_field (key.type == AQ_NODE_INT ? key.i : -1, &value, &self->trace);
        }
    }
    //  every enumeration in range: the public shape indexes tables with them
    if (!ok || !versioned || !bk_status_name (self->status) || !self->target_url ||
        self->method < BK_METHOD_GET || self->method > BK_METHOD_DELETE ||
        !bk_backoff_name (self->backoff) || self->on_complete.status < BK_OUTCOME_NONE ||
        self->on_complete.status > BK_OUTCOME_FAILED)
        bk_task_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  The public shape

static void s_time (aq_writer_t *w, const char *key, int64_t ms) {
    char stamp[32];
    aq_write_kv_str (w, key, aq_time_format (ms, stamp));
}

static void s_uuid_text (aq_writer_t *w, const char *key, const uint8_t id[16]) {
    char text[AQ_UUID_TEXT];
    aq_write_kv_str (w, key, aq_uuid_format (id, text));
}

static void s_outcome_public (const bk_outcome_t *outcome, aq_writer_t *w) {
    aq_write_map (w, 2 + (outcome->status_code >= 0) + (outcome->error != NULL) +
                         (outcome->delivered_at >= 0));
    aq_write_kv_str (w, "status", s_outcomes[outcome->status]);
    aq_write_kv_int (w, "attempts", outcome->attempts);
    if (outcome->status_code >= 0)
        aq_write_kv_int (w, "statusCode", outcome->status_code);
    if (outcome->error)
        aq_write_kv_str (w, "error", outcome->error);
    if (outcome->delivered_at >= 0)
        s_time (w, "deliveredAt", outcome->delivered_at);
}

void bk_task_write_public (const bk_task_t *self, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
#define KV(write)                                                                                  \
    do {                                                                                           \
        write;                                                                                     \
        n++;                                                                                       \
    } while (0)
    KV (s_uuid_text (w, "id", self->id));
    KV (s_uuid_text (w, "teamId", self->team));
    KV (aq_write_kv_str (w, "status", bk_status_name (self->status)));
    KV (aq_write_kv_str (w, "targetUrl", self->target_url));
    KV (aq_write_kv_str (w, "method", bk_method_name (self->method)));
    aq_write_str (w, "headers");
    if (self->headers.size)
        aq_write_raw (w, self->headers.data, self->headers.size);
    else
        aq_write_map (w, 0);
    n++;
    if (self->body) {
        aq_write_str (w, "body");
        aq_write_strn (w, self->body, self->body_size);
        n++;
    }
    KV (aq_write_kv_int (w, "maxWaitTime", self->max_wait_s));
    KV (aq_write_kv_int (w, "timeout", self->timeout_s));
    if (self->delay_until >= 0)
        KV (s_time (w, "delayUntil", self->delay_until));
    KV (aq_write_kv_int (w, "maxRetries", self->max_retries));
    KV (aq_write_kv_int (w, "retryCount", self->retry_count));
    KV (aq_write_kv_str (w, "retryBackoff", bk_backoff_name (self->backoff)));
    KV (aq_write_kv_int (w, "priority", self->priority));
    if (self->on_complete_url)
        KV (aq_write_kv_str (w, "onCompleteUrl", self->on_complete_url));
    if (self->provider)
        KV (aq_write_kv_str (w, "provider", self->provider));
    if (self->poll_config.size) {
        aq_write_str (w, "pollConfig");
        aq_write_raw (w, self->poll_config.data, self->poll_config.size);
        n++;
    }
    if (self->labels.size) {
        aq_write_str (w, "labels");
        aq_write_raw (w, self->labels.data, self->labels.size);
        n++;
    }
    if (self->flow_key) {
        aq_write_str (w, "flowControl");
        aq_write_map (w, 2 + (self->flow_rate > 0) + (self->flow_parallelism > 0));
        aq_write_kv_str (w, "key", self->flow_key);
        if (self->flow_rate)
            aq_write_kv_int (w, "rate", self->flow_rate);
        aq_write_kv_int (w, "period", self->flow_period);
        if (self->flow_parallelism)
            aq_write_kv_int (w, "parallelism", self->flow_parallelism);
        n++;
    }
    if (self->in_run) {
        KV (s_uuid_text (w, "scheduleId", self->schedule_id));
        KV (s_uuid_text (w, "runId", self->run_id));
        KV (aq_write_kv_int (w, "step", self->step));
    }
    if (self->result.size) {
        aq_write_str (w, "result");
        aq_write_raw (w, self->result.data, self->result.size);
        n++;
    }
    if (self->error)
        KV (aq_write_kv_str (w, "error", self->error));
    if (self->on_complete.status != BK_OUTCOME_NONE) {
        aq_write_str (w, "onComplete");
        s_outcome_public (&self->on_complete, w);
        n++;
    }
    if (self->next_attempt_at >= 0)
        KV (s_time (w, "nextAttemptAt", self->next_attempt_at));
    KV (s_time (w, "createdAt", self->created_at));
    if (self->started_at >= 0)
        KV (s_time (w, "startedAt", self->started_at));
    if (self->completed_at >= 0)
        KV (s_time (w, "completedAt", self->completed_at));
#undef KV
    aq_write_map_close (w, mark, n);
}
