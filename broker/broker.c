/*  broker.c - the broker's event loop: requests, dispatch, results, timers

    One thread. Each turn: poll; open one write transaction; handle every
    message waiting on both ROUTERs (bounded), move due delayed tasks to the
    ready queue, expire dead workers and leases, dispatch to workers with
    credit; commit once; only then send replies, jobs and events (group
    commit: nobody hears of a change before it is on disk).
*/
#include "broker.h"
#include "broker_int.h"
#include "aq_log.h"
#include "aq_notify.h"
#include "aq_proto.h"
#include "aq_secret.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include "backoff.h"
#include "delay.h"
#include "keys.h"
#include "lease.h"
#include "poll.h"
#include "limits.h"
#include "queue.h"
#include "scheduler.h"
#include "signing.h"
#include "store.h"
#include "task.h"
#include "tasks.h"
#include "tokens.h"
#include "waiters.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_BATCH            1000       //  messages per socket per turn
#define S_TURN_BYTES       (8u << 20) //  bytes per socket per turn (see BK_STORE_HEADROOM)
#define S_IDEM_TTL         (24 * 3600000LL)
#define S_MAX_WAIT_S       25
#define S_NOTIFY_TRIES     4    //  onCompleteUrl deliveries: the first and 3 retries
#define S_POLL_RETRY_MAX_S 3600 //  longest Retry-After a throttled status poll waits

static const char *s_latency_le[] = {"5",   "10",   "25",   "50",   "100",   "250",
                                     "500", "1000", "2500", "5000", "10000", "+Inf"};
static const int64_t s_latency_ms[] = {5,   10,   25,   50,   100,   250,
                                       500, 1000, 2500, 5000, 10000, INT64_MAX};
#define S_BUCKETS (sizeof s_latency_ms / sizeof s_latency_ms[0])
_Static_assert(S_BUCKETS == BK_LATENCY_BUCKETS, "one histogram");

//  The sockets cfg asks for: its endpoints, with ipc://DATA/client.ipc
//  always among the clients'. Returns that list, which out points to and
//  the caller frees.
static char *s_sockets_config (const bk_config_t *cfg, bk_sockets_config_t *out) {
    char *clients = NULL;
    const char *extra = cfg->client_endpoints;
    if (asprintf (&clients, "ipc://%s/client.ipc%s%s", cfg->data_dir ? cfg->data_dir : ".",
                  extra && *extra ? "," : "", extra && *extra ? extra : "") < 0)
        clients = NULL;
    assert (clients);
    *out =
        (bk_sockets_config_t){.endpoints = {clients, cfg->worker_endpoints, cfg->event_endpoints},
                              .cert = cfg->cert,
                              .allow_clients = cfg->allow_clients,
                              .allow_workers = cfg->allow_workers,
                              .insecure = cfg->insecure};
    return clients;
}

void bk_config_defaults (bk_config_t *cfg) {
    memset (cfg, 0, sizeof *cfg);
    cfg->backoff_base_ms = 1000;
    cfg->backoff_cap_ms = 3600000;
    cfg->heartbeat_ms = 1000;
    cfg->heartbeat_liveness = 5;
    cfg->max_body = 65536;
    cfg->map_size = 1LL << 30;
    cfg->checkpoint_ms = BK_STORE_CHECKPOINT_MS;
    cfg->poll_interval_ms = 2000;
    cfg->provider_timeout_ms = 5000;
}

bool bk_config_option (bk_config_t *cfg, const char *name, const char *value) {
    if (strcmp (name, "--data") == 0)
        cfg->data_dir = value;
    else if (strcmp (name, "--events") == 0)
        cfg->event_endpoints = strcmp (value, "none") == 0 ? NULL : value;
    else if (strcmp (name, "--backoff-base-ms") == 0)
        cfg->backoff_base_ms = atoll (value);
    else if (strcmp (name, "--backoff-cap-ms") == 0)
        cfg->backoff_cap_ms = atoll (value);
    else if (strcmp (name, "--heartbeat-ms") == 0)
        cfg->heartbeat_ms = atoi (value);
    else if (strcmp (name, "--max-response-body") == 0)
        cfg->max_body = atoi (value);
    else if (strcmp (name, "--rate-limit") == 0)
        cfg->rate_limit_rps = atof (value);
    else if (strcmp (name, "--rate-burst") == 0)
        cfg->rate_limit_burst = atof (value);
    else if (strcmp (name, "--poll-interval-ms") == 0)
        cfg->poll_interval_ms = atoll (value);
    else if (strcmp (name, "--plugins") == 0)
        cfg->plugin_dir = value;
    else if (strcmp (name, "--map-size") == 0)
        cfg->map_size = atoll (value);
    else if (strcmp (name, "--checkpoint-ms") == 0)
        cfg->checkpoint_ms = atoll (value);
    else if (strcmp (name, "--cert") == 0)
        cfg->cert = value;
    else if (strcmp (name, "--allow-clients") == 0)
        cfg->allow_clients = value;
    else if (strcmp (name, "--allow-workers") == 0)
        cfg->allow_workers = value;
    else if (strcmp (name, "--provider-timeout-ms") == 0)
        cfg->provider_timeout_ms = atoll (value);
    else if (strcmp (name, "--provider-origin") == 0) {
        if (cfg->provider_origin_count < BK_PROVIDER_ORIGINS)
            cfg->provider_origins[cfg->provider_origin_count] = value;
        cfg->provider_origin_count++;
    } else
        return false;
    return true;
}

const char *bk_config_check (const bk_config_t *cfg) {
    if (!cfg->data_dir || !*cfg->data_dir)
        return "--data DIR is required";
    if (cfg->heartbeat_ms < 10)
        return "--heartbeat-ms must be at least 10";
    if (cfg->backoff_base_ms < 1 || cfg->backoff_cap_ms < cfg->backoff_base_ms)
        return "--backoff-base-ms must be at least 1 and at most --backoff-cap-ms";
    if (cfg->max_body < 0 || cfg->poll_interval_ms < 1 || cfg->rate_limit_rps < 0)
        return "--max-response-body, --poll-interval-ms and --rate-limit must be positive";
    if (cfg->checkpoint_ms < 1 || cfg->checkpoint_ms > 3600000)
        return "--checkpoint-ms must be 1 to 3600000";
    if (cfg->provider_timeout_ms < 100 || cfg->provider_timeout_ms > 600000)
        return "--provider-timeout-ms must be 100 to 600000";
    if (cfg->provider_origin_count > BK_PROVIDER_ORIGINS)
        return "--provider-origin may be given at most 16 times";
    for (int i = 0; i < cfg->provider_origin_count; i++) {
        const char *eq = strchr (cfg->provider_origins[i], '=');
        if (!eq || eq == cfg->provider_origins[i] || !aq_plugin_origin_valid (eq + 1))
            return "--provider-origin must be NAME=http(s)://HOST[:PORT]";
    }
    static __thread char problem[512];
    bk_sockets_config_t sockets;
    char *clients = s_sockets_config (cfg, &sockets);
    const char *why = bk_sockets_check (&sockets, problem, sizeof problem);
    free (clients);
    return why;
}

//  --------------------------------------------------------------------------
//  Outbox: everything sent waits here until the turn's commit.

static bk_out_t *s_out_new (bk_broker_t *self, void *socket, const void *rid, size_t rid_size,
                            int cmd, json_t *body) {
    if (self->nout == self->capout) {
        self->capout = self->capout ? self->capout * 2 : 256;
        self->out = realloc (self->out, self->capout * sizeof *self->out);
        assert (self->out);
    }
    bk_out_t *out = &self->out[self->nout++];
    memset (out, 0, sizeof *out);
    out->socket = socket;
    if (rid_size > sizeof out->rid)
        rid_size = 0;
    if (rid_size)
        memcpy (out->rid, rid, rid_size);
    out->rid_size = rid_size;
    out->cmd = cmd;
    out->body = body;
    return out;
}

//  Queues a REPLY to rid on socket; takes ownership of body (may be NULL).
static void s_reply (bk_broker_t *self, void *socket, const void *rid, size_t rid_size,
                     int64_t corr, int status, json_t *body, const char *error) {
    json_t *reply = json_pack ("{s:I, s:i}", "corr", (json_int_t) corr, "status", status);
    if (body)
        json_object_set_new (reply, "body", body);
    if (error)
        json_object_set_new (reply, "error", json_string (error));
    s_out_new (self, socket, rid, rid_size, AQ_CMD_REPLY, reply);
}

static int s_send_out (bk_broker_t *self, bk_out_t *out) {
    int rc = 0;
    if (!out->socket) { //  an EVENT: topic then event, on every events socket
        size_t size;
        uint8_t *data = aq_proto_encode (out->cmd, out->body, &size);
        for (int i = 0; data && i < self->nevents; i++)
            if (zmq_send (self->events[i], out->topic, strlen (out->topic),
                          ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                zmq_send (self->events[i], data, size, ZMQ_DONTWAIT) < 0)
                rc = -1;
        free (data);
    } else
        rc =
            aq_proto_send (out->socket, out->rid, out->rid_size, out->cmd, out->body, ZMQ_DONTWAIT);
    return rc < 0 ? -1 : 0;
}

//  --------------------------------------------------------------------------
//  Task state changes

//  A team's events topic: "<team id>.<32 hex digits>", the digits keyed
//  with the broker's events key, so only a caller the broker told (AUTH,
//  with one of the team's keys) can subscribe to it. Returns topic.
static char *s_events_topic (bk_broker_t *self, const char *team, char topic[80]) {
    uint8_t mac[16];
    char hex[33];
    crypto_generichash (mac, sizeof mac, (const uint8_t *) team, strlen (team), self->events_key,
                        sizeof self->events_key);
    snprintf (topic, 80, "%s.%s", team, sodium_bin2hex (hex, sizeof hex, mac, sizeof mac));
    return topic;
}

static void s_notify (bk_broker_t *self, const json_t *task) {
    const char *id = json_string_value (json_object_get (task, "id"));
    const char *team = json_string_value (json_object_get (task, "teamId"));
    if (self->nevents && self->subscribers > 0) {
        json_t *event = json_pack ("{s:s, s:s, s:O, s:I}", "id", id, "teamId", team, "status",
                                   json_object_get (task, "status"), "at", (json_int_t) self->now);
        bk_out_t *out = s_out_new (self, NULL, NULL, 0, AQ_CMD_EVENT, event);
        s_events_topic (self, team, out->topic);
    }
    bk_waiter_t w;
    while (bk_waiters_take (self->waiters, id, &w)) {
        json_t *body = json_pack ("{s:o}", "task", bk_task_public (task));
        s_reply (self, w.socket, w.rid, w.rid_size, w.corr, AQ_OK, body, NULL);
    }
}

//  Persists a task whose status was old_status; announces a change.
static int s_save (bk_broker_t *self, json_t *task, int old_status) {
    int rc = bk_tasks_save (self->store, task, old_status);
    if (rc == 0 && bk_task_status (task) != old_status)
        s_notify (self, task);
    return rc;
}

//  BLAKE2b of a one-time token, in hex, into hex[65]; returns hex.
static char *s_hash_hex (const char *token, char hex[65]) {
    uint8_t hash[32];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) token, strlen (token), NULL, 0);
    return sodium_bin2hex (hex, 65, hash, sizeof hash);
}

static void s_set_status (json_t *task, int status) {
    json_object_set_new (task, "status", json_string (bk_status_name (status)));
}

//  Puts a task in the ready queue (status pending).
static int s_make_ready (bk_broker_t *self, json_t *task) {
    uint8_t id[16], team[16];
    if (bk_tasks_ids (task, id, team) != 0)
        return BK_ESTORE;
    s_set_status (task, BK_ST_PENDING);
    json_object_del (task, "_due");
    json_object_del (task, "nextAttemptAt");
    return bk_queue_push (self->queue,
                          (int) json_integer_value (json_object_get (task, "priority")), team,
                          bk_tasks_seq (task), id);
}

//  Puts a task in the delay queue until due (status delayed).
static int s_make_delayed (bk_broker_t *self, json_t *task, int64_t due) {
    uint8_t id[16];
    if (bk_tasks_ids (task, id, NULL) != 0)
        return BK_ESTORE;
    s_set_status (task, BK_ST_DELAYED);
    json_object_set_new (task, "_due", json_integer (due));
    return bk_broker_timer (self, due, BK_DELAY_TASK, id);
}

int bk_broker_timer (bk_broker_t *self, int64_t due, int kind, const uint8_t id[16]) {
    if (due < self->next_due)
        self->next_due = due;
    return bk_delay_push (self->store, due, kind, id);
}

static int s_make_ready (bk_broker_t *self, json_t *task);
static json_t *s_task_body (const json_t *task);
static void s_poll_later (bk_broker_t *self, json_t *task, int64_t ms);
static void s_provider_cancel (bk_broker_t *self, json_t *task);
static void s_clear_deadline (bk_broker_t *self, json_t *task);
static void s_poll_answer (bk_broker_t *self, json_t *task, int stage, const json_t *answer);
static void s_set_deadline (bk_broker_t *self, json_t *task);
static json_t *s_team (bk_broker_t *self, const uint8_t team[16]);

