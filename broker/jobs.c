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

//  --------------------------------------------------------------------------
//  Selftest: each JOB as a worker reads it, over rig_core (a store, the
//  vault-sodium plugin, the team's signing secret)

#include "../tests/rig_core.h"
#include "aq_proto.h"

//  The JOB body w holds (borrows w).
static aq_node_t s_body (aq_writer_t *w) {
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    aq_node_t body;
    assert (data && aq_msg_parse (data, size, &body) == 0 && body.type == AQ_NODE_MAP);
    return body;
}

//  The string at path ("url", "headers.X-A") of map into buf, "" when absent.
static const char *s_get (const aq_node_t *map, const char *path, char *buf, size_t size) {
    aq_node_t node = *map, value;
    const char *dot = strchr (path, '.');
    buf[0] = '\0';
    if (dot) {
        char first[32];
        snprintf (first, sizeof first, "%.*s", (int) (dot - path), path);
        if (!aq_node_get (map, first, &node))
            return buf;
        path = dot + 1;
    }
    if (aq_node_get (&node, path, &value) && value.type == AQ_NODE_INT)
        snprintf (buf, size, "%lld", (long long) value.i);
    else if (!aq_node_get (&node, path, &value) || !aq_node_strcpy (&value, buf, size))
        buf[0] = '\0';
    return buf;
}

static bool s_is (const aq_node_t *map, const char *path, const char *text) {
    char buf[8192];
    if (strcmp (s_get (map, path, buf, sizeof buf), text) == 0)
        return true;
    fprintf (stderr, "bk_jobs: %s is '%s', want '%s'\n", path, buf, text);
    return false;
}

//  The headers' count.
static uint32_t s_headers (const aq_node_t *job) {
    aq_node_t headers;
    assert (aq_node_get (job, "headers", &headers) && headers.type == AQ_NODE_MAP);
    return headers.count;
}

