/*  poll.c - following a long-running job: pollConfig and provider plugins */
#include "poll.h"
#include "aq_json.h"
#include "loader.h"
#include "provider_host.h"
#include "request.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *bk_poll_check_config (const aq_node_t *config, char *errbuf, size_t errbuf_size) {
    if (config->type != AQ_NODE_MAP)
        return "pollConfig must be an object";
    static const char *const fields[] = {"urlTemplate", "statusPath",      "doneValues",
                                         "failValues",  "intervalSeconds", NULL};
    if (bk_task_unknown_field (config, fields, "pollConfig.", errbuf, errbuf_size))
        return errbuf;
    aq_node_t value;
    if (!aq_node_get (config, "urlTemplate", &value) || !aq_node_is_str (&value) ||
        value.count == 0)
        return "pollConfig.urlTemplate is required";
    if (value.count > BK_POLL_TEMPLATE_MAX)
        return "pollConfig.urlTemplate must be at most 2048 characters";
    if (!aq_node_get (config, "statusPath", &value) || !aq_node_is_str (&value) || value.count == 0)
        return "pollConfig.statusPath is required";
    static const char *lists[] = {"doneValues", "failValues"};
    for (int i = 0; i < 2; i++) {
        bool ok = aq_node_get (config, lists[i], &value) && value.type == AQ_NODE_ARRAY;
        aq_iter_t it;
        aq_node_iter (&value, &it);
        aq_node_t item;
        while (ok && aq_iter_next (&it, NULL, &item))
            ok = aq_node_is_str (&item);
        if (!ok) {
            snprintf (errbuf, errbuf_size, "pollConfig.%s must be an array of strings", lists[i]);
            return errbuf;
        }
    }
    double seconds;
    if (aq_node_get (config, "intervalSeconds", &value) &&
        (!aq_node_number (&value, &seconds) || seconds < 1 || seconds > 3600))
        return "pollConfig.intervalSeconds must be a number between 1 and 3600";
    return NULL;
}

//  The node at a dot path into doc (keys of maps, decimal indexes of arrays).
static bool s_walk (const aq_node_t *doc, const char *path, aq_node_t *out) {
    *out = *doc;
    while (path && *path) {
        const char *dot = strchr (path, '.');
        size_t len = dot ? (size_t) (dot - path) : strlen (path);
        aq_iter_t it;
        aq_node_iter (out, &it);
        aq_node_t key, value;
        bool found = false;
        if (out->type == AQ_NODE_MAP) {
            while (!found && aq_iter_next (&it, &key, &value))
                found =
                    aq_node_is_str (&key) && key.count == len && memcmp (key.data, path, len) == 0;
        } else if (out->type == AQ_NODE_ARRAY && len > 0 && len < 10) {
            long index = 0;
            for (size_t i = 0; i < len && index >= 0; i++)
                index = isdigit ((unsigned char) path[i]) ? index * 10 + (path[i] - '0') : -1;
            for (long i = 0; index >= 0 && i <= index && aq_iter_next (&it, NULL, &value); i++)
                found = i == index;
        }
        if (!found)
            return false;
        *out = value;
        path = dot ? dot + 1 : NULL;
    }
    return true;
}

char *bk_poll_path_text (const aq_node_t *doc, const char *path) {
    aq_node_t node;
    if (!s_walk (doc, path, &node) || aq_node_is_nil (&node))
        return NULL;
    if (aq_node_is_str (&node))
        return aq_node_strdup (&node);
    return aq_json_dumps (&node);
}

//  Appends text (len bytes) to out, percent-encoded unless raw: RFC 3986's
//  unreserved characters stay, every other byte becomes %XX. False once out
//  would pass BK_POLL_URL_MAX bytes.
static bool s_append (char *out, size_t *used, const char *text, size_t len, bool raw) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        bool keep = raw || isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~';
        if (*used + (keep ? 1 : 3) > BK_POLL_URL_MAX)
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

