/*  provider_host.c - the provider host process: one provider's ops, apart
    from the broker

    The child side (aq_provider_host_main, aq_provider_host_run), how the
    broker starts it (aq_provider_host_spawn) and the framing both use. The
    broker's side of the dialog is broker/providers.c. The child reads each
    request into a jansson document (the plugin ABI's JSON) and packs its
    reply from one; the broker never sees them.
*/
#include "provider_host.h"
#include "aq_log.h"
#include "aq_codec.h"
#include "loader.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_COMPONENT "plugins"

bool aq_provider_host_wanted (int argc, char **argv) {
    return argc >= 2 && strcmp (argv[1], AQ_PROVIDER_HOST_ARG) == 0;
}

// ---------------------------------------------------------------------------
//  Frames

void aq_provider_host_frame_head (uint8_t head[AQ_PROVIDER_HOST_HEAD], size_t size) {
    assert (size <= AQ_PROVIDER_HOST_FRAME_MAX);
    head[0] = (uint8_t) (size >> 24);
    head[1] = (uint8_t) (size >> 16);
    head[2] = (uint8_t) (size >> 8);
    head[3] = (uint8_t) size;
}

long aq_provider_host_frame_size (const uint8_t *data, size_t size) {
    if (size < AQ_PROVIDER_HOST_HEAD)
        return 0;
    uint32_t len =
        (uint32_t) data[0] << 24 | (uint32_t) data[1] << 16 | (uint32_t) data[2] << 8 | data[3];
    if (len > AQ_PROVIDER_HOST_FRAME_MAX)
        return -1;
    return size >= (size_t) len + AQ_PROVIDER_HOST_HEAD ? (long) len + AQ_PROVIDER_HOST_HEAD : 0;
}

