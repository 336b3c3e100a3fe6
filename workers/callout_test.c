/*  callout_test.c - the selftest of callout.c: calls to a small HTTP/1.1
    server in this process (tests/rig_http)

    Apart from callout.c so that each stays a readable size; it uses the
    engine through callout.h only, as the worker does.
*/
#include "callout.h"
#include "aq_codec.h"
#include "aq_time.h"

#include "../tests/rig_http.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *s_job (const char *id, const char *method, const char *url, int timeout,
                      int max_body) {
    json_t *job =
        json_pack ("{s:s, s:i, s:s, s:s, s:{}, s:i, s:i}", "id", id, "attempt", 1, "url", url,
                   "method", method, "headers", "timeout", timeout, "maxBody", max_body);
    assert (job);
    return job;
}

//  The oldest RESULT as a JSON body, taken from the engine; NULL if none.
static json_t *s_take (wk_callout_t *callout) {
    size_t size;
    const uint8_t *frame = wk_callout_result (callout, &size);
    if (!frame)
        return NULL;
    int cmd;
    json_t *body = NULL;
    assert (aq_codec_decode (frame, size, &cmd, &body) == 0 && cmd == AQ_CMD_RESULT);
    wk_callout_pop_result (callout);
    return body;
}

//  Runs the engine until want results are in or limit_ms passes; returns
//  them in the order they came.
static json_t *s_run (wk_callout_t *callout, size_t want, int limit_ms) {
    json_t *results = json_array ();
    int64_t end = aq_time_mono_ms () + limit_ms;
    while (json_array_size (results) < want && aq_time_mono_ms () < end) {
        long timeout = wk_callout_timeout_ms (callout);
        assert (wk_callout_wait (callout, timeout < 0 || timeout > 100 ? 100 : timeout) == 0);
        json_t *result;
        while ((result = s_take (callout)))
            json_array_append_new (results, result);
    }
    return results;
}

//  Starts job (a JSON body, taken) as it would come in a JOB frame;
//  returns what wk_callout_start does.
static int s_start (wk_callout_t *callout, json_t *job) {
    size_t size;
    uint8_t *frame = aq_codec_encode (AQ_CMD_JOB, job, &size);
    assert (frame);
    int cmd;
    aq_node_t body;
    assert (aq_msg_frame (frame, size, &cmd, &body) == 0 && cmd == AQ_CMD_JOB);
    int rc = wk_callout_start (callout, &body);
    free (frame);
    json_decref (job);
    return rc;
}

//  Starts job (taking it) and returns its result.
static json_t *s_call (wk_callout_t *callout, json_t *job) {
    s_start (callout, job);
    json_t *results = s_run (callout, 1, 10000);
    assert (json_array_size (results) == 1);
    json_t *result = json_incref (json_array_get (results, 0));
    json_decref (results);
    return result;
}

static const char *s_str (const json_t *object, const char *key) {
    return json_string_value (json_object_get (object, key));
}

static json_int_t s_int (const json_t *object, const char *key) {
    return json_integer_value (json_object_get (object, key));
}

static bool s_streq (const char *a, const char *b) {
    return a && b && strcmp (a, b) == 0;
}

static void s_expect_error (wk_callout_t *callout, json_t *job, const char *error, bool permanent) {
    json_t *result = s_call (callout, job);
    assert (s_streq (s_str (result, "error"), error));
    assert (json_is_true (json_object_get (result, "permanent")) == permanent);
    assert (!json_object_get (result, "statusCode"));
    json_decref (result);
}

//  The same job for several hosts: each refused as a loopback address.
static void s_expect_refused (wk_callout_t *callout, rig_http_t *server, bool verbose) {
    const char *hosts[] = {"127.0.0.1",          "127.1",     "2130706433", "0x7f.1",
                           "[::ffff:127.0.0.1]", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        char url[128];
        snprintf (url, sizeof url, "http://%s:%d/echo/ssrf", hosts[i], rig_http_port (server));
        json_t *result = s_call (callout, s_job ("s", "GET", url, 5, 100));
        const char *error = s_str (result, "error");
        if (verbose)
            printf ("  %-40s %s\n", url, error);
        assert (error && strncmp (error, "destination not allowed: ", 25) == 0);
        assert (strstr (error, " is a loopback address"));
        assert (json_is_true (json_object_get (result, "permanent")));
        json_decref (result);
    }
}

