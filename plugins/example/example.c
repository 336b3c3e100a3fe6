/*  example.c - the smallest useful provider: copy this folder to start one

    It follows a generic job API (docs/plugins.md):
      submit  POST <targetUrl>       -> 2xx {"id": "j1", "statusUrl": "/jobs/j1"}
      poll    GET  <statusUrl>       -> {"status": "queued" | "running" | "done" | "failed",
                                         "error": "...", ...}
      cancel  DELETE <statusUrl>
    statusUrl may be relative to the submit URL. The last poll response is
    the task's result.

    A provider does no I/O: the host makes the requests and calls plan ()
    with the submit's answer, then poll () with each status answer.
*/
#include "aq_plugin.h"

#include <string.h>

//  Sets a FAILED status with a copy of error.
static void s_fail (const aq_host_t *host, aq_provider_status_t *status, const char *error) {
    status->state = AQ_POLL_FAILED;
    status->error = host->strdup (error);
}

static int s_plan (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    if (initial->status < 200 || initial->status > 299) {
        s_fail (host, status, "job submit failed");
        return 0;
    }
    //  Every string handed back comes from host->alloc / strdup / url_resolve
    plan->status_url =
        host->url_resolve (initial->url, host->json_get_str (initial->body, "statusUrl"));
    if (!plan->status_url) {
        s_fail (host, status, "job submit response has no statusUrl");
        return 0;
    }
    plan->job_id = host->strdup (host->json_get_str (initial->body, "id"));
    plan->cancel_url = host->strdup (plan->status_url);
    plan->cancel_method = host->strdup ("DELETE");
    status->state = AQ_POLL_RUNNING;
    return 0;
}

static int s_poll (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status) {
    const aq_host_t *host = state; //  no open (): the host table
    const char *value = host->json_get_str (response->body, "status");
    if (response->status < 200 || response->status > 299)
        s_fail (host, status, "job status check failed");
    else if (value && (strcmp (value, "queued") == 0 || strcmp (value, "running") == 0))
        status->state = AQ_POLL_RUNNING;
    else if (value && strcmp (value, "done") == 0)
        status->state = AQ_POLL_DONE;
    else {
        const char *error = host->json_get_str (response->body, "error");
        s_fail (host, status, error ? error : "job failed");
    }
    return 0;
}

//  The API's hosts: status and cancel URLs elsewhere fail the task
static const char *const s_hosts[] = {"jobs.example.com", NULL};

static const aq_provider_ops_t s_ops = {
    .abi = AQ_PROVIDER_ABI,
    .size = sizeof (aq_provider_ops_t),
    .submit_method = "POST",
    .submit_url = "https://jobs.example.com/v1/jobs",
    .auth_header = "Authorization",
    .auth_format = "Bearer {token}",
    .plan = s_plan,
    .poll = s_poll,
    .hosts = s_hosts, //  polls carry auth_header alone (no poll_headers)
};

static const aq_plugin_t s_plugin = {
    .abi = AQ_PLUGIN_ABI,
    .size = sizeof (aq_plugin_t),
    .name = "example",
    .version = "1.0.0",
    .kind = AQ_PLUGIN_PROVIDER,
    .ops = &s_ops,
};

AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void) {
    return &s_plugin;
}
