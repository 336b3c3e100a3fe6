/*  aq_client.h - the C client library: talk to the asyncqueue broker over ZeroMQ

    For internal services that hand tasks to the broker without HTTP. One
    aq_client_t is one DEALER connection to the broker's client ROUTER
    (tcp://127.0.0.1:5570 or ipc://DATA/client.ipc by default). Every request
    is one protocol message carrying a correlation id (`corr`) and the API key
    or admin token; the broker answers each with exactly one REPLY
    {corr, status, body?, error?, retryAfter?}, where status is an HTTP code
    and body is the REST response body (docs/protocol.md).

        aq_client_t *client = aq_client_new ("tcp://127.0.0.1:5570");
        aq_client_set_key (client, getenv ("AQ_API_KEY"));
        json_t *task = json_pack ("{s:s}", "targetUrl", "https://example.com/hook");
        json_t *reply = NULL;
        int status = aq_client_task_create (client, task, NULL, &reply);
        if (status == AQ_CREATED)
            puts (aq_client_reply_task_id (reply));
        else if (status > 0)
            fprintf (stderr, "%s\n", aq_client_reply_error (reply));
        json_decref (reply);
        json_decref (task);
        aq_client_destroy (&client);

    Two ways to talk:
      - synchronous: aq_client_call () sends one request and waits for its
        REPLY. Replies to earlier requests that timed out (their corr differs)
        are read and dropped.
      - pipelined: aq_client_send () many requests, aq_client_recv () their
        REPLYs in any order, matched by corr. Don't mix the two with requests
        in flight: call () drops every reply but its own.

    A timed-out request may still have been carried out by the broker (at
    least once): pass an idempotency key to aq_client_task_create to make a
    retry safe. The connection uses ZMQ_IMMEDIATE, so while the broker is
    unreachable (tcp://, ipc://) requests are not queued for later delivery:
    they fail with ENOTCONN. The connection comes back by itself when the
    broker restarts; requests in flight then are lost (ETIMEDOUT).

    Threads: a client belongs to one thread at a time (ZeroMQ sockets are not
    thread safe); use one client per thread. Ownership: `const json_t *`
    arguments are borrowed; a `json_t **reply` is set to a new reference the
    caller json_decref's (NULL when the call returns -1).
*/
#ifndef AQ_CLIENT_H
#define AQ_CLIENT_H

#include "aq_codec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _aq_client_t aq_client_t;

#define AQ_CLIENT_TIMEOUT 30000 //  default request timeout, ms

//  Connects a DEALER to endpoint ("tcp://host:port", "ipc://path") with its
//  own ZeroMQ context. The connection completes in the background: a broker
//  that is not there shows up as ENOTCONN on the first request. Returns NULL
//  if endpoint is malformed or ZeroMQ fails (errno set).
aq_client_t *aq_client_new (const char *endpoint);

//  Same, on a context the caller owns and keeps alive longer than the client
//  (for inproc:// endpoints inside one process).
aq_client_t *aq_client_new_ctx (void *zmq_ctx, const char *endpoint);

//  Connects with CURVE to a broker that has --cert: secret_cert is our
//  secret certificate (PATH_secret; the broker lists PATH in its
//  --allow-clients directory), broker_cert the broker's public one (see
//  aq_curve.h). NULL with an operator message in err when a certificate
//  cannot be loaded, or errno set as for aq_client_new.
aq_client_t *aq_client_new_secure (const char *endpoint, const char *secret_cert,
                                   const char *broker_cert, char *err, size_t err_size);

//  Closes the connection (unsent requests are dropped) and frees the client.
//  Accepts NULL and a NULL *self_p; sets *self_p = NULL.
void aq_client_destroy (aq_client_t **self_p);

//  The API key sent as `key` with task commands and STATS. Copied; NULL
//  clears it. Never logged.
void aq_client_set_key (aq_client_t *self, const char *api_key);

//  The admin token (DATA/admin.token) sent as `admin` with team and key
//  commands and STATS. Copied; NULL clears it. Never logged.
void aq_client_set_admin (aq_client_t *self, const char *token);

//  How long call () waits for a connection and a reply, and send () for a
//  connection, in ms (default AQ_CLIENT_TIMEOUT). call () waits for the
//  reply of a TASK_GET with wait=N at least N s + 5 s, whatever this is.
void aq_client_set_timeout (aq_client_t *self, int timeout_ms);

