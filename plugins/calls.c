/*  calls.c - calls a loaded plugin's ops and checks every answer

    The wrappers loader.h declares: a provider's plan, poll and result, a
    vault's seal and open. Each names the plugin for its log lines, and
    settles what a provider answered (a status without the URL it needs, an
    unknown state, an error text that is not one clean line) into a usable
    answer before the broker sees it: a misbehaving plugin fails the task,
    not the process. Tested by the loader's and each plugin's selftests.
*/
#include "loaded.h"

#include <jansson.h>
#include "aq_log.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COMPONENT "plugins"

// ---------------------------------------------------------------------------
//  Calling providers

void aq_plugin_response_init (aq_http_response_t *self, const char *url, int status,
                              const void *headers, const char *body, size_t body_size) {
    memset (self, 0, sizeof *self);
    self->size = sizeof *self;
    self->status = status;
    self->url = url;
    self->headers = headers;
    self->text = body ? body : "";
    self->text_len = body ? body_size : 0;
    if (body && body_size)
        self->body = json_loadb (body, body_size, JSON_DECODE_ANY, NULL);
}

void aq_plugin_response_release (aq_http_response_t *self) {
    json_decref ((json_t *) self->body);
    self->body = NULL;
}

void aq_plugin_plan_release (aq_provider_plan_t *plan) {
    free (plan->status_url);
    free (plan->result_url);
    free (plan->cancel_url);
    free (plan->cancel_method);
    free (plan->job_id);
    uint32_t size = plan->size;
    memset (plan, 0, sizeof *plan);
    plan->size = size;
}

void aq_plugin_status_release (aq_provider_status_t *status) {
    free (status->error);
    uint32_t size = status->size;
    memset (status, 0, sizeof *status);
    status->size = size;
}