void wk_callout_test (bool verbose) {
    rig_http_t *server = rig_http_new ();
    wk_callout_t *callout = wk_callout_new (true, 8);
    assert (callout);
    char url[128], base[64];
    snprintf (base, sizeof base, "http://127.0.0.1:%d", rig_http_port (server));
    assert (!s_take (callout) && wk_callout_results (callout) == 0);

    //  Method, user headers and body delivered; ours added, curl's removed
    json_t *job = s_job ("t1", "POST", rig_http_url (server, "/echo/post"), 5, 1000);
    json_object_set_new (job, "attempt", json_integer (2));
    json_object_set_new (job, "body", json_string ("{\"a\":1}"));
    json_object_set_new (job, "headers",
                         json_pack ("{s:s, s:s, s:s, s:s}", "X-Custom", "hello", "Content-Type",
                                    "application/json", "X-Empty", "", "AsyncQueue-Task-Id",
                                    "spoofed"));
    json_object_set_new (job, "kind", json_string ("poll"));
    json_object_set_new (job, "lease", json_string ("0123456789abcdef0123456789abcdef"));
    assert (s_start (callout, job) == 0);
    assert (wk_callout_active (callout) == 1);
    json_t *results = s_run (callout, 1, 5000);
    assert (wk_callout_active (callout) == 0);
    json_t *result = json_array_get (results, 0);
    assert (s_streq (s_str (result, "id"), "t1") && s_int (result, "attempt") == 2);
    assert (s_streq (s_str (result, "kind"), "poll"));
    assert (s_streq (s_str (result, "lease"), "0123456789abcdef0123456789abcdef"));
    assert (json_object_size (result) ==
            8); //  id attempt kind lease duration statusCode headers body
    assert (s_int (result, "statusCode") == 200);
    assert (s_streq (s_str (result, "body"), "hello"));
    assert (s_streq (s_str (json_object_get (result, "headers"), "x-reply"), "yes"));
    assert (s_streq (s_str (json_object_get (result, "headers"), "content-type"), "text/plain"));
    assert (json_is_integer (json_object_get (result, "duration")));
    assert (!json_object_get (result, "bodyTruncated") && !json_object_get (result, "error"));
    assert (!json_object_get (result, "retryAfter"));
    json_decref (results);
    char *request = rig_http_request (server, "/echo/post");
    assert (request);
    if (verbose)
        printf ("%s\n", request);
    assert (strncmp (request, "POST /echo/post HTTP/1.1\r\n", 26) == 0);
    assert (strstr (request, "\r\nX-Custom: hello\r\n"));
    assert (strstr (request, "\r\nX-Empty:\r\n"));
    assert (strstr (request, "\r\nContent-Type: application/json\r\n"));
    assert (strstr (request, "\r\nUser-Agent: asyncqueue/0.1\r\n"));
    assert (strstr (request, "\r\nAsyncQueue-Task-Id: t1\r\n"));
    assert (strstr (request, "\r\nAsyncQueue-Attempt: 2\r\n"));
    assert (strstr (request, "\r\nContent-Length: 7\r\n"));
    assert (!strstr (request, "spoofed") && !strstr (request, "Expect:"));
    assert (!strstr (request, "Accept:") && !strstr (request, "urlencoded"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n{\"a\":1}"));
    free (request);

    //  GET sends no body; a user's User-Agent replaces ours
    job = s_job ("t2", "GET", rig_http_url (server, "/echo/get"), 5, 1000);
    json_object_set_new (job, "body", json_string ("not sent"));
    json_object_set_new (job, "headers", json_pack ("{s:s}", "user-agent", "custom/1"));
    json_decref (s_call (callout, job));
    request = rig_http_request (server, "/echo/get");
    assert (request && strncmp (request, "GET /echo/get HTTP/1.1\r\n", 24) == 0);
    assert (!strstr (request, "Content-Length") && !strstr (request, "Content-Type"));
    assert (strstr (request, "\r\nuser-agent: custom/1\r\n") && !strstr (request, "asyncqueue/"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n"));
    free (request);

    //  PUT and DELETE with a body, DELETE without, POST without
    const char *methods[][3] = {{"PUT", "/echo/put", "p"},
                                {"DELETE", "/echo/delete", "d"},
                                {"DELETE", "/echo/delete-nobody", NULL},
                                {"POST", "/echo/post-nobody", NULL}};
    for (size_t i = 0; i < 4; i++) {
        job = s_job ("t3", methods[i][0], rig_http_url (server, methods[i][1]), 5, 1000);
        if (methods[i][2])
            json_object_set_new (job, "body", json_string (methods[i][2]));
        result = s_call (callout, job);
        assert (s_int (result, "statusCode") == 200);
        json_decref (result);
        request = rig_http_request (server, methods[i][1]);
        assert (request && strncmp (request, methods[i][0], strlen (methods[i][0])) == 0);
        const char *body = strstr (request, "\r\n\r\n") + 4;
        assert (strcmp (body, methods[i][2] ? methods[i][2] : "") == 0);
        assert (!strstr (request, "Content-Type"));
        bool length = strstr (request, "Content-Length") != NULL;
        assert (length == (methods[i][2] || strcmp (methods[i][0], "POST") == 0));
        free (request);
    }

    //  A call struct serves the next call: a large body sent before leaves
    //  nothing behind (one spare call here, so the same one each time)
    wk_callout_t *single = wk_callout_new (true, 1);
    char *big = malloc (100001);
    memset (big, 'b', 100000);
    big[100000] = '\0';
    job = s_job ("t3b", "POST", rig_http_url (server, "/echo/big-post"), 5, 1000);
    json_object_set_new (job, "body", json_string (big));
    free (big);
    result = s_call (single, job);
    assert (s_int (result, "statusCode") == 200);
    json_decref (result);
    request = rig_http_request (server, "/echo/big-post");
    assert (request && strstr (request, "\r\nContent-Length: 100000\r\n"));
    free (request);
    job = s_job ("t3c", "GET", rig_http_url (server, "/echo/after-big"), 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "X-Only", "here"));
    result = s_call (single, job);
    assert (s_int (result, "statusCode") == 200);
    json_decref (result);
    request = rig_http_request (server, "/echo/after-big");
    assert (request && strncmp (request, "GET /echo/after-big HTTP/1.1\r\n", 30) == 0);
    assert (!strstr (request, "Content-Length") && strstr (request, "\r\nX-Only: here\r\n"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n"));
    free (request);
    job = s_job ("t3d", "DELETE", rig_http_url (server, "/echo/delete-after"), 5, 1000);
    result = s_call (single, job);
    json_decref (result);
    request = rig_http_request (server, "/echo/delete-after");
    assert (request && strncmp (request, "DELETE /echo/delete-after", 25) == 0);
    assert (!strstr (request, "X-Only") && !strstr (request, "Content-Length"));
    free (request);
    wk_callout_destroy (&single);

    //  Any status is a result: redirects are not followed
    result = s_call (callout, s_job ("t4", "GET", rig_http_url (server, "/status/302"), 5, 1000));
    assert (s_int (result, "statusCode") == 302);
    assert (s_streq (s_str (json_object_get (result, "headers"), "location"), "/echo/followed"));
    assert (!rig_http_request (server, "/echo/followed"));
    json_decref (result);
    result = s_call (callout, s_job ("t5", "POST", rig_http_url (server, "/status/404"), 5, 1000));
    assert (s_int (result, "statusCode") == 404 && !json_object_get (result, "error"));
    json_decref (result);

    //  Retry-After as delta-seconds and as an HTTP-date
    result = s_call (callout, s_job ("t6", "POST", rig_http_url (server, "/status/503"), 5, 1000));
    assert (s_int (result, "statusCode") == 503 && s_int (result, "retryAfter") == 7);
    json_decref (result);
    result = s_call (callout, s_job ("t7", "POST", rig_http_url (server, "/date"), 5, 1000));
    json_int_t retry_after = s_int (result, "retryAfter");
    assert (s_int (result, "statusCode") == 503 && retry_after >= 117 && retry_after <= 121);
    json_decref (result);
    assert (wk_callout_retry_after ("0") == 0 && wk_callout_retry_after (" 120 ") == 120);
    assert (wk_callout_retry_after ("Sun, 06 Nov 1994 08:49:37 GMT") == 0); //  in the past
    assert (wk_callout_retry_after ("soon") == -1 && wk_callout_retry_after (NULL) == -1);
    assert (wk_callout_retry_after ("99999999999") == INT32_MAX);

    //  The final response's headers only: lower-case names, repeats joined
    result = s_call (callout, s_job ("t8", "GET", rig_http_url (server, "/headers"), 5, 1000));
    json_t *headers = json_object_get (result, "headers");
    if (verbose)
        json_dumpf (headers, stdout, JSON_INDENT (2)), printf ("\n");
    assert (s_int (result, "statusCode") == 200);
    assert (s_streq (s_str (headers, "set-cookie"), "a=1, b=2"));
    assert (s_streq (s_str (headers, "x-mixed"), "spaced value"));
    assert (!json_object_get (headers, "link") && !json_object_get (headers, "Set-Cookie"));
    json_decref (result);

    //  The body is capped at maxBody and made valid UTF-8
    result = s_call (callout, s_job ("t9", "GET", rig_http_url (server, "/big"), 5, 1000));
    assert (s_int (result, "statusCode") == 200 && strlen (s_str (result, "body")) == 1000);
    assert (json_is_true (json_object_get (result, "bodyTruncated")));
    json_decref (result);
    result = s_call (callout, s_job ("t10", "GET", rig_http_url (server, "/big"), 5, 200000));
    assert (strlen (s_str (result, "body")) == 100000 &&
            !json_object_get (result, "bodyTruncated"));
    json_decref (result);
    result = s_call (callout, s_job ("t11", "GET", rig_http_url (server, "/utf8"), 5, 1000));
    assert (s_streq (s_str (result, "body"),
                     "ok\xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD"));
    json_decref (result);
    result = s_call (callout, s_job ("t12", "GET", rig_http_url (server, "/euro"), 5, 4));
    assert (s_streq (s_str (result, "body"), "\xe2\x82\xac"));
    assert (json_is_true (json_object_get (result, "bodyTruncated")));
    json_decref (result);
    result = s_call (callout, s_job ("t13", "GET", rig_http_url (server, "/euro"), 5, 9));
    assert (strlen (s_str (result, "body")) == 9 && !json_object_get (result, "bodyTruncated"));
    json_decref (result);

    //  Many in flight: a slow call does not hold up a fast one; timeouts
    s_start (callout, s_job ("slow", "GET", rig_http_url (server, "/sleep/1500"), 5, 1000));
    s_start (callout, s_job ("hang", "GET", rig_http_url (server, "/sleep/5000"), 1, 1000));
    s_start (callout, s_job ("fast", "GET", rig_http_url (server, "/echo/fast"), 5, 1000));
    assert (wk_callout_active (callout) == 3);
    results = s_run (callout, 3, 5000);
    assert (json_array_size (results) == 3);
    json_t *fast = json_array_get (results, 0), *hang = json_array_get (results, 1),
           *slow = json_array_get (results, 2);
    if (verbose)
        json_dumpf (results, stdout, JSON_COMPACT), printf ("\n");
    assert (s_streq (s_str (fast, "id"), "fast") && s_int (fast, "duration") < 500);
    assert (s_streq (s_str (hang, "id"), "hang"));
    assert (s_streq (s_str (hang, "error"), "timeout after 1s"));
    assert (!json_object_get (hang, "permanent") && s_int (hang, "duration") >= 900);
    assert (s_streq (s_str (slow, "id"), "slow") && s_streq (s_str (slow, "body"), "slept"));
    assert (s_int (slow, "duration") >= 1400);
    json_decref (results);

    //  Connection refused; DNS failure
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", rig_http_free_port ());
    s_expect_error (callout, s_job ("t14", "POST", url, 5, 1000), "fetch failed: ECONNREFUSED",
                    false);
    s_expect_error (callout, s_job ("t15", "POST", "http://nonexistent.invalid/", 5, 1000),
                    "fetch failed: ENOTFOUND", false);

    //  Jobs that can never run fail at once, permanently
    const char *bad_urls[] = {"ftp://127.0.0.1/x", "file:///etc/passwd",  "not a url",
                              "http://",           "gopher://127.0.0.1/", "http://exa mple.com/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        job = s_job ("t16", "GET", bad_urls[i], 5, 1000);
        assert (s_start (callout, job) == -1);
        assert (wk_callout_active (callout) == 0 && wk_callout_results (callout) == 1);
        result = s_take (callout);
        assert (s_streq (s_str (result, "error"), "invalid URL"));
        assert (json_is_true (json_object_get (result, "permanent")));
        assert (s_streq (s_str (result, "id"), "t16") && s_int (result, "duration") == 0);
        assert (!json_object_get (result, "kind") && !json_object_get (result, "lease"));
        json_decref (result);
    }

    //  A refused JOB: its echoed fields, error and refused, and nothing else
    job = s_job ("t16r", "GET", base, 5, 1000);
    json_object_set_new (job, "attempt", json_integer (4));
    json_object_set_new (job, "lease", json_string ("feed"));
    json_object_set_new (job, "kind", json_integer (7)); //  not a string: not echoed
    size_t size;
    uint8_t *frame = aq_codec_encode (AQ_CMD_JOB, job, &size);
    int cmd;
    aq_node_t node;
    assert (aq_msg_frame (frame, size, &cmd, &node) == 0);
    assert (wk_callout_refuse (callout, &node, "worker over capacity") == 0);
    free (frame);
    json_decref (job);
    result = s_take (callout);
    assert (s_streq (s_str (result, "id"), "t16r") && s_int (result, "attempt") == 4);
    assert (s_streq (s_str (result, "error"), "worker over capacity"));
    assert (s_streq (s_str (result, "lease"), "feed") && !json_object_get (result, "kind"));
    assert (json_is_true (json_object_get (result, "refused")) && s_int (result, "duration") == 0);
    assert (json_object_size (result) == 6 && wk_callout_active (callout) == 0);
    json_decref (result);

    //  Many RESULTs waiting: taken oldest first, the buffer moved up as
    //  they go
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf (id, sizeof id, "q%d", i);
        assert (s_start (callout, s_job (id, "PATCH", base, 5, 1000)) == -1);
        if (i % 3 == 2) {
            snprintf (id, sizeof id, "q%d", i / 3);
            result = s_take (callout);
            assert (s_streq (s_str (result, "id"), id));
            json_decref (result);
        }
    }
    assert (wk_callout_results (callout) == 200);
    for (int i = 100; i < 300; i++) {
        char id[16];
        snprintf (id, sizeof id, "q%d", i);
        result = s_take (callout);
        assert (s_streq (s_str (result, "id"), id) &&
                s_streq (s_str (result, "error"), "invalid method"));
        json_decref (result);
    }
    assert (!s_take (callout));
    job = s_job ("t17", "GET", base, 5, 1000);
    json_object_del (job, "url");
    s_expect_error (callout, job, "invalid URL", true);
    s_expect_error (callout, s_job ("t18", "PATCH", base, 5, 1000), "invalid method", true);
    job = s_job ("t19", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "X-Bad", "a\r\nInjected: 1"));
    s_expect_error (callout, job, "invalid header value", true);
    job = s_job ("t20", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s#}", "X-Nul", "a\0b", (int) 3));
    s_expect_error (callout, job, "invalid header value", true);
    job = s_job ("t21", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "Bad Name", "x"));
    s_expect_error (callout, job, "invalid header name", true);
    job = s_job ("t22", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:i}", "X-Number", 1));
    s_expect_error (callout, job, "invalid header value", true);

    //  Calls in flight when the engine goes are dropped without a result
    s_start (callout, s_job ("t23", "GET", rig_http_url (server, "/sleep/5000"), 5, 1000));
    results = s_run (callout, 1, 200);
    assert (json_array_size (results) == 0 && wk_callout_active (callout) == 1);
    json_decref (results);
    wk_callout_destroy (&callout);
    assert (callout == NULL);
    wk_callout_destroy (&callout);

    //  The SSRF guard: every spelling of loopback is refused, nothing sent
    callout = wk_callout_new (false, 8);
    result = s_call (callout, s_job ("t24", "GET", rig_http_url (server, "/echo/ssrf"), 5, 1000));
    assert (s_streq (s_str (result, "error"),
                     "destination not allowed: 127.0.0.1 is a loopback address"));
    json_decref (result);
    s_expect_refused (callout, server, verbose);
    assert (!rig_http_request (server, "/echo/ssrf"));
    wk_callout_destroy (&callout);
    rig_http_destroy (&server);
}
