/*  gateway.c - fuzzes what the gateway parses itself (gateway/routes.c, json.c)

    Input: a request as text: "METHOD /path?query" on the first line,
    header lines (Authorization and Idempotency-Key are used), an empty
    line, then the body. gw_routes_translate turns it into a protocol
    message or a local answer. A message encodes to a frame that decodes to
    an equal document and holds the key; a local answer to anything but a
    local route (/healthz, /metrics) has a status and a JSON body
    {"error": "..."}. The body alone through gw_json_parse_object: an
    object within the limits that dumps and parses back equal, or an error
    that fits its buffer.
*/
#include "aq_codec.h"
#include "fuzz.h"
#include "json.h"
#include "routes.h"

#include <strings.h>

//  The value of header name in lines [start, end), NUL-terminated in buf.
static const char *s_header (const char *start, const char *end, const char *name, char *buf,
                             size_t size) {
    size_t len = strlen (name);
    for (const char *line = start; line < end;) {
        const char *eol = memchr (line, '\n', (size_t) (end - line));
        eol = eol ? eol : end;
        if ((size_t) (eol - line) > len && line[len] == ':' && strncasecmp (line, name, len) == 0) {
            size_t n = (size_t) (eol - line) - len - 1;
            n = n < size - 1 ? n : size - 1;
            memcpy (buf, line + len + 1, n);
            buf[n] = '\0';
            return buf;
        }
        line = eol + 1;
    }
    return NULL;
}

//  [[name, value or null], ...] from "a=1&b&c=", as http.c collects them.
static json_t *s_query (const char *query) {
    json_t *pairs = json_array ();
    while (query && *query) {
        size_t len = strcspn (query, "&");
        const char *eq = memchr (query, '=', len);
        json_t *pair = json_array ();
        json_array_append_new (pair,
                               json_stringn_nocheck (query, eq ? (size_t) (eq - query) : len));
        json_array_append_new (pair,
                               eq ? json_stringn_nocheck (eq + 1, len - (size_t) (eq - query) - 1)
                                  : json_null ());
        json_array_append_new (pairs, pair);
        query += len + (query[len] == '&');
    }
    return pairs;
}

static void s_body (const char *body, size_t size) {
    char error[GW_JSON_ERROR_MAX];
    json_t *object = gw_json_parse_object (body, size, error, sizeof error);
    if (!object) {
        FUZZ_CHECK (memchr (error, 0, sizeof error) && *error);
        return;
    }
    FUZZ_CHECK (json_is_object (object));
    size_t text_size;
    char *text = gw_json_dump (object, &text_size);
    FUZZ_CHECK (text && strlen (text) == text_size);
    json_t *again = gw_json_parse_object (text, text_size, error, sizeof error);
    FUZZ_CHECK (again && json_equal (object, again));
    json_decref (again);
    free (text);
    json_decref (object);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    const char *text = (const char *) data, *end = text + size;
    const char *blank = memmem (text, size, "\n\n", 2);
    const char *head_end = blank ? blank + 1 : end;
    const char *body = blank ? blank + 2 : end;
    size_t body_size = (size_t) (end - body);
    const char *eol = memchr (text, '\n', (size_t) (head_end - text));
    char *line = fuzz_strndup (data, (size_t) ((eol ? eol : head_end) - text));
    char *space = strchr (line, ' ');
    const char *method = line, *target = "/";
    if (space) {
        *space = '\0';
        target = space + 1;
    }
    char *path = strdup (target);
    FUZZ_CHECK (path);
    char *query_text = strchr (path, '?');
    if (query_text)
        *query_text++ = '\0';
    json_t *query = s_query (query_text);
    char authorization[512], idempotency[512];
    const char *lines = eol ? eol + 1 : head_end;
    gw_request_t req = {
        .method = method,
        .path = path,
        .authorization =
            s_header (lines, head_end, "Authorization", authorization, sizeof authorization),
        .idempotency_key =
            s_header (lines, head_end, "Idempotency-Key", idempotency, sizeof idempotency),
        .query = query,
        .body = blank ? body : NULL,
        .body_size = body_size,
    };
    gw_action_t action;
    gw_routes_translate (&req, &action);
    if (action.cmd) {
        FUZZ_CHECK (action.route && json_is_object (action.msg) &&
                    json_is_string (json_object_get (action.msg, "key")));
        size_t frame_size;
        uint8_t *frame = aq_codec_encode (action.cmd, action.msg, &frame_size);
        FUZZ_CHECK (frame);
        int cmd;
        json_t *decoded = NULL;
        FUZZ_CHECK (aq_codec_decode (frame, frame_size, &cmd, &decoded) == 0);
        FUZZ_CHECK (cmd == action.cmd && json_equal (decoded, action.msg));
        json_decref (decoded);
        free (frame);
    } else if (!action.route || !(action.route->flags & GW_ROUTE_LOCAL)) {
        FUZZ_CHECK (action.response.status >= 400 && action.response.body);
        json_t *answer = json_loadb (action.response.body, action.response.body_size, 0, NULL);
        FUZZ_CHECK (answer && json_is_string (json_object_get (answer, "error")));
        json_decref (answer);
    }
    gw_action_release (&action);
    if (blank)
        s_body (body, body_size);
    json_decref (query);
    free (path);
    free (line);
    return 0;
}
