/*  job.c - a JOB's fields where they lie in its frame, and what a RESULT
    echoes of it

    One pass over the JOB's map picks the fields out; nothing is copied or
    allocated. What each field must be is the caller's to check
    (callout.c), as is what a RESULT carries besides the echo.
*/
#include "job.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wk_job_read (const aq_node_t *body, wk_job_t *job) {
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"id", offsetof (wk_job_t, id)},           {"attempt", offsetof (wk_job_t, attempt)},
        {"url", offsetof (wk_job_t, url)},         {"method", offsetof (wk_job_t, method)},
        {"headers", offsetof (wk_job_t, headers)}, {"body", offsetof (wk_job_t, body)},
        {"timeout", offsetof (wk_job_t, timeout)}, {"maxBody", offsetof (wk_job_t, max_body)},
        {"kind", offsetof (wk_job_t, kind)},       {"lease", offsetof (wk_job_t, lease)}};
    memset (job, 0, sizeof *job);
    aq_iter_t it;
    aq_node_t key, value;
    aq_node_iter (body, &it);
    while (aq_iter_next (&it, &key, &value)) {
        if (key.type != AQ_NODE_STR)
            continue;
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
            if (key.count == strlen (fields[i].key) &&
                memcmp (key.data, fields[i].key, key.count) == 0) {
                *(aq_node_t *) ((char *) job + fields[i].offset) = value;
                break;
            }
    }
}

wk_echo_t wk_job_echo (const wk_job_t *job) {
    wk_echo_t echo = {.id = ""};
    if (job->id.type == AQ_NODE_STR)
        echo.id = (const char *) job->id.data, echo.id_size = job->id.count;
    if (job->attempt.type == AQ_NODE_INT)
        echo.attempt = job->attempt.i;
    if (job->kind.type == AQ_NODE_STR)
        echo.kind = (const char *) job->kind.data, echo.kind_size = job->kind.count;
    if (job->lease.type == AQ_NODE_STR)
        echo.lease = (const char *) job->lease.data, echo.lease_size = job->lease.count;
    return echo;
}

//  --------------------------------------------------------------------------
//  Selftest

static bool s_is (const char *text, size_t size, const char *expected) {
    return text && size == strlen (expected) && memcmp (text, expected, size) == 0;
}

void wk_job_test (bool verbose) {
    //  {"id": "t1", "attempt": 3, "url": "u", "x": 1, "kind": "poll",
    //   "lease": "ab", 7: "int key", "url": "v"}: the last url counts
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 8);
    aq_write_kv_str (&w, "id", "t1");
    aq_write_kv_int (&w, "attempt", 3);
    aq_write_kv_str (&w, "url", "u");
    aq_write_kv_int (&w, "x", 1);
    aq_write_kv_str (&w, "kind", "poll");
    aq_write_kv_str (&w, "lease", "ab");
    aq_write_int (&w, 7);
    aq_write_str (&w, "int key");
    aq_write_kv_str (&w, "url", "v");
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    aq_node_t body;
    assert (aq_msg_parse (data, size, &body) == 0);
    wk_job_t job;
    wk_job_read (&body, &job);
    assert (aq_node_streq (&job.url, "v") && job.attempt.i == 3);
    assert (job.method.type == 0 && job.headers.type == 0 && job.body.type == 0);
    wk_echo_t echo = wk_job_echo (&job);
    assert (s_is (echo.id, echo.id_size, "t1") && echo.attempt == 3);
    assert (s_is (echo.kind, echo.kind_size, "poll") && s_is (echo.lease, echo.lease_size, "ab"));

    //  Fields of other types are not echoed; no id echoes ""
    aq_writer_reset (&w);
    aq_write_map (&w, 3);
    aq_write_kv_int (&w, "id", 5);
    aq_write_kv_str (&w, "attempt", "2");
    aq_write_kv_int (&w, "lease", 1);
    data = aq_writer_data (&w, &size);
    assert (aq_msg_parse (data, size, &body) == 0);
    wk_job_read (&body, &job);
    echo = wk_job_echo (&job);
    assert (s_is (echo.id, echo.id_size, "") && echo.attempt == 0);
    assert (!echo.kind && !echo.lease);
    if (verbose)
        printf ("  job fields read and echoed\n");
    aq_writer_release (&w);
}
