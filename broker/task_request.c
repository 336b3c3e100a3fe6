/*  task_request.c - a POST /v1/tasks body checked and made a task */
#include "task_request.h"
#include "aq_json.h"
#include "aq_time.h"
#include "backoff.h"
#include "flow.h"
#include "poll.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const s_fields[] = {"targetUrl",    "method",   "headers",       "body",
                                       "maxWaitTime",  "timeout",  "delayUntil",    "maxRetries",
                                       "retryBackoff", "priority", "onCompleteUrl", "provider",
                                       "pollConfig",   "labels",   "flowControl",   NULL};

bool bk_task_valid_url (const aq_node_t *node) {
    if (!aq_node_is_str (node) || node->count > 2048)
        return false;
    const char *url = (const char *) node->data;
    size_t size = node->count;
    size_t scheme = size > 7 && strncasecmp (url, "http://", 7) == 0    ? 7
                    : size > 8 && strncasecmp (url, "https://", 8) == 0 ? 8
                                                                        : 0;
    if (!scheme || strchr ("/?#@:", url[scheme]))
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7F)
            return false;
    return true;
}

static bool s_header_token (const aq_node_t *name) {
    if (!aq_node_is_str (name) || name->count == 0)
        return false;
    for (uint32_t i = 0; i < name->count; i++) {
        unsigned char c = name->data[i];
        if (!isalnum (c) && !strchr ("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

//  NULL when fine, else the client message.
static const char *s_check_headers (const aq_node_t *headers) {
    if (headers->type != AQ_NODE_MAP)
        return "headers must be an object of strings";
    aq_iter_t it;
    aq_node_iter (headers, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        if (!aq_node_is_str (&value))
            return "headers must be an object of strings";
        if (!s_header_token (&name))
            return "headers must have valid HTTP header names";
        if (memchr (value.data, '\0', value.count) || memchr (value.data, '\r', value.count) ||
            memchr (value.data, '\n', value.count))
            return "headers must not contain CR, LF or NUL characters";
    }
    return NULL;
}

bool bk_task_label_name (const uint8_t *name, size_t size) {
    if (size < 1 || size > BK_LABEL_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if (!isalnum (name[i]) && !strchr ("._-", name[i]))
            return false;
    return true;
}

size_t bk_task_utf8_chars (const uint8_t *text, size_t size) {
    size_t chars = 0;
    for (size_t i = 0; i < size; i++)
        chars += (text[i] & 0xC0) != 0x80; //  every byte but a continuation byte
    return chars;
}

//  NULL when fine, else the client message.
static const char *s_check_labels (const aq_node_t *labels) {
    if (labels->type != AQ_NODE_MAP)
        return "labels must be an object of strings";
    if (labels->count > BK_LABELS_MAX)
        return "labels must have at most 16 entries";
    aq_iter_t it;
    aq_node_iter (labels, &it);
    aq_node_t name, value;
    while (aq_iter_next (&it, &name, &value)) {
        if (!aq_node_is_str (&value))
            return "labels must be an object of strings";
        if (!aq_node_is_str (&name) || !bk_task_label_name (name.data, name.count))
            return "labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
        if (bk_task_utf8_chars (value.data, value.count) > BK_LABEL_VALUE_MAX)
            return "labels values must be at most 256 characters";
    }
    return NULL;
}

//  The string node as a C string in the task's arena (NULL if none).
static char *s_strdup (bk_task_t *task, const aq_node_t *node) {
    return bk_arena_strndup (task->arena, (const char *) node->data, node->count);
}

bk_task_t *bk_task_from_request (const aq_node_t *request, int64_t now, const char **error,
                                 char *errbuf, size_t errbuf_size) {
    *error = NULL;
    if (request->type != AQ_NODE_MAP) {
        *error = "Request body must be a JSON object";
        return NULL;
    }
    if ((*error = bk_task_unknown_field (request, s_fields, "", errbuf, errbuf_size)))
        return NULL;
    aq_node_t value;
    //  null stands for "not given" for every optional field
#define GIVEN(name) (aq_node_get (request, name, &value) && !aq_node_is_nil (&value))
    bk_task_t *task = bk_task_new (request->raw_size);
    int64_t number;
    if (!GIVEN ("targetUrl")) {
        *error = "targetUrl is required";
        goto fail;
    }
    if (!bk_task_valid_url (&value)) {
        *error = "targetUrl must be a valid HTTP/HTTPS URL";
        goto fail;
    }
    task->target_url = s_strdup (task, &value);

    task->method = BK_METHOD_POST;
    if (GIVEN ("method")) {
        task->method = -1;
        for (int m = BK_METHOD_GET; m <= BK_METHOD_DELETE && aq_node_is_str (&value); m++)
            if (value.count == strlen (bk_method_name (m)) &&
                strncasecmp ((const char *) value.data, bk_method_name (m), value.count) == 0)
                task->method = m;
        if (task->method < 0) {
            *error = "method must be one of: GET, POST, PUT, DELETE";
            goto fail;
        }
    }
    if (GIVEN ("headers")) {
        if ((*error = s_check_headers (&value)))
            goto fail;
        bk_task_set_blob (task, &task->headers, value.raw, value.raw_size);
    }
    if (GIVEN ("body")) {
        if (!aq_node_is_str (&value)) {
            *error = "body must be a string";
            goto fail;
        }
        task->body = s_strdup (task, &value);
        task->body_size = value.count;
    }
    number = 30;
    if (GIVEN ("maxWaitTime") && !aq_node_int_in (&value, 1, 86400, &number)) {
        *error = "maxWaitTime must be a number between 1 and 86400";
        goto fail;
    }
    task->max_wait_s = (int) number;
    number = 30;
    if (GIVEN ("timeout") && !aq_node_int_in (&value, 1, 300, &number)) {
        *error = "timeout must be a number between 1 and 300";
        goto fail;
    }
    task->timeout_s = (int) number;
    if (GIVEN ("delayUntil")) {
        char text[64];
        if (!aq_node_strcpy (&value, text, sizeof text) ||
            aq_time_parse (text, &task->delay_until) != 0) {
            *error = "delayUntil must be a valid ISO 8601 date";
            goto fail;
        }
    }
    number = 3;
    if (GIVEN ("maxRetries") && !aq_node_int_in (&value, 0, 10, &number)) {
        *error = "maxRetries must be a number between 0 and 10";
        goto fail;
    }
    task->max_retries = (int) number;
    task->backoff = BK_BACKOFF_EXPONENTIAL;
    if (GIVEN ("retryBackoff") &&
        (!aq_node_is_str (&value) ||
         (task->backoff = bk_backoff_parse ((const char *) value.data, value.count)) < 0)) {
        *error = "retryBackoff must be one of: linear, exponential, fixed, exponential_jitter";
        goto fail;
    }
    number = 5;
    if (GIVEN ("priority") && !aq_node_int_in (&value, 1, 10, &number)) {
        *error = "priority must be an integer between 1 and 10";
        goto fail;
    }
    task->priority = (int) number;
    if (GIVEN ("onCompleteUrl")) {
        if (!bk_task_valid_url (&value)) {
            *error = "onCompleteUrl must be a valid HTTP/HTTPS URL";
            goto fail;
        }
        task->on_complete_url = s_strdup (task, &value);
    }
    if (GIVEN ("provider")) {
        if (!aq_node_is_str (&value) || memchr (value.data, 0, value.count)) {
            *error = "provider must be a string"; //  the broker checks it names a plugin
            goto fail;
        }
        task->provider = s_strdup (task, &value);
    }
    if (GIVEN ("pollConfig")) {
        if ((*error = bk_poll_check_config (&value, errbuf, errbuf_size)))
            goto fail;
        if (task->provider) {
            *error = "provider and pollConfig cannot be used together";
            goto fail;
        }
        bk_task_set_blob (task, &task->poll_config, value.raw, value.raw_size);
    }
    if (GIVEN ("labels")) {
        if ((*error = s_check_labels (&value)))
            goto fail;
        if (value.count)
            bk_task_set_blob (task, &task->labels, value.raw, value.raw_size);
    }
    if (GIVEN ("flowControl")) {
        char key[BK_FLOW_KEY_MAX + 1];
        bk_flow_limits_t limits;
        if ((*error =
                 bk_flow_parse (&value, true, "flowControl.", key, &limits, errbuf, errbuf_size)))
            goto fail;
        task->flow_key = bk_task_strdup (task, key);
        task->flow_rate = limits.rate;
        task->flow_period = limits.period;
        task->flow_parallelism = limits.parallelism;
    }
#undef GIVEN
    task->status = task->delay_until > now ? BK_ST_DELAYED : BK_ST_PENDING;
    task->created_at = now;
    return task;
fail:
    bk_task_destroy (&task);
    return NULL;
}

//  --------------------------------------------------------------------------

static const char *s_error_of (const char *text) {
    static char errbuf[256];
    const char *error = NULL;
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (text, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t request;
    assert (aq_msg_parse (data, size, &request) == 0);
    bk_task_t *task = bk_task_from_request (&request, 1000, &error, errbuf, sizeof errbuf);
    bool made = task != NULL;
    bk_task_destroy (&task);
    aq_writer_release (&w);
    return made ? NULL : error;
}

void bk_task_request_test (bool verbose) {
    struct {
        const char *request, *error;
    } cases[] = {
        {"{}", "targetUrl is required"},
        {"{\"targetUrl\": null}", "targetUrl is required"},
        {"{\"targetUrl\": \"ftp://x\"}", "targetUrl must be a valid HTTP/HTTPS URL"},
        {"{\"targetUrl\": \"http://\"}", "targetUrl must be a valid HTTP/HTTPS URL"},
        {"{\"targetUrl\": \"http://a b\"}", "targetUrl must be a valid HTTP/HTTPS URL"},
        {"{\"targetUrl\": 5}", "targetUrl must be a valid HTTP/HTTPS URL"},
        {"{\"targetUrl\": \"http://x\", \"method\": \"PATCH\"}",
         "method must be one of: GET, POST, PUT, DELETE"},
        {"{\"targetUrl\": \"http://x\", \"maxRetries\": 11}",
         "maxRetries must be a number between 0 and 10"},
        {"{\"targetUrl\": \"http://x\", \"maxRetries\": \"3\"}",
         "maxRetries must be a number between 0 and 10"},
        {"{\"targetUrl\": \"http://x\", \"priority\": 5.5}",
         "priority must be an integer between 1 and 10"},
        {"{\"targetUrl\": \"http://x\", \"priority\": 0}",
         "priority must be an integer between 1 and 10"},
        {"{\"targetUrl\": \"http://x\", \"delayUntil\": \"tomorrow\"}",
         "delayUntil must be a valid ISO 8601 date"},
        {"{\"targetUrl\": \"http://x\", \"timeout\": 301}",
         "timeout must be a number between 1 and 300"},
        {"{\"targetUrl\": \"http://x\", \"maxWaitTime\": 0}",
         "maxWaitTime must be a number between 1 and 86400"},
        {"{\"targetUrl\": \"http://x\", \"retryBackoff\": \"random\"}",
         "retryBackoff must be one of: linear, exponential, fixed, exponential_jitter"},
        {"{\"targetUrl\": \"http://x\", \"headers\": {\"a\": 1}}",
         "headers must be an object of strings"},
        {"{\"targetUrl\": \"http://x\", \"headers\": [\"a\"]}",
         "headers must be an object of strings"},
        {"{\"targetUrl\": \"http://x\", \"headers\": {\"a\": \"x\\r\\nEvil: 1\"}}",
         "headers must not contain CR, LF or NUL characters"},
        {"{\"targetUrl\": \"http://x\", \"headers\": {\"a b\": \"x\"}}",
         "headers must have valid HTTP header names"},
        {"{\"targetUrl\": \"http://x\", \"body\": {}}", "body must be a string"},
        {"{\"targetUrl\": \"http://x\", \"onCompleteUrl\": \"x\"}",
         "onCompleteUrl must be a valid HTTP/HTTPS URL"},
        {"{\"targetUrl\": \"http://x\", \"delayuntil\": \"2024-01-01\"}",
         "Unknown field: delayuntil"},
        {"{\"targetUrl\": \"http://x\", \"provider\": 5}", "provider must be a string"},
        {"{\"targetUrl\": \"http://x\", \"pollConfig\": {}}", "pollConfig.urlTemplate is required"},
        {"[]", "Request body must be a JSON object"},
        {"{\"targetUrl\": \"http://x\", \"labels\": []}", "labels must be an object of strings"},
        {"{\"targetUrl\": \"http://x\", \"labels\": {\"a\": 1}}",
         "labels must be an object of strings"},
        {"{\"targetUrl\": \"http://x\", \"labels\": {\"a b\": \"x\"}}",
         "labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
        {"{\"targetUrl\": \"http://x\", \"labels\": {\"\": \"x\"}}",
         "labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
        {"{\"targetUrl\": \"http://x\", \"labels\": {\"a:b\": \"x\"}}",
         "labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
        {"{\"targetUrl\": \"http://x\", \"labels\": {\"a\": \"x\", \"b\": \"y\", \"c\": "
         "\"x\", \"d\": \"x\", \"e\": \"x\", \"f\": \"x\", \"g\": \"x\", \"h\": \"x\", "
         "\"i\": \"x\", \"j\": \"x\", \"k\": \"x\", \"l\": \"x\", \"m\": \"x\", \"n\": "
         "\"x\", \"o\": \"x\", \"p\": \"x\", \"q\": \"x\"}}",
         "labels must have at most 16 entries"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": 5}", "flowControl must be an object"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"rate\": 1}}",
         "flowControl.key is required"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"a b\", \"rate\": 1}}",
         "flowControl.key must be 1-100 characters of A-Z a-z 0-9 . _ : -"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"\", \"rate\": 1}}",
         "flowControl.key must be 1-100 characters of A-Z a-z 0-9 . _ : -"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"k\"}}",
         "flowControl.rate or flowControl.parallelism is required"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"k\", \"rate\": 0}}",
         "flowControl.rate must be a number between 1 and 100000"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"k\", \"rate\": 1, "
         "\"period\": 86401}}",
         "flowControl.period must be a number between 1 and 86400"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"k\", \"parallelism\": "
         "10001}}",
         "flowControl.parallelism must be a number between 1 and 10000"},
        {"{\"targetUrl\": \"http://x\", \"flowControl\": {\"key\": \"k\", \"rate\": 1, "
         "\"burst\": 2}}",
         "Unknown field: flowControl.burst"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *error = s_error_of (cases[i].request);
        if (!error || strcmp (error, cases[i].error) != 0) {
            fprintf (stderr, "bk_task_request: %s -> %s, want %s\n", cases[i].request,
                     error ? error : "(accepted)", cases[i].error);
            assert (false);
        }
    }
    //  defaults and normalisation
    aq_writer_t w;
    aq_writer_init (&w);
    aq_json_parse ("{\"targetUrl\": \"https://api.example.com/x\", \"method\": \"get\", "
                   "\"maxRetries\": 5.0, \"body\": null, \"delayUntil\": "
                   "\"2030-01-01T00:00:00Z\"}",
                   &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t request;
    assert (aq_msg_parse (data, size, &request) == 0);
    const char *error;
    char errbuf[64];
    bk_task_t *task = bk_task_from_request (&request, 1000, &error, errbuf, sizeof errbuf);
    assert (task && task->method == BK_METHOD_GET && task->max_retries == 5);
    assert (task->status == BK_ST_DELAYED && task->delay_until == 1893456000000);
    assert (task->timeout_s == 30 && task->max_wait_s == 30 && task->priority == 5);
    assert (task->backoff == BK_BACKOFF_EXPONENTIAL && !task->body && !task->headers.size);
    assert (task->created_at == 1000 && task->retry_count == 0 && !task->labels.size);
    assert (!task->flow_key);
    bk_task_destroy (&task);
    aq_writer_reset (&w);
    aq_json_parse ("{\"targetUrl\": \"https://x\", \"flowControl\": {\"key\": \"fal:prod-1.a_b\", "
                   "\"parallelism\": 4, \"rate\": null}}",
                   &w);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &request) == 0);
    task = bk_task_from_request (&request, 1000, &error, errbuf, sizeof errbuf);
    assert (task && strcmp (task->flow_key, "fal:prod-1.a_b") == 0);
    assert (task->flow_parallelism == 4 && task->flow_rate == 0 && task->flow_period == 1);
    bk_task_destroy (&task);
    aq_writer_reset (&w);

    //  labels: names of 64 characters, values of 256 characters (not bytes)
    char request_text[1400], name[66], value[600];
    memset (name, 'n', 64), name[64] = '\0';
    value[0] = '\0';
    for (int i = 0; i < 256; i++)
        strcat (value, i % 2 ? "\xc3\xa9" : "a"); //  256 characters, 384 bytes
    snprintf (request_text, sizeof request_text,
              "{\"targetUrl\": \"http://x\", \"labels\": {\"%s\": \"%s\", \"env.x_y-1\": \"\"}}",
              name, value);
    aq_json_parse (request_text, &w);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &request) == 0);
    task = bk_task_from_request (&request, 1000, &error, errbuf, sizeof errbuf);
    assert (task && task->labels.size > 400);
    bk_task_destroy (&task);
    strcat (value, "a"); //  257
    snprintf (request_text, sizeof request_text,
              "{\"targetUrl\": \"http://x\", \"labels\": {\"a\": \"%s\"}}", value);
    assert (strcmp (s_error_of (request_text), "labels values must be at most 256 characters") ==
            0);
    strcat (name, "n"); //  65
    snprintf (request_text, sizeof request_text,
              "{\"targetUrl\": \"http://x\", \"labels\": {\"%s\": \"x\"}}", name);
    assert (strcmp (s_error_of (request_text),
                    "labels names must be 1 to 64 characters of A-Z a-z 0-9 . _ -") == 0);
    aq_writer_release (&w);
    if (verbose)
        printf ("bk_task_request: ok\n");
}
