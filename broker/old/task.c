/*  task.c - a task record: validation of requests, statuses, public shape

    The validation messages are the API contract (seed 000, SPEC 3): change
    them only together with docs/api.md.
*/
#include "task.h"
#include "aq_time.h"
#include "poll.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *s_status_names[BK_ST_COUNT] = {NULL,      "pending",  "delayed",   "processing",
                                                  "waiting", "polling",  "completed", "failed",
                                                  "timeout", "cancelled"};

const char *bk_status_name (int status) {
    return status > 0 && status < BK_ST_COUNT ? s_status_names[status] : NULL;
}

int bk_status_parse (const char *name) {
    for (int i = 1; name && i < BK_ST_COUNT; i++)
        if (strcmp (name, s_status_names[i]) == 0)
            return i;
    return 0;
}

bool bk_status_terminal (int status) {
    return status == BK_ST_COMPLETED || status == BK_ST_FAILED || status == BK_ST_TIMEOUT ||
           status == BK_ST_CANCELLED;
}

int bk_task_status (const json_t *task) {
    return bk_status_parse (json_string_value (json_object_get (task, "status")));
}

void bk_task_set_time (json_t *task, const char *field, int64_t ms) {
    if (ms < 0)
        json_object_del (task, field);
    else
        json_object_set_new (task, field, json_integer (ms));
}

//  --------------------------------------------------------------------------
//  Validation

static const char *const s_fields[] = {"targetUrl",    "method",   "headers",       "body",
                                       "maxWaitTime",  "timeout",  "delayUntil",    "maxRetries",
                                       "retryBackoff", "priority", "onCompleteUrl", "provider",
                                       "pollConfig",   NULL};

//  http(s)://host[...] with no spaces or control characters, <= 2048 bytes.
static bool s_valid_url (const json_t *value) {
    const char *url = json_string_value (value);
    if (!url || strlen (url) > 2048)
        return false;
    size_t scheme = strncasecmp (url, "http://", 7) == 0    ? 7
                    : strncasecmp (url, "https://", 8) == 0 ? 8
                                                            : 0;
    if (!scheme || url[scheme] == '\0' || strchr ("/?#@:", url[scheme]))
        return false;
    for (const unsigned char *p = (const unsigned char *) url; *p; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return false;
    return true;
}

//  An integer (or an integral real) within [min, max].
const char *bk_task_unknown_field (const json_t *object, const char *const known[],
                                   const char *prefix, char *errbuf, size_t size) {
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) object, key, value) {
        bool found = false;
        for (int i = 0; known[i] && !found; i++)
            found = strcmp (key, known[i]) == 0;
        if (!found) {
            snprintf (errbuf, size, "Unknown field: %s%.100s", prefix, key);
            return errbuf;
        }
    }
    return NULL;
}

bool bk_task_integer_in (const json_t *value, int64_t min, int64_t max, int64_t *out) {
    double number;
    if (json_is_integer (value))
        number = (double) json_integer_value (value);
    else if (json_is_real (value))
        number = json_real_value (value);
    else
        return false;
    if (number != floor (number) || number < (double) min || number > (double) max)
        return false;
    *out = (int64_t) number;
    return true;
}

