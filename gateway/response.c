/*  response.c - HTTP responses: broker REPLYs rendered, and local answers */
#include "response.h"
#include "json.h"

#include "aq_json.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_json_type[] = "application/json";

//  Sets self to status with text (size bytes, copied) as a JSON body.
static int s_response_text (gw_response_t *self, int status, const char *text, size_t size) {
    gw_response_release (self);
    self->body = malloc (size + 1);
    if (!self->body)
        return -1;
    memcpy (self->body, text, size);
    self->body[size] = 0;
    self->body_size = size;
    self->status = status;
    self->content_type = s_json_type;
    return 0;
}

//  Sets self to status with body rendered as compact JSON. 0; -1 when out
//  of memory; -2 when body holds what JSON cannot (bin, a key that is not
//  a string, an integer past INT64_MAX, NaN).
static int s_response_json (gw_response_t *self, int status, const aq_node_t *body) {
    gw_response_release (self);
    aq_writer_t text;
    aq_writer_init (&text);
    int rc = aq_json_write (body, &text) != 0 ? -2 : 0;
    aq_write_raw (&text, "", 1);
    size_t size;
    self->body = (char *) aq_writer_take (&text, &size);
    if (rc != 0 || !self->body) {
        free (self->body);
        self->body = NULL;
        return rc ? rc : -1;
    }
    self->body_size = size - 1;
    self->status = status;
    self->content_type = s_json_type;
    return 0;
}

//  {"error": message}, message being size bytes of UTF-8.
static int s_response_error (gw_response_t *self, int status, const char *message, size_t size) {
    aq_writer_t msg;
    aq_writer_init (&msg);
    aq_write_map (&msg, 1);
    aq_write_str (&msg, "error");
    aq_write_strn (&msg, message, size);
    size_t used;
    const uint8_t *data = aq_writer_data (&msg, &used);
    aq_node_t body;
    int rc =
        data && aq_msg_parse (data, used, &body) == 0 ? s_response_json (self, status, &body) : -1;
    aq_writer_release (&msg);
    return rc;
}

int gw_response_error (gw_response_t *self, int status, const char *message) {
    return s_response_error (self, status, message, strlen (message));
}

