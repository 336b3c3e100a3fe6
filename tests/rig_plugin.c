/*  rig_plugin.c - test rig: the built plugins, one-line calls of a
    provider's ops, and the log lines they write
*/
#include "rig_plugin.h"

#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char *rig_plugin_dir (const char *who) {
    char *dir = aq_plugin_loader_default_dir ();
    char path[PATH_MAX];
    struct stat st;
    if (!dir || snprintf (path, sizeof path, "%s/fal.so", dir) < 0 || stat (path, &st) != 0) {
        printf ("%s: no built plugins at '%s' (set AQ_PLUGIN_DIR); plugin checks skipped\n", who,
                dir ? dir : "<bin>/../plugins");
        free (dir);
        return NULL;
    }
    return dir;
}

aq_plugin_loader_t *rig_plugin_load (const char *name) {
    char *dir = rig_plugin_dir (name);
    if (!dir)
        return NULL;
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/%s.so", dir, name);
    free (dir);
    aq_plugin_loader_t *loader = aq_plugin_loader_new (NULL);
    assert (loader);
    assert (aq_plugin_loader_load_file (loader, path) == 0);
    return loader;
}

aq_provider_status_t rig_plugin_plan (const aq_plugin_provider_t *provider, const char *url,
                                      int code, const char *body, aq_provider_plan_t *plan) {
    aq_http_response_t response;
    aq_provider_status_t status;
    aq_plugin_response_init (&response, url, code, NULL, body, strlen (body));
    aq_plugin_provider_plan (provider, &response, plan, &status);
    aq_plugin_response_release (&response);
    return status;
}

aq_provider_status_t rig_plugin_poll (const aq_plugin_provider_t *provider,
                                      const aq_provider_plan_t *plan, int code,
                                      const json_t *headers, const char *body) {
    aq_http_response_t response;
    aq_provider_status_t status;
    aq_plugin_response_init (&response, plan->status_url, code, headers, body, strlen (body));
    aq_plugin_provider_poll (provider, plan, &response, &status);
    aq_plugin_response_release (&response);
    return status;
}

void rig_plugin_result (const aq_plugin_provider_t *provider, const aq_provider_plan_t *plan,
                        aq_provider_status_t *status, int code, const char *body) {
    aq_http_response_t response;
    aq_plugin_response_init (&response, plan->result_url, code, NULL, body, strlen (body));
    aq_plugin_provider_result (provider, plan, &response, status);
    aq_plugin_response_release (&response);
}

bool rig_plugin_is (const aq_provider_status_t *status, int state, const char *error, bool fetch) {
    bool same_error = error ? RIG_STREQ (status->error, error) : status->error == NULL;
    if (status->state != state || !same_error || status->fetch_result != fetch)
        printf ("status %d error '%s' fetch %d\n", status->state,
                status->error ? status->error : "(null)", status->fetch_result);
    return status->state == state && same_error && status->fetch_result == fetch;
}

int rig_plugin_capture_begin (const char *path) {
    fflush (stderr);
    int saved = dup (2);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    assert (saved >= 0 && fd >= 0);
    dup2 (fd, 2);
    close (fd);
    return saved;
}

char *rig_plugin_captured (const char *path) {
    fflush (stderr);
    FILE *file = fopen (path, "r");
    assert (file);
    char *text = calloc (1, 1 << 20);
    assert (text);
    size_t len = fread (text, 1, (1 << 20) - 1, file);
    text[len] = 0;
    fclose (file);
    return text;
}

void rig_plugin_capture_end (int saved) {
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
}
