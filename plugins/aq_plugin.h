/*  aq_plugin.h - the plugin ABI: the only header a plugin includes

    A plugin is a shared object exporting one symbol, aq_plugin_entry, which
    returns a static descriptor (aq_plugin_t). The host calls open () with its
    table of services (aq_host_t) and then the kind-specific operations table
    the descriptor points to (aq_provider_ops_t or aq_vault_ops_t).

    Every structure that crosses the boundary starts with its size as the side
    that built it saw it (most also start with an ABI number). Rules:

    - AQ_PLUGIN_ABI (and each ops table's own ABI) is bumped on any
      incompatible change; the host refuses a plugin of another ABI.
    - Fields are only ever appended. A field that lies beyond the other side's
      `size` is absent: read it only through AQ_PLUGIN_HAS / AQ_PLUGIN_GET
      (SQLite's iVersion, done by size). A NULL function pointer is absent too.
    - Memory a plugin hands to the host (strings in plans and statuses, sealed
      and opened buffers) comes from host->alloc or host->strdup; the host frees
      it. A plugin frees what the host gives it only where a comment says so.
    - Plugins reach the host only through aq_host_t: they link against libc
      and their own dependencies, never against asyncqueue.

    docs/plugins.md walks through writing, building and testing a provider.
*/
#ifndef AQ_PLUGIN_H
#define AQ_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AQ_PLUGIN_ABI   1 //  aq_plugin_t and aq_host_t: bump on any incompatible change
#define AQ_PROVIDER_ABI 1 //  aq_provider_ops_t and the structs it passes
#define AQ_VAULT_ABI    1 //  aq_vault_ops_t

//  True when the struct *p (which starts with uint32_t size) is large enough
//  to hold field: the side that filled it knew that field.
#define AQ_PLUGIN_HAS(p, field)                                                                    \
    ((p) != NULL && (size_t) (p)->size >= offsetof (__typeof__ (*(p)), field) + sizeof ((p)->field))
//  The field's value when present, else absent (e.g. NULL or 0).
#define AQ_PLUGIN_GET(p, field, absent) (AQ_PLUGIN_HAS (p, field) ? (p)->field : (absent))

//  Marks aq_plugin_entry exported when plugins build with -fvisibility=hidden.
#define AQ_PLUGIN_EXPORT __attribute__ ((visibility ("default")))

enum { AQ_PLUGIN_PROVIDER = 1, AQ_PLUGIN_VAULT = 2 }; //  aq_plugin_t.kind
#define AQ_PLUGIN_LOG_DEBUG 0                         //  levels for host->log
#define AQ_PLUGIN_LOG_INFO  1
#define AQ_PLUGIN_LOG_WARN  2
#define AQ_PLUGIN_LOG_ERROR 3

//  One HTTP response as the host received it. Built by the host; borrowed by
//  the plugin for the duration of the call.
typedef struct {
    uint32_t size;       //  sizeof as the host was built
    int status;          //  HTTP status code
    const char *url;     //  the URL that answered
    const void *headers; //  JSON object, lowercase name -> string, or NULL
    const void *body;    //  the body parsed as JSON, or NULL if it is not JSON
    const char *text;    //  the raw body, NUL-terminated ("" when empty)
    size_t text_len;     //  its length in bytes
} aq_http_response_t;

