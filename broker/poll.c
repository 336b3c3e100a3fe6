/*  poll.c - following a long-running job: pollConfig and provider plugins */
#include "poll.h"
#include "aq_proto.h"
#include "task.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TEMPLATE_MAX 2048 //  longest pollConfig.urlTemplate
#define S_URL_MAX      8192 //  longest status URL it may render to

const char *bk_poll_check_config (const json_t *config, char *errbuf, size_t errbuf_size) {
    if (!json_is_object (config))
        return "pollConfig must be an object";
    static const char *const fields[] = {"urlTemplate", "statusPath",      "doneValues",
                                         "failValues",  "intervalSeconds", NULL};
    if (bk_task_unknown_field (config, fields, "pollConfig.", errbuf, errbuf_size))
        return errbuf;
    json_t *value = json_object_get (config, "urlTemplate");
    if (!json_is_string (value) || json_string_length (value) == 0)
        return "pollConfig.urlTemplate is required";
    if (json_string_length (value) > S_TEMPLATE_MAX)
        return "pollConfig.urlTemplate must be at most 2048 characters";
    value = json_object_get (config, "statusPath");
    if (!json_is_string (value) || json_string_length (value) == 0)
        return "pollConfig.statusPath is required";
    static const char *lists[] = {"doneValues", "failValues"};
    for (int i = 0; i < 2; i++) {
        value = json_object_get (config, lists[i]);
        size_t index;
        json_t *item;
        bool ok = json_is_array (value);
        json_array_foreach (value, index, item) ok = ok && json_is_string (item);
        if (!ok) {
            snprintf (errbuf, errbuf_size, "pollConfig.%s must be an array of strings", lists[i]);
            return errbuf;
        }
    }
    value = json_object_get (config, "intervalSeconds");
    if (value && (!json_is_number (value) || json_number_value (value) < 1 ||
                  json_number_value (value) > 3600))
        return "pollConfig.intervalSeconds must be a number between 1 and 3600";
    return NULL;
}

static bool s_in (const json_t *list, const char *text) {
    size_t index;
    json_t *item;
    json_array_foreach (list, index,
                        item) if (text && strcmp (json_string_value (item), text) == 0) return true;
    return false;
}

static char *s_strdup_or_null (const char *text) {
    return text ? strdup (text) : NULL;
}

static void s_set_str (json_t *poll, const char *key, const char *value) {
    if (value)
        json_object_set_new (poll, key, json_string (value));
    else
        json_object_del (poll, key);
}

//  Appends text (len bytes) to out, percent-encoded unless raw: RFC 3986's
//  unreserved characters stay, every other byte becomes %XX. False once out
//  would pass S_URL_MAX bytes.
static bool s_append (char *out, size_t *used, const char *text, size_t len, bool raw) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        bool keep = raw || isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~';
        if (*used + (keep ? 1 : 3) > S_URL_MAX)
            return false;
        if (keep)
            out[(*used)++] = (char) c;
        else {
            out[(*used)++] = '%';
            out[(*used)++] = hex[c >> 4];
            out[(*used)++] = hex[c & 15];
        }
    }
    return true;
}

//  Fills each {{path}} of tmpl with the value at path in doc (as the host's
//  json_get_text gives it), percent-encoded. Returns the URL (caller frees),
//  or NULL with a static message in *error: a placeholder cannot be filled,
//  or the URL would be over S_URL_MAX bytes (it stops there: bounded work).
static char *s_render_url (const char *tmpl, const json_t *doc, const char **error) {
    const aq_host_t *host = aq_plugin_host ();
    char *out = malloc (S_URL_MAX + 1);
    size_t used = 0;
    assert (out);
    *error = "pollConfig.urlTemplate cannot be filled from the response";
    const char *at = tmpl;
    for (;;) {
        const char *open = strstr (at, "{{");
        if (!open) {
            if (!s_append (out, &used, at, strlen (at), true))
                goto too_long;
            break;
        }
        if (!s_append (out, &used, at, (size_t) (open - at), true))
            goto too_long;
        const char *start = open + 2, *close = strstr (start, "}}");
        if (!close)
            goto fail;
        const char *end = close;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        while (end > start && isspace ((unsigned char) end[-1]))
            end--;
        char path[256];
        size_t len = (size_t) (end - start);
        if (len == 0 || len >= sizeof path)
            goto fail;
        memcpy (path, start, len);
        path[len] = '\0';
        char *value = doc ? host->json_get_text (doc, path) : NULL;
        if (!value)
            goto fail;
        bool fits = s_append (out, &used, value, strlen (value), false);
        free (value);
        if (!fits)
            goto too_long;
        at = close + 2;
    }
    out[used] = '\0';
    *error = NULL;
    return out;
too_long:
    *error = "pollConfig.urlTemplate renders a status URL over 8192 bytes";
fail:
    free (out);
    return NULL;
}