static bool s_header_token (const char *name) {
    if (!*name)
        return false;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (!isalnum (*p) && !strchr ("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

//  NULL when fine, else the client message.
static const char *s_check_headers (const json_t *headers) {
    if (!json_is_object (headers))
        return "headers must be an object of strings";
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) headers, name, value) {
        if (!json_is_string (value))
            return "headers must be an object of strings";
        if (!s_header_token (name))
            return "headers must have valid HTTP header names";
        const char *text = json_string_value (value);
        if (strlen (text) != json_string_length (value) || strpbrk (text, "\r\n"))
            return "headers must not contain CR, LF or NUL characters";
    }
    return NULL;
}

json_t *bk_task_from_request (const json_t *request, int64_t now, const char **error, char *errbuf,
                              size_t errbuf_size) {
    *error = NULL;
    if (!json_is_object (request)) {
        *error = "Request body must be a JSON object";
        return NULL;
    }
    if ((*error = bk_task_unknown_field (request, s_fields, "", errbuf, errbuf_size)))
        return NULL;
    json_t *value;
    //  null stands for "not given" for every optional field
#define GIVEN(name) (value = json_object_get (request, name), value && !json_is_null (value))
    json_t *task = json_object ();
    int64_t number;
    if (!GIVEN ("targetUrl")) {
        *error = "targetUrl is required";
        goto fail;
    }
    if (!s_valid_url (value)) {
        *error = "targetUrl must be a valid HTTP/HTTPS URL";
        goto fail;
    }
    json_object_set (task, "targetUrl", value);

    const char *method = "POST";
    if (GIVEN ("method")) {
        static const char *methods[] = {"GET", "POST", "PUT", "DELETE", NULL};
        method = NULL;
        for (int i = 0; methods[i] && json_is_string (value); i++)
            if (strcasecmp (json_string_value (value), methods[i]) == 0)
                method = methods[i];
        if (!method) {
            *error = "method must be one of: GET, POST, PUT, DELETE";
            goto fail;
        }
    }
    json_object_set_new (task, "method", json_string (method));

    if (GIVEN ("headers")) {
        if ((*error = s_check_headers (value)))
            goto fail;
        json_object_set_new (task, "headers", json_deep_copy (value));
    } else
        json_object_set_new (task, "headers", json_object ());

    if (GIVEN ("body")) {
        if (!json_is_string (value)) {
            *error = "body must be a string";
            goto fail;
        }
        json_object_set (task, "body", value);
    }

    number = 30;
    if (GIVEN ("maxWaitTime") && !bk_task_integer_in (value, 1, 86400, &number)) {
        *error = "maxWaitTime must be a number between 1 and 86400";
        goto fail;
    }
    json_object_set_new (task, "maxWaitTime", json_integer (number));

    number = 30;
    if (GIVEN ("timeout") && !bk_task_integer_in (value, 1, 300, &number)) {
        *error = "timeout must be a number between 1 and 300";
        goto fail;
    }
    json_object_set_new (task, "timeout", json_integer (number));

    int64_t delay_until = -1;
    if (GIVEN ("delayUntil") && aq_time_parse (json_string_value (value), &delay_until) != 0) {
        *error = "delayUntil must be a valid ISO 8601 date";
        goto fail;
    }
    bk_task_set_time (task, "delayUntil", delay_until);

    number = 3;
    if (GIVEN ("maxRetries") && !bk_task_integer_in (value, 0, 10, &number)) {
        *error = "maxRetries must be a number between 0 and 10";
        goto fail;
    }
    json_object_set_new (task, "maxRetries", json_integer (number));
    json_object_set_new (task, "retryCount", json_integer (0));

    const char *backoff = "exponential";
    if (GIVEN ("retryBackoff")) {
        static const char *names[] = {"linear", "exponential", "fixed", "exponential_jitter", NULL};
        backoff = NULL;
        for (int i = 0; names[i] && json_is_string (value); i++)
            if (strcmp (json_string_value (value), names[i]) == 0)
                backoff = names[i];
        if (!backoff) {
            *error = "retryBackoff must be one of: linear, exponential, fixed, exponential_jitter";
            goto fail;
        }
    }
    json_object_set_new (task, "retryBackoff", json_string (backoff));

    number = 5;
    if (GIVEN ("priority") && !bk_task_integer_in (value, 1, 10, &number)) {
        *error = "priority must be an integer between 1 and 10";
        goto fail;
    }
    json_object_set_new (task, "priority", json_integer (number));

    if (GIVEN ("onCompleteUrl")) {
        if (!s_valid_url (value)) {
            *error = "onCompleteUrl must be a valid HTTP/HTTPS URL";
            goto fail;
        }
        json_object_set (task, "onCompleteUrl", value);
    }
    if (GIVEN ("provider")) {
        if (!json_is_string (value)) { //  the broker checks it names a loaded plugin
            *error = "provider must be a string";
            goto fail;
        }
        json_object_set (task, "provider", value);
    }
    if (GIVEN ("pollConfig")) {
        if ((*error = bk_poll_check_config (value, errbuf, errbuf_size)))
            goto fail;
        if (json_object_get (task, "provider")) {
            *error = "provider and pollConfig cannot be used together";
            goto fail;
        }
        json_object_set_new (task, "pollConfig", json_deep_copy (value));
    }
#undef GIVEN
    bool later = delay_until > now;
    json_object_set_new (task, "status", json_string (later ? "delayed" : "pending"));
    bk_task_set_time (task, "createdAt", now);
    return task;
fail:
    json_decref (task);
    return NULL;
}

//  --------------------------------------------------------------------------

static bool s_task_time (const char *field) {
    static const char *times[] = {"delayUntil",    "createdAt", "startedAt", "completedAt",
                                  "nextAttemptAt", "revokedAt", NULL};
    for (int i = 0; times[i]; i++)
        if (strcmp (field, times[i]) == 0)
            return true;
    return false;
}

json_t *bk_task_public (const json_t *task) {
    return bk_task_public_with (task, s_task_time);
}

json_t *bk_task_public_with (const json_t *record, bool (*is_time) (const char *field)) {
    json_t *out = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) record, key, value) {
        if (key[0] == '_')
            continue;
        if (json_is_integer (value) && is_time (key)) {
            char stamp[32];
            json_object_set_new (out, key,
                                 json_string (aq_time_format (json_integer_value (value), stamp)));
        } else
            json_object_set (out, key, value);
    }
    return out;
}

