/*  json_roundtrip.c - fuzzes JSON text to msgpack and back (proto/aq_json.c)

    Input: JSON text (any value). What aq_json_parse accepts is one checked
    msgpack value; aq_json_write prints it; that text parses to the same
    msgpack bytes and reads (jansson) as the same document as the input.
*/
#include "aq_json.h"
#include "aq_msg.h"
#include "fuzz.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    char *text = fuzz_strndup (data, size);
    aq_writer_t first, second;
    aq_writer_init (&first);
    aq_writer_init (&second);
    if (aq_json_parse (text, &first) == 0) {
        size_t first_size, second_size;
        const uint8_t *bytes = aq_writer_data (&first, &first_size);
        aq_node_t node;
        FUZZ_CHECK (bytes && aq_msg_parse (bytes, first_size, &node) == 0);
        char *printed = aq_json_dumps (&node);
        FUZZ_CHECK (printed);
        FUZZ_CHECK (aq_json_parse (printed, &second) == 0);
        const uint8_t *again = aq_writer_data (&second, &second_size);
        if (!again || second_size != first_size || memcmp (again, bytes, first_size) != 0) {
            fprintf (stderr, "'%s' printed as '%s' reads back otherwise\n", text, printed);
            FUZZ_CHECK (false);
        }
        json_t *in = json_loads (text, JSON_DECODE_ANY, NULL);
        json_t *out = json_loads (printed, JSON_DECODE_ANY, NULL);
        FUZZ_CHECK (in && out && json_equal (in, out));
        json_decref (in);
        json_decref (out);
        free (printed);
    }
    aq_writer_release (&first);
    aq_writer_release (&second);
    free (text);
    return 0;
}
