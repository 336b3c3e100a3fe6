/*  jobs.c - the JOBs a task sends a worker: its call, polls, deliveries, cancels */
#include "jobs.h"
#include "aq_json.h"
#include "aq_uuid.h"
#include "signing.h"
#include "tokens.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  A new random lease token (32 hex digits) into lease.
static void s_lease (char lease[33]) {
    uint8_t raw[16];
    aq_uuid_random (raw, sizeof raw);
    sodium_bin2hex (lease, 33, raw, sizeof raw);
}

//  BLAKE2b of a one-time token, in hex, into hex[65].
static void s_hash_hex (const char *token, char hex[65]) {
    uint8_t hash[32];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) token, strlen (token), NULL, 0);
    sodium_bin2hex (hex, 65, hash, sizeof hash);
}

//  True when name is in the NULL-terminated list (case-insensitive).
static bool s_listed (const char *const *list, const char *name, size_t len) {
    for (; list && *list; list++)
        if (strlen (*list) == len && strncasecmp (*list, name, len) == 0)
            return true;
    return false;
}

//  Writes the task's headers (only those in only, unless only is NULL)
//  with token ids replaced by their values; returns how many pairs, or -1
//  with error set when a token is gone.
static int s_user_headers (const bk_job_ctx_t *ctx, const bk_task_t *task, const char *const *only,
                           aq_writer_t *w, char *error, size_t size) {
    aq_node_t headers, name, value;
    if (!task->headers.size || aq_msg_parse (task->headers.data, task->headers.size, &headers))
        return 0;
    int pairs = 0;
    aq_iter_t it;
    aq_node_iter (&headers, &it);
    static const char *const traced[] = {"traceparent", "tracestate", NULL};
    while (aq_iter_next (&it, &name, &value)) {
        if (only && !s_listed (only, (const char *) name.data, name.count))
            continue;
        if (bk_trace_known (&task->trace) &&
            s_listed (traced, (const char *) name.data, name.count))
            continue; //  the request is a span of the task's trace: ours go instead
        char id[64];
        if (aq_node_strcpy (&value, id, sizeof id) && bk_tokens_is_id (id)) {
            char *secret = NULL;
            size_t secret_size = 0;
            if (!ctx->vault ||
                bk_tokens_open (ctx->store, ctx->vault, task->team, id, &secret, &secret_size)) {
                snprintf (error, size, "Token %s not found", id);
                return -1;
            }
            aq_write_raw (w, name.raw, name.raw_size);
            aq_write_strn (w, secret, secret_size);
            aq_plugin_secret_free (&secret, secret_size);
        } else {
            aq_write_raw (w, name.raw, name.raw_size);
            aq_write_raw (w, value.raw, value.raw_size);
        }
        pairs++;
    }
    return pairs;
}

//  traceparent (a new span of the task's trace, into span when not NULL)
//  and the creator's tracestate; their count (none for a task without a
//  trace: only a const one from layout 1 that never called).
static int s_trace (const bk_task_t *task, uint8_t *span, aq_writer_t *w) {
    if (!bk_trace_known (&task->trace))
        return 0;
    uint8_t fresh[8];
    bk_trace_span (span ? span : fresh);
    char header[BK_TRACE_HEADER];
    aq_write_kv_str (w, "traceparent", bk_trace_header (&task->trace, span ? span : fresh, header));
    if (task->trace_state)
        aq_write_kv_str (w, "tracestate", task->trace_state);
    return 1 + (task->trace_state != NULL);
}

//  The Standard Webhooks headers for msg_id and body; their count.
static int s_signature (const bk_job_ctx_t *ctx, const char *msg_id, const char *body,
                        size_t body_size, aq_writer_t *w) {
    char signature[BK_SIGNING_SIZE], stamp[24];
    int64_t seconds = ctx->now / 1000;
    if (!ctx->whsec ||
        bk_signing_sign (ctx->whsec, msg_id, seconds, body, body_size, signature) != 0)
        return 0;
    snprintf (stamp, sizeof stamp, "%lld", (long long) seconds);
    aq_write_kv_str (w, "webhook-id", msg_id);
    aq_write_kv_str (w, "webhook-timestamp", stamp);
    aq_write_kv_str (w, "webhook-signature", signature);
    return 3;
}

//  The fields every JOB has: id, attempt, kind (NULL for the call), url,
//  method, timeout, maxBody, lease (NULL for none). Returns their count.
static int s_common (const bk_task_t *task, int attempt, const char *kind, const char *url,
                     const char *method, int timeout, int max_body, const char *lease,
                     aq_writer_t *w) {
    char id[AQ_UUID_TEXT];
    aq_write_kv_str (w, "id", aq_uuid_format (task->id, id));
    aq_write_kv_int (w, "attempt", attempt);
    if (kind)
        aq_write_kv_str (w, "kind", kind);
    aq_write_kv_str (w, "url", url);
    aq_write_kv_str (w, "method", method);
    aq_write_kv_int (w, "timeout", timeout);
    aq_write_kv_int (w, "maxBody", max_body);
    if (lease)
        aq_write_kv_str (w, "lease", lease);
    return 6 + (kind != NULL) + (lease != NULL);
}

