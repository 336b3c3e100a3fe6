/*  fal.c - provider plugin for fal.ai's queue API

    Submit: POST https://queue.fal.run/<model id> with "Authorization: Key
    <key>" answers {request_id, status_url, response_url, cancel_url, status}.
    Poll: GET status_url answers {status: IN_QUEUE | IN_PROGRESS | COMPLETED};
    any other status is a failure. Finished: GET response_url, the result;
    a failed request's error is read from there too ({"detail": ...}).
    Cancel: PUT cancel_url. fal's queue API answers all three URLs on
    https://queue.fal.run, the one host declared: polls go nowhere else.

    Pure functions over the host's JSON access: no I/O here. The selftest
    beside it (fal_test.c) runs these against fal's shapes.
*/
#include "aq_plugin.h"

#include <stdio.h>
#include <string.h>

static bool s_success (int status) {
    return status >= 200 && status <= 299;
}

//  fal's error text in a body: {"detail": "..."}, {"detail": [{"msg": ...}]}
//  or {"error": ...}. Caller frees with host->free; NULL if none.
static char *s_detail (const aq_host_t *host, const void *body) {
    static const char *paths[] = {"detail.0.msg", "detail", "error.message", "error", "message"};
    for (size_t i = 0; body && i < sizeof paths / sizeof *paths; i++) {
        char *text = host->json_get_text (body, paths[i]);
        if (text)
            return text;
    }
    return NULL;
}

//  url with suffix removed (if it ends so) and add appended. NULL if url is.
static char *s_derive (const aq_host_t *host, const char *url, const char *suffix,
                       const char *add) {
    if (!url)
        return NULL;
    size_t len = strlen (url), cut = strlen (suffix);
    if (cut && len > cut && strcmp (url + len - cut, suffix) == 0)
        len -= cut;
    char *out = host->alloc (len + strlen (add) + 1);
    if (out) {
        memcpy (out, url, len);
        strcpy (out + len, add);
    }
    return out;
}

//  Sets status from a queue status value and the document it came in.
static void s_classify (const aq_host_t *host, const char *value, const void *doc,
                        aq_provider_status_t *status) {
    if (value && (strcmp (value, "IN_QUEUE") == 0 || strcmp (value, "IN_PROGRESS") == 0))
        status->state = AQ_POLL_RUNNING;
    else if (value && strcmp (value, "COMPLETED") == 0) {
        //  COMPLETED with an error: the run failed; response_url has details
        char *error = host->json_get_text (doc, "error");
        status->state = error ? AQ_POLL_FAILED : AQ_POLL_DONE;
        if (error)
            host->set_error (&status->error, "fal request failed: %s", error);
        host->free (error);
        status->fetch_result = true;
    } else {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "fal request ended with status '%s'",
                         value ? value : "(none)");
        status->fetch_result = true; //  the error is read from response_url
    }
}

static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    const void *doc = initial->body;
    if (!s_success (initial->status)) {
        char *detail = s_detail (host, doc);
        status->state = AQ_POLL_FAILED;
        if (detail)
            host->set_error (&status->error, "fal submit failed: HTTP %d: %s", initial->status,
                             detail);
        else
            host->set_error (&status->error, "fal submit failed: HTTP %d", initial->status);
        host->free (detail);
        return 0;
    }
    const char *status_url = host->json_get_str (doc, "status_url");
    const char *response_url = host->json_get_str (doc, "response_url");
    const char *cancel_url = host->json_get_str (doc, "cancel_url");
    plan->job_id = host->strdup (host->json_get_str (doc, "request_id"));
    plan->status_url =
        status_url ? host->strdup (status_url) : s_derive (host, response_url, "", "/status");
    plan->result_url =
        response_url ? host->strdup (response_url) : s_derive (host, status_url, "/status", "");
    plan->cancel_url =
        cancel_url ? host->strdup (cancel_url) : s_derive (host, plan->result_url, "", "/cancel");
    plan->cancel_method = host->strdup ("PUT");
    plan->interval_ms = 1000;
    if (!plan->status_url) {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "fal submit response has no status_url");
        return 0;
    }
    if (!plan->result_url || !plan->cancel_url || !plan->cancel_method)
        return -1; //  out of memory
    const char *value = host->json_get_str (doc, "status");
    s_classify (host, value ? value : "IN_QUEUE", doc, status);
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    if (!s_success (response->status)) {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "fal status check failed: HTTP %d", response->status);
        return 0;
    }
    s_classify (host, host->json_get_str (response->body, "status"), response->body, status);
    return 0;
}

static int s_result (void *state, const aq_provider_plan_t *plan,
                     const aq_http_response_t *response, aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    char *detail = s_detail (host, response->body);
    if (status->state == AQ_POLL_DONE && !s_success (response->status)) {
        status->state = AQ_POLL_FAILED;
        if (detail)
            host->set_error (&status->error, "fal request failed: %s", detail);
        else
            host->set_error (&status->error, "fal request failed: HTTP %d", response->status);
    } else if (status->state == AQ_POLL_FAILED && detail)
        host->set_error (&status->error, "fal request failed: %s", detail);
    host->free (detail);
    return 0;
}

static const char *const s_hosts[] = {"queue.fal.run", NULL};

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .submit_method = "POST",
    .submit_url = "https://queue.fal.run/{model}",
    .auth_header = "Authorization",
    .auth_format = "Key {token}",
    .plan = s_plan,
    .poll = s_poll,
    .result = s_result,
    .hosts = s_hosts, //  polls carry auth_header alone (no poll_headers)
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "fal",
    .version = "1.0.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