//  pollConfig: the template filled from the first answer, then statusPath
//  of every answer against doneValues and failValues.
static bk_poll_state_t s_config_step (json_t *task, int stage, const json_t *answer,
                                      int64_t interval_ms, int64_t *next_ms, char **error) {
    const json_t *config = json_object_get (task, "pollConfig");
    const aq_host_t *host = aq_plugin_host ();
    const char *text = aq_field_str (answer, "body");
    json_t *doc = text ? json_loads (text, JSON_DECODE_ANY, NULL) : NULL;
    json_t *poll = json_object_get (task, "_poll");
    json_t *interval = json_object_get (config, "intervalSeconds");
    *next_ms = interval ? (int64_t) (json_number_value (interval) * 1000) : interval_ms;
    json_object_set_new (poll, "interval", json_integer (*next_ms)); //  also after errors
    bk_poll_state_t state = BK_POLL_RUNNING;
    if (stage == BK_POLL_INITIAL) {
        const char *why;
        char *url =
            s_render_url (json_string_value (json_object_get (config, "urlTemplate")), doc, &why);
        if (!url) {
            *error = strdup (why);
            state = BK_POLL_FAILED;
        } else
            json_object_set_new (poll, "statusUrl", json_string (url));
        free (url);
    } else {
        char *status = doc ? host->json_get_text (
                                 doc, json_string_value (json_object_get (config, "statusPath")))
                           : NULL;
        if (s_in (json_object_get (config, "doneValues"), status))
            state = BK_POLL_DONE;
        else if (s_in (json_object_get (config, "failValues"), status)) {
            char message[256];
            snprintf (message, sizeof message, "Polling status: %.200s", status);
            *error = strdup (message);
            state = BK_POLL_FAILED;
        }
        free (status);
    }
    json_decref (doc);
    return state;
}

bk_poll_state_t bk_poll_step (const aq_plugin_provider_t *provider, json_t *task, int stage,
                              const json_t *answer, int64_t interval_ms, int64_t *next_ms,
                              char **error) {
    *error = NULL;
    *next_ms = interval_ms;
    json_t *poll = json_object_get (task, "_poll");
    if (!poll) {
        poll = json_object ();
        json_object_set_new (task, "_poll", poll);
    }
    if (!provider)
        return s_config_step (task, stage, answer, interval_ms, next_ms, error);

    const char *text = aq_field_str (answer, "body");
    const char *url = stage == BK_POLL_INITIAL  ? aq_field_str (task, "targetUrl")
                      : stage == BK_POLL_STATUS ? aq_field_str (poll, "statusUrl")
                                                : aq_field_str (poll, "resultUrl");
    aq_http_response_t response = {.size = sizeof response};
    aq_plugin_response_init (
        &response, url ? url : "", (int) aq_field_int (answer, "statusCode", 0),
        json_object_get (answer, "headers"), text ? text : "", text ? strlen (text) : 0);
    //  the plan as stored: the strings stay ours, the plugin only reads them
    aq_provider_plan_t plan = {.size = sizeof plan};
    plan.status_url = s_strdup_or_null (aq_field_str (poll, "statusUrl"));
    plan.result_url = s_strdup_or_null (aq_field_str (poll, "resultUrl"));
    plan.cancel_url = s_strdup_or_null (aq_field_str (poll, "cancelUrl"));
    plan.cancel_method = s_strdup_or_null (aq_field_str (poll, "cancelMethod"));
    aq_provider_status_t status = {.size = sizeof status};
    if (stage == BK_POLL_INITIAL) {
        aq_provider_plan_t fresh = {.size = sizeof fresh};
        aq_plugin_provider_plan (provider, &response, &fresh, &status);
        s_set_str (poll, "statusUrl", fresh.status_url);
        s_set_str (poll, "resultUrl", fresh.result_url);
        s_set_str (poll, "cancelUrl", fresh.cancel_url);
        s_set_str (poll, "cancelMethod", fresh.cancel_method);
        if (fresh.interval_ms)
            json_object_set_new (poll, "interval", json_integer (fresh.interval_ms));
        aq_plugin_plan_release (&fresh);
    } else if (stage == BK_POLL_STATUS)
        aq_plugin_provider_poll (provider, &plan, &response, &status);
    else {
        json_t *was = json_object_get (poll, "fetchState");
        status.state = json_is_integer (was) ? (int) json_integer_value (was) : AQ_POLL_DONE;
        status.fetch_result = true;
        //  the error poll () gave, for result () to keep or replace
        const char *said = aq_field_str (poll, "fetchError");
        status.error = said ? aq_plugin_host ()->strdup (said) : NULL;
        aq_plugin_provider_result (provider, &plan, &response, &status);
    }
    bk_poll_state_t state;
    if (status.state == AQ_POLL_RUNNING) {
        state = BK_POLL_RUNNING;
        int64_t interval = aq_field_int (poll, "interval", interval_ms);
        *next_ms = status.retry_ms ? status.retry_ms : interval;
    } else if (status.fetch_result && stage != BK_POLL_RESULT && aq_field_str (poll, "resultUrl")) {
        state = BK_POLL_FETCH;
        json_object_set_new (poll, "fetchState", json_integer (status.state));
        if (status.error)
            json_object_set_new (poll, "fetchError", json_string (status.error));
    } else if (status.state == AQ_POLL_DONE)
        state = BK_POLL_DONE;
    else {
        state = BK_POLL_FAILED;
        *error = strdup (status.error ? status.error : "provider reported a failure");
    }
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    aq_plugin_response_release (&response);
    return state;
}

