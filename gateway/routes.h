/*  routes.h - the REST routing table: HTTP requests to protocol requests and back

    Knows nothing of libmicrohttpd: http.c hands it a gw_request_t (borrowed
    strings) and gets a gw_action_t back, either a protocol request to send
    or a response to give at once (response.c renders the broker's REPLY).
*/
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include "aq_msg.h"
#include "query.h"
#include "response.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GW_ROUTE_TASK_CREATE = 1,        //  POST /v1/tasks
    GW_ROUTE_TASK_LIST,              //  GET  /v1/tasks
    GW_ROUTE_TASK_GET,               //  GET  /v1/tasks/:id
    GW_ROUTE_TASK_CANCEL,            //  POST /v1/tasks/:id/cancel
    GW_ROUTE_TASK_ATTEMPTS,          //  GET  /v1/tasks/:id/attempts
    GW_ROUTE_TASK_RETRY,             //  POST /v1/tasks/:id/retry
    GW_ROUTE_TASK_SIGNAL,            //  POST /v1/tasks/:id/signal
    GW_ROUTE_TOKEN_CREATE,           //  POST /v1/tokens
    GW_ROUTE_TOKEN_LIST,             //  GET  /v1/tokens
    GW_ROUTE_TOKEN_DELETE,           //  DELETE /v1/tokens/:id
    GW_ROUTE_HEALTHZ,                //  GET  /healthz (answered by the gateway)
    GW_ROUTE_METRICS,                //  GET  /metrics (STATS rendered as Prometheus text)
    GW_ROUTE_SCHEDULE_CREATE,        //  POST /tasks
    GW_ROUTE_SCHEDULE_LIST,          //  GET  /tasks
    GW_ROUTE_SCHEDULE_GET,           //  GET  /tasks/:id
    GW_ROUTE_SCHEDULE_UPDATE,        //  PUT  /tasks/:id
    GW_ROUTE_SCHEDULE_RUN_NOW,       //  POST /tasks/:id/run_now
    GW_ROUTE_SCHEDULE_SNOOZE,        //  POST /tasks/:id/snooze
    GW_ROUTE_SCHEDULE_PAUSE,         //  POST /tasks/:id/pause
    GW_ROUTE_SCHEDULE_RESUME,        //  POST /tasks/:id/resume
    GW_ROUTE_SCHEDULE_CANCEL,        //  POST /tasks/:id/cancel
    GW_ROUTE_SCHEDULE_RUNS,          //  GET  /tasks/:id/runs
    GW_ROUTE_SCHEDULE_PREVIEW,       //  GET  /tasks/:id/preview
    GW_ROUTE_SCHEDULE_PREVIEW_DRAFT, //  POST /tasks/preview (a schedule not created)
    GW_ROUTE_EVENT_FIRE,             //  POST /events
    GW_ROUTE_READYZ,                 //  GET  /readyz (answered by the gateway)
    GW_ROUTE_TASK_BATCH,             //  POST /v1/tasks/batch
    GW_ROUTE_TASK_BULK,              //  POST /v1/tasks/bulk
    GW_ROUTE_BULK_GET,               //  GET  /v1/bulk/:id
    GW_ROUTE_FLOW_LIST,              //  GET  /v1/flow-control
    GW_ROUTE_FLOW_GET,               //  GET  /v1/flow-control/:key
    GW_ROUTE_FLOW_SET,               //  PUT  /v1/flow-control/:key
    GW_ROUTE_FLOW_PAUSE,             //  POST /v1/flow-control/:key/pause
    GW_ROUTE_FLOW_RESUME,            //  POST /v1/flow-control/:key/resume
    GW_ROUTE_WHOAMI,                 //  GET  /v1/whoami (AUTH: the key's team and scope)
    GW_ROUTE_STATS,                  //  GET  /v1/stats (STATS, the console's view)
} gw_route_id_t;

#define GW_ROUTE_LOCAL  1 //  answered by the gateway, no key, no broker
#define GW_ROUTE_STRICT 2 //  unknown query parameters are a 400

typedef struct {
    const char *method;                     //  "GET", "POST", "PUT" or "DELETE"
    const char *pattern;                    //  "/v1/tasks/:id/cancel"; ":id" matches one segment
    gw_route_id_t id;                       //  which route
    int cmd;                                //  AQ_CMD_* sent to the broker, 0 when local
    unsigned flags;                         //  GW_ROUTE_*
    const char *body;                       //  the JSON body travels as this member; NULL: ignored
    const char *params[GW_QUERY_NAMES + 1]; //  query parameters it accepts, NULL-terminated
} gw_route_t;

typedef struct {
    const gw_route_t *route;  //  the matched route, NULL when status is set
    int status;               //  0 when matched, else 404 or 405
    char allow[GW_ALLOW_MAX]; //  methods the path accepts (for a 405), "" for a 404
    const char *id;           //  the :id segment inside the path (not terminated)
    size_t id_size;           //  its length, 0 when the route has no :id
} gw_match_t;

//  Finds the route for method and path (the path without its query string).
//  Returns 0 with match->route set, or -1 with match->status 404 or 405.
//  match->id points into path: valid while path is.
int gw_routes_find (const char *method, const char *path, gw_match_t *match);

//  One HTTP request as received; every pointer is borrowed.
typedef struct {
    const char *method;          //  request method
    const char *path;            //  URL-decoded path, no query string
    const char *authorization;   //  Authorization header, or NULL
    const char *idempotency_key; //  Idempotency-Key header, or NULL
    const char *traceparent;     //  W3C traceparent header, or NULL
    const char *tracestate;      //  and tracestate, or NULL
    const gw_param_t *query;     //  query parameters in arrival order (the first GW_QUERY_MAX)
    size_t query_count;          //  how many
    const char *body;            //  request body, or NULL
    size_t body_size;            //  its length
} gw_request_t;

//  What to do with a request.
typedef struct {
    const gw_route_t *route; //  matched route, NULL with a 404/405
    int cmd;                 //  AQ_CMD_* to send, 0 when answered here
    aq_writer_t frame;       //  the protocol request so far (cmd != 0): header, fields
    size_t map;              //  where its field map starts in frame
    uint32_t fields;         //  fields written, corr not yet
    int wait_s;              //  seconds the broker may hold it (GET ?wait=N)
    gw_response_t response;  //  the local answer when cmd is 0 (unset for /healthz)
} gw_action_t;

//  Translates req. Always fills action: either cmd and a frame (finish it
//  with gw_action_frame and send it), or a local response (404, 405, 401
//  "API key required", 400 for a bad query or body), or, for a
//  GW_ROUTE_LOCAL route, neither (the caller answers). The request's
//  fields are key, id, the query parameters, the body under the route's
//  member, idem: the body is written as msgpack straight from its JSON
//  text (json.c). The caller releases action with gw_action_release.
void gw_routes_translate (const gw_request_t *req, gw_action_t *action);

//  Ends the request with its correlation id: the whole frame to send,
//  borrowed from self until gw_action_release, its length in *size; NULL
//  when out of memory. Once per action.
const uint8_t *gw_action_frame (gw_action_t *self, uint64_t corr, size_t *size);
void gw_action_release (gw_action_t *self);

void gw_routes_test (bool verbose);

#endif
