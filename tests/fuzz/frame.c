/*  frame.c - fuzzes protocol frames: both decoders, every command

    Input: a command id and a msgpack body; the harness puts the signature
    and version in front (the raw input is also tried as a whole frame).
    The two decoders must agree: what aq_codec_decode (jansson documents:
    gateway, workers, clients) accepts, aq_msg_frame (views: the broker)
    accepts too, as the same command; both stay inside the bytes and
    within AQ_PROTO_DEPTH. A document decoded encodes back and decodes to
    an equal document; the broker's view walks completely, and its JSON
    text (aq_json_write, what the broker signs and sends) reads back with
    jansson as the same document the codec decoded.
*/
#include "aq_codec.h"
#include "aq_json.h"
#include "aq_msg.h"
#include "fuzz.h"
#include "request.h"

static bool s_nul_key; //  s_walk saw a map key holding a NUL byte

//  Walks node and its children with every accessor; returns the items seen.
static size_t s_walk (const aq_node_t *node, int depth) {
    FUZZ_CHECK (depth <= AQ_PROTO_DEPTH);
    size_t seen = 1;
    int64_t integer;
    double number;
    char small[16];
    aq_node_int_in (node, INT64_MIN, INT64_MAX, &integer);
    aq_node_number (node, &number);
    aq_node_strcpy (node, small, sizeof small);
    char *copy = aq_node_strdup (node);
    FUZZ_CHECK (!copy || (aq_node_is_str (node) && strlen (copy) == node->count));
    free (copy);
    if (node->type != AQ_NODE_ARRAY && node->type != AQ_NODE_MAP)
        return seen;
    aq_iter_t it;
    aq_node_iter (node, &it);
    aq_node_t key, value;
    const uint8_t *end = node->raw + node->raw_size;
    uint32_t items = 0;
    while (aq_iter_next (&it, &key, &value)) {
        FUZZ_CHECK (value.raw >= node->raw && value.raw + value.raw_size <= end);
        if (node->type == AQ_NODE_MAP) {
            FUZZ_CHECK (key.type == AQ_NODE_STR || key.type == AQ_NODE_INT);
            if (key.type == AQ_NODE_STR && memchr (key.data, 0, key.count))
                s_nul_key = true;
        }
        seen += s_walk (&value, depth + 1);
        items++;
    }
    FUZZ_CHECK (items == node->count && it.next == end);
    return seen;
}

//  The broker's field readers over a request body.
static void s_request (const aq_node_t *body) {
    static const char *const keys[] = {"id",   "key",  "limit", "offset", "wait",   "status",
                                       "corr", "name", "team",  "admin",  "credit", NULL};
    bk_req_t req = {.body = *body};
    char text[64];
    aq_node_t value;
    for (int i = 0; keys[i]; i++) {
        bk_req_get (&req, keys[i], &value);
        bk_req_str (&req, keys[i], text, sizeof text);
        bk_req_query_int (&req, keys[i], 7);
    }
}

static void s_frame (const uint8_t *frame, size_t size) {
    int cmd = -1, msg_cmd = -1;
    json_t *body = NULL;
    aq_node_t view;
    int rc = aq_codec_decode (frame, size, &cmd, &body);
    int msg_rc = aq_msg_frame (frame, size, &msg_cmd, &view);
    s_nul_key = false;
    if (msg_rc == 0) {
        FUZZ_CHECK (view.type == AQ_NODE_MAP && aq_proto_name (msg_cmd));
        FUZZ_CHECK (view.raw == frame + AQ_PROTO_HEADER && view.raw_size == size - AQ_PROTO_HEADER);
        s_walk (&view, 0);
        s_request (&view);
    }
    if (rc != 0) {
        FUZZ_CHECK (rc < 0 && !body && aq_proto_strerror (rc));
        return;
    }
    //  what the codec accepts, the broker's reader accepts as the same command
    FUZZ_CHECK (json_is_object (body) && msg_rc == 0 && msg_cmd == cmd);
    aq_field_str (body, "id");
    aq_field_int (body, "corr", 0);
    aq_field_bool (body, "permanent", false);

    //  and encodes back to a frame that decodes to an equal document and
    //  encodes to the same bytes again (json_equal does not see past a NUL
    //  in a key, the bytes do)
    size_t again_size, third_size;
    uint8_t *again = aq_codec_encode (cmd, body, &again_size);
    FUZZ_CHECK (again);
    int again_cmd;
    json_t *again_body = NULL;
    FUZZ_CHECK (aq_codec_decode (again, again_size, &again_cmd, &again_body) == 0);
    FUZZ_CHECK (again_cmd == cmd && (s_nul_key || json_equal (body, again_body)));
    uint8_t *third = aq_codec_encode (cmd, again_body, &third_size);
    FUZZ_CHECK (third && third_size == again_size && memcmp (third, again, again_size) == 0);
    free (third);
    json_decref (again_body);
    free (again);

    //  the broker's JSON text of the body is the same document (jansson
    //  holds a NUL in a key but does not read one back)
    aq_writer_t out;
    aq_writer_init (&out);
    if (aq_json_write (&view, &out) == 0 && !s_nul_key) {
        size_t text_size;
        const char *text = (const char *) aq_writer_data (&out, &text_size);
        FUZZ_CHECK (text);
        json_error_t error;
        json_t *read = json_loadb (text, text_size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
        if (!read || !json_equal (read, body)) {
            fprintf (stderr, "aq_json_write gave %.*s (%s)\n", (int) text_size, text,
                     read ? "another document" : error.text);
            FUZZ_CHECK (false);
        }
        json_decref (read);
    }
    aq_writer_release (&out);
    json_decref (body);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    //  the input as a whole frame: header checks
    int cmd;
    json_t *body = NULL;
    aq_node_t view;
    if (aq_codec_decode (data, size, &cmd, &body) == 0)
        json_decref (body);
    aq_msg_frame (data, size, &cmd, &view);
    if (size < 1)
        return 0;
    //  the input as command and body
    uint8_t *frame = malloc (size + 3);
    FUZZ_CHECK (frame);
    frame[0] = AQ_PROTO_SIG0, frame[1] = AQ_PROTO_SIG1, frame[2] = AQ_PROTO_VERSION;
    memcpy (frame + 3, data, size);
    s_frame (frame, size + 3);
    free (frame);
    return 0;
}
