/*  sched_task.c - a scheduled task: the typed record, its store encoding, its public shape

    Changing the record: add a key to the table below (never reuse one) and
    to encode/decode; reshaping a key's value means bumping
    BK_SCHED_TASK_RECORD.
*/
#include "sched_task.h"
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
    K_TEAM,
    K_TITLE,
    K_DESCRIPTION,
    K_KIND,
    K_EXPR,
    K_TIMEZONE,
    K_PAYLOAD,
    K_CREATED_BY,
    K_PRIORITY, //  10
    K_MAX_RETRIES,
    K_BACKOFF,
    K_DEDUPE_KEY,
    K_DEDUPE_WINDOW,
    K_CONCURRENCY_KEY,
    K_STATUS,
    K_NEXT_RUN_AT,
    K_LAST_RUN_AT,
    K_SNOOZED_UNTIL,
    K_SNOOZE_REASON, //  20
    K_CREATED_AT,
    K_UPDATED_AT,
    K_ANCHOR = 40,
    K_DUE,
    K_CURSOR, //  [pos, seen, bound] (rrule.h)
    K_SEEK,
    K_TRACE_STATE = BK_TRACE_KEY_STATE, //  50-52: the trace (trace.h)
};

static const char *s_statuses[] = {NULL, "active", "paused", "canceled"};

const char *bk_sched_status_name (int status) {
    return status >= BK_SCHED_ACTIVE && status <= BK_SCHED_CANCELED ? s_statuses[status] : NULL;
}

int bk_sched_status_parse (const char *name, size_t n) {
    for (int i = BK_SCHED_ACTIVE; name && i <= BK_SCHED_CANCELED; i++)
        if (strlen (s_statuses[i]) == n && memcmp (name, s_statuses[i], n) == 0)
            return i;
    return 0;
}

//  --------------------------------------------------------------------------

bk_sched_task_t *bk_sched_task_new (size_t arena_size) {
    bk_arena_t *arena = bk_arena_new (sizeof (bk_sched_task_t) + arena_size);
    bk_sched_task_t *self = bk_arena_alloc (arena, sizeof *self);
    memset (self, 0, sizeof *self);
    self->arena = arena;
    self->dedupe_window_s = -1;
    self->next_run_at = self->last_run_at = self->snoozed_until = -1;
    self->created_at = self->updated_at = -1;
    self->due = self->seek = -1;
    return self;
}

void bk_sched_task_destroy (bk_sched_task_t **self_p) {
    assert (self_p);
    if (*self_p) {
        bk_arena_t *arena = (*self_p)->arena; //  the record lives in its arena
        bk_arena_destroy (&arena);
        *self_p = NULL;
    }
}

