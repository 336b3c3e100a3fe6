/*  url.c - fuzzes the URL checks: task URLs and a provider's hosts

    Input: one URL. bk_task_valid_url (targetUrl, onCompleteUrl,
    broker/task_request.c) must not read past it; aq_plugin_origin_valid
    and aq_plugin_provider_url_allowed (plugins/loader.c: where a
    provider's status, result and cancel requests may go) are checked
    against curl's own URL parser, which is what connects: a URL allowed
    for the fal plugin (its host queue.fal.run over https, and an operator
    origin http://127.0.0.1:8080) must lead curl to that scheme, host and
    port, and carry no user name.

    The fal plugin is loaded, described only, from a plain build beside
    the harness ($FUZZ_BUILD/plain/plugins, which make fuzz builds).
*/
#include "aq_msg.h"
#include "fuzz.h"
#include "loader.h"
#include "task_request.h"

#include <curl/curl.h>
#include <libgen.h>
#include <strings.h>
#include <unistd.h>

static aq_plugin_loader_t *s_loader;
static const aq_plugin_provider_t *s_fal;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerInitialize (int *argc, char ***argv) {
    char exe[4096], path[4200];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    FUZZ_CHECK (n > 0);
    exe[n] = '\0';
    snprintf (path, sizeof path, "%s/../plain/plugins/fal.so", dirname (exe));
    s_loader = aq_plugin_loader_new (NULL);
    aq_plugin_loader_describe_only (s_loader, AQ_PLUGIN_PROVIDER);
    if (aq_plugin_loader_load_file (s_loader, path) != 0) {
        fprintf (stderr, "url: cannot load '%s' (make fuzz builds it)\n", path);
        abort ();
    }
    s_fal = aq_plugin_loader_provider (s_loader, "fal");
    FUZZ_CHECK (s_fal &&
                aq_plugin_loader_allow_origin (s_loader, "fal", "http://127.0.0.1:8080") == 0);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    return 0;
}

//  curl's reading of url: 0 with scheme, host and port (its own or the
//  scheme's), or -1 when curl refuses it.
static int s_curl (const char *url, char **scheme, char **host, long *port, bool *user) {
    CURLU *u = curl_url ();
    FUZZ_CHECK (u);
    *scheme = *host = NULL;
    char *port_text = NULL, *name = NULL;
    int rc = -1;
    if (curl_url_set (u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get (u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
        curl_url_get (u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
        curl_url_get (u, CURLUPART_PORT, &port_text, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        *port = strtol (port_text, NULL, 10);
        *user = curl_url_get (u, CURLUPART_USER, &name, 0) == CURLUE_OK;
        rc = 0;
    }
    curl_free (port_text);
    curl_free (name);
    curl_url_cleanup (u);
    return rc;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    //  as a msgpack string node, the way the task's fields arrive
    aq_node_t node = {
        .type = AQ_NODE_STR, .count = (uint32_t) size, .data = data, .raw = data, .raw_size = size};
    if (size <= UINT32_MAX)
        bk_task_valid_url (&node);
    char *url = fuzz_strndup (data, size);
    bool origin = aq_plugin_origin_valid (url);
    bool allowed = aq_plugin_provider_url_allowed (s_fal, url);
    if (origin || allowed) {
        char *scheme, *host;
        long port = 0;
        bool user = false;
        bool parsed = s_curl (url, &scheme, &host, &port, &user) == 0;
        bool fal = parsed && strcasecmp (scheme, "https") == 0 &&
                   strcasecmp (host, "queue.fal.run") == 0 && port == 443;
        bool local = parsed && strcasecmp (scheme, "http") == 0 &&
                     strcmp (host, "127.0.0.1") == 0 && port == 8080;
        if ((allowed && (!parsed || user || !(fal || local))) || (origin && (!parsed || user))) {
            fprintf (stderr, "'%s' allowed: curl reads %s://%s:%ld%s\n", url, parsed ? scheme : "?",
                     parsed ? host : "?", port, user ? " with a user" : "");
            FUZZ_CHECK (false);
        }
        curl_free (scheme);
        curl_free (host);
    }
    free (url);
    return 0;
}