//  Puts a task in the ready queue whatever its status, for a request other
//  than its call (a poll, an onCompleteUrl delivery): s_dispatch decides
//  from the record what the JOB is, and drops entries that are stale.
static void s_enqueue (bk_broker_t *self, json_t *task) {
    uint8_t id[16], team[16];
    if (bk_tasks_ids (task, id, team) != 0)
        return;
    bk_queue_push (self->queue, (int) json_integer_value (json_object_get (task, "priority")), team,
                   bk_tasks_seq (task), id);
}

static void s_finish (bk_broker_t *self, json_t *task, int status, const char *error) {
    if (status != BK_ST_CANCELLED && json_is_string (json_object_get (task, "onCompleteUrl"))) {
        json_object_set_new (task, "_notify",
                             json_pack ("{s:i, s:b}", "attempt", 0, "inflight", 0));
        json_object_set_new (task, "onComplete",
                             json_pack ("{s:s, s:i}", "status", "pending", "attempts", 0));
        s_enqueue (self, task);
    }
    s_set_status (task, status);
    bk_task_set_time (task, "completedAt", self->now);
    json_object_del (task, "nextAttemptAt");
    json_object_del (task, "_due");
    if (error)
        json_object_set_new (task, "error", json_string (error));
    if (json_object_get (task, "runId"))
        bk_scheduler_step_done (self, task); //  a step of a scheduled run
    if (status == BK_ST_COMPLETED)
        self->stats.completed++;
    else if (status == BK_ST_FAILED)
        self->stats.failed++;
}

//  An attempt ended without a usable response: retry later or fail.
static int s_attempt_failed (bk_broker_t *self, json_t *task, const char *error, bool permanent,
                             int64_t retry_after_ms, bool requeue_now) {
    int64_t retries = json_integer_value (json_object_get (task, "retryCount"));
    int64_t max = json_integer_value (json_object_get (task, "maxRetries"));
    if (permanent || retries >= max) {
        s_finish (self, task, BK_ST_FAILED, error);
        return 0;
    }
    retries++;
    self->stats.retried++;
    json_object_set_new (task, "retryCount", json_integer (retries));
    json_object_set_new (task, "error", json_string (error));
    if (requeue_now)
        return s_make_ready (self, task);
    int64_t delay =
        bk_backoff_ms (json_string_value (json_object_get (task, "retryBackoff")), (int) retries,
                       self->cfg->backoff_base_ms, self->cfg->backoff_cap_ms, retry_after_ms);
    bk_task_set_time (task, "nextAttemptAt", self->now + delay);
    return s_make_delayed (self, task, self->now + delay);
}

static void s_record_attempt (bk_broker_t *self, const uint8_t id[16], json_t *task,
                              int64_t duration, const json_t *status_code, const char *error) {
    int attempt = (int) json_integer_value (json_object_get (task, "_attempts"));
    json_t *record =
        json_pack ("{s:i, s:O, s:I}", "attempt", attempt, "startedAt",
                   json_object_get (task, "_attemptAt"), "duration", (json_int_t) duration);
    if (status_code)
        json_object_set (record, "statusCode", (json_t *) status_code);
    if (error)
        json_object_set_new (record, "error", json_string (error));
    bk_tasks_add_attempt (self->store, id, attempt, record);
    json_decref (record);
    self->stats.latency_sum_ms += (uint64_t) (duration > 0 ? duration : 0);
    for (size_t i = 0; i < S_BUCKETS; i++)
        if (duration <= s_latency_ms[i]) {
            self->stats.latency[i]++;
            break;
        }
}

//  A lease ended without a result: the worker died, stalled or left.
static void s_notify_result (bk_broker_t *self, json_t *task, int attempt, const json_t *result);

static void s_lease_lost (bk_broker_t *self, const uint8_t id[16], int attempt) {
    json_t *task = bk_tasks_get (self->store, id);
    json_t *notify = json_object_get (task, "_notify");
    if (notify && json_is_true (json_object_get (notify, "inflight")) &&
        json_integer_value (json_object_get (notify, "attempt")) == attempt) {
        json_t *lost = json_pack ("{s:s}", "error", "worker lost");
        s_notify_result (self, task, attempt, lost);
        json_decref (lost);
    } else if (task && bk_task_status (task) == BK_ST_POLLING &&
               json_is_true (json_object_get (json_object_get (task, "_poll"), "inflight")) &&
               aq_field_int (json_object_get (task, "_poll"), "seq", -1) == attempt) {
        s_poll_later (self, task, 0); //  a lost poll is asked again
        s_save (self, task, BK_ST_POLLING);
    } else if (task && bk_task_status (task) == BK_ST_PROCESSING &&
               json_integer_value (json_object_get (task, "_attempts")) == attempt) {
        self->stats.lost++;
        int64_t started = json_integer_value (json_object_get (task, "_attemptAt"));
        s_record_attempt (self, id, task, self->now - started, NULL, "worker lost");
        s_attempt_failed (self, task, "worker lost", false, -1, true);
        s_save (self, task, BK_ST_PROCESSING);
    }
    json_decref (task);
}

//  The team record (borrowed, cached: only the broker writes teams).
static json_t *s_team (bk_broker_t *self, const uint8_t team[16]) {
    char text[AQ_UUID_TEXT];
    aq_uuid_format (team, text);
    json_t *record = json_object_get (self->teams, text);
    if (!record) {
        record = bk_keys_team_get (self->store, team);
        if (!record)
            return NULL;
        json_object_set_new (self->teams, text, record);
    }
    return record;
}

//  --------------------------------------------------------------------------
//  Client requests

void bk_broker_answer (bk_broker_t *self, bk_req_t *req, int status, json_t *body,
                       const char *error) {
    s_reply (self, req->socket, req->rid, req->rid_size, req->corr, status, body, error);
}

//  Checks the API key; answers and returns -1 when the caller may not go on.
static int s_authenticate (bk_broker_t *self, bk_req_t *req, bool write) {
    const char *key = aq_field_str (req->body, "key");
    bool read_only = false;
    if (!key || !*key) {
        bk_broker_answer (self, req, AQ_UNAUTH, NULL, "API key required");
        return -1;
    }
    if (bk_keys_check (self->store, self->keys, key, req->team, &read_only) != 0) {
        bk_broker_answer (self, req, AQ_UNAUTH, NULL, "Invalid or revoked API key");
        return -1;
    }
    if (write && read_only) {
        bk_broker_answer (self, req, AQ_FORBIDDEN, NULL, "Access denied");
        return -1;
    }
    json_t *limit = json_object_get (s_team (self, req->team), "rateLimit");
    double rps =
        limit ? json_number_value (json_object_get (limit, "rps")) : self->cfg->rate_limit_rps;
    double burst =
        limit ? json_number_value (json_object_get (limit, "burst")) : self->cfg->rate_limit_burst;
    int retry_after = 1;
    char team[AQ_UUID_TEXT];
    if (!bk_limits_take (self->limits, aq_uuid_format (req->team, team), rps, burst, self->mono,
                         &retry_after)) {
        json_t *reply = json_pack (
            "{s:I, s:i, s:s, s:i}", "corr", (json_int_t) req->corr, "status", AQ_TOO_MANY, "error",
            "Rate limit exceeded. Upgrade your plan for higher limits.", "retryAfter", retry_after);
        s_out_new (self, req->socket, req->rid, req->rid_size, AQ_CMD_REPLY, reply);
        return -1;
    }
    return 0;
}

static int s_admin (bk_broker_t *self, bk_req_t *req) {
    const char *token = aq_field_str (req->body, "admin");
    if (!token || strlen (token) != strlen (self->admin) ||
        sodium_memcmp (token, self->admin, strlen (self->admin)) != 0) {
        bk_broker_answer (self, req, AQ_UNAUTH, NULL,
                          token ? "Invalid admin token" : "Admin token required");
        return -1;
    }
    return 0;
}

json_t *bk_broker_own (bk_broker_t *self, bk_req_t *req, uint8_t id[16], bk_record_get_fn *get,
                       bk_record_ids_fn *ids) {
    json_t *record = NULL;
    uint8_t team[16];
    if (aq_uuid_parse (aq_field_str (req->body, "id"), id) == 0)
        record = get (self->store, id);
    if (record && (ids (record, id, team) != 0 || memcmp (team, req->team, 16) != 0)) {
        json_decref (record);
        record = NULL;
    }
    if (!record)
        bk_broker_answer (self, req, AQ_NOT_FOUND, NULL, "Task not found");
    return record;
}

static json_t *s_task_body (const json_t *task) {
    return json_pack ("{s:o}", "task", bk_task_public (task));
}

//  Saves a task changed by a request (rc: how the change went so far) and
//  answers with it, or with 503 when the store failed. Takes the task.
static void s_answer_saved (bk_broker_t *self, bk_req_t *req, json_t *task, int old_status,
                            int rc) {
    if (rc == 0)
        rc = s_save (self, task, old_status);
    if (rc == 0)
        bk_broker_answer (self, req, AQ_OK, s_task_body (task), NULL);
    else
        bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
    json_decref (task);
}

//  409 "Task cannot be <done> in status <status>". Takes the task.
static void s_answer_conflict (bk_broker_t *self, bk_req_t *req, json_t *task, const char *done) {
    char error[128];
    snprintf (error, sizeof error, "Task cannot be %s in status %s", done,
              bk_status_name (bk_task_status (task)));
    bk_broker_answer (self, req, AQ_CONFLICT, NULL, error);
    json_decref (task);
}

json_t *bk_broker_task_build (bk_broker_t *self, const uint8_t team[16], const json_t *request,
                              char *errbuf, size_t size) {
    const char *error;
    json_t *task = bk_task_from_request (request, self->now, &error, errbuf, size);
    if (task)
        error = bk_tokens_check_headers (self->store, team, json_object_get (task, "headers"),
                                         errbuf, size);
    const char *provider = aq_field_str (task, "provider");
    if (task && !error && provider && !aq_plugin_loader_provider (self->plugins, provider)) {
        char *names = aq_plugin_loader_providers (self->plugins);
        snprintf (errbuf, size, "Unknown provider: %.64s. Loaded providers: %s", provider,
                  names && *names ? names : "none");
        free (names);
        error = errbuf;
    }
    if (task && !error) {
        //  the public field order: id and teamId first
        uint8_t id[16];
        char id_text[AQ_UUID_TEXT], team_text[AQ_UUID_TEXT];
        aq_uuid_new (id);
        json_t *ordered = json_pack ("{s:s, s:s}", "id", aq_uuid_format (id, id_text), "teamId",
                                     aq_uuid_format (team, team_text));
        json_object_update_missing (ordered, task);
        json_decref (task);
        return ordered;
    }
    if (error != errbuf)
        snprintf (errbuf, size, "%s", error);
    json_decref (task);
    return NULL;
}

int bk_broker_task_insert (bk_broker_t *self, json_t *task) {
    json_object_set_new (task, "_seq", json_integer ((json_int_t) ++self->seq));
    json_object_set_new (task, "_attempts", json_integer (0));
    int rc;
    if (bk_task_status (task) == BK_ST_DELAYED)
        rc = s_make_delayed (self, task, json_integer_value (json_object_get (task, "delayUntil")));
    else
        rc = s_make_ready (self, task);
    if (rc == 0)
        rc = s_save (self, task, 0);
    if (rc == 0)
        self->stats.created++;
    return rc;
}

static void s_task_create (bk_broker_t *self, bk_req_t *req, int cmd) {
    const char *idem = aq_field_str (req->body, "idem");
    uint8_t idem_key[16 + 256];
    size_t idem_size = 0;
    if (idem && *idem) {
        if (strlen (idem) > 255) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                              "Idempotency-Key must be at most 255 characters");
            return;
        }
        memcpy (idem_key, req->team, 16);
        memcpy (idem_key + 16, idem, strlen (idem));
        idem_size = 16 + strlen (idem);
        bk_val_t val;
        if (bk_store_get (self->store, BK_DB_IDEM, idem_key, idem_size, &val) == 0 &&
            val.size == 24) {
            int64_t created;
            memcpy (&created, (const uint8_t *) val.data + 16, 8);
            json_t *task =
                created + S_IDEM_TTL > self->now ? bk_tasks_get (self->store, val.data) : NULL;
            if (task) {
                bk_broker_answer (self, req, AQ_OK, s_task_body (task), NULL);
                json_decref (task);
                return;
            }
        }
    }
    char errbuf[256];
    json_t *task = bk_broker_task_build (self, req->team, json_object_get (req->body, "task"),
                                         errbuf, sizeof errbuf);
    if (!task) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, errbuf);
        return;
    }
    int rc = bk_broker_task_insert (self, task);
    uint8_t id[16];
    bk_tasks_ids (task, id, NULL);
    if (rc == 0 && idem_size) {
        uint8_t val[24];
        memcpy (val, id, 16);
        memcpy (val + 16, &self->now, 8);
        rc = bk_store_put (self->store, BK_DB_IDEM, idem_key, idem_size, val, sizeof val);
    }
    if (rc == 0)
        bk_broker_answer (self, req, AQ_CREATED, s_task_body (task), NULL);
    else
        bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
    json_decref (task);
}

