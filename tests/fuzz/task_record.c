/*  task_record.c - fuzzes the task's store record (broker/task.c)

    Input: the bytes of a record as the store holds them (a damaged disk,
    a bug of an older build). bk_task_decode refuses what is not a task
    record or returns a task whose record encodes, decodes and encodes
    again to the same bytes, and whose public shape (what GET /v1/tasks/:id
    sends) is one well-formed msgpack map.
*/
#include "aq_msg.h"
#include "fuzz.h"
#include "task.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    bk_task_t *task = bk_task_decode (data, size);
    if (!task)
        return 0;
    aq_writer_t first, second, public;
    aq_writer_init (&first);
    aq_writer_init (&second);
    aq_writer_init (&public);
    bk_task_encode (task, &first);
    size_t first_size, second_size, public_size;
    const uint8_t *bytes = aq_writer_data (&first, &first_size);
    FUZZ_CHECK (bytes);
    bk_task_t *again = bk_task_decode (bytes, first_size);
    FUZZ_CHECK (again);
    bk_task_encode (again, &second);
    const uint8_t *again_bytes = aq_writer_data (&second, &second_size);
    FUZZ_CHECK (again_bytes && second_size == first_size &&
                memcmp (again_bytes, bytes, first_size) == 0);
    bk_task_write_public (task, &public);
    const uint8_t *shown = aq_writer_data (&public, &public_size);
    aq_node_t node;
    FUZZ_CHECK (shown && aq_msg_parse (shown, public_size, &node) == 0 && node.type == AQ_NODE_MAP);
    bk_task_destroy (&again);
    bk_task_destroy (&task);
    aq_writer_release (&first);
    aq_writer_release (&second);
    aq_writer_release (&public);
    return 0;
}
