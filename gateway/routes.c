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

#include "aq_codec.h"

#include <assert.h>
#include <ctype.h>
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
     {"status", "limit", "offset", "sortOrder", NULL}},
    {"POST",
     "/v1/tasks",
     GW_ROUTE_TASK_CREATE,
     AQ_CMD_TASK_CREATE,
     GW_ROUTE_STRICT,
     "task",
     {NULL}},
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

#define S_WAIT_MAX 25 //  seconds a GET may be held (seed 000)

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
//  Responses

static const char s_json_type[] = "application/json";

static int s_response_json (gw_response_t *self, int status, const json_t *body) {
    gw_response_release (self);
    self->body = gw_json_dump (body, &self->body_size);
    if (!self->body)
        return -1;
    self->status = status;
    self->content_type = s_json_type;
    return 0;
}

int gw_response_error (gw_response_t *self, int status, const char *message) {
    json_t *body = json_pack ("{s:s}", "error", message);
    int rc = body ? s_response_json (self, status, body) : -1;
    json_decref (body);
    return rc;
}

void gw_response_release (gw_response_t *self) {
    free (self->body);
    self->body = NULL;
    self->body_size = 0;
    self->status = 0;
    self->retry_after = 0;
    self->allow[0] = 0;
}

void gw_action_release (gw_action_t *self) {
    json_decref (self->msg);
    self->msg = NULL;
    gw_response_release (&self->response);
}

static const char *s_reason (int status) {
    switch (status) {
    case 400:
        return "Bad request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Access denied";
    case 404:
        return "Not found";
    case 409:
        return "Conflict";
    case 413:
        return "Request body too large";
    case 429:
        return "Rate limit exceeded";
    case 503:
        return "Service unavailable";
    default:
        return status < 500 ? "Request failed" : "Internal error";
    }
}

//  --------------------------------------------------------------------------
//  Translation

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

//  Copies name into buf for an error message: printable ASCII, at most 64 bytes.
static const char *s_printable (const char *name, char *buf, size_t size) {
    size_t i = 0;
    for (; name[i] && i + 1 < size && i < 64; i++)
        buf[i] = isprint ((unsigned char) name[i]) ? name[i] : '?';
    buf[i] = 0;
    return buf;
}

//  Parses a wait value: 0..25 in plain digits. Returns it, or -1.
static int s_wait (const char *text) {
    size_t len = strlen (text);
    if (len == 0 || len > 4 || strspn (text, "0123456789") != len)
        return -1;
    int wait = atoi (text);
    return wait <= S_WAIT_MAX ? wait : -1;
}

//  Checks the query pairs against route and copies them into msg (strings,
//  wait as an integer). Returns 0, or -1 with the client message in error.
static int s_query (const gw_route_t *route, const json_t *query, json_t *msg, int *wait,
                    char *error, size_t size) {
    size_t index;
    json_t *pair;
    char name_buf[80];
    json_array_foreach (query, index, pair) {
        const char *name = json_string_value (json_array_get (pair, 0));
        const char *value = json_string_value (json_array_get (pair, 1));
        if (!name)
            continue;
        if (!value)
            value = "";
        bool known = false;
        for (int i = 0; route->params[i]; i++)
            if (strcmp (route->params[i], name) == 0)
                known = true;
        if (!known) {
            snprintf (error, size, "Unknown query parameter: %s",
                      s_printable (name, name_buf, sizeof name_buf));
            return -1;
        }
        if (json_object_get (msg, name)) {
            snprintf (error, size, "Duplicate query parameter: %s", name);
            return -1;
        }
        if (strcmp (name, "wait") == 0) {
            *wait = s_wait (value);
            if (*wait < 0) {
                snprintf (error, size, "wait must be a number between 0 and %d", S_WAIT_MAX);
                return -1;
            }
            json_object_set_new (msg, name, json_integer (*wait));
        } else {
            json_t *text = json_string (value);
            if (!text) {
                snprintf (error, size, "%s must be valid UTF-8", name);
                return -1;
            }
            json_object_set_new (msg, name, text);
        }
    }
    return 0;
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
    json_t *msg = json_object ();
    char error[GW_JSON_ERROR_MAX + 64] = "";
    int status = 0;
    if (!msg || json_object_set_new (msg, "key", json_stringn (key, key_size)) != 0) {
        status = 401; //  not UTF-8: no such key
        snprintf (error, sizeof error, "Invalid or revoked API key");
        goto out;
    }
    if (match.id && json_object_set_new (msg, "id", json_stringn (match.id, match.id_size)) != 0) {
        status = 404;
        bool flow = route->id >= GW_ROUTE_FLOW_GET && route->id <= GW_ROUTE_FLOW_RESUME;
        snprintf (error, sizeof error,
                  route->id == GW_ROUTE_TOKEN_DELETE ? "Token not found"
                  : flow                             ? "Flow control key not found"
                                                     : "Task not found");
        goto out;
    }
    if ((route->flags & GW_ROUTE_STRICT) &&
        s_query (route, req->query, msg, &action->wait_s, error, sizeof error) != 0) {
        status = 400;
        goto out;
    }
    if (route->body) { //  under the name of what it describes
        json_t *object = gw_json_parse_object (req->body, req->body_size, error, sizeof error);
        if (!object) {
            status = 400;
            goto out;
        }
        json_object_set_new (msg, route->body, object);
    }
    if (route->id == GW_ROUTE_TASK_CREATE && req->idempotency_key) {
        const char *idem;
        size_t idem_size = s_trim (req->idempotency_key, &idem);
        if (idem_size && json_object_set_new (msg, "idem", json_stringn (idem, idem_size)) != 0) {
            status = 400;
            snprintf (error, sizeof error, "Idempotency-Key must be valid UTF-8");
            goto out;
        }
    }
out:
    if (status) {
        json_decref (msg);
        gw_response_error (response, status, error);
        return;
    }
    action->cmd = route->cmd;
    action->msg = msg;
}