static void s_task_get (bk_broker_t *self, bk_req_t *req, int cmd) {
    uint8_t id[16];
    json_t *task = bk_broker_own (self, req, id, bk_tasks_get, bk_tasks_ids);
    if (!task)
        return;
    json_t *wait = json_object_get (req->body, "wait");
    int64_t seconds = json_is_integer (wait) ? json_integer_value (wait) : 0;
    if (seconds < 0 || seconds > S_MAX_WAIT_S) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "wait must be a number between 0 and 25");
    } else if (seconds > 0 && !bk_status_terminal (bk_task_status (task)) &&
               bk_waiters_add (self->waiters, req->socket, req->rid, req->rid_size, req->corr,
                               json_string_value (json_object_get (task, "id")),
                               self->mono + seconds * 1000)) {
        //  held: answered on the next status change or at the deadline
    } else
        bk_broker_answer (self, req, AQ_OK, s_task_body (task), NULL);
    json_decref (task);
}

//  A query value given as an integer or a decimal string; -1 if invalid.
int64_t bk_broker_query_int (const json_t *value, int64_t dflt) {
    if (!value || json_is_null (value))
        return dflt;
    if (json_is_integer (value))
        return json_integer_value (value);
    const char *text = json_string_value (value);
    if (!text || !*text || strlen (text) > 9)
        return -1;
    int64_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
    }
    return n;
}

static void s_task_list (bk_broker_t *self, bk_req_t *req, int cmd) {
    const char *status_name = aq_field_str (req->body, "status");
    int status = 0;
    if (status_name && !(status = bk_status_parse (status_name))) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "status must be one of: pending, delayed, processing, waiting, polling, "
                          "completed, failed, timeout, cancelled");
        return;
    }
    int64_t limit = bk_broker_query_int (json_object_get (req->body, "limit"), 50);
    if (limit < 1 || limit > 100) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                          "limit must be a number between 1 and 100");
        return;
    }
    int64_t offset = bk_broker_query_int (json_object_get (req->body, "offset"), 0);
    if (offset < 0) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "offset must be a non-negative number");
        return;
    }
    const char *order = aq_field_str (req->body, "sortOrder");
    if (order && strcmp (order, "asc") != 0 && strcmp (order, "desc") != 0) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "sortOrder must be one of: asc, desc");
        return;
    }
    uint64_t total;
    json_t *records = bk_tasks_list (self->store, req->team, status, (int) limit, (int) offset,
                                     order && strcmp (order, "asc") == 0, &total);
    bk_broker_answer_page (self, req, "tasks", records, bk_task_public, "hasMore", total, limit,
                           offset);
}

void bk_broker_answer_page (bk_broker_t *self, bk_req_t *req, const char *name, json_t *records,
                            bk_record_public_fn *public, const char *has_more, uint64_t total,
                            int64_t limit, int64_t offset) {
    json_t *shown = json_array ();
    size_t index;
    json_t *record;
    json_array_foreach (records, index, record) json_array_append_new (shown, public(record));
    json_decref (records);
    bool more = (uint64_t) offset + json_array_size (shown) < total;
    json_t *body = json_pack ("{s:o, s:{s:I, s:I, s:I, s:b}}", name, shown, "pagination", "total",
                              (json_int_t) total, "limit", (json_int_t) limit, "offset",
                              (json_int_t) offset, has_more, more);
    if (body && strcmp (has_more, "hasMore") != 0) //  every list has hasMore; has_more: deprecated
        json_object_set_new (json_object_get (body, "pagination"), "hasMore", json_boolean (more));
    bk_broker_answer (self, req, AQ_OK, body, NULL);
}

static void s_task_cancel (bk_broker_t *self, bk_req_t *req, int cmd) {
    uint8_t id[16], team[16];
    json_t *task = bk_broker_own (self, req, id, bk_tasks_get, bk_tasks_ids);
    if (!task)
        return;
    int status = bk_task_status (task);
    int rc = 0;
    bk_tasks_ids (task, id, team);
    if (status == BK_ST_PENDING)
        rc = bk_queue_remove (self->queue,
                              (int) json_integer_value (json_object_get (task, "priority")), team,
                              bk_tasks_seq (task));
    else if (status == BK_ST_DELAYED)
        rc = bk_delay_remove (self->store, json_integer_value (json_object_get (task, "_due")),
                              BK_DELAY_TASK, id);
    else if (status == BK_ST_WAITING || status == BK_ST_POLLING) {
        if (status == BK_ST_POLLING)
            s_provider_cancel (self, task);
        s_clear_deadline (self, task);
        json_object_del (task, "_signal");
    } else {
        s_answer_conflict (self, req, task, "cancelled");
        return;
    }
    s_finish (self, task, BK_ST_CANCELLED, NULL);
    s_answer_saved (self, req, task, status, rc);
}

static void s_task_retry (bk_broker_t *self, bk_req_t *req, int cmd) {
    uint8_t id[16];
    json_t *task = bk_broker_own (self, req, id, bk_tasks_get, bk_tasks_ids);
    if (!task)
        return;
    int status = bk_task_status (task);
    if (status != BK_ST_FAILED && status != BK_ST_TIMEOUT) {
        s_answer_conflict (self, req, task, "retried");
        return;
    }
    json_object_set_new (task, "retryCount", json_integer (0));
    json_object_del (task, "error");
    json_object_del (task, "result");
    json_object_del (task, "completedAt");
    json_object_del (task, "_notify");
    json_object_del (task, "onComplete");
    s_answer_saved (self, req, task, status, s_make_ready (self, task));
}

static void s_task_attempts (bk_broker_t *self, bk_req_t *req, int cmd) {
    uint8_t id[16];
    json_t *task = bk_broker_own (self, req, id, bk_tasks_get, bk_tasks_ids);
    if (task)
        bk_broker_answer (self, req, AQ_OK,
                          json_pack ("{s:o}", "attempts", bk_tasks_attempts (self->store, id)),
                          NULL);
    json_decref (task);
}

//  True when text is the admin token, compared in constant time (its length
//  is not secret: 64 hex digits when the broker made it).
static bool s_is_admin_token (bk_broker_t *self, const char *text) {
    size_t length = strlen (self->admin);
    return text && strlen (text) == length && sodium_memcmp (text, self->admin, length) == 0;
}

//  STATS: with the admin token (its `admin` field, or as the `key`, which
//  is how a gateway passes GET /metrics' bearer) the whole broker's
//  figures; with a team key only that team's: its tasks by status and the
//  tasks it created (the store's counters), nothing global.
static void s_stats (bk_broker_t *self, bk_req_t *req, int cmd) {
    if (aq_field_str (req->body, "admin")) {
        if (s_admin (self, req) != 0)
            return;
    } else if (!s_is_admin_token (self, aq_field_str (req->body, "key"))) {
        if (s_authenticate (self, req, false) != 0)
            return;
        json_t *tasks = json_object ();
        for (int st = 1; st < BK_ST_COUNT; st++)
            json_object_set_new (
                tasks, bk_status_name (st),
                json_integer ((json_int_t) bk_tasks_count (self->store, req->team, st)));
        json_int_t created = (json_int_t) bk_tasks_count (self->store, req->team, 0);
        bk_broker_answer (self, req, AQ_OK,
                          json_pack ("{s:s, s:o, s:{s:I}}", "scope", "team", "tasks", tasks,
                                     "counters", "created", created),
                          NULL);
        return;
    }
    json_t *tasks = json_object ();
    for (int st = 1; st < BK_ST_COUNT; st++)
        json_object_set_new (tasks, bk_status_name (st),
                             json_integer ((json_int_t) bk_tasks_count (self->store, NULL, st)));
    json_t *latency = json_object ();
    uint64_t cumulative = 0;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        cumulative += self->stats.latency[i];
        json_object_set_new (latency, s_latency_le[i], json_integer ((json_int_t) cumulative));
    }
    json_t *body = json_pack (
        "{s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:i, s:I, s:o}", "scope", "global",
        "tasks", tasks, "counters", "created", (json_int_t) self->stats.created, "dispatched",
        (json_int_t) self->stats.dispatched, "completed", (json_int_t) self->stats.completed,
        "failed", (json_int_t) self->stats.failed, "retried", (json_int_t) self->stats.retried,
        "malformed", (json_int_t) self->stats.malformed, "workerLost",
        (json_int_t) self->stats.lost, "workers", bk_leases_workers_alive (self->leases),
        "lmdbBytes", (json_int_t) bk_store_used_bytes (self->store), "attemptLatencyMs", latency);
    json_object_set_new (body, "attemptLatencySumMs",
                         json_integer ((json_int_t) self->stats.latency_sum_ms));
    json_t *counters = json_object_get (body, "counters");
    json_object_set_new (counters, "refusedConnections",
                         json_integer ((json_int_t) bk_sockets_refused (self->sockets)));
    json_object_set_new (counters, "refusedResults",
                         json_integer ((json_int_t) self->stats.refused_results));
    bk_broker_answer (self, req, AQ_OK, body, NULL);
}

//  Answers with {name: public record or array of them}; takes result.
static void s_answer_records (bk_broker_t *self, bk_req_t *req, int status, const char *name,
                              json_t *result) {
    json_t *shown;
    if (json_is_array (result)) {
        shown = json_array ();
        size_t index;
        json_t *item;
        json_array_foreach (result, index, item)
            json_array_append_new (shown, bk_task_public (item));
    } else
        shown = bk_task_public (result);
    json_decref (result);
    bk_broker_answer (self, req, status, json_pack ("{s:o}", name, shown), NULL);
}

static void s_admin_command (bk_broker_t *self, bk_req_t *req, int cmd) {
    const char *name = aq_field_str (req->body, "name");
    const char *team = aq_field_str (req->body, "team");
    json_t *result;
    switch (cmd) {
    case AQ_CMD_TEAM_CREATE:
        result = bk_keys_team_create (self->store, name, self->now);
        if (!result) {
            bk_broker_answer (self, req, name && *name ? AQ_CONFLICT : AQ_BAD_REQUEST, NULL,
                              name && *name ? "Team already exists" : "name is required");
            return;
        }
        json_object_del (result, "signingSecret");
        s_answer_records (self, req, AQ_CREATED, "team", result);
        break;
    case AQ_CMD_TEAM_LIST:
        s_answer_records (self, req, AQ_OK, "teams", bk_keys_team_list (self->store));
        break;
    case AQ_CMD_KEY_CREATE:
        if (!team || !*team) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "team is required");
            return;
        }
        result = bk_keys_create (self->store, team, aq_field_str (req->body, "scope"), self->now);
        if (!result) {
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, "scope must be one of: full, read");
            return;
        }
        s_answer_records (self, req, AQ_CREATED, "key", result);
        break;
    case AQ_CMD_KEY_LIST:
        s_answer_records (self, req, AQ_OK, "keys", bk_keys_list (self->store, team));
        break;
    case AQ_CMD_TEAM_SECRET:
    case AQ_CMD_TEAM_LIMIT: {
        json_t *record = bk_keys_team_find (self->store, team);
        if (!record) {
            bk_broker_answer (self, req, AQ_NOT_FOUND, NULL, "Team not found");
            return;
        }
        if (cmd == AQ_CMD_TEAM_SECRET && aq_field_bool (req->body, "rotate", false)) {
            char *whsec = bk_keys_new_secret ();
            json_object_set_new (record, "signingSecret", json_string (whsec));
            free (whsec);
        }
        if (cmd == AQ_CMD_TEAM_LIMIT) {
            json_t *rps = json_object_get (req->body, "rps");
            json_t *burst = json_object_get (req->body, "burst");
            if (!json_is_number (rps) || json_number_value (rps) < 0 ||
                (burst && (!json_is_number (burst) || json_number_value (burst) < 0))) {
                bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL,
                                  "rps must be a non-negative number");
                json_decref (record);
                return;
            }
            json_object_set_new (record, "rateLimit",
                                 json_pack ("{s:O, s:f}", "rps", rps, "burst",
                                            burst ? json_number_value (burst) : 0.0));
        }
        if (bk_keys_team_save (self->store, record) != 0) {
            bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
            json_decref (record);
            return;
        }
        json_object_set (self->teams, json_string_value (json_object_get (record, "id")), record);
        json_t *shown = json_deep_copy (record);
        if (cmd != AQ_CMD_TEAM_SECRET) //  the secret is shown by TEAM_SECRET alone
            json_object_del (shown, "signingSecret");
        json_decref (record);
        s_answer_records (self, req, AQ_OK, "team", shown);
        break;
    }
    case AQ_CMD_KEY_REVOKE:
        result =
            bk_keys_revoke (self->store, self->keys, aq_field_str (req->body, "id"), self->now);
        if (result)
            s_answer_records (self, req, AQ_OK, "key", result);
        else
            bk_broker_answer (self, req, AQ_NOT_FOUND, NULL, "Key not found");
        break;
    }
}

