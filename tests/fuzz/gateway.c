/*  gateway.c - fuzzes what the gateway parses itself (gateway/routes.c, query.c, json.c)

    Input: a request as text: "METHOD /path?query" on the first line,
    header lines (Authorization, Idempotency-Key, traceparent and
    tracestate are used), an empty line, then the body. gw_routes_translate
    turns it into a protocol request or a local answer. A request is a
    frame the broker's reader (aq_msg_frame) and the workers' codec
    (aq_codec_decode) both open as that command, a map holding the key and
    corr, and it is the frame the old gateway (jansson and the codec,
    tests/rig_jansson.c) made of the same message; a local answer to
    anything but a local route (/healthz, /metrics, /readyz) has a status
    and a body {"error": "..."} whose message reaches the client. The body
    alone through gw_json_parse: the same outcome as the old gateway's
    parse, the same message or the same msgpack bytes, rendered back
    (aq_json) as the text jansson made of them.
*/
#include "../rig_jansson.h"
#include "aq_codec.h"
#include "aq_json.h"
#include "aq_proto.h"
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

//  The first GW_QUERY_MAX parameters of "a=1&b&c=" as http.c collects them
//  (query is cut in place); returns how many.
static size_t s_query (char *query, gw_param_t *params) {
    size_t count = 0;
    while (query && *query && count < GW_QUERY_MAX) {
        size_t len = strcspn (query, "&");
        char *next = query + len + (query[len] == '&');
        query[len] = '\0';
        char *eq = strchr (query, '=');
        if (eq)
            *eq++ = '\0';
        params[count++] = (gw_param_t){query, eq};
        query = next;
    }
    return count;
}

//  The body alone, against the old gateway's parse and rendering.
static void s_body (const char *body, size_t size) {
    char *copy = malloc (size ? size : 1); //  exactly size bytes: a read past them is caught
    FUZZ_CHECK (copy);
    memcpy (copy, body, size);
    char mine[GW_JSON_ERROR_MAX], theirs[GW_JSON_ERROR_MAX];
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_nil (&w); //  a byte before: kept, and all there is after a failure
    int rc = gw_json_parse (copy, size, &w, mine, sizeof mine);
    uint8_t *data = NULL;
    size_t data_size = 0, got_size;
    int old = rig_jansson_parse (copy, size, &data, &data_size, theirs, sizeof theirs);
    const uint8_t *got = aq_writer_data (&w, &got_size);
    FUZZ_CHECK (rc == old);
    if (rc != 0) {
        FUZZ_CHECK (strcmp (mine, theirs) == 0 && got_size == 1 && fuzz_message_ok (mine));
    } else {
        FUZZ_CHECK (got_size - 1 == data_size && memcmp (got + 1, data, data_size) == 0);
        aq_node_t node;
        FUZZ_CHECK (aq_msg_parse (got + 1, got_size - 1, &node) == 0 && node.type == AQ_NODE_MAP);
        char *back = aq_json_dumps (&node), *dumped = rig_jansson_dump (data, data_size);
        FUZZ_CHECK (back && dumped && strcmp (back, dumped) == 0);
        free (back);
        free (dumped);
    }
    free (data);
    aq_writer_release (&w);
    free (copy);
}

//  A request frame: both readers open it as cmd, and it is the old gateway's.
static void s_frame (gw_action_t *action) {
    size_t size;
    const uint8_t *frame = gw_action_frame (action, 7, &size);
    FUZZ_CHECK (frame && size > AQ_PROTO_HEADER);
    int cmd;
    aq_node_t body, value;
    FUZZ_CHECK (aq_msg_frame (frame, size, &cmd, &body) == 0 && cmd == action->cmd);
    FUZZ_CHECK (body.type == AQ_NODE_MAP && aq_node_get (&body, "key", &value) &&
                aq_node_is_str (&value) && aq_node_get (&body, "corr", &value) &&
                value.type == AQ_NODE_INT && value.i == 7);
    json_t *decoded = NULL;
    FUZZ_CHECK (aq_codec_decode (frame, size, &cmd, &decoded) == 0 && cmd == action->cmd);
    json_decref (decoded);
    char *text = aq_json_dumps (&body);
    FUZZ_CHECK (text);
    size_t old_size;
    uint8_t *old = rig_jansson_frame (cmd, text, &old_size);
    FUZZ_CHECK (old_size == size && memcmp (old, frame, size) == 0);
    free (old);
    free (text);
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
    gw_param_t params[GW_QUERY_MAX];
    size_t count = s_query (query_text, params);
    char authorization[512], idempotency[512], traceparent[512], tracestate[512];
    const char *lines = eol ? eol + 1 : head_end;
    gw_request_t req = {
        .method = method,
        .path = path,
        .authorization =
            s_header (lines, head_end, "Authorization", authorization, sizeof authorization),
        .idempotency_key =
            s_header (lines, head_end, "Idempotency-Key", idempotency, sizeof idempotency),
        .traceparent = s_header (lines, head_end, "traceparent", traceparent, sizeof traceparent),
        .tracestate = s_header (lines, head_end, "tracestate", tracestate, sizeof tracestate),
        .query = params,
        .query_count = count,
        .body = blank ? body : NULL,
        .body_size = body_size,
    };
    gw_action_t action;
    gw_routes_translate (&req, &action);
    if (action.cmd) {
        FUZZ_CHECK (action.route);
        s_frame (&action);
    } else if (!action.route || !(action.route->flags & GW_ROUTE_LOCAL)) {
        FUZZ_CHECK (action.response.status >= 400 && action.response.body);
        aq_writer_t w;
        aq_writer_init (&w);
        char *copy =
            fuzz_strndup ((const uint8_t *) action.response.body, action.response.body_size);
        FUZZ_CHECK (aq_json_parse (copy, &w) == 0);
        size_t answer_size;
        const uint8_t *answer = aq_writer_data (&w, &answer_size);
        aq_node_t map, error;
        FUZZ_CHECK (aq_msg_parse (answer, answer_size, &map) == 0 && map.type == AQ_NODE_MAP &&
                    map.count == 1 && aq_node_get (&map, "error", &error) &&
                    aq_node_is_str (&error));
        free (copy);
        aq_writer_release (&w);
    }
    gw_action_release (&action);
    if (blank)
        s_body (body, body_size);
    free (path);
    free (line);
    return 0;
}
