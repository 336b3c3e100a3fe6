/*  poll.c - following a long-running job described by a pollConfig */
#include "poll.h"
#include "aq_json.h"
#include "task_request.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void bk_poll_test (bool verbose) {
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
