/*  routes.c - the REST routing table: HTTP requests to protocol requests and back

    One table lists every endpoint: method, path pattern, the protocol
    command it becomes, the member its JSON body travels as (if it takes
    one), which query parameters it accepts. The gateway decides only what
    needs no state: unknown paths (404), wrong methods (405), a missing key
    (401), malformed query values and bodies (400). Everything else is the
    broker's call, and its REPLY is passed through unchanged.
*/
#include "routes.h"
#include "json.h"
#include "metrics.h"

#include "aq_json.h"
#include "aq_proto.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  The first route whose pattern and method both match wins: a literal path
//  ("POST /tasks/preview") goes before any route of its method whose ":id"
//  would match it too. The Allow header of a 405 lists methods in this order.
static const gw_route_t s_routes[] = {
    {"GET",
     "/v1/tasks",
     GW_ROUTE_TASK_LIST,
     AQ_CMD_TASK_LIST,
     GW_ROUTE_STRICT,
     NULL,
     {"status", "limit", "offset", "sortOrder", "label", "targetUrl", "provider", "flowControlKey",
      "createdAfter", "createdBefore", NULL}},
    {"POST",
     "/v1/tasks",
     GW_ROUTE_TASK_CREATE,
     AQ_CMD_TASK_CREATE,
     GW_ROUTE_STRICT,
     "task",
     {NULL}},
    {"POST",
     "/v1/tasks/batch",
     GW_ROUTE_TASK_BATCH,
     AQ_CMD_TASK_BATCH,
     GW_ROUTE_STRICT,
     "batch",
     {NULL}},
    {"POST",
     "/v1/tasks/bulk",
     GW_ROUTE_TASK_BULK,
     AQ_CMD_TASK_BULK,
     GW_ROUTE_STRICT,
     "bulk",
     {NULL}},
    {"GET", "/v1/whoami", GW_ROUTE_WHOAMI, AQ_CMD_AUTH, GW_ROUTE_STRICT, NULL, {NULL}},
    {"GET",
     "/v1/stats",
     GW_ROUTE_STATS,
     AQ_CMD_STATS,
     GW_ROUTE_STRICT,
     NULL,
     {"wait", "since", NULL}},
    {"GET", "/v1/bulk/:id", GW_ROUTE_BULK_GET, AQ_CMD_BULK_GET, GW_ROUTE_STRICT, NULL, {NULL}},
    {"GET",
     "/v1/tasks/:id",
     GW_ROUTE_TASK_GET,
     AQ_CMD_TASK_GET,
     GW_ROUTE_STRICT,
     NULL,
     {"wait", NULL}},
    {"POST",
     "/v1/tasks/:id/cancel",
     GW_ROUTE_TASK_CANCEL,
     AQ_CMD_TASK_CANCEL,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"GET",
     "/v1/tasks/:id/attempts",
     GW_ROUTE_TASK_ATTEMPTS,
     AQ_CMD_TASK_ATTEMPTS,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/v1/tasks/:id/retry",
     GW_ROUTE_TASK_RETRY,
     AQ_CMD_TASK_RETRY,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/v1/tasks/:id/signal",
     GW_ROUTE_TASK_SIGNAL,
     AQ_CMD_TASK_SIGNAL,
     GW_ROUTE_STRICT,
     "signal",
     {NULL}},
    {"POST",
     "/v1/tokens",
     GW_ROUTE_TOKEN_CREATE,
     AQ_CMD_TOKEN_CREATE,
     GW_ROUTE_STRICT,
     "token",
     {NULL}},
    {"GET", "/v1/tokens", GW_ROUTE_TOKEN_LIST, AQ_CMD_TOKEN_LIST, GW_ROUTE_STRICT, NULL, {NULL}},
    {"DELETE",
     "/v1/tokens/:id",
     GW_ROUTE_TOKEN_DELETE,
     AQ_CMD_TOKEN_DELETE,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    //  Scheduled tasks (seed 002): snake_case, as the seed names them
    {"GET",
     "/tasks",
     GW_ROUTE_SCHEDULE_LIST,
     AQ_CMD_SCHEDULE_LIST,
     GW_ROUTE_STRICT,
     NULL,
     {"status", "created_by", "schedule_kind", "limit", "offset", NULL}},
    {"POST",
     "/tasks",
     GW_ROUTE_SCHEDULE_CREATE,
     AQ_CMD_SCHEDULE_CREATE,
     GW_ROUTE_STRICT,
     "schedule",
     {NULL}},
    {"GET",
     "/tasks/:id",
     GW_ROUTE_SCHEDULE_GET,
     AQ_CMD_SCHEDULE_GET,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"PUT",
     "/tasks/:id",
     GW_ROUTE_SCHEDULE_UPDATE,
     AQ_CMD_SCHEDULE_UPDATE,
     GW_ROUTE_STRICT,
     "schedule",
     {NULL}},
    {"POST",
     "/tasks/preview",
     GW_ROUTE_SCHEDULE_PREVIEW_DRAFT,
     AQ_CMD_SCHEDULE_PREVIEW,
     GW_ROUTE_STRICT,
     "schedule",
     {NULL}},
    {"POST",
     "/tasks/:id/run_now",
     GW_ROUTE_SCHEDULE_RUN_NOW,
     AQ_CMD_SCHEDULE_RUN_NOW,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/tasks/:id/snooze",
     GW_ROUTE_SCHEDULE_SNOOZE,
     AQ_CMD_SCHEDULE_SNOOZE,
     GW_ROUTE_STRICT,
     "snooze",
     {NULL}},
    {"POST",
     "/tasks/:id/pause",
     GW_ROUTE_SCHEDULE_PAUSE,
     AQ_CMD_SCHEDULE_PAUSE,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/tasks/:id/resume",
     GW_ROUTE_SCHEDULE_RESUME,
     AQ_CMD_SCHEDULE_RESUME,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/tasks/:id/cancel",
     GW_ROUTE_SCHEDULE_CANCEL,
     AQ_CMD_SCHEDULE_CANCEL,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"GET",
     "/tasks/:id/runs",
     GW_ROUTE_SCHEDULE_RUNS,
     AQ_CMD_SCHEDULE_RUNS,
     GW_ROUTE_STRICT,
     NULL,
     {"limit", "offset", NULL}},
    {"GET",
     "/tasks/:id/preview",
     GW_ROUTE_SCHEDULE_PREVIEW,
     AQ_CMD_SCHEDULE_PREVIEW,
     GW_ROUTE_STRICT,
     NULL,
     {"count", NULL}},
    {"POST", "/events", GW_ROUTE_EVENT_FIRE, AQ_CMD_EVENT_FIRE, GW_ROUTE_STRICT, "event", {NULL}},
    //  Flow control keys (SPEC 11): the key's name travels as "id"
    {"GET",
     "/v1/flow-control",
     GW_ROUTE_FLOW_LIST,
     AQ_CMD_FLOW_LIST,
     GW_ROUTE_STRICT,
     NULL,
     {"limit", "offset", NULL}},
    {"GET",
     "/v1/flow-control/:id",
     GW_ROUTE_FLOW_GET,
     AQ_CMD_FLOW_GET,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"PUT",
     "/v1/flow-control/:id",
     GW_ROUTE_FLOW_SET,
     AQ_CMD_FLOW_SET,
     GW_ROUTE_STRICT,
     "limits",
     {NULL}},
    {"POST",
     "/v1/flow-control/:id/pause",
     GW_ROUTE_FLOW_PAUSE,
     AQ_CMD_FLOW_PAUSE,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"POST",
     "/v1/flow-control/:id/resume",
     GW_ROUTE_FLOW_RESUME,
     AQ_CMD_FLOW_RESUME,
     GW_ROUTE_STRICT,
     NULL,
     {NULL}},
    {"GET", "/healthz", GW_ROUTE_HEALTHZ, 0, GW_ROUTE_LOCAL, NULL, {NULL}},
    {"GET", "/readyz", GW_ROUTE_READYZ, 0, GW_ROUTE_LOCAL, NULL, {NULL}},
    {"GET", "/metrics", GW_ROUTE_METRICS, AQ_CMD_STATS, 0, NULL, {NULL}},
};
#define S_ROUTES (sizeof s_routes / sizeof s_routes[0])

//  --------------------------------------------------------------------------
//  Matching

//  True when path matches pattern (one trailing slash allowed); a ":name"
//  segment matches one non-empty segment, returned in *id, *id_size.
static bool s_match (const char *pattern, const char *path, const char **id, size_t *id_size) {
    const char *p = pattern, *s = path;
    while (*p) {
        if (*p == ':') {
            size_t len = strcspn (s, "/");
            if (len == 0)
                return false;
            *id = s;
            *id_size = len;
            s += len;
            p += strcspn (p, "/");
        } else if (*p++ != *s++)
            return false;
    }
    return s[0] == 0 || (s[0] == '/' && s[1] == 0);
}

int gw_routes_find (const char *method, const char *path, gw_match_t *match) {
    assert (method && path && match);
    memset (match, 0, sizeof *match);
    for (size_t i = 0; i < S_ROUTES; i++) {
        const char *id = NULL;
        size_t id_size = 0;
        if (!s_match (s_routes[i].pattern, path, &id, &id_size))
            continue;
        if (strcmp (s_routes[i].method, method) == 0) {
            match->route = &s_routes[i];
            match->id = id;
            match->id_size = id_size;
            match->allow[0] = 0;
            match->status = 0;
            return 0;
        }
        size_t used = strlen (match->allow);
        snprintf (match->allow + used, sizeof match->allow - used, "%s%s", used ? ", " : "",
                  s_routes[i].method);
    }
    match->status = match->allow[0] ? 405 : 404;
    return -1;
}

//  --------------------------------------------------------------------------
//  Translation

void gw_action_release (gw_action_t *self) {
    aq_writer_release (&self->frame);
    gw_response_release (&self->response);
}

//  Trims blanks around text; sets *start into text and returns the length.
static size_t s_trim (const char *text, const char **start) {
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen (text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    *start = text;
    return len;
}

//  The API key in an Authorization header: the token of "Bearer <token>"
//  (scheme in any case), or the whole value under another scheme, which
//  the broker will refuse. Sets *key into header; returns its length, 0
//  when there is none.
static size_t s_bearer (const char *header, const char **key) {
    if (!header)
        return 0;
    s_trim (header, &header);
    if (strncasecmp (header, "Bearer", 6) == 0 &&
        (header[6] == ' ' || header[6] == '\t' || header[6] == 0))
        header += 6;
    return s_trim (header, key);
}

//  A string field of the request.
static void s_field (gw_action_t *self, const char *name, const char *text, size_t size) {
    aq_write_str (&self->frame, name);
    aq_write_strn (&self->frame, text, size);
    self->fields++;
}

//  traceparent and tracestate as given, when printable ASCII of a sane size
//  (anything else is no trace context: W3C says to ignore it).
static void s_trace_fields (gw_action_t *action, const gw_request_t *req) {
    const char *names[] = {"traceparent", "tracestate"};
    const char *values[] = {req->traceparent, req->tracestate};
    for (int i = 0; i < 2 && values[0]; i++) {
        const char *value;
        size_t size = values[i] ? s_trim (values[i], &value) : 0;
        bool ok = size > 0 && size <= 512;
        for (size_t j = 0; ok && j < size; j++)
            ok = value[j] >= 0x20 && value[j] < 0x7f;
        if (ok)
            s_field (action, names[i], value, size);
    }
}

void gw_routes_translate (const gw_request_t *req, gw_action_t *action) {
    assert (req && action);
    memset (action, 0, sizeof *action);
    gw_response_t *response = &action->response;
    gw_match_t match;
    if (gw_routes_find (req->method, req->path, &match) != 0) {
        gw_response_error (response, match.status,
                           match.status == 404 ? "Not found" : "Method not allowed");
        memcpy (response->allow, match.allow, sizeof match.allow);
        return;
    }
    const gw_route_t *route = action->route = match.route;
    if (route->flags & GW_ROUTE_LOCAL)
        return;

    const char *key;
    size_t key_size = s_bearer (req->authorization, &key);
    if (key_size == 0) {
        gw_response_error (response, 401, "API key required");
        return;
    }
    aq_writer_t *msg = &action->frame;
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       (uint8_t) route->cmd};
    aq_write_raw (msg, header, sizeof header);
    action->map = aq_write_map_open (msg);
    char error[GW_JSON_ERROR_MAX + 64] = "";
    int status = 0, written;
    if (!gw_json_utf8 (key, key_size)) {
        status = 401; //  no such key
        snprintf (error, sizeof error, "Invalid or revoked API key");
        goto out;
    }
    s_field (action, "key", key, key_size);
    if (match.id && !gw_json_utf8 (match.id, match.id_size)) {
        status = 404;
        bool flow = route->id >= GW_ROUTE_FLOW_GET && route->id <= GW_ROUTE_FLOW_RESUME;
        snprintf (error, sizeof error,
                  route->id == GW_ROUTE_TOKEN_DELETE ? "Token not found"
                  : route->id == GW_ROUTE_BULK_GET   ? "Bulk job not found"
                  : flow                             ? "Flow control key not found"
                                                     : "Task not found");
        goto out;
    }
    if (match.id)
        s_field (action, "id", match.id, match.id_size);
    if (route->flags & GW_ROUTE_STRICT) {
        written = gw_query_write (route->params, req->query, req->query_count, msg, &action->wait_s,
                                  error, sizeof error);
        if (written < 0) {
            status = 400;
            goto out;
        }
        action->fields += (uint32_t) written;
    }
    if (route->body) { //  under the name of what it describes
        aq_write_str (msg, route->body);
        int rc = gw_json_parse (req->body, req->body_size, msg, error, sizeof error);
        if (rc != 0) {
            status = rc == -2 ? 500 : 400;
            goto out;
        }
        action->fields++;
    }
    if ((route->id == GW_ROUTE_TASK_CREATE || route->id == GW_ROUTE_TASK_BATCH) &&
        req->idempotency_key) {
        const char *idem;
        size_t idem_size = s_trim (req->idempotency_key, &idem);
        if (idem_size && !gw_json_utf8 (idem, idem_size)) {
            status = 400;
            snprintf (error, sizeof error, "Idempotency-Key must be valid UTF-8");
            goto out;
        }
        if (idem_size)
            s_field (action, "idem", idem, idem_size);
    }
    //  the creator's trace (the broker checks it); a PUT /tasks/:id does not
    //  change a scheduled task's (docs/api.md "Trace context")
    if (route->id == GW_ROUTE_TASK_CREATE || route->id == GW_ROUTE_TASK_BATCH ||
        route->id == GW_ROUTE_SCHEDULE_CREATE)
        s_trace_fields (action, req);
    if (route->id == GW_ROUTE_STATS) //  the team's figures with workers and the last hour
        s_field (action, "view", "console", 7);
out:
    if (status) {
        aq_writer_release (msg);
        gw_response_error (response, status, error);
        return;
    }
    action->cmd = route->cmd;
}

const uint8_t *gw_action_frame (gw_action_t *self, uint64_t corr, size_t *size) {
    assert (self && self->cmd && size);
    aq_write_kv_int (&self->frame, "corr", (int64_t) corr);
    aq_write_map_close (&self->frame, self->map, self->fields + 1);
    return aq_writer_data (&self->frame, size);
}

//  --------------------------------------------------------------------------
//  Selftest

#include "../tests/rig_jansson.h"

static void s_expect_route (const char *method, const char *path, gw_route_id_t id,
                            const char *task_id) {
    gw_match_t match;
    int rc = gw_routes_find (method, path, &match);
    if (rc != 0 || match.route->id != id ||
        (task_id ? match.id_size != strlen (task_id) || memcmp (match.id, task_id, match.id_size)
                 : match.id != NULL)) {
        fprintf (stderr, "gw_routes: %s %s did not match route %d\n", method, path, id);
        assert (false);
    }
}

static void s_expect_miss (const char *method, const char *path, int status, const char *allow) {
    gw_match_t match;
    assert (gw_routes_find (method, path, &match) == -1);
    assert (match.route == NULL);
    if (match.status != status || strcmp (match.allow, allow) != 0) {
        fprintf (stderr, "gw_routes: %s %s gave %d '%s'\n", method, path, match.status,
                 match.allow);
        assert (false);
    }
}

//  Translates a request and checks the local error it gets.
static void s_expect_local (gw_request_t *req, int status, const char *message) {
    gw_action_t action;
    gw_routes_translate (req, &action);
    char expected[256];
    snprintf (expected, sizeof expected, "{\"error\":\"%s\"}", message);
    if (action.cmd != 0 || action.response.status != status ||
        strcmp (action.response.body, expected) != 0) {
        fprintf (stderr, "gw_routes: %s %s gave %d %s, expected %d %s\n", req->method, req->path,
                 action.response.status, action.response.body, status, expected);
        assert (false);
    }
    assert (strcmp (action.response.content_type, "application/json") == 0);
    gw_action_release (&action);
}

//  Translates a request that must go to the broker; returns its message
//  (with corr 7, checked and left out) as compact text (caller frees).
//  The frame is, byte for byte, what the old gateway sent for that text
//  (jansson and the codec, tests/rig_jansson.c).
static char *s_expect_send (gw_request_t *req, int cmd) {
    gw_action_t action;
    gw_routes_translate (req, &action);
    assert (action.cmd == cmd && action.response.status == 0);
    size_t size;
    const uint8_t *frame = gw_action_frame (&action, 7, &size);
    assert (frame && size > AQ_PROTO_HEADER && frame[0] == AQ_PROTO_SIG0);
    assert (frame[1] == AQ_PROTO_SIG1 && frame[2] == AQ_PROTO_VERSION && frame[3] == cmd);
    aq_node_t msg;
    assert (aq_msg_parse (frame + AQ_PROTO_HEADER, size - AQ_PROTO_HEADER, &msg) == 0);
    char *text = aq_json_dumps (&msg);
    size_t old_size;
    uint8_t *old = rig_jansson_frame (cmd, text, &old_size);
    assert (old_size == size && memcmp (old, frame, size) == 0);
    free (old);
    const char *corr = ",\"corr\":7}";
    size_t length = strlen (text), tail = strlen (corr);
    assert (length > tail && strcmp (text + length - tail, corr) == 0);
    strcpy (text + length - tail, "}");
    gw_action_release (&action);
    return text;
}

//  The message req translates to is cmd with exactly this JSON text.
static void s_expect_message (gw_request_t *req, int cmd, const char *want) {
    char *text = s_expect_send (req, cmd);
    if (strcmp (text, want) != 0) {
        fprintf (stderr, "gw_routes: %s %s sent %s, not %s\n", req->method, req->path, text, want);
        assert (false);
    }
    free (text);
}

//  Sets the query of req to the parameters given, {name, value} each.
#define S_QUERY(req, ...)                                                                          \
    do {                                                                                           \
        static const gw_param_t params_[] = {__VA_ARGS__};                                         \
        (req).query = params_;                                                                     \
        (req).query_count = sizeof params_ / sizeof params_[0];                                    \
    } while (0)

void gw_routes_test (bool verbose) {
    if (verbose)
        printf (" * gw_routes: ");

    //  Path matching
    s_expect_route ("POST", "/v1/tasks", GW_ROUTE_TASK_CREATE, NULL);
    s_expect_route ("GET", "/v1/tasks", GW_ROUTE_TASK_LIST, NULL);
    s_expect_route ("GET", "/v1/tasks/", GW_ROUTE_TASK_LIST, NULL);
    s_expect_route ("GET", "/v1/tasks/550e8400-e29b-41d4-a716-446655440000", GW_ROUTE_TASK_GET,
                    "550e8400-e29b-41d4-a716-446655440000");
    s_expect_route ("POST", "/v1/tasks/abc/cancel", GW_ROUTE_TASK_CANCEL, "abc");
    s_expect_route ("POST", "/v1/tasks/abc/cancel/", GW_ROUTE_TASK_CANCEL, "abc");
    s_expect_route ("GET", "/v1/tasks/abc/attempts", GW_ROUTE_TASK_ATTEMPTS, "abc");
    s_expect_route ("POST", "/v1/tasks/abc/retry", GW_ROUTE_TASK_RETRY, "abc");
    s_expect_route ("GET", "/healthz", GW_ROUTE_HEALTHZ, NULL);
    s_expect_route ("GET", "/metrics", GW_ROUTE_METRICS, NULL);
    s_expect_route ("POST", "/tasks", GW_ROUTE_SCHEDULE_CREATE, NULL);
    s_expect_route ("GET", "/tasks", GW_ROUTE_SCHEDULE_LIST, NULL);
    s_expect_route ("GET", "/tasks/", GW_ROUTE_SCHEDULE_LIST, NULL);
    s_expect_route ("GET", "/tasks/s1", GW_ROUTE_SCHEDULE_GET, "s1");
    s_expect_route ("PUT", "/tasks/s1", GW_ROUTE_SCHEDULE_UPDATE, "s1");
    s_expect_route ("PUT", "/tasks/s1/", GW_ROUTE_SCHEDULE_UPDATE, "s1");
    s_expect_route ("POST", "/tasks/s1/run_now", GW_ROUTE_SCHEDULE_RUN_NOW, "s1");
    s_expect_route ("POST", "/tasks/s1/snooze", GW_ROUTE_SCHEDULE_SNOOZE, "s1");
    s_expect_route ("POST", "/tasks/s1/pause", GW_ROUTE_SCHEDULE_PAUSE, "s1");
    s_expect_route ("POST", "/tasks/s1/resume", GW_ROUTE_SCHEDULE_RESUME, "s1");
    s_expect_route ("POST", "/tasks/s1/cancel", GW_ROUTE_SCHEDULE_CANCEL, "s1");
    s_expect_route ("GET", "/tasks/s1/runs", GW_ROUTE_SCHEDULE_RUNS, "s1");
    s_expect_route ("GET", "/tasks/s1/preview", GW_ROUTE_SCHEDULE_PREVIEW, "s1");
    s_expect_route ("POST", "/events", GW_ROUTE_EVENT_FIRE, NULL);
    s_expect_route ("GET", "/v1/flow-control", GW_ROUTE_FLOW_LIST, NULL);
    s_expect_route ("GET", "/v1/flow-control/fal-prod", GW_ROUTE_FLOW_GET, "fal-prod");
    s_expect_route ("PUT", "/v1/flow-control/fal:eu.1", GW_ROUTE_FLOW_SET, "fal:eu.1");
    s_expect_route ("POST", "/v1/flow-control/k/pause", GW_ROUTE_FLOW_PAUSE, "k");
    s_expect_route ("POST", "/v1/flow-control/k/resume/", GW_ROUTE_FLOW_RESUME, "k");
    s_expect_miss ("DELETE", "/v1/flow-control/k", 405, "GET, PUT");
    s_expect_miss ("GET", "/v1/flow-control/k/pause", 405, "POST");
    //  "preview" is a literal for POST, an id for the methods of /tasks/:id
    s_expect_route ("POST", "/tasks/preview", GW_ROUTE_SCHEDULE_PREVIEW_DRAFT, NULL);
    s_expect_route ("POST", "/tasks/preview/", GW_ROUTE_SCHEDULE_PREVIEW_DRAFT, NULL);
    s_expect_route ("GET", "/tasks/preview", GW_ROUTE_SCHEDULE_GET, "preview");
    s_expect_route ("PUT", "/tasks/preview", GW_ROUTE_SCHEDULE_UPDATE, "preview");
    s_expect_route ("GET", "/tasks/preview/preview", GW_ROUTE_SCHEDULE_PREVIEW, "preview");
    s_expect_route ("POST", "/tasks/preview/cancel", GW_ROUTE_SCHEDULE_CANCEL, "preview");

    //  404 and 405 with the methods the path accepts
    s_expect_miss ("GET", "/", 404, "");
    s_expect_miss ("GET", "/v1", 404, "");
    s_expect_miss ("GET", "/v1/taskss", 404, "");
    s_expect_miss ("GET", "/v1/tasks//cancel", 404, "");
    s_expect_miss ("GET", "/v1/tasks/abc/cancel/x", 404, "");
    s_expect_miss ("GET", "/v1/tasks/abc//", 404, "");
    s_expect_miss ("GET", "/V1/TASKS", 404, "");
    s_expect_miss ("DELETE", "/v1/tasks", 405, "GET, POST");
    s_expect_miss ("PUT", "/v1/tasks/abc", 405, "GET");
    s_expect_miss ("GET", "/v1/tasks/abc/cancel", 405, "POST");
    s_expect_miss ("get", "/healthz", 405, "GET");
    s_expect_miss ("POST", "/metrics", 405, "GET");
    s_expect_miss ("GET", "/tasks//runs", 404, "");
    s_expect_miss ("GET", "/tasks/s1/attempts", 404, "");
    s_expect_miss ("POST", "/tasks/s1/retry", 404, "");
    s_expect_miss ("POST", "/tasks/s1/run_now/x", 404, "");
    s_expect_miss ("POST", "/task", 404, "");
    s_expect_miss ("POST", "/events/x", 404, "");
    s_expect_miss ("DELETE", "/tasks", 405, "GET, POST");
    s_expect_miss ("PUT", "/tasks", 405, "GET, POST");
    s_expect_miss ("DELETE", "/tasks/x", 405, "GET, PUT");
    s_expect_miss ("POST", "/tasks/x", 405, "GET, PUT");
    s_expect_miss ("DELETE", "/tasks/preview", 405, "GET, PUT, POST");
    s_expect_miss ("GET", "/tasks/x/run_now", 405, "POST");
    s_expect_miss ("PUT", "/tasks/x/snooze", 405, "POST");
    s_expect_miss ("GET", "/tasks/x/cancel", 405, "POST");
    s_expect_miss ("POST", "/tasks/x/runs", 405, "GET");
    s_expect_miss ("POST", "/tasks/x/preview", 405, "GET");
    s_expect_miss ("GET", "/events", 405, "POST");
    s_expect_miss ("PUT", "/v1/tasks/x", 405, "GET");

    gw_request_t req = {.method = "GET", .path = "/nowhere"};
    s_expect_local (&req, 404, "Not found");
    req.path = "/v1/tasks/abc/attempts";
    req.method = "DELETE";
    gw_action_t action;
    gw_routes_translate (&req, &action);
    assert (action.response.status == 405 && strcmp (action.response.allow, "GET") == 0);
    assert (strcmp (action.response.body, "{\"error\":\"Method not allowed\"}") == 0);
    gw_action_release (&action);

    //  /healthz is local: no key, nothing to send, no response set
    req = (gw_request_t){.method = "GET", .path = "/healthz"};
    gw_routes_translate (&req, &action);
    assert (action.route->id == GW_ROUTE_HEALTHZ && action.cmd == 0 && !action.frame.data);
    assert (action.response.status == 0);
    gw_action_release (&action);

    //  /readyz is local too (response.c answers it)
    req = (gw_request_t){.method = "GET", .path = "/readyz"};
    gw_routes_translate (&req, &action);
    assert (action.route->id == GW_ROUTE_READYZ && action.cmd == 0 && !action.frame.data);
    assert (action.response.status == 0);
    gw_action_release (&action);
    s_expect_miss ("POST", "/readyz", 405, "GET");

    //  Keys: missing, blank and bare scheme are local 401s
    req = (gw_request_t){.method = "GET", .path = "/v1/tasks/abc"};
    s_expect_local (&req, 401, "API key required");
    req.authorization = "";
    s_expect_local (&req, 401, "API key required");
    req.authorization = "Bearer   ";
    s_expect_local (&req, 401, "API key required");
    req.path = "/metrics";
    req.authorization = NULL;
    s_expect_local (&req, 401, "API key required");
    req.path = "/v1/tasks/abc";
    req.authorization = "Bearer \xff\xfe";
    s_expect_local (&req, 401, "Invalid or revoked API key");

    //  Requests to the broker, key from "Bearer" in any case
    req.authorization = "bearer  aq_secret ";
    s_expect_message (&req, AQ_CMD_TASK_GET, "{\"key\":\"aq_secret\",\"id\":\"abc\"}");
    req.authorization = "Basic dXNlcg=="; //  passed on, for the broker to refuse
    s_expect_message (&req, AQ_CMD_TASK_GET, "{\"key\":\"Basic dXNlcg==\",\"id\":\"abc\"}");

    //  ?wait: 0..25 in digits, else the seed-style message
    req.authorization = "Bearer k";
    S_QUERY (req, {"wait", "20"});
    gw_routes_translate (&req, &action);
    assert (action.cmd == AQ_CMD_TASK_GET && action.wait_s == 20);
    gw_action_release (&action);
    s_expect_message (&req, AQ_CMD_TASK_GET, "{\"key\":\"k\",\"id\":\"abc\",\"wait\":20}");
    S_QUERY (req, {"wait", "26"}); //  the rest of the checks: query.c
    s_expect_local (&req, 400, "wait must be a number between 0 and 25");
    S_QUERY (req, {"limit", "5"});
    s_expect_local (&req, 400, "Unknown query parameter: limit");

    //  List: the four parameters go through as strings; others are refused
    req = (gw_request_t){.method = "GET", .path = "/v1/tasks", .authorization = "Bearer k"};
    S_QUERY (req, {"status", "pending"}, {"limit", "10"}, {"offset", "20"}, {"sortOrder", "asc"});
    s_expect_message (&req, AQ_CMD_TASK_LIST,
                      "{\"key\":\"k\",\"status\":\"pending\",\"limit\":\"10\","
                      "\"offset\":\"20\",\"sortOrder\":\"asc\"}");
    S_QUERY (req, {"label", "env:prod"}, {"targetUrl", "https://a.example.com/"},
             {"label", "team:search"}, {"createdAfter", "2024-01-15"});
    s_expect_message (&req, AQ_CMD_TASK_LIST,
                      "{\"key\":\"k\",\"label\":[\"env:prod\",\"team:search\"],\"targetUrl\":"
                      "\"https://a.example.com/\",\"createdAfter\":\"2024-01-15\"}");
    S_QUERY (req, {"provider", "fal"}, {"provider", "replicate"});
    s_expect_local (&req, 400, "Duplicate query parameter: provider");
    S_QUERY (req, {"status", "pending"}, {"x", "1"});
    s_expect_local (&req, 400, "Unknown query parameter: x");
    S_QUERY (req, {"status", "p\xc3\x28"});
    s_expect_local (&req, 400, "status must be valid UTF-8");
    req.query = NULL;
    req.query_count = 0;

    //  Create: the body object as "task", Idempotency-Key as "idem"
    req = (gw_request_t){.method = "POST", .path = "/v1/tasks", .authorization = "Bearer k"};
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.body = "[1]";
    req.body_size = 3;
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.body = "{\"targetUrl\": \"https://x\"";
    req.body_size = strlen (req.body);
    s_expect_local (&req, 400, "Invalid JSON at line 1, column 25");
    req.body = "{\"targetUrl\": \"https://api.example.com/webhook\", \"delayuntil\": 1}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_TASK_CREATE,
                      "{\"key\":\"k\",\"task\":{\"targetUrl\":\"https://api.example.com/"
                      "webhook\",\"delayuntil\":1}}");
    req.idempotency_key = " order-12345 ";
    char *text = s_expect_send (&req, AQ_CMD_TASK_CREATE);
    assert (strstr (text, ",\"idem\":\"order-12345\"}"));
    free (text);
    req.idempotency_key = "";
    text = s_expect_send (&req, AQ_CMD_TASK_CREATE);
    assert (!strstr (text, "idem"));
    free (text);
    S_QUERY (req, {"wait", "1"});
    s_expect_local (&req, 400, "Unknown query parameter: wait");

    //  Batch and bulk: their bodies as "batch" and "bulk", the batch's key as "idem"
    req = (gw_request_t){.method = "POST",
                         .path = "/v1/tasks/batch",
                         .authorization = "Bearer k",
                         .idempotency_key = "import-7",
                         .body = "{\"tasks\": [{\"targetUrl\": \"https://x/\"}]}"};
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_TASK_BATCH,
                      "{\"key\":\"k\",\"batch\":{\"tasks\":[{\"targetUrl\":\"https://x/\"}]},"
                      "\"idem\":\"import-7\"}");
    req.path = "/v1/tasks/bulk";
    req.body = "{\"action\": \"retry\", \"ids\": []}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_TASK_BULK,
                      "{\"key\":\"k\",\"bulk\":{\"action\":\"retry\",\"ids\":[]}}");
    req.method = "GET";
    req.path = "/v1/bulk/b1";
    s_expect_message (&req, AQ_CMD_BULK_GET, "{\"key\":\"k\",\"id\":\"b1\"}");
    req.path = "/v1/bulk/\xc3\x28";
    s_expect_local (&req, 404, "Bulk job not found");
    s_expect_miss ("DELETE", "/v1/bulk/b1", 405, "GET");
    s_expect_miss ("GET", "/v1/tasks/bulk/x", 404, "");

    //  whoami and the console's stats: the key alone, plus the view
    req = (gw_request_t){.method = "GET", .path = "/v1/whoami", .authorization = "Bearer k"};
    s_expect_message (&req, AQ_CMD_AUTH, "{\"key\":\"k\"}");
    req.path = "/v1/stats";
    s_expect_message (&req, AQ_CMD_STATS, "{\"key\":\"k\",\"view\":\"console\"}");
    S_QUERY (req, {"wait", "25"}, {"since", "41"}); //  a long poll
    s_expect_message (&req, AQ_CMD_STATS,
                      "{\"key\":\"k\",\"wait\":25,\"since\":\"41\",\"view\":\"console\"}");
    S_QUERY (req, {"wait", "26"});
    s_expect_local (&req, 400, "wait must be a number between 0 and 25");
    S_QUERY (req, {"x", "1"});
    s_expect_local (&req, 400, "Unknown query parameter: x");
    req.query = NULL;
    req.query_count = 0;
    req.authorization = NULL;
    s_expect_local (&req, 401, "API key required");
    s_expect_miss ("POST", "/v1/whoami", 405, "GET");

    //  Cancel, retry, attempts carry the id; a body there is ignored
    req = (gw_request_t){.method = "POST",
                         .path = "/v1/tasks/t1/cancel",
                         .authorization = "Bearer k",
                         .body = "not json",
                         .body_size = 8};
    s_expect_message (&req, AQ_CMD_TASK_CANCEL, "{\"key\":\"k\",\"id\":\"t1\"}");
    req.path = "/v1/tasks/t1/retry";
    free (s_expect_send (&req, AQ_CMD_TASK_RETRY));
    req.method = "GET";
    req.path = "/v1/tasks/t1/attempts";
    free (s_expect_send (&req, AQ_CMD_TASK_ATTEMPTS));
    req.path = "/v1/tasks/\xc3\x28";
    s_expect_local (&req, 404, "Task not found");
    req.path = "/v1/flow-control/\xc3\x28";
    s_expect_local (&req, 404, "Flow control key not found");
    req.path = "/v1/flow-control/fal-prod";
    s_expect_message (&req, AQ_CMD_FLOW_GET, "{\"key\":\"k\",\"id\":\"fal-prod\"}");
    req = (gw_request_t){.method = "PUT",
                         .path = "/v1/flow-control/fal-prod",
                         .authorization = "Bearer k",
                         .body = "{\"rate\": 10, \"parallelism\": 4}",
                         .body_size = 30};
    s_expect_message (&req, AQ_CMD_FLOW_SET,
                      "{\"key\":\"k\",\"id\":\"fal-prod\",\"limits\":{\"rate\":10,"
                      "\"parallelism\":4}}");
    req.body = "[]";
    req.body_size = 2;
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req = (gw_request_t){.method = "GET", .path = "/v1/flow-control", .authorization = "Bearer k"};
    S_QUERY (req, {"limit", "10"}, {"offset", "20"});
    s_expect_message (&req, AQ_CMD_FLOW_LIST, "{\"key\":\"k\",\"limit\":\"10\",\"offset\":\"20\"}");
    req = (gw_request_t){.method = "GET", .path = "/metrics", .authorization = "Bearer k"};
    S_QUERY (req, {"anything", "1"});
    s_expect_message (&req, AQ_CMD_STATS, "{\"key\":\"k\"}");

    //  Scheduled tasks: bodies travel as "schedule", "snooze", "event"; the
    //  trace headers with POST /tasks only
    req = (gw_request_t){.method = "POST",
                         .path = "/tasks",
                         .authorization = "Bearer k",
                         .idempotency_key = "order-1",
                         .traceparent = " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                         .tracestate = "congo=t61rcWkgMzE"};
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.body = "{\"title\": \"Nightly\", \"schedule_kind\": \"cron\"}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_SCHEDULE_CREATE,
                      "{\"key\":\"k\",\"schedule\":{\"title\":\"Nightly\","
                      "\"schedule_kind\":\"cron\"},\"traceparent\":\"00-"
                      "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\",\"tracestate\":"
                      "\"congo=t61rcWkgMzE\"}");
    req.method = "PUT";
    req.path = "/tasks/s1";
    s_expect_message (&req, AQ_CMD_SCHEDULE_UPDATE,
                      "{\"key\":\"k\",\"id\":\"s1\",\"schedule\":{\"title\":\"Nightly\","
                      "\"schedule_kind\":\"cron\"}}");
    req.method = "POST";
    req.path = "/tasks/preview";
    s_expect_message (&req, AQ_CMD_SCHEDULE_PREVIEW,
                      "{\"key\":\"k\",\"schedule\":{\"title\":\"Nightly\","
                      "\"schedule_kind\":\"cron\"}}");
    req.path = "/tasks/s1/snooze";
    req.body = "{\"delay_seconds\": 3600}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_SCHEDULE_SNOOZE,
                      "{\"key\":\"k\",\"id\":\"s1\",\"snooze\":{\"delay_seconds\":3600}}");
    req.path = "/events";
    req.body = "{\"name\": \"invoice.paid\", \"data\": {\"id\": 7}}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_EVENT_FIRE,
                      "{\"key\":\"k\",\"event\":{\"name\":\"invoice.paid\","
                      "\"data\":{\"id\":7}}}");
    req.body = "[]";
    req.body_size = 2;
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.method = "PUT";
    req.path = "/tasks/s1";
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.path = "/tasks/\xc3\x28";
    s_expect_local (&req, 404, "Task not found");

    //  run_now, pause, resume, cancel: the id alone, a body is ignored
    req = (gw_request_t){.method = "POST",
                         .path = "/tasks/s1/run_now",
                         .authorization = "Bearer k",
                         .body = "not json",
                         .body_size = 8};
    struct {
        const char *path;
        int cmd;
    } idonly[] = {{"/tasks/s1/run_now", AQ_CMD_SCHEDULE_RUN_NOW},
                  {"/tasks/s1/pause", AQ_CMD_SCHEDULE_PAUSE},
                  {"/tasks/s1/resume", AQ_CMD_SCHEDULE_RESUME},
                  {"/tasks/s1/cancel", AQ_CMD_SCHEDULE_CANCEL}};
    for (size_t i = 0; i < sizeof idonly / sizeof idonly[0]; i++) {
        req.path = idonly[i].path;
        s_expect_message (&req, idonly[i].cmd, "{\"key\":\"k\",\"id\":\"s1\"}");
    }
    req.method = "GET";
    req.path = "/tasks/s1";
    s_expect_message (&req, AQ_CMD_SCHEDULE_GET, "{\"key\":\"k\",\"id\":\"s1\"}");
    req.authorization = NULL;
    s_expect_local (&req, 401, "API key required");
    req.authorization = "Bearer k";

    //  Query parameters: the list's five, runs' limit and offset, preview's
    //  count, as strings; any other is refused
    req = (gw_request_t){.method = "GET", .path = "/tasks", .authorization = "Bearer k"};
    S_QUERY (req, {"status", "active"}, {"created_by", "550e8400-e29b-41d4-a716-446655440000"},
             {"schedule_kind", "cron"}, {"limit", "10"}, {"offset", "20"});
    s_expect_message (&req, AQ_CMD_SCHEDULE_LIST,
                      "{\"key\":\"k\",\"status\":\"active\",\"created_by\":"
                      "\"550e8400-e29b-41d4-a716-446655440000\",\"schedule_kind\":\"cron\","
                      "\"limit\":\"10\",\"offset\":\"20\"}");
    S_QUERY (req, {"sortOrder", "asc"});
    s_expect_local (&req, 400, "Unknown query parameter: sortOrder");
    S_QUERY (req, {"limit", "1"}, {"limit", "2"});
    s_expect_local (&req, 400, "Duplicate query parameter: limit");
    req.path = "/tasks/s1/runs";
    s_expect_local (&req, 400, "Duplicate query parameter: limit");
    S_QUERY (req, {"limit", "5"}, {"offset", "x"});
    s_expect_message (&req, AQ_CMD_SCHEDULE_RUNS,
                      "{\"key\":\"k\",\"id\":\"s1\",\"limit\":\"5\",\"offset\":\"x\"}");
    req.path = "/tasks/s1/preview";
    S_QUERY (req, {"count", "10"});
    s_expect_message (&req, AQ_CMD_SCHEDULE_PREVIEW,
                      "{\"key\":\"k\",\"id\":\"s1\",\"count\":\"10\"}");
    req.path = "/tasks/s1";
    s_expect_local (&req, 400, "Unknown query parameter: count");
    req.method = "POST";
    req.path = "/tasks/preview";
    req.body = "{}";
    req.body_size = 2;
    s_expect_local (&req, 400, "Unknown query parameter: count");

    if (verbose)
        printf ("OK\n");
}
