/*  task.h - a /v1/tasks task: the typed record, its store encoding, its public shape

    bk_task_t is the task as the broker works on it: the fields of seed 000
    (validated and defaulted by task_request.c), the outcome, and the
    bookkeeping of the state machine (attempts, timers, lease and signal
    tokens, the poll plan, the onCompleteUrl delivery). Strings and encoded
    blobs live in the task's arena and go with it.

    Opaque user data stays msgpack bytes (bk_blob_t): the headers map, the
    pollConfig, a result (a response, or any JSON a signal gave).

    Store encoding (bk_task_encode/decode): a msgpack map with small
    integer keys (task.c lists them), key 0 the record version
    BK_TASK_RECORD. An added optional key is compatible; reshaping one is
    not (bump BK_TASK_RECORD and teach bk_task_decode the old shape).
    Layout version 1 stored tasks as JSON documents packed as msgpack;
    upgrade.c turns those into this record.
*/
#ifndef BK_TASK_H
#define BK_TASK_H

#include "aq_msg.h"
#include "arena.h"
#include "trace.h"

#include <stdbool.h>
#include <stdint.h>

#define BK_TASK_RECORD 2 //  the record's own version (layout 1 was JSON)

typedef enum {
    BK_ST_PENDING = 1,
    BK_ST_DELAYED,
    BK_ST_PROCESSING,
    BK_ST_WAITING,
    BK_ST_POLLING,
    BK_ST_COMPLETED,
    BK_ST_FAILED,
    BK_ST_TIMEOUT,
    BK_ST_CANCELLED,
    BK_ST_COUNT
} bk_status_t;

typedef enum { BK_METHOD_GET, BK_METHOD_POST, BK_METHOD_PUT, BK_METHOD_DELETE } bk_method_t;

//  "pending" ... "cancelled"; NULL for an invalid code.
const char *bk_status_name (int status);
//  Code of a status name (n bytes), or 0 if it is none.
int bk_status_parse (const char *name, size_t n);
bool bk_status_terminal (int status);
const char *bk_method_name (int method);

//  Encoded msgpack bytes (one value), in the owner's arena; size 0: none.
typedef struct {
    const uint8_t *data; //  the bytes
    size_t size;         //  their length
} bk_blob_t;

//  The plan of a polling task (provider or pollConfig) and where it stands.
//  A provider task's answer waits here as its op (poll.h) until the
//  provider host's reply is applied, so a broker restart asks again.
typedef struct {
    bool active;         //  the task polls (set by the first answer)
    int stage;           //  BK_POLL_STATUS or BK_POLL_RESULT (poll.h): the next request
    int seq;             //  status/result requests sent so far
    bool inflight;       //  one is out at a worker
    int64_t due;         //  its delay-queue time (next request, or the in-flight watchdog), -1
    int64_t interval_ms; //  between status requests, -1: the server's default
    char *status_url;    //  GET while running
    char *result_url;    //  GET once finished, or NULL
    char *cancel_url;    //  to cancel the job, or NULL
    char *cancel_method; //  its method, NULL: POST
    int fetch_state;     //  the state the provider gave before the result fetch, -1
    char *fetch_error;   //  and its error, or NULL
    char lease[33];      //  the in-flight request's lease token, "" when none
    bool cancel_owed;    //  the provider's cancel request is owed (dispatch sends it)
    bool op_pending;     //  an answer waits for its provider host's reply
    int64_t op_n;        //  that op's number, else the last one's (0: none yet)
    int op_stage;        //  the answer's stage (BK_POLL_INITIAL, _STATUS, _RESULT)
    bk_blob_t op;        //  the answer: statusCode, headers, body, bodyTruncated, duration
} bk_poll_t;

//  An onCompleteUrl delivery owed by a finished task.
typedef struct {
    bool active;    //  a delivery is owed (queued, in flight or waiting to retry)
    int attempt;    //  deliveries made so far
    bool inflight;  //  one is out at a worker
    int64_t due;    //  its delay-queue time (retry, or the in-flight watchdog), -1
    char lease[33]; //  the in-flight delivery's lease token, "" when none
} bk_notify_t;

