/*  sched_task_test.c - the scheduled task record's selftest
 */
#include "sched_task.h"
#include "../backoff.h"
#include "aq_json.h"
#include "aq_time.h"
#include "aq_uuid.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Selftest

//  The request of JSON text, into w; its node into *node.
static void s_parse (const char *text, aq_writer_t *w, aq_node_t *node) {
    aq_writer_reset (w);
    assert (aq_json_parse (text, w) == 0);
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    assert (aq_msg_parse (data, size, node) == 0);
}

//  The error of a body (NULL when accepted), over old.
static const char *s_error_of (const char *text, const bk_sched_task_t *old) {
    static char errbuf[BK_SCHED_TASK_ERRLEN];
    aq_writer_t w;
    aq_writer_init (&w);
    aq_node_t request;
    s_parse (text, &w, &request);
    bk_sched_task_t *record = bk_sched_task_from_request (&request, old, errbuf);
    aq_writer_release (&w);
    bool made = record != NULL;
    bk_sched_task_destroy (&record);
    return made ? NULL : errbuf;
}

//  The public shape of a record as JSON text (caller frees).
static char *s_public_json (const bk_sched_task_t *record) {
    aq_writer_t w;
    aq_writer_init (&w);
    bk_sched_task_write_public (record, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t node;
    assert (aq_msg_parse (data, size, &node) == 0);
    char *text = aq_json_dumps (&node);
    aq_writer_release (&w);
    return text;
}

static int s_count_step (void *arg, int index, const aq_node_t *step) {
    assert (step->type == AQ_NODE_MAP && index == *(int *) arg);
    ++*(int *) arg;
    return 0;
}

#define S_OK_BODY                                                                                  \
    "\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "                      \
    "\"schedule_expr\": \"0 9 * * 1-5\", \"payload\": {\"targetUrl\": \"http://x\"}, "             \
    "\"created_by\": \"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\""

void bk_sched_task_test (bool verbose) {
    struct {
        const char *body, *error;
    } cases[] = {
        {"[]", "Request body must be a JSON object"},
        {"{\"x\": 1}", "Unknown field: x"},
        {"{}", "title is required"},
        {"{\"title\": \"\"}", "title must be a string of 1 to 200 characters"},
        {"{\"title\": \"t\"}", "description is required"},
        {"{\"title\": \"t\", \"description\": 5}",
         "description must be a string of at most 2000 characters"},
        {"{\"title\": \"t\", \"description\": \"d\"}", "schedule_kind is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"weekly\"}",
         "schedule_kind must be one of: cron, rrule, once, event"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": 5}",
         "schedule_kind must be one of: cron, rrule, once, event"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\"}",
         "schedule_expr is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "
         "\"schedule_expr\": 5}",
         "schedule_expr must be a string"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "
         "\"schedule_expr\": \"* * * * *\", \"timezone\": \"Mars/Olympus\"}",
         "timezone must be a valid IANA time zone"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "
         "\"schedule_expr\": \"* * * * *\", \"timezone\": 3}",
         "timezone must be a valid IANA time zone"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "
         "\"schedule_expr\": \"* * * * *\"}",
         "payload is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": []}",
         "payload must be an object"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {\"steps\": []}}",
         "payload.steps must be an array of 1 to 50 task templates"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {\"steps\": [1]}}",
         "payload.steps must be an array of 1 to 50 task templates"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {\"steps\": null}}",
         "payload.steps must be an array of 1 to 50 task templates"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {}}",
         "created_by is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {}, \"created_by\": \"agent-7\"}",
         "created_by must be a UUID"},
        {"{" S_OK_BODY ", \"priority\": 0}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"priority\": 10}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"priority\": null}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"priority\": 5.5}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"max_retries\": 11}", "max_retries must be an integer between 0 and 10"},
        {"{" S_OK_BODY ", \"backoff_strategy\": \"exponential\"}",
         "backoff_strategy must be one of: exponential_jitter, linear, fixed"},
        {"{" S_OK_BODY ", \"dedupe_key\": \"\"}",
         "dedupe_key must be a string of 1 to 200 characters"},
        {"{" S_OK_BODY ", \"dedupe_window_seconds\": 0}",
         "dedupe_window_seconds must be an integer between 1 and 2592000"},
        {"{" S_OK_BODY ", \"concurrency_key\": 7}",
         "concurrency_key must be a string of 1 to 200 characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *error = s_error_of (cases[i].body, NULL);
        if (!error || strcmp (error, cases[i].error) != 0) {
            fprintf (stderr, "bk_sched_task: %s gave '%s', want '%s'\n", cases[i].body,
                     error ? error : "(ok)", cases[i].error);
            assert (false);
        }
    }
    const char *error = s_error_of ("{" S_OK_BODY ", \"schedule_expr\": \"61 * * * *\"}", NULL);
    assert (error && strncmp (error, "Invalid cron expression: ", 25) == 0);

    //  defaults, and the public shape in the seed's order
    char errbuf[BK_SCHED_TASK_ERRLEN];
    aq_writer_t w;
    aq_writer_init (&w);
    aq_node_t request;
    s_parse ("{" S_OK_BODY ", \"dedupe_key\": \"k\", \"priority\": 2.0}", &w, &request);
    bk_sched_task_t *record = bk_sched_task_from_request (&request, NULL, errbuf);
    assert (record);
    assert (record->priority == 2 && record->max_retries == 3);
    assert (record->backoff == BK_BACKOFF_JITTER && strcmp (record->timezone, "UTC") == 0);
    assert (record->dedupe_window_s == BK_SCHED_TASK_DEDUPE_S && !record->concurrency_key);
    assert (record->kind == BK_SCHEDULE_CRON && record->status == 0);
    memset (record->id, 0x11, 16), memset (record->team, 0x22, 16);
    record->status = BK_SCHED_ACTIVE;
    record->created_at = record->updated_at = 1705314600000;
    char *text = s_public_json (record);
    const char *want =
        "{\"id\":\"11111111-1111-1111-1111-111111111111\",\"team_id\":\"22222222-2222-2222-2222-"
        "222222222222\",\"title\":\"t\",\"description\":\"d\",\"schedule_kind\":\"cron\","
        "\"schedule_expr\":\"0 9 * * 1-5\",\"timezone\":\"UTC\",\"payload\":{\"targetUrl\":"
        "\"http://x\"},\"created_by\":\"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\",\"priority\":2,"
        "\"max_retries\":3,\"backoff_strategy\":\"exponential_jitter\",\"dedupe_key\":\"k\","
        "\"dedupe_window_seconds\":300,\"concurrency_key\":null,\"status\":\"active\","
        "\"next_run_at\":null,\"last_run_at\":null,\"snoozed_until\":null,\"snooze_reason\":null,"
        "\"created_at\":\"2024-01-15T10:30:00.000Z\",\"updated_at\":\"2024-01-15T10:30:00.000Z\"}";
    if (strcmp (text, want) != 0) {
        fprintf (stderr, "bk_sched_task: public %s\n", text);
        assert (false);
    }
    free (text);

    //  a partial update keeps the rest, and is checked whole
    assert (s_error_of ("{\"priority\": 2}", record) == NULL);
    assert (strcmp (s_error_of ("{\"title\": null}", record), "title is required") == 0);
    assert (strcmp (s_error_of ("{\"status\": \"paused\"}", record), "Unknown field: status") == 0);
    assert (strncmp (s_error_of ("{\"schedule_kind\": \"rrule\"}", record), "Invalid RRULE", 13) ==
            0);
    s_parse ("{\"dedupe_key\": null, \"timezone\": null, \"title\": \"u\"}", &w, &request);
    bk_sched_task_t *changed = bk_sched_task_from_request (&request, record, errbuf);
    assert (changed && strcmp (changed->title, "u") == 0 && strcmp (changed->timezone, "UTC") == 0);
    assert (!changed->dedupe_key && changed->dedupe_window_s == -1); //  the window went too
    assert (changed->priority == 2 && changed->created_at == record->created_at);
    assert (memcmp (changed->id, record->id, 16) == 0);
    bk_sched_task_destroy (&changed);
    s_parse ("{\"dedupe_window_seconds\": 60}", &w, &request);
    changed = bk_sched_task_from_request (&request, record, errbuf);
    assert (changed && changed->dedupe_window_s == 60 && strcmp (changed->dedupe_key, "k") == 0);

    //  the trace context: a good traceparent keeps it and its tracestate; a
    //  malformed one, or a tracestate alone, is none
    aq_writer_t tw;
    aq_writer_init (&tw);
    aq_node_t trace, parent, state;
    s_parse ("{\"p\": \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\", \"s\": "
             "\"congo=t61rcWkgMzE\", \"bad\": \"00-XYZ-00f067aa0ba902b7-01\", \"nl\": \"a\\nb\"}",
             &tw, &trace);
    assert (aq_node_get (&trace, "s", &state) && !bk_trace_known (&changed->trace));
    assert (aq_node_get (&trace, "bad", &parent));
    bk_sched_task_set_trace (changed, &parent, &state);
    assert (!bk_trace_known (&changed->trace) && !changed->trace_state);
    bk_sched_task_set_trace (changed, NULL, &state);
    assert (!bk_trace_known (&changed->trace) && !changed->trace_state);
    assert (aq_node_get (&trace, "p", &parent));
    assert (aq_node_get (&trace, "nl", &state));
    bk_sched_task_set_trace (changed, &parent, &state); //  a tracestate that may not be kept
    assert (bk_trace_known (&changed->trace) && !changed->trace_state);
    assert (aq_node_get (&trace, "s", &state));
    bk_sched_task_set_trace (changed, &parent, &state);
    assert (changed->trace.trace_id[0] == 0x4b && changed->trace.parent[7] == 0xb7);
    assert (changed->trace.flags == 1 && strcmp (changed->trace_state, "congo=t61rcWkgMzE") == 0);
    aq_writer_release (&tw);

    //  the record through the store encoding and back
    changed->cursor = (bk_schedule_cursor_t){true, {7, 8, INT64_MIN}};
    changed->due = 99, changed->anchor = 60000, changed->next_run_at = 99;
    changed->snooze_reason = bk_arena_strdup (changed->arena, "deploy");
    aq_writer_reset (&w);
    bk_sched_task_encode (changed, &w);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_sched_task_t *back = bk_sched_task_decode (data, size);
    assert (back && back->cursor.set && back->cursor.at.bound == INT64_MIN);
    assert (back->due == 99 && back->anchor == 60000 && back->seek == -1);
    assert (strcmp (back->snooze_reason, "deploy") == 0 && back->dedupe_window_s == 60);
    assert (back->payload.size == changed->payload.size && !back->stored);
    assert (memcmp (&back->trace, &changed->trace, sizeof back->trace) == 0);
    assert (strcmp (back->trace_state, "congo=t61rcWkgMzE") == 0);
    char *one = s_public_json (changed), *two = s_public_json (back);
    assert (strcmp (one, two) == 0);
    free (one), free (two);
    bk_sched_task_destroy (&back);
    bk_sched_task_destroy (&changed);
    assert (!bk_sched_task_decode ((const uint8_t *) "\x81\x00\x01", 3)); //  version 1

    //  steps
    int steps = 0;
    bool bare;
    assert (bk_sched_task_each_step (&record->payload, s_count_step, &steps, &bare) == 0);
    assert (steps == 1 && bare);
    aq_writer_reset (&w);
    assert (bk_sched_task_write_steps (&record->payload, &w) == 1);
    s_parse ("{\"steps\": [{\"targetUrl\": \"http://a\"}, {\"targetUrl\": \"http://b\"}]}", &w,
             &request);
    bk_blob_t payload = {request.raw, request.raw_size};
    steps = 0;
    assert (bk_sched_task_each_step (&payload, s_count_step, &steps, &bare) == 0);
    assert (steps == 2 && !bare);
    assert (bk_sched_task_queue_priority (1) == 9 && bk_sched_task_queue_priority (5) == 5 &&
            bk_sched_task_queue_priority (9) == 1);
    bk_sched_task_destroy (&record);

    //  snooze
    int64_t seconds;
    aq_node_t reason;
    s_parse ("{\"delay_seconds\": 60, \"reason\": \"deploy\"}", &w, &request);
    assert (bk_sched_task_snooze (&request, &seconds, &reason, errbuf) == 0);
    assert (seconds == 60 && aq_node_streq (&reason, "deploy"));
    s_parse ("{\"delay_seconds\": 60.0}", &w, &request);
    assert (bk_sched_task_snooze (&request, &seconds, &reason, errbuf) == 0);
    assert (seconds == 60 && aq_node_is_nil (&reason));
    s_parse ("{\"delay_seconds\": 604801}", &w, &request);
    assert (bk_sched_task_snooze (&request, &seconds, &reason, errbuf) == -1);
    assert (strcmp (errbuf, "delay_seconds must be an integer between 1 and 604800") == 0);
    s_parse ("{}", &w, &request);
    assert (bk_sched_task_snooze (&request, &seconds, &reason, errbuf) == -1);
    assert (strcmp (errbuf, "delay_seconds is required") == 0);
    assert (bk_sched_task_snooze (NULL, &seconds, &reason, errbuf) == -1);
    assert (strcmp (errbuf, "Request body must be a JSON object") == 0);
    aq_writer_release (&w);
    assert (bk_sched_status_parse ("paused", 6) == BK_SCHED_PAUSED);
    assert (!bk_sched_status_parse ("pause", 5) && !bk_sched_status_name (0));
    if (verbose)
        printf ("bk_sched_task: ok\n");
}
