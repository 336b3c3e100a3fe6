/*  sched_task.c - the scheduled task document: POST and PUT /tasks bodies */
#include "sched_task.h"
#include "aq_uuid.h"
#include "schedule.h"
#include "task.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const s_fields[] = {"title",           "description",
                                       "schedule_kind",   "schedule_expr",
                                       "timezone",        "payload",
                                       "created_by",      "priority",
                                       "max_retries",     "backoff_strategy",
                                       "dedupe_key",      "dedupe_window_seconds",
                                       "concurrency_key", NULL};

static const char *s_strategies[] = {"exponential_jitter", "linear", "fixed", NULL};

//  A string of min..max bytes.
static bool s_string_in (const json_t *value, size_t min, size_t max) {
    return json_is_string (value) && json_string_length (value) >= min &&
           json_string_length (value) <= max;
}

static int s_fail (char *errbuf, const char *message) {
    snprintf (errbuf, BK_SCHED_TASK_ERRLEN, "%s", message);
    return -1;
}

//  Checks the merged record's user fields. 0 or -1 with errbuf.
static int s_check (json_t *record, char *errbuf) {
    json_t *value;
    int64_t number;
    value = json_object_get (record, "title");
    if (!value || json_is_null (value))
        return s_fail (errbuf, "title is required");
    if (!s_string_in (value, 1, 200))
        return s_fail (errbuf, "title must be a string of 1 to 200 characters");
    value = json_object_get (record, "description");
    if (!value || json_is_null (value))
        return s_fail (errbuf, "description is required");
    if (!s_string_in (value, 0, 2000))
        return s_fail (errbuf, "description must be a string of at most 2000 characters");
    value = json_object_get (record, "schedule_kind");
    if (!value || json_is_null (value))
        return s_fail (errbuf, "schedule_kind is required");
    json_t *expr = json_object_get (record, "schedule_expr");
    if (expr && !json_is_null (expr) && !json_is_string (expr))
        return s_fail (errbuf, "schedule_expr must be a string");
    json_t *zone = json_object_get (record, "timezone");
    if (!json_is_string (zone))
        return s_fail (errbuf, "timezone must be a valid IANA time zone");
    char why[BK_SCHEDULE_ERRLEN];
    if (bk_schedule_validate (json_is_string (value) ? json_string_value (value) : "",
                              json_string_value (expr), json_string_value (zone), why) != 0)
        return s_fail (errbuf, why);
    value = json_object_get (record, "payload");
    if (!value || json_is_null (value))
        return s_fail (errbuf, "payload is required");
    if (!json_is_object (value))
        return s_fail (errbuf, "payload must be an object");
    json_t *steps = json_object_get (value, "steps");
    if (steps) {
        size_t index;
        json_t *step;
        bool objects = json_is_array (steps);
        json_array_foreach (steps, index, step) objects = objects && json_is_object (step);
        if (!objects || json_array_size (steps) < 1 ||
            json_array_size (steps) > BK_SCHED_TASK_MAX_STEPS) {
            snprintf (errbuf, BK_SCHED_TASK_ERRLEN,
                      "payload.steps must be an array of 1 to %d task templates",
                      BK_SCHED_TASK_MAX_STEPS);
            return -1;
        }
    }
    value = json_object_get (record, "created_by");
    uint8_t uuid[16];
    if (!value || json_is_null (value))
        return s_fail (errbuf, "created_by is required");
    if (aq_uuid_parse (json_string_value (value), uuid) != 0)
        return s_fail (errbuf, "created_by must be a UUID");
    if (!bk_task_integer_in (json_object_get (record, "priority"), 1, 9, &number))
        return s_fail (errbuf, "priority must be an integer between 1 and 9");
    json_object_set_new (record, "priority", json_integer (number));
    if (!bk_task_integer_in (json_object_get (record, "max_retries"), 0, 10, &number))
        return s_fail (errbuf, "max_retries must be an integer between 0 and 10");
    json_object_set_new (record, "max_retries", json_integer (number));
    const char *strategy = json_string_value (json_object_get (record, "backoff_strategy"));
    bool known = false;
    for (int i = 0; strategy && s_strategies[i]; i++)
        known = known || strcmp (strategy, s_strategies[i]) == 0;
    if (!known)
        return s_fail (errbuf,
                       "backoff_strategy must be one of: exponential_jitter, linear, fixed");
    value = json_object_get (record, "dedupe_key");
    if (!json_is_null (value) && !s_string_in (value, 1, 200))
        return s_fail (errbuf, "dedupe_key must be a string of 1 to 200 characters");
    json_t *window = json_object_get (record, "dedupe_window_seconds");
    if (!json_is_null (window)) {
        if (!bk_task_integer_in (window, 1, 2592000, &number))
            return s_fail (errbuf,
                           "dedupe_window_seconds must be an integer between 1 and 2592000");
        json_object_set_new (record, "dedupe_window_seconds", json_integer (number));
    } else if (!json_is_null (value))
        json_object_set_new (record, "dedupe_window_seconds",
                             json_integer (BK_SCHED_TASK_DEDUPE_S));
    value = json_object_get (record, "concurrency_key");
    if (!json_is_null (value) && !s_string_in (value, 1, 200))
        return s_fail (errbuf, "concurrency_key must be a string of 1 to 200 characters");
    return 0;
}