//  Sends request cmd (AQ_CMD_TASK_CREATE ...) with fields (an object or NULL;
//  borrowed, not modified) plus a fresh corr and the key and/or admin token
//  (fields that already hold `key` or `admin` keep theirs), and waits for
//  its REPLY. Returns the REPLY status (200, 201, 404 ...) and sets *reply
//  to the whole REPLY map {corr, status, body?, error?, retryAfter?}, owned
//  by the caller. Returns -1 and sets *reply = NULL on failure, errno:
//    ENOTCONN   no connection to the broker within the timeout (not sent)
//    ETIMEDOUT  sent, but no reply within the timeout (it may still be
//               carried out; its late reply is dropped by the next call)
//    EINTR      a signal interrupted the wait; other values from ZeroMQ.
//  An ERROR message from
//  the broker (it could not read our request) ends the call as a reply with
//  status = its code and error = its reason.
int aq_client_call (aq_client_t *self, int cmd, const json_t *fields, json_t **reply);

//  Pipelining: sends one request as call () would and returns its corr (> 0)
//  without waiting for the reply; -1 if it cannot be sent within the timeout
//  (errno ENOTCONN) or fails. The send and receive queues hold 10,000
//  messages each: keep the requests in flight below that.
int64_t aq_client_send (aq_client_t *self, int cmd, const json_t *fields);

//  Receives the next REPLY, waiting up to timeout_ms (-1: forever, 0: only
//  what has arrived). Returns its status and sets *corr and *reply (owned by
//  the caller); an ERROR from the broker is returned as a reply with *corr =
//  0. Returns -1 with *reply = NULL and errno EAGAIN on timeout, or another
//  errno on failure. Other messages (heartbeats, garbage) are skipped.
int aq_client_recv (aq_client_t *self, int64_t *corr, json_t **reply, int timeout_ms);

//  Task commands: synchronous calls with the same return and ownership as
//  aq_client_call. `id` is a task id (borrowed).
//  TASK_CREATE: task is a POST /v1/tasks body; idem, when not NULL, is the
//  Idempotency-Key (the same key within 24 h gives 200 and the first task).
int aq_client_task_create (aq_client_t *self, const json_t *task, const char *idem, json_t **reply);
//  TASK_GET: wait_s 0..25 holds the reply until the status changes.
int aq_client_task_get (aq_client_t *self, const char *id, int wait_s, json_t **reply);
//  TASK_LIST: query holds status, label (a string or an array), targetUrl,
//  provider, flowControlKey, createdAfter, createdBefore, limit, offset,
//  sortOrder (any of them, or NULL for the defaults).
int aq_client_task_list (aq_client_t *self, const json_t *query, json_t **reply);
int aq_client_task_cancel (aq_client_t *self, const char *id, json_t **reply);
int aq_client_task_retry (aq_client_t *self, const char *id, json_t **reply);
int aq_client_task_attempts (aq_client_t *self, const char *id, json_t **reply);
//  TASK_BATCH: tasks is an array of 1 to 1000 POST /v1/tasks bodies,
//  created all or none (201, body.tasks in order; 400 body {error, index});
//  idem, when not NULL, is the batch's Idempotency-Key.
int aq_client_task_batch (aq_client_t *self, const json_t *tasks, const char *idem, json_t **reply);
//  TASK_BULK: bulk is {"action": "cancel"|"retry", "filter": {...} | "ids":
//  [...]}; 202 with body.bulk, the job (it runs in the background).
int aq_client_task_bulk (aq_client_t *self, const json_t *bulk, json_t **reply);
//  BULK_GET: a bulk job's progress.
int aq_client_bulk_get (aq_client_t *self, const char *id, json_t **reply);
//  STATS: counters and gauges (key or admin token).
int aq_client_stats (aq_client_t *self, json_t **reply);
//  AUTH: who the key is: body {"teamId", "team", "scope", "events"}
//  (GET /v1/whoami over HTTP).
int aq_client_whoami (aq_client_t *self, json_t **reply);

//  Flow control keys (FLOW_*), the same return and ownership: `key` is a
//  flow control key's name (borrowed), not the API key.
//  FLOW_LIST: query holds limit, offset (or NULL for the defaults).
int aq_client_flow_list (aq_client_t *self, const json_t *query, json_t **reply);
int aq_client_flow_get (aq_client_t *self, const char *key, json_t **reply);
//  FLOW_SET: limits is the PUT /v1/flow-control/:key body {rate?, period?,
//  parallelism?}.
int aq_client_flow_set (aq_client_t *self, const char *key, const json_t *limits, json_t **reply);
//  FLOW_PAUSE (paused) or FLOW_RESUME.
int aq_client_flow_pause (aq_client_t *self, const char *key, bool paused, json_t **reply);

//  Readers over a REPLY map (borrowed from reply, NULL when absent).
json_t *aq_client_reply_body (const json_t *reply);
//  The broker's error message, e.g. "Task not found".
const char *aq_client_reply_error (const json_t *reply);
//  body.task, the task object of a task reply.
json_t *aq_client_reply_task (const json_t *reply);
//  body.task.id.
const char *aq_client_reply_task_id (const json_t *reply);

void aq_client_test (bool verbose);

#endif