int bk_jobs_call (const bk_job_ctx_t *ctx, bk_task_t *task, aq_writer_t *w, char *error,
                  size_t size) {
    s_lease (task->lease);
    if (!bk_trace_known (&task->trace)) //  a task from layout 1: its trace starts now
        bk_task_set_trace (task, NULL, NULL);
    bool get = task->method == BK_METHOD_GET;
    const char *body = get ? NULL : task->body;
    size_t body_size = body ? task->body_size : 0;
    size_t map = aq_write_map_open (w);
    int n = s_common (task, task->attempts, NULL, task->target_url, bk_method_name (task->method),
                      task->timeout_s, ctx->max_body, task->lease, w);
    if (body) {
        aq_write_str (w, "body");
        aq_write_strn (w, body, body_size);
        n++;
    }
    aq_write_str (w, "headers");
    size_t headers = aq_write_map_open (w);
    int pairs = s_user_headers (ctx, task, NULL, w, error, size);
    if (pairs < 0)
        return -1;
    char id[AQ_UUID_TEXT];
    pairs += s_signature (ctx, aq_uuid_format (task->id, id), body, body_size, w);
    pairs += s_trace (task, task->span, w);
    //  the one-time token a waiting target signals with; the task keeps its hash
    uint8_t raw[16];
    char token[4 + 33] = "sig_";
    aq_uuid_random (raw, sizeof raw);
    sodium_bin2hex (token + 4, sizeof token - 4, raw, sizeof raw);
    aq_write_kv_str (w, "AsyncQueue-Signal-Token", token);
    s_hash_hex (token, task->signal);
    aq_write_map_close (w, headers, (uint32_t) pairs + 1);
    aq_write_map_close (w, map, (uint32_t) n + 1);
    return 0;
}

int bk_jobs_poll (const bk_job_ctx_t *ctx, bk_task_t *task, const char *const *poll_headers,
                  aq_writer_t *w, char *error, size_t size) {
    bool result = task->poll.stage == 2; //  BK_POLL_RESULT
    const char *url = result ? task->poll.result_url : task->poll.status_url;
    if (!url) {
        snprintf (error, size, "poll request cannot be made");
        return -1;
    }
    s_lease (task->poll.lease);
    size_t map = aq_write_map_open (w);
    int n = s_common (task, task->poll.seq, "poll", url, "GET", task->timeout_s, ctx->max_body,
                      task->poll.lease, w);
    aq_write_str (w, "headers");
    size_t headers = aq_write_map_open (w);
    int pairs = s_user_headers (ctx, task, poll_headers, w, error, size);
    if (pairs < 0)
        return -1;
    if (!poll_headers) { //  a pollConfig's status URL is the user's API: signed like the call
        char id[AQ_UUID_TEXT];
        pairs += s_signature (ctx, aq_uuid_format (task->id, id), NULL, 0, w);
    }
    pairs += s_trace (task, NULL, w);
    aq_write_map_close (w, headers, (uint32_t) pairs);
    aq_write_map_close (w, map, (uint32_t) n + 1);
    return 0;
}

void bk_jobs_notify (const bk_job_ctx_t *ctx, bk_task_t *task, aq_writer_t *w) {
    s_lease (task->notify.lease);
    //  the body: {"task": ...} as GET /v1/tasks/:id answers, as JSON text
    aq_writer_t shown;
    aq_writer_init (&shown);
    aq_write_map (&shown, 1);
    aq_write_str (&shown, "task");
    bk_task_write_public (task, &shown);
    size_t shown_size;
    const uint8_t *data = aq_writer_data (&shown, &shown_size);
    aq_node_t node;
    char *body = data && aq_msg_parse (data, shown_size, &node) == 0 ? aq_json_dumps (&node) : NULL;
    aq_writer_release (&shown);
    char id[AQ_UUID_TEXT], msg_id[AQ_UUID_TEXT + 16];
    snprintf (msg_id, sizeof msg_id, "%s.complete", aq_uuid_format (task->id, id));
    size_t map = aq_write_map_open (w);
    int n = s_common (task, task->notify.attempt, "notify", task->on_complete_url, "POST", 30, 1024,
                      task->notify.lease, w);
    aq_write_kv_str (w, "body", body ? body : "{}");
    aq_write_str (w, "headers");
    size_t headers = aq_write_map_open (w);
    aq_write_kv_str (w, "Content-Type", "application/json");
    int pairs = 1 + (body ? s_signature (ctx, msg_id, body, strlen (body), w) : 0);
    pairs += s_trace (task, NULL, w);
    aq_write_map_close (w, headers, (uint32_t) pairs);
    aq_write_map_close (w, map, (uint32_t) n + 2);
    free (body);
}

int bk_jobs_cancel (const bk_job_ctx_t *ctx, const bk_task_t *task, const char *const *poll_headers,
                    aq_writer_t *w) {
    char error[128];
    const char *method = task->poll.cancel_method ? task->poll.cancel_method : "POST";
    size_t map = aq_write_map_open (w);
    int n = s_common (task, 0, "cancel", task->poll.cancel_url, method, 30, 1024, NULL, w);
    aq_write_str (w, "headers");
    size_t headers = aq_write_map_open (w);
    int pairs = s_user_headers (ctx, task, poll_headers, w, error, sizeof error);
    if (pairs < 0)
        return -1;
    pairs += s_trace (task, NULL, w);
    aq_write_map_close (w, headers, (uint32_t) pairs);
    aq_write_map_close (w, map, (uint32_t) n + 1);
    return 0;
}
