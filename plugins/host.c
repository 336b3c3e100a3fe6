/*  host.c - the services a plugin calls: aq_host_t as this host fills it

    Every function here is reached through the table aq_plugin_host ()
    returns: what a plugin may ask of the host and nothing more.
*/
#include "host.h"

#include <jansson.h>
#include "aq_log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(AQ_PLUGIN_LOG_DEBUG == AQ_LOG_DEBUG && AQ_PLUGIN_LOG_INFO == AQ_LOG_INFO &&
                   AQ_PLUGIN_LOG_WARN == AQ_LOG_WARN && AQ_PLUGIN_LOG_ERROR == AQ_LOG_ERROR,
               "plugin log levels are aq_log levels");

//  The plugin being called on this thread, to tag its log lines.
static __thread const char *s_current;

static void s_host_log (int level, const char *fmt, ...) {
    char line[1536];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    if (level < AQ_LOG_DEBUG)
        level = AQ_LOG_DEBUG;
    if (level > AQ_LOG_ERROR)
        level = AQ_LOG_ERROR;
    aq_log (level, s_current ? s_current : "plugin", "%s", line);
}

static void *s_host_alloc (size_t size) {
    return calloc (1, size ? size : 1);
}

static void s_host_free (void *ptr) {
    free (ptr);
}

static char *s_host_strdup (const char *s) {
    return s ? strdup (s) : NULL;
}

static void *s_host_json_parse (const char *text, size_t len) {
    return text ? json_loadb (text, len, JSON_DECODE_ANY, NULL) : NULL;
}

static void s_host_json_free (void *doc) {
    json_decref ((json_t *) doc);
}

//  The value at a dot path: keys through objects, decimal indexes through
//  arrays. Borrowed from doc; NULL if any step is missing.
static const json_t *s_json_at (const json_t *doc, const char *path) {
    if (!doc || !path || !*path)
        return doc;
    const json_t *node = doc;
    const char *step = path;
    while (node) {
        const char *dot = strchr (step, '.');
        size_t len = dot ? (size_t) (dot - step) : strlen (step);
        if (json_is_object (node))
            node = json_object_getn (node, step, len);
        else if (json_is_array (node) && len > 0 && len < 10) {
            size_t index = 0;
            for (size_t i = 0; i < len && node; i++)
                if (isdigit ((unsigned char) step[i]))
                    index = index * 10 + (size_t) (step[i] - '0');
                else
                    node = NULL;
            node = node ? json_array_get (node, index) : NULL;
        } else
            node = NULL;
        if (!dot)
            break;
        step = dot + 1;
    }
    return node;
}

static const char *s_host_json_get_str (const void *doc, const char *path) {
    return json_string_value (s_json_at ((const json_t *) doc, path));
}

static int s_host_json_get_int (const void *doc, const char *path, int64_t *value) {
    const json_t *node = s_json_at ((const json_t *) doc, path);
    if (!json_is_integer (node))
        return -1;
    *value = (int64_t) json_integer_value (node);
    return 0;
}

static char *s_host_json_get_text (const void *doc, const char *path) {
    const json_t *node = s_json_at ((const json_t *) doc, path);
    if (!node || json_is_null (node))
        return NULL;
    if (json_is_string (node))
        return strdup (json_string_value (node));
    return json_dumps (node, JSON_COMPACT | JSON_ENCODE_ANY);
}

static char *s_host_render_template (const char *tmpl, const void *doc) {
    if (!tmpl)
        return NULL;
    char *out = NULL;
    size_t out_size = 0;
    FILE *stream = open_memstream (&out, &out_size);
    if (!stream)
        return NULL;
    bool ok = true;
    const char *at = tmpl;
    while (ok) {
        const char *open = strstr (at, "{{");
        if (!open) {
            fputs (at, stream);
            break;
        }
        fwrite (at, 1, (size_t) (open - at), stream);
        const char *close = strstr (open + 2, "}}");
        const char *start = open + 2;
        if (!close) {
            ok = false;
            break;
        }
        const char *end = close;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        while (end > start && isspace ((unsigned char) end[-1]))
            end--;
        char path[256];
        size_t len = (size_t) (end - start);
        if (len == 0 || len >= sizeof path) {
            ok = false;
            break;
        }
        memcpy (path, start, len);
        path[len] = 0;
        char *value = s_host_json_get_text (doc, path);
        if (value)
            fputs (value, stream);
        else
            ok = false;
        free (value);
        at = close + 2;
    }
    if (fclose (stream) != 0)
        ok = false;
    if (!ok) {
        free (out);
        return NULL;
    }
    return out;
}