int gw_routes_reply (const gw_route_t *route, const json_t *reply, const json_t *gateway,
                     gw_response_t *response) {
    int64_t status = aq_field_int (reply, "status", 0);
    if (status < 200 || status > 599)
        return gw_response_error (response, 502, "Bad reply from broker");
    const json_t *body = json_object_get (reply, "body");
    const char *error = aq_field_str (reply, "error");
    int rc;
    if (route && route->id == GW_ROUTE_METRICS && status == 200 && json_is_object (body)) {
        gw_response_release (response);
        response->body = gw_metrics_render (body, gateway);
        response->body_size = response->body ? strlen (response->body) : 0;
        response->content_type = GW_METRICS_CONTENT_TYPE;
        response->status = 200;
        rc = response->body ? 0 : -1;
    } else if (body && !json_is_null (body))
        rc = s_response_json (response, (int) status, body);
    else if (error || status >= 400)
        rc = gw_response_error (response, (int) status, error ? error : s_reason ((int) status));
    else {
        json_t *empty = json_object ();
        rc = s_response_json (response, (int) status, empty);
        json_decref (empty);
    }
    int64_t retry_after = aq_field_int (reply, "retryAfter", 0);
    if (rc == 0 && retry_after > 0)
        response->retry_after = retry_after > 86400 ? 86400 : (int) retry_after;
    return rc;
}

int gw_routes_healthz (bool broker_ok, gw_response_t *response) {
    json_t *body =
        json_pack ("{s:s, s:s}", "status", "ok", "broker", broker_ok ? "ok" : "unreachable");
    int rc = body ? s_response_json (response, 200, body) : -1;
    json_decref (body);
    return rc;
}

