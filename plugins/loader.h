/*  loader.h - loads plugins from a directory and calls them for the host

    aq_plugin_loader_t owns every plugin it loaded: their shared objects stay
    mapped and their states open until aq_plugin_loader_destroy. Handles
    (aq_plugin_provider_t, aq_plugin_vault_t) are borrowed from the loader.
    The loader logs each refusal once (aq_log, component "plugins"); the
    wrappers below (calls.c) check sizes and results, so callers never see a
    field a plugin did not fill or a malformed answer: a misbehaving plugin
    fails the task, not the process. A plugin that crashes or hangs still takes its
    process down, which is why the broker runs provider ops in provider hosts
    (provider_host.h) and calls only the vault and the descriptors itself.

    In the host, a JSON document passed through the ABI is a json_t *.
*/
#ifndef AQ_PLUGIN_LOADER_H
#define AQ_PLUGIN_LOADER_H

#include "aq_plugin.h"
#include "host.h" //  aq_plugin_host (), the host table

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _aq_plugin_loader_t aq_plugin_loader_t;
typedef struct _aq_plugin_provider_t aq_plugin_provider_t;
typedef struct _aq_plugin_vault_t aq_plugin_vault_t;

//  A loader passing config (the data directory, may be NULL) to each
//  plugin's open. NULL when out of memory.
aq_plugin_loader_t *aq_plugin_loader_new (const char *config);
//  Closes every plugin, then unloads them. Accepts NULL, sets *self_p = NULL.
void aq_plugin_loader_destroy (aq_plugin_loader_t **self_p);
//  Loads every *.so in dir, in name order, skipping (with a log line) any
//  that fails to load, is of another ABI, malformed, a duplicate name or
//  fails to open. Returns how many were loaded, or -1 if dir cannot be read.
int aq_plugin_loader_load_dir (aq_plugin_loader_t *self, const char *dir);
//  Plugins of kind (AQ_PLUGIN_PROVIDER) loaded from now on are checked and
//  listed but not opened, and their ops must not be called: the broker
//  reads providers' descriptors, their ops run in provider hosts.
void aq_plugin_loader_describe_only (aq_plugin_loader_t *self, int kind);
//  Loads the one plugin at path as load_dir would. 0, or -1 (logged).
int aq_plugin_loader_load_file (aq_plugin_loader_t *self, const char *path);
//  Where plugins are: $AQ_PLUGIN_DIR, else the first directory of
//  <program dir>/../plugins (a build tree) and <program dir>/../lib/asyncqueue/plugins
//  (an installed tree). Caller frees; NULL if there is none.
char *aq_plugin_loader_default_dir (void);
//  The provider called name, or NULL.
const aq_plugin_provider_t *aq_plugin_loader_provider (aq_plugin_loader_t *self, const char *name);
//  Loaded provider names, sorted, ", "-separated ("" when none), for
//  "Unknown provider: x. Loaded providers: fal, replicate". Caller frees.
char *aq_plugin_loader_providers (aq_plugin_loader_t *self);
//  The vault called name; name NULL: "vault-sodium" if loaded, else the first
//  vault loaded. NULL if none.
const aq_plugin_vault_t *aq_plugin_loader_vault (aq_plugin_loader_t *self, const char *name);

//  A provider's or vault's descriptor fields, borrowed while the loader lives.
const char *aq_plugin_provider_name (const aq_plugin_provider_t *self);
const char *aq_plugin_vault_name (const aq_plugin_vault_t *self);
//  The provider's auth header format ("Key {token}"), or NULL if it gives none.
const char *aq_plugin_provider_auth_format (const aq_plugin_provider_t *self);
//  The provider's ops table, for its other (appended) fields.
const aq_provider_ops_t *aq_plugin_provider_ops (const aq_plugin_provider_t *self);
//  The file the provider was loaded from, borrowed while the loader lives.
const char *aq_plugin_provider_path (const aq_plugin_provider_t *self);