//  True when the JOB's Standard Webhooks headers sign body for msg_id with
//  whsec: checked here with libsodium, apart from signing.c.
static bool s_signed (const aq_node_t *job, const char *whsec, const char *msg_id, int64_t now,
                      const char *body) {
    char stamp[24], text[16384], want[80], mac64[64];
    snprintf (stamp, sizeof stamp, "%lld", (long long) (now / 1000));
    uint8_t key[64], mac[crypto_auth_hmacsha256_BYTES];
    size_t key_size;
    assert (sodium_base642bin (key, sizeof key, whsec + 6, strlen (whsec + 6), NULL, &key_size,
                               NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
    int n = snprintf (text, sizeof text, "%s.%s.%s", msg_id, stamp, body);
    assert (n > 0 && n < (int) sizeof text);
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, key, key_size);
    crypto_auth_hmacsha256_update (&state, (const uint8_t *) text, (size_t) n);
    crypto_auth_hmacsha256_final (&state, mac);
    sodium_bin2base64 (mac64, sizeof mac64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    snprintf (want, sizeof want, "v1,%s", mac64);
    return s_is (job, "headers.webhook-id", msg_id) &&
           s_is (job, "headers.webhook-timestamp", stamp) &&
           s_is (job, "headers.webhook-signature", want);
}

//  A token holding value; its id into id.
static void s_token (rig_core_t *rig, const char *value, char id[64]) {
    assert (rig_core_call (rig, AQ_CMD_TOKEN_CREATE,
                           "{\"key\": \"%s\", \"token\": {\"name\": \"t\", \"value\": \"%s\"}}",
                           rig->key, value) == AQ_CREATED);
    aq_node_t token, value_node;
    assert (aq_node_get (&rig->body, "token", &token) && aq_node_get (&token, "id", &value_node) &&
            aq_node_strcpy (&value_node, id, 64));
}

//  Task id, pending, is cancelled: no worker gets it.
static void s_cancel (rig_core_t *rig, const char *id) {
    assert (rig_core_call (rig, AQ_CMD_TASK_CANCEL, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
}

static void s_test_call_and_poll (rig_core_t *rig, bk_job_ctx_t *ctx) {
    char token[64], json[512], id[AQ_UUID_TEXT], buf[128];
    s_token (rig, "Key s3cret", token);
    snprintf (json, sizeof json,
              "{\"targetUrl\": \"http://t.test/a?b=1\", \"method\": \"PUT\", \"body\": "
              "\"payload\", \"timeout\": 7, \"headers\": {\"Authorization\": \"%s\", "
              "\"X-Plain\": \"p\"}}",
              token);
    rig_core_created (rig, json, id);
    bk_task_t *task = rig_core_task (rig, id);
    aq_writer_t w;
    aq_writer_init (&w);
    char error[128];
    //  the call: user headers with the token's value, signed, a signal token
    task->attempts = 2;
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == 0);
    aq_node_t job = s_body (&w);
    assert (s_is (&job, "id", id) && s_is (&job, "attempt", "2") && s_is (&job, "method", "PUT"));
    assert (s_is (&job, "url", "http://t.test/a?b=1") && s_is (&job, "timeout", "7"));
    assert (s_is (&job, "maxBody", "65536") && s_is (&job, "body", "payload"));
    assert (strlen (task->lease) == 32 && s_is (&job, "lease", task->lease));
    assert (!*s_get (&job, "kind", buf, sizeof buf));
    assert (s_is (&job, "headers.Authorization", "Key s3cret") &&
            s_is (&job, "headers.X-Plain", "p"));
    assert (s_signed (&job, ctx->whsec, id, ctx->now, "payload") && s_headers (&job) == 7);
    assert (strncmp (s_get (&job, "headers.traceparent", buf, sizeof buf), "00-", 3) == 0);
    char signal[64], hash[65];
    s_get (&job, "headers.AsyncQueue-Signal-Token", signal, sizeof signal);
    assert (strncmp (signal, "sig_", 4) == 0 && strlen (signal) == 36);
    s_hash_hex (signal, hash);
    assert (strcmp (hash, task->signal) == 0);
    char lease[33];
    snprintf (lease, sizeof lease, "%s", task->lease);
    //  each call: a new lease and signal token; GET sends no body (signed empty)
    task->method = BK_METHOD_GET;
    aq_writer_reset (&w);
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (strcmp (task->lease, lease) != 0 && s_is (&job, "lease", task->lease));
    assert (strcmp (s_get (&job, "headers.AsyncQueue-Signal-Token", hash, sizeof hash), signal));
    assert (!*s_get (&job, "body", buf, sizeof buf));
    assert (s_signed (&job, ctx->whsec, id, ctx->now, ""));
    //  unsigned without a team secret
    const char *whsec = ctx->whsec;
    ctx->whsec = NULL;
    aq_writer_reset (&w);
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (s_headers (&job) == 4 && !*s_get (&job, "headers.webhook-id", buf, sizeof buf));
    ctx->whsec = whsec;

    //  polls: the status or result URL, only the headers the provider lets
    //  through (any case), unsigned, no signal token; a pollConfig's: every
    //  header, signed
    task->poll.status_url = bk_task_strdup (task, "https://p.test/status");
    task->poll.stage = 1; //  BK_POLL_STATUS
    task->poll.seq = 3;
    static const char *const only[] = {"authorization", NULL};
    aq_writer_reset (&w);
    assert (bk_jobs_poll (ctx, task, only, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (s_is (&job, "kind", "poll") && s_is (&job, "attempt", "3") &&
            s_is (&job, "method", "GET"));
    assert (s_is (&job, "url", "https://p.test/status") && s_is (&job, "timeout", "7"));
    assert (strlen (task->poll.lease) == 32 && s_is (&job, "lease", task->poll.lease));
    assert (s_is (&job, "headers.Authorization", "Key s3cret") && s_headers (&job) == 2);
    assert (!*s_get (&job, "body", buf, sizeof buf));
    aq_writer_reset (&w);
    assert (bk_jobs_poll (ctx, task, NULL, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (s_headers (&job) == 6 && s_signed (&job, ctx->whsec, id, ctx->now, ""));
    task->poll.stage = 2; //  BK_POLL_RESULT, and no result URL
    aq_writer_reset (&w);
    assert (bk_jobs_poll (ctx, task, only, &w, error, sizeof error) == -1);
    assert (strcmp (error, "poll request cannot be made") == 0);
    task->poll.result_url = bk_task_strdup (task, "https://p.test/result");
    aq_writer_reset (&w);
    assert (bk_jobs_poll (ctx, task, only, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (s_is (&job, "url", "https://p.test/result"));

    //  a cancel: its method (POST by default), no lease, the provider's headers
    task->poll.cancel_url = bk_task_strdup (task, "https://p.test/cancel");
    aq_writer_reset (&w);
    assert (bk_jobs_cancel (ctx, task, only, &w) == 0);
    job = s_body (&w);
    assert (s_is (&job, "kind", "cancel") && s_is (&job, "attempt", "0") &&
            s_is (&job, "method", "POST") && s_is (&job, "url", "https://p.test/cancel"));
    assert (!*s_get (&job, "lease", buf, sizeof buf) && s_headers (&job) == 2);
    task->poll.cancel_method = bk_task_strdup (task, "DELETE");
    aq_writer_reset (&w);
    assert (bk_jobs_cancel (ctx, task, only, &w) == 0);
    job = s_body (&w);
    assert (s_is (&job, "method", "DELETE"));

    //  the token gone, or no vault: the JOB cannot be made
    assert (rig_core_call (rig, AQ_CMD_TOKEN_DELETE, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           token) == AQ_OK);
    snprintf (json, sizeof json, "Token %s not found", token);
    aq_writer_reset (&w);
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == -1 && strcmp (error, json) == 0);
    aq_writer_reset (&w);
    assert (bk_jobs_poll (ctx, task, only, &w, error, sizeof error) == -1 &&
            strcmp (error, json) == 0);
    aq_writer_reset (&w);
    assert (bk_jobs_cancel (ctx, task, only, &w) == -1);
    s_token (rig, "v", token);
    task->headers = (bk_blob_t){0};
    snprintf (json, sizeof json, "{\"A\": \"%s\"}", token);
    aq_writer_t headers;
    aq_writer_init (&headers);
    assert (aq_json_parse (json, &headers) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&headers, &size);
    bk_task_set_blob (task, &task->headers, data, size);
    aq_writer_release (&headers);
    ctx->vault = NULL;
    aq_writer_reset (&w);
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == -1);
    ctx->vault = rig->vault;
    aq_writer_reset (&w);
    assert (bk_jobs_call (ctx, task, &w, error, sizeof error) == 0);
    job = s_body (&w);
    assert (s_is (&job, "headers.A", "v"));
    aq_writer_release (&w);
    bk_task_destroy (&task);
    s_cancel (rig, id);
}

static void s_test_notify (rig_core_t *rig, bk_job_ctx_t *ctx) {
    char id[AQ_UUID_TEXT], msg_id[64], body[8192];
    rig_core_created (rig,
                      "{\"targetUrl\": \"http://t.test/x\", \"onCompleteUrl\": "
                      "\"https://h.test/done\"}",
                      id);
    bk_task_t *task = rig_core_task (rig, id);
    task->status = BK_ST_COMPLETED;
    task->notify.attempt = 2;
    aq_writer_t w;
    aq_writer_init (&w);
    bk_jobs_notify (ctx, task, &w);
    aq_node_t job = s_body (&w);
    assert (s_is (&job, "kind", "notify") && s_is (&job, "attempt", "2") &&
            s_is (&job, "method", "POST") && s_is (&job, "url", "https://h.test/done"));
    assert (s_is (&job, "timeout", "30") && s_is (&job, "maxBody", "1024"));
    assert (strlen (task->notify.lease) == 32 && s_is (&job, "lease", task->notify.lease));
    //  the body: the task as GET /v1/tasks/:id shows it, as JSON, signed
    aq_writer_t shown;
    aq_writer_init (&shown);
    aq_write_map (&shown, 1);
    aq_write_str (&shown, "task");
    bk_task_write_public (task, &shown);
    aq_node_t node = s_body (&shown);
    char *want = aq_json_dumps (&node);
    assert (want && s_is (&job, "body", want) && strstr (want, "\"status\":\"completed\""));
    free (want);
    aq_writer_release (&shown);
    s_get (&job, "body", body, sizeof body);
    snprintf (msg_id, sizeof msg_id, "%s.complete", id);
    assert (s_signed (&job, ctx->whsec, msg_id, ctx->now, body));
    assert (s_is (&job, "headers.Content-Type", "application/json") && s_headers (&job) == 5);
    aq_writer_release (&w);
    bk_task_destroy (&task);
    s_cancel (rig, id);
}

//  A JOB too large for any worker (a token's value in a thousand headers)
//  fails its task at dispatch, as an attempt, and nothing is sent
static void s_test_too_large (rig_core_t *rig) {
    char value[8001], token[64];
    memset (value, 'x', 8000);
    value[8000] = '\0';
    s_token (rig, value, token);
    size_t size = 100 + 1100 * (16 + strlen (token));
    char *json = malloc (size);
    assert (json);
    int used = snprintf (json, size, "{\"targetUrl\": \"http://t.test/x\", \"headers\": {");
    for (int i = 0; i < 1100; i++)
        used += snprintf (json + used, size - (size_t) used, "%s\"H%04d\": \"%s\"", i ? ", " : "",
                          i, token);
    snprintf (json + used, size - (size_t) used, "}}");
    char id[AQ_UUID_TEXT];
    rig_core_created (rig, json, id);
    free (json);
    rig_worker_t *worker = rig_core_worker (rig, NULL, 1);
    assert (!rig_worker_job (worker));
    const bk_task_t *task = rig_core_is (rig, id, BK_ST_FAILED);
    assert (strncmp (task->error, "job too large to send: ", 23) == 0);
    assert (strstr (task->error, " bytes (limit 8387584 bytes)") &&
            atol (task->error + 23) > 8800000);
    assert (rig_core_call (rig, AQ_CMD_TASK_ATTEMPTS, "{\"key\": \"%s\", \"id\": \"%s\"}", rig->key,
                           id) == AQ_OK);
    assert (rig_core_shows (rig, "\"error\":\"job too large to send: "));
    rig_worker_bye (worker);
}

void bk_jobs_test (bool verbose) {
    rig_core_t *rig = rig_core_new ("jobs", true);
    bk_job_ctx_t ctx = {rig->store, rig->vault, NULL, rig->now, rig->cfg.max_body};
    char whsec[BK_SECRET_TEXT];
    snprintf (whsec, sizeof whsec, "%s", bk_keys_signing_secret (rig->keys, rig->team));
    assert (strncmp (whsec, "whsec_", 6) == 0);
    ctx.whsec = whsec;
    s_test_call_and_poll (rig, &ctx);
    s_test_notify (rig, &ctx);
    s_test_too_large (rig);
    rig_core_destroy (&rig);
    if (verbose)
        printf ("bk_jobs: ok\n");
}
