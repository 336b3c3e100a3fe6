/*  aq_proto.h - the asyncqueue wire protocol: the one list of messages

    Every message that crosses a ZeroMQ socket is one frame:

        +------+------+---------+-----+----------------------------+
        | 0xAA | 0xA1 | version | cmd | msgpack map (the fields)   |
        +------+------+---------+-----+----------------------------+

    (a ROUTER adds the peer's routing id frame in front). The decoder rejects
    a wrong signature or version as malformed rather than guessing. Fields are
    a msgpack map with string keys; unknown keys are ignored, so adding an
    optional key is not a breaking change. docs/protocol.md is the reference.

    Two codecs read and write the fields: aq_msg.h, views into the bytes
    and a writer (the broker, which decodes straight into its structs), and
    aq_codec.h, jansson documents (the gateway, workers, client library).
    Both produce the same bytes for the same message (proto/vectors).
*/
#ifndef AQ_PROTO_H
#define AQ_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_PROTO_SIG0    0xAA
#define AQ_PROTO_SIG1    0xA1
#define AQ_PROTO_VERSION 1
#define AQ_PROTO_HEADER  4         //  signature(2) version(1) command(1)
#define AQ_PROTO_MAX_MSG (8 << 20) //  ZMQ_MAXMSGSIZE on every socket
#define AQ_PROTO_DEPTH   40        //  deepest nesting the decoder accepts
#define AQ_PROTO_BUDGET  (1 << 27) //  bytes one decoded frame may take: 128 MiB

/*  The message table. X(NAME, id, direction). Appending is compatible;
    renumbering is not (bump AQ_PROTO_VERSION).

    Client requests (DEALER -> broker client ROUTER) all carry
      corr  uint   correlation id, echoed in the REPLY
      key   str    API key (task commands) or
      admin str    admin token from DATA/admin.token (team/key commands)
    and are answered by exactly one REPLY.                                  */
// clang-format off
#define AQ_PROTO_COMMANDS(X)                                                 \
    X (TASK_CREATE,   1, "client>broker  task:{REST body}, idem?:str, traceparent?, tracestate?") \
    X (TASK_GET,      2, "client>broker  id:str, wait?:uint seconds <= 25")  \
    X (TASK_LIST,     3, "client>broker  status?, limit?, offset?, sortOrder?") \
    X (TASK_CANCEL,   4, "client>broker  id:str")                            \
    X (TASK_RETRY,    5, "client>broker  id:str")                            \
    X (TASK_ATTEMPTS, 6, "client>broker  id:str")                            \
    X (TEAM_CREATE,   7, "client>broker  name:str (admin)")                  \
    X (TEAM_LIST,     8, "client>broker  (admin)")                           \
    X (KEY_CREATE,    9, "client>broker  team:str name, scope?:full|read (admin)") \
    X (KEY_LIST,     10, "client>broker  team?:str name (admin)")            \
    X (KEY_REVOKE,   11, "client>broker  id:str (admin)")                    \
    X (AUTH,         12, "client>broker  key:str -> teamId, scope")          \
    X (STATS,        13, "client>broker  -> counters and gauges")            \
    X (REPLY,        14, "broker>client  corr, status:int, body?:map, error?:str, retryAfter?:uint") \
    X (HEARTBEAT,    15, "both ways      (no fields)")                       \
    X (TEAM_SECRET,  16, "client>broker  team:str name, rotate?:bool (admin) -> signingSecret") \
    X (TEAM_LIMIT,   17, "client>broker  team:str name, rps:number (0 = none), burst?:number (admin)") \
    X (READY,        20, "worker>broker  credit:uint, name?:str")            \
    X (JOB,          21, "broker>worker  id, attempt, url, method, headers, body?, timeout (s), maxBody, kind?") \
    X (RESULT,       22, "worker>broker  id, attempt, duration (ms), statusCode?, headers?, body?, bodyTruncated?, retryAfter?, error?, permanent?, refused?, kind? (echoed)") \
    X (BYE,          23, "worker>broker  (no fields) leaving; leases return at once") \
    X (ERROR,        24, "broker>peer    code:int, reason:str")              \
    X (TOKEN_CREATE, 25, "client>broker  token:{name, value} -> token {id, name, createdAt}") \
    X (TOKEN_LIST,   26, "client>broker  -> tokens [{id, name, createdAt}]") \
    X (TOKEN_DELETE, 27, "client>broker  id:str -> token") \
    X (TASK_SIGNAL,  28, "client>broker  id, signal:{status: completed|failed, result?}; key may be the task's sig_ token") \
    X (EVENT,        30, "broker PUB     id, teamId, status, at (ms); topic frame = teamId") \
    X (SCHEDULE_CREATE,  31, "client>broker  schedule:{REST body of POST /tasks} -> 201 task") \
    X (SCHEDULE_LIST,    32, "client>broker  status?, created_by?, schedule_kind?, limit?, offset? -> tasks, pagination") \
    X (SCHEDULE_GET,     33, "client>broker  id -> task") \
    X (SCHEDULE_UPDATE,  34, "client>broker  id, schedule:{partial REST body} -> task") \
    X (SCHEDULE_RUN_NOW, 35, "client>broker  id -> 201 run") \
    X (SCHEDULE_SNOOZE,  36, "client>broker  id, snooze:{delay_seconds, reason?} -> task") \
    X (SCHEDULE_PAUSE,   37, "client>broker  id -> task") \
    X (SCHEDULE_RESUME,  38, "client>broker  id -> task") \
    X (SCHEDULE_CANCEL,  39, "client>broker  id -> task") \
    X (SCHEDULE_RUNS,    40, "client>broker  id, limit?, offset? -> runs, pagination") \
    X (SCHEDULE_PREVIEW, 41, "client>broker  id, count? | schedule:{schedule_kind, schedule_expr?, timezone?, count?} -> fire_times") \
    X (EVENT_FIRE,       42, "client>broker  event:{name, data?} -> event {name, matched}, runs")

// clang-format on

typedef enum {
#define AQ_PROTO_ENUM(name, id, doc) AQ_CMD_##name = id,
    AQ_PROTO_COMMANDS (AQ_PROTO_ENUM)
#undef AQ_PROTO_ENUM
} aq_cmd_t;

//  Status codes in REPLY and ERROR are HTTP's, so the gateway maps them 1:1.
#define AQ_OK          200
#define AQ_CREATED     201
#define AQ_BAD_REQUEST 400
#define AQ_UNAUTH      401
#define AQ_FORBIDDEN   403
#define AQ_NOT_FOUND   404
#define AQ_CONFLICT    409
#define AQ_TOO_LARGE   413
#define AQ_TOO_MANY    429
#define AQ_INTERNAL    500
#define AQ_UNAVAILABLE 503

//  Decoder errors (negative, as aq_msg_frame and aq_codec_decode return them).
#define AQ_EPROTO_SHORT     -1 //  frame shorter than the header
#define AQ_EPROTO_SIGNATURE -2 //  not an asyncqueue frame
#define AQ_EPROTO_VERSION   -3 //  another protocol version
#define AQ_EPROTO_COMMAND   -4 //  unknown command id
#define AQ_EPROTO_MALFORMED -5 //  body is not a msgpack map we accept
#define AQ_EPROTO_NOMEM     -6
#define AQ_EPROTO_BUDGET    -7 //  would take more than AQ_PROTO_BUDGET decoded

//  Name of a command ("TASK_CREATE"), or NULL for an unknown id.
const char *aq_proto_name (int cmd);

//  Error text for an AQ_EPROTO_* code.
const char *aq_proto_strerror (int code);

void aq_proto_test (bool verbose);

#endif
