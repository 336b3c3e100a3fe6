/*  fal_test.c - selftest of the fal plugin: its answers to fal's queue API
    shapes, through the loader as the provider hosts call it
*/
#include "../../tests/rig_plugin.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void aq_plugin_fal_test (bool verbose) {
    aq_plugin_loader_t *loader = rig_plugin_load ("fal");
    if (!loader)
        return;
    const aq_plugin_provider_t *fal = aq_plugin_loader_provider (loader, "fal");
    assert (fal);
    assert (RIG_STREQ (aq_plugin_provider_name (fal), "fal"));
    assert (RIG_STREQ (aq_plugin_provider_auth_format (fal), "Key {token}"));
    assert (RIG_STREQ (aq_plugin_provider_ops (fal)->submit_method, "POST"));
    aq_provider_plan_t plan;
    aq_provider_status_t status = rig_plugin_plan (
        fal, "http://127.0.0.1:9/fal-ai/flux", 200,
        "{\"request_id\": \"req-1\", \"status\": \"IN_QUEUE\", \"queue_position\": 0,"
        " \"status_url\": \"http://m/fal-ai/flux/requests/req-1/status\","
        " \"response_url\": \"http://m/fal-ai/flux/requests/req-1\","
        " \"cancel_url\": \"http://m/fal-ai/flux/requests/req-1/cancel\"}",
        &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.status_url, "http://m/fal-ai/flux/requests/req-1/status"));
    assert (RIG_STREQ (plan.result_url, "http://m/fal-ai/flux/requests/req-1"));
    assert (RIG_STREQ (plan.cancel_url, "http://m/fal-ai/flux/requests/req-1/cancel"));
    assert (RIG_STREQ (plan.cancel_method, "PUT"));
    assert (RIG_STREQ (plan.job_id, "req-1"));
    assert (plan.interval_ms == 1000);

    status = rig_plugin_poll (fal, &plan, 202, NULL,
                              "{\"status\": \"IN_QUEUE\", \"queue_position\": 2}");
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false) && status.retry_ms == 0);
    status = rig_plugin_poll (fal, &plan, 202, NULL, "{\"status\": \"IN_PROGRESS\", \"logs\": []}");
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    status = rig_plugin_poll (fal, &plan, 404, NULL, "{\"detail\": \"Request not found\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal status check failed: HTTP 404", false));
    aq_plugin_status_release (&status);

    //  COMPLETED: the result comes from response_url, which may hold an error
    status = rig_plugin_poll (fal, &plan, 200, NULL, "{\"status\": \"COMPLETED\"}");
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, true));
    rig_plugin_result (fal, &plan, &status, 200, "{\"images\": [{\"url\": \"https://x/1.png\"}]}");
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, false));
    status = rig_plugin_poll (fal, &plan, 200, NULL, "{\"status\": \"COMPLETED\"}");
    rig_plugin_result (
        fal, &plan, &status, 422,
        "{\"detail\": [{\"loc\": [\"body\", \"prompt\"], \"msg\": \"field required\","
        " \"type\": \"value_error.missing\"}]}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal request failed: field required", false));
    aq_plugin_status_release (&status);
    status =
        rig_plugin_poll (fal, &plan, 200, NULL, "{\"status\": \"COMPLETED\", \"error\": \"NSFW\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal request failed: NSFW", true));
    rig_plugin_result (fal, &plan, &status, 200, "{}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal request failed: NSFW", false));
    aq_plugin_status_release (&status);

    //  Any other status is a failure whose error is read from response_url
    status = rig_plugin_poll (fal, &plan, 200, NULL, "{\"status\": \"ERROR\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal request ended with status 'ERROR'", true));
    rig_plugin_result (fal, &plan, &status, 500, "{\"detail\": \"GPU exploded\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal request failed: GPU exploded", false));
    aq_plugin_status_release (&status);
    status = rig_plugin_poll (fal, &plan, 200, NULL, "not json");
    assert (
        rig_plugin_is (&status, AQ_POLL_FAILED, "fal request ended with status '(none)'", true));
    rig_plugin_result (fal, &plan, &status, 500, "oops");
    assert (
        rig_plugin_is (&status, AQ_POLL_FAILED, "fal request ended with status '(none)'", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);

    //  Missing URLs are derived from response_url
    status = rig_plugin_plan (
        fal, "http://m/app", 200,
        "{\"request_id\": \"r2\", \"response_url\": \"http://m/app/requests/r2\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.status_url, "http://m/app/requests/r2/status"));
    assert (RIG_STREQ (plan.result_url, "http://m/app/requests/r2"));
    assert (RIG_STREQ (plan.cancel_url, "http://m/app/requests/r2/cancel"));
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (fal, "http://m/app", 200,
                              "{\"status_url\": \"http://m/app/requests/r3/status\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.result_url, "http://m/app/requests/r3"));
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (fal, "http://m/app", 422, "{\"detail\": \"Invalid model\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "fal submit failed: HTTP 422: Invalid model",
                           false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (fal, "http://m/app", 200, "<html>", &plan);
    assert (
        rig_plugin_is (&status, AQ_POLL_FAILED, "fal submit response has no status_url", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    aq_plugin_loader_destroy (&loader);
    if (verbose)
        printf ("aq_plugin_fal: ok\n");
}