typedef enum {
    BK_OUTCOME_NONE,
    BK_OUTCOME_PENDING,
    BK_OUTCOME_RETRYING,
    BK_OUTCOME_DELIVERED,
    BK_OUTCOME_FAILED
} bk_outcome_status_t;

//  The public "onComplete": how the delivery went.
typedef struct {
    int status;           //  bk_outcome_status_t
    int attempts;         //  deliveries made
    int status_code;      //  the last answer's status, -1 none
    char *error;          //  the last failure, or NULL
    int64_t delivered_at; //  -1 none
} bk_outcome_t;

typedef struct {
    bk_arena_t *arena; //  owns every string and blob below
    uint8_t id[16];    //  UUIDv7
    uint8_t team[16];  //  owner
    uint64_t seq;      //  creation order (ready queue, lists)
    int status;        //  bk_status_t
    //  the request (seed 000)
    char *target_url;      //  http(s) URL
    int method;            //  bk_method_t
    bk_blob_t headers;     //  map of str -> str, as given (tok_ ids unresolved)
    const char *body;      //  request body, NULL when none
    size_t body_size;      //  its length (a body may hold NUL)
    int max_wait_s;        //  1..86400, default 30
    int timeout_s;         //  1..300, default 30
    int64_t delay_until;   //  ms, -1 none
    int max_retries;       //  0..10, default 3
    int retry_count;       //  retries used
    int backoff;           //  bk_backoff_t (backoff.h)
    int priority;          //  1..10, default 5
    char *on_complete_url; //  or NULL
    char *provider;        //  a provider plugin's name, or NULL
    bk_blob_t poll_config; //  the pollConfig map, or none
    //  a step of a scheduled run
    bool in_run;             //  the three below are set
    uint8_t schedule_id[16]; //  the scheduled task
    uint8_t run_id[16];      //  the run
    int step;                //  the step's index
    //  the outcome
    bk_blob_t result;         //  the public result value, or none
    char *error;              //  or NULL
    bk_outcome_t on_complete; //  onCompleteUrl delivery, BK_OUTCOME_NONE without one
    int64_t next_attempt_at;  //  ms while waiting for a retry, -1
    int64_t created_at;       //  ms
    int64_t started_at;       //  first dispatch, -1
    int64_t completed_at;     //  terminal, -1
    //  bookkeeping
    int attempts;       //  dispatches of the call so far
    int64_t attempt_at; //  when the current attempt started, -1
    int64_t due;        //  delay-queue time while delayed, -1
    int64_t deadline;   //  maxWaitTime timer while waiting or polling, -1
    char lease[33];     //  the call's lease token while processing, ""
    char signal[65];    //  hash of the one-time signal token while it may be used, ""
    bk_poll_t poll;     //  the poll plan
    bk_notify_t notify; //  the onCompleteUrl delivery
    //  W3C trace context (trace.h)
    bk_trace_t trace;  //  the task's trace; unknown for a task from layout 1 until it calls
    char *trace_state; //  the creator's tracestate, or NULL
    uint8_t span[8];   //  the current attempt's span, all zero before the first
} bk_task_t;

//  A new empty task (no fields set, times -1) with an arena of arena_size.
bk_task_t *bk_task_new (size_t arena_size);
void bk_task_destroy (bk_task_t **self_p);

//  Copies into the task's arena (NULL stays NULL).
char *bk_task_strdup (bk_task_t *self, const char *text);
void bk_task_set_blob (bk_task_t *self, bk_blob_t *blob, const void *data, size_t size);

//  The task's trace: the creator's traceparent and tracestate (str nodes,
//  or NULL/nil), else a traceparent among the task's headers, else a
//  fresh trace. A malformed traceparent is ignored, as W3C says.
void bk_task_set_trace (bk_task_t *self, const aq_node_t *traceparent, const aq_node_t *tracestate);

//  The store record of a task, appended to w.
void bk_task_encode (const bk_task_t *self, aq_writer_t *w);
//  A task from its store record; NULL when the bytes are not a task record
//  of a version this build reads.
bk_task_t *bk_task_decode (const uint8_t *data, size_t size);

//  The task as clients see it, appended to w as a map: the seed's field
//  names, ISO 8601 times, no bookkeeping.
void bk_task_write_public (const bk_task_t *self, aq_writer_t *w);

void bk_task_test (bool verbose);

#endif