//  POST /v1/tasks/:id/signal: with the team's key, or with the one-time
//  signal token the waiting call carried (then "key" holds "sig_...").
static void s_task_signal (bk_broker_t *self, bk_req_t *req, int cmd) {
    const char *key = aq_field_str (req->body, "key");
    bool by_token = key && strncmp (key, "sig_", 4) == 0;
    if (!by_token && s_authenticate (self, req, true) != 0)
        return;
    uint8_t id[16];
    json_t *task = NULL;
    if (aq_uuid_parse (aq_field_str (req->body, "id"), id) == 0)
        task = bk_tasks_get (self->store, id);
    if (task && by_token) {
        char hash[65];
        const char *stored = json_string_value (json_object_get (task, "_signal"));
        s_hash_hex (key, hash);
        if (!stored || strlen (stored) != 64 || sodium_memcmp (stored, hash, 64) != 0) {
            bk_broker_answer (self, req, AQ_UNAUTH, NULL, "Invalid or revoked API key");
            json_decref (task);
            return;
        }
        bk_tasks_ids (task, id, req->team);
    } else if (task) {
        uint8_t team[16];
        bk_tasks_ids (task, id, team);
        if (memcmp (team, req->team, 16) != 0) {
            json_decref (task);
            task = NULL;
        }
    } else if (by_token) {
        bk_broker_answer (self, req, AQ_UNAUTH, NULL, "Invalid or revoked API key");
        return;
    }
    if (!task) {
        bk_broker_answer (self, req, AQ_NOT_FOUND, NULL, "Task not found");
        return;
    }
    json_t *signal = json_object_get (req->body, "signal");
    const char *outcome = aq_field_str (signal, "status");
    int status = bk_task_status (task);
    static const char *const fields[] = {"status", "result", NULL};
    const char *error = NULL;
    char errbuf[128];
    if (!json_is_object (signal))
        error = "Request body must be a JSON object";
    else
        error = bk_task_unknown_field (signal, fields, "", errbuf, sizeof errbuf);
    if (!error &&
        (!outcome || (strcmp (outcome, "completed") != 0 && strcmp (outcome, "failed") != 0)))
        error = "status must be one of: completed, failed";
    if (error) {
        bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, error);
        json_decref (task);
        return;
    }
    if (status != BK_ST_WAITING) {
        s_answer_conflict (self, req, task, "signalled");
        return;
    }
    int rc = bk_delay_remove (self->store, json_integer_value (json_object_get (task, "_deadline")),
                              BK_DELAY_TIMEOUT, id);
    json_object_del (task, "_signal"); //  one time only
    json_object_del (task, "_deadline");
    if (json_object_get (signal, "result"))
        json_object_set (task, "result", json_object_get (signal, "result"));
    bool completed = strcmp (outcome, "completed") == 0;
    s_finish (self, task, completed ? BK_ST_COMPLETED : BK_ST_FAILED,
              completed ? NULL : "failed by signal");
    s_answer_saved (self, req, task, status, rc);
}

static void s_tokens (bk_broker_t *self, bk_req_t *req, int cmd) {
    if (!self->vault) {
        bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, "Token vault unavailable");
        return;
    }
    json_t *result = NULL;
    if (cmd == AQ_CMD_TOKEN_CREATE) {
        const char *error;
        char errbuf[160];
        result = bk_tokens_create (self->store, self->vault, req->team,
                                   json_object_get (req->body, "token"), self->now, &error, errbuf,
                                   sizeof errbuf);
        if (result)
            s_answer_records (self, req, AQ_CREATED, "token", result);
        else if (error)
            bk_broker_answer (self, req, AQ_BAD_REQUEST, NULL, error);
        else
            bk_broker_answer (self, req, AQ_UNAVAILABLE, NULL, BK_REPLY_FAILED);
    } else if (cmd == AQ_CMD_TOKEN_LIST)
        s_answer_records (self, req, AQ_OK, "tokens", bk_tokens_list (self->store, req->team));
    else if ((result = bk_tokens_delete (self->store, req->team, aq_field_str (req->body, "id"))))
        s_answer_records (self, req, AQ_OK, "token", result);
    else
        bk_broker_answer (self, req, AQ_NOT_FOUND, NULL, "Token not found");
}

//  AUTH: the key's team and scope, and the team's events topic.
static void s_auth_reply (bk_broker_t *self, bk_req_t *req, int cmd) {
    char team[AQ_UUID_TEXT], topic[80];
    uint8_t raw[16];
    bool read_only = false;
    bk_keys_check (self->store, self->keys, aq_field_str (req->body, "key"), raw, &read_only);
    aq_uuid_format (req->team, team);
    bk_broker_answer (self, req, AQ_OK,
                      json_pack ("{s:s, s:s, s:s}", "teamId", team, "scope",
                                 read_only ? "read" : "full", "events",
                                 s_events_topic (self, team, topic)),
                      NULL);
}

//  Who may send a client command, checked before its handler runs.
typedef enum {
    S_OWN,   //  the handler checks (STATS: key or admin; TASK_SIGNAL: key or sig_ token)
    S_ADMIN, //  the admin token
    S_READ,  //  any API key of the team
    S_WRITE  //  a full-scope API key
} s_access_t;

typedef struct {
    int cmd;                                              //  AQ_CMD_*
    s_access_t access;                                    //  who may send it
    void (*handler) (bk_broker_t *, bk_req_t *, int cmd); //  answers it
} s_route_t;

static const s_route_t s_client_routes[] = {
    {AQ_CMD_TASK_CREATE, S_WRITE, s_task_create},
    {AQ_CMD_TASK_GET, S_READ, s_task_get},
    {AQ_CMD_TASK_LIST, S_READ, s_task_list},
    {AQ_CMD_TASK_CANCEL, S_WRITE, s_task_cancel},
    {AQ_CMD_TASK_RETRY, S_WRITE, s_task_retry},
    {AQ_CMD_TASK_ATTEMPTS, S_READ, s_task_attempts},
    {AQ_CMD_TASK_SIGNAL, S_OWN, s_task_signal},
    {AQ_CMD_TOKEN_CREATE, S_WRITE, s_tokens},
    {AQ_CMD_TOKEN_LIST, S_READ, s_tokens},
    {AQ_CMD_TOKEN_DELETE, S_WRITE, s_tokens},
    {AQ_CMD_AUTH, S_READ, s_auth_reply},
    {AQ_CMD_STATS, S_OWN, s_stats},
    {AQ_CMD_TEAM_CREATE, S_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_LIST, S_ADMIN, s_admin_command},
    {AQ_CMD_KEY_CREATE, S_ADMIN, s_admin_command},
    {AQ_CMD_KEY_LIST, S_ADMIN, s_admin_command},
    {AQ_CMD_KEY_REVOKE, S_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_SECRET, S_ADMIN, s_admin_command},
    {AQ_CMD_TEAM_LIMIT, S_ADMIN, s_admin_command},
    {AQ_CMD_SCHEDULE_CREATE, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_LIST, S_READ, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_GET, S_READ, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_UPDATE, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_RUN_NOW, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_SNOOZE, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_PAUSE, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_RESUME, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_CANCEL, S_WRITE, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_RUNS, S_READ, bk_scheduler_command},
    {AQ_CMD_SCHEDULE_PREVIEW, S_READ, bk_scheduler_command},
    {AQ_CMD_EVENT_FIRE, S_WRITE, bk_scheduler_command},
};