//  True for an origin an operator may add: "http(s)://HOST[:PORT]", an
//  optional "/" and nothing more.
bool aq_plugin_origin_valid (const char *origin);
//  Lets the provider called name also use origin (as aq_plugin_origin_valid
//  accepts), e.g. a local mock's "http://127.0.0.1:8081" (--provider-origin).
//  0, or -1 if no such provider is loaded, the origin is invalid or the
//  provider has 8 already.
int aq_plugin_loader_allow_origin (aq_plugin_loader_t *self, const char *name, const char *origin);
//  True if a status, result or cancel request of this provider may go to
//  url: https on port 443 of a host it declares (aq_provider_ops_t.hosts),
//  or on an origin the operator added. Never for a URL with userinfo, a
//  bracketed or percent-encoded host, spaces, or over 8 KiB.
bool aq_plugin_provider_url_allowed (const aq_plugin_provider_t *self, const char *url);
//  True if the provider's status, result and cancel requests carry the
//  task header name (any case): its auth_header or one of its poll_headers.
bool aq_plugin_provider_sends_header (const aq_plugin_provider_t *self, const char *name);

//  Builds a response for the ops: body is parsed if it is JSON (kept in
//  self, released by _release; a body that is not JSON leaves self->body
//  NULL); url, headers (a jansson JSON object, or NULL) and body (NUL-terminated)
//  are borrowed and must outlive self.
void aq_plugin_response_init (aq_http_response_t *self, const char *url, int status,
                              const void *headers, const char *body, size_t body_size);
void aq_plugin_response_release (aq_http_response_t *self);

//  The initial call answered: fills plan and status (both are reset first;
//  release both with _release). Always leaves a usable answer: a RUNNING
//  status comes with plan->status_url, a fetch_result with result_url, a
//  FAILED with an error. Returns 0, or -1 if the plugin misbehaved (status
//  is then FAILED with an error naming the provider).
int aq_plugin_provider_plan (const aq_plugin_provider_t *self, const aq_http_response_t *initial,
                             aq_provider_plan_t *plan, aq_provider_status_t *status);
//  A poll of plan->status_url answered: fills status (reset first). Same
//  guarantees and returns as _plan.
int aq_plugin_provider_poll (const aq_plugin_provider_t *self, const aq_provider_plan_t *plan,
                             const aq_http_response_t *response, aq_provider_status_t *status);
//  The fetch of plan->result_url answered: status comes in as _plan or
//  _poll left it (DONE or FAILED, fetch_result set) and leaves DONE or
//  FAILED, fetch_result clear. Same returns as _plan.
int aq_plugin_provider_result (const aq_plugin_provider_t *self, const aq_provider_plan_t *plan,
                               const aq_http_response_t *response, aq_provider_status_t *status);
//  Frees the strings of a plan or a status; leaves them zeroed (sizes kept).
void aq_plugin_plan_release (aq_provider_plan_t *plan);
void aq_plugin_status_release (aq_provider_status_t *status);
//  The longest error text (with its NUL) the wrappers leave in a status: a
//  plugin's longer error is cut on a character boundary.
#define AQ_PLUGIN_ERROR_MAX 512

//  Seals len bytes of value for team and token id into *sealed (*sealed_len
//  bytes, caller frees with free). 0, or -1 (logged, nothing allocated).
int aq_plugin_vault_seal (const aq_plugin_vault_t *self, const char *team, const char *token_id,
                          const void *value, size_t len, uint8_t **sealed, size_t *sealed_len);
//  Opens a sealed value into *value (*len bytes plus a NUL; caller frees with
//  aq_plugin_secret_free). -1 (nothing allocated) if it does not open for
//  this team and token id. Never logs the value.
int aq_plugin_vault_open (const aq_plugin_vault_t *self, const char *team, const char *token_id,
                          const uint8_t *sealed, size_t sealed_len, char **value, size_t *len);
//  Wipes len bytes of *value_p, frees it, sets *value_p = NULL. Accepts NULL.
void aq_plugin_secret_free (char **value_p, size_t len);

void aq_plugin_loader_test (bool verbose);

#endif