//  --------------------------------------------------------------------------

static const char *s_error_of (const char *text) {
    static char errbuf[256];
    const char *error = NULL;
    json_error_t jerr;
    json_t *request = json_loads (text, 0, &jerr);
    assert (request);
    json_t *task = bk_task_from_request (request, 1000, &error, errbuf, sizeof errbuf);
    json_decref (request);
    json_decref (task);
    return task ? NULL : error;
}

void bk_task_test (bool verbose) {
    assert (bk_status_parse ("cancelled") == BK_ST_CANCELLED && !bk_status_parse ("nope"));
    assert (strcmp (bk_status_name (BK_ST_PENDING), "pending") == 0);
    assert (bk_status_terminal (BK_ST_TIMEOUT) && !bk_status_terminal (BK_ST_DELAYED));

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
        {"[]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *error = s_error_of (cases[i].request);
        if (cases[i].error)
            assert (error && strcmp (error, cases[i].error) == 0);
    }
    const char *error;
    char errbuf[64];
    json_t *array = json_array ();
    assert (!bk_task_from_request (array, 0, &error, errbuf, sizeof errbuf));
    assert (strcmp (error, "Request body must be a JSON object") == 0);
    json_decref (array);

    //  defaults, normalisation and the public shape
    json_t *request = json_loads ("{\"targetUrl\": \"https://api.example.com/x\", \"method\": "
                                  "\"get\", \"maxRetries\": 5.0, \"body\": null, \"delayUntil\": "
                                  "\"2030-01-01T00:00:00Z\"}",
                                  0, NULL);
    json_t *task = bk_task_from_request (request, 1000, &error, errbuf, sizeof errbuf);
    assert (task);
    assert (strcmp (json_string_value (json_object_get (task, "method")), "GET") == 0);
    json_object_set_new (task, "_seq", json_integer (9));
    json_t *out = bk_task_public (task);
    assert (strcmp (json_string_value (json_object_get (out, "status")), "delayed") == 0);
    assert (json_integer_value (json_object_get (out, "maxRetries")) == 5);
    assert (json_integer_value (json_object_get (out, "timeout")) == 30);
    assert (json_integer_value (json_object_get (out, "maxWaitTime")) == 30);
    assert (json_integer_value (json_object_get (out, "priority")) == 5);
    assert (json_integer_value (json_object_get (out, "retryCount")) == 0);
    assert (strcmp (json_string_value (json_object_get (out, "retryBackoff")), "exponential") == 0);
    assert (strcmp (json_string_value (json_object_get (out, "delayUntil")),
                    "2030-01-01T00:00:00.000Z") == 0);
    assert (strcmp (json_string_value (json_object_get (out, "createdAt")),
                    "1970-01-01T00:00:01.000Z") == 0);
    assert (!json_object_get (out, "_seq") && !json_object_get (out, "body"));
    assert (json_object_size (json_object_get (out, "headers")) == 0);
    json_decref (out);
    json_decref (task);
    json_decref (request);
    if (verbose)
        printf ("bk_task: ok\n");
}