static void s_client_message (bk_broker_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                              int cmd, json_t *body) {
    bk_req_t req = {socket, rid, rid_size, aq_field_int (body, "corr", 0), body, {0}};
    if (cmd == AQ_CMD_HEARTBEAT) {
        s_out_new (self, socket, rid, rid_size, AQ_CMD_HEARTBEAT, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof s_client_routes / sizeof s_client_routes[0]; i++) {
        const s_route_t *route = &s_client_routes[i];
        if (route->cmd != cmd)
            continue;
        if (route->access == S_ADMIN ? s_admin (self, &req) != 0
            : route->access == S_OWN ? false
                                     : s_authenticate (self, &req, route->access == S_WRITE) != 0)
            return;
        route->handler (self, &req, cmd);
        return;
    }
    self->stats.malformed++;
    json_t *error = json_pack ("{s:i, s:s}", "code", AQ_BAD_REQUEST, "reason",
                               "unexpected command on the client socket");
    if (req.corr > 0) //  readable, just not ours: the client need not wait
        json_object_set_new (error, "corr", json_integer (req.corr));
    s_out_new (self, socket, rid, rid_size, AQ_CMD_ERROR, error);
}

//  --------------------------------------------------------------------------
//  Worker messages

//  The lease token a job of kind (NULL: the call) carried, as the task
//  keeps it: "_lease", or "lease" in "_poll" or "_notify". Borrowed.
static const char *s_lease_token (const json_t *task, const char *kind) {
    if (kind && strcmp (kind, "poll") == 0)
        return aq_field_str (json_object_get (task, "_poll"), "lease");
    if (kind && strcmp (kind, "notify") == 0)
        return aq_field_str (json_object_get (task, "_notify"), "lease");
    return aq_field_str (task, "_lease");
}

//  A new lease token into a JOB and into where the task keeps it (state:
//  the task for the call, "_poll" or "_notify").
static void s_lease_new (json_t *job, json_t *state, bool call) {
    uint8_t raw[16];
    char hex[33];
    aq_uuid_random (raw, sizeof raw);
    sodium_bin2hex (hex, sizeof hex, raw, sizeof raw);
    json_object_set_new (job, "lease", json_string (hex));
    json_object_set_new (state, call ? "_lease" : "lease", json_string (hex));
}

//  A RESULT is taken only from the worker holding the attempt's lease, and
//  only with the job's lease token: an outsider who learnt a task id cannot
//  settle it, and a worker that outlived a broker restart (its lease is
//  forgotten, or an orphan) still can. sender is the worker's index, -1 if
//  it never sent READY.
static void s_result (bk_broker_t *self, int sender, json_t *body) {
    uint8_t id[16];
    int attempt = (int) aq_field_int (body, "attempt", -1);
    if (aq_uuid_parse (aq_field_str (body, "id"), id) != 0) {
        self->stats.malformed++;
        return;
    }
    int holder = bk_leases_holder (self->leases, id, attempt);
    if (holder >= 0 && holder != sender) {
        self->stats.refused_results++; //  the lease is another worker's
        return;
    }
    const char *kind = aq_field_str (body, "kind");
    if (kind && strcmp (kind, "cancel") == 0) { //  fire and forget
        if (holder == sender)
            bk_leases_end (self->leases, id, attempt);
        return;
    }
    json_t *task = bk_tasks_get (self->store, id);
    const char *want = s_lease_token (task, kind), *given = aq_field_str (body, "lease");
    if (!want || !given || strlen (want) != strlen (given) ||
        sodium_memcmp (want, given, strlen (want)) != 0) {
        self->stats.refused_results += holder == sender; //  its own lease, a wrong token
        self->stats.dropped += holder != sender;         //  stale, or never ours
        json_decref (task);
        return;
    }
    bk_leases_end (self->leases, id, attempt);
    if (kind && strcmp (kind, "poll") == 0) {
        json_t *poll = json_object_get (task, "_poll");
        if (bk_task_status (task) == BK_ST_POLLING && poll &&
            json_is_true (json_object_get (poll, "inflight")) &&
            aq_field_int (poll, "seq", -1) == attempt) {
            json_object_set_new (poll, "inflight", json_false ());
            json_object_del (poll, "lease"); //  one answer per request
            int64_t code = aq_field_int (body, "statusCode", 0);
            int stage = (int) aq_field_int (poll, "stage", BK_POLL_STATUS);
            //  a transport error, or a 429 or 5xx while running: ask again later,
            //  after the Retry-After if one came (a finished job's result URL
            //  may answer an error: that is its result)
            if (aq_field_bool (body, "permanent", false)) { //  e.g. refused by the SSRF guard
                s_clear_deadline (self, task);
                s_finish (self, task, BK_ST_FAILED, aq_field_str (body, "error"));
            } else if (code == 0 || ((code >= 500 || code == 429) && stage == BK_POLL_STATUS)) {
                int64_t after = aq_field_int (body, "retryAfter", -1);
                s_poll_later (self, task,
                              after >= 0
                                  ? (after < S_POLL_RETRY_MAX_S ? after : S_POLL_RETRY_MAX_S) * 1000
                                  : aq_field_int (poll, "interval", self->cfg->poll_interval_ms));
            } else
                s_poll_answer (self, task, stage, body);
            s_save (self, task, BK_ST_POLLING);
        } else
            self->stats.dropped++;
        json_decref (task);
        return;
    }
    if (kind && strcmp (kind, "notify") == 0) {
        json_t *notify = json_object_get (task, "_notify");
        if (notify && json_is_true (json_object_get (notify, "inflight")) &&
            json_integer_value (json_object_get (notify, "attempt")) == attempt)
            s_notify_result (self, task, attempt, body);
        else
            self->stats.dropped++;
        json_decref (task);
        return;
    }
    if (!task || bk_task_status (task) != BK_ST_PROCESSING ||
        json_integer_value (json_object_get (task, "_attempts")) != attempt) {
        self->stats.dropped++; //  a stale result: the attempt was already settled
        json_decref (task);
        return;
    }
    json_object_del (task, "_lease"); //  one result per attempt
    if (aq_field_bool (body, "refused", false)) {
        //  the worker never started the call (full, or stopping): not an attempt
        json_object_set_new (task, "_attempts", json_integer (attempt - 1));
        s_make_ready (self, task);
        s_save (self, task, BK_ST_PROCESSING);
        json_decref (task);
        return;
    }
    int64_t duration = aq_field_int (body, "duration", 0);
    json_t *code = json_object_get (body, "statusCode");
    const char *error = aq_field_str (body, "error");
    s_record_attempt (self, id, task, duration, json_is_integer (code) ? code : NULL, error);
    if (json_is_integer (code)) {
        json_t *result = json_pack (
            "{s:O, s:O, s:I}", "statusCode", code, "headers",
            json_object_get (body, "headers") ? json_object_get (body, "headers") : json_object (),
            "duration", (json_int_t) duration);
        if (json_is_string (json_object_get (body, "body")))
            json_object_set (result, "body", json_object_get (body, "body"));
        if (aq_field_bool (body, "bodyTruncated", false))
            json_object_set_new (result, "bodyTruncated", json_true ());
        json_object_set_new (task, "result", result);
    }
    const char *wait = aq_field_str (json_object_get (body, "headers"), "asyncqueue-wait");
    bool polls = json_object_get (task, "provider") || json_object_get (task, "pollConfig");
    if (polls && json_is_integer (code) && json_integer_value (code) < 500) {
        //  a job API: a 2xx starts polling; any other answer means no job
        json_object_del (task, "error");
        if (json_integer_value (code) >= 200 && json_integer_value (code) < 300)
            s_poll_answer (self, task, BK_POLL_INITIAL, body);
        else {
            char text[32];
            snprintf (text, sizeof text, "HTTP %d", (int) json_integer_value (code));
            s_finish (self, task, BK_ST_FAILED, text);
        }
    } else if (json_is_integer (code) && json_integer_value (code) == 202 && wait &&
               strcasecmp (wait, "true") == 0) {
        //  the target will signal the outcome; it has maxWaitTime to do so
        json_object_del (task, "error");
        s_set_status (task, BK_ST_WAITING);
        uint8_t raw[16];
        bk_tasks_ids (task, raw, NULL);
        int64_t due = self->now + json_integer_value (json_object_get (task, "maxWaitTime")) * 1000;
        json_object_set_new (task, "_deadline", json_integer (due));
        bk_broker_timer (self, due, BK_DELAY_TIMEOUT, raw);
    } else if (json_is_integer (code) && json_integer_value (code) < 500) {
        json_object_del (task, "error");
        s_finish (self, task, BK_ST_COMPLETED, NULL);
    } else {
        char text[64];
        if (!error) {
            snprintf (text, sizeof text, "HTTP %d", (int) json_integer_value (code));
            error = text;
        }
        int64_t retry_after = aq_field_int (body, "retryAfter", -1);
        s_attempt_failed (self, task, error, aq_field_bool (body, "permanent", false),
                          retry_after >= 0 ? retry_after * 1000 : -1, false);
    }
    s_save (self, task, BK_ST_PROCESSING);
    json_decref (task);
}

static void s_worker_message (bk_broker_t *self, void *socket, const uint8_t *rid, size_t rid_size,
                              int cmd, json_t *body) {
    int index = bk_leases_worker (self->leases, socket, rid, rid_size, cmd == AQ_CMD_READY);
    bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
    if (worker)
        worker->last_seen = self->mono;
    switch (cmd) {
    case AQ_CMD_READY: {
        int64_t credit = aq_field_int (body, "credit", 0);
        if (worker) {
            worker->credit = credit < 0 ? 0 : credit > 100000 ? 100000 : (int) credit;
            snprintf (worker->name, sizeof worker->name, "%s",
                      aq_field_str (body, "name") ? aq_field_str (body, "name") : "worker");
            aq_log (AQ_LOG_INFO, "broker", "worker '%s' ready with %d slots", worker->name,
                    worker->credit);
        }
        return;
    }
    case AQ_CMD_RESULT:
        s_result (self, index, body);
        break;
    case AQ_CMD_HEARTBEAT:
        break;
    case AQ_CMD_BYE:
        if (worker) {
            aq_log (AQ_LOG_INFO, "broker", "worker '%s' left", worker->name);
            bk_leases_worker_remove (self->leases, index);
        }
        return;
    default:
        self->stats.malformed++;
        s_out_new (self, socket, rid, rid_size, AQ_CMD_ERROR,
                   json_pack ("{s:i, s:s}", "code", AQ_BAD_REQUEST, "reason",
                              "unexpected command on the worker socket"));
        return;
    }
    if (!worker) //  a result or heartbeat from before our restart: ask it in
        s_out_new (self, socket, rid, rid_size, AQ_CMD_ERROR,
                   json_pack ("{s:i, s:s}", "code", 410, "reason", "unknown worker: send READY"));
}

//  Reads one whole message (all frames) from a ROUTER and handles it,
//  adding its size to *bytes. Returns false when nothing was waiting.
static bool s_receive (bk_broker_t *self, void *socket, bool from_workers, size_t *bytes) {
    zmq_msg_t rid, frame;
    zmq_msg_init (&rid);
    if (zmq_msg_recv (&rid, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&rid);
        return false;
    }
    zmq_msg_init (&frame);
    int parts = 1;
    bool ok = zmq_msg_more (&rid) && zmq_msg_recv (&frame, socket, 0) >= 0;
    if (ok)
        parts++;
    bool more = ok && zmq_msg_more (&frame);
    while (more) { //  extra frames: drain and refuse
        zmq_msg_t extra;
        zmq_msg_init (&extra);
        more = zmq_msg_recv (&extra, socket, 0) >= 0 && zmq_msg_more (&extra);
        zmq_msg_close (&extra);
        parts++;
    }
    int cmd = 0;
    json_t *body = NULL;
    int rc = ok && parts == 2
                 ? aq_proto_decode (zmq_msg_data (&frame), zmq_msg_size (&frame), &cmd, &body)
                 : AQ_EPROTO_MALFORMED;
    const uint8_t *id = zmq_msg_data (&rid);
    size_t id_size = zmq_msg_size (&rid);
    *bytes += zmq_msg_size (&frame);
    if (rc != 0) {
        self->stats.malformed++;
        if (self->cfg->verbose)
            aq_log (AQ_LOG_DEBUG, "broker", "dropped a malformed message: %s",
                    aq_proto_strerror (rc));
        json_t *error =
            json_pack ("{s:i, s:s}", "code", AQ_BAD_REQUEST, "reason", aq_proto_strerror (rc));
        s_out_new (self, socket, id, id_size, AQ_CMD_ERROR, error);
    } else if (from_workers)
        s_worker_message (self, socket, id, id_size, cmd, body);
    else
        s_client_message (self, socket, id, id_size, cmd, body);
    json_decref (body);
    zmq_msg_close (&frame);
    zmq_msg_close (&rid);
    return true;
}

//  --------------------------------------------------------------------------
//  Timers and dispatch

static void s_promote_due (bk_broker_t *self) {
    int64_t due;
    int kind;
    uint8_t id[16];
    //  A run writes a few records (schedule, run, step task): fewer per turn,
    //  so the transaction stays inside the store's headroom.
    for (int n = 0, runs = 0; n < 10 * S_BATCH && runs < S_BATCH; n++) {
        if (bk_delay_pop (self->store, self->now, &due, &kind, id) != 0)
            break;
        if (kind == BK_DELAY_SCHEDULE || kind == BK_DELAY_RUN) {
            bk_scheduler_due (self, kind, id, due);
            runs++;
            continue;
        }
        json_t *task = bk_tasks_get (self->store, id);
        int status = bk_task_status (task);
        if (kind == BK_DELAY_TASK && status == BK_ST_DELAYED &&
            json_integer_value (json_object_get (task, "_due")) == due) {
            s_make_ready (self, task);
            s_save (self, task, BK_ST_DELAYED);
        } else if (kind == BK_DELAY_NOTIFY && json_object_get (task, "_notify") &&
                   json_integer_value (
                       json_object_get (json_object_get (task, "_notify"), "due")) == due) {
            json_object_del (json_object_get (task, "_notify"), "due");
            json_object_set_new (json_object_get (task, "_notify"), "inflight", json_false ());
            s_enqueue (self, task);
            s_save (self, task, status);
        } else if (kind == BK_DELAY_POLL && status == BK_ST_POLLING &&
                   aq_field_int (json_object_get (task, "_poll"), "due", -1) == due) {
            json_object_del (json_object_get (task, "_poll"), "due");
            json_object_set_new (json_object_get (task, "_poll"), "inflight", json_false ());
            s_enqueue (self, task); //  into the ready queue: takes a worker slot
            s_save (self, task, status);
        } else if (kind == BK_DELAY_TIMEOUT &&
                   (status == BK_ST_WAITING || status == BK_ST_POLLING) &&
                   json_integer_value (json_object_get (task, "_deadline")) == due) {
            if (status == BK_ST_POLLING)
                s_provider_cancel (self, task);
            char error[96];
            snprintf (error, sizeof error, "Task exceeded maxWaitTime of %llds",
                      (long long) json_integer_value (json_object_get (task, "maxWaitTime")));
            json_object_del (task, "_signal");
            json_object_del (task, "_deadline");
            s_finish (self, task, BK_ST_TIMEOUT, error);
            s_save (self, task, status);
        }
        json_decref (task);
    }
    self->next_due = INT64_MAX;
    if (bk_delay_next (self->store, &due) == 0)
        self->next_due = due;
}

static void s_expire (bk_broker_t *self) {
    int64_t silence = (int64_t) self->cfg->heartbeat_ms * self->cfg->heartbeat_liveness;
    for (int i = 0; i < bk_leases_worker_count (self->leases); i++) {
        bk_worker_t *w = bk_leases_worker_at (self->leases, i);
        if (w && w->last_seen + silence < self->mono) {
            aq_log (AQ_LOG_WARN, "broker", "worker '%s' lost: silent for %lld ms", w->name,
                    (long long) (self->mono - w->last_seen));
            bk_leases_worker_remove (self->leases, i);
        }
    }
    uint8_t id[16];
    int attempt;
    while (bk_leases_expired (self->leases, self->mono, id, &attempt))
        s_lease_lost (self, id, attempt);
    size_t count;
    bk_waiter_t *expired = bk_waiters_expire (self->waiters, self->mono, &count);
    for (size_t i = 0; i < count; i++) {
        bk_waiter_t *w = &expired[i];
        uint8_t raw[16];
        json_t *task = aq_uuid_parse (w->id, raw) == 0 ? bk_tasks_get (self->store, raw) : NULL;
        if (task)
            s_reply (self, w->socket, w->rid, w->rid_size, w->corr, AQ_OK, s_task_body (task),
                     NULL);
        else
            s_reply (self, w->socket, w->rid, w->rid_size, w->corr, AQ_NOT_FOUND, NULL,
                     "Task not found");
        json_decref (task);
    }
    free (expired);
}

//  The task's headers with token ids replaced by their values; with a
//  provider, only those its status, result and cancel requests carry.
//  Returns NULL and sets *error when a token is gone.
static json_t *s_resolved_headers (bk_broker_t *self, json_t *task,
                                   const aq_plugin_provider_t *provider, char *error,
                                   size_t error_size) {
    uint8_t team[16], id[16];
    json_t *given = json_object_get (task, "headers");
    json_t *headers = json_is_object (given) ? json_deep_copy (given) : json_object ();
    bk_tasks_ids (task, id, team);
    const char *name;
    json_t *value;
    void *at;
    json_object_foreach_safe (headers, at, name, value) {
        if (provider && !aq_plugin_provider_sends_header (provider, name)) {
            json_object_del (headers, name);
            continue;
        }
        const char *text = json_string_value (value);
        if (!bk_tokens_is_id (text))
            continue;
        char *secret = NULL;
        size_t size = 0;
        if (bk_tokens_open (self->store, self->vault, team, text, &secret, &size) != 0) {
            snprintf (error, error_size, "Token %s not found", text);
            json_decref (headers);
            return NULL;
        }
        json_object_set_new (headers, name, json_stringn (secret, size));
        aq_plugin_secret_free (&secret, size);
    }
    return headers;
}

//  Adds the Standard Webhooks headers (webhook-id is the task id, the same
//  on every attempt, so a target can de-duplicate) for body to headers.
static void s_sign_headers (bk_broker_t *self, json_t *task, json_t *headers, const char *body) {
    uint8_t team[16], id[16];
    bk_tasks_ids (task, id, team);
    const char *task_id = json_string_value (json_object_get (task, "id"));
    const char *whsec = json_string_value (json_object_get (s_team (self, team), "signingSecret"));
    char signature[BK_SIGNING_SIZE], stamp[24];
    int64_t seconds = self->now / 1000;
    if (whsec &&
        bk_signing_sign (whsec, task_id, seconds, body, body ? strlen (body) : 0, signature) == 0) {
        snprintf (stamp, sizeof stamp, "%lld", (long long) seconds);
        json_object_set_new (headers, "webhook-id", json_string (task_id));
        json_object_set_new (headers, "webhook-timestamp", json_string (stamp));
        json_object_set_new (headers, "webhook-signature", json_string (signature));
    }
}

//  The headers of a task's call: its headers with token ids resolved, the
//  Standard Webhooks headers and the one-time AsyncQueue-Signal-Token a
//  waiting target signals with (its hash goes in the task). Only the call
//  carries the token: polls and cancels never do (s_poll_headers). Returns
//  NULL and sets *error when a token is gone.
static json_t *s_job_headers (bk_broker_t *self, json_t *task, const char *body, char *error,
                              size_t error_size) {
    json_t *headers = s_resolved_headers (self, task, NULL, error, error_size);
    if (!headers)
        return NULL;
    s_sign_headers (self, task, headers, body);
    uint8_t raw[16];
    char token[4 + 33] = "sig_", hash[65];
    aq_uuid_random (raw, sizeof raw);
    sodium_bin2hex (token + 4, sizeof token - 4, raw, sizeof raw);
    json_object_set_new (headers, "AsyncQueue-Signal-Token", json_string (token));
    json_object_set_new (task, "_signal", json_string (s_hash_hex (token, hash)));
    return headers;
}

//  The headers of a status, result or cancel request: for a provider task
//  only those its plugin asks for (its auth header), for a pollConfig task
//  its headers and the signature headers (SPEC 5: polls reuse them); token
//  ids resolved, never the signal token. NULL with *error as s_job_headers.
static json_t *s_poll_headers (bk_broker_t *self, json_t *task,
                               const aq_plugin_provider_t *provider, char *error,
                               size_t error_size) {
    json_t *headers = s_resolved_headers (self, task, provider, error, error_size);
    if (headers && !provider)
        s_sign_headers (self, task, headers, NULL);
    return headers;
}

//  Removes a waiting or polling task's maxWaitTime timer.
static void s_clear_deadline (bk_broker_t *self, json_t *task) {
    uint8_t id[16];
    json_t *deadline = json_object_get (task, "_deadline");
    if (deadline && bk_tasks_ids (task, id, NULL) == 0)
        bk_delay_remove (self->store, json_integer_value (deadline), BK_DELAY_TIMEOUT, id);
    json_object_del (task, "_deadline");
}

static void s_set_deadline (bk_broker_t *self, json_t *task) {
    uint8_t id[16];
    bk_tasks_ids (task, id, NULL);
    int64_t due = self->now + json_integer_value (json_object_get (task, "maxWaitTime")) * 1000;
    json_object_set_new (task, "_deadline", json_integer (due));
    bk_broker_timer (self, due, BK_DELAY_TIMEOUT, id);
}

//  Schedules the next status request of a polling task after ms.
static void s_poll_later (bk_broker_t *self, json_t *task, int64_t ms) {
    uint8_t id[16];
    bk_tasks_ids (task, id, NULL);
    json_t *poll = json_object_get (task, "_poll");
    int64_t due = self->now + ms;
    json_object_set_new (poll, "due", json_integer (due));
    json_object_set_new (poll, "inflight", json_false ());
    bk_broker_timer (self, due, BK_DELAY_POLL, id);
}

static json_t *s_result_of (const json_t *answer) {
    json_t *headers = json_object_get (answer, "headers");
    json_t *result =
        json_pack ("{s:O, s:o, s:I}", "statusCode", json_object_get (answer, "statusCode"),
                   "headers", headers ? json_incref (headers) : json_object (), "duration",
                   (json_int_t) aq_field_int (answer, "duration", 0));
    if (json_is_string (json_object_get (answer, "body")))
        json_object_set (result, "body", json_object_get (answer, "body"));
    if (aq_field_bool (answer, "bodyTruncated", false))
        json_object_set_new (result, "bodyTruncated", json_true ());
    return result;
}

//  The largest JOB frame the broker sends: the worker's ZMQ_MAXMSGSIZE
//  (AQ_PROTO_MAX_MSG) less room for the transport's own framing (CURVE).
#define S_JOB_MAX (AQ_PROTO_MAX_MSG - 1024)

//  Sends a JOB to worker. A frame over S_JOB_MAX is not sent (the worker's
//  socket would drop the connection, the worker reconnect and get it again):
//  returns 1 with the reason in error. Else 0 when sent, -1 (errno) when not.
static int s_send_job (bk_broker_t *self, bk_worker_t *worker, const json_t *job, char *error,
                       size_t error_size) {
    size_t size;
    uint8_t *data = aq_proto_encode (AQ_CMD_JOB, job, &size);
    if (!data) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    if (size > S_JOB_MAX) {
        snprintf (error, error_size, "job too large to send: %zu bytes (limit %d bytes)", size,
                  S_JOB_MAX);
        rc = 1;
    } else if (zmq_send (worker->socket, worker->rid, worker->rid_size,
                         ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
               zmq_send (worker->socket, data, size, ZMQ_DONTWAIT) < 0)
        rc = -1; //  after a routed first frame the second cannot block (atomic)
    free (data);
    return rc;
}

//  Fire and forget: asks the provider to cancel the job (fal cancel_url,
//  Replicate urls.cancel), on a worker slot if one is free now. An op the
//  task was waiting for is dropped.
static void s_provider_cancel (bk_broker_t *self, json_t *task) {
    json_t *poll = json_object_get (task, "_poll");
    json_object_del (poll, "op");
    const char *url = aq_field_str (poll, "cancelUrl");
    const char *name = aq_field_str (task, "provider");
    const aq_plugin_provider_t *provider =
        name ? aq_plugin_loader_provider (self->plugins, name) : NULL;
    int index = url && provider ? bk_leases_next_worker (self->leases) : -1;
    if (!url || !provider)
        return;
    char *refused = bk_poll_provider_url_error (provider, task, "cancelUrl");
    if (refused) {
        aq_log (AQ_LOG_WARN, "broker", "not cancelling task '%s' at its provider: %s",
                aq_field_str (task, "id"), refused);
        free (refused);
        return;
    }
    if (index < 0) {
        aq_log (AQ_LOG_WARN, "broker", "no free worker to cancel task '%s' at its provider",
                aq_field_str (task, "id"));
        return;
    }
    char error[128];
    json_t *headers = s_poll_headers (self, task, provider, error, sizeof error);
    if (!headers)
        return;
    const char *method = aq_field_str (poll, "cancelMethod");
    json_t *job =
        json_pack ("{s:O, s:i, s:s, s:s, s:s, s:o, s:i, s:i}", "id", json_object_get (task, "id"),
                   "attempt", 0, "kind", "cancel", "url", url, "method", method ? method : "POST",
                   "headers", headers, "timeout", 30, "maxBody", 1024);
    bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
    uint8_t id[16];
    bk_tasks_ids (task, id, NULL);
    int sent = s_send_job (self, worker, job, error, sizeof error);
    if (sent == 0)
        bk_leases_add (self->leases, index, id, 0, self->mono + 40000);
    else if (sent > 0)
        aq_log (AQ_LOG_WARN, "broker", "cannot cancel task '%s' at its provider: %s",
                aq_field_str (task, "id"), error);
    json_decref (job);
}

//  What follows a polling task's answer once it is read (state, next_ms and
//  error from poll.c): poll again, fetch the result, or finish with answer
//  as the result.
static void s_poll_next (bk_broker_t *self, json_t *task, int stage, const json_t *answer,
                         bk_poll_state_t state, int64_t next_ms, const char *error) {
    json_t *poll = json_object_get (task, "_poll");
    if (stage == BK_POLL_INITIAL && (state == BK_POLL_RUNNING || state == BK_POLL_FETCH) &&
        bk_task_status (task) != BK_ST_POLLING) {
        s_set_status (task, BK_ST_POLLING);
        s_set_deadline (self, task);
    }
    if (state == BK_POLL_RUNNING) {
        json_object_set_new (poll, "stage", json_integer (BK_POLL_STATUS));
        s_poll_later (self, task, next_ms);
    } else if (state == BK_POLL_FETCH) {
        json_object_set_new (poll, "stage", json_integer (BK_POLL_RESULT));
        s_poll_later (self, task, 0);
    } else {
        s_clear_deadline (self, task);
        json_object_set_new (task, "result", s_result_of (answer));
        s_finish (self, task, state == BK_POLL_DONE ? BK_ST_COMPLETED : BK_ST_FAILED, error);
        if (state == BK_POLL_DONE)
            json_object_del (task, "error");
    }
}

//  Sends the op a provider task keeps to its provider host.
static void s_provider_submit (bk_broker_t *self, const json_t *task) {
    json_t *request = bk_poll_provider_request (task);
    const char *name = aq_field_str (task, "provider");
    if (!request || !name) {
        json_decref (request);
        return;
    }
    const aq_plugin_provider_t *provider = aq_plugin_loader_provider (self->plugins, name);
    char key[AQ_UUID_TEXT + 24];
    snprintf (
        key, sizeof key, "%s/%lld", aq_field_str (task, "id"),
        (long long) aq_field_int (json_object_get (json_object_get (task, "_poll"), "op"), "n", 0));
    bk_providers_submit (self->providers, name,
                         provider ? aq_plugin_provider_path (provider) : NULL, key, &request);
}

//  A polling task's answer (the call's, a status request's or the result
//  request's). A pollConfig is read here and now; a provider's answer goes
//  to its provider host, and s_provider_done goes on in a later turn (the
//  task is polling meanwhile, its maxWaitTime running).
static void s_poll_answer (bk_broker_t *self, json_t *task, int stage, const json_t *answer) {
    if (json_object_get (task, "provider")) {
        if (stage == BK_POLL_INITIAL) {
            s_set_status (task, BK_ST_POLLING);
            s_set_deadline (self, task);
        }
        bk_poll_provider_start (task, stage, answer);
        s_provider_submit (self, task);
        return;
    }
    int64_t next_ms = 0;
    char *error = NULL;
    bk_poll_state_t state =
        bk_poll_step (task, stage, answer, self->cfg->poll_interval_ms, &next_ms, &error);
    s_poll_next (self, task, stage, answer, state, next_ms, error);
    free (error);
}

//  A provider host's reply (or failure) for the op named key ("<task
//  id>/<op number>"): applied if the task still waits for that op.
static void s_provider_done (bk_broker_t *self, const char *key, const json_t *reply,
                             const char *failure) {
    char text[AQ_UUID_TEXT + 1];
    uint8_t id[16];
    snprintf (text, sizeof text, "%.*s", (int) strcspn (key, "/"), key);
    const char *slash = strchr (key, '/');
    json_t *task = aq_uuid_parse (text, id) == 0 ? bk_tasks_get (self->store, id) : NULL;
    json_t *poll = json_object_get (task, "_poll");
    json_t *op = json_object_get (poll, "op");
    if (!task || bk_task_status (task) != BK_ST_POLLING || !op || !slash ||
        aq_field_int (op, "n", -1) != atoll (slash + 1)) {
        self->stats.dropped++; //  cancelled, timed out, or asked again after a restart
        json_decref (task);
        return;
    }
    int stage = (int) aq_field_int (op, "stage", BK_POLL_STATUS);
    json_t *answer = json_incref (json_object_get (op, "answer"));
    const char *name = aq_field_str (task, "provider");
    const aq_plugin_provider_t *provider =
        name ? aq_plugin_loader_provider (self->plugins, name) : NULL;
    int64_t next_ms = 0;
    char *error = NULL;
    bk_poll_state_t state = BK_POLL_FAILED;
    if (failure || !provider || !reply) {
        json_object_del (poll, "op");
        error = strdup (failure ? failure : "provider plugin is no longer loaded");
    } else
        state = bk_poll_provider_reply (provider, task, reply, self->cfg->poll_interval_ms,
                                        &next_ms, &error);
    if (state == BK_POLL_FAILED && error && strstr (error, "outside its hosts"))
        aq_log (AQ_LOG_WARN, "broker", "task '%s': %s", text, error);
    s_poll_next (self, task, stage, answer, state, next_ms, error);
    free (error);
    json_decref (answer);
    s_save (self, task, BK_ST_POLLING);
    json_decref (task);
}

//  Runs the provider hosts for this turn: sends ops, applies replies.
static void s_providers_turn (bk_broker_t *self) {
    bk_providers_work (self->providers, self->mono);
    char *key, *error;
    json_t *reply;
    while (bk_providers_take (self->providers, &key, &reply, &error)) {
        s_provider_done (self, key, reply, error);
        free (key);
        free (error);
        json_decref (reply);
    }
}

//  At start: every op a provider task was waiting for goes to its host
//  again (the broker stopped before the reply was applied).
static int s_provider_resend (void *arg, const uint8_t id[16]) {
    bk_broker_t *self = arg;
    json_t *task = bk_tasks_get (self->store, id);
    if (json_object_get (json_object_get (task, "_poll"), "op"))
        s_provider_submit (self, task);
    json_decref (task);
    return 0;
}

//  A request in flight for a poll or a delivery is also timed in the delay
//  queue, which survives a broker restart where leases do not: if its answer
//  has not come by then (state->due still matches), it is asked again.
static void s_watchdog (bk_broker_t *self, json_t *task, json_t *state, int kind, int64_t ms) {
    uint8_t id[16];
    bk_tasks_ids (task, id, NULL);
    int64_t due = self->now + ms;
    json_object_set_new (state, "due", json_integer (due));
    bk_broker_timer (self, due, kind, id);
}

//  The JOB of a polling task's next request: a GET of the status URL (or
//  the result URL) with the headers s_poll_headers gives. NULL if it
//  cannot be made; *error then says why, or stays "" (a token is gone).
static json_t *s_poll_job (bk_broker_t *self, json_t *task, int seq, char *error,
                           size_t error_size) {
    json_t *poll = json_object_get (task, "_poll");
    bool result = aq_field_int (poll, "stage", BK_POLL_STATUS) == BK_POLL_RESULT;
    const char *url = aq_field_str (poll, result ? "resultUrl" : "statusUrl");
    const char *name = aq_field_str (task, "provider");
    const aq_plugin_provider_t *provider =
        name ? aq_plugin_loader_provider (self->plugins, name) : NULL;
    char *refused =
        provider ? bk_poll_provider_url_error (provider, task, result ? "resultUrl" : "statusUrl")
                 : NULL;
    if (refused || (name && !provider)) {
        snprintf (error, error_size, "%s",
                  refused ? refused : "provider plugin is no longer loaded");
        free (refused);
        return NULL;
    }
    char ignored[128];
    json_t *headers = url ? s_poll_headers (self, task, provider, ignored, sizeof ignored) : NULL;
    if (!headers)
        return NULL;
    int64_t timeout = json_integer_value (json_object_get (task, "timeout"));
    return json_pack ("{s:O, s:i, s:s, s:s, s:s, s:o, s:I, s:i}", "id",
                      json_object_get (task, "id"), "attempt", seq, "kind", "poll", "url", url,
                      "method", "GET", "headers", headers, "timeout", (json_int_t) timeout,
                      "maxBody", self->cfg->max_body);
}

//  An onCompleteUrl delivery answered (or failed): record it on the task,
//  retry with back-off up to S_NOTIFY_TRIES, then give up. Saves the task.
static void s_notify_result (bk_broker_t *self, json_t *task, int attempt, const json_t *result) {
    int status = bk_task_status (task);
    json_t *code = json_object_get (result, "statusCode");
    const char *error = aq_field_str (result, "error");
    char text[64];
    json_t *outcome = json_pack ("{s:s, s:i}", "status", "delivered", "attempts", attempt);
    if (json_is_integer (code))
        json_object_set (outcome, "statusCode", code);
    bool delivered = json_is_integer (code) && json_integer_value (code) >= 200 &&
                     json_integer_value (code) < 300;
    if (delivered) {
        char stamp[32];
        json_object_set_new (outcome, "deliveredAt",
                             json_string (aq_time_format (self->now, stamp)));
        json_object_del (task, "_notify");
    } else {
        if (!error) {
            snprintf (text, sizeof text, "HTTP %d", (int) json_integer_value (code));
            error = text;
        }
        json_object_set_new (outcome, "error", json_string (error));
        bool permanent = aq_field_bool (result, "permanent", false);
        if (attempt < S_NOTIFY_TRIES && !permanent) {
            json_object_set_new (outcome, "status", json_string ("retrying"));
            int64_t due =
                self->now + bk_backoff_ms ("exponential", attempt, self->cfg->backoff_base_ms,
                                           self->cfg->backoff_cap_ms, -1);
            json_object_set_new (task, "_notify",
                                 json_pack ("{s:i, s:b, s:I}", "attempt", attempt, "inflight", 0,
                                            "due", (json_int_t) due));
            uint8_t id[16];
            bk_tasks_ids (task, id, NULL);
            bk_broker_timer (self, due, BK_DELAY_NOTIFY, id);
        } else {
            json_object_set_new (outcome, "status", json_string ("failed"));
            json_object_del (task, "_notify");
        }
    }
    json_object_set_new (task, "onComplete", outcome);
    s_save (self, task, status);
}

//  Builds the JOB that POSTs a finished task to its onCompleteUrl: the same
//  JSON GET /v1/tasks/:id returns, signed like every call (webhook-id is
//  "<task id>.complete", the same on every delivery attempt).
static json_t *s_notify_job (bk_broker_t *self, json_t *task, int attempt) {
    uint8_t id[16], team[16];
    bk_tasks_ids (task, id, team);
    json_t *shown = s_task_body (task);
    char *body = json_dumps (shown, JSON_COMPACT);
    json_decref (shown);
    char msg_id[AQ_UUID_TEXT + 16], stamp[24], signature[BK_SIGNING_SIZE];
    snprintf (msg_id, sizeof msg_id, "%s.complete",
              json_string_value (json_object_get (task, "id")));
    int64_t seconds = self->now / 1000;
    snprintf (stamp, sizeof stamp, "%lld", (long long) seconds);
    json_t *headers = json_pack ("{s:s}", "Content-Type", "application/json");
    const char *whsec = json_string_value (json_object_get (s_team (self, team), "signingSecret"));
    if (whsec && body &&
        bk_signing_sign (whsec, msg_id, seconds, body, strlen (body), signature) == 0) {
        json_object_set_new (headers, "webhook-id", json_string (msg_id));
        json_object_set_new (headers, "webhook-timestamp", json_string (stamp));
        json_object_set_new (headers, "webhook-signature", json_string (signature));
    }
    json_t *job =
        json_pack ("{s:O, s:i, s:s, s:O, s:s, s:o, s:s, s:i, s:i}", "id",
                   json_object_get (task, "id"), "attempt", attempt, "kind", "notify", "url",
                   json_object_get (task, "onCompleteUrl"), "method", "POST", "headers", headers,
                   "body", body ? body : "{}", "timeout", 30, "maxBody", 1024);
    free (body);
    return job;
}

static void s_dispatch (bk_broker_t *self) {
    int index;
    uint8_t id[16];
    while ((index = bk_leases_next_worker (self->leases)) >= 0) {
        if (bk_queue_pop (self->queue, id) != 0)
            break;
        json_t *task = bk_tasks_get (self->store, id);
        json_t *notify = json_object_get (task, "_notify");
        if (notify && bk_status_terminal (bk_task_status (task)) &&
            !json_is_true (json_object_get (notify, "inflight")) &&
            !json_object_get (notify, "due")) {
            int attempt = (int) json_integer_value (json_object_get (notify, "attempt")) + 1;
            json_t *job = s_notify_job (self, task, attempt);
            s_lease_new (job, notify, false);
            bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
            char error[128];
            int sent = s_send_job (self, worker, job, error, sizeof error);
            json_decref (job);
            if (sent > 0) { //  too large: this delivery fails for good
                json_t *result = json_pack ("{s:s, s:b}", "error", error, "permanent", 1);
                s_notify_result (self, task, attempt, result);
                json_decref (result);
            } else if (sent != 0) {
                bk_leases_worker_remove (self->leases, index);
                s_enqueue (self, task);
            } else {
                worker->last_sent = self->mono;
                json_object_set_new (notify, "attempt", json_integer (attempt));
                json_object_set_new (notify, "inflight", json_true ());
                bk_leases_add (self->leases, index, id, attempt, self->mono + 40000);
                s_watchdog (self, task, notify, BK_DELAY_NOTIFY, 45000);
                s_save (self, task, bk_task_status (task));
            }
            json_decref (task);
            continue;
        }
        json_t *poll = json_object_get (task, "_poll");
        if (poll && bk_task_status (task) == BK_ST_POLLING &&
            !json_is_true (json_object_get (poll, "inflight")) && !json_object_get (poll, "due") &&
            !json_object_get (poll, "op")) {
            int seq = (int) aq_field_int (poll, "seq", 0) + 1;
            char error[320] = "";
            json_t *job = s_poll_job (self, task, seq, error, sizeof error);
            bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
            if (job)
                s_lease_new (job, poll, false);
            int sent = job ? s_send_job (self, worker, job, error, sizeof error) : 1;
            if (sent > 0) { //  no request, or one too large to send: no retry
                s_clear_deadline (self, task);
                s_finish (self, task, BK_ST_FAILED, *error ? error : "poll request cannot be made");
                s_save (self, task, BK_ST_POLLING);
            } else if (sent != 0) {
                bk_leases_worker_remove (self->leases, index);
                s_enqueue (self, task); //  back in the queue for another worker
            } else {
                worker->last_sent = self->mono;
                json_object_set_new (poll, "seq", json_integer (seq));
                json_object_set_new (poll, "inflight", json_true ());
                int64_t timeout = json_integer_value (json_object_get (task, "timeout"));
                bk_leases_add (self->leases, index, id, seq, self->mono + timeout * 1000 + 10000);
                s_watchdog (self, task, poll, BK_DELAY_POLL, timeout * 1000 + 15000);
                s_save (self, task, BK_ST_POLLING);
            }
            json_decref (job);
            json_decref (task);
            continue;
        }
        if (!task || bk_task_status (task) != BK_ST_PENDING) {
            json_decref (task); //  a stale entry: the task moved on
            continue;
        }
        int attempt = (int) json_integer_value (json_object_get (task, "_attempts")) + 1;
        json_object_set_new (task, "_attempts", json_integer (attempt));
        json_object_set_new (task, "_attemptAt", json_integer (self->now));
        if (!json_object_get (task, "startedAt"))
            bk_task_set_time (task, "startedAt", self->now);
        s_set_status (task, BK_ST_PROCESSING);
        int64_t timeout = json_integer_value (json_object_get (task, "timeout"));
        json_t *job = json_pack (
            "{s:O, s:i, s:O, s:O, s:O, s:I, s:i}", "id", json_object_get (task, "id"), "attempt",
            attempt, "url", json_object_get (task, "targetUrl"), "method",
            json_object_get (task, "method"), "headers", json_object_get (task, "headers"),
            "timeout", (json_int_t) timeout, "maxBody", self->cfg->max_body);
        const char *body = json_string_value (json_object_get (task, "body"));
        if (body && strcmp (json_string_value (json_object_get (task, "method")), "GET") != 0)
            json_object_set_new (job, "body", json_string (body));
        else
            body = NULL;
        char error[128];
        json_t *headers = s_job_headers (self, task, body, error, sizeof error);
        if (!headers) {
            json_decref (job);
            s_record_attempt (self, id, task, 0, NULL, error);
            s_finish (self, task, BK_ST_FAILED, error); //  no retry: the token is gone
            s_save (self, task, BK_ST_PENDING);
            json_decref (task);
            continue;
        }
        json_object_set_new (job, "headers", headers);
        s_lease_new (job, task, true);
        //  Sent now, before the commit: a worker's result is handled in a
        //  later turn, after this one committed; if the commit fails the
        //  task is still pending and may run twice (at least once holds).
        //  This keeps an fsync out of the due-to-call latency.
        bk_worker_t *worker = bk_leases_worker_at (self->leases, index);
        int sent = s_send_job (self, worker, job, error, sizeof error);
        json_decref (job);
        if (sent > 0) { //  too large for any worker: fails, no retry
            s_record_attempt (self, id, task, 0, NULL, error);
            s_finish (self, task, BK_ST_FAILED, error);
            s_save (self, task, BK_ST_PENDING);
            json_decref (task);
            continue;
        }
        if (sent != 0) {
            //  unroutable or stalled worker: the job never left; requeue
            aq_log (AQ_LOG_WARN, "broker", "cannot send a job to worker '%s': %s", worker->name,
                    zmq_strerror (errno));
            bk_leases_worker_remove (self->leases, index);
            json_decref (task);
            task = bk_tasks_get (self->store, id);
            s_make_ready (self, task);
            json_decref (task);
            continue;
        }
        worker->last_sent = self->mono;
        int64_t grace = (int64_t) self->cfg->heartbeat_ms * self->cfg->heartbeat_liveness;
        bk_leases_add (self->leases, index, id, attempt, self->mono + timeout * 1000 + grace);
        s_save (self, task, BK_ST_PENDING);
        self->stats.dispatched++;
        json_decref (task);
    }
}

static void s_heartbeat (bk_broker_t *self) {
    for (int i = 0; i < bk_leases_worker_count (self->leases); i++) {
        bk_worker_t *w = bk_leases_worker_at (self->leases, i);
        if (w && w->last_sent + self->cfg->heartbeat_ms <= self->mono) {
            w->last_sent = self->mono;
            s_out_new (self, w->socket, w->rid, w->rid_size, AQ_CMD_HEARTBEAT, NULL);
        }
    }
}

//  Leases every processing task to nobody (an orphan lease), so it either
//  gets its result from a worker that outlived the broker's memory or
//  returns to the queue at the deadline. Workers are forgotten too: their
//  next message is answered with ERROR 410 and they announce themselves.
static int s_recover_one (void *arg, const uint8_t id[16]) {
    bk_broker_t *self = arg;
    json_t *task = bk_tasks_get (self->store, id);
    if (task) {
        int attempt = (int) json_integer_value (json_object_get (task, "_attempts"));
        int64_t timeout = json_integer_value (json_object_get (task, "timeout"));
        int64_t grace = 2LL * self->cfg->heartbeat_ms * self->cfg->heartbeat_liveness;
        bk_leases_add (self->leases, BK_LEASE_ORPHAN, id, attempt,
                       self->mono + timeout * 1000 + grace);
    }
    json_decref (task);
    return 0;
}

static void s_recover (bk_broker_t *self) {
    bk_leases_destroy (&self->leases);
    self->leases = bk_leases_new ();
    bk_tasks_each_in_status (self->store, BK_ST_PROCESSING, s_recover_one, self);
    if (bk_leases_count (self->leases))
        aq_log (AQ_LOG_INFO, "broker", "%zu tasks were processing: awaiting their results",
                bk_leases_count (self->leases));
    self->recover = false;
}

//  Subscriptions on an events XPUB (ZMQ_XPUB_MANUAL): a byte 1 or 0 and a
//  topic. Only a team's whole topic (s_events_topic) is passed on to
//  ZeroMQ, so no subscriber gets another team's events, nor everyone's
//  with an empty prefix.
static void s_subscriptions (bk_broker_t *self, void *socket) {
    uint8_t frame[256];
    int size;
    while ((size = zmq_recv (socket, frame, sizeof frame - 1, ZMQ_DONTWAIT)) > 0) {
        char *topic = (char *) frame + 1, want[80];
        size_t len = (size_t) size - 1;
        if (len != AQ_UUID_TEXT - 1 + 33 || (frame[0] != 0 && frame[0] != 1))
            continue;
        topic[len] = '\0';
        char team[AQ_UUID_TEXT];
        snprintf (team, sizeof team, "%.*s", AQ_UUID_TEXT - 1, topic);
        if (sodium_memcmp (s_events_topic (self, team, want), topic, len) != 0)
            continue;
        bool subscribe = frame[0] == 1;
        zmq_setsockopt (socket, subscribe ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic, len);
        if (subscribe)
            self->subscribers++;
        else if (self->subscribers > 0)
            self->subscribers--;
    }
}

//  --------------------------------------------------------------------------
//  Setup

//  Binds every socket cfg asks for.
static int s_bind (bk_broker_t *self, void *zmq_ctx) {
    bk_sockets_config_t config;
    char *clients = s_sockets_config (self->cfg, &config);
    self->sockets = bk_sockets_new (zmq_ctx, &config);
    free (clients);
    if (!self->sockets)
        return -1;
    self->nclients = bk_sockets_of (self->sockets, BK_CLIENTS, self->clients);
    self->nworkers = bk_sockets_of (self->sockets, BK_WORKERS, self->workers);
    self->nevents = bk_sockets_of (self->sockets, BK_EVENTS, self->events);
    //  events topics are keyed from the admin token: a new token, new topics
    crypto_generichash (self->events_key, sizeof self->events_key,
                        (const uint8_t *) "asyncqueue events topics", 24,
                        (const uint8_t *) self->admin, strlen (self->admin));
    return 0;
}

//  Reads DATA/admin.token, creating it (0600) on first start. A token that
//  is a symbolic link, not a regular file, another user's or open to group
//  or others is refused (aq_secret_open); one shorter than 32 characters
//  (an empty file left by a crash at first start) is made anew. Returns 0,
//  or -1 after logging why.
static int s_admin_token (bk_broker_t *self, const char *dir) {
    char path[4096], err[4600] = "";
    snprintf (path, sizeof path, "%s/admin.token", dir);
    int rc = -1;
    bool again = true;
    for (int round = 0; round < 2 && again; round++) {
        again = false;
        bool created = false;
        int fd = aq_secret_open (path, "admin token", true, &created, err, sizeof err);
        if (fd < 0)
            break;
        if (created) {
            uint8_t raw[32];
            randombytes_buf (raw, sizeof raw);
            sodium_bin2hex (self->admin, sizeof self->admin, raw, sizeof raw);
            sodium_memzero (raw, sizeof raw);
            if (write (fd, self->admin, 64) == 64 && fsync (fd) == 0)
                rc = 0;
            else
                snprintf (err, sizeof err, "cannot write admin token '%s': %s", path,
                          strerror (errno));
        } else {
            char *token = aq_secret_read_fd (fd, path, "admin token", err, sizeof err);
            size_t length = token ? strlen (token) : 0;
            if (token && length >= sizeof self->admin)
                snprintf (err, sizeof err, "admin token '%s' is longer than %zu characters", path,
                          sizeof self->admin - 1);
            else if (token && length >= 32) {
                memcpy (self->admin, token, length + 1);
                rc = 0;
            } else if (token) { //  too short, or empty after a crash at first start
                snprintf (err, sizeof err, "admin token '%s' holds %zu characters, 32 needed", path,
                          length);
                again = unlink (path) == 0;
            }
            if (token)
                sodium_memzero (token, length);
            free (token);
        }
        close (fd);
    }
    if (rc != 0)
        aq_log (AQ_LOG_ERROR, "broker", "%s", err);
    return rc;
}

static uint64_t s_last_seq (bk_store_t *store) {
    //  Creation sequence numbers: continue after the highest ever used.
    bk_val_t val;
    uint64_t seq = 0;
    if (bk_store_get (store, BK_DB_META, "seq", 3, &val) == 0 && val.size == 8)
        memcpy (&seq, val.data, 8);
    return seq;
}

int bk_broker_run (const bk_config_t *cfg, void *zmq_ctx, const atomic_int *stop) {
    if (sodium_init () < 0)
        return -1;
    bk_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    self->cfg = cfg;
    int rc = -1;
    char err[512];
    self->store = bk_store_open (cfg->data_dir, cfg->map_size, cfg->nosync, err, sizeof err);
    if (!self->store) {
        aq_log (AQ_LOG_ERROR, "broker", "%s", err);
        goto out;
    }
    bk_store_set_checkpoint (self->store, cfg->checkpoint_ms, BK_STORE_CHECKPOINT_BYTES);
    if (bk_store_replayed (self->store))
        aq_log (AQ_LOG_INFO, "broker", "replayed %llu commits from the redo log",
                (unsigned long long) bk_store_replayed (self->store));
    if (s_admin_token (self, cfg->data_dir) != 0)
        goto out;
    self->queue = bk_queue_new (self->store);
    self->leases = bk_leases_new ();
    self->waiters = bk_waiters_new ();
    self->limits = bk_limits_new ();
    self->teams = json_object ();
    self->keys = json_object ();
    self->plugins = aq_plugin_loader_new (cfg->data_dir);
    aq_plugin_loader_describe_only (self->plugins, AQ_PLUGIN_PROVIDER); //  ops: provider hosts
    char *plugin_dir = cfg->plugin_dir ? strdup (cfg->plugin_dir) : aq_plugin_loader_default_dir ();
    if (plugin_dir && aq_plugin_loader_load_dir (self->plugins, plugin_dir) < 0)
        aq_log (AQ_LOG_WARN, "broker", "cannot read plugin directory '%s'", plugin_dir);
    free (plugin_dir);
    self->vault = aq_plugin_loader_vault (self->plugins, NULL);
    if (!self->vault)
        aq_log (AQ_LOG_WARN, "broker", "no vault plugin loaded: /v1/tokens is unavailable");
    for (int i = 0; i < cfg->provider_origin_count; i++) {
        const char *given = cfg->provider_origins[i], *eq = strchr (given, '=');
        char name[64];
        snprintf (name, sizeof name, "%.*s", (int) (eq - given), given);
        if (aq_plugin_loader_allow_origin (self->plugins, name, eq + 1) != 0)
            aq_log (AQ_LOG_WARN, "broker", "--provider-origin '%s': no provider '%s' is loaded",
                    given, name);
        else
            aq_log (AQ_LOG_WARN, "broker", "provider '%s' may also poll '%s' (--provider-origin)",
                    name, eq + 1);
    }
    //  Provider ops run in provider hosts: this program, re-executed
    self->providers = bk_providers_new ("/proc/self/exe", cfg->data_dir, cfg->provider_timeout_ms);
    if (s_bind (self, zmq_ctx) != 0)
        goto out;
    self->now = aq_time_now_ms ();
    self->mono = aq_time_mono_ms ();
    if (bk_store_begin (self->store, false) != 0)
        goto out;
    self->seq = self->stored_seq = s_last_seq (self->store);
    self->next_due = 0;
    s_recover (self);
    bk_tasks_each_in_status (self->store, BK_ST_POLLING, s_provider_resend, self);
    bk_store_abort (self->store);
    self->last_reader_check = self->mono;
    aq_log (AQ_LOG_INFO, "broker", "ready: data '%s', clients '%s', workers '%s', events '%s'",
            cfg->data_dir, cfg->client_endpoints ? cfg->client_endpoints : "",
            cfg->worker_endpoints ? cfg->worker_endpoints : "",
            cfg->event_endpoints ? cfg->event_endpoints : "");
    aq_notify_ready ("broker"); //  store open, log replayed, sockets bound
    int loop = aq_notify_loop_new ("broker");

    while (!atomic_load (stop)) {
        aq_notify_loop_turn (loop); //  a stalled turn stops petting systemd's watchdog
        //  sleep until the next timer, at most 100 ms (stop flag)
        int64_t now = aq_time_now_ms (), mono = aq_time_mono_ms ();
        int64_t wake = 100;
        if (self->next_due != INT64_MAX && self->next_due - now < wake)
            wake = self->next_due - now;
        int64_t deadline = bk_leases_next_deadline (self->leases);
        if (deadline != INT64_MAX && deadline - mono < wake)
            wake = deadline - mono;
        deadline = bk_waiters_next_deadline (self->waiters);
        if (deadline != INT64_MAX && deadline - mono < wake)
            wake = deadline - mono;
        deadline = bk_providers_next_wake (self->providers);
        if (deadline != INT64_MAX && deadline - mono < wake)
            wake = deadline - mono;
        zmq_pollitem_t items[3 * BK_SOCKETS_MAX + 32];
        int nitems = 0;
        for (int i = 0; i < self->nclients; i++)
            items[nitems++] = (zmq_pollitem_t){self->clients[i], 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < self->nworkers; i++)
            items[nitems++] = (zmq_pollitem_t){self->workers[i], 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < self->nevents; i++)
            items[nitems++] = (zmq_pollitem_t){self->events[i], 0, ZMQ_POLLIN, 0};
        nitems += bk_providers_poll_items (self->providers, items + nitems, 32);
        if (zmq_poll (items, nitems, wake < 0 ? 0 : (long) wake) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < self->nevents; i++)
            s_subscriptions (self, self->events[i]);

        self->now = aq_time_now_ms ();
        self->mono = aq_time_mono_ms ();
        if (bk_store_begin (self->store, true) != 0) {
            aq_log (AQ_LOG_ERROR, "broker", "cannot begin a store transaction");
            break;
        }
        if (self->recover)
            s_recover (self);
        //  A turn takes in at most S_BATCH messages and S_TURN_BYTES per
        //  socket, so one transaction stays well inside the store's headroom.
        for (int i = 0; i < self->nworkers; i++) {
            size_t bytes = 0;
            for (int n = 0; n < S_BATCH && bytes < S_TURN_BYTES &&
                            s_receive (self, self->workers[i], true, &bytes);
                 n++)
                ;
        }
        for (int i = 0; i < self->nclients; i++) {
            size_t bytes = 0;
            for (int n = 0; n < S_BATCH && bytes < S_TURN_BYTES &&
                            s_receive (self, self->clients[i], false, &bytes);
                 n++)
                ;
        }
        s_providers_turn (self);
        if (self->next_due <= self->now)
            s_promote_due (self);
        s_expire (self);
        s_dispatch (self);
        s_heartbeat (self);
        if (self->seq != self->stored_seq &&
            bk_store_put (self->store, BK_DB_META, "seq", 3, &self->seq, 8) == 0)
            self->stored_seq = self->seq;
        int commit = bk_store_commit (self->store);
        if (commit != 0) {
            aq_log (AQ_LOG_ERROR, "broker", "commit failed (%s): %zu messages answered 503",
                    commit == BK_EFULL ? "disk or map full" : "storage error", self->nout);
            self->recover = true; //  memory may be ahead of the store
            self->next_due = 0;
            self->stored_seq = 0; //  the turn's seq is not stored either
        }
        for (size_t i = 0; i < self->nout; i++) {
            bk_out_t *out = &self->out[i];
            if (commit != 0 && out->cmd == AQ_CMD_REPLY) {
                json_object_set_new (out->body, "status", json_integer (AQ_UNAVAILABLE));
                json_object_set_new (out->body, "error", json_string (BK_REPLY_FAILED));
                json_object_del (out->body, "body");
            }
            if (!(commit != 0 && out->cmd == AQ_CMD_EVENT) && s_send_out (self, out) != 0)
                self->stats.dropped++; //  a client or worker gone away
            json_decref (out->body);
        }
        self->nout = 0;
        bk_store_settle (self->store);
        if (self->mono - self->last_release > 1000) {
            bk_store_release_pages (self->store);
            self->last_release = self->mono;
        }
        if (self->mono - self->last_reader_check > 10000) {
            int dead = bk_store_reader_check (self->store);
            if (dead)
                aq_log (AQ_LOG_WARN, "broker", "cleared %d stale LMDB reader slots", dead);
            self->last_reader_check = self->mono;
        }
    }
    aq_notify_stopping ();
    aq_notify_loop_end (loop);
    rc = 0;
    aq_log (AQ_LOG_INFO, "broker", "stopped");
out:
    bk_sockets_destroy (&self->sockets);
    bk_providers_destroy (&self->providers);
    bk_waiters_destroy (&self->waiters);
    bk_limits_destroy (&self->limits);
    json_decref (self->teams);
    json_decref (self->keys);
    aq_plugin_loader_destroy (&self->plugins);
    bk_leases_destroy (&self->leases);
    bk_queue_destroy (&self->queue);
    bk_store_destroy (&self->store);
    free (self->out);
    free (self);
    return rc;
}
