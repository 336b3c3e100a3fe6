/*  example_test.c - selftest of the example plugin: its answers to the
    generic job API it models, through the loader
*/
#include "../../tests/rig_plugin.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void aq_plugin_example_test (bool verbose) {
    aq_plugin_loader_t *loader = rig_plugin_load ("example");
    if (!loader)
        return;
    const aq_plugin_provider_t *example = aq_plugin_loader_provider (loader, "example");
    assert (example);
    aq_provider_plan_t plan;
    aq_provider_status_t status =
        rig_plugin_plan (example, "http://127.0.0.1:5/jobs", 202,
                         "{\"id\": \"j1\", \"statusUrl\": \"/jobs/j1\"}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    assert (RIG_STREQ (plan.status_url, "http://127.0.0.1:5/jobs/j1"));
    assert (RIG_STREQ (plan.cancel_url, "http://127.0.0.1:5/jobs/j1"));
    assert (RIG_STREQ (plan.cancel_method, "DELETE"));
    assert (RIG_STREQ (plan.job_id, "j1"));
    status = rig_plugin_poll (example, &plan, 200, NULL, "{\"status\": \"queued\"}");
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    status = rig_plugin_poll (example, &plan, 200, NULL, "{\"status\": \"running\"}");
    assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
    status = rig_plugin_poll (example, &plan, 200, NULL, "{\"status\": \"done\", \"output\": 7}");
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, false));
    status = rig_plugin_poll (example, &plan, 200, NULL,
                              "{\"status\": \"failed\", \"error\": \"disk full\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "disk full", false));
    aq_plugin_status_release (&status);
    status = rig_plugin_poll (example, &plan, 404, NULL, "{}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "job status check failed", false));
    aq_plugin_status_release (&status);
    //  The loader makes a provider's error text fit for a task (one line,
    //  bounded, UTF-8); the example passes the API's through as it is
    status = rig_plugin_poll (example, &plan, 200, NULL,
                              "{\"status\": \"failed\", \"error\": \"line 1\\r\\nline 2\\u00e9\"}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "line 1  line 2\xc3\xa9", false));
    aq_plugin_status_release (&status);
    char body[2200] = "{\"status\": \"failed\", \"error\": \"";
    for (size_t i = strlen (body); i < 2100; i++)
        body[i] = 'x';
    strcpy (body + 2100, "\"}");
    status = rig_plugin_poll (example, &plan, 200, NULL, body);
    assert (status.state == AQ_POLL_FAILED && strlen (status.error) == AQ_PLUGIN_ERROR_MAX - 1);
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    status = rig_plugin_plan (example, "http://127.0.0.1:5/jobs", 200, "{}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "job submit response has no statusUrl", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    aq_plugin_loader_destroy (&loader);
    if (verbose)
        printf ("aq_plugin_example: ok\n");
}
