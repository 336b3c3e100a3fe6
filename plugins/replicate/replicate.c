/*  replicate.c - provider plugin for Replicate's predictions API

    Submit: POST https://api.replicate.com/v1/predictions with
    "Authorization: Bearer <token>" answers a prediction {id, status,
    urls: {get, cancel}, output, error}. Poll: GET urls.get answers the same
    prediction; status starting or processing runs, succeeded is done, and
    failed, canceled or aborted end it. The last prediction is the result
    (no separate fetch). Cancel: POST urls.cancel. Both URLs are on
    https://api.replicate.com, the one host declared.

    Pure functions over the host's JSON access: no I/O here. The selftest
    beside it (replicate_test.c) runs these against Replicate's shapes.
*/
#include "aq_plugin.h"

#include <stdio.h>
#include <string.h>

static bool s_success (int status) {
    return status >= 200 && status <= 299;
}

//  Sets status from a prediction.
static void s_classify (const aq_host_t *host, const void *prediction,
                        aq_provider_status_t *status) {
    const char *value = host->json_get_str (prediction, "status");
    if (value && (strcmp (value, "starting") == 0 || strcmp (value, "processing") == 0))
        status->state = AQ_POLL_RUNNING;
    else if (value && strcmp (value, "succeeded") == 0)
        status->state = AQ_POLL_DONE;
    else if (value && strcmp (value, "failed") == 0) {
        char *error = host->json_get_text (prediction, "error");
        status->state = AQ_POLL_FAILED;
        if (error)
            host->set_error (&status->error, "replicate prediction failed: %s", error);
        else
            host->set_error (&status->error, "replicate prediction failed");
        host->free (error);
    } else if (value && (strcmp (value, "canceled") == 0 || strcmp (value, "aborted") == 0)) {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "replicate prediction %s", value);
    } else {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "replicate prediction has unknown status '%s'",
                         value ? value : "(none)");
    }
}

static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    const void *doc = initial->body;
    if (!s_success (initial->status)) {
        //  Replicate's errors: {"title": ..., "detail": ..., "status": 422}
        char *detail = host->json_get_text (doc, "detail");
        if (!detail)
            detail = host->json_get_text (doc, "title");
        status->state = AQ_POLL_FAILED;
        if (detail)
            host->set_error (&status->error, "replicate submit failed: HTTP %d: %s",
                             initial->status, detail);
        else
            host->set_error (&status->error, "replicate submit failed: HTTP %d", initial->status);
        host->free (detail);
        return 0;
    }
    const char *id = host->json_get_str (doc, "id");
    const char *get = host->json_get_str (doc, "urls.get");
    const char *cancel = host->json_get_str (doc, "urls.cancel");
    plan->job_id = host->strdup (id);
    if (get)
        plan->status_url = host->strdup (get);
    else if (id && strlen (id) < 200 &&
             strspn (id, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen (id)) {
        char path[256];
        snprintf (path, sizeof path, "/v1/predictions/%s", id);
        plan->status_url = host->url_resolve (initial->url, path);
    }
    if (!plan->status_url) {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "replicate submit response has no urls.get");
        return 0;
    }
    if (cancel)
        plan->cancel_url = host->strdup (cancel);
    else {
        plan->cancel_url = host->alloc (strlen (plan->status_url) + sizeof "/cancel");
        if (plan->cancel_url)
            sprintf (plan->cancel_url, "%s/cancel", plan->status_url);
    }
    plan->cancel_method = host->strdup ("POST");
    plan->interval_ms = 1000;
    if (!plan->cancel_url || !plan->cancel_method)
        return -1; //  out of memory
    //  With "Prefer: wait" the prediction may already be finished
    if (!host->json_get_str (doc, "status"))
        status->state = AQ_POLL_RUNNING;
    else
        s_classify (host, doc, status);
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    if (!s_success (response->status)) {
        status->state = AQ_POLL_FAILED;
        host->set_error (&status->error, "replicate status check failed: HTTP %d",
                         response->status);
        return 0;
    }
    s_classify (host, response->body, status);
    return 0;
}

static const char *const s_hosts[] = {"api.replicate.com", NULL};

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .submit_method = "POST",
    .submit_url = "https://api.replicate.com/v1/predictions",
    .auth_header = "Authorization",
    .auth_format = "Bearer {token}",
    .plan = s_plan,
    .poll = s_poll,
    .result = NULL,   //  the last poll's prediction is the result
    .hosts = s_hosts, //  polls carry auth_header alone (no poll_headers)
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "replicate",
    .version = "1.0.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
