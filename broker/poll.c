/*  poll.c - following a long-running job: pollConfig and provider plugins */
#include "poll.h"
#include "aq_proto.h"
#include "task.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

bk_poll_state_t bk_poll_step (json_t *task, int stage, const json_t *answer, int64_t interval_ms,
                              int64_t *next_ms, char **error) {
    *error = NULL;
    *next_ms = interval_ms;
    if (!json_object_get (task, "_poll"))
        json_object_set_new (task, "_poll", json_object ());
    return s_config_step (task, stage, answer, interval_ms, next_ms, error);
}

//  --------------------------------------------------------------------------
//  Providers: ops run in a provider host (providers.h); the task keeps the
//  op in "_poll"."op" {n, stage, answer} until its reply is applied.

int64_t bk_poll_provider_start (json_t *task, int stage, const json_t *answer) {
    json_t *poll = json_object_get (task, "_poll");
    if (!poll) {
        poll = json_object ();
        json_object_set_new (task, "_poll", poll);
    }
    int64_t n = aq_field_int (poll, "ops", 0) + 1;
    json_t *kept = json_object ();
    static const char *const fields[] = {"statusCode", "headers", "body", "bodyTruncated",
                                         "duration"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (json_object_get (answer, fields[i]))
            json_object_set (kept, fields[i], json_object_get (answer, fields[i]));
    json_object_set_new (poll, "ops", json_integer (n));
    json_object_set_new (
        poll, "op",
        json_pack ("{s:I, s:i, s:o}", "n", (json_int_t) n, "stage", stage, "answer", kept));
    json_object_del (poll, "due"); //  a poll's watchdog: the op is watched by its host
    return n;
}

static void s_copy_str (json_t *to, const char *key, const json_t *from, const char *from_key) {
    json_t *value = json_object_get (from, from_key);
    if (json_is_string (value))
        json_object_set (to, key, value);
}

json_t *bk_poll_provider_request (const json_t *task) {
    const json_t *poll = json_object_get (task, "_poll");
    const json_t *op = json_object_get (poll, "op");
    if (!op)
        return NULL;
    int stage = (int) aq_field_int (op, "stage", BK_POLL_STATUS);
    const json_t *answer = json_object_get (op, "answer");
    const char *url = stage == BK_POLL_INITIAL  ? aq_field_str (task, "targetUrl")
                      : stage == BK_POLL_STATUS ? aq_field_str (poll, "statusUrl")
                                                : aq_field_str (poll, "resultUrl");
    json_t *response = json_pack ("{s:s, s:I}", "url", url ? url : "", "statusCode",
                                  (json_int_t) aq_field_int (answer, "statusCode", 0));
    json_t *headers = json_object_get (answer, "headers");
    if (json_is_object (headers))
        json_object_set (response, "headers", headers);
    s_copy_str (response, "body", answer, "body");
    json_t *request = json_pack ("{s:s, s:o}", "op",
                                 stage == BK_POLL_INITIAL  ? "plan"
                                 : stage == BK_POLL_STATUS ? "poll"
                                                           : "result",
                                 "response", response);
    if (stage != BK_POLL_INITIAL) {
        json_t *plan = json_object ();
        s_copy_str (plan, "statusUrl", poll, "statusUrl");
        s_copy_str (plan, "resultUrl", poll, "resultUrl");
        s_copy_str (plan, "cancelUrl", poll, "cancelUrl");
        s_copy_str (plan, "cancelMethod", poll, "cancelMethod");
        json_object_set_new (request, "plan", plan);
    }
    if (stage == BK_POLL_RESULT) {
        //  the state and error poll () gave, for result () to keep or replace
        json_t *was = json_pack ("{s:I}", "state",
                                 (json_int_t) aq_field_int (poll, "fetchState", AQ_POLL_DONE));
        s_copy_str (was, "error", poll, "fetchError");
        json_object_set_new (request, "status", was);
    }
    return request;
}

//  A message naming the provider: "provider 'fal' <what>". Caller frees.
static char *s_provider_error (const aq_plugin_provider_t *provider, const char *what) {
    char text[512];
    snprintf (text, sizeof text, "provider '%s' %s", aq_plugin_provider_name (provider), what);
    return strdup (text);
}

//  Checks a URL of a plan: NULL when the provider may use it, else the
//  task's error (malloc'd).
static char *s_check_url (const aq_plugin_provider_t *provider, const char *what, const char *url) {
    if (aq_plugin_provider_url_allowed (provider, url))
        return NULL;
    char text[320];
    snprintf (text, sizeof text, "answered %s URL outside its hosts: %.200s%s", what, url,
              strlen (url) > 200 ? "..." : "");
    return s_provider_error (provider, text);
}

char *bk_poll_provider_url_error (const aq_plugin_provider_t *provider, const json_t *task,
                                  const char *key) {
    const char *url = aq_field_str (json_object_get (task, "_poll"), key);
    const char *what = strcmp (key, "statusUrl") == 0   ? "a status"
                       : strcmp (key, "resultUrl") == 0 ? "a result"
                                                        : "a cancel";
    return url ? s_check_url (provider, what, url) : NULL;
}

//  The new plan in reply (the plan op's): checked, then stored in poll.
//  NULL, or the task's error (malloc'd).
static char *s_take_plan (const aq_plugin_provider_t *provider, json_t *poll, const json_t *plan) {
    static const char *const keys[] = {"statusUrl", "resultUrl", "cancelUrl"};
    static const char *const whats[] = {"a status", "a result", "a cancel"};
    const char *method = aq_field_str (plan, "cancelMethod");
    const char *broken = plan && !json_is_object (plan) ? "answered no plan" : NULL;
    for (size_t i = 0; i < 3; i++) {
        json_t *url = json_object_get (plan, keys[i]);
        if (url && !json_is_string (url))
            broken = "answered a malformed plan";
    }
    if (method && (strlen (method) == 0 || strlen (method) > 16 ||
                   strspn (method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen (method)))
        broken = "answered an invalid cancel method";
    if (broken)
        return s_provider_error (provider, broken);
    for (size_t i = 0; i < 3; i++) {
        const char *url = aq_field_str (plan, keys[i]);
        char *error = url ? s_check_url (provider, whats[i], url) : NULL;
        if (error)
            return error;
    }
    s_set_str (poll, "statusUrl", aq_field_str (plan, "statusUrl"));
    s_set_str (poll, "resultUrl", aq_field_str (plan, "resultUrl"));
    s_set_str (poll, "cancelUrl", aq_field_str (plan, "cancelUrl"));
    s_set_str (poll, "cancelMethod", method);
    int64_t interval = aq_field_int (plan, "intervalMs", 0);
    if (interval > 0 && interval <= 86400000)
        json_object_set_new (poll, "interval", json_integer (interval));
    return NULL;
}

bk_poll_state_t bk_poll_provider_reply (const aq_plugin_provider_t *provider, json_t *task,
                                        const json_t *reply, int64_t interval_ms, int64_t *next_ms,
                                        char **error) {
    *error = NULL;
    *next_ms = interval_ms;
    json_t *poll = json_object_get (task, "_poll");
    int stage = (int) aq_field_int (json_object_get (poll, "op"), "stage", BK_POLL_STATUS);
    json_object_del (poll, "op");
    //  The host checked what the plugin answered; a plugin that broke its
    //  host could answer anything, so check again what the broker relies on
    json_t *value = json_object_get (reply, "state");
    int64_t state = json_is_integer (value) ? json_integer_value (value) : -1;
    json_t *text = json_object_get (reply, "error");
    int64_t retry_ms = aq_field_int (reply, "retryMs", 0);
    if (state < AQ_POLL_RUNNING || state > AQ_POLL_FAILED || (text && !json_is_string (text)) ||
        json_string_length (text) > 511 || retry_ms < 0 || retry_ms > 86400000)
        *error = s_provider_error (provider, "answered an unknown state");
    else if (stage == BK_POLL_INITIAL)
        *error = s_take_plan (provider, poll, json_object_get (reply, "plan"));
    if (!*error && state == AQ_POLL_RUNNING && !aq_field_str (poll, "statusUrl"))
        *error = s_provider_error (provider, "gave no status URL");
    if (*error)
        return BK_POLL_FAILED;
    bool fetch = aq_field_bool (reply, "fetchResult", false);
    if (state == AQ_POLL_RUNNING) {
        int64_t interval = aq_field_int (poll, "interval", interval_ms);
        *next_ms = retry_ms ? retry_ms : interval;
        return BK_POLL_RUNNING;
    }
    if (fetch && stage != BK_POLL_RESULT && aq_field_str (poll, "resultUrl")) {
        json_object_set_new (poll, "fetchState", json_integer (state));
        s_set_str (poll, "fetchError", json_string_value (text));
        return BK_POLL_FETCH;
    }
    if (state == AQ_POLL_DONE)
        return BK_POLL_DONE;
    *error = strdup (text ? json_string_value (text) : "provider reported a failure");
    return BK_POLL_FAILED;
}

//  Applies the reply text to task's op; returns the state.
static bk_poll_state_t s_apply (const aq_plugin_provider_t *provider, json_t *task,
                                const char *text, int64_t *next, char **error) {
    json_t *reply = json_loads (text, 0, NULL);
    assert (reply);
    bk_poll_state_t state = bk_poll_provider_reply (provider, task, reply, 2000, next, error);
    json_decref (reply);
    return state;
}

//  Starts an op of stage on task with an answer whose body is body.
static void s_start (json_t *task, int stage, const char *body) {
    json_t *answer =
        json_pack ("{s:i, s:{s:s}, s:s, s:i, s:s}", "statusCode", 200, "headers", "content-type",
                   "application/json", "body", body, "duration", 12, "kind", "poll");
    bk_poll_provider_start (task, stage, answer);
    json_decref (answer);
}

//  A provider task's ops: the requests for its host and the replies
//  applied, with fal's descriptor (read, not opened, as the broker does).
static void s_test_provider (void) {
    char *dir = aq_plugin_loader_default_dir ();
    char path[4096];
    struct stat st;
    if (!dir || snprintf (path, sizeof path, "%s/fal.so", dir) < 0 || stat (path, &st) != 0) {
        printf ("bk_poll: no built plugins; provider checks skipped\n");
        free (dir);
        return;
    }
    aq_plugin_loader_t *loader = aq_plugin_loader_new (NULL);
    aq_plugin_loader_describe_only (loader, AQ_PLUGIN_PROVIDER);
    assert (aq_plugin_loader_load_file (loader, path) == 0);
    const aq_plugin_provider_t *fal = aq_plugin_loader_provider (loader, "fal");
    json_t *task = json_pack ("{s:s, s:s}", "provider", "fal", "targetUrl",
                              "https://queue.fal.run/fal-ai/flux");
    assert (bk_poll_provider_request (task) == NULL);
    s_start (task, BK_POLL_INITIAL, "{\"request_id\": \"r1\"}");
    json_t *poll = json_object_get (task, "_poll");
    assert (aq_field_int (json_object_get (poll, "op"), "n", 0) == 1);
    json_t *request = bk_poll_provider_request (task);
    json_t *expect =
        json_pack ("{s:s, s:{s:s, s:i, s:{s:s}, s:s}}", "op", "plan", "response", "url",
                   "https://queue.fal.run/fal-ai/flux", "statusCode", 200, "headers",
                   "content-type", "application/json", "body", "{\"request_id\": \"r1\"}");
    assert (json_equal (request, expect));
    json_decref (request);
    json_decref (expect);
    int64_t next;
    char *error;
    assert (s_apply (fal, task,
                     "{\"state\": 0, \"fetchResult\": false, \"plan\": {"
                     "\"statusUrl\": \"https://queue.fal.run/r/1/status\", "
                     "\"resultUrl\": \"https://queue.fal.run/r/1\", "
                     "\"cancelUrl\": \"https://queue.fal.run/r/1/cancel\", "
                     "\"cancelMethod\": \"PUT\", \"intervalMs\": 1000}}",
                     &next, &error) == BK_POLL_RUNNING);
    assert (next == 1000 && !error && !json_object_get (poll, "op"));
    assert (strcmp (aq_field_str (poll, "statusUrl"), "https://queue.fal.run/r/1/status") == 0);
    assert (strcmp (aq_field_str (poll, "cancelMethod"), "PUT") == 0);
    //  a status answer: the stored plan goes with it; a retry delay wins
    s_start (task, BK_POLL_STATUS, "{\"status\": \"IN_QUEUE\"}");
    assert (aq_field_int (json_object_get (poll, "op"), "n", 0) == 2);
    request = bk_poll_provider_request (task);
    assert (strcmp (aq_field_str (request, "op"), "poll") == 0);
    assert (strcmp (aq_field_str (json_object_get (request, "response"), "url"),
                    "https://queue.fal.run/r/1/status") == 0);
    assert (strcmp (aq_field_str (json_object_get (request, "plan"), "resultUrl"),
                    "https://queue.fal.run/r/1") == 0);
    json_decref (request);
    assert (s_apply (fal, task, "{\"state\": 0, \"retryMs\": 300}", &next, &error) ==
            BK_POLL_RUNNING);
    assert (next == 300);
    //  done, with the result to fetch; the result's reply ends it
    s_start (task, BK_POLL_STATUS, "{\"status\": \"COMPLETED\"}");
    assert (s_apply (fal, task, "{\"state\": 2, \"error\": \"NSFW\", \"fetchResult\": true}", &next,
                     &error) == BK_POLL_FETCH);
    s_start (task, BK_POLL_RESULT, "{}");
    request = bk_poll_provider_request (task);
    expect = json_pack ("{s:i, s:s}", "state", AQ_POLL_FAILED, "error", "NSFW");
    assert (strcmp (aq_field_str (request, "op"), "result") == 0);
    assert (json_equal (json_object_get (request, "status"), expect));
    json_decref (request);
    json_decref (expect);
    assert (s_apply (fal, task, "{\"state\": 1}", &next, &error) == BK_POLL_DONE && !error);
    //  replies the broker does not trust
    const char *bad[][2] = {
        {"{\"state\": 7}", "provider 'fal' answered an unknown state"},
        {"{\"state\": \"done\"}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 2, \"error\": 5}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 0, \"retryMs\": -1}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 2, \"error\": \"boom\"}", "boom"},
        {"{\"state\": 2}", "provider reported a failure"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_start (task, BK_POLL_STATUS, "{}");
        assert (s_apply (fal, task, bad[i][0], &next, &error) == BK_POLL_FAILED);
        assert (strcmp (error, bad[i][1]) == 0);
        free (error);
    }
    const char *bad_plans[][2] = {
        {"{\"state\": 0, \"plan\": {}}", "provider 'fal' gave no status URL"},
        {"{\"state\": 0, \"plan\": []}", "provider 'fal' answered no plan"},
        {"{\"state\": 0, \"plan\": {\"statusUrl\": 1}}",
         "provider 'fal' answered a malformed plan"},
        {"{\"state\": 0, \"plan\": {\"statusUrl\": \"https://queue.fal.run/s\", "
         "\"cancelMethod\": \"PUT\\r\\nX: y\"}}",
         "provider 'fal' answered an invalid cancel method"},
        //  Hosts: a plan may only point at the provider's own https hosts
        {"{\"state\": 0, \"plan\": {\"statusUrl\": \"http://evil.example/x\"}}",
         "provider 'fal' answered a status URL outside its hosts: http://evil.example/x"},
        {"{\"state\": 1, \"fetchResult\": true, \"plan\": {\"statusUrl\": "
         "\"https://queue.fal.run/s\", \"resultUrl\": \"https://queue.fal.run.evil.example/r\"}}",
         "provider 'fal' answered a result URL outside its hosts: "
         "https://queue.fal.run.evil.example/r"},
        {"{\"state\": 0, \"plan\": {\"statusUrl\": \"https://queue.fal.run/s\", "
         "\"cancelUrl\": \"https://queue.fal.run:8443/c\"}}",
         "provider 'fal' answered a cancel URL outside its hosts: https://queue.fal.run:8443/c"},
    };
    for (size_t i = 0; i < sizeof bad_plans / sizeof *bad_plans; i++) {
        json_t *fresh = json_pack ("{s:s, s:s}", "provider", "fal", "targetUrl", "https://x/");
        s_start (fresh, BK_POLL_INITIAL, "{}");
        assert (s_apply (fal, fresh, bad_plans[i][0], &next, &error) == BK_POLL_FAILED);
        if (strcmp (error, bad_plans[i][1]) != 0)
            printf ("got '%s'\n", error);
        assert (strcmp (error, bad_plans[i][1]) == 0);
        assert (!json_object_get (json_object_get (fresh, "_poll"), "statusUrl"));
        free (error);
        json_decref (fresh);
    }
    //  A plan stored before the hosts were checked is checked again
    json_object_set_new (poll, "statusUrl", json_string ("https://queue.fal.run/ok"));
    assert (bk_poll_provider_url_error (fal, task, "statusUrl") == NULL);
    assert (bk_poll_provider_url_error (fal, task, "resultUrl") == NULL);
    json_object_set_new (poll, "resultUrl", json_string ("http://queue.fal.run/r"));
    error = bk_poll_provider_url_error (fal, task, "resultUrl");
    assert (error && strcmp (error, "provider 'fal' answered a result URL outside its hosts: "
                                    "http://queue.fal.run/r") == 0);
    free (error);
    json_object_del (poll, "resultUrl");
    assert (bk_poll_provider_url_error (fal, task, "resultUrl") == NULL);
    json_decref (task);
    aq_plugin_loader_destroy (&loader);
    free (dir);
}

void bk_poll_test (bool verbose) {
    s_test_provider ();
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
    assert (bk_poll_step (task, BK_POLL_INITIAL, answer, 2000, &next, &error) == BK_POLL_RUNNING);
    assert (next == 1000);
    assert (strcmp (aq_field_str (json_object_get (task, "_poll"), "statusUrl"),
                    "http://x/jobs/j-7") == 0);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"busy\"}");
    assert (bk_poll_step (task, BK_POLL_STATUS, answer, 2000, &next, &error) == BK_POLL_RUNNING);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"bad\"}");
    assert (bk_poll_step (task, BK_POLL_STATUS, answer, 2000, &next, &error) == BK_POLL_FAILED);
    assert (strcmp (error, "Polling status: bad") == 0);
    free (error);
    json_decref (answer);
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "{\"state\": \"ok\"}");
    assert (bk_poll_step (task, BK_POLL_STATUS, answer, 2000, &next, &error) == BK_POLL_DONE);
    json_decref (answer);
    //  a first answer the template cannot use fails the task
    answer = json_pack ("{s:i, s:s}", "statusCode", 200, "body", "not json");
    assert (bk_poll_step (task, BK_POLL_INITIAL, answer, 2000, &next, &error) == BK_POLL_FAILED);
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
        bk_poll_state_t state = bk_poll_step (job, BK_POLL_INITIAL, answer, 2000, &next, &error);
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
    assert (bk_poll_step (task, BK_POLL_INITIAL, answer, 2000, &next, &error) == BK_POLL_RUNNING);
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