void bk_poll_test (bool verbose) {
    char errbuf[128];
    json_t *config = json_loads ("{\"urlTemplate\": \"http://x/jobs/{{id}}\", \"statusPath\": "
                                 "\"state\", \"doneValues\": [\"ok\"], \"failValues\": [\"bad\"], "
                                 "\"intervalSeconds\": 1}",
                                 0, NULL);
    assert (bk_poll_check_config (config, errbuf, sizeof errbuf) == NULL);
    json_t *task = json_pack ("{s:O}", "pollConfig", config);
    int64_t next;
    char *error;
    json_t *answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"id\": \"j-7\"}");
    assert (bk_poll_step (NULL, task, BK_POLL_INITIAL, answer, 2000, &next, &error) ==
            BK_POLL_RUNNING);
    assert (next == 1000);
    assert (strcmp (aq_field_str (json_object_get (task, "_poll"), "statusUrl"),
                    "http://x/jobs/j-7") == 0);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"busy\"}");
    assert (bk_poll_step (NULL, task, BK_POLL_STATUS, answer, 2000, &next, &error) ==
            BK_POLL_RUNNING);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"bad\"}");
    assert (bk_poll_step (NULL, task, BK_POLL_STATUS, answer, 2000, &next, &error) ==
            BK_POLL_FAILED);
    assert (strcmp (error, "Polling status: bad") == 0);
    free (error);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"ok\"}");
    assert (bk_poll_step (NULL, task, BK_POLL_STATUS, answer, 2000, &next, &error) == BK_POLL_DONE);
    json_decref (answer);
    //  a first answer the template cannot use fails the task
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "not json");
    assert (bk_poll_step (NULL, task, BK_POLL_INITIAL, answer, 2000, &next, &error) ==
            BK_POLL_FAILED);
    free (error);
    json_decref (answer);
    json_decref (task);

    //  values are percent-encoded; the URL is at most S_URL_MAX bytes
    struct {
        const char *tmpl, *value, *url; //  url NULL: too long
    } renders[] = {
        {"http://x/jobs/{{ id }}?a=1&b={{id}}", "j-7._~", "http://x/jobs/j-7._~?a=1&b=j-7._~"},
        {"http://x/{{id}}", "a b/c?d=e&f#g%h", "http://x/a%20b%2Fc%3Fd%3De%26f%23g%25h"},
        {"http://x/{{id}}", "\u00e9\r\n", "http://x/%C3%A9%0D%0A"},
        {"http://x/{{id}}{{id}}{{id}}",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         NULL},
    };
    for (size_t i = 0; i < sizeof renders / sizeof renders[0]; i++) {
        char *value = strdup (renders[i].value);
        if (!renders[i].url) { //  3 values of 2731+ bytes: 8193 or more
            value = realloc (value, 2732);
            memset (value, 'v', 2731);
            value[2731] = '\0';
        }
        json_t *cfg = json_pack ("{s:s, s:s, s:[], s:[]}", "urlTemplate", renders[i].tmpl,
                                 "statusPath", "s", "doneValues", "failValues");
        assert (bk_poll_check_config (cfg, errbuf, sizeof errbuf) == NULL);
        json_t *job = json_pack ("{s:o}", "pollConfig", cfg);
        json_t *doc = json_pack ("{s:s}", "id", value);
        char *text = json_dumps (doc, 0);
        answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", text);
        bk_poll_state_t state =
            bk_poll_step (NULL, job, BK_POLL_INITIAL, answer, 2000, &next, &error);
        const char *url = aq_field_str (json_object_get (job, "_poll"), "statusUrl");
        if (renders[i].url)
            assert (state == BK_POLL_RUNNING && strcmp (url, renders[i].url) == 0);
        else {
            assert (state == BK_POLL_FAILED && !url);
            assert (strcmp (error, "pollConfig.urlTemplate renders a status URL over 8192 bytes") ==
                    0);
            free (error);
        }
        free (text);
        free (value);
        json_decref (doc);
        json_decref (answer);
        json_decref (job);
    }
    //  a value that fills the URL to exactly S_URL_MAX bytes is fine
    char *fill = malloc (S_URL_MAX + 1);
    memset (fill, 'f', S_URL_MAX - strlen ("http://x/"));
    fill[S_URL_MAX - strlen ("http://x/")] = '\0';
    task = json_pack ("{s:{s:s, s:s, s:[], s:[]}}", "pollConfig", "urlTemplate", "http://x/{{id}}",
                      "statusPath", "s", "doneValues", "failValues");
    json_t *doc = json_pack ("{s:s}", "id", fill);
    char *text = json_dumps (doc, 0);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", text);
    assert (bk_poll_step (NULL, task, BK_POLL_INITIAL, answer, 2000, &next, &error) ==
            BK_POLL_RUNNING);
    assert (strlen (aq_field_str (json_object_get (task, "_poll"), "statusUrl")) == S_URL_MAX);
    free (text);
    free (fill);
    json_decref (doc);
    json_decref (answer);
    json_decref (task);
    //  a template of 2049 characters is refused when the task is made
    char long_tmpl[S_TEMPLATE_MAX + 2];
    memset (long_tmpl, 'u', sizeof long_tmpl - 1);
    long_tmpl[sizeof long_tmpl - 1] = '\0';
    json_t *cfg = json_pack ("{s:s, s:s, s:[], s:[]}", "urlTemplate", long_tmpl, "statusPath", "s",
                             "doneValues", "failValues");
    assert (strcmp (bk_poll_check_config (cfg, errbuf, sizeof errbuf),
                    "pollConfig.urlTemplate must be at most 2048 characters") == 0);
    json_object_set_new (cfg, "urlTemplate", json_stringn (long_tmpl, S_TEMPLATE_MAX));
    assert (bk_poll_check_config (cfg, errbuf, sizeof errbuf) == NULL);
    json_decref (cfg);

    struct {
        const char *config, *error;
    } bad[] = {
        {"[]", "pollConfig must be an object"},
        {"{}", "pollConfig.urlTemplate is required"},
        {"{\"urlTemplate\": \"u\"}", "pollConfig.statusPath is required"},
        {"{\"urlTemplate\": \"u\", \"statusPath\": \"s\", \"doneValues\": [1], \"failValues\": []}",
         "pollConfig.doneValues must be an array of strings"},
        {"{\"urlTemplate\": \"u\", \"statusPath\": \"s\", \"doneValues\": [], \"failValues\": 3}",
         "pollConfig.failValues must be an array of strings"},
        {"{\"urlTemplate\": \"u\", \"statusPath\": \"s\", \"doneValues\": [], \"failValues\": [], "
         "\"intervalSeconds\": 0}",
         "pollConfig.intervalSeconds must be a number between 1 and 3600"},
        {"{\"urlTemplate\": \"u\", \"extra\": 1}", "Unknown field: pollConfig.extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *value = json_loads (bad[i].config, JSON_DECODE_ANY, NULL);
        const char *message = bk_poll_check_config (value, errbuf, sizeof errbuf);
        assert (message && strcmp (message, bad[i].error) == 0);
        json_decref (value);
    }
    json_decref (config);
    if (verbose)
        printf ("bk_poll: ok\n");
}
