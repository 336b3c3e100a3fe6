/*  replicate_test.c - selftest of the replicate plugin: its answers to
    Replicate's predictions API shapes, through the loader
*/
#include "../../tests/rig_plugin.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void aq_plugin_replicate_test (bool verbose) {
    aq_plugin_loader_t *loader = rig_plugin_load ("replicate");
    if (!loader)
        return;
    const aq_plugin_provider_t *replicate = aq_plugin_loader_provider (loader, "replicate");
    assert (replicate);
    assert (RIG_STREQ (aq_plugin_provider_auth_format (replicate), "Bearer {token}"));
    aq_provider_plan_t plan;
    aq_provider_status_t status = rig_plugin_plan (
        replicate, "http://m/v1/predictions", 201,
        "{\"id\": \"abc123\", \"status\": \"starting\", \"output\": null, \"error\": null,"
        " \"urls\": {\"get\": \"http://m/v1/predictions/abc123\","
        " \"cancel\": \"http://m/v1/predictions/abc123/cancel\"}}",
        &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.status_url, "http://m/v1/predictions/abc123"));
    assert (plan.result_url == NULL);
    assert (RIG_STREQ (plan.cancel_url, "http://m/v1/predictions/abc123/cancel"));
    assert (RIG_STREQ (plan.cancel_method, "POST"));
    assert (RIG_STREQ (plan.job_id, "abc123"));

    status = rig_plugin_poll (replicate, &plan, 200, NULL,
                              "{\"id\": \"abc123\", \"status\": \"processing\"}");
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    status = rig_plugin_poll (replicate, &plan, 200, NULL,
                              "{\"status\": \"succeeded\", \"output\": [\"https://x/out.png\"]}");
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, false));
    const char *failures[][2] = {
        {"{\"status\": \"failed\", \"error\": \"CUDA out of memory\"}",
         "replicate prediction failed: CUDA out of memory"},
        {"{\"status\": \"failed\", \"error\": null}", "replicate prediction failed"},
        {"{\"status\": \"canceled\"}", "replicate prediction canceled"},
        {"{\"status\": \"aborted\"}", "replicate prediction aborted"},
        {"{\"status\": \"weird\"}", "replicate prediction has unknown status 'weird'"},
        {"[]", "replicate prediction has unknown status '(none)'"},
    };
    for (size_t i = 0; i < sizeof failures / sizeof *failures; i++) {
        status = rig_plugin_poll (replicate, &plan, 200, NULL, failures[i][0]);
        assert (rig_plugin_is (&status, AQ_POLL_FAILED, failures[i][1], false));
        aq_plugin_status_release (&status);
    }
    status = rig_plugin_poll (replicate, &plan, 401, NULL, "{}");
    assert (
        rig_plugin_is (&status, AQ_POLL_FAILED, "replicate status check failed: HTTP 401", false));
    aq_plugin_status_release (&status);
    //  No result op: the default keeps DONE on 2xx, fails it otherwise
    status.state = AQ_POLL_DONE;
    status.fetch_result = true;
    rig_plugin_result (replicate, &plan, &status, 200, "{}");
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, false));
    status.fetch_result = true;
    rig_plugin_result (replicate, &plan, &status, 500, "{}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "HTTP 500", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);

    //  No urls: built from the id on the submit URL's host
    status = rig_plugin_plan (replicate, "http://m:8/v1/predictions", 201,
                              "{\"id\": \"xyz\", \"status\": \"starting\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.status_url, "http://m:8/v1/predictions/xyz"));
    assert (RIG_STREQ (plan.cancel_url, "http://m:8/v1/predictions/xyz/cancel"));
    aq_plugin_plan_release (&plan);
    //  "Prefer: wait" can answer a finished prediction
    status = rig_plugin_plan (replicate, "http://m/v1/predictions", 201,
                              "{\"id\": \"q\", \"status\": \"succeeded\", \"output\": \"hi\","
                              " \"urls\": {\"get\": \"http://m/v1/predictions/q\"}}",
                              &plan);
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, false));
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (replicate, "http://m/v1/predictions", 422,
                              "{\"title\": \"Invalid input\", \"detail\": \"prompt is required\","
                              " \"status\": 422}",
                              &plan);
    assert (rig_plugin_is (&status, AQ_POLL_FAILED,
                           "replicate submit failed: HTTP 422: prompt is required", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (replicate, "http://m/v1/predictions", 201,
                              "{\"status\": \"starting\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "replicate submit response has no urls.get",
                           false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    aq_plugin_loader_destroy (&loader);
    if (verbose)
        printf ("aq_plugin_replicate: ok\n");
}