//  Reads exactly size bytes (blocking). 0, or -1 at EOF or on an error.
static int s_read_all (int fd, uint8_t *data, size_t size) {
    while (size > 0) {
        ssize_t n = read (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

//  Writes all of data (blocking). 0, or -1 when the broker has gone.
static int s_write_all (int fd, const uint8_t *data, size_t size) {
    while (size > 0) {
        ssize_t n = send (fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

//  The next request on fd as a JSON object, or NULL when the broker has
//  gone (or sent garbage).
static json_t *s_receive (int fd) {
    uint8_t head[AQ_PROVIDER_HOST_HEAD];
    if (s_read_all (fd, head, sizeof head) != 0 || aq_provider_host_frame_size (head, 4) < 0)
        return NULL;
    size_t len = (size_t) head[0] << 24 | (size_t) head[1] << 16 | (size_t) head[2] << 8 | head[3];
    uint8_t *data = malloc (len ? len : 1);
    json_t *msg = data && s_read_all (fd, data, len) == 0 ? aq_codec_unpack (data, len) : NULL;
    free (data);
    if (msg && !json_is_object (msg)) {
        json_decref (msg);
        msg = NULL;
    }
    return msg;
}

//  Sends msg (a JSON object) on fd as a frame (blocking). 0, or -1 when the
//  broker has gone or msg cannot be sent.
static int s_send (int fd, const json_t *msg) {
    size_t size = 0;
    uint8_t *data = aq_codec_pack (msg, &size);
    uint8_t head[AQ_PROVIDER_HOST_HEAD];
    int rc = -1;
    if (data && size <= AQ_PROVIDER_HOST_FRAME_MAX) {
        aq_provider_host_frame_head (head, size);
        rc = s_write_all (fd, head, sizeof head) == 0 && s_write_all (fd, data, size) == 0 ? 0 : -1;
    }
    free (data);
    return rc;
}

// ---------------------------------------------------------------------------
//  Running one request

static char *s_dup (const json_t *object, const char *key) {
    const char *text = json_string_value (json_object_get (object, key));
    return text ? strdup (text) : NULL;
}

static void s_put (json_t *object, const char *key, const char *text) {
    if (text)
        json_object_set_new (object, key, json_string (text));
}

//  Runs request (a JSON object) through provider: the reply, a new reference.
static json_t *s_run (const aq_plugin_provider_t *provider, const json_t *request) {
    const char *op = json_string_value (json_object_get (request, "op"));
    const json_t *answer = json_object_get (request, "response");
    const json_t *stored = json_object_get (request, "plan");
    const char *url = json_string_value (json_object_get (answer, "url"));
    const char *body = json_string_value (json_object_get (answer, "body"));
    json_t *headers = json_object_get (answer, "headers");
    json_int_t code = json_integer_value (json_object_get (answer, "statusCode"));
    aq_http_response_t response;
    aq_plugin_response_init (&response, url ? url : "", (int) code,
                             json_is_object (headers) ? headers : NULL, body,
                             body ? json_string_length (json_object_get (answer, "body")) : 0);
    aq_provider_plan_t plan = {.size = sizeof plan};
    plan.status_url = s_dup (stored, "statusUrl");
    plan.result_url = s_dup (stored, "resultUrl");
    plan.cancel_url = s_dup (stored, "cancelUrl");
    plan.cancel_method = s_dup (stored, "cancelMethod");
    aq_provider_status_t status = {.size = sizeof status};
    json_t *reply = json_object ();
    if (op && strcmp (op, "plan") == 0) {
        aq_provider_plan_t fresh;
        aq_plugin_provider_plan (provider, &response, &fresh, &status);
        json_t *out = json_object ();
        s_put (out, "statusUrl", fresh.status_url);
        s_put (out, "resultUrl", fresh.result_url);
        s_put (out, "cancelUrl", fresh.cancel_url);
        s_put (out, "cancelMethod", fresh.cancel_method);
        if (fresh.interval_ms)
            json_object_set_new (out, "intervalMs", json_integer (fresh.interval_ms));
        json_object_set_new (reply, "plan", out);
        aq_plugin_plan_release (&fresh);
    } else if (op && strcmp (op, "poll") == 0)
        aq_plugin_provider_poll (provider, &plan, &response, &status);
    else if (op && strcmp (op, "result") == 0) {
        const json_t *was = json_object_get (request, "status");
        json_t *state = json_object_get (was, "state");
        status.state = json_is_integer (state) ? (int) json_integer_value (state) : AQ_POLL_DONE;
        status.error = s_dup (was, "error");
        status.fetch_result = true;
        aq_plugin_provider_result (provider, &plan, &response, &status);
    } else {
        status.state = AQ_POLL_FAILED;
        status.error = strdup ("the provider host got an unknown request");
    }
    json_object_set_new (reply, "state", json_integer (status.state));
    s_put (reply, "error", status.error);
    json_object_set_new (reply, "fetchResult", json_boolean (status.fetch_result));
    if (status.retry_ms)
        json_object_set_new (reply, "retryMs", json_integer (status.retry_ms));
    aq_plugin_status_release (&status);
    aq_plugin_plan_release (&plan);
    aq_plugin_response_release (&response);
    return reply;
}

uint8_t *aq_provider_host_run (const aq_plugin_provider_t *provider, const uint8_t *request,
                               size_t size, size_t *reply_size) {
    json_t *msg = aq_codec_unpack (request, size);
    if (!json_is_object (msg)) {
        json_decref (msg);
        msg = json_object (); //  no op: a FAILED reply
    }
    json_t *reply = msg ? s_run (provider, msg) : NULL;
    uint8_t *data = reply ? aq_codec_pack (reply, reply_size) : NULL;
    json_decref (reply);
    json_decref (msg);
    return data;
}

// ---------------------------------------------------------------------------
//  The process

int aq_provider_host_main (int argc, char **argv) {
    if (argc != 6) {
        fprintf (stderr, "aq-provider-host: started by the broker only\n");
        return 2;
    }
    //  Dies with the broker, even while a plugin loops
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != (pid_t) atoll (argv[5]))
        return 0;                   //  the broker is already gone
    aq_log_set_level (AQ_LOG_WARN); //  the broker logs the load; warnings and errors here
    aq_plugin_loader_t *loader = aq_plugin_loader_new (*argv[4] ? argv[4] : NULL);
    const aq_plugin_provider_t *provider = NULL;
    if (loader && aq_plugin_loader_load_file (loader, argv[3]) == 0)
        provider = aq_plugin_loader_provider (loader, argv[2]);
    if (!provider)
        aq_log (AQ_LOG_ERROR, S_COMPONENT, "provider host: no provider '%s' in '%s'", argv[2],
                argv[3]);
    json_t *request;
    while (provider && (request = s_receive (AQ_PROVIDER_HOST_FD))) {
        json_t *reply = s_run (provider, request);
        json_object_set (reply, "seq", json_object_get (request, "seq"));
        int sent = s_send (AQ_PROVIDER_HOST_FD, reply);
        json_decref (reply);
        json_decref (request);
        if (sent != 0)
            break;
    }
    aq_plugin_loader_destroy (&loader);
    return provider ? 0 : 3;
}

//  environ without AQ_* variables but AQ_LOG_LEVEL, and with the broker's
//  log format as AQ_LOG_FORMAT. Caller frees the array (not the strings).
static char **s_child_environ (void) {
    size_t count = 0;
    while (environ && environ[count])
        count++;
    char **env = calloc (count + 2, sizeof *env);
    size_t kept = 0;
    for (size_t i = 0; env && i < count; i++)
        if (strncmp (environ[i], "AQ_", 3) != 0 || strncmp (environ[i], "AQ_LOG_LEVEL=", 13) == 0)
            env[kept++] = environ[i];
    if (env)
        env[kept] = aq_log_format () == AQ_LOG_JSON ? "AQ_LOG_FORMAT=json" : "AQ_LOG_FORMAT=text";
    return env;
}

int aq_provider_host_spawn (const char *exe, const char *name, const char *path, const char *config,
                            pid_t *pid, int *fd) {
    int pair[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, pair[1], AQ_PROVIDER_HOST_FD);
    posix_spawn_file_actions_addclosefrom_np (&actions, AQ_PROVIDER_HOST_FD + 1);
    posix_spawnattr_init (&attr);
    sigset_t none, all;
    sigemptyset (&none);
    sigfillset (&all);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &all);
    posix_spawnattr_setpgroup (&attr, 0); //  a terminal's ^C is for the broker
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                         POSIX_SPAWN_SETPGROUP);
    char parent[24];
    snprintf (parent, sizeof parent, "%d", (int) getpid ());
    char *args[] = {"aq-provider-host",
                    AQ_PROVIDER_HOST_ARG,
                    (char *) name,
                    (char *) path,
                    (char *) (config ? config : ""),
                    parent,
                    NULL};
    char **env = s_child_environ ();
    int rc = env ? posix_spawn (pid, exe, &actions, &attr, args, env) : ENOMEM;
    free (env);
    posix_spawnattr_destroy (&attr);
    posix_spawn_file_actions_destroy (&actions);
    close (pair[1]);
    if (rc != 0 || fcntl (pair[0], F_SETFL, O_NONBLOCK) != 0) {
        close (pair[0]);
        errno = rc ? rc : errno;
        return -1;
    }
    *fd = pair[0];
    return 0;
}

// ---------------------------------------------------------------------------
//  Selftest: requests run in this process through the example plugin, and
//  the framing. broker/providers.c tests real hosts.

//  Runs request (JSON) as the wire carries it: msgpack in, msgpack out.
//  The reply as JSON, a new reference.
static json_t *s_run_packed (const aq_plugin_provider_t *provider, const json_t *request) {
    size_t size, reply_size;
    uint8_t *data = aq_codec_pack (request, &size);
    assert (data);
    uint8_t *reply = aq_provider_host_run (provider, data, size, &reply_size);
    assert (reply);
    json_t *back = aq_codec_unpack (reply, reply_size);
    assert (json_is_object (back));
    free (data);
    free (reply);
    return back;
}

//  Checks that request gives the reply expect (JSON texts).
static void s_expect (const aq_plugin_provider_t *provider, const char *request,
                      const char *expect) {
    json_t *msg = json_loads (request, 0, NULL), *want = json_loads (expect, 0, NULL);
    assert (msg && want);
    json_t *reply = s_run_packed (provider, msg);
    if (!json_equal (reply, want)) {
        char *text = json_dumps (reply, JSON_COMPACT | JSON_SORT_KEYS);
        printf ("aq_provider_host: got %s\n", text);
        free (text);
    }
    assert (json_equal (reply, want));
    json_decref (reply);
    json_decref (want);
    json_decref (msg);
}

void aq_provider_host_test (bool verbose) {
    uint8_t frame[8];
    aq_provider_host_frame_head (frame, 3);
    memcpy (frame + 4, "\x81\x01\x02", 3);
    assert (aq_provider_host_frame_size (frame, 3) == 0);
    assert (aq_provider_host_frame_size (frame, 6) == 0);
    assert (aq_provider_host_frame_size (frame, 7) == 7);
    assert (aq_provider_host_frame_size (frame, 8) == 7); //  the next frame's bytes follow
    aq_provider_host_frame_head (frame, AQ_PROVIDER_HOST_FRAME_MAX);
    assert (frame[0] == 0x04 && frame[1] == 0 && frame[3] == 0);
    assert (aq_provider_host_frame_size (frame, 4) == 0);
    frame[0] = 0x7F; //  a length beyond the limit
    assert (aq_provider_host_frame_size (frame, 4) == -1);
    char *argv[] = {"x", AQ_PROVIDER_HOST_ARG};
    assert (aq_provider_host_wanted (2, argv) && !aq_provider_host_wanted (1, argv));

    char *dir = aq_plugin_loader_default_dir ();
    char path[4096];
    struct stat st;
    if (!dir || snprintf (path, sizeof path, "%s/example.so", dir) < 0 || stat (path, &st) != 0) {
        printf ("aq_provider_host: no built plugins; request checks skipped\n");
        free (dir);
        return;
    }
    aq_plugin_loader_t *loader = aq_plugin_loader_new (NULL);
    assert (aq_plugin_loader_load_file (loader, path) == 0);
    assert (aq_plugin_loader_load_file (loader, "/nonexistent/x.so") == -1);
    const aq_plugin_provider_t *example = aq_plugin_loader_provider (loader, "example");
    assert (example && strcmp (aq_plugin_provider_path (example), path) == 0);
    s_expect (example,
              "{\"op\": \"plan\", \"response\": {\"url\": \"http://127.0.0.1:5/jobs\", "
              "\"statusCode\": 202, \"headers\": {\"content-type\": \"application/json\"}, "
              "\"body\": \"{\\\"id\\\": \\\"j1\\\", \\\"statusUrl\\\": \\\"/jobs/j1\\\"}\"}}",
              "{\"state\": 0, \"fetchResult\": false, \"plan\": {"
              "\"statusUrl\": \"http://127.0.0.1:5/jobs/j1\", "
              "\"cancelUrl\": \"http://127.0.0.1:5/jobs/j1\", \"cancelMethod\": \"DELETE\"}}");
    s_expect (example,
              "{\"op\": \"poll\", \"plan\": {\"statusUrl\": \"http://127.0.0.1:5/jobs/j1\"}, "
              "\"response\": {\"url\": \"http://127.0.0.1:5/jobs/j1\", \"statusCode\": 200, "
              "\"body\": \"{\\\"status\\\": \\\"failed\\\", \\\"error\\\": \\\"disk full\\\"}\"}}",
              "{\"state\": 2, \"error\": \"disk full\", \"fetchResult\": false}");
    //  result without the plugin's op: the default rule turns a 500 into FAILED
    s_expect (example,
              "{\"op\": \"result\", \"plan\": {\"statusUrl\": \"http://h/s\", "
              "\"resultUrl\": \"http://h/r\"}, \"status\": {\"state\": 1}, "
              "\"response\": {\"statusCode\": 500, \"body\": \"\"}}",
              "{\"state\": 2, \"error\": \"HTTP 500\", \"fetchResult\": false}");
    s_expect (example, "{\"op\": \"dance\"}",
              "{\"state\": 2, \"error\": \"the provider host got an unknown request\", "
              "\"fetchResult\": false}");
    //  bytes that are no map: the same
    size_t size;
    uint8_t *reply = aq_provider_host_run (example, (const uint8_t *) "\x93\x01\x02\x03", 4, &size);
    json_t *back = aq_codec_unpack (reply, size);
    assert (json_integer_value (json_object_get (back, "state")) == AQ_POLL_FAILED);
    json_decref (back);
    free (reply);
    aq_plugin_loader_destroy (&loader);
    free (dir);
    if (verbose)
        printf ("aq_provider_host: ok\n");
}
