/*  rig_plugin.h - test rig: the built plugins, one-line calls of a
    provider's ops, and the log lines they write

    For selftests only (the loader's and each plugin's): linked into
    aq-selftest, never into a component library. Failures assert.

        aq_plugin_loader_t *loader = rig_plugin_load ("fal");
        if (!loader)
            return; //  plugins not built: said so, checks skipped
        const aq_plugin_provider_t *fal = aq_plugin_loader_provider (loader, "fal");
        aq_provider_plan_t plan;
        aq_provider_status_t status = rig_plugin_plan (fal, "http://m/x", 200, "{...}", &plan);
        assert (rig_plugin_is (&status, AQ_POLL_RUNNING, NULL, false));
        status = rig_plugin_poll (fal, &plan, 200, NULL, "{\"status\": \"COMPLETED\"}");
        rig_plugin_result (fal, &plan, &status, 200, "{}");
        aq_plugin_status_release (&status);
        aq_plugin_plan_release (&plan);
        aq_plugin_loader_destroy (&loader);
*/
#ifndef RIG_PLUGIN_H
#define RIG_PLUGIN_H

#include "../plugins/loader.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

//  True if a and b are the same string (a may be NULL).
#define RIG_STREQ(a, b) ((a) && strcmp ((a), (b)) == 0)

//  Where the build's plugins are (aq_plugin_loader_default_dir), or NULL
//  after a line saying who skips its plugin checks, when fal.so is not
//  there. Caller frees.
char *rig_plugin_dir (const char *who);

//  A loader (no config) with the built plugin <dir>/<name>.so loaded and
//  opened; NULL after a line saying its checks are skipped when the
//  plugins are not built. Caller destroys.
aq_plugin_loader_t *rig_plugin_load (const char *name);

//  The status after plan () on an initial response (code, body) from url;
//  fills plan (caller releases both).
aq_provider_status_t rig_plugin_plan (const aq_plugin_provider_t *provider, const char *url,
                                      int code, const char *body, aq_provider_plan_t *plan);

//  The status after poll () on a status response (code, headers or NULL,
//  body). Caller releases it.
aq_provider_status_t rig_plugin_poll (const aq_plugin_provider_t *provider,
                                      const aq_provider_plan_t *plan, int code,
                                      const json_t *headers, const char *body);

//  Runs result () on a result response (code, body) over status.
void rig_plugin_result (const aq_plugin_provider_t *provider, const aq_provider_plan_t *plan,
                        aq_provider_status_t *status, int code, const char *body);

//  True if status is state, with that error (NULL: none) and fetch_result;
//  prints what it is when not.
bool rig_plugin_is (const aq_provider_status_t *status, int state, const char *error, bool fetch);

//  Sends stderr (where aq_log writes) to path; returns the saved stderr
//  for rig_plugin_capture_end.
int rig_plugin_capture_begin (const char *path);
//  Everything logged to path since rig_plugin_capture_begin. Caller frees.
char *rig_plugin_captured (const char *path);
//  Gives stderr back.
void rig_plugin_capture_end (int saved);

#endif