void gw_response_release (gw_response_t *self) {
    free (self->body);
    self->body = NULL;
    self->body_size = 0;
    self->status = 0;
    self->retry_after = 0;
    self->allow[0] = 0;
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

//  The fields of a REPLY, found in one pass: the first of each key counts,
//  as aq_node_get would find it.
typedef struct {
    aq_node_t status, body, error, retry_after; //  type 0 while absent
} s_reply_t;

static void s_reply_fields (const aq_node_t *reply, s_reply_t *fields) {
    memset (fields, 0, sizeof *fields);
    aq_iter_t it;
    aq_node_iter (reply, &it);
    aq_node_t key, value;
    while (aq_iter_next (&it, &key, &value)) {
        aq_node_t *field = aq_node_streq (&key, "status")       ? &fields->status
                           : aq_node_streq (&key, "body")       ? &fields->body
                           : aq_node_streq (&key, "error")      ? &fields->error
                           : aq_node_streq (&key, "retryAfter") ? &fields->retry_after
                                                                : NULL;
        if (field && !field->type)
            *field = value;
    }
}

int gw_response_reply (gw_response_t *self, const aq_node_t *reply, bool metrics,
                       const gw_gauge_t *gateway, size_t count) {
    s_reply_t fields;
    s_reply_fields (reply, &fields);
    int64_t status = fields.status.type == AQ_NODE_INT ? fields.status.i : 0;
    if (status < 200 || status > 599)
        return gw_response_error (self, 502, "Bad reply from broker");
    const aq_node_t *body = &fields.body, *error = &fields.error;
    bool has_body = body->type && body->type != AQ_NODE_NIL;
    int rc;
    if (metrics && status == 200 && body->type == AQ_NODE_MAP) {
        gw_response_release (self);
        self->body = gw_metrics_render (body, gateway, count);
        self->body_size = self->body ? strlen (self->body) : 0;
        self->content_type = GW_METRICS_CONTENT_TYPE;
        self->status = 200;
        rc = self->body ? 0 : -1;
    } else if (has_body) {
        rc = s_response_json (self, (int) status, body);
        if (rc == -2) //  nothing a broker sends
            rc = gw_response_error (self, 502, "Bad reply from broker");
    } else if (error->type == AQ_NODE_STR) //  up to a NUL, as jansson's C string was
        rc = s_response_error (self, (int) status, (const char *) error->data,
                               strnlen ((const char *) error->data, error->count));
    else if (status >= 400)
        rc = gw_response_error (self, (int) status, s_reason ((int) status));
    else
        rc = s_response_text (self, (int) status, "{}", 2);
    int64_t retry_after = fields.retry_after.type == AQ_NODE_INT ? fields.retry_after.i : 0;
    if (rc == 0 && retry_after > 0)
        self->retry_after = retry_after > 86400 ? 86400 : (int) retry_after;
    return rc;
}

int gw_response_healthz (gw_response_t *self, bool broker_ok) {
    const char *text = broker_ok ? "{\"status\":\"ok\",\"broker\":\"ok\"}"
                                 : "{\"status\":\"ok\",\"broker\":\"unreachable\"}";
    return s_response_text (self, 200, text, strlen (text));
}

int gw_response_readyz (gw_response_t *self, bool broker_ok) {
    if (!broker_ok) {
        int rc = gw_response_error (self, 503, "Broker unavailable");
        self->retry_after = 1;
        return rc;
    }
    return s_response_text (self, 200, "{\"status\":\"ready\"}", 18);
}

//  --------------------------------------------------------------------------
//  Selftest

//  The response a REPLY (given as JSON text) gets, for /metrics or not.
static char *s_reply_for (bool metrics, const char *reply_text, int *status, int *retry_after,
                          const char **type) {
    aq_writer_t msg;
    aq_writer_init (&msg);
    char error[GW_JSON_ERROR_MAX];
    assert (gw_json_parse (reply_text, strlen (reply_text), &msg, error, sizeof error) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&msg, &size);
    aq_node_t reply;
    assert (aq_msg_parse (data, size, &reply) == 0);
    gw_response_t response = {0};
    gw_gauge_t gauges[] = {{"connections", 5}};
    assert (gw_response_reply (&response, &reply, metrics, gauges, 1) == 0);
    *status = response.status;
    *retry_after = response.retry_after;
    *type = response.content_type;
    aq_writer_release (&msg);
    return response.body; //  taken over from response
}

static char *s_reply_text (const char *reply_text, int *status, int *retry_after,
                           const char **type) {
    return s_reply_for (false, reply_text, status, retry_after, type);
}

void gw_response_test (bool verbose) {
    if (verbose)
        printf (" * gw_response: ");

    //  Replies: body verbatim, error envelope, Retry-After
    int status, retry_after;
    const char *type;
    char *text = s_reply_text ("{\"corr\":7,\"status\":201,\"body\":{\"task\":{\"id\":\"x\","
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

    //  A body JSON cannot hold is a bad reply (a broker never sends one)
    text = s_reply_text ("{\"status\":200,\"body\":{\"a\":null}}", &status, &retry_after, &type);
    assert (status == 200 && strcmp (text, "{\"a\":null}") == 0);
    free (text);
    text = s_reply_text ("{\"status\":201,\"body\":[1,\"\\u001f\",1e22,0.1]}", &status,
                         &retry_after, &type);
    assert (status == 201 && strcmp (text, "[1,\"\\u001F\",1e22,0.10000000000000001]") == 0);
    free (text);
    aq_writer_t bad;
    aq_writer_init (&bad);
    aq_write_map (&bad, 2);
    aq_write_kv_int (&bad, "status", 200);
    aq_write_str (&bad, "body"), aq_write_bin (&bad, "x", 1);
    size_t bad_size;
    const uint8_t *bad_data = aq_writer_data (&bad, &bad_size);
    aq_node_t bad_reply;
    assert (aq_msg_parse (bad_data, bad_size, &bad_reply) == 0);
    gw_response_t response = {0};
    assert (gw_response_reply (&response, &bad_reply, false, NULL, 0) == 0);
    assert (response.status == 502);
    assert (strcmp (response.body, "{\"error\":\"Bad reply from broker\"}") == 0);
    gw_response_release (&response);
    //  an error holding a NUL is cut there, as jansson's C string was
    aq_writer_reset (&bad);
    aq_write_map (&bad, 3);
    aq_write_kv_int (&bad, "status", 200);
    aq_write_str (&bad, "body"), aq_write_nil (&bad);
    aq_write_str (&bad, "error"), aq_write_strn (&bad, "x\0y", 3);
    bad_data = aq_writer_data (&bad, &bad_size);
    assert (aq_msg_parse (bad_data, bad_size, &bad_reply) == 0);
    assert (gw_response_reply (&response, &bad_reply, false, NULL, 0) == 0);
    assert (response.status == 200 && strcmp (response.body, "{\"error\":\"x\"}") == 0);
    gw_response_release (&response);
    aq_writer_release (&bad);

    //  /metrics: a 200 STATS body becomes Prometheus text, an error stays JSON
    text = s_reply_for (true, "{\"status\":200,\"body\":{\"tasks\":{\"pending\":4}}}", &status,
                        &retry_after, &type);
    assert (status == 200 && strcmp (type, GW_METRICS_CONTENT_TYPE) == 0);
    assert (strstr (text, "asyncqueue_tasks{status=\"pending\"} 4\n"));
    assert (strstr (text, "asyncqueue_gateway_connections 5\n"));
    free (text);
    text = s_reply_for (true, "{\"status\":401,\"error\":\"Invalid or revoked API key\"}", &status,
                        &retry_after, &type);
    assert (status == 401 && strcmp (type, "application/json") == 0);
    assert (strcmp (text, "{\"error\":\"Invalid or revoked API key\"}") == 0);
    free (text);

    //  Local answers: /readyz 503 until the broker answers, then 200
    assert (gw_response_readyz (&response, false) == 0);
    assert (response.status == 503 && response.retry_after == 1);
    assert (strcmp (response.body, "{\"error\":\"Broker unavailable\"}") == 0);
    assert (gw_response_readyz (&response, true) == 0);
    assert (response.status == 200 && response.retry_after == 0);
    assert (strcmp (response.body, "{\"status\":\"ready\"}") == 0);
    assert (gw_response_healthz (&response, false) == 0);
    assert (strcmp (response.body, "{\"status\":\"ok\",\"broker\":\"unreachable\"}") == 0);
    assert (response.status == 200 && response.body_size == strlen (response.body));
    assert (gw_response_error (&response, 413, "Request body too large") == 0);
    assert (strcmp (response.body, "{\"error\":\"Request body too large\"}") == 0);
    assert (gw_response_error (&response, 400, "a \"quoted\"\n\x01 \xc3\xa9") == 0);
    assert (strcmp (response.body, "{\"error\":\"a \\\"quoted\\\"\\n\\u0001 \xc3\xa9\"}") == 0);
    gw_response_release (&response);
    gw_response_release (&response);

    if (verbose)
        printf ("OK\n");
}