static const char *s_host_http_header (const aq_http_response_t *response, const char *name) {
    if (!name || !AQ_PLUGIN_HAS (response, headers) ||
        !json_is_object ((const json_t *) response->headers))
        return NULL;
    const char *key;
    const json_t *value;
    json_object_foreach ((json_t *) response->headers, key, value) {
        if (strcasecmp (key, name) == 0)
            return json_string_value (value);
    }
    return NULL;
}

//  Length of the "http:" or "https:" scheme prefix of url, or 0.
static size_t s_http_scheme (const char *url) {
    if (strncasecmp (url, "http:", 5) == 0)
        return 5;
    if (strncasecmp (url, "https:", 6) == 0)
        return 6;
    return 0;
}

//  True if ref starts with a scheme ("x:" before any / ? #).
static bool s_has_scheme (const char *ref) {
    if (!isalpha ((unsigned char) *ref))
        return false;
    for (const char *p = ref; *p; p++) {
        if (*p == ':')
            return true;
        if (!isalnum ((unsigned char) *p) && *p != '+' && *p != '-' && *p != '.')
            return false;
    }
    return false;
}

//  Removes "." and ".." segments from the path at the start of text (up to
//  ? or #), in place (RFC 3986 5.2.4).
static void s_remove_dot_segments (char *text) {
    size_t path_len = strcspn (text, "?#");
    char *tail = text + path_len;
    char *out = text;
    const char *in = text;
    while (in < tail) {
        size_t seg = 1 + strcspn (in + 1, "/?#"); //  "/segment"
        if (in + seg > tail)
            seg = (size_t) (tail - in);
        if (seg == 2 && strncmp (in, "/.", 2) == 0) {
            in += 2;
            if (in == tail)
                *out++ = '/';
        } else if (seg == 3 && strncmp (in, "/..", 3) == 0) {
            in += 3;
            while (out > text && *--out != '/')
                ;
            if (in == tail)
                *out++ = '/';
        } else {
            memmove (out, in, seg);
            out += seg;
            in += seg;
        }
    }
    memmove (out, tail, strlen (tail) + 1);
}

static char *s_host_url_resolve (const char *base, const char *ref) {
    if (!ref)
        return NULL;
    if (s_has_scheme (ref))
        return s_http_scheme (ref) ? strdup (ref) : NULL;
    size_t scheme = base ? s_http_scheme (base) : 0;
    if (!scheme || strncmp (base + scheme, "//", 2) != 0)
        return NULL;
    size_t authority_end = scheme + 2 + strcspn (base + scheme + 2, "/?#");
    size_t path_end = authority_end + strcspn (base + authority_end, "?#");
    size_t no_fragment = strcspn (base, "#");
    char *out = NULL;
    int rc;
    if (strncmp (ref, "//", 2) == 0)
        rc = asprintf (&out, "%.*s%s", (int) scheme, base, ref);
    else if (*ref == '/')
        rc = asprintf (&out, "%.*s%s", (int) authority_end, base, ref);
    else if (*ref == '?')
        rc = asprintf (&out, "%.*s%s", (int) path_end, base, ref);
    else if (*ref == '#' || *ref == 0)
        rc = asprintf (&out, "%.*s%s", (int) no_fragment, base, ref);
    else {
        size_t dir_end = path_end;
        while (dir_end > authority_end && base[dir_end - 1] != '/')
            dir_end--;
        if (dir_end == authority_end)
            rc = asprintf (&out, "%.*s/%s", (int) authority_end, base, ref);
        else
            rc = asprintf (&out, "%.*s%s", (int) dir_end, base, ref);
    }
    if (rc < 0)
        return NULL;
    s_remove_dot_segments (out + authority_end);
    return out;
}

static void s_host_set_error (char **error_p, const char *fmt, ...) {
    char text[400];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    s_host_free (*error_p);
    *error_p = s_host_strdup (text);
}

static const aq_host_t s_host = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_host_t),
    .log = s_host_log,
    .alloc = s_host_alloc,
    .free = s_host_free,
    .strdup = s_host_strdup,
    .json_parse = s_host_json_parse,
    .json_free = s_host_json_free,
    .json_get_str = s_host_json_get_str,
    .json_get_int = s_host_json_get_int,
    .json_get_text = s_host_json_get_text,
    .render_template = s_host_render_template,
    .http_header = s_host_http_header,
    .url_resolve = s_host_url_resolve,
    .set_error = s_host_set_error,
};

const aq_host_t *aq_plugin_host (void) {
    return &s_host;
}

void aq_plugin_host_calling (const char *name) {
    s_current = name;
}
