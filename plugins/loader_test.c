/*  loader_test.c - selftest of the loader (loader.c): loading and refusals,
    the registry, where providers' requests may go, and the wrappers'
    checks on answers that break the contract

    Each shipped plugin's own answers are tested beside it (plugins/<name>/
    <name>_test.c); the host table in host_test.c.
*/
#include "../tests/rig_plugin.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  The test plugin built before `result` existed: its table's size says the
//  field is absent, so the host's default runs (its own would abort).
static void s_test_old (const aq_plugin_provider_t *old) {
    aq_provider_plan_t plan;
    aq_provider_status_t status = rig_plugin_plan (old, "http://m/x/submit", 200, "{}", &plan);
    assert (rig_plugin_is (&status, AQ_POLL_DONE, NULL, true));
    assert (RIG_STREQ (plan.result_url, "http://m/x/result"));
    rig_plugin_result (old, &plan, &status, 404, "{}");
    assert (rig_plugin_is (&status, AQ_POLL_FAILED, "HTTP 404", false));
    aq_plugin_status_release (&status);
    //  A state that does not exist fails the task, not the process
    status = rig_plugin_poll (old, &plan, 200, NULL, "{}");
    assert (
        rig_plugin_is (&status, AQ_POLL_FAILED, "provider 'old' answered an unknown state", false));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
}

//  The hosts providers declare, the origins an operator adds, the headers
//  their polls carry.
static void s_test_origins (aq_plugin_loader_t *loader) {
    const aq_plugin_provider_t *fal = aq_plugin_loader_provider (loader, "fal");
    const aq_plugin_provider_t *replicate = aq_plugin_loader_provider (loader, "replicate");
    const char *fal_ok[] = {
        "https://queue.fal.run/fal-ai/flux/requests/r1/status",
        "HTTPS://Queue.Fal.Run/x",
        "https://queue.fal.run:443/x",
        "https://queue.fal.run",
        "https://queue.fal.run?x=1",
    };
    for (size_t i = 0; i < sizeof fal_ok / sizeof *fal_ok; i++)
        assert (aq_plugin_provider_url_allowed (fal, fal_ok[i]));
    const char *fal_refused[] = {
        "http://queue.fal.run/x",              //  not https
        "https://queue.fal.run:8443/x",        //  another port
        "https://evil.example/x",              //  another host
        "https://queue.fal.run.evil.example/", //  a suffix
        "https://evilqueue.fal.run/",          //  a prefix
        "https://x.queue.fal.run/",            //  a subdomain: not declared
        "https://queue.fal.run@evil.example/", //  userinfo
        "https://evil.example\\@queue.fal.run/",
        "https://queue.fal.run:443@evil.example/",
        "https://queue.fal.run./x", //  trailing dot
        "https://[::1]/x",
        "https://queue%2efal.run/x",
        "https://queue.fal.run/a b",
        "https://queue.fal.run/\r\nx: y",
        "https:///x",
        "https://queue.fal.run:/x",
        "https://queue.fal.run:99999/x",
        "ftp://queue.fal.run/x",
        "queue.fal.run/x",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof fal_refused / sizeof *fal_refused; i++) {
        if (aq_plugin_provider_url_allowed (fal, fal_refused[i]))
            printf ("allowed: '%s'\n", fal_refused[i]);
        assert (!aq_plugin_provider_url_allowed (fal, fal_refused[i]));
    }
    char *long_url = malloc (9000);
    assert (long_url);
    memset (long_url, 'a', 8999);
    memcpy (long_url, "https://queue.fal.run/", 22);
    long_url[8999] = 0;
    assert (!aq_plugin_provider_url_allowed (fal, long_url));
    free (long_url);
    assert (
        aq_plugin_provider_url_allowed (replicate, "https://api.replicate.com/v1/predictions/x"));
    assert (!aq_plugin_provider_url_allowed (replicate, "https://queue.fal.run/x"));
    assert (!aq_plugin_provider_url_allowed (fal, "https://api.replicate.com/x"));

    //  An operator origin: exactly that scheme, host and port, for that provider
    assert (!aq_plugin_origin_valid ("127.0.0.1:8080"));
    assert (!aq_plugin_origin_valid ("http://127.0.0.1:8080/path"));
    assert (!aq_plugin_origin_valid ("http://user@127.0.0.1:8080"));
    assert (aq_plugin_origin_valid ("http://127.0.0.1:8080/"));
    assert (aq_plugin_loader_allow_origin (loader, "nope", "http://127.0.0.1:8080") == -1);
    assert (aq_plugin_loader_allow_origin (loader, "fal", "http://127.0.0.1:8080/x") == -1);
    assert (!aq_plugin_provider_url_allowed (fal, "http://127.0.0.1:8080/x"));
    assert (aq_plugin_loader_allow_origin (loader, "fal", "http://127.0.0.1:8080") == 0);
    assert (aq_plugin_provider_url_allowed (fal, "http://127.0.0.1:8080/fal/requests/1/status"));
    assert (!aq_plugin_provider_url_allowed (fal, "https://127.0.0.1:8080/x"));
    assert (!aq_plugin_provider_url_allowed (fal, "http://127.0.0.1:8081/x"));
    assert (!aq_plugin_provider_url_allowed (fal, "http://127.0.0.2:8080/x"));
    assert (!aq_plugin_provider_url_allowed (replicate, "http://127.0.0.1:8080/x"));
    assert (aq_plugin_provider_url_allowed (fal, "https://queue.fal.run/x"));

    //  Polls carry the auth header alone
    assert (aq_plugin_provider_sends_header (fal, "Authorization"));
    assert (aq_plugin_provider_sends_header (fal, "authorization"));
    assert (!aq_plugin_provider_sends_header (fal, "X-Secret"));
    assert (!aq_plugin_provider_sends_header (fal, "AsyncQueue-Signal-Token"));
    assert (!aq_plugin_provider_sends_header (fal, NULL));
    //  A plugin without hosts (one built before they were appended) follows none
    const aq_plugin_provider_t *old = aq_plugin_loader_provider (loader, "old");
    if (old)
        assert (!aq_plugin_provider_url_allowed (old, "https://queue.fal.run/x"));
}