json_t *bk_sched_task_from_request (const json_t *request, const json_t *old, char *errbuf) {
    if (!json_is_object (request)) {
        s_fail (errbuf, "Request body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *value;
    if (bk_task_unknown_field (request, s_fields, "", errbuf, BK_SCHED_TASK_ERRLEN))
        return NULL;
    json_t *record;
    if (old)
        record = json_deep_copy (old);
    else
        record = json_pack ("{s:n, s:n, s:n, s:n, s:s, s:n, s:n, s:i, s:i, s:s, s:n, s:n, s:n}",
                            "title", "description", "schedule_kind", "schedule_expr", "timezone",
                            "UTC", "payload", "created_by", "priority", 5, "max_retries", 3,
                            "backoff_strategy", "exponential_jitter", "dedupe_key",
                            "dedupe_window_seconds", "concurrency_key");
    json_object_foreach ((json_t *) request, key, value) {
        //  null resets an optional field; a required one stays missing
        json_object_set (record, key, value);
    }
    if (json_is_null (json_object_get (record, "timezone")))
        json_object_set_new (record, "timezone", json_string ("UTC"));
    if (old && json_object_get (request, "dedupe_key") &&
        !json_object_get (request, "dedupe_window_seconds") &&
        json_is_null (json_object_get (request, "dedupe_key")))
        json_object_set_new (record, "dedupe_window_seconds", json_null ());
    if (s_check (record, errbuf) != 0) {
        json_decref (record);
        return NULL;
    }
    return record;
}

json_t *bk_sched_task_steps (const json_t *payload) {
    json_t *steps = json_object_get (payload, "steps");
    if (json_is_array (steps))
        return json_copy (steps);
    return json_pack ("[O]", payload);
}

int bk_sched_task_queue_priority (int priority) {
    return priority < 1 || priority > 9 ? 5 : 10 - priority;
}

int bk_sched_task_snooze (const json_t *request, int64_t *seconds, const char **reason,
                          char *errbuf) {
    if (!json_is_object (request))
        return s_fail (errbuf, "Request body must be a JSON object");
    static const char *const fields[] = {"delay_seconds", "reason", NULL};
    if (bk_task_unknown_field (request, fields, "", errbuf, BK_SCHED_TASK_ERRLEN))
        return -1;
    json_t *value = json_object_get (request, "delay_seconds");
    if (!value || json_is_null (value))
        return s_fail (errbuf, "delay_seconds is required");
    if (!bk_task_integer_in (value, 1, BK_SCHED_TASK_SNOOZE_MAX, seconds))
        return s_fail (errbuf, "delay_seconds must be an integer between 1 and 604800");
    value = json_object_get (request, "reason");
    if (value && !json_is_null (value) && !s_string_in (value, 0, 500))
        return s_fail (errbuf, "reason must be a string of at most 500 characters");
    *reason = json_string_value (value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

static const char *s_error_of (const char *text, const json_t *old) {
    static char errbuf[BK_SCHED_TASK_ERRLEN];
    json_error_t jerr;
    json_t *request = json_loads (text, 0, &jerr);
    assert (request);
    json_t *record = bk_sched_task_from_request (request, old, errbuf);
    json_decref (request);
    if (record) {
        json_decref (record);
        return NULL;
    }
    return errbuf;
}

#define S_OK_BODY                                                                                  \
    "\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "                      \
    "\"schedule_expr\": \"0 9 * * 1-5\", \"payload\": {\"targetUrl\": \"http://x\"}, "             \
    "\"created_by\": \"0190b2a4-8c5e-7a3e-9b1c-2f4d6e8a0b1c\""

void bk_sched_task_test (bool verbose) {
    if (verbose)
        printf (" * bk_sched_task: ");
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
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\"}",
         "schedule_expr is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"cron\", "
         "\"schedule_expr\": \"* * * * *\", \"timezone\": \"Mars/Olympus\"}",
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
         "\"payload\": {}}",
         "created_by is required"},
        {"{\"title\": \"t\", \"description\": \"d\", \"schedule_kind\": \"event\", "
         "\"payload\": {}, \"created_by\": \"agent-7\"}",
         "created_by must be a UUID"},
        {"{" S_OK_BODY ", \"priority\": 0}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"priority\": 10}", "priority must be an integer between 1 and 9"},
        {"{" S_OK_BODY ", \"max_retries\": 11}", "max_retries must be an integer between 0 and 10"},
        {"{" S_OK_BODY ", \"backoff_strategy\": \"exponential\"}",
         "backoff_strategy must be one of: exponential_jitter, linear, fixed"},
        {"{" S_OK_BODY ", \"dedupe_key\": \"\"}",
         "dedupe_key must be a string of 1 to 200 characters"},
        {"{" S_OK_BODY ", \"dedupe_window_seconds\": 0}",
         "dedupe_window_seconds must be an integer between 1 and 2592000"},
        {"{" S_OK_BODY ", \"concurrency_key\": 7}",
         "concurrency_key must be a string of 1 to 200 characters"},
        {"{" S_OK_BODY ", \"schedule_expr\": \"61 * * * *\"}", NULL}, //  checked below
    };
    for (size_t i = 0; i + 1 < sizeof cases / sizeof cases[0]; i++) {
        const char *error = s_error_of (cases[i].body, NULL);
        if (!error || strcmp (error, cases[i].error) != 0) {
            fprintf (stderr, "bk_sched_task: %s gave '%s', want '%s'\n", cases[i].body,
                     error ? error : "(ok)", cases[i].error);
            assert (false);
        }
    }
    const char *error = s_error_of ("{" S_OK_BODY ", \"schedule_expr\": \"61 * * * *\"}", NULL);
    assert (error && strncmp (error, "Invalid cron expression: ", 25) == 0);
    //  defaults
    char errbuf[BK_SCHED_TASK_ERRLEN];
    json_t *request = json_loads ("{" S_OK_BODY ", \"dedupe_key\": \"k\"}", 0, NULL);
    json_t *record = bk_sched_task_from_request (request, NULL, errbuf);
    assert (record);
    assert (json_integer_value (json_object_get (record, "priority")) == 5);
    assert (json_integer_value (json_object_get (record, "max_retries")) == 3);
    assert (strcmp (json_string_value (json_object_get (record, "backoff_strategy")),
                    "exponential_jitter") == 0);
    assert (strcmp (json_string_value (json_object_get (record, "timezone")), "UTC") == 0);
    assert (json_integer_value (json_object_get (record, "dedupe_window_seconds")) ==
            BK_SCHED_TASK_DEDUPE_S);
    assert (json_is_null (json_object_get (record, "concurrency_key")));
    json_decref (request);
    //  a partial update keeps the rest, and is checked whole
    assert (s_error_of ("{\"priority\": 2}", record) == NULL);
    assert (strcmp (s_error_of ("{\"title\": null}", record), "title is required") == 0);
    assert (strcmp (s_error_of ("{\"status\": \"paused\"}", record), "Unknown field: status") == 0);
    assert (strncmp (s_error_of ("{\"schedule_kind\": \"rrule\"}", record), "Invalid RRULE", 13) ==
            0);
    //  steps, priority
    json_t *steps = bk_sched_task_steps (json_object_get (record, "payload"));
    assert (json_array_size (steps) == 1);
    json_decref (steps);
    assert (bk_sched_task_queue_priority (1) == 9 && bk_sched_task_queue_priority (5) == 5 &&
            bk_sched_task_queue_priority (9) == 1);
    json_decref (record);
    //  snooze
    int64_t seconds;
    const char *reason;
    json_t *snooze = json_loads ("{\"delay_seconds\": 60, \"reason\": \"deploy\"}", 0, NULL);
    assert (bk_sched_task_snooze (snooze, &seconds, &reason, errbuf) == 0);
    assert (seconds == 60 && strcmp (reason, "deploy") == 0);
    json_decref (snooze);
    snooze = json_loads ("{\"delay_seconds\": 604801}", 0, NULL);
    assert (bk_sched_task_snooze (snooze, &seconds, &reason, errbuf) == -1);
    assert (strcmp (errbuf, "delay_seconds must be an integer between 1 and 604800") == 0);
    json_decref (snooze);
    snooze = json_loads ("{}", 0, NULL);
    assert (bk_sched_task_snooze (snooze, &seconds, &reason, errbuf) == -1);
    assert (strcmp (errbuf, "delay_seconds is required") == 0);
    json_decref (snooze);
    if (verbose)
        printf ("OK\n");
}
