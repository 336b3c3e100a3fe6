/*  providers.c - the provider hosts: provider ops run in child processes

    One s_host_t per provider: its child process, its socket, the ops it
    was given (oldest first; the first `written` of them are on the wire)
    and the bytes on their way. The host answers in order, so the oldest
    written op is the one it is running: when the host dies or stalls, that
    op is the one to blame. Requests and replies stay msgpack bytes: a
    request gets its "seq" as it is framed, a reply loses it as it is taken.
*/
#include "providers.h"
#include "aq_log.h"
#include "aq_msg.h"
#include "aq_time.h"
#include "provider_host.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_WINDOW         64    //  ops written to a host ahead of their replies
#define S_BACKOFF_MS     100   //  restart delay after the second failure in a row, doubling
#define S_BACKOFF_MAX_MS 10000 //  longest restart delay
#define S_REAP_MS        100   //  a host that closed its socket has this long to exit
#define S_STOP_MS        1000  //  hosts have this long to exit at shutdown
#define S_READ_CHUNK     65536 //  receive buffer growth

typedef struct s_op_t s_op_t;
struct s_op_t {
    s_op_t *next;     //  the next op of the same host
    char *key;        //  the broker's name for it
    uint8_t *request; //  what the host runs: a msgpack map without seq
    size_t size;      //  its length
    const char *what; //  "the status answer", for messages
    int runs;         //  times a host died or stalled running it
};

typedef struct {
    char *name;             //  the provider
    char *path;             //  its plugin file
    const char **headers;   //  what its polls carry (NULL-terminated), NULL until asked
    pid_t pid;              //  the running host, 0 when none
    int fd;                 //  the broker's end of its socket, -1 when none
    s_op_t *head, *tail;    //  ops, oldest first
    size_t written;         //  the first ones, sent and not answered
    uint64_t seq;           //  the last seq sent
    uint8_t *out;           //  bytes to send
    size_t out_size;        //  how many
    size_t out_sent;        //  of which sent
    uint8_t *in;            //  bytes received, not yet a whole frame
    size_t in_size, in_cap; //  how many, room
    int64_t deadline;       //  mono ms by which the head op must be answered
    int failures;           //  deaths and stalls since the last reply
    int64_t restart_at;     //  mono ms before which it is not started again
} s_host_t;

typedef struct s_done_t s_done_t;
struct s_done_t {
    s_done_t *next; //  the next finished op
    char *key;      //  its key
    uint8_t *reply; //  its reply (a msgpack map), or NULL
    size_t size;    //  the reply's length
    char *error;    //  or why it failed
};

struct _bk_providers_t {
    char *exe;                   //  the program hosts run
    char *config;                //  passed to their plugins' open
    int64_t timeout_ms;          //  longest an op may run
    aq_plugin_loader_t *plugins; //  borrowed: the providers' descriptors
    aq_writer_t frame;           //  the request being framed
    s_host_t **hosts;            //  one per provider asked so far
    size_t nhosts;               //  how many
    s_done_t *done, *last;       //  finished ops, oldest first
    size_t pending;              //  ops queued or running
};