//  Fills each {{path}} of tmpl with the text at path in doc, percent-
//  encoded. Returns the URL (caller frees), or NULL with a static message
//  in *error: a placeholder cannot be filled, or the URL would be over
//  BK_POLL_URL_MAX bytes (it stops there: bounded work).
static char *s_render_url (const char *tmpl, size_t tmpl_size, const aq_node_t *doc,
                           const char **error) {
    char *out = malloc (BK_POLL_URL_MAX + 1);
    size_t used = 0;
    assert (out);
    *error = "pollConfig.urlTemplate cannot be filled from the response";
    const char *at = tmpl, *end_of = tmpl + tmpl_size;
    for (;;) {
        const char *open = memmem (at, (size_t) (end_of - at), "{{", 2);
        if (!open) {
            if (!s_append (out, &used, at, (size_t) (end_of - at), true))
                goto too_long;
            break;
        }
        if (!s_append (out, &used, at, (size_t) (open - at), true))
            goto too_long;
        const char *start = open + 2, *close = memmem (start, (size_t) (end_of - start), "}}", 2);
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
        char *value = doc ? bk_poll_path_text (doc, path) : NULL;
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

static bool s_listed (const aq_node_t *config, const char *list, const char *text) {
    aq_node_t values, item;
    if (!text || !aq_node_get (config, list, &values))
        return false;
    aq_iter_t it;
    aq_node_iter (&values, &it);
    while (aq_iter_next (&it, NULL, &item))
        if (aq_node_streq (&item, text))
            return true;
    return false;
}

bk_poll_state_t bk_poll_config_step (bk_task_t *task, int stage, const char *body, size_t body_size,
                                     int64_t interval_ms, int64_t *next_ms, const char **error) {
    *error = NULL;
    aq_node_t config, value;
    if (aq_msg_parse (task->poll_config.data, task->poll_config.size, &config) != 0) {
        *error = "pollConfig is unreadable";
        return BK_POLL_FAILED;
    }
    task->poll.active = true;
    double seconds;
    *next_ms = aq_node_get (&config, "intervalSeconds", &value) && aq_node_number (&value, &seconds)
                   ? (int64_t) (seconds * 1000)
                   : interval_ms;
    task->poll.interval_ms = *next_ms; //  also after errors
    //  the answer, JSON text, as msgpack
    aq_writer_t parsed;
    aq_writer_init (&parsed);
    char *text = body ? strndup (body, body_size) : NULL;
    aq_node_t doc;
    size_t size = 0;
    const uint8_t *data =
        text && aq_json_parse (text, &parsed) == 0 ? aq_writer_data (&parsed, &size) : NULL;
    bool json = data && aq_msg_parse (data, size, &doc) == 0;
    free (text);
    bk_poll_state_t state = BK_POLL_RUNNING;
    if (stage == BK_POLL_INITIAL) {
        aq_node_get (&config, "urlTemplate", &value);
        char *url =
            s_render_url ((const char *) value.data, value.count, json ? &doc : NULL, error);
        if (!url)
            state = BK_POLL_FAILED;
        else
            task->poll.status_url = bk_task_strdup (task, url);
        free (url);
    } else {
        char path[1024] = "";
        aq_node_get (&config, "statusPath", &value);
        aq_node_strcpy (&value, path, sizeof path);
        char *status = json ? bk_poll_path_text (&doc, path) : NULL;
        if (s_listed (&config, "doneValues", status))
            state = BK_POLL_DONE;
        else if (s_listed (&config, "failValues", status)) {
            char message[256];
            snprintf (message, sizeof message, "Polling status: %.200s", status);
            *error = bk_task_strdup (task, message);
            state = BK_POLL_FAILED;
        }
        free (status);
    }
    aq_writer_release (&parsed);
    return state;
}

//  --------------------------------------------------------------------------
//  Provider tasks: ops run in a provider host (providers.h); the task keeps
//  the op in its poll plan until its reply is applied.

int64_t bk_poll_provider_start (bk_task_t *task, int stage, const aq_node_t *answer) {
    static const char *const kept[] = {"statusCode", "headers", "body", "bodyTruncated",
                                       "duration"};
    aq_writer_t w;
    aq_writer_init (&w);
    size_t mark = aq_write_map_open (&w);
    uint32_t pairs = 0;
    aq_node_t value;
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        if (aq_node_get (answer, kept[i], &value)) {
            aq_write_str (&w, kept[i]);
            aq_write_raw (&w, value.raw, value.raw_size);
            pairs++;
        }
    aq_write_map_close (&w, mark, pairs);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    assert (data);
    bk_poll_t *poll = &task->poll;
    bk_task_set_blob (task, &poll->op, data, size);
    aq_writer_release (&w);
    poll->active = true;
    poll->op_pending = true;
    poll->op_stage = stage;
    poll->op_n++;
    poll->due = -1; //  a poll's watchdog: the op is watched by its host
    return poll->op_n;
}

//  A map of the plan's URLs that are set, under their wire names.
static void s_write_plan (const bk_poll_t *poll, aq_writer_t *w) {
    const char *names[] = {"statusUrl", "resultUrl", "cancelUrl", "cancelMethod"};
    const char *values[] = {poll->status_url, poll->result_url, poll->cancel_url,
                            poll->cancel_method};
    size_t mark = aq_write_map_open (w);
    uint32_t pairs = 0;
    for (size_t i = 0; i < 4; i++)
        if (values[i]) {
            aq_write_kv_str (w, names[i], values[i]);
            pairs++;
        }
    aq_write_map_close (w, mark, pairs);
}

void bk_poll_provider_request (const bk_task_t *task, aq_writer_t *w) {
    const bk_poll_t *poll = &task->poll;
    int stage = poll->op_stage;
    aq_node_t answer, value;
    if (!poll->op.size || aq_msg_parse (poll->op.data, poll->op.size, &answer) != 0)
        answer = (aq_node_t){.type = AQ_NODE_NIL};
    const char *url = stage == BK_POLL_INITIAL  ? task->target_url
                      : stage == BK_POLL_STATUS ? poll->status_url
                                                : poll->result_url;
    aq_write_map (w, stage == BK_POLL_INITIAL ? 2 : stage == BK_POLL_STATUS ? 3 : 4);
    aq_write_kv_str (w, "op",
                     stage == BK_POLL_INITIAL  ? "plan"
                     : stage == BK_POLL_STATUS ? "poll"
                                               : "result");
    aq_write_str (w, "response");
    size_t mark = aq_write_map_open (w);
    aq_write_kv_str (w, "url", url ? url : "");
    int64_t code = 0;
    if (!aq_node_get (&answer, "statusCode", &value) || !aq_node_int_in (&value, 0, 999, &code))
        code = 0;
    aq_write_kv_int (w, "statusCode", code);
    uint32_t pairs = 2;
    if (aq_node_get (&answer, "headers", &value) && value.type == AQ_NODE_MAP) {
        aq_write_str (w, "headers");
        aq_write_raw (w, value.raw, value.raw_size);
        pairs++;
    }
    if (aq_node_get (&answer, "body", &value) && aq_node_is_str (&value)) {
        aq_write_str (w, "body");
        aq_write_raw (w, value.raw, value.raw_size);
        pairs++;
    }
    aq_write_map_close (w, mark, pairs);
    if (stage != BK_POLL_INITIAL) {
        aq_write_str (w, "plan");
        s_write_plan (poll, w);
    }
    if (stage == BK_POLL_RESULT) {
        //  the state and error poll () gave, for result () to keep or replace
        aq_write_str (w, "status");
        aq_write_map (w, poll->fetch_error ? 2 : 1);
        aq_write_kv_int (w, "state", poll->fetch_state >= 0 ? poll->fetch_state : AQ_POLL_DONE);
        if (poll->fetch_error)
            aq_write_kv_str (w, "error", poll->fetch_error);
    }
}

char *bk_poll_provider_key (const bk_task_t *task, char key[BK_POLL_KEY_SIZE]) {
    char id[AQ_UUID_TEXT];
    snprintf (key, BK_POLL_KEY_SIZE, "%s/%lld", aq_uuid_format (task->id, id),
              (long long) task->poll.op_n);
    return key;
}

bool bk_poll_provider_key_parse (const char *key, uint8_t id[16], int64_t *n) {
    char text[AQ_UUID_TEXT];
    const char *slash = strchr (key, '/');
    if (!slash || slash - key != AQ_UUID_TEXT - 1)
        return false;
    memcpy (text, key, AQ_UUID_TEXT - 1);
    text[AQ_UUID_TEXT - 1] = '\0';
    char *end;
    long long number = strtoll (slash + 1, &end, 10);
    if (aq_uuid_parse (text, id) != 0 || !isdigit ((unsigned char) slash[1]) || *end)
        return false;
    *n = number;
    return true;
}

bool bk_poll_provider_awaits (const bk_task_t *task, int64_t n) {
    return task->status == BK_ST_POLLING && task->poll.op_pending && task->poll.op_n == n;
}

void bk_poll_provider_drop (bk_task_t *task) {
    task->poll.op_pending = false;
}

//  "provider 'fal' <what>" in the task's arena.
static const char *s_provider_error (const aq_plugin_provider_t *provider, bk_task_t *task,
                                     const char *what) {
    char text[512];
    snprintf (text, sizeof text, "provider '%s' %s", aq_plugin_provider_name (provider), what);
    return bk_task_strdup (task, text);
}

//  Checks a URL of a plan: NULL when the provider may use it, else the
//  task's error in errbuf. what: "a status", "a result", "a cancel".
static const char *s_check_url (const aq_plugin_provider_t *provider, const char *what,
                                const char *url, char *errbuf, size_t size) {
    if (aq_plugin_provider_url_allowed (provider, url))
        return NULL;
    snprintf (errbuf, size, "provider '%s' answered %s URL outside its hosts: %.200s%s",
              aq_plugin_provider_name (provider), what, url, strlen (url) > 200 ? "..." : "");
    return errbuf;
}

static const char *const s_whats[] = {NULL, "a status", "a result", "a cancel"};

const char *bk_poll_provider_url_error (const aq_plugin_provider_t *provider, const bk_task_t *task,
                                        int which, char *errbuf, size_t size) {
    assert (which >= BK_POLL_STATUS && which <= BK_POLL_CANCEL);
    if (!provider) {
        snprintf (errbuf, size, "provider plugin is no longer loaded");
        return errbuf;
    }
    const char *url = which == BK_POLL_STATUS   ? task->poll.status_url
                      : which == BK_POLL_RESULT ? task->poll.result_url
                                                : task->poll.cancel_url;
    return url ? s_check_url (provider, s_whats[which], url, errbuf, size) : NULL;
}

//  A string node as a NUL-terminated copy in the task's arena; NULL when it
//  is not a string or holds a NUL.
static char *s_text (bk_task_t *task, const aq_node_t *node) {
    if (!aq_node_is_str (node) || memchr (node->data, 0, node->count))
        return NULL;
    return bk_arena_strndup (task->arena, (const char *) node->data, node->count);
}

//  The new plan in reply (a plan op's): checked, then stored in the task.
//  NULL, or the task's error.
static const char *s_take_plan (const aq_plugin_provider_t *provider, bk_task_t *task,
                                const aq_node_t *reply) {
    static const char *const keys[] = {"statusUrl", "resultUrl", "cancelUrl"};
    aq_node_t plan, value;
    bool given = aq_node_get (reply, "plan", &plan);
    const char *broken = given && plan.type != AQ_NODE_MAP ? "answered no plan" : NULL;
    char *urls[3] = {NULL, NULL, NULL}, *method = NULL;
    for (size_t i = 0; given && i < 3; i++)
        if (aq_node_get (&plan, keys[i], &value) && !(urls[i] = s_text (task, &value)))
            broken = "answered a malformed plan";
    if (given && aq_node_get (&plan, "cancelMethod", &value) && aq_node_is_str (&value)) {
        method = s_text (task, &value);
        if (!method || !*method || strlen (method) > 16 ||
            strspn (method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen (method))
            broken = "answered an invalid cancel method";
    }
    if (broken)
        return s_provider_error (provider, task, broken);
    char errbuf[320];
    for (size_t i = 0; i < 3; i++)
        if (urls[i] && s_check_url (provider, s_whats[i + 1], urls[i], errbuf, sizeof errbuf))
            return bk_task_strdup (task, errbuf);
    bk_poll_t *poll = &task->poll;
    poll->status_url = urls[0];
    poll->result_url = urls[1];
    poll->cancel_url = urls[2];
    poll->cancel_method = method;
    if (given && aq_node_get (&plan, "intervalMs", &value) && value.type == AQ_NODE_INT &&
        value.i > 0 && value.i <= 86400000)
        poll->interval_ms = value.i;
    return NULL;
}

bk_poll_state_t bk_poll_provider_reply (const aq_plugin_provider_t *provider, bk_task_t *task,
                                        const aq_node_t *reply, int64_t interval_ms,
                                        int64_t *next_ms, const char **error) {
    *error = NULL;
    *next_ms = interval_ms;
    bk_poll_t *poll = &task->poll;
    int stage = poll->op_stage;
    poll->op_pending = false;
    //  The host checked what the plugin answered; a plugin that broke its
    //  host could answer anything, so check again what the broker relies on
    aq_node_t value, text;
    int64_t state = -1, retry_ms = 0;
    if (aq_node_get (reply, "state", &value) && value.type == AQ_NODE_INT)
        state = value.i;
    bool has_text = aq_node_get (reply, "error", &text);
    if (aq_node_get (reply, "retryMs", &value) && value.type == AQ_NODE_INT)
        retry_ms = value.i;
    if (state < AQ_POLL_RUNNING || state > AQ_POLL_FAILED ||
        (has_text &&
         (!aq_node_is_str (&text) || text.count > 511 || memchr (text.data, 0, text.count))) ||
        retry_ms < 0 || retry_ms > 86400000)
        *error = s_provider_error (provider, task, "answered an unknown state");
    else if (stage == BK_POLL_INITIAL)
        *error = s_take_plan (provider, task, reply);
    if (!*error && state == AQ_POLL_RUNNING && !poll->status_url)
        *error = s_provider_error (provider, task, "gave no status URL");
    if (*error)
        return BK_POLL_FAILED;
    bool fetch =
        aq_node_get (reply, "fetchResult", &value) && value.type == AQ_NODE_BOOL && value.b;
    char *message = has_text ? s_text (task, &text) : NULL;
    if (state == AQ_POLL_RUNNING) {
        *next_ms = retry_ms ? retry_ms : poll->interval_ms >= 0 ? poll->interval_ms : interval_ms;
        return BK_POLL_RUNNING;
    }
    if (fetch && stage != BK_POLL_RESULT && poll->result_url) {
        poll->fetch_state = (int) state;
        poll->fetch_error = message;
        return BK_POLL_FETCH;
    }
    if (state == AQ_POLL_DONE)
        return BK_POLL_DONE;
    *error = message ? message : "provider reported a failure";
    return BK_POLL_FAILED;
}

//  --------------------------------------------------------------------------

//  A task with the pollConfig given as JSON text.
static bk_task_t *s_task (const char *config) {
    bk_task_t *task = bk_task_new (0);
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (config, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_task_set_blob (task, &task->poll_config, data, size);
    aq_writer_release (&w);
    return task;
}

static const char *s_check (const char *config) {
    static char errbuf[128];
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse (config, &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    const char *error = bk_poll_check_config (&node, errbuf, sizeof errbuf);
    if (error && error != errbuf) {
        snprintf (errbuf, sizeof errbuf, "%s", error);
        error = errbuf;
    }
    aq_writer_release (&w);
    return error;
}

//  A JSON text as a checked msgpack node, its bytes in w.
static void s_node (aq_writer_t *w, const char *json, aq_node_t *node) {
    aq_writer_reset (w);
    assert (aq_json_parse (json, w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    assert (aq_msg_parse (data, size, node) == 0);
}

//  Starts an op of stage on task with a RESULT body whose body is body.
static int64_t s_start (bk_task_t *task, int stage, const char *body) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 6);
    aq_write_kv_int (&w, "statusCode", 200);
    aq_write_str (&w, "headers");
    aq_write_map (&w, 1);
    aq_write_kv_str (&w, "content-type", "application/json");
    aq_write_kv_str (&w, "body", body);
    aq_write_kv_int (&w, "duration", 12);
    aq_write_kv_str (&w, "kind", "poll");
    aq_write_kv_str (&w, "lease", "00112233445566778899aabbccddeeff");
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t answer;
    assert (aq_msg_parse (data, size, &answer) == 0);
    int64_t n = bk_poll_provider_start (task, stage, &answer);
    aq_writer_release (&w);
    return n;
}

//  The host request for task's op, as compact JSON (caller frees).
static char *s_request (const bk_task_t *task) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_poll_provider_request (task, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_release (&w);
    return text;
}

//  Applies the reply (JSON text) to task's op; returns the state.
static bk_poll_state_t s_apply (const aq_plugin_provider_t *provider, bk_task_t *task,
                                const char *reply, int64_t *next, const char **error) {
    aq_writer_t w;
    aq_writer_init (&w);
    aq_node_t node;
    s_node (&w, reply, &node);
    bk_poll_state_t state = bk_poll_provider_reply (provider, task, &node, 2000, next, error);
    aq_writer_release (&w);
    return state;
}

//  Runs task's op the whole way: the request, a provider host's run (in
//  this process: opened is the plugin loaded to run), the reply applied.
static bk_poll_state_t s_round_trip (const aq_plugin_provider_t *described,
                                     const aq_plugin_provider_t *opened, bk_task_t *task,
                                     int64_t *next, const char **error) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_poll_provider_request (task, &w);
    size_t size, reply_size;
    const uint8_t *data = aq_writer_data (&w, &size);
    uint8_t *reply = aq_provider_host_run (opened, data, size, &reply_size);
    aq_node_t node;
    assert (reply && aq_msg_parse (reply, reply_size, &node) == 0);
    bk_poll_state_t state = bk_poll_provider_reply (described, task, &node, 2000, next, error);
    free (reply);
    aq_writer_release (&w);
    return state;
}

//  A provider task's ops: the requests for its host and the replies
//  applied, with fal's descriptor (read, not opened, as the broker does),
//  and a round trip through fal's ops as a provider host runs them.
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
    bk_task_t *task = bk_task_new (0);
    aq_uuid_new (task->id);
    task->status = BK_ST_POLLING;
    task->provider = bk_task_strdup (task, "fal");
    task->target_url = bk_task_strdup (task, "https://queue.fal.run/fal-ai/flux");
    task->poll.due = 77;
    assert (!task->poll.active && !task->poll.op_pending && !bk_poll_provider_awaits (task, 1));
    assert (s_start (task, BK_POLL_INITIAL, "{\"request_id\": \"r1\"}") == 1);
    assert (task->poll.active && task->poll.op_pending && task->poll.due == -1);
    assert (bk_poll_provider_awaits (task, 1) && !bk_poll_provider_awaits (task, 2));
    //  the kept answer: only what a provider reads (no kind, no lease)
    aq_node_t kept, value;
    assert (aq_msg_parse (task->poll.op.data, task->poll.op.size, &kept) == 0 && kept.count == 4);
    assert (!aq_node_get (&kept, "lease", &value) && aq_node_get (&kept, "duration", &value));
    //  the key names the task and the op
    char key[BK_POLL_KEY_SIZE], id[AQ_UUID_TEXT];
    bk_poll_provider_key (task, key);
    assert (strncmp (key, aq_uuid_format (task->id, id), 36) == 0 && strcmp (key + 36, "/1") == 0);
    uint8_t parsed[16];
    int64_t n = 0;
    assert (bk_poll_provider_key_parse (key, parsed, &n) && n == 1);
    assert (memcmp (parsed, task->id, 16) == 0);
    assert (!bk_poll_provider_key_parse ("nope/1", parsed, &n));
    key[37] = 'x';
    assert (!bk_poll_provider_key_parse (key, parsed, &n));
    key[37] = '\0';
    assert (!bk_poll_provider_key_parse (key, parsed, &n));

    char *request = s_request (task);
    assert (strcmp (request, "{\"op\":\"plan\",\"response\":{\"url\":"
                             "\"https://queue.fal.run/fal-ai/flux\",\"statusCode\":200,"
                             "\"headers\":{\"content-type\":\"application/json\"},"
                             "\"body\":\"{\\\"request_id\\\": \\\"r1\\\"}\"}}") == 0);
    free (request);
    int64_t next;
    const char *error;
    assert (s_apply (fal, task,
                     "{\"state\": 0, \"fetchResult\": false, \"plan\": {"
                     "\"statusUrl\": \"https://queue.fal.run/r/1/status\", "
                     "\"resultUrl\": \"https://queue.fal.run/r/1\", "
                     "\"cancelUrl\": \"https://queue.fal.run/r/1/cancel\", "
                     "\"cancelMethod\": \"PUT\", \"intervalMs\": 1000}}",
                     &next, &error) == BK_POLL_RUNNING);
    assert (next == 1000 && !error && !task->poll.op_pending && task->poll.op.size);
    assert (!bk_poll_provider_awaits (task, 1));
    assert (strcmp (task->poll.status_url, "https://queue.fal.run/r/1/status") == 0);
    assert (strcmp (task->poll.cancel_method, "PUT") == 0 && task->poll.interval_ms == 1000);
    //  a status answer: the stored plan goes with it; a retry delay wins
    assert (s_start (task, BK_POLL_STATUS, "{\"status\": \"IN_QUEUE\"}") == 2);
    request = s_request (task);
    assert (
        strcmp (request,
                "{\"op\":\"poll\",\"response\":{\"url\":\"https://queue.fal.run/r/1/status\","
                "\"statusCode\":200,\"headers\":{\"content-type\":\"application/json\"},"
                "\"body\":\"{\\\"status\\\": \\\"IN_QUEUE\\\"}\"},\"plan\":{"
                "\"statusUrl\":\"https://queue.fal.run/r/1/status\","
                "\"resultUrl\":\"https://queue.fal.run/r/1\","
                "\"cancelUrl\":\"https://queue.fal.run/r/1/cancel\",\"cancelMethod\":\"PUT\"}}") ==
        0);
    free (request);
    assert (s_apply (fal, task, "{\"state\": 0, \"retryMs\": 300}", &next, &error) ==
            BK_POLL_RUNNING);
    assert (next == 300);
    //  done, with the result to fetch; the result's reply ends it
    s_start (task, BK_POLL_STATUS, "{\"status\": \"COMPLETED\"}");
    assert (s_apply (fal, task, "{\"state\": 2, \"error\": \"NSFW\", \"fetchResult\": true}", &next,
                     &error) == BK_POLL_FETCH);
    assert (task->poll.fetch_state == AQ_POLL_FAILED &&
            strcmp (task->poll.fetch_error, "NSFW") == 0);
    s_start (task, BK_POLL_RESULT, "{}");
    request = s_request (task);
    assert (strstr (request,
                    "{\"op\":\"result\",\"response\":{\"url\":\"https://queue.fal.run/r/1\","));
    assert (strstr (request, ",\"status\":{\"state\":2,\"error\":\"NSFW\"}}"));
    free (request);
    assert (s_apply (fal, task, "{\"state\": 1}", &next, &error) == BK_POLL_DONE && !error);
    //  the task record keeps a pending op across a restart, and the numbering
    s_start (task, BK_POLL_STATUS, "{\"status\": \"IN_PROGRESS\"}");
    task->target_url = bk_task_strdup (task, "https://queue.fal.run/fal-ai/flux");
    aq_writer_t w;
    aq_writer_init (&w);
    bk_task_encode (task, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_task_t *back = bk_task_decode (data, size);
    assert (back && bk_poll_provider_awaits (back, 5) && back->poll.op_stage == BK_POLL_STATUS);
    char *was = s_request (task), *now = s_request (back);
    assert (strcmp (was, now) == 0);
    free (was);
    free (now);
    bk_task_destroy (&back);
    bk_poll_provider_drop (task);
    assert (!bk_poll_provider_awaits (task, 5));

    //  replies the broker does not trust
    const char *bad[][2] = {
        {"{\"state\": 7}", "provider 'fal' answered an unknown state"},
        {"{\"state\": \"done\"}", "provider 'fal' answered an unknown state"},
        {"{}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 2, \"error\": 5}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 0, \"retryMs\": -1}", "provider 'fal' answered an unknown state"},
        {"{\"state\": 2, \"error\": \"boom\"}", "boom"},
        {"{\"state\": 2}", "provider reported a failure"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_start (task, BK_POLL_STATUS, "{}");
        assert (s_apply (fal, task, bad[i][0], &next, &error) == BK_POLL_FAILED);
        assert (strcmp (error, bad[i][1]) == 0 && !task->poll.op_pending);
    }
    char long_error[600] = "{\"state\": 2, \"error\": \"";
    memset (long_error + strlen (long_error), 'e', 512);
    strcat (long_error, "\"}");
    s_start (task, BK_POLL_STATUS, "{}");
    assert (s_apply (fal, task, long_error, &next, &error) == BK_POLL_FAILED);
    assert (strcmp (error, "provider 'fal' answered an unknown state") == 0);
    const char *bad_plans[][2] = {
        {"{\"state\": 0, \"plan\": {}}", "provider 'fal' gave no status URL"},
        {"{\"state\": 0}", "provider 'fal' gave no status URL"},
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
        bk_task_t *fresh = bk_task_new (0);
        fresh->target_url = bk_task_strdup (fresh, "https://x/");
        s_start (fresh, BK_POLL_INITIAL, "{}");
        assert (s_apply (fal, fresh, bad_plans[i][0], &next, &error) == BK_POLL_FAILED);
        if (strcmp (error, bad_plans[i][1]) != 0)
            printf ("bk_poll: got '%s'\n", error);
        assert (strcmp (error, bad_plans[i][1]) == 0);
        assert (!fresh->poll.status_url);
        bk_task_destroy (&fresh);
    }
    //  A plan stored before the hosts were checked is checked again
    char errbuf[320];
    task->poll.status_url = bk_task_strdup (task, "https://queue.fal.run/ok");
    assert (!bk_poll_provider_url_error (fal, task, BK_POLL_STATUS, errbuf, sizeof errbuf));
    assert (!bk_poll_provider_url_error (fal, task, BK_POLL_RESULT, errbuf, sizeof errbuf));
    task->poll.result_url = bk_task_strdup (task, "http://queue.fal.run/r");
    error = bk_poll_provider_url_error (fal, task, BK_POLL_RESULT, errbuf, sizeof errbuf);
    assert (error && strcmp (error, "provider 'fal' answered a result URL outside its hosts: "
                                    "http://queue.fal.run/r") == 0);
    task->poll.cancel_url = bk_task_strdup (task, "https://evil.example/c");
    error = bk_poll_provider_url_error (fal, task, BK_POLL_CANCEL, errbuf, sizeof errbuf);
    assert (error && strcmp (error, "provider 'fal' answered a cancel URL outside its hosts: "
                                    "https://evil.example/c") == 0);
    task->poll.result_url = task->poll.cancel_url = NULL;
    assert (!bk_poll_provider_url_error (fal, task, BK_POLL_RESULT, errbuf, sizeof errbuf));
    assert (!bk_poll_provider_url_error (fal, task, BK_POLL_CANCEL, errbuf, sizeof errbuf));
    error = bk_poll_provider_url_error (NULL, task, BK_POLL_STATUS, errbuf, sizeof errbuf);
    assert (error && strcmp (error, "provider plugin is no longer loaded") == 0);
    bk_task_destroy (&task);

    //  The whole way through fal's own ops, as its provider host runs them
    aq_plugin_loader_t *opened = aq_plugin_loader_new (NULL);
    assert (aq_plugin_loader_load_file (opened, path) == 0);
    const aq_plugin_provider_t *fal_ops = aq_plugin_loader_provider (opened, "fal");
    task = bk_task_new (0);
    task->status = BK_ST_POLLING;
    task->target_url = bk_task_strdup (task, "https://queue.fal.run/fal-ai/flux");
    s_start (task, BK_POLL_INITIAL,
             "{\"request_id\": \"r9\", \"status_url\": "
             "\"https://queue.fal.run/fal-ai/flux/requests/r9/status\", \"response_url\": "
             "\"https://queue.fal.run/fal-ai/flux/requests/r9\", \"cancel_url\": "
             "\"https://queue.fal.run/fal-ai/flux/requests/r9/cancel\"}");
    assert (s_round_trip (fal, fal_ops, task, &next, &error) == BK_POLL_RUNNING && !error);
    assert (strcmp (task->poll.result_url, "https://queue.fal.run/fal-ai/flux/requests/r9") == 0);
    assert (strcmp (task->poll.cancel_method, "PUT") == 0 && next == 1000);
    s_start (task, BK_POLL_STATUS, "{\"status\": \"IN_PROGRESS\"}");
    assert (s_round_trip (fal, fal_ops, task, &next, &error) == BK_POLL_RUNNING);
    s_start (task, BK_POLL_STATUS, "{\"status\": \"COMPLETED\"}");
    assert (s_round_trip (fal, fal_ops, task, &next, &error) == BK_POLL_FETCH);
    s_start (task, BK_POLL_RESULT, "{\"images\": []}");
    assert (s_round_trip (fal, fal_ops, task, &next, &error) == BK_POLL_DONE && !error);
    bk_task_destroy (&task);
    aq_writer_release (&w);
    aq_plugin_loader_destroy (&opened);
    aq_plugin_loader_destroy (&loader);
    free (dir);
}

void bk_poll_test (bool verbose) {
    s_test_provider ();
    const char *config = "{\"urlTemplate\": \"http://x/jobs/{{id}}?q={{ meta.tags.1 }}\", "
                         "\"statusPath\": \"state\", \"doneValues\": [\"ok\"], "
                         "\"failValues\": [\"bad\"], \"intervalSeconds\": 1}";
    assert (s_check (config) == NULL);
    bk_task_t *task = s_task (config);
    int64_t next;
    const char *error;
    const char *initial = "{\"id\": \"j 7/8\", \"meta\": {\"tags\": [\"a\", \"b&c\"]}}";
    assert (bk_poll_config_step (task, BK_POLL_INITIAL, initial, strlen (initial), 2000, &next,
                                 &error) == BK_POLL_RUNNING);
    assert (next == 1000 && task->poll.interval_ms == 1000);
    //  values are percent-encoded
    assert (strcmp (task->poll.status_url, "http://x/jobs/j%207%2F8?q=b%26c") == 0);
    const char *busy = "{\"state\": \"busy\"}", *bad = "{\"state\": \"bad\"}";
    assert (bk_poll_config_step (task, BK_POLL_STATUS, busy, strlen (busy), 2000, &next, &error) ==
            BK_POLL_RUNNING);
    assert (bk_poll_config_step (task, BK_POLL_STATUS, bad, strlen (bad), 2000, &next, &error) ==
            BK_POLL_FAILED);
    assert (strcmp (error, "Polling status: bad") == 0);
    const char *ok = "{\"state\": \"ok\"}";
    assert (bk_poll_config_step (task, BK_POLL_STATUS, ok, strlen (ok), 2000, &next, &error) ==
            BK_POLL_DONE);
    //  a first answer the template cannot use fails the task
    assert (bk_poll_config_step (task, BK_POLL_INITIAL, "not json", 8, 2000, &next, &error) ==
            BK_POLL_FAILED);
    assert (strcmp (error, "pollConfig.urlTemplate cannot be filled from the response") == 0);
    bk_task_destroy (&task);

    //  a template that would render past 8 KiB stops there
    task = s_task ("{\"urlTemplate\": \"http://x/{{v}}{{v}}{{v}}\", \"statusPath\": \"s\", "
                   "\"doneValues\": [], \"failValues\": []}");
    char *big = malloc (4000);
    memset (big, '%', 3990);
    const char *open = "{\"v\": \"";
    memcpy (big, open, strlen (open));
    memcpy (big + 3990, "\"}", 3);
    assert (bk_poll_config_step (task, BK_POLL_INITIAL, big, strlen (big), 2000, &next, &error) ==
            BK_POLL_FAILED);
    assert (strcmp (error, "pollConfig.urlTemplate renders a status URL over 8192 bytes") == 0);
    free (big);
    bk_task_destroy (&task);

    //  paths: numbers and objects as text, absent and null as nothing
    aq_writer_t w;
    aq_writer_init (&w);
    assert (aq_json_parse ("{\"n\": 42, \"o\": {\"a\": [1, true]}, \"z\": null}", &w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t doc;
    assert (aq_msg_parse (data, size, &doc) == 0);
    char *text = bk_poll_path_text (&doc, "n");
    assert (strcmp (text, "42") == 0);
    free (text);
    text = bk_poll_path_text (&doc, "o");
    assert (strcmp (text, "{\"a\":[1,true]}") == 0);
    free (text);
    text = bk_poll_path_text (&doc, "o.a.1");
    assert (strcmp (text, "true") == 0);
    free (text);
    assert (!bk_poll_path_text (&doc, "z") && !bk_poll_path_text (&doc, "o.a.2") &&
            !bk_poll_path_text (&doc, "o.a.x") && !bk_poll_path_text (&doc, "n.m"));
    aq_writer_release (&w);

    struct {
        const char *config, *error;
    } bad_configs[] = {
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
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const char *message = s_check (bad_configs[i].config);
        assert (message && strcmp (message, bad_configs[i].error) == 0);
    }
    char long_template[2200] = "{\"urlTemplate\": \"";
    memset (long_template + strlen (long_template), 'u', 2049);
    strcat (long_template, "\"}");
    assert (strcmp (s_check (long_template),
                    "pollConfig.urlTemplate must be at most 2048 characters") == 0);
    if (verbose)
        printf ("bk_poll: ok\n");
}