bk_sched_task_t *bk_sched_task_dup (const bk_sched_task_t *self) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_sched_task_encode (self, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (data);
    bk_sched_task_t *copy = bk_sched_task_decode (data, size);
    assert (copy);
    copy->stored = self->stored;
    copy->indexed_event = bk_arena_strdup (copy->arena, self->indexed_event);
    aq_writer_release (&w);
    return copy;
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

void bk_sched_task_encode (const bk_sched_task_t *self, aq_writer_t *w) {
    size_t mark = aq_write_map_open (w);
    uint32_t n = 0;
    PUT_INT (K_VERSION, BK_SCHED_TASK_RECORD, true);
    aq_write_int (w, K_ID), aq_write_bin (w, self->id, 16), n++;
    aq_write_int (w, K_TEAM), aq_write_bin (w, self->team, 16), n++;
    PUT_STR (K_TITLE, self->title);
    PUT_STR (K_DESCRIPTION, self->description);
    PUT_INT (K_KIND, self->kind, true);
    PUT_STR (K_EXPR, self->expr);
    PUT_STR (K_TIMEZONE, self->timezone);
    if (self->payload.size) {
        aq_write_int (w, K_PAYLOAD);
        aq_write_raw (w, self->payload.data, self->payload.size);
        n++;
    }
    PUT_STR (K_CREATED_BY, self->created_by);
    PUT_INT (K_PRIORITY, self->priority, true);
    PUT_INT (K_MAX_RETRIES, self->max_retries, true);
    PUT_INT (K_BACKOFF, self->backoff, true);
    PUT_STR (K_DEDUPE_KEY, self->dedupe_key);
    PUT_INT (K_DEDUPE_WINDOW, self->dedupe_window_s, self->dedupe_window_s >= 0);
    PUT_STR (K_CONCURRENCY_KEY, self->concurrency_key);
    PUT_INT (K_STATUS, self->status, true);
    PUT_INT (K_NEXT_RUN_AT, self->next_run_at, self->next_run_at >= 0);
    PUT_INT (K_LAST_RUN_AT, self->last_run_at, self->last_run_at >= 0);
    PUT_INT (K_SNOOZED_UNTIL, self->snoozed_until, self->snoozed_until >= 0);
    PUT_STR (K_SNOOZE_REASON, self->snooze_reason);
    PUT_INT (K_CREATED_AT, self->created_at, true);
    PUT_INT (K_UPDATED_AT, self->updated_at, true);
    PUT_INT (K_ANCHOR, self->anchor, true);
    PUT_INT (K_DUE, self->due, self->due >= 0);
    if (self->cursor.set) {
        aq_write_int (w, K_CURSOR);
        aq_write_array (w, 3);
        aq_write_int (w, self->cursor.at.pos);
        aq_write_int (w, self->cursor.at.seen);
        aq_write_int (w, self->cursor.at.bound);
        n++;
    }
    PUT_INT (K_SEEK, self->seek, self->seek >= 0);
    if (bk_trace_known (&self->trace)) {
        n += bk_trace_write_fields (w, &self->trace);
        PUT_STR (K_TRACE_STATE, self->trace_state);
    }
    aq_write_map_close (w, mark, n);
}

#undef PUT_INT
#undef PUT_STR

static char *s_str (bk_sched_task_t *self, const aq_node_t *value) {
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

static void s_cursor (bk_schedule_cursor_t *cursor, const aq_node_t *value) {
    aq_iter_t it;
    aq_node_t item;
    int64_t parts[3];
    int n = 0;
    if (value->type != AQ_NODE_ARRAY || value->count != 3)
        return;
    aq_node_iter (value, &it);
    while (aq_iter_next (&it, NULL, &item) && item.type == AQ_NODE_INT)
        parts[n++] = item.i;
    if (n == 3)
        *cursor = (bk_schedule_cursor_t){true, {parts[0], parts[1], parts[2]}};
}

bk_sched_task_t *bk_sched_task_decode (const uint8_t *data, size_t size) {
    aq_node_t record;
    if (aq_msg_parse (data, size, &record) != 0 || record.type != AQ_NODE_MAP)
        return NULL;
    bk_sched_task_t *self = bk_sched_task_new (size);
    bool ok = true, versioned = false;
    aq_iter_t it;
    aq_node_iter (&record, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        int64_t i = value.type == AQ_NODE_INT ? value.i : -1;
        switch (key.type == AQ_NODE_INT ? key.i : -1) {
        case K_VERSION:
            versioned = i == BK_SCHED_TASK_RECORD;
            break;
        case K_ID:
            s_uuid (&value, self->id, &ok);
            break;
        case K_TEAM:
            s_uuid (&value, self->team, &ok);
            break;
        case K_TITLE:
            self->title = s_str (self, &value);
            break;
        case K_DESCRIPTION:
            self->description = s_str (self, &value);
            break;
        case K_KIND:
            self->kind = (int) i;
            break;
        case K_EXPR:
            self->expr = s_str (self, &value);
            break;
        case K_TIMEZONE:
            self->timezone = s_str (self, &value);
            break;
        case K_PAYLOAD:
            if (value.type == AQ_NODE_MAP)
                self->payload = (bk_blob_t){
                    bk_arena_memdup (self->arena, value.raw, value.raw_size), value.raw_size};
            break;
        case K_CREATED_BY:
            self->created_by = s_str (self, &value);
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
        case K_DEDUPE_KEY:
            self->dedupe_key = s_str (self, &value);
            break;
        case K_DEDUPE_WINDOW:
            self->dedupe_window_s = (int) i;
            break;
        case K_CONCURRENCY_KEY:
            self->concurrency_key = s_str (self, &value);
            break;
        case K_STATUS:
            self->status = (int) i;
            break;
        case K_NEXT_RUN_AT:
            self->next_run_at = i;
            break;
        case K_LAST_RUN_AT:
            self->last_run_at = i;
            break;
        case K_SNOOZED_UNTIL:
            self->snoozed_until = i;
            break;
        case K_SNOOZE_REASON:
            self->snooze_reason = s_str (self, &value);
            break;
        case K_CREATED_AT:
            self->created_at = i;
            break;
        case K_UPDATED_AT:
            self->updated_at = i;
            break;
        case K_ANCHOR:
            self->anchor = i;
            break;
        case K_DUE:
            self->due = i;
            break;
        case K_CURSOR:
            s_cursor (&self->cursor, &value);
            break;
        case K_SEEK:
            self->seek = i;
            break;
        case K_TRACE_STATE:
            self->trace_state = s_str (self, &value);
            break;
        default:
            bk_trace_read_field (key.type == AQ_NODE_INT ? key.i : -1, &value, &self->trace);
        }
    }
    if (!ok || !versioned || !bk_sched_status_name (self->status) ||
        !bk_schedule_kind_name (self->kind) || !bk_backoff_name (self->backoff) || !self->title ||
        !self->timezone || !self->payload.size)
        bk_sched_task_destroy (&self);
    return self;
}

void bk_sched_task_set_trace (bk_sched_task_t *self, const aq_node_t *traceparent,
                              const aq_node_t *tracestate) {
    memset (&self->trace, 0, sizeof self->trace);
    self->trace_state = NULL;
    if (!traceparent || !aq_node_is_str (traceparent) ||
        bk_trace_parse ((const char *) traceparent->data, traceparent->count, &self->trace) != 0)
        return;
    if (tracestate && aq_node_is_str (tracestate) && tracestate->count &&
        bk_trace_state_ok ((const char *) tracestate->data, tracestate->count))
        self->trace_state =
            bk_arena_strndup (self->arena, (const char *) tracestate->data, tracestate->count);
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

void bk_sched_task_write_public (const bk_sched_task_t *self, aq_writer_t *w) {
    aq_write_map (w, 22);
    s_uuid_text (w, "id", self->id);
    s_uuid_text (w, "team_id", self->team);
    aq_write_kv_str (w, "title", self->title);
    aq_write_kv_str (w, "description", self->description);
    aq_write_kv_str (w, "schedule_kind", bk_schedule_kind_name (self->kind));
    aq_write_kv_str (w, "schedule_expr", self->expr);
    aq_write_kv_str (w, "timezone", self->timezone);
    aq_write_str (w, "payload");
    if (self->payload.size)
        aq_write_raw (w, self->payload.data, self->payload.size);
    else
        aq_write_nil (w);
    aq_write_kv_str (w, "created_by", self->created_by);
    aq_write_kv_int (w, "priority", self->priority);
    aq_write_kv_int (w, "max_retries", self->max_retries);
    aq_write_kv_str (w, "backoff_strategy", bk_backoff_name (self->backoff));
    aq_write_kv_str (w, "dedupe_key", self->dedupe_key);
    aq_write_str (w, "dedupe_window_seconds");
    if (self->dedupe_window_s >= 0)
        aq_write_int (w, self->dedupe_window_s);
    else
        aq_write_nil (w);
    aq_write_kv_str (w, "concurrency_key", self->concurrency_key);
    aq_write_kv_str (w, "status", bk_sched_status_name (self->status));
    s_time (w, "next_run_at", self->next_run_at);
    s_time (w, "last_run_at", self->last_run_at);
    s_time (w, "snoozed_until", self->snoozed_until);
    aq_write_kv_str (w, "snooze_reason", self->snooze_reason);
    s_time (w, "created_at", self->created_at);
    s_time (w, "updated_at", self->updated_at);
}

//  --------------------------------------------------------------------------
//  POST and PUT /tasks bodies

static const char *const s_fields[] = {"title",           "description",
                                       "schedule_kind",   "schedule_expr",
                                       "timezone",        "payload",
                                       "created_by",      "priority",
                                       "max_retries",     "backoff_strategy",
                                       "dedupe_key",      "dedupe_window_seconds",
                                       "concurrency_key", NULL};

//  The strategies a scheduled task may name, and what each is.
static const struct {
    const char *name;
    int strategy;
} s_strategies[] = {{"exponential_jitter", BK_BACKOFF_JITTER},
                    {"linear", BK_BACKOFF_LINEAR},
                    {"fixed", BK_BACKOFF_FIXED}};

const char *bk_sched_task_unknown_field (const aq_node_t *map, const char *const known[],
                                         char *errbuf, size_t size) {
    aq_iter_t it;
    aq_node_iter (map, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        bool found = false;
        for (int i = 0; known[i] && !found; i++)
            found = aq_node_streq (&key, known[i]);
        if (!found) {
            int shown = key.type == AQ_NODE_STR ? (int) (key.count < 100 ? key.count : 100) : 0;
            snprintf (errbuf, size, "Unknown field: %.*s", shown,
                      key.type == AQ_NODE_STR ? (const char *) key.data : "");
            return errbuf;
        }
    }
    return NULL;
}

//  A string without NUL of min..max bytes.
static bool s_string_in (const aq_node_t *value, size_t min, size_t max) {
    return aq_node_is_str (value) && value->count >= min && value->count <= max &&
           !memchr (value->data, '\0', value->count);
}

static int s_fail (char *errbuf, const char *message) {
    snprintf (errbuf, BK_SCHED_TASK_ERRLEN, "%s", message);
    return -1;
}

//  The fields of a request merged over a base: the request's value where
//  it gives the field (null included), else the base's (the defaults, or
//  the old record's public shape, which holds every field).
typedef struct {
    const aq_node_t *request; //  a map, or NULL
    aq_node_t base;           //  a map
    bool window_cleared;      //  a PUT cleared dedupe_key without giving a window
} s_merge_t;

//  The merged value of name; nil when neither has it.
static aq_node_t s_get (const s_merge_t *m, const char *name) {
    aq_node_t value;
    if (!(m->request && aq_node_get (m->request, name, &value)) &&
        !aq_node_get (&m->base, name, &value))
        value.type = AQ_NODE_NIL;
    return value;
}

//  An optional string field: NULL when null, -1 when invalid.
static int s_optional (bk_sched_task_t *record, const aq_node_t *value, char **out) {
    *out = NULL;
    if (aq_node_is_nil (value))
        return 0;
    if (!s_string_in (value, 1, 200))
        return -1;
    *out = s_str (record, value);
    return 0;
}

//  Checks the merged fields in the seed's order into record's user
//  fields. 0 or -1 with errbuf.
static int s_check (const s_merge_t *m, bk_sched_task_t *record, char *errbuf) {
    aq_node_t value = s_get (m, "title");
    int64_t number;
    if (aq_node_is_nil (&value))
        return s_fail (errbuf, "title is required");
    if (!s_string_in (&value, 1, 200))
        return s_fail (errbuf, "title must be a string of 1 to 200 characters");
    record->title = s_str (record, &value);
    value = s_get (m, "description");
    if (aq_node_is_nil (&value))
        return s_fail (errbuf, "description is required");
    if (!s_string_in (&value, 0, 2000))
        return s_fail (errbuf, "description must be a string of at most 2000 characters");
    record->description = s_str (record, &value);

    aq_node_t kind = s_get (m, "schedule_kind");
    if (aq_node_is_nil (&kind))
        return s_fail (errbuf, "schedule_kind is required");
    value = s_get (m, "schedule_expr");
    if (!aq_node_is_nil (&value) && !s_string_in (&value, 0, UINT32_MAX))
        return s_fail (errbuf, "schedule_expr must be a string");
    record->expr = s_str (record, &value);
    value = s_get (m, "timezone");
    if (!aq_node_is_nil (&value) && !s_string_in (&value, 0, UINT32_MAX))
        return s_fail (errbuf, "timezone must be a valid IANA time zone");
    record->timezone =
        aq_node_is_nil (&value) ? bk_arena_strdup (record->arena, "UTC") : s_str (record, &value);
    char kind_text[16] = "", why[BK_SCHEDULE_ERRLEN];
    if (s_string_in (&kind, 0, sizeof kind_text - 1))
        memcpy (kind_text, kind.data, kind.count);
    if (bk_schedule_validate (kind_text, record->expr, record->timezone, why) != 0)
        return s_fail (errbuf, why);
    record->kind = bk_schedule_kind_parse (kind_text, strlen (kind_text));

    value = s_get (m, "payload");
    if (aq_node_is_nil (&value))
        return s_fail (errbuf, "payload is required");
    if (value.type != AQ_NODE_MAP)
        return s_fail (errbuf, "payload must be an object");
    aq_node_t steps, step;
    if (aq_node_get (&value, "steps", &steps)) {
        bool maps = steps.type == AQ_NODE_ARRAY;
        aq_iter_t it;
        aq_node_iter (&steps, &it);
        while (maps && aq_iter_next (&it, NULL, &step))
            maps = step.type == AQ_NODE_MAP;
        if (!maps || steps.count < 1 || steps.count > BK_SCHED_TASK_MAX_STEPS) {
            snprintf (errbuf, BK_SCHED_TASK_ERRLEN,
                      "payload.steps must be an array of 1 to %d task templates",
                      BK_SCHED_TASK_MAX_STEPS);
            return -1;
        }
    }
    record->payload =
        (bk_blob_t){bk_arena_memdup (record->arena, value.raw, value.raw_size), value.raw_size};

    value = s_get (m, "created_by");
    uint8_t uuid[16];
    if (aq_node_is_nil (&value))
        return s_fail (errbuf, "created_by is required");
    record->created_by = s_string_in (&value, 0, 64) ? s_str (record, &value) : NULL;
    if (aq_uuid_parse (record->created_by, uuid) != 0)
        return s_fail (errbuf, "created_by must be a UUID");
    value = s_get (m, "priority");
    if (!aq_node_int_in (&value, 1, 9, &number))
        return s_fail (errbuf, "priority must be an integer between 1 and 9");
    record->priority = (int) number;
    value = s_get (m, "max_retries");
    if (!aq_node_int_in (&value, 0, 10, &number))
        return s_fail (errbuf, "max_retries must be an integer between 0 and 10");
    record->max_retries = (int) number;
    value = s_get (m, "backoff_strategy");
    record->backoff = -1;
    for (size_t i = 0; i < sizeof s_strategies / sizeof s_strategies[0]; i++)
        if (aq_node_streq (&value, s_strategies[i].name))
            record->backoff = s_strategies[i].strategy;
    if (record->backoff < 0)
        return s_fail (errbuf,
                       "backoff_strategy must be one of: exponential_jitter, linear, fixed");
    value = s_get (m, "dedupe_key");
    if (s_optional (record, &value, &record->dedupe_key) != 0)
        return s_fail (errbuf, "dedupe_key must be a string of 1 to 200 characters");
    value = s_get (m, "dedupe_window_seconds");
    record->dedupe_window_s = -1;
    if (!m->window_cleared && !aq_node_is_nil (&value)) {
        if (!aq_node_int_in (&value, 1, 2592000, &number))
            return s_fail (errbuf,
                           "dedupe_window_seconds must be an integer between 1 and 2592000");
        record->dedupe_window_s = (int) number;
    } else if (record->dedupe_key)
        record->dedupe_window_s = BK_SCHED_TASK_DEDUPE_S;
    value = s_get (m, "concurrency_key");
    if (s_optional (record, &value, &record->concurrency_key) != 0)
        return s_fail (errbuf, "concurrency_key must be a string of 1 to 200 characters");
    return 0;
}

//  The defaults of a POST /tasks body: every field, null where none.
static void s_write_defaults (aq_writer_t *w) {
    aq_write_map (w, 13);
    static const char *const nulls[] = {
        "title",      "description", "schedule_kind",         "schedule_expr",  "payload",
        "created_by", "dedupe_key",  "dedupe_window_seconds", "concurrency_key"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        aq_write_str (w, nulls[i]), aq_write_nil (w);
    aq_write_kv_str (w, "timezone", "UTC");
    aq_write_kv_int (w, "priority", 5);
    aq_write_kv_int (w, "max_retries", 3);
    aq_write_kv_str (w, "backoff_strategy", "exponential_jitter");
}

bk_sched_task_t *bk_sched_task_from_request (const aq_node_t *request, const bk_sched_task_t *old,
                                             char *errbuf) {
    if (!request || request->type != AQ_NODE_MAP) {
        s_fail (errbuf, "Request body must be a JSON object");
        return NULL;
    }
    if (bk_sched_task_unknown_field (request, s_fields, errbuf, BK_SCHED_TASK_ERRLEN))
        return NULL;
    aq_writer_t w;
    aq_writer_init (&w);
    if (old)
        bk_sched_task_write_public (old, &w);
    else
        s_write_defaults (&w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    s_merge_t merge = {.request = request};
    int rc = aq_msg_parse (data, size, &merge.base);
    assert (rc == 0);
    //  a PUT that clears dedupe_key clears its window too, unless it gives one
    aq_node_t value;
    merge.window_cleared = old && aq_node_get (request, "dedupe_key", &value) &&
                           aq_node_is_nil (&value) &&
                           !aq_node_get (request, "dedupe_window_seconds", &value);
    bk_sched_task_t *record = old ? bk_sched_task_dup (old) : bk_sched_task_new (request->raw_size);
    if (s_check (&merge, record, errbuf) != 0)
        bk_sched_task_destroy (&record);
    aq_writer_release (&w);
    return record;
}

//  --------------------------------------------------------------------------
//  Steps

int bk_sched_task_each_step (const bk_blob_t *payload, bk_sched_step_fn *fn, void *arg,
                             bool *bare) {
    aq_node_t map, steps, step;
    if (aq_msg_parse (payload->data, payload->size, &map) != 0)
        return -1;
    *bare = !aq_node_get (&map, "steps", &steps) || steps.type != AQ_NODE_ARRAY;
    if (*bare)
        return fn (arg, 0, &map);
    aq_iter_t it;
    aq_node_iter (&steps, &it);
    int rc = 0;
    for (int index = 0; rc == 0 && aq_iter_next (&it, NULL, &step); index++)
        rc = fn (arg, index, &step);
    return rc;
}

int bk_sched_task_write_steps (const bk_blob_t *payload, aq_writer_t *w) {
    aq_node_t map, steps;
    if (aq_msg_parse (payload->data, payload->size, &map) == 0 &&
        aq_node_get (&map, "steps", &steps) && steps.type == AQ_NODE_ARRAY) {
        aq_write_raw (w, steps.raw, steps.raw_size);
        return (int) steps.count;
    }
    aq_write_array (w, 1);
    aq_write_raw (w, payload->data, payload->size);
    return 1;
}

int bk_sched_task_queue_priority (int priority) {
    return priority < 1 || priority > 9 ? 5 : 10 - priority;
}

int bk_sched_task_snooze (const aq_node_t *request, int64_t *seconds, aq_node_t *reason,
                          char *errbuf) {
    if (!request || request->type != AQ_NODE_MAP)
        return s_fail (errbuf, "Request body must be a JSON object");
    static const char *const fields[] = {"delay_seconds", "reason", NULL};
    if (bk_sched_task_unknown_field (request, fields, errbuf, BK_SCHED_TASK_ERRLEN))
        return -1;
    aq_node_t value;
    if (!aq_node_get (request, "delay_seconds", &value) || aq_node_is_nil (&value))
        return s_fail (errbuf, "delay_seconds is required");
    if (!aq_node_int_in (&value, 1, BK_SCHED_TASK_SNOOZE_MAX, seconds))
        return s_fail (errbuf, "delay_seconds must be an integer between 1 and 604800");
    if (!aq_node_get (request, "reason", reason))
        reason->type = AQ_NODE_NIL;
    if (!aq_node_is_nil (reason) && !s_string_in (reason, 0, 500))
        return s_fail (errbuf, "reason must be a string of at most 500 characters");
    return 0;
}
