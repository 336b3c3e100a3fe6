/*  poll.c - fuzzes pollConfig and the answers it reads (broker/poll.c)

    Input: a pollConfig (JSON text), then after an empty line the answer
    to the task's call, then after another the answer to a status poll;
    the answers come from the target, untrusted. A refused pollConfig, a
    failed step: their messages reach the client. The status URL rendered
    from urlTemplate stays within BK_POLL_URL_MAX bytes and holds no space
    or control character the template did not (values are percent-encoded,
    so an answer cannot inject a header or a second request line).
*/
#include "aq_json.h"
#include "aq_msg.h"
#include "fuzz.h"
#include "poll.h"
#include "task.h"

//  The next part of *text up to an empty line (moved past it), or the rest.
static char *s_part (const char **text, const char *end) {
    const char *start = *text;
    const char *stop = memmem (start, (size_t) (end - start), "\n\n", 2);
    *text = stop ? stop + 2 : end;
    return fuzz_strndup ((const uint8_t *) start, (size_t) ((stop ? stop : end) - start));
}

static bool s_has_blank (const char *text, size_t size) {
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) text[i] <= 0x20 || text[i] == 0x7F)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    const char *at = (const char *) data, *end = at + size;
    char *config_text = s_part (&at, end);
    char *first = s_part (&at, end);
    char *second = s_part (&at, end);
    aq_writer_t w;
    aq_writer_init (&w);
    size_t config_size;
    const uint8_t *bytes;
    aq_node_t config, value;
    char errbuf[256];
    if (aq_json_parse (config_text, &w) == 0 && (bytes = aq_writer_data (&w, &config_size)) &&
        aq_msg_parse (bytes, config_size, &config) == 0) {
        const char *error = bk_poll_check_config (&config, errbuf, sizeof errbuf);
        if (error)
            FUZZ_CHECK (fuzz_message_ok (error));
        else {
            bk_task_t *task = bk_task_new (0);
            bk_task_set_blob (task, &task->poll_config, bytes, config_size);
            aq_node_get (&config, "urlTemplate", &value);
            bool template_blank = s_has_blank ((const char *) value.data, value.count);
            int64_t next_ms = 0;
            bk_poll_state_t state = bk_poll_config_step (task, BK_POLL_INITIAL, first,
                                                         strlen (first), 5000, &next_ms, &error);
            FUZZ_CHECK (next_ms > 0);
            if (state == BK_POLL_FAILED)
                FUZZ_CHECK (error && fuzz_message_ok (error));
            else {
                FUZZ_CHECK (state == BK_POLL_RUNNING && task->poll.status_url);
                size_t url_size = strlen (task->poll.status_url);
                FUZZ_CHECK (url_size <= BK_POLL_URL_MAX);
                FUZZ_CHECK (template_blank || !s_has_blank (task->poll.status_url, url_size));
                state = bk_poll_config_step (task, BK_POLL_STATUS, second, strlen (second), 5000,
                                             &next_ms, &error);
                FUZZ_CHECK (state != BK_POLL_FETCH);
                if (state == BK_POLL_FAILED)
                    FUZZ_CHECK (error && fuzz_message_ok (error));
            }
            bk_task_destroy (&task);
        }
    }
    aq_writer_release (&w);
    free (config_text);
    free (first);
    free (second);
    return 0;
}