//  Host -> plugin, append-only. JSON documents (doc) are opaque: pointers
//  from json_parse or from the host (aq_http_response_t.body). Dot paths
//  walk objects by key and arrays by decimal index ("output.0.url");
//  NULL or "" is the document itself.
typedef struct aq_host_s {
    uint32_t abi;  //  AQ_PLUGIN_ABI of the host
    uint32_t size; //  sizeof (aq_host_t) as the host was built
    //  One log line tagged with the plugin's name. Never pass a secret,
    //  a token value or a request body.
    void (*log) (int level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
    void *(*alloc) (size_t size);    //  zeroed memory, NULL when out of memory
    void (*free) (void *ptr);        //  frees alloc/strdup/json_get_text/... results; NULL ok
    char *(*strdup) (const char *s); //  copy from alloc; NULL if s is NULL or out of memory
    //  Parses text (len bytes, any JSON value). Returns a document the caller
    //  frees with json_free, or NULL if the text is not JSON.
    void *(*json_parse) (const char *text, size_t len);
    void (*json_free) (void *doc); //  accepts NULL
    //  The string at path, borrowed while doc lives; NULL if absent or not a string.
    const char *(*json_get_str) (const void *doc, const char *path);
    //  Stores the integer at path in *value: 0, or -1 if absent or not an integer.
    int (*json_get_int) (const void *doc, const char *path, int64_t *value);
    //  The value at path as text: a string as is, numbers and booleans as
    //  literals, objects and arrays as compact JSON. Caller frees with free;
    //  NULL if absent or null.
    char *(*json_get_text) (const void *doc, const char *path);
    //  Replaces each {{path.to.field}} in tmpl with json_get_text (doc,
    //  path), unescaped. Caller frees with free; NULL if a placeholder is
    //  absent or null, or a {{ is not closed.
    char *(*render_template) (const char *tmpl, const void *doc);
    //  The response header name (any case), borrowed from response; NULL if absent.
    const char *(*http_header) (const aq_http_response_t *response, const char *name);
    //  ref resolved against the absolute http(s) URL base ("/v1/x", "x", "?q",
    //  "//host/x" or an absolute URL). Caller frees with free; NULL if
    //  neither gives an absolute http(s) URL.
    char *(*url_resolve) (const char *base, const char *ref);
    //  Replaces *error_p (freeing the old text, NULL ok) with the formatted
    //  message, at most 400 bytes, allocated like alloc: a provider's
    //  aq_provider_status_t.error.
    void (*set_error) (char **error_p, const char *fmt, ...)
        __attribute__ ((format (printf, 2, 3)));
} aq_host_t;

//  Plugin -> host, append-only: what aq_plugin_entry returns (static storage).
typedef struct {
    uint32_t abi;        //  AQ_PLUGIN_ABI the plugin was built with
    uint32_t size;       //  sizeof (aq_plugin_t) as the plugin was built
    const char *name;    //  [a-z0-9_-], unique: "fal", "replicate", "vault-sodium"
    const char *version; //  the plugin's own version, for logs
    int kind;            //  AQ_PLUGIN_PROVIDER / AQ_PLUGIN_VAULT
    //  Returns the state passed to every op (non-NULL), or NULL to refuse to
    //  load (log why first). host lives until close; config is the host's
    //  data directory (may be NULL), for plugins that keep files. Optional:
    //  without open, the state every op gets is the host table itself
    //  (const aq_host_t *), and close is not called.
    void *(*open) (const aq_host_t *host, const char *config);
    void (*close) (void **state_p); //  frees the state, sets *state_p = NULL
    const void *ops;                //  aq_provider_ops_t or aq_vault_ops_t
} aq_plugin_t;

//  The one exported symbol.
typedef const aq_plugin_t *(aq_plugin_entry_fn) (void);
AQ_PLUGIN_EXPORT const aq_plugin_t *aq_plugin_entry (void);

// ---------------------------------------------------------------------------
//  Providers: a task with "provider": "<name>" makes its initial call as given
//  (targetUrl, method, headers, body); the provider then reads the responses.
//  Providers do no I/O: the host makes every request and calls these pure
//  functions on the answers. Ops may run on several threads at once. The
//  broker runs them in a provider host process of their own (one per
//  provider, restarted when it crashes or hangs), never in its own.

enum {
    AQ_POLL_RUNNING = 0, //  not finished: poll status_url again after the interval
    AQ_POLL_DONE = 1,    //  finished well
    AQ_POLL_FAILED = 2   //  finished badly: error says why
};

//  How to follow a job. Plain data: the host persists it and hands it back
//  to poll and result, possibly after a restart. Strings from host->alloc.
typedef struct {
    uint32_t size;        //  sizeof as the host was built
    char *status_url;     //  GET while running (required when RUNNING)
    char *result_url;     //  GET once finished when status.fetch_result, else NULL
    char *cancel_url;     //  request to cancel the job, NULL if none
    char *cancel_method;  //  "PUT", "POST", "DELETE"; NULL means POST
    char *job_id;         //  the provider's id for the job, for logs, or NULL
    uint32_t interval_ms; //  poll interval; 0: the host's default
} aq_provider_plan_t;

//  Where a job stands after a response.
typedef struct {
    uint32_t size;     //  sizeof as the host was built
    int state;         //  AQ_POLL_RUNNING / DONE / FAILED
    char *error;       //  FAILED: the task's error text (host->alloc), else NULL
    bool fetch_result; //  DONE or FAILED: GET plan.result_url; that answer is
                       //  the task's result, passed to result ()
    uint32_t retry_ms; //  RUNNING: wait this long before the next poll; 0: interval
} aq_provider_status_t;

//  Provider operations, append-only. The plan, status and response structs
//  arrive zeroed with their size set; fill only fields that are present.
typedef struct {
    uint32_t abi;              //  AQ_PROVIDER_ABI the plugin was built with
    uint32_t size;             //  sizeof (aq_provider_ops_t) as the plugin was built
    const char *submit_method; //  method of the initial call: "POST"
    const char *submit_url;    //  its URL pattern, e.g. "https://queue.fal.run/{model}"
    const char *auth_header;   //  "Authorization"
    const char *auth_format;   //  its value, {token} being the credential: "Key {token}"
    //  The initial call answered: fill plan and status. RUNNING needs
    //  plan->status_url. 0, or -1 on an internal failure (the task fails).
    int (*plan) (void *state, const aq_http_response_t *initial, aq_provider_plan_t *plan,
                 aq_provider_status_t *status);
    //  A GET of plan->status_url answered (transport errors never get here:
    //  the host keeps polling until maxWaitTime). Fill status. 0 or -1.
    int (*poll) (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                 aq_provider_status_t *status);
    //  Optional. The GET of plan->result_url answered; status arrives as
    //  plan/poll left it (DONE or FAILED). Set the final state; replacing
    //  error, free the old one with host->free. 0 or -1. When absent, a
    //  non-2xx answer turns DONE into FAILED "HTTP <code>".
    int (*result) (void *state, const aq_provider_plan_t *plan, const aq_http_response_t *response,
                   aq_provider_status_t *status);
    //  The hosts of the provider's API, NULL-terminated: {"queue.fal.run",
    //  NULL}; "*.example.com" stands for any name under example.com.
    //  [a-z0-9.-] only. The host follows a status, result or cancel URL only
    //  when it is https (port 443) on one of them, else the task fails;
    //  absent or empty: no URL is followed (unless the operator adds an
    //  origin with --provider-origin).
    const char *const *hosts;
    //  The task headers (names, any case, NULL-terminated) that status,
    //  result and cancel requests carry besides auth_header, which they
    //  always carry. Absent or empty: auth_header alone.
    const char *const *poll_headers;
} aq_provider_ops_t;

// ---------------------------------------------------------------------------
//  Vaults: seal token values at rest. The team id and the token id are bound
//  to the ciphertext (associated data): a sealed value opens only for the
//  same team and token id. Ops may run on several threads at once.

typedef struct {
    uint32_t abi;  //  AQ_VAULT_ABI the plugin was built with
    uint32_t size; //  sizeof (aq_vault_ops_t) as the plugin was built
    //  Seals len bytes of value into *out (*out_len bytes, host->alloc).
    //  0, or -1 (nothing allocated). Never logs the value.
    int (*seal) (void *state, const char *team, const char *token_id, const uint8_t *value,
                 size_t len, uint8_t **out, size_t *out_len);
    //  Opens a sealed value into *out (*out_len bytes plus a NUL, host->alloc;
    //  the host wipes it before freeing). -1 (nothing allocated) if it was
    //  tampered with, sealed for another team or token id, or under another key.
    int (*open) (void *state, const char *team, const char *token_id, const uint8_t *sealed,
                 size_t len, uint8_t **out, size_t *out_len);
} aq_vault_ops_t;

#endif
