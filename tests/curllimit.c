/*  curllimit.c - aq-curl-limit: how fast libcurl multi alone calls a local target

    aq-curl-limit --url URL [--inflight N] [--count N] [--seconds S]

    The physical limit for callbacks on this machine, with no queue in front:
    one thread, one curl multi handle driven by curl_multi_poll, N transfers
    in flight (100 by default), each easy handle added again as soon as its
    transfer ends, so the multi's connection cache keeps the N connections
    alive. Each transfer is the request a worker makes for a task without a
    body (tests/bench.py's e2e tasks): POST with an empty body and the
    worker's headers. Stops after N transfers or S seconds, whichever comes
    first, and prints `bench curl_multi_limit_per_s <n> calls/s` (2xx answers
    over the time from the first transfer to the last answer) and a note on
    stderr with the client's CPU per call.
*/
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double s_now (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double s_cpu_seconds (void) {
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6 +
           (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
}

static size_t s_discard (char *data, size_t size, size_t count, void *arg) {
    (void) data;
    (void) arg;
    return size * count;
}

static CURL *s_easy (const char *url, struct curl_slist *headers) {
    CURL *easy = curl_easy_init ();
    if (!easy)
        return NULL;
    bool bad = false;
    bad |= curl_easy_setopt (easy, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 30000L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_discard) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_COPYPOSTFIELDS, "") != CURLE_OK;
    if (bad) {
        curl_easy_cleanup (easy);
        return NULL;
    }
    return easy;
}

static int s_usage (void) {
    fprintf (stderr, "usage: aq-curl-limit --url URL [--inflight N] [--count N] [--seconds S]\n");
    return 2;
}

int main (int argc, char **argv) {
    const char *url = NULL;
    long inflight = 100;
    int64_t count = 100000;
    double seconds = 10;
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value)
            return s_usage ();
        i++;
        if (strcmp (name, "--url") == 0)
            url = value;
        else if (strcmp (name, "--inflight") == 0)
            inflight = atol (value);
        else if (strcmp (name, "--count") == 0)
            count = atoll (value);
        else if (strcmp (name, "--seconds") == 0)
            seconds = atof (value);
        else
            return s_usage ();
    }
    if (!url || inflight < 1 || inflight > 10000 || count < 1 || seconds <= 0)
        return s_usage ();
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, "aq-curl-limit: cannot initialise libcurl\n");
        return 1;
    }
    int rc = 1;
    //  the worker's own headers for a task without headers or body
    struct curl_slist *headers = NULL;
    const char *lines[] = {"User-Agent: asyncqueue/0.1",
                           "AsyncQueue-Task-Id: 0190b1e2-7c4d-7a1b-8c3d-4e5f6a7b8c9d",
                           "AsyncQueue-Attempt: 1",
                           "Accept:",
                           "Expect:",
                           "Content-Type:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        headers = curl_slist_append (headers, lines[i]);
    CURLM *multi = curl_multi_init ();
    CURL **easies = calloc ((size_t) inflight, sizeof *easies);
    if (!headers || !multi || !easies)
        goto out;
    curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS, inflight);

    int64_t started = 0, ok = 0, failed = 0;
    long first_status = 0;
    CURLcode first_code = CURLE_OK;
    double cpu = s_cpu_seconds (), start = s_now (), last = start;
    for (long i = 0; i < inflight && started < count; i++) {
        easies[i] = s_easy (url, headers);
        if (!easies[i] || curl_multi_add_handle (multi, easies[i]) != CURLM_OK) {
            fprintf (stderr, "aq-curl-limit: cannot start a transfer\n");
            goto out;
        }
        started++;
    }
    int running = 1;
    while (running > 0) {
        if (curl_multi_perform (multi, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        bool more = started < count && s_now () - start < seconds;
        while ((msg = curl_multi_info_read (multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode code = msg->data.result;
            long status = 0;
            curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
            if (code == CURLE_OK && status >= 200 && status < 300)
                ok++;
            else if (failed++ == 0)
                first_code = code, first_status = status;
            last = s_now ();
            curl_multi_remove_handle (multi, easy);
            if (more && started < count) {
                curl_multi_add_handle (multi, easy);
                started++;
                running++;
            }
        }
        if (running > 0 && curl_multi_poll (multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    double elapsed = last - start, used = s_cpu_seconds () - cpu;
    if (failed)
        fprintf (stderr, "aq-curl-limit: %lld of %lld calls failed, first: %s (HTTP %ld)\n",
                 (long long) failed, (long long) started, curl_easy_strerror (first_code),
                 first_status);
    fprintf (stderr,
             "aq-curl-limit: %lld calls ended in %.2f s, %ld in flight; client CPU %.2f us per "
             "call, %.0f%% of one core\n",
             (long long) (ok + failed), elapsed, inflight,
             used * 1e6 / (double) (started ? started : 1),
             100.0 * used / (elapsed > 0 ? elapsed : 1));
    if (ok > 0 && elapsed > 0) {
        printf ("bench curl_multi_limit_per_s %.0f calls/s\n", (double) ok / elapsed);
        rc = 0;
    }
out:
    for (long i = 0; easies && i < inflight; i++)
        if (easies[i]) {
            curl_multi_remove_handle (multi, easies[i]);
            curl_easy_cleanup (easies[i]);
        }
    free (easies);
    if (multi)
        curl_multi_cleanup (multi);
    curl_slist_free_all (headers);
    curl_global_cleanup ();
    return rc;
}