int gw_routes_readyz (bool broker_ok, gw_response_t *response) {
    if (!broker_ok) {
        int rc = gw_response_error (response, 503, "Broker unavailable");
        response->retry_after = 1;
        return rc;
    }
    json_t *body = json_pack ("{s:s}", "status", "ready");
    int rc = body ? s_response_json (response, 200, body) : -1;
    json_decref (body);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

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
//  as compact text (caller frees).
static char *s_expect_send (gw_request_t *req, int cmd) {
    gw_action_t action;
    gw_routes_translate (req, &action);
    assert (action.cmd == cmd);
    assert (action.msg && action.response.status == 0);
    char *text = gw_json_dump (action.msg, NULL);
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

static json_t *s_query_of (const char *a, const char *b, const char *c, const char *d) {
    json_t *query = json_array ();
    if (a)
        json_array_append_new (query, json_pack ("[ss]", a, b));
    if (c)
        json_array_append_new (query, json_pack ("[ss]", c, d));
    return query;
}

static char *s_reply_text (const char *reply_text, int *status, int *retry_after,
                           const char **type) {
    json_t *reply = json_loads (reply_text, 0, NULL);
    assert (reply);
    gw_response_t response = {0};
    gw_match_t match;
    assert (gw_routes_find ("GET", "/v1/tasks/x", &match) == 0);
    assert (gw_routes_reply (match.route, reply, NULL, &response) == 0);
    *status = response.status;
    *retry_after = response.retry_after;
    *type = response.content_type;
    json_decref (reply);
    return response.body; //  taken over from response
}

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
    assert (action.route->id == GW_ROUTE_HEALTHZ && action.cmd == 0 && !action.msg);
    assert (action.response.status == 0);
    gw_action_release (&action);
    gw_response_t response = {0};
    assert (gw_routes_healthz (false, &response) == 0);
    assert (strcmp (response.body, "{\"status\":\"ok\",\"broker\":\"unreachable\"}") == 0);
    gw_response_release (&response);

    //  /readyz is local too: 503 until the broker answers, then 200
    req = (gw_request_t){.method = "GET", .path = "/readyz"};
    gw_routes_translate (&req, &action);
    assert (action.route->id == GW_ROUTE_READYZ && action.cmd == 0 && !action.msg);
    assert (action.response.status == 0);
    gw_action_release (&action);
    s_expect_miss ("POST", "/readyz", 405, "GET");
    assert (gw_routes_readyz (false, &response) == 0);
    assert (response.status == 503 && response.retry_after == 1);
    assert (strcmp (response.body, "{\"error\":\"Broker unavailable\"}") == 0);
    gw_response_release (&response);
    assert (gw_routes_readyz (true, &response) == 0);
    assert (response.status == 200 && strcmp (response.body, "{\"status\":\"ready\"}") == 0);
    gw_response_release (&response);

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
    json_t *query = s_query_of ("wait", "20", NULL, NULL);
    req.query = query;
    gw_routes_translate (&req, &action);
    assert (action.cmd == AQ_CMD_TASK_GET && action.wait_s == 20);
    assert (json_integer_value (json_object_get (action.msg, "wait")) == 20);
    gw_action_release (&action);
    json_decref (query);
    const char *bad_waits[] = {"26", "-1", "", "2.5", "abc", "1e1", "99999", " 5", NULL};
    for (int i = 0; bad_waits[i]; i++) {
        query = s_query_of ("wait", bad_waits[i], NULL, NULL);
        req.query = query;
        s_expect_local (&req, 400, "wait must be a number between 0 and 25");
        json_decref (query);
    }
    query = s_query_of ("wait", "0", "wait", "1");
    req.query = query;
    s_expect_local (&req, 400, "Duplicate query parameter: wait");
    json_decref (query);
    query = s_query_of ("limit", "5", NULL, NULL);
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: limit");
    json_decref (query);

    //  List: the four parameters go through as strings; others are refused
    req = (gw_request_t){.method = "GET", .path = "/v1/tasks", .authorization = "Bearer k"};
    query = s_query_of ("status", "pending", "limit", "10");
    json_array_append_new (query, json_pack ("[ss]", "offset", "20"));
    json_array_append_new (query, json_pack ("[ss]", "sortOrder", "asc"));
    req.query = query;
    s_expect_message (&req, AQ_CMD_TASK_LIST,
                      "{\"key\":\"k\",\"status\":\"pending\",\"limit\":\"10\","
                      "\"offset\":\"20\",\"sortOrder\":\"asc\"}");
    json_decref (query);
    query = s_query_of ("status", "pending", "x", "1");
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: x");
    json_decref (query);
    query = json_pack ("[[sn]]", "sortorder");
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: sortorder");
    json_decref (query);
    query = json_pack ("[[os]]", json_string_nocheck ("bad\x01name\xff"), "1");
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: bad?name?");
    json_decref (query);

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
    query = s_query_of ("wait", "1", NULL, NULL);
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: wait");
    json_decref (query);

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
    query = s_query_of ("limit", "10", "offset", "20");
    req.query = query;
    s_expect_message (&req, AQ_CMD_FLOW_LIST, "{\"key\":\"k\",\"limit\":\"10\",\"offset\":\"20\"}");
    json_decref (query);
    req = (gw_request_t){.method = "GET", .path = "/metrics", .authorization = "Bearer k"};
    req.path = "/metrics";
    query = s_query_of ("anything", "1", NULL, NULL);
    req.query = query;
    s_expect_message (&req, AQ_CMD_STATS, "{\"key\":\"k\"}");
    json_decref (query);

    //  Scheduled tasks: bodies travel as "schedule", "snooze", "event"
    req = (gw_request_t){.method = "POST",
                         .path = "/tasks",
                         .authorization = "Bearer k",
                         .idempotency_key = "order-1"};
    s_expect_local (&req, 400, "Request body must be a JSON object");
    req.body = "{\"title\": \"Nightly\", \"schedule_kind\": \"cron\"}";
    req.body_size = strlen (req.body);
    s_expect_message (&req, AQ_CMD_SCHEDULE_CREATE,
                      "{\"key\":\"k\",\"schedule\":{\"title\":\"Nightly\","
                      "\"schedule_kind\":\"cron\"}}");
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
    query = s_query_of ("status", "active", "created_by", "550e8400-e29b-41d4-a716-446655440000");
    json_array_append_new (query, json_pack ("[ss]", "schedule_kind", "cron"));
    json_array_append_new (query, json_pack ("[ss]", "limit", "10"));
    json_array_append_new (query, json_pack ("[ss]", "offset", "20"));
    req.query = query;
    s_expect_message (&req, AQ_CMD_SCHEDULE_LIST,
                      "{\"key\":\"k\",\"status\":\"active\",\"created_by\":"
                      "\"550e8400-e29b-41d4-a716-446655440000\",\"schedule_kind\":\"cron\","
                      "\"limit\":\"10\",\"offset\":\"20\"}");
    json_decref (query);
    query = s_query_of ("sortOrder", "asc", NULL, NULL);
    req.query = query;
    s_expect_local (&req, 400, "Unknown query parameter: sortOrder");
    json_decref (query);
    query = s_query_of ("limit", "1", "limit", "2");
    req.query = query;
    s_expect_local (&req, 400, "Duplicate query parameter: limit");
    req.path = "/tasks/s1/runs";
    s_expect_local (&req, 400, "Duplicate query parameter: limit");
    json_decref (query);
    query = s_query_of ("limit", "5", "offset", "x");
    req.query = query;
    s_expect_message (&req, AQ_CMD_SCHEDULE_RUNS,
                      "{\"key\":\"k\",\"id\":\"s1\",\"limit\":\"5\",\"offset\":\"x\"}");
    json_decref (query);
    req.path = "/tasks/s1/preview";
    query = s_query_of ("count", "10", NULL, NULL);
    req.query = query;
    s_expect_message (&req, AQ_CMD_SCHEDULE_PREVIEW,
                      "{\"key\":\"k\",\"id\":\"s1\",\"count\":\"10\"}");
    req.path = "/tasks/s1";
    s_expect_local (&req, 400, "Unknown query parameter: count");
    req.method = "POST";
    req.path = "/tasks/preview";
    req.body = "{}";
    req.body_size = 2;
    s_expect_local (&req, 400, "Unknown query parameter: count");
    json_decref (query);

    //  Replies: body verbatim, error envelope, Retry-After
    int status, retry_after;
    const char *type;
    text = s_reply_text ("{\"corr\":7,\"status\":201,\"body\":{\"task\":{\"id\":\"x\","
                         "\"status\":\"pending\",\"maxRetries\":3}}}",
                         &status, &retry_after, &type);
    assert (status == 201 && retry_after == 0 && strcmp (type, "application/json") == 0);
    assert (strcmp (text, "{\"task\":{\"id\":\"x\",\"status\":\"pending\",\"maxRetries\":3}}") ==
            0);
    free (text);
    text = s_reply_text ("{\"corr\":7,\"status\":429,\"error\":\"Rate limit exceeded. Upgrade "
                         "your plan for higher limits.\",\"retryAfter\":3}",
                         &status, &retry_after, &type);
    assert (status == 429 && retry_after == 3);
    assert (strcmp (text, "{\"error\":\"Rate limit exceeded. Upgrade your plan for higher "
                          "limits.\"}") == 0);
    free (text);
    text = s_reply_text ("{\"status\":404}", &status, &retry_after, &type);
    assert (status == 404 && strcmp (text, "{\"error\":\"Not found\"}") == 0);
    free (text);
    text = s_reply_text ("{\"status\":200}", &status, &retry_after, &type);
    assert (status == 200 && strcmp (text, "{}") == 0);
    free (text);
    text = s_reply_text ("{\"status\":\"200\"}", &status, &retry_after, &type);
    assert (status == 502 && strcmp (text, "{\"error\":\"Bad reply from broker\"}") == 0);
    free (text);

    //  /metrics: a 200 STATS body becomes Prometheus text, an error stays JSON
    gw_match_t match;
    assert (gw_routes_find ("GET", "/metrics", &match) == 0);
    json_t *reply = json_pack ("{si s{s{si}}}", "status", 200, "body", "tasks", "pending", 4);
    assert (gw_routes_reply (match.route, reply, NULL, &response) == 0);
    assert (response.status == 200 && strcmp (response.content_type, GW_METRICS_CONTENT_TYPE) == 0);
    assert (strstr (response.body, "asyncqueue_tasks{status=\"pending\"} 4\n"));
    gw_response_release (&response);
    json_decref (reply);
    reply = json_pack ("{si ss}", "status", 401, "error", "Invalid or revoked API key");
    assert (gw_routes_reply (match.route, reply, NULL, &response) == 0);
    assert (response.status == 401 && strcmp (response.content_type, "application/json") == 0);
    gw_response_release (&response);
    json_decref (reply);

    if (verbose)
        printf ("OK\n");
}