static void s_status_fail (aq_provider_status_t *status, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Sets status to FAILED with a formatted error (NULL if out of memory).
static void s_status_fail (aq_provider_status_t *status, const char *fmt, ...) {
    char error[AQ_PLUGIN_ERROR_MAX];
    va_list args;
    va_start (args, fmt);
    vsnprintf (error, sizeof error, fmt, args);
    va_end (args);
    free (status->error);
    status->error = strdup (error);
    status->state = AQ_POLL_FAILED;
    status->fetch_result = false;
    status->retry_ms = 0;
}

//  Keeps a plugin's error text fit for a task: at most AQ_PLUGIN_ERROR_MAX - 1
//  bytes cut on a character boundary, valid UTF-8, no control characters.
static void s_clean_error (char *error) {
    unsigned char *at = (unsigned char *) error;
    size_t len = strlen (error), i = 0;
    while (i < len) {
        size_t n = at[i] < 0x80         ? 1
                   : (at[i] >> 5) == 6  ? 2
                   : (at[i] >> 4) == 14 ? 3
                   : (at[i] >> 3) == 30 ? 4
                                        : 0;
        bool valid = n > 0 && i + n <= len;
        for (size_t k = 1; valid && k < n; k++)
            valid = (at[i + k] & 0xC0) == 0x80;
        if (!valid)
            n = 1;
        if (i + n >= AQ_PLUGIN_ERROR_MAX)
            break;
        if (!valid)
            at[i] = '?';
        else if (n == 1 && (at[i] < 0x20 || at[i] == 0x7F))
            at[i] = ' ';
        i += n;
    }
    at[i] = 0;
}

static void s_reset_status (aq_provider_status_t *status) {
    memset (status, 0, sizeof *status);
    status->size = sizeof *status;
}

//  Makes status usable whatever the plugin did; final after the result
//  fetch. Returns rc, or -1 if the plugin broke its contract.
static int s_settle (const aq_plugin_provider_t *self, const aq_provider_plan_t *plan,
                     aq_provider_status_t *status, int rc, bool final) {
    const char *name = self->plugin->desc->name;
    const char *broken = NULL;
    if (rc != 0)
        broken = "could not read the response";
    else if (status->state == AQ_POLL_RUNNING) {
        if (final)
            broken = "left the job running after its result";
        else if (!plan->status_url || !*plan->status_url)
            broken = "gave no status URL";
        free (status->error);
        status->error = NULL;
        status->fetch_result = false;
    } else if (status->state == AQ_POLL_DONE || status->state == AQ_POLL_FAILED) {
        if (final)
            status->fetch_result = false;
        else if (status->fetch_result && (!plan->result_url || !*plan->result_url))
            broken = "gave no result URL";
        if (status->state == AQ_POLL_DONE) {
            free (status->error);
            status->error = NULL;
        } else if (!status->error && !status->fetch_result)
            s_status_fail (status, "provider '%s' reported a failure", name);
        status->retry_ms = 0;
    } else
        broken = "answered an unknown state";
    if (broken) {
        aq_log (AQ_LOG_WARN, S_COMPONENT, "provider '%s' %s", name, broken);
        s_status_fail (status, "provider '%s' %s", name, broken);
        return -1;
    }
    if (status->error)
        s_clean_error (status->error);
    return 0;
}

int aq_plugin_provider_plan (const aq_plugin_provider_t *self, const aq_http_response_t *initial,
                             aq_provider_plan_t *plan, aq_provider_status_t *status) {
    assert (self && initial && plan && status);
    assert (self->plugin->opened);
    memset (plan, 0, sizeof *plan);
    plan->size = sizeof *plan;
    s_reset_status (status);
    aq_plugin_host_calling (self->plugin->desc->name);
    int rc = self->ops->plan (self->plugin->state, initial, plan, status);
    aq_plugin_host_calling (NULL);
    return s_settle (self, plan, status, rc, false);
}

int aq_plugin_provider_poll (const aq_plugin_provider_t *self, const aq_provider_plan_t *plan,
                             const aq_http_response_t *response, aq_provider_status_t *status) {
    assert (self && plan && response && status);
    assert (self->plugin->opened);
    s_reset_status (status);
    aq_plugin_host_calling (self->plugin->desc->name);
    int rc = self->ops->poll (self->plugin->state, plan, response, status);
    aq_plugin_host_calling (NULL);
    return s_settle (self, plan, status, rc, false);
}

int aq_plugin_provider_result (const aq_plugin_provider_t *self, const aq_provider_plan_t *plan,
                               const aq_http_response_t *response, aq_provider_status_t *status) {
    assert (self && plan && response && status);
    assert (self->plugin->opened);
    int rc = 0;
    int (*result) (void *, const aq_provider_plan_t *, const aq_http_response_t *,
                   aq_provider_status_t *) = AQ_PLUGIN_GET (self->ops, result, NULL);
    if (result) {
        aq_plugin_host_calling (self->plugin->desc->name);
        rc = result (self->plugin->state, plan, response, status);
        aq_plugin_host_calling (NULL);
    } else if (status->state == AQ_POLL_DONE && (response->status < 200 || response->status > 299))
        s_status_fail (status, "HTTP %d", response->status);
    return s_settle (self, plan, status, rc, true);
}

// ---------------------------------------------------------------------------
//  Calling vaults

int aq_plugin_vault_seal (const aq_plugin_vault_t *self, const char *team, const char *token_id,
                          const void *value, size_t len, uint8_t **sealed, size_t *sealed_len) {
    assert (self && team && token_id && (value || !len) && sealed && sealed_len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    aq_plugin_host_calling (self->plugin->desc->name);
    int rc = self->ops->seal (self->plugin->state, team, token_id, value, len, &out, &out_len);
    aq_plugin_host_calling (NULL);
    if (rc != 0 || !out) {
        free (out);
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "vault '%s' could not seal token '%s'",
                self->plugin->desc->name, token_id);
        return -1;
    }
    *sealed = out;
    *sealed_len = out_len;
    return 0;
}

int aq_plugin_vault_open (const aq_plugin_vault_t *self, const char *team, const char *token_id,
                          const uint8_t *sealed, size_t sealed_len, char **value, size_t *len) {
    assert (self && team && token_id && value && len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    aq_plugin_host_calling (self->plugin->desc->name);
    int rc = sealed ? self->ops->open (self->plugin->state, team, token_id, sealed, sealed_len,
                                       &out, &out_len)
                    : -1;
    aq_plugin_host_calling (NULL);
    if (rc != 0 || !out) {
        if (out)
            explicit_bzero (out, out_len);
        free (out);
        return -1;
    }
    *value = (char *) out;
    *len = out_len;
    return 0;
}

void aq_plugin_secret_free (char **value_p, size_t len) {
    if (!*value_p)
        return;
    explicit_bzero (*value_p, len);
    free (*value_p);
    *value_p = NULL;
}
