/*  task_body.c - fuzzes POST /v1/tasks bodies (broker/task_request.c)

    Input: the body as msgpack (what a protocol client sends in
    TASK_CREATE's task) or, when it is not msgpack, as JSON text (what the
    gateway turns into msgpack). A refused body gets a client message that
    is valid UTF-8 (it travels in a msgpack string); an accepted one is a
    task within the documented ranges whose store record decodes to the
    same record and whose public shape is a readable map JSON can hold.
*/
#include "aq_json.h"
#include "aq_msg.h"
#include "fuzz.h"
#include "task.h"
#include "task_request.h"

#define S_NOW 1700000000000 //  ms: 2023-11-14

//  The record of task: encode, decode, encode gives the same bytes.
static void s_record (const bk_task_t *task) {
    aq_writer_t first, second;
    aq_writer_init (&first);
    aq_writer_init (&second);
    bk_task_encode (task, &first);
    size_t size, again_size;
    const uint8_t *data = aq_writer_data (&first, &size);
    FUZZ_CHECK (data && aq_msg_check (data, size) == 0);
    bk_task_t *decoded = bk_task_decode (data, size);
    FUZZ_CHECK (decoded);
    bk_task_encode (decoded, &second);
    const uint8_t *again = aq_writer_data (&second, &again_size);
    FUZZ_CHECK (again && again_size == size && memcmp (again, data, size) == 0);
    bk_task_destroy (&decoded);
    aq_writer_release (&first);
    aq_writer_release (&second);
}

static void s_public (const bk_task_t *task) {
    aq_writer_t w, text;
    aq_writer_init (&w);
    aq_writer_init (&text);
    bk_task_write_public (task, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    FUZZ_CHECK (data && aq_msg_parse (data, size, &node) == 0 && node.type == AQ_NODE_MAP);
    FUZZ_CHECK (aq_json_write (&node, &text) == 0);
    aq_writer_release (&w);
    aq_writer_release (&text);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    aq_writer_t parsed;
    aq_writer_init (&parsed);
    aq_node_t request;
    if (aq_msg_parse (data, size, &request) != 0) {
        char *text = fuzz_strndup (data, size);
        int rc = aq_json_parse (text, &parsed);
        free (text);
        size_t parsed_size;
        const uint8_t *bytes = aq_writer_data (&parsed, &parsed_size);
        if (rc != 0 || !bytes || aq_msg_parse (bytes, parsed_size, &request) != 0) {
            aq_writer_release (&parsed);
            return 0;
        }
    }
    const char *error = NULL;
    char errbuf[256];
    bk_task_t *task = bk_task_from_request (&request, S_NOW, &error, errbuf, sizeof errbuf);
    if (!task) {
        FUZZ_CHECK (error && *error);
        FUZZ_CHECK (fuzz_message_ok (error));
    } else {
        FUZZ_CHECK (!error);
        FUZZ_CHECK (task->status == BK_ST_PENDING || task->status == BK_ST_DELAYED);
        FUZZ_CHECK (task->target_url && task->created_at == S_NOW);
        FUZZ_CHECK (task->method >= BK_METHOD_GET && task->method <= BK_METHOD_DELETE);
        FUZZ_CHECK (task->max_wait_s >= 1 && task->max_wait_s <= 86400);
        FUZZ_CHECK (task->timeout_s >= 1 && task->timeout_s <= 300);
        FUZZ_CHECK (task->max_retries >= 0 && task->max_retries <= 10);
        FUZZ_CHECK (task->priority >= 1 && task->priority <= 10);
        FUZZ_CHECK (!(task->provider && task->poll_config.size));
        s_record (task);
        s_public (task);
        bk_task_destroy (&task);
    }
    aq_writer_release (&parsed);
    return 0;
}