//  A loader over config with dir loaded; how many loaded in *loaded.
static aq_plugin_loader_t *s_loader (const char *config, const char *dir, int *loaded) {
    aq_plugin_loader_t *loader = aq_plugin_loader_new (config);
    assert (loader);
    *loaded = aq_plugin_loader_load_dir (loader, dir);
    return loader;
}

void aq_plugin_loader_test (bool verbose) {
    char *dir = rig_plugin_dir ("aq_plugin_loader");
    if (!dir)
        return;
    char path[PATH_MAX], test_dir[PATH_MAX], data[] = "/tmp/aq-plugin-test-XXXXXX";
    snprintf (path, sizeof path, "%s/../plugins-test", dir);
    bool refusals = realpath (path, test_dir) != NULL; //  the test plugins are built
    if (!refusals)
        printf ("aq_plugin_loader: no test plugins at '%s'; refusal checks skipped\n", path);
    assert (mkdtemp (data));
    char log[128], key_file[128], junk_dir[128];
    snprintf (log, sizeof log, "%s/log", data);
    snprintf (key_file, sizeof key_file, "%s/vault.key", data);
    snprintf (junk_dir, sizeof junk_dir, "%s/junk", data);
    unsetenv ("AQ_VAULT_KEY");
    int saved = rig_plugin_capture_begin (log);

    //  The shipped plugins load, found by name and kind
    int loaded = 0;
    aq_plugin_loader_t *loader = s_loader (data, dir, &loaded);
    assert (loaded == 4);
    char *names = aq_plugin_loader_providers (loader);
    assert (RIG_STREQ (names, "example, fal, replicate"));
    free (names);
    assert (aq_plugin_loader_provider (loader, "nope") == NULL);
    assert (aq_plugin_loader_provider (loader, "vault-sodium") == NULL);
    const aq_plugin_vault_t *vault = aq_plugin_loader_vault (loader, NULL);
    assert (vault && RIG_STREQ (aq_plugin_vault_name (vault), "vault-sodium"));
    assert (aq_plugin_loader_vault (loader, "vault-sodium") == vault);
    assert (aq_plugin_loader_vault (loader, "fal") == NULL);

    //  Test plugins: all refused but "old", "crashy" and "hangy"; a junk
    //  file and a missing directory are logged, not fatal
    if (refusals)
        assert (aq_plugin_loader_load_dir (loader, test_dir) == 3);
    assert (mkdir (junk_dir, 0700) == 0);
    snprintf (path, sizeof path, "%s/junk.so", junk_dir);
    FILE *file = fopen (path, "w");
    assert (file && fputs ("not an ELF file\n", file) >= 0);
    fclose (file);
    snprintf (path, sizeof path, "%s/dir.so", junk_dir);
    assert (mkdir (path, 0700) == 0);
    assert (aq_plugin_loader_load_dir (loader, junk_dir) == 0);
    assert (aq_plugin_loader_load_dir (loader, "/nonexistent/plugins") == -1);
    assert (aq_plugin_loader_load_dir (loader, dir) == 0); //  all duplicates now
    names = aq_plugin_loader_providers (loader);
    assert (RIG_STREQ (names, refusals ? "crashy, example, fal, hangy, old, replicate"
                                       : "example, fal, replicate"));
    free (names);

    char *lines = rig_plugin_captured (log);
    char expect[3 * PATH_MAX];
    assert (strstr (lines, "info plugins: loaded provider plugin 'fal' 1.0.0 from '"));
    assert (strstr (lines, "info plugins: loaded vault plugin 'vault-sodium' 1.0.0 from '"));
    snprintf (expect, sizeof expect,
              "plugin 'fal' is already loaded from '%s/fal.so'; ignoring '%s/dup_fal.so'", dir,
              test_dir);
    assert (!refusals || strstr (lines, expect));
    assert (!refusals ||
            strstr (lines,
                    "error plugins: plugin 'bad_abi' is not binary compatible: ABI 2, host has 1"));
    assert (!refusals ||
            strstr (lines, "error plugins: plugin 'bad_size' has a malformed descriptor: 8 bytes"));
    assert (!refusals || strstr (lines, "error open-fails: refusing to open, as the test asks"));
    assert (!refusals ||
            strstr (lines, "error plugins: plugin 'open-fails' failed to open; skipped"));
    assert (!refusals || strstr (lines, "error plugins: plugin 'bad-hosts' declares an invalid "
                                        "host: at most 32 names of a-z 0-9 . -"));
    assert (strstr (lines, "error plugins: cannot load plugin 'junk': "));
    assert (strstr (lines, "error plugins: cannot load plugin 'dir': "));
    assert (strstr (lines, "error plugins: cannot read plugin directory '/nonexistent/plugins': "));
    free (lines);

    //  Where their requests may go, and what they carry
    s_test_origins (loader);

    //  A plugin that breaks the contract fails the task, not the process
    if (refusals)
        s_test_old (aq_plugin_loader_provider (loader, "old"));

    //  Providers described only (the broker's way): listed, not opened; the
    //  vault is opened as ever
    aq_plugin_loader_t *described = aq_plugin_loader_new (data);
    aq_plugin_loader_describe_only (described, AQ_PLUGIN_PROVIDER);
    assert (aq_plugin_loader_load_dir (described, dir) == 4);
    names = aq_plugin_loader_providers (described);
    assert (RIG_STREQ (names, "example, fal, replicate"));
    free (names);
    assert (aq_plugin_loader_vault (described, NULL));
    assert (aq_plugin_provider_url_allowed (aq_plugin_loader_provider (described, "fal"),
                                            "https://queue.fal.run/x"));
    aq_plugin_loader_destroy (&described);

    aq_plugin_loader_destroy (&loader);
    assert (loader == NULL);
    aq_plugin_loader_destroy (&loader);
    lines = rig_plugin_captured (log);
    rig_plugin_capture_end (saved);
    if (verbose)
        fputs (lines, stdout);
    free (lines);

    snprintf (path, sizeof path, "%s/dir.so", junk_dir);
    rmdir (path);
    snprintf (path, sizeof path, "%s/junk.so", junk_dir);
    unlink (path);
    rmdir (junk_dir);
    unlink (key_file);
    unlink (log);
    rmdir (data);
    free (dir);
    if (verbose)
        printf ("aq_plugin_loader: ok\n");
}