bk_providers_t *bk_providers_new (const char *exe, const char *config, int64_t timeout_ms,
                                  aq_plugin_loader_t *plugins) {
    assert (exe);
    bk_providers_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    aq_writer_init (&self->frame);
    if (!(self->exe = strdup (exe)) || (config && !(self->config = strdup (config)))) {
        bk_providers_destroy (&self);
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    self->plugins = plugins;
    return self;
}

//  A message in the style of printf. Caller frees; NULL if out of memory.
static char *s_format (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static char *s_format (const char *fmt, ...) {
    char *text = NULL;
    va_list args;
    va_start (args, fmt);
    if (vasprintf (&text, fmt, args) < 0)
        text = NULL;
    va_end (args);
    return text;
}

static void s_done_add (bk_providers_t *self, char *key, uint8_t *reply, size_t size, char *error) {
    s_done_t *done = calloc (1, sizeof *done);
    assert (done);
    done->key = key;
    done->reply = reply;
    done->size = size;
    done->error = error;
    if (self->last)
        self->last->next = done;
    else
        self->done = done;
    self->last = done;
}

static void s_op_destroy (s_op_t **op_p) {
    s_op_t *op = *op_p;
    if (!op)
        return;
    free (op->key);
    free (op->request);
    free (op);
    *op_p = NULL;
}

//  Removes and returns the host's oldest op.
static s_op_t *s_pop (bk_providers_t *self, s_host_t *host) {
    s_op_t *op = host->head;
    host->head = op->next;
    if (!host->head)
        host->tail = NULL;
    self->pending--;
    return op;
}

//  Waits for pid to exit: up to wait_ms, then kills it. Its status.
static int s_reap (pid_t pid, int64_t wait_ms) {
    int status = 0;
    for (int64_t end = aq_time_mono_ms () + wait_ms;;) {
        pid_t got = waitpid (pid, &status, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            return got == pid ? status : 0;
        if (aq_time_mono_ms () >= end)
            break;
        usleep (1000);
    }
    kill (pid, SIGKILL);
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

//  Closes the host's socket and forgets its buffers (the process stays).
static void s_disconnect (s_host_t *host) {
    if (host->fd >= 0)
        close (host->fd);
    host->fd = -1;
    free (host->out);
    free (host->in);
    host->out = host->in = NULL;
    host->out_size = host->out_sent = host->in_size = host->in_cap = 0;
    host->written = 0;
    host->deadline = INT64_MAX;
}

//  The host failed while running its head op (if any was written): it
//  died (stalled false: reaped as it is) or stalled or answered garbage
//  (stalled true: killed). The head op is blamed, and fails after its
//  third run; every op is sent again to the next host.
static void s_failed (bk_providers_t *self, s_host_t *host, int64_t mono, const char *cause) {
    s_op_t *culprit = host->written ? host->head : NULL;
    pid_t pid = host->pid;
    s_disconnect (host);
    int status = s_reap (pid, cause ? 0 : S_REAP_MS);
    host->pid = 0;
    char how[96];
    if (cause)
        snprintf (how, sizeof how, "was killed: %s", cause);
    else if (WIFSIGNALED (status))
        snprintf (how, sizeof how, "died: signal %s",
                  sigabbrev_np (WTERMSIG (status)) ? sigabbrev_np (WTERMSIG (status)) : "?");
    else
        snprintf (how, sizeof how, "died: exit status %d", WEXITSTATUS (status));
    aq_log (AQ_LOG_ERROR, "broker", "provider host for '%s' (pid %d) %s%s%s", host->name, (int) pid,
            how, culprit ? " while reading " : "", culprit ? culprit->what : "");
    if (culprit && ++culprit->runs >= BK_PROVIDERS_TRIES) {
        s_op_t *op = s_pop (self, host);
        char *error;
        if (cause && strncmp (cause, "no answer", 9) == 0)
            error = s_format ("provider '%s' did not answer within %lld ms while reading %s",
                              host->name, (long long) self->timeout_ms, op->what);
        else
            error = s_format ("provider '%s' crashed while reading %s", host->name, op->what);
        aq_log (AQ_LOG_WARN, "broker",
                "provider '%s' failed %d times on one request: its task fails", host->name,
                op->runs);
        s_done_add (self, op->key, NULL, 0, error);
        op->key = NULL;
        s_op_destroy (&op);
    }
    host->failures++;
    int64_t delay = 0;
    if (host->failures > 1) {
        int shift = host->failures - 2 < 16 ? host->failures - 2 : 16;
        delay = (int64_t) S_BACKOFF_MS << shift;
        delay = delay < S_BACKOFF_MAX_MS ? delay : S_BACKOFF_MAX_MS;
    }
    host->restart_at = mono + delay;
}

//  Starts the host's process.
static void s_start (bk_providers_t *self, s_host_t *host, int64_t mono) {
    pid_t pid;
    int fd;
    if (aq_provider_host_spawn (self->exe, host->name, host->path, self->config, &pid, &fd) != 0) {
        aq_log (AQ_LOG_ERROR, "broker", "cannot start the provider host for '%s': %s", host->name,
                strerror (errno));
        //  blame the head op, as if it had been sent: ops end, even so
        if (++host->head->runs >= BK_PROVIDERS_TRIES) {
            s_op_t *op = s_pop (self, host);
            char *error =
                s_format ("provider '%s' could not be started to read %s", host->name, op->what);
            s_done_add (self, op->key, NULL, 0, error);
            op->key = NULL;
            s_op_destroy (&op);
        }
        host->failures++;
        host->restart_at = mono + S_BACKOFF_MAX_MS / 10;
        return;
    }
    host->pid = pid;
    host->fd = fd;
    host->deadline = INT64_MAX;
    aq_log (AQ_LOG_INFO, "broker", "provider host for '%s' started (pid %d)", host->name,
            (int) pid);
}

//  Appends one frame to the host's output: a 4-byte length and op's request
//  with "seq" in front. false when out of memory.
static bool s_frame (bk_providers_t *self, s_host_t *host, const s_op_t *op, uint64_t seq) {
    aq_node_t request;
    int rc = aq_msg_parse (op->request, op->size, &request);
    assert (rc == 0 && request.type == AQ_NODE_MAP); //  checked by submit
    aq_writer_t *w = &self->frame;
    aq_writer_reset (w);
    aq_write_map (w, request.count + 1);
    aq_write_str (w, "seq");
    aq_write_uint (w, seq);
    aq_write_raw (w, request.data, (size_t) (request.raw + request.raw_size - request.data));
    size_t size;
    const uint8_t *data = aq_writer_data (w, &size);
    if (!data)
        return false;
    if (host->out_sent > 0) {
        memmove (host->out, host->out + host->out_sent, host->out_size - host->out_sent);
        host->out_size -= host->out_sent;
        host->out_sent = 0;
    }
    uint8_t *out = realloc (host->out, host->out_size + AQ_PROVIDER_HOST_HEAD + size);
    if (!out)
        return false;
    aq_provider_host_frame_head (out + host->out_size, size);
    memcpy (out + host->out_size + AQ_PROVIDER_HOST_HEAD, data, size);
    host->out = out;
    host->out_size += AQ_PROVIDER_HOST_HEAD + size;
    return true;
}

//  Appends the ops not yet sent (up to the window) to the output.
static void s_fill (bk_providers_t *self, s_host_t *host, int64_t mono) {
    s_op_t *op = host->head;
    for (size_t i = 0; op && i < host->written; i++)
        op = op->next;
    for (; op && host->written < S_WINDOW; op = op->next) {
        if (!s_frame (self, host, op, host->seq + 1))
            break; //  out of memory: try again next time
        host->seq++;
        if (host->written++ == 0)
            host->deadline = mono + self->timeout_ms;
    }
}

//  Sends what the socket takes. false if the host has gone.
static bool s_send (s_host_t *host) {
    while (host->out_sent < host->out_size) {
        ssize_t n = send (host->fd, host->out + host->out_sent, host->out_size - host->out_sent,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            host->out_sent += (size_t) n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    host->out_size = host->out_sent = 0;
    return true;
}

//  The reply in a frame's payload (size bytes at data) when it is a map
//  answering seq: the map without its "seq" into *reply (malloc'd,
//  *reply_size bytes). false when it is not.
static bool s_reply (const uint8_t *data, size_t size, uint64_t seq, uint8_t **reply,
                     size_t *reply_size) {
    aq_node_t map, key, value;
    if (aq_msg_parse (data, size, &map) != 0 || map.type != AQ_NODE_MAP ||
        !aq_node_get (&map, "seq", &value) || value.type != AQ_NODE_INT || value.u != seq)
        return false;
    aq_writer_t w;
    aq_writer_init (&w);
    size_t mark = aq_write_map_open (&w);
    uint32_t pairs = 0;
    aq_iter_t it;
    aq_node_iter (&map, &it);
    while (aq_iter_next (&it, &key, &value))
        if (!aq_node_streq (&key, "seq")) {
            aq_write_raw (&w, key.raw, key.raw_size);
            aq_write_raw (&w, value.raw, value.raw_size);
            pairs++;
        }
    aq_write_map_close (&w, mark, pairs);
    *reply = aq_writer_take (&w, reply_size);
    aq_writer_release (&w);
    return *reply != NULL;
}

//  Reads what arrived and hands out the replies in it. Returns NULL while
//  the host is fine, else why it is not (""): it died).
static const char *s_receive (bk_providers_t *self, s_host_t *host, int64_t mono) {
    bool closed = false;
    for (;;) {
        if (host->in_cap - host->in_size < S_READ_CHUNK / 4) {
            if (host->in_cap > AQ_PROVIDER_HOST_FRAME_MAX + S_READ_CHUNK)
                return "it answered garbage";
            uint8_t *in = realloc (host->in, host->in_cap + S_READ_CHUNK);
            if (!in)
                break;
            host->in = in;
            host->in_cap += S_READ_CHUNK;
        }
        ssize_t n =
            recv (host->fd, host->in + host->in_size, host->in_cap - host->in_size, MSG_DONTWAIT);
        if (n > 0)
            host->in_size += (size_t) n;
        else if (n < 0 && errno == EINTR)
            continue;
        else {
            closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
            break;
        }
    }
    long size;
    while ((size = aq_provider_host_frame_size (host->in, host->in_size)) > 0) {
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        bool ok = host->written &&
                  s_reply (host->in + AQ_PROVIDER_HOST_HEAD, (size_t) size - AQ_PROVIDER_HOST_HEAD,
                           host->seq - host->written + 1, &reply, &reply_size);
        memmove (host->in, host->in + size, host->in_size - (size_t) size);
        host->in_size -= (size_t) size;
        if (!ok)
            return "it answered garbage";
        s_op_t *op = s_pop (self, host);
        s_done_add (self, op->key, reply, reply_size, NULL);
        op->key = NULL;
        s_op_destroy (&op);
        host->written--;
        host->failures = 0;
        host->deadline = host->written ? mono + self->timeout_ms : INT64_MAX;
    }
    if (size < 0)
        return "it answered garbage";
    return closed ? "" : NULL;
}

void bk_providers_work (bk_providers_t *self, int64_t mono) {
    char cause[64];
    snprintf (cause, sizeof cause, "no answer within %lld ms", (long long) self->timeout_ms);
    for (size_t i = 0; i < self->nhosts; i++) {
        s_host_t *host = self->hosts[i];
        if (host->pid) {
            const char *trouble = s_receive (self, host, mono);
            if (trouble)
                s_failed (self, host, mono, *trouble ? trouble : NULL);
            else if (host->written && mono >= host->deadline)
                s_failed (self, host, mono, cause);
        }
        if (!host->pid && host->head && mono >= host->restart_at)
            s_start (self, host, mono);
        if (host->pid) {
            s_fill (self, host, mono);
            if (!s_send (host))
                s_failed (self, host, mono, NULL);
        }
    }
}

//  The host of provider (not started), created on first use; NULL when
//  no such provider is loaded.
static s_host_t *s_host (bk_providers_t *self, const char *name) {
    for (size_t i = 0; i < self->nhosts; i++)
        if (strcmp (self->hosts[i]->name, name) == 0)
            return self->hosts[i];
    const aq_plugin_provider_t *provider =
        self->plugins ? aq_plugin_loader_provider (self->plugins, name) : NULL;
    if (!provider)
        return NULL;
    s_host_t **hosts = realloc (self->hosts, (self->nhosts + 1) * sizeof *hosts);
    assert (hosts);
    self->hosts = hosts;
    s_host_t *host = calloc (1, sizeof *host);
    assert (host);
    host->name = strdup (name);
    host->path = strdup (aq_plugin_provider_path (provider));
    assert (host->name && host->path);
    host->fd = -1;
    host->deadline = INT64_MAX;
    //  what its polls carry: the auth header and the poll headers
    const aq_provider_ops_t *ops = aq_plugin_provider_ops (provider);
    const char *auth = AQ_PLUGIN_GET (ops, auth_header, NULL);
    const char *const *more = AQ_PLUGIN_GET (ops, poll_headers, NULL);
    size_t count = 0;
    while (more && more[count])
        count++;
    host->headers = calloc (count + 2, sizeof *host->headers);
    assert (host->headers);
    size_t n = 0;
    if (auth)
        host->headers[n++] = auth;
    for (size_t i = 0; i < count; i++)
        host->headers[n++] = more[i];
    self->hosts[self->nhosts++] = host;
    return host;
}

//  What an op reads, for messages: "the status answer".
static const char *s_what (const aq_node_t *request) {
    aq_node_t op;
    aq_node_get (request, "op", &op);
    if (aq_node_streq (&op, "plan"))
        return "the initial answer";
    if (aq_node_streq (&op, "result"))
        return "the result";
    return "the status answer";
}

void bk_providers_submit (bk_providers_t *self, const char *provider, const char *key,
                          const uint8_t *request, size_t size) {
    assert (self && provider && key && request);
    aq_node_t map;
    int rc = aq_msg_parse (request, size, &map);
    assert (rc == 0 && map.type == AQ_NODE_MAP); //  poll.c writes them
    s_host_t *host = s_host (self, provider);
    char *error = NULL;
    if (!host)
        error = strdup ("provider plugin is no longer loaded");
    else if (size > AQ_PROVIDER_HOST_FRAME_MAX - 32) //  room for seq
        error = s_format ("provider '%s' cannot be asked: the answer is too large", provider);
    if (!host || error) {
        char *copy = strdup (key);
        assert (copy && error);
        s_done_add (self, copy, NULL, 0, error);
        return;
    }
    s_op_t *op = calloc (1, sizeof *op);
    assert (op);
    op->key = strdup (key);
    op->request = malloc (size);
    assert (op->key && op->request);
    memcpy (op->request, request, size);
    op->size = size;
    op->what = s_what (&map);
    if (host->tail)
        host->tail->next = op;
    else
        host->head = op;
    host->tail = op;
    self->pending++;
}

bool bk_providers_take (bk_providers_t *self, char **key, uint8_t **reply, size_t *reply_size,
                        char **error) {
    s_done_t *done = self->done;
    if (!done)
        return false;
    self->done = done->next;
    if (!self->done)
        self->last = NULL;
    *key = done->key;
    *reply = done->reply;
    *reply_size = done->size;
    *error = done->error;
    free (done);
    return true;
}

int bk_providers_poll_items (bk_providers_t *self, zmq_pollitem_t *items, int max) {
    int n = 0;
    for (size_t i = 0; i < self->nhosts && n < max; i++) {
        s_host_t *host = self->hosts[i];
        if (host->pid) {
            short events = ZMQ_POLLIN;
            if (host->out_sent < host->out_size)
                events |= ZMQ_POLLOUT;
            items[n++] = (zmq_pollitem_t){.fd = host->fd, .events = events};
        }
    }
    return n;
}

int64_t bk_providers_next_wake (bk_providers_t *self) {
    if (self->done)
        return 0;
    int64_t wake = INT64_MAX;
    for (size_t i = 0; i < self->nhosts; i++) {
        s_host_t *host = self->hosts[i];
        int64_t at = host->pid ? (host->written ? host->deadline : INT64_MAX)
                               : (host->head ? host->restart_at : INT64_MAX);
        wake = at < wake ? at : wake;
    }
    return wake;
}

size_t bk_providers_pending (bk_providers_t *self) {
    return self->pending;
}

const char *const *bk_providers_poll_headers (bk_providers_t *self, const char *provider) {
    static const char *const none[] = {NULL};
    s_host_t *host = provider ? s_host (self, provider) : NULL;
    return host ? host->headers : none;
}

void bk_providers_destroy (bk_providers_t **self_p) {
    bk_providers_t *self = *self_p;
    if (!self)
        return;
    //  Closed sockets tell the hosts to exit once their op is done
    for (size_t i = 0; i < self->nhosts; i++)
        s_disconnect (self->hosts[i]);
    int64_t end = aq_time_mono_ms () + S_STOP_MS;
    for (size_t i = 0; i < self->nhosts; i++) {
        s_host_t *host = self->hosts[i];
        if (host->pid) {
            int64_t left = end - aq_time_mono_ms ();
            s_reap (host->pid, left > 0 ? left : 0);
        }
        while (host->head) {
            s_op_t *op = s_pop (self, host);
            s_op_destroy (&op);
        }
        free (host->name);
        free (host->path);
        free (host->headers);
        free (host);
    }
    char *key, *error;
    uint8_t *reply;
    size_t size;
    while (bk_providers_take (self, &key, &reply, &size, &error)) {
        free (key);
        free (error);
        free (reply);
    }
    free (self->hosts);
    free (self->exe);
    free (self->config);
    aq_writer_release (&self->frame);
    free (self);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------
//  Selftest: real hosts (this program, re-executed) running the test
//  plugins that crash (crashy) and loop (hangy).

//  Works until an op is finished or timeout_ms passed. true if one was.
static bool s_wait (bk_providers_t *self, char **key, uint8_t **reply, size_t *size, char **error,
                    int64_t timeout_ms) {
    int64_t end = aq_time_mono_ms () + timeout_ms;
    while (aq_time_mono_ms () < end) {
        bk_providers_work (self, aq_time_mono_ms ());
        if (bk_providers_take (self, key, reply, size, error))
            return true;
        zmq_pollitem_t items[8];
        int n = bk_providers_poll_items (self, items, 8);
        int64_t wake = bk_providers_next_wake (self) - aq_time_mono_ms ();
        zmq_poll (items, n, wake < 0 ? 0 : wake > 20 ? 20 : (long) wake);
    }
    return false;
}

//  Submits to provider a poll whose status answer body is {"status": status},
//  as poll.c writes it; key is the status.
static void s_submit (bk_providers_t *self, const char *provider, const char *key,
                      const char *status) {
    char body[64];
    snprintf (body, sizeof body, "{\"status\": \"%s\"}", status);
    aq_writer_t w;
    aq_writer_init (&w);
    aq_write_map (&w, 3);
    aq_write_kv_str (&w, "op", "poll");
    aq_write_str (&w, "plan");
    aq_write_map (&w, 1);
    aq_write_kv_str (&w, "statusUrl", "http://h/jobs/1");
    aq_write_str (&w, "response");
    aq_write_map (&w, 3);
    aq_write_kv_str (&w, "url", "http://h/jobs/1");
    aq_write_kv_int (&w, "statusCode", 200);
    aq_write_kv_str (&w, "body", body);
    size_t size;
    const uint8_t *data = aq_writer_data (&w, &size);
    bk_providers_submit (self, provider, key, data, size);
    aq_writer_release (&w); //  submit copied it
}

//  The next finished op: key, and its reply's state or (state < 0) its error.
static void s_expect_next (bk_providers_t *self, const char *key, int state, const char *error) {
    char *got, *failure;
    uint8_t *reply;
    size_t size;
    assert (s_wait (self, &got, &reply, &size, &failure, 10000));
    assert (strcmp (got, key) == 0);
    if (state >= 0) {
        aq_node_t map, value;
        assert (reply && !failure && aq_msg_parse (reply, size, &map) == 0);
        assert (aq_node_get (&map, "state", &value) && value.type == AQ_NODE_INT &&
                value.i == state);
        assert (!aq_node_get (&map, "seq", &value)); //  the wire's, not the broker's
    } else
        assert (!reply && failure && strcmp (failure, error) == 0);
    free (got);
    free (failure);
    free (reply);
}

//  Submits a poll of status to provider; checks the outcome.
static void s_expect (bk_providers_t *self, const char *provider, const char *status, int state,
                      const char *error) {
    s_submit (self, provider, status, status);
    s_expect_next (self, status, state, error);
}

void bk_providers_test (bool verbose) {
    //  <build>/bin/aq-selftest: the test plugins are in <build>/plugins-test
    char exe[PATH_MAX] = "", crashy[PATH_MAX + 32], hangy[PATH_MAX + 32];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    for (int up = 0; up < 2 && strrchr (exe, '/'); up++)
        *strrchr (exe, '/') = 0;
    snprintf (crashy, sizeof crashy, "%s/plugins-test/crashy.so", exe);
    snprintf (hangy, sizeof hangy, "%s/plugins-test/hangy.so", exe);
    struct stat st;
    if (stat (crashy, &st) != 0 || stat (hangy, &st) != 0) {
        printf ("bk_providers: no test plugins in '%s/plugins-test'; skipped\n", exe);
        return;
    }
    //  The broker's view: descriptors only, ops in hosts
    aq_plugin_loader_t *plugins = aq_plugin_loader_new (NULL);
    aq_plugin_loader_describe_only (plugins, AQ_PLUGIN_PROVIDER);
    assert (aq_plugin_loader_load_file (plugins, crashy) == 0);
    assert (aq_plugin_loader_load_file (plugins, hangy) == 0);
    bk_providers_t *self = bk_providers_new ("/proc/self/exe", NULL, 300, plugins);
    assert (self);
    assert (bk_providers_next_wake (self) == INT64_MAX);

    //  What polls carry: the auth header (and poll headers); an unknown
    //  provider's polls carry nothing
    const char *const *headers = bk_providers_poll_headers (self, "crashy");
    assert (headers && strcmp (headers[0], "Authorization") == 0 && !headers[1]);
    assert (bk_providers_poll_headers (self, "crashy") == headers);
    headers = bk_providers_poll_headers (self, "gone");
    assert (headers && !headers[0]);
    assert (bk_providers_next_wake (self) == INT64_MAX); //  no host started for that

    //  Answers in order; crashy's host crashes on its third status answer:
    //  that op runs again in a new host and succeeds; the one behind it is
    //  answered too
    s_expect (self, "crashy", "running", AQ_POLL_RUNNING, NULL);
    s_expect (self, "crashy", "done", AQ_POLL_DONE, NULL);
    s_submit (self, "crashy", "third", "running");
    s_submit (self, "crashy", "fourth", "done");
    assert (bk_providers_pending (self) == 2);
    s_expect_next (self, "third", AQ_POLL_RUNNING, NULL);
    s_expect_next (self, "fourth", AQ_POLL_DONE, NULL);

    //  An answer it always crashes on: three runs, then the op fails
    s_expect (self, "crashy", "crash", -1,
              "provider 'crashy' crashed while reading the status answer");
    s_expect (self, "crashy", "failed", AQ_POLL_FAILED, NULL);

    //  A host that loops is killed after the time limit, three times
    int64_t start = aq_time_mono_ms ();
    s_expect (self, "hangy", "running", -1,
              "provider 'hangy' did not answer within 300 ms while reading the status answer");
    assert (aq_time_mono_ms () - start >= 900);
    //  meanwhile and after, other providers' hosts answer
    s_expect (self, "crashy", "running", AQ_POLL_RUNNING, NULL);
    //  a provider that is not loaded fails at once
    s_expect (self, "gone", "running", -1, "provider plugin is no longer loaded");
    assert (bk_providers_pending (self) == 0);
    //  ops still queued at the end are dropped with their hosts
    s_submit (self, "hangy", "left", "running");
    bk_providers_work (self, aq_time_mono_ms ());
    bk_providers_destroy (&self);
    assert (self == NULL);
    bk_providers_destroy (&self);
    aq_plugin_loader_destroy (&plugins);
    if (verbose)
        printf ("bk_providers: ok\n");
}
