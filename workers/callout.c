/*  callout.c - the outgoing HTTP calls: one curl multi, many in flight

    The only file that includes <curl/curl.h>. Each call is an easy handle in
    one multi handle driven by curl_multi_socket_action: curl says which fds
    to watch (s_socket_cb; an epoll set holds them) and when to wake
    (s_timer_cb). The worker adds its own fds (its ZeroMQ sockets') to the
    same set and waits on it with wk_callout_wait: one epoll_wait per turn
    sees everything, and only what is ready is looked at. The connection
    and DNS caches live in the multi handle, so calls to the same target
    reuse connections.

    curl drops a connection's socket from its watch list when a call ends
    and takes it up again for the next call on that connection: two
    epoll_ctl per call if followed to the letter. So the set follows
    curl's wishes lazily (s_sync, before each wait): a socket curl opened
    through s_open_cb stays in the set while idle, and leaves it when it
    fires unwanted or when curl closes it (s_close_cb). Other sockets (a
    resolver's) follow at once.

    A JOB is read where it lies in its frame (aq_msg.h) and a RESULT is
    written as a whole frame, ready to send, into one buffer of RESULTs;
    an ended call is kept, with its easy handle and buffers, for the next:
    the options every call has are set once per easy handle (s_easy_new),
    the ones that differ on every call (s_call_setup).

    The SSRF guard sits in s_open_cb, where curl asks for a socket for the
    address it is about to connect to: whatever the URL spelled, that is
    where the call would go. What the text of a call may be (header names
    and values, a RESULT's headers and body) is text.c's.
*/
#include "callout.h"
#include "aq_proto.h"
#include "aq_time.h"
#include "ssrf.h"
#include "text.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#define S_DEFAULT_TIMEOUT  30           //  seconds, when a JOB has none
#define S_DEFAULT_MAX_BODY (64 * 1024)  //  bytes, when a JOB has none
#define S_HEADERS_MAX      (64 * 1024)  //  response header bytes kept per call
#define S_KEEP_BODY        (64 * 1024)  //  body room an ended call keeps for the next
#define S_EVENTS_MAX       256          //  events taken per wk_callout_wait
#define S_WATCHED          (1ULL << 32) //  epoll data of a watched fd: this | its bits
#define S_NONE             0xFF         //  s_fd_t.have: not in the epoll set

//  What the engine knows of one fd curl uses.
typedef struct {
    uint8_t want; //  EPOLLIN | EPOLLOUT as curl asked; 0: not watched
    uint8_t have; //  as registered in the epoll set, or S_NONE
    bool ours;    //  opened by s_open_cb: its close comes through s_close_cb
    bool dirty;   //  want changed since the last s_sync
} s_fd_t;

typedef struct {
    size_t at;   //  where the frame starts in the engine's out buffer
    size_t size; //  its bytes
} s_frame_t;

typedef struct _s_call_t s_call_t;

struct _wk_callout_t {
    CURLM *multi;        //  every call in flight
    bool allow_private;  //  SSRF guard lifted
    s_call_t *calls;     //  calls in flight (added to multi), a list
    size_t active;       //  their number
    s_call_t *spare;     //  ended calls kept for the next, a list
    size_t nspare;       //  their number
    size_t spare_max;    //  how many are kept: one per slot
    aq_writer_t out;     //  RESULT frames, one after another
    size_t frame_at;     //  where the frame being written starts
    s_frame_t *frames;   //  the frames in out: [head, count) are waiting
    size_t head;         //  the oldest waiting
    size_t count;        //  end of the waiting ones
    size_t frames_max;   //  allocated entries
    char *scratch;       //  room for a body made valid UTF-8
    size_t scratch_room; // bytes allocated
    int epoll;           //  the sockets curl waits on, and the watched fds
    s_fd_t *fds;         //  curl's fds, by number
    size_t fds_max;      //  entries in fds
    int *dirty;          //  fds whose want changed, for s_sync
    size_t ndirty;       //  how many
    size_t dirty_max;    //  allocated entries
    int64_t deadline;    //  curl's one-shot timer, mono ms; -1: none
};

//  What a RESULT echoes of its JOB.
typedef struct {
    const char *id;    //  the task id ("" when the JOB had none)
    size_t id_size;    //  its bytes
    int64_t attempt;   //  the JOB's attempt (0 when it had none)
    const char *kind;  //  the JOB's kind, or NULL
    size_t kind_size;  //  its bytes
    const char *lease; //  the JOB's lease, or NULL
    size_t lease_size; //  its bytes
} s_echo_t;

struct _s_call_t {
    wk_callout_t *owner;            //  the engine it runs in
    s_call_t *prev, *next;          //  in owner->calls while added, or in owner->spare
    bool added;                     //  added to the multi handle
    CURL *easy;                     //  the transfer; reused by the next call
    CURLU *url;                     //  the URL, parsed; reused by the next call
    size_t posted;                  //  bytes of request body curl copied
    struct curl_slist *headers;     //  request headers: nodes, or NULL
    char *lines;                    //  their text, one NUL-terminated line after another
    size_t lines_size;              //  bytes used
    size_t lines_room;              //  bytes allocated
    size_t nlines;                  //  lines in lines
    struct curl_slist *nodes;       //  the list's nodes, ours (never curl_slist_free_all)
    size_t nodes_max;               //  allocated nodes
    s_echo_t echo;                  //  echoed in the RESULT; its text is in echo_buf
    char *echo_buf;                 //  id, kind and lease, one after another
    size_t echo_room;               //  bytes allocated
    int64_t timeout;                //  seconds, for "timeout after Ns"
    int64_t started;                //  mono ms
    char *body;                     //  response body so far
    size_t body_size;               //  bytes in body
    size_t body_room;               //  bytes allocated
    size_t body_max;                //  maxBody
    bool body_cut;                  //  more arrived than body_max: transfer stopped
    wk_text_headers_t resp_headers; //  final response's headers, lower-case names
    size_t header_bytes;            //  bytes kept in resp_headers
    bool headers_done;              //  blank line seen: later lines are trailers
    char blocked[128];              //  "destination not allowed: ..." or ""
};

//  A JOB's fields, views into its frame; type 0 when absent.
typedef struct {
    aq_node_t id, attempt, url, method, headers, body, timeout, max_body, kind, lease;
} s_job_t;

//  --------------------------------------------------------------------------
//  Retry-After

//  Seconds a Retry-After value asks to wait (delta-seconds or an HTTP-date),
//  or -1 when value is absent or unreadable.
static int64_t s_retry_after (const char *value) {
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit ((unsigned char) *value)) {
        char *end;
        errno = 0;
        long long seconds = strtoll (value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end == '\0')
            return errno || seconds > INT32_MAX ? INT32_MAX : seconds;
    }
    time_t when = curl_getdate (value, NULL);
    if (when == -1)
        return -1;
    time_t now = time (NULL);
    return when > now ? (int64_t) (when - now) : 0;
}

//  --------------------------------------------------------------------------
//  Reading a JOB

//  Fills job from a JOB body; the last of repeated keys counts.
static void s_job_read (const aq_node_t *body, s_job_t *job) {
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"id", offsetof (s_job_t, id)},           {"attempt", offsetof (s_job_t, attempt)},
        {"url", offsetof (s_job_t, url)},         {"method", offsetof (s_job_t, method)},
        {"headers", offsetof (s_job_t, headers)}, {"body", offsetof (s_job_t, body)},
        {"timeout", offsetof (s_job_t, timeout)}, {"maxBody", offsetof (s_job_t, max_body)},
        {"kind", offsetof (s_job_t, kind)},       {"lease", offsetof (s_job_t, lease)}};
    memset (job, 0, sizeof *job);
    aq_iter_t it;
    aq_node_t key, value;
    aq_node_iter (body, &it);
    while (aq_iter_next (&it, &key, &value)) {
        if (key.type != AQ_NODE_STR)
            continue;
        for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
            if (key.count == strlen (fields[i].key) &&
                memcmp (key.data, fields[i].key, key.count) == 0) {
                *(aq_node_t *) ((char *) job + fields[i].offset) = value;
                break;
            }
    }
}

//  True when node is a string equal, ignoring case, to name.
static bool s_name_is (const aq_node_t *node, const char *name) {
    size_t size = strlen (name);
    return node->count == size && strncasecmp ((const char *) node->data, name, size) == 0;
}

//  What a RESULT echoes of job, borrowing its frame.
static s_echo_t s_echo_of (const s_job_t *job) {
    s_echo_t echo = {.id = ""};
    if (job->id.type == AQ_NODE_STR)
        echo.id = (const char *) job->id.data, echo.id_size = job->id.count;
    if (job->attempt.type == AQ_NODE_INT)
        echo.attempt = job->attempt.i;
    if (job->kind.type == AQ_NODE_STR)
        echo.kind = (const char *) job->kind.data, echo.kind_size = job->kind.count;
    if (job->lease.type == AQ_NODE_STR)
        echo.lease = (const char *) job->lease.data, echo.lease_size = job->lease.count;
    return echo;
}

//  --------------------------------------------------------------------------
//  Writing RESULTs

//  Starts a RESULT frame in self->out: the echoed fields and duration, then
//  room for more pairs the caller writes.
static aq_writer_t *s_result_begin (wk_callout_t *self, const s_echo_t *echo, int64_t duration,
                                    uint32_t more) {
    aq_writer_t *w = &self->out;
    self->frame_at = w->size;
    uint8_t header[AQ_PROTO_HEADER] = {AQ_PROTO_SIG0, AQ_PROTO_SIG1, AQ_PROTO_VERSION,
                                       AQ_CMD_RESULT};
    aq_write_raw (w, header, sizeof header);
    aq_write_map (w, 3 + (echo->kind != NULL) + (echo->lease != NULL) + more);
    aq_write_str (w, "id");
    aq_write_strn (w, echo->id, echo->id_size);
    aq_write_kv_int (w, "attempt", echo->attempt);
    if (echo->kind) {
        aq_write_str (w, "kind");
        aq_write_strn (w, echo->kind, echo->kind_size);
    }
    if (echo->lease) {
        aq_write_str (w, "lease");
        aq_write_strn (w, echo->lease, echo->lease_size);
    }
    aq_write_kv_int (w, "duration", duration);
    return w;
}

//  Queues the frame s_result_begin started. When memory ran out on the
//  way, every waiting RESULT is lost (the broker retries those tasks when
//  their leases expire); -1 then.
static int s_result_end (wk_callout_t *self) {
    if (self->count == self->frames_max) {
        size_t max = self->frames_max ? 2 * self->frames_max : 64;
        s_frame_t *frames = realloc (self->frames, max * sizeof *frames);
        if (!frames)
            self->out.err = -1;
        else {
            self->frames = frames;
            self->frames_max = max;
        }
    }
    if (self->out.err) {
        aq_writer_reset (&self->out);
        self->head = self->count = 0;
        return -1;
    }
    self->frames[self->count++] =
        (s_frame_t){.at = self->frame_at, .size = self->out.size - self->frame_at};
    return 0;
}

//  A RESULT of a call that did not run: error and, when permanent, permanent.
static int s_result_error (wk_callout_t *self, const s_echo_t *echo, int64_t duration,
                           const char *error, bool permanent) {
    aq_writer_t *w = s_result_begin (self, echo, duration, 1 + permanent);
    aq_write_kv_str (w, "error", error);
    if (permanent)
        aq_write_kv_bool (w, "permanent", true);
    return s_result_end (self);
}

//  --------------------------------------------------------------------------
//  curl callbacks

//  The entry of fd, the table grown as needed; NULL when out of memory.
static s_fd_t *s_fd (wk_callout_t *self, curl_socket_t fd) {
    if (fd < 0)
        return NULL;
    if ((size_t) fd >= self->fds_max) {
        size_t max = self->fds_max ? self->fds_max : 64;
        while (max <= (size_t) fd)
            max *= 2;
        s_fd_t *fds = realloc (self->fds, max * sizeof *fds);
        if (!fds)
            return NULL;
        for (size_t i = self->fds_max; i < max; i++)
            fds[i] = (s_fd_t){.have = S_NONE};
        self->fds = fds;
        self->fds_max = max;
    }
    return &self->fds[fd];
}

//  Brings fd's registration in the epoll set in line with what curl wants:
//  an idle socket of ours stays as it is. 0, or -1 when epoll refuses.
static int s_sync_fd (wk_callout_t *self, curl_socket_t fd) {
    s_fd_t *entry = &self->fds[fd];
    entry->dirty = false;
    if (entry->want == 0) {
        if (!entry->ours && entry->have != S_NONE) {
            epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL); //  may be closed: no matter
            entry->have = S_NONE;
        }
        return 0;
    }
    if (entry->want == entry->have && entry->ours)
        return 0; //  a socket of ours is in the set until s_close_cb
    struct epoll_event event = {.events = entry->want, .data.u64 = (uint64_t) fd};
    int rc =
        epoll_ctl (self->epoll, entry->have == S_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
    if (rc != 0 && (errno == EEXIST || errno == ENOENT))
        rc = epoll_ctl (self->epoll, errno == EEXIST ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
    entry->have = rc == 0 ? entry->want : S_NONE;
    return rc;
}

//  Syncs every fd whose want changed since the last time.
static void s_sync (wk_callout_t *self) {
    for (size_t i = 0; i < self->ndirty; i++)
        if (self->fds[self->dirty[i]].dirty)
            s_sync_fd (self, self->dirty[i]);
    self->ndirty = 0;
}

static int s_socket_cb (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    wk_callout_t *self = userp;
    s_fd_t *entry = s_fd (self, fd);
    if (!entry)
        return -1;
    entry->want = what == CURL_POLL_REMOVE ? 0
                                           : (uint8_t) ((what & CURL_POLL_IN ? EPOLLIN : 0) |
                                                        (what & CURL_POLL_OUT ? EPOLLOUT : 0));
    if (!entry->ours)
        return s_sync_fd (self, fd); //  at once: it may close without a word
    if (!entry->dirty) {
        if (self->ndirty == self->dirty_max) {
            size_t max = self->dirty_max ? 2 * self->dirty_max : 64;
            int *dirty = realloc (self->dirty, max * sizeof *dirty);
            if (!dirty)
                return s_sync_fd (self, fd);
            self->dirty = dirty;
            self->dirty_max = max;
        }
        self->dirty[self->ndirty++] = fd;
        entry->dirty = true;
    }
    return 0;
}

static int s_timer_cb (CURLM *multi, long timeout_ms, void *userp) {
    wk_callout_t *self = userp;
    self->deadline = timeout_ms < 0 ? -1 : aq_time_mono_ms () + timeout_ms;
    return 0;
}

//  curl wants a socket to connect to address: the SSRF guard.
static curl_socket_t s_open_cb (void *userp, curlsocktype purpose, struct curl_sockaddr *address) {
    s_call_t *call = userp;
    if (!call->owner->allow_private) {
        struct sockaddr_storage addr = {0};
        size_t size = address->addrlen < sizeof addr ? address->addrlen : sizeof addr;
        memcpy (&addr, &address->addr, size);
        const char *reason = wk_ssrf_reason ((struct sockaddr *) &addr, size);
        if (reason) {
            char text[WK_SSRF_TEXT];
            snprintf (call->blocked, sizeof call->blocked,
                      "destination not allowed: %s is a %s address",
                      wk_ssrf_format ((struct sockaddr *) &addr, size, text), reason);
            return CURL_SOCKET_BAD;
        }
    }
    curl_socket_t fd =
        socket (address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    s_fd_t *entry = fd == CURL_SOCKET_BAD ? NULL : s_fd (call->owner, fd);
    if (entry) //  a new socket is in no epoll set, whatever its number was before
        *entry = (s_fd_t){.have = S_NONE, .ours = true};
    else if (fd != CURL_SOCKET_BAD) {
        close (fd);
        fd = CURL_SOCKET_BAD;
    }
    return fd;
}

//  curl closes a socket s_open_cb opened: closing takes it out of the epoll
//  set.
static int s_close_cb (void *userp, curl_socket_t fd) {
    wk_callout_t *self = userp;
    if ((size_t) fd < self->fds_max)
        self->fds[fd] = (s_fd_t){.have = S_NONE, .dirty = self->fds[fd].dirty};
    return close (fd);
}

static size_t s_write_cb (char *data, size_t size, size_t nmemb, void *userp) {
    s_call_t *call = userp;
    size_t n = size * nmemb;
    size_t take = call->body_max - call->body_size;
    take = n < take ? n : take;
    if (take && call->body_size + take > call->body_room) {
        size_t room = call->body_room ? call->body_room * 2 : 4096;
        room = room < call->body_size + take ? call->body_size + take : room;
        room = room > call->body_max ? call->body_max : room;
        char *body = realloc (call->body, room);
        if (!body)
            return 0; //  fails the transfer: CURLE_WRITE_ERROR
        call->body = body;
        call->body_room = room;
    }
    if (take)
        memcpy (call->body + call->body_size, data, take);
    call->body_size += take;
    if (take < n)
        call->body_cut = true; //  and stop reading: the rest would be dropped
    return take;
}

static size_t s_header_cb (char *data, size_t size, size_t nitems, void *userp) {
    s_call_t *call = userp;
    size_t n = size * nitems, len = n;
    while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len >= 5 && memcmp (data, "HTTP/", 5) == 0) {
        //  A status line: a 1xx before the final response, or the final one
        wk_text_headers_clear (&call->resp_headers);
        call->header_bytes = 0;
        call->headers_done = false;
    } else if (len == 0)
        call->headers_done = true;
    else if (!call->headers_done && call->header_bytes + len <= S_HEADERS_MAX &&
             wk_text_add_header (&call->resp_headers, data, len) == 0)
        call->header_bytes += len; //  lines that are not headers are skipped
    return n;
}

//  --------------------------------------------------------------------------
//  A call

//  Frees a call and what it holds.
static void s_call_free (s_call_t *call) {
    if (call->easy)
        curl_easy_cleanup (call->easy);
    curl_url_cleanup (call->url);
    free (call->lines);
    free (call->nodes);
    wk_text_headers_release (&call->resp_headers);
    free (call->echo_buf);
    free (call->body);
    free (call);
}

//  A call for a new job: a spare one, or a new one; NULL when out of memory.
static s_call_t *s_call_new (wk_callout_t *self) {
    s_call_t *call = self->spare;
    if (call) {
        self->spare = call->next;
        self->nspare--;
        call->next = NULL;
        return call;
    }
    call = calloc (1, sizeof *call);
    if (call)
        call->owner = self;
    return call;
}

//  Takes the call out of the multi handle and keeps it for the next job
//  (or frees it when enough are kept).
static void s_call_destroy (s_call_t **call_p) {
    s_call_t *call = *call_p;
    if (!call)
        return;
    wk_callout_t *owner = call->owner;
    if (call->added) {
        curl_multi_remove_handle (owner->multi, call->easy);
        if (call->prev)
            call->prev->next = call->next;
        else
            owner->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
        owner->active--;
        call->added = false;
    }
    *call_p = NULL;
    if (owner->nspare >= owner->spare_max) {
        s_call_free (call);
        return;
    }
    if (call->easy && call->posted > S_KEEP_BODY)
        curl_easy_setopt (call->easy, CURLOPT_POSTFIELDS, NULL); //  frees curl's copy
    call->posted = 0;
    call->headers = NULL;
    call->lines_size = call->nlines = 0;
    if (call->body_room > S_KEEP_BODY) {
        free (call->body);
        call->body = NULL;
        call->body_room = 0;
    }
    call->body_size = 0;
    call->body_cut = false;
    wk_text_headers_clear (&call->resp_headers);
    call->header_bytes = 0;
    call->headers_done = false;
    call->blocked[0] = '\0';
    call->started = 0;
    call->prev = NULL;
    call->next = owner->spare;
    owner->spare = call;
    owner->nspare++;
}

//  Copies what the RESULT echoes of job into the call; 0 or -1.
static int s_call_echo (s_call_t *call, const s_job_t *job) {
    s_echo_t echo = s_echo_of (job);
    size_t need = echo.id_size + echo.kind_size + echo.lease_size + 1;
    if (need > call->echo_room) {
        char *buf = realloc (call->echo_buf, need);
        if (!buf)
            return -1;
        call->echo_buf = buf;
        call->echo_room = need;
    }
    char *at = call->echo_buf;
    call->echo = echo;
    memcpy (at, echo.id, echo.id_size);
    call->echo.id = at;
    at += echo.id_size;
    if (echo.kind) {
        memcpy (at, echo.kind, echo.kind_size);
        call->echo.kind = at;
        at += echo.kind_size;
    }
    if (echo.lease) {
        memcpy (at, echo.lease, echo.lease_size);
        call->echo.lease = at;
    }
    return 0;
}

//  Ends the call with an error RESULT; frees (keeps) the call.
static void s_call_fail (s_call_t **call_p, const char *error, bool permanent) {
    s_call_t *call = *call_p;
    int64_t duration = call->started ? aq_time_mono_ms () - call->started : 0;
    s_result_error (call->owner, &call->echo, duration, error, permanent);
    s_call_destroy (call_p);
}

//  Appends the request header line name, sep, value (name_size and
//  value_size bytes) to the call's lines; 0 or -1 when out of memory. The
//  lines are built into a list by s_link_lines, in buffers the call keeps
//  for the next: no allocation per line.
static int s_add_line (s_call_t *call, const char *name, size_t name_size, const char *sep,
                       const char *value, size_t value_size) {
    size_t sep_size = strlen (sep), size = name_size + sep_size + value_size + 1;
    if (call->lines_size + size > call->lines_room) {
        size_t room = call->lines_room ? call->lines_room : 512;
        while (room < call->lines_size + size)
            room *= 2;
        char *lines = realloc (call->lines, room);
        if (!lines)
            return -1;
        call->lines = lines;
        call->lines_room = room;
    }
    char *line = call->lines + call->lines_size;
    memcpy (line, name, name_size);
    memcpy (line + name_size, sep, sep_size);
    memcpy (line + name_size + sep_size, value, value_size);
    line[size - 1] = '\0';
    call->lines_size += size;
    call->nlines++;
    return 0;
}

//  Links the call's lines into call->headers (a curl_slist curl reads
//  while the call runs); 0 or -1 when out of memory.
static int s_link_lines (s_call_t *call) {
    if (call->nlines > call->nodes_max) {
        struct curl_slist *nodes = realloc (call->nodes, call->nlines * sizeof *nodes);
        if (!nodes)
            return -1;
        call->nodes = nodes;
        call->nodes_max = call->nlines;
    }
    char *line = call->lines;
    for (size_t i = 0; i < call->nlines; i++) {
        call->nodes[i].data = line;
        call->nodes[i].next = i + 1 < call->nlines ? &call->nodes[i + 1] : NULL;
        line += strlen (line) + 1;
    }
    call->headers = call->nlines ? call->nodes : NULL;
    return 0;
}

//  Parses url into the call's URL handle (made when first needed): true
//  when it is an http or https URL with a host. curl takes the parsed URL
//  from the handle (CURLOPT_CURLU) rather than parsing the text again.
static bool s_url_ok (s_call_t *call, const char *url) {
    if (!call->url && !(call->url = curl_url ()))
        return false;
    char *scheme = NULL, *host = NULL;
    bool ok = curl_url_set (call->url, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get (call->url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              (strcmp (scheme, "http") == 0 || strcmp (scheme, "https") == 0) &&
              curl_url_get (call->url, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host;
    curl_free (scheme);
    curl_free (host);
    return ok;
}

//  A new easy handle for call, with the options every call of it has; NULL
//  when out of memory. It stays with the call (and with the next calls
//  the call struct serves).
static CURL *s_easy_new (s_call_t *call) {
    CURL *easy = curl_easy_init ();
    if (!easy)
        return NULL;
    bool bad = false;
    bad |= curl_easy_setopt (easy, CURLOPT_PRIVATE, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_write_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_WRITEDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_header_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HEADERDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_OPENSOCKETFUNCTION, s_open_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_OPENSOCKETDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_CLOSESOCKETFUNCTION, s_close_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_CLOSESOCKETDATA, call->owner) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup (easy);
        return NULL;
    }
    return easy;
}

//  Sets the call up from a JOB. Returns NULL, or the RESULT error text and
//  whether it is permanent (the job can never succeed as it is).
static const char *s_call_setup (s_call_t *call, const s_job_t *job, bool *permanent) {
    *permanent = true;
    char url_stack[1024], *url = url_stack;
    const char *error = NULL;
    if (job->url.type != AQ_NODE_STR)
        return "invalid URL";
    if (job->url.count >= sizeof url_stack && !(url = malloc (job->url.count + 1)))
        return *permanent = false, "fetch failed: ENOMEM";
    if (!aq_node_strcpy (&job->url, url, job->url.count + 1) || !s_url_ok (call, url)) {
        error = "invalid URL";
        goto out;
    }
    const char *method = "POST";
    if (job->method.type == AQ_NODE_STR) {
        static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
        method = NULL;
        for (size_t i = 0; i < 4 && !method; i++)
            if (job->method.count == strlen (methods[i]) &&
                memcmp (job->method.data, methods[i], job->method.count) == 0)
                method = methods[i];
        if (!method) {
            error = "invalid method";
            goto out;
        }
    }
    bool get = strcmp (method, "GET") == 0;
    const aq_node_t *headers = &job->headers;
    if (headers->type && headers->type != AQ_NODE_MAP && headers->type != AQ_NODE_NIL) {
        error = "invalid headers";
        goto out;
    }
    bool has_agent = false, has_accept = false, has_expect = false, has_type = false;
    aq_iter_t it;
    aq_node_t name, value;
    if (headers->type == AQ_NODE_MAP) {
        aq_node_iter (headers, &it);
        while (aq_iter_next (&it, &name, &value)) {
            if (name.type != AQ_NODE_STR ||
                !wk_text_is_token ((const char *) name.data, name.count)) {
                error = "invalid header name";
                goto out;
            }
            if (value.type != AQ_NODE_STR ||
                !wk_text_is_value ((const char *) value.data, value.count)) {
                error = "invalid header value";
                goto out;
            }
            has_agent |= s_name_is (&name, "User-Agent");
            has_accept |= s_name_is (&name, "Accept");
            has_expect |= s_name_is (&name, "Expect");
            has_type |= s_name_is (&name, "Content-Type");
        }
    }
    if (!wk_text_is_value (call->echo.id, call->echo.id_size)) {
        error = "invalid task id";
        goto out;
    }
    const aq_node_t *body = &job->body;
    if (body->type && body->type != AQ_NODE_STR && body->type != AQ_NODE_NIL) {
        error = "invalid body";
        goto out;
    }
    bool send_body = !get && (body->type == AQ_NODE_STR || strcmp (method, "DELETE") != 0);

    //  The request headers: the user's as given, then ours
    *permanent = false;
    int rc = 0;
    if (headers->type == AQ_NODE_MAP) {
        aq_node_iter (headers, &it);
        while (aq_iter_next (&it, &name, &value)) {
            if (s_name_is (&name, "AsyncQueue-Task-Id") ||
                s_name_is (&name, "AsyncQueue-Attempt") || s_name_is (&name, "Content-Length") ||
                s_name_is (&name, "Transfer-Encoding"))
                continue; //  ours, or curl's to compute
            //  an empty value as "name;": curl's way to send a header with none
            rc |= s_add_line (call, (const char *) name.data, name.count, value.count ? ": " : ";",
                              (const char *) value.data, value.count);
        }
    }
    if (!has_agent)
        rc |= s_add_line (call, "User-Agent", 10, ": ", WK_USER_AGENT, strlen (WK_USER_AGENT));
    rc |= s_add_line (call, "AsyncQueue-Task-Id", 18, ": ", call->echo.id, call->echo.id_size);
    char number[24];
    int size = snprintf (number, sizeof number, "%lld", (long long) call->echo.attempt);
    rc |= s_add_line (call, "AsyncQueue-Attempt", 18, ": ", number, (size_t) size);
    if (!has_accept)
        rc |= s_add_line (call, "Accept", 6, ":", "", 0); //  no "Accept: */*" of curl's own
    if (!has_expect)
        rc |= s_add_line (call, "Expect", 6, ":", "", 0); //  no "Expect: 100-continue"
    if (send_body && !has_type)
        rc |= s_add_line (call, "Content-Type", 12, ":", "", 0); //  no form type of curl's own
    rc |= s_link_lines (call);
    if (!call->easy)
        call->easy = s_easy_new (call);
    if (rc || !call->easy) {
        error = "fetch failed: ENOMEM";
        goto out;
    }

    CURL *easy = call->easy;
    bool bad = false;
    //  What changes from call to call (s_easy_new set the rest): every
    //  one of these is set each time, so nothing of the last call remains
    bool custom = strcmp (method, "PUT") == 0 || strcmp (method, "DELETE") == 0;
    bad |= curl_easy_setopt (easy, CURLOPT_CURLU, call->url) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) call->timeout * 1000) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, custom ? method : NULL) != CURLE_OK;
    if (send_body) {
        //  POSTFIELDSIZE first, so COPYPOSTFIELDS copies that many bytes
        bool has = body->type == AQ_NODE_STR;
        curl_off_t size = has ? (curl_off_t) body->count : 0;
        call->posted = (size_t) size;
        bad |= curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, size) != CURLE_OK;
        bad |= curl_easy_setopt (easy, CURLOPT_COPYPOSTFIELDS,
                                 has ? (const char *) body->data : "") != CURLE_OK;
    } else
        bad |= curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    error = bad ? "fetch failed: ENOMEM" : NULL;
out:
    if (url != url_stack)
        free (url);
    return error;
}

//  The error text of a failed transfer; sets *permanent.
static void s_error_text (s_call_t *call, CURLcode code, char *text, size_t size, bool *permanent) {
    *permanent = false;
    long os_errno = 0;
    curl_easy_getinfo (call->easy, CURLINFO_OS_ERRNO, &os_errno);
    const char *errno_name = os_errno ? strerrorname_np ((int) os_errno) : NULL;
    if (code == CURLE_COULDNT_CONNECT && call->blocked[0]) {
        snprintf (text, size, "%s", call->blocked);
        *permanent = true;
    } else if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf (text, size, "timeout after %llds", (long long) call->timeout);
    else if (code == CURLE_COULDNT_RESOLVE_HOST)
        snprintf (text, size, "fetch failed: ENOTFOUND");
    else if (code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT) {
        snprintf (text, size, "invalid URL");
        *permanent = true;
    } else if (errno_name)
        snprintf (text, size, "fetch failed: %s", errno_name);
    else if (code == CURLE_GOT_NOTHING || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR)
        snprintf (text, size, "fetch failed: ECONNRESET");
    else
        snprintf (text, size, "fetch failed: %s", curl_easy_strerror (code));
}

//  Room for size bytes in the engine's scratch buffer; NULL when out of memory.
static char *s_scratch (wk_callout_t *self, size_t size) {
    size = size ? size : 1;
    if (size > self->scratch_room) {
        char *scratch = realloc (self->scratch, size);
        if (!scratch)
            return NULL;
        self->scratch = scratch;
        self->scratch_room = size;
    }
    return self->scratch;
}

//  The transfer ended with code: writes the RESULT and ends the call.
static void s_call_finish (s_call_t **call_p, CURLcode code) {
    s_call_t *call = *call_p;
    wk_callout_t *self = call->owner;
    if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && call->body_cut)) {
        char text[160];
        bool permanent;
        s_error_text (call, code, text, sizeof text, &permanent);
        s_call_fail (call_p, text, permanent);
        return;
    }
    long status = 0;
    curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
    bool cut = call->body_cut;
    char *body = s_scratch (self, wk_text_utf8_room (call->body_size, call->body_max));
    if (!body) {
        s_call_fail (call_p, "fetch failed: ENOMEM", false);
        return;
    }
    size_t body_size = wk_text_utf8 (call->body, call->body_size, call->body_max, &cut, body);
    size_t value_size;
    const char *value = wk_text_header (&call->resp_headers, "retry-after", &value_size);
    int64_t retry_after = -1;
    if (value) {
        char text[128];
        size_t size = value_size < sizeof text ? value_size : sizeof text - 1;
        memcpy (text, value, size);
        text[size] = '\0';
        retry_after = s_retry_after (text);
    }
    int64_t duration = call->started ? aq_time_mono_ms () - call->started : 0;
    aq_writer_t *w = s_result_begin (self, &call->echo, duration, 3 + cut + (retry_after >= 0));
    aq_write_kv_int (w, "statusCode", status);
    aq_write_str (w, "headers");
    aq_write_map (w, (uint32_t) call->resp_headers.count);
    size_t at = 0, name_size;
    const char *name;
    while (wk_text_header_next (&call->resp_headers, &at, &name, &name_size, &value, &value_size)) {
        aq_write_strn (w, name, name_size);
        aq_write_strn (w, value, value_size);
    }
    aq_write_str (w, "body");
    aq_write_strn (w, body, body_size);
    if (cut)
        aq_write_kv_bool (w, "bodyTruncated", true);
    if (retry_after >= 0)
        aq_write_kv_int (w, "retryAfter", retry_after);
    s_result_end (self);
    s_call_destroy (call_p);
}

//  --------------------------------------------------------------------------
//  The engine

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_rc; //  curl_global_init's outcome

static void s_curl_init (void) {
    s_curl_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

wk_callout_t *wk_callout_new (bool allow_private, int slots) {
    assert (slots > 0);
    pthread_once (&s_curl_once, s_curl_init);
    if (s_curl_rc != CURLE_OK)
        return NULL;
    wk_callout_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->allow_private = allow_private;
    self->deadline = -1;
    self->epoll = epoll_create1 (EPOLL_CLOEXEC);
    self->spare_max = (size_t) slots;
    aq_writer_init (&self->out);
    self->multi = curl_multi_init ();
    if (!self->multi || self->epoll < 0) {
        wk_callout_destroy (&self);
        return NULL;
    }
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    //  curl's own cache bound is 4 per transfer in the multi at the moment:
    //  whenever fewer calls are in flight it would close idle connections
    //  to the target that the next calls then open again. Bound it by the
    //  slots instead.
    long idle = slots < 100000 ? 4L * slots : 400000L;
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, idle);
    return self;
}

void wk_callout_destroy (wk_callout_t **self_p) {
    assert (self_p);
    wk_callout_t *self = *self_p;
    if (!self)
        return;
    self->spare_max = 0; //  calls ending now are freed
    while (self->calls) {
        s_call_t *call = self->calls;
        s_call_destroy (&call);
    }
    while (self->spare) {
        s_call_t *call = self->spare;
        self->spare = call->next;
        s_call_free (call);
    }
    if (self->multi)
        curl_multi_cleanup (self->multi); //  may still call s_socket_cb
    aq_writer_release (&self->out);
    free (self->frames);
    free (self->scratch);
    if (self->epoll >= 0)
        close (self->epoll);
    free (self->fds);
    free (self->dirty);
    free (self);
    *self_p = NULL;
}

int wk_callout_start (wk_callout_t *self, const aq_node_t *body) {
    assert (self);
    assert (body);
    s_job_t job;
    s_job_read (body, &job);
    s_call_t *call = s_call_new (self);
    if (!call || s_call_echo (call, &job) != 0) {
        s_echo_t echo = s_echo_of (&job);
        s_result_error (self, &echo, 0, "fetch failed: ENOMEM", false);
        if (call)
            s_call_destroy (&call);
        return -1;
    }
    int64_t timeout = job.timeout.type == AQ_NODE_INT ? job.timeout.i : 0;
    call->timeout = timeout > 0 ? (timeout < 86400 ? timeout : 86400) : S_DEFAULT_TIMEOUT;
    call->body_max = job.max_body.type == AQ_NODE_INT && job.max_body.i >= 0
                         ? (size_t) job.max_body.i
                         : S_DEFAULT_MAX_BODY;
    bool permanent;
    const char *error = s_call_setup (call, &job, &permanent);
    if (!error) {
        call->started = aq_time_mono_ms ();
        if (curl_multi_add_handle (self->multi, call->easy) == CURLM_OK) {
            call->added = true;
            call->prev = NULL;
            call->next = self->calls;
            if (self->calls)
                self->calls->prev = call;
            self->calls = call;
            self->active++;
            return 0;
        }
        error = "fetch failed: ENOMEM";
        permanent = false;
    }
    s_call_fail (&call, error, permanent);
    return -1;
}

int wk_callout_refuse (wk_callout_t *self, const aq_node_t *body, const char *error) {
    assert (self);
    assert (body && error);
    s_job_t job;
    s_job_read (body, &job);
    s_echo_t echo = s_echo_of (&job);
    aq_writer_t *w = s_result_begin (self, &echo, 0, 2);
    aq_write_kv_str (w, "error", error);
    aq_write_kv_bool (w, "refused", true);
    return s_result_end (self);
}

int wk_callout_watch (wk_callout_t *self, int fd, unsigned bits) {
    assert (self);
    assert (fd >= 0 && bits);
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = S_WATCHED | bits};
    return epoll_ctl (self->epoll, EPOLL_CTL_ADD, fd, &event);
}

void wk_callout_unwatch (wk_callout_t *self, int fd) {
    assert (self);
    epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL);
}

long wk_callout_timeout_ms (wk_callout_t *self) {
    assert (self);
    if (self->deadline < 0)
        return -1;
    int64_t left = self->deadline - aq_time_mono_ms ();
    return left > 0 ? (long) left : 0;
}

//  Ends the calls curl has finished.
static void s_collect (wk_callout_t *self) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode code = msg->data.result; //  msg dies with the handle
        char *private = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, &private);
        s_call_t *call = (s_call_t *) private;
        s_call_finish (&call, code);
    }
}

void wk_callout_timer (wk_callout_t *self) {
    assert (self);
    if (self->deadline >= 0 && aq_time_mono_ms () >= self->deadline) {
        int running;
        self->deadline = -1; //  one-shot: curl sets the next one
        curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    s_collect (self);
}

unsigned wk_callout_wait (wk_callout_t *self, long timeout_ms) {
    assert (self);
    struct epoll_event events[S_EVENTS_MAX];
    int timeout = timeout_ms > INT32_MAX ? INT32_MAX : (int) timeout_ms;
    s_sync (self);
    int n = epoll_wait (self->epoll, events, S_EVENTS_MAX, timeout);
    unsigned fired = 0;
    for (int i = 0; i < n; i++) {
        uint64_t data = events[i].data.u64;
        if (data & S_WATCHED) {
            fired |= (unsigned) data;
            continue;
        }
        curl_socket_t fd = (curl_socket_t) data;
        s_fd_t *entry = (size_t) fd < self->fds_max ? &self->fds[fd] : NULL;
        if (entry && entry->want == 0 && !entry->dirty) {
            //  An idle socket of ours (a peer closing it): out of the set
            //  until curl wants it again
            epoll_ctl (self->epoll, EPOLL_CTL_DEL, fd, NULL);
            entry->have = S_NONE;
            continue;
        }
        uint32_t ready = events[i].events;
        int running;
        curl_multi_socket_action (self->multi, fd,
                                  (ready & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                      (ready & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                                      (ready & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0),
                                  &running);
    }
    wk_callout_timer (self);
    return fired;
}

const uint8_t *wk_callout_result (wk_callout_t *self, size_t *size) {
    assert (self && size);
    if (self->head == self->count)
        return NULL;
    *size = self->frames[self->head].size;
    return self->out.data + self->frames[self->head].at;
}

void wk_callout_pop_result (wk_callout_t *self) {
    assert (self);
    assert (self->head < self->count);
    if (++self->head == self->count) {
        self->head = self->count = 0;
        aq_writer_reset (&self->out);
    } else if (self->head >= 64 && 2 * self->head >= self->count) {
        //  Half are gone: move the rest to the front
        size_t from = self->frames[self->head].at;
        memmove (self->out.data, self->out.data + from, self->out.size - from);
        self->out.size -= from;
        self->count -= self->head;
        memmove (self->frames, self->frames + self->head, self->count * sizeof *self->frames);
        self->head = 0;
        for (size_t i = 0; i < self->count; i++)
            self->frames[i].at -= from;
    }
}

size_t wk_callout_results (wk_callout_t *self) {
    assert (self);
    return self->count - self->head;
}

size_t wk_callout_active (wk_callout_t *self) {
    assert (self);
    return self->active;
}

//  --------------------------------------------------------------------------
//  Selftest: calls to a small HTTP/1.1 server in this process (tests/rig_http)

#include "../tests/rig_http.h"
#include "aq_codec.h"

static json_t *s_job (const char *id, const char *method, const char *url, int timeout,
                      int max_body) {
    json_t *job =
        json_pack ("{s:s, s:i, s:s, s:s, s:{}, s:i, s:i}", "id", id, "attempt", 1, "url", url,
                   "method", method, "headers", "timeout", timeout, "maxBody", max_body);
    assert (job);
    return job;
}

//  The oldest RESULT as a JSON body, taken from the engine; NULL if none.
static json_t *s_take (wk_callout_t *callout) {
    size_t size;
    const uint8_t *frame = wk_callout_result (callout, &size);
    if (!frame)
        return NULL;
    int cmd;
    json_t *body = NULL;
    assert (aq_codec_decode (frame, size, &cmd, &body) == 0 && cmd == AQ_CMD_RESULT);
    wk_callout_pop_result (callout);
    return body;
}

//  Runs the engine until want results are in or limit_ms passes; returns
//  them in the order they came.
static json_t *s_run (wk_callout_t *callout, size_t want, int limit_ms) {
    json_t *results = json_array ();
    int64_t end = aq_time_mono_ms () + limit_ms;
    while (json_array_size (results) < want && aq_time_mono_ms () < end) {
        long timeout = wk_callout_timeout_ms (callout);
        assert (wk_callout_wait (callout, timeout < 0 || timeout > 100 ? 100 : timeout) == 0);
        json_t *result;
        while ((result = s_take (callout)))
            json_array_append_new (results, result);
    }
    return results;
}

//  Starts job (a JSON body, taken) as it would come in a JOB frame;
//  returns what wk_callout_start does.
static int s_start (wk_callout_t *callout, json_t *job) {
    size_t size;
    uint8_t *frame = aq_codec_encode (AQ_CMD_JOB, job, &size);
    assert (frame);
    int cmd;
    aq_node_t body;
    assert (aq_msg_frame (frame, size, &cmd, &body) == 0 && cmd == AQ_CMD_JOB);
    int rc = wk_callout_start (callout, &body);
    free (frame);
    json_decref (job);
    return rc;
}

//  Starts job (taking it) and returns its result.
static json_t *s_call (wk_callout_t *callout, json_t *job) {
    s_start (callout, job);
    json_t *results = s_run (callout, 1, 10000);
    assert (json_array_size (results) == 1);
    json_t *result = json_incref (json_array_get (results, 0));
    json_decref (results);
    return result;
}

static const char *s_str (const json_t *object, const char *key) {
    return json_string_value (json_object_get (object, key));
}

static json_int_t s_int (const json_t *object, const char *key) {
    return json_integer_value (json_object_get (object, key));
}

static bool s_streq (const char *a, const char *b) {
    return a && b && strcmp (a, b) == 0;
}

static void s_expect_error (wk_callout_t *callout, json_t *job, const char *error, bool permanent) {
    json_t *result = s_call (callout, job);
    assert (s_streq (s_str (result, "error"), error));
    assert (json_is_true (json_object_get (result, "permanent")) == permanent);
    assert (!json_object_get (result, "statusCode"));
    json_decref (result);
}

//  The same job for several hosts: each refused as a loopback address.
static void s_expect_refused (wk_callout_t *callout, rig_http_t *server, bool verbose) {
    const char *hosts[] = {"127.0.0.1",          "127.1",     "2130706433", "0x7f.1",
                           "[::ffff:127.0.0.1]", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        char url[128];
        snprintf (url, sizeof url, "http://%s:%d/echo/ssrf", hosts[i], rig_http_port (server));
        json_t *result = s_call (callout, s_job ("s", "GET", url, 5, 100));
        const char *error = s_str (result, "error");
        if (verbose)
            printf ("  %-40s %s\n", url, error);
        assert (error && strncmp (error, "destination not allowed: ", 25) == 0);
        assert (strstr (error, " is a loopback address"));
        assert (json_is_true (json_object_get (result, "permanent")));
        json_decref (result);
    }
}

void wk_callout_test (bool verbose) {
    rig_http_t *server = rig_http_new ();
    wk_callout_t *callout = wk_callout_new (true, 8);
    assert (callout);
    char url[128], base[64];
    snprintf (base, sizeof base, "http://127.0.0.1:%d", rig_http_port (server));
    assert (!s_take (callout) && wk_callout_results (callout) == 0);

    //  Method, user headers and body delivered; ours added, curl's removed
    json_t *job = s_job ("t1", "POST", rig_http_url (server, "/echo/post"), 5, 1000);
    json_object_set_new (job, "attempt", json_integer (2));
    json_object_set_new (job, "body", json_string ("{\"a\":1}"));
    json_object_set_new (job, "headers",
                         json_pack ("{s:s, s:s, s:s, s:s}", "X-Custom", "hello", "Content-Type",
                                    "application/json", "X-Empty", "", "AsyncQueue-Task-Id",
                                    "spoofed"));
    json_object_set_new (job, "kind", json_string ("poll"));
    json_object_set_new (job, "lease", json_string ("0123456789abcdef0123456789abcdef"));
    assert (s_start (callout, job) == 0);
    assert (wk_callout_active (callout) == 1);
    json_t *results = s_run (callout, 1, 5000);
    assert (wk_callout_active (callout) == 0);
    json_t *result = json_array_get (results, 0);
    assert (s_streq (s_str (result, "id"), "t1") && s_int (result, "attempt") == 2);
    assert (s_streq (s_str (result, "kind"), "poll"));
    assert (s_streq (s_str (result, "lease"), "0123456789abcdef0123456789abcdef"));
    assert (json_object_size (result) ==
            8); //  id attempt kind lease duration statusCode headers body
    assert (s_int (result, "statusCode") == 200);
    assert (s_streq (s_str (result, "body"), "hello"));
    assert (s_streq (s_str (json_object_get (result, "headers"), "x-reply"), "yes"));
    assert (s_streq (s_str (json_object_get (result, "headers"), "content-type"), "text/plain"));
    assert (json_is_integer (json_object_get (result, "duration")));
    assert (!json_object_get (result, "bodyTruncated") && !json_object_get (result, "error"));
    assert (!json_object_get (result, "retryAfter"));
    json_decref (results);
    char *request = rig_http_request (server, "/echo/post");
    assert (request);
    if (verbose)
        printf ("%s\n", request);
    assert (strncmp (request, "POST /echo/post HTTP/1.1\r\n", 26) == 0);
    assert (strstr (request, "\r\nX-Custom: hello\r\n"));
    assert (strstr (request, "\r\nX-Empty:\r\n"));
    assert (strstr (request, "\r\nContent-Type: application/json\r\n"));
    assert (strstr (request, "\r\nUser-Agent: asyncqueue/0.1\r\n"));
    assert (strstr (request, "\r\nAsyncQueue-Task-Id: t1\r\n"));
    assert (strstr (request, "\r\nAsyncQueue-Attempt: 2\r\n"));
    assert (strstr (request, "\r\nContent-Length: 7\r\n"));
    assert (!strstr (request, "spoofed") && !strstr (request, "Expect:"));
    assert (!strstr (request, "Accept:") && !strstr (request, "urlencoded"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n{\"a\":1}"));
    free (request);

    //  GET sends no body; a user's User-Agent replaces ours
    job = s_job ("t2", "GET", rig_http_url (server, "/echo/get"), 5, 1000);
    json_object_set_new (job, "body", json_string ("not sent"));
    json_object_set_new (job, "headers", json_pack ("{s:s}", "user-agent", "custom/1"));
    json_decref (s_call (callout, job));
    request = rig_http_request (server, "/echo/get");
    assert (request && strncmp (request, "GET /echo/get HTTP/1.1\r\n", 24) == 0);
    assert (!strstr (request, "Content-Length") && !strstr (request, "Content-Type"));
    assert (strstr (request, "\r\nuser-agent: custom/1\r\n") && !strstr (request, "asyncqueue/"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n"));
    free (request);

    //  PUT and DELETE with a body, DELETE without, POST without
    const char *methods[][3] = {{"PUT", "/echo/put", "p"},
                                {"DELETE", "/echo/delete", "d"},
                                {"DELETE", "/echo/delete-nobody", NULL},
                                {"POST", "/echo/post-nobody", NULL}};
    for (size_t i = 0; i < 4; i++) {
        job = s_job ("t3", methods[i][0], rig_http_url (server, methods[i][1]), 5, 1000);
        if (methods[i][2])
            json_object_set_new (job, "body", json_string (methods[i][2]));
        result = s_call (callout, job);
        assert (s_int (result, "statusCode") == 200);
        json_decref (result);
        request = rig_http_request (server, methods[i][1]);
        assert (request && strncmp (request, methods[i][0], strlen (methods[i][0])) == 0);
        const char *body = strstr (request, "\r\n\r\n") + 4;
        assert (strcmp (body, methods[i][2] ? methods[i][2] : "") == 0);
        assert (!strstr (request, "Content-Type"));
        bool length = strstr (request, "Content-Length") != NULL;
        assert (length == (methods[i][2] || strcmp (methods[i][0], "POST") == 0));
        free (request);
    }

    //  A call struct serves the next call: a large body sent before leaves
    //  nothing behind (one spare call here, so the same one each time)
    wk_callout_t *single = wk_callout_new (true, 1);
    char *big = malloc (100001);
    memset (big, 'b', 100000);
    big[100000] = '\0';
    job = s_job ("t3b", "POST", rig_http_url (server, "/echo/big-post"), 5, 1000);
    json_object_set_new (job, "body", json_string (big));
    free (big);
    result = s_call (single, job);
    assert (s_int (result, "statusCode") == 200);
    json_decref (result);
    request = rig_http_request (server, "/echo/big-post");
    assert (request && strstr (request, "\r\nContent-Length: 100000\r\n"));
    free (request);
    job = s_job ("t3c", "GET", rig_http_url (server, "/echo/after-big"), 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "X-Only", "here"));
    result = s_call (single, job);
    assert (s_int (result, "statusCode") == 200);
    json_decref (result);
    request = rig_http_request (server, "/echo/after-big");
    assert (request && strncmp (request, "GET /echo/after-big HTTP/1.1\r\n", 30) == 0);
    assert (!strstr (request, "Content-Length") && strstr (request, "\r\nX-Only: here\r\n"));
    assert (s_streq (strstr (request, "\r\n\r\n"), "\r\n\r\n"));
    free (request);
    job = s_job ("t3d", "DELETE", rig_http_url (server, "/echo/delete-after"), 5, 1000);
    result = s_call (single, job);
    json_decref (result);
    request = rig_http_request (server, "/echo/delete-after");
    assert (request && strncmp (request, "DELETE /echo/delete-after", 25) == 0);
    assert (!strstr (request, "X-Only") && !strstr (request, "Content-Length"));
    free (request);
    wk_callout_destroy (&single);

    //  Any status is a result: redirects are not followed
    result = s_call (callout, s_job ("t4", "GET", rig_http_url (server, "/status/302"), 5, 1000));
    assert (s_int (result, "statusCode") == 302);
    assert (s_streq (s_str (json_object_get (result, "headers"), "location"), "/echo/followed"));
    assert (!rig_http_request (server, "/echo/followed"));
    json_decref (result);
    result = s_call (callout, s_job ("t5", "POST", rig_http_url (server, "/status/404"), 5, 1000));
    assert (s_int (result, "statusCode") == 404 && !json_object_get (result, "error"));
    json_decref (result);

    //  Retry-After as delta-seconds and as an HTTP-date
    result = s_call (callout, s_job ("t6", "POST", rig_http_url (server, "/status/503"), 5, 1000));
    assert (s_int (result, "statusCode") == 503 && s_int (result, "retryAfter") == 7);
    json_decref (result);
    result = s_call (callout, s_job ("t7", "POST", rig_http_url (server, "/date"), 5, 1000));
    json_int_t retry_after = s_int (result, "retryAfter");
    assert (s_int (result, "statusCode") == 503 && retry_after >= 117 && retry_after <= 121);
    json_decref (result);
    assert (s_retry_after ("0") == 0 && s_retry_after (" 120 ") == 120);
    assert (s_retry_after ("Sun, 06 Nov 1994 08:49:37 GMT") == 0); //  in the past
    assert (s_retry_after ("soon") == -1 && s_retry_after (NULL) == -1);
    assert (s_retry_after ("99999999999") == INT32_MAX);

    //  The final response's headers only: lower-case names, repeats joined
    result = s_call (callout, s_job ("t8", "GET", rig_http_url (server, "/headers"), 5, 1000));
    json_t *headers = json_object_get (result, "headers");
    if (verbose)
        json_dumpf (headers, stdout, JSON_INDENT (2)), printf ("\n");
    assert (s_int (result, "statusCode") == 200);
    assert (s_streq (s_str (headers, "set-cookie"), "a=1, b=2"));
    assert (s_streq (s_str (headers, "x-mixed"), "spaced value"));
    assert (!json_object_get (headers, "link") && !json_object_get (headers, "Set-Cookie"));
    json_decref (result);

    //  The body is capped at maxBody and made valid UTF-8
    result = s_call (callout, s_job ("t9", "GET", rig_http_url (server, "/big"), 5, 1000));
    assert (s_int (result, "statusCode") == 200 && strlen (s_str (result, "body")) == 1000);
    assert (json_is_true (json_object_get (result, "bodyTruncated")));
    json_decref (result);
    result = s_call (callout, s_job ("t10", "GET", rig_http_url (server, "/big"), 5, 200000));
    assert (strlen (s_str (result, "body")) == 100000 &&
            !json_object_get (result, "bodyTruncated"));
    json_decref (result);
    result = s_call (callout, s_job ("t11", "GET", rig_http_url (server, "/utf8"), 5, 1000));
    assert (s_streq (s_str (result, "body"),
                     "ok\xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD"));
    json_decref (result);
    result = s_call (callout, s_job ("t12", "GET", rig_http_url (server, "/euro"), 5, 4));
    assert (s_streq (s_str (result, "body"), "\xe2\x82\xac"));
    assert (json_is_true (json_object_get (result, "bodyTruncated")));
    json_decref (result);
    result = s_call (callout, s_job ("t13", "GET", rig_http_url (server, "/euro"), 5, 9));
    assert (strlen (s_str (result, "body")) == 9 && !json_object_get (result, "bodyTruncated"));
    json_decref (result);

    //  Many in flight: a slow call does not hold up a fast one; timeouts
    s_start (callout, s_job ("slow", "GET", rig_http_url (server, "/sleep/1500"), 5, 1000));
    s_start (callout, s_job ("hang", "GET", rig_http_url (server, "/sleep/5000"), 1, 1000));
    s_start (callout, s_job ("fast", "GET", rig_http_url (server, "/echo/fast"), 5, 1000));
    assert (wk_callout_active (callout) == 3);
    results = s_run (callout, 3, 5000);
    assert (json_array_size (results) == 3);
    json_t *fast = json_array_get (results, 0), *hang = json_array_get (results, 1),
           *slow = json_array_get (results, 2);
    if (verbose)
        json_dumpf (results, stdout, JSON_COMPACT), printf ("\n");
    assert (s_streq (s_str (fast, "id"), "fast") && s_int (fast, "duration") < 500);
    assert (s_streq (s_str (hang, "id"), "hang"));
    assert (s_streq (s_str (hang, "error"), "timeout after 1s"));
    assert (!json_object_get (hang, "permanent") && s_int (hang, "duration") >= 900);
    assert (s_streq (s_str (slow, "id"), "slow") && s_streq (s_str (slow, "body"), "slept"));
    assert (s_int (slow, "duration") >= 1400);
    json_decref (results);

    //  Connection refused; DNS failure
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", rig_http_free_port ());
    s_expect_error (callout, s_job ("t14", "POST", url, 5, 1000), "fetch failed: ECONNREFUSED",
                    false);
    s_expect_error (callout, s_job ("t15", "POST", "http://nonexistent.invalid/", 5, 1000),
                    "fetch failed: ENOTFOUND", false);

    //  Jobs that can never run fail at once, permanently
    const char *bad_urls[] = {"ftp://127.0.0.1/x", "file:///etc/passwd",  "not a url",
                              "http://",           "gopher://127.0.0.1/", "http://exa mple.com/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        job = s_job ("t16", "GET", bad_urls[i], 5, 1000);
        assert (s_start (callout, job) == -1);
        assert (wk_callout_active (callout) == 0 && wk_callout_results (callout) == 1);
        result = s_take (callout);
        assert (s_streq (s_str (result, "error"), "invalid URL"));
        assert (json_is_true (json_object_get (result, "permanent")));
        assert (s_streq (s_str (result, "id"), "t16") && s_int (result, "duration") == 0);
        assert (!json_object_get (result, "kind") && !json_object_get (result, "lease"));
        json_decref (result);
    }

    //  A refused JOB: its echoed fields, error and refused, and nothing else
    job = s_job ("t16r", "GET", base, 5, 1000);
    json_object_set_new (job, "attempt", json_integer (4));
    json_object_set_new (job, "lease", json_string ("feed"));
    json_object_set_new (job, "kind", json_integer (7)); //  not a string: not echoed
    size_t size;
    uint8_t *frame = aq_codec_encode (AQ_CMD_JOB, job, &size);
    int cmd;
    aq_node_t node;
    assert (aq_msg_frame (frame, size, &cmd, &node) == 0);
    assert (wk_callout_refuse (callout, &node, "worker over capacity") == 0);
    free (frame);
    json_decref (job);
    result = s_take (callout);
    assert (s_streq (s_str (result, "id"), "t16r") && s_int (result, "attempt") == 4);
    assert (s_streq (s_str (result, "error"), "worker over capacity"));
    assert (s_streq (s_str (result, "lease"), "feed") && !json_object_get (result, "kind"));
    assert (json_is_true (json_object_get (result, "refused")) && s_int (result, "duration") == 0);
    assert (json_object_size (result) == 6 && wk_callout_active (callout) == 0);
    json_decref (result);

    //  Many RESULTs waiting: taken oldest first, the buffer moved up as
    //  they go
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf (id, sizeof id, "q%d", i);
        assert (s_start (callout, s_job (id, "PATCH", base, 5, 1000)) == -1);
        if (i % 3 == 2) {
            snprintf (id, sizeof id, "q%d", i / 3);
            result = s_take (callout);
            assert (s_streq (s_str (result, "id"), id));
            json_decref (result);
        }
    }
    assert (wk_callout_results (callout) == 200);
    for (int i = 100; i < 300; i++) {
        char id[16];
        snprintf (id, sizeof id, "q%d", i);
        result = s_take (callout);
        assert (s_streq (s_str (result, "id"), id) &&
                s_streq (s_str (result, "error"), "invalid method"));
        json_decref (result);
    }
    assert (!s_take (callout));
    job = s_job ("t17", "GET", base, 5, 1000);
    json_object_del (job, "url");
    s_expect_error (callout, job, "invalid URL", true);
    s_expect_error (callout, s_job ("t18", "PATCH", base, 5, 1000), "invalid method", true);
    job = s_job ("t19", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "X-Bad", "a\r\nInjected: 1"));
    s_expect_error (callout, job, "invalid header value", true);
    job = s_job ("t20", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s#}", "X-Nul", "a\0b", (int) 3));
    s_expect_error (callout, job, "invalid header value", true);
    job = s_job ("t21", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:s}", "Bad Name", "x"));
    s_expect_error (callout, job, "invalid header name", true);
    job = s_job ("t22", "GET", base, 5, 1000);
    json_object_set_new (job, "headers", json_pack ("{s:i}", "X-Number", 1));
    s_expect_error (callout, job, "invalid header value", true);

    //  Calls in flight when the engine goes are dropped without a result
    s_start (callout, s_job ("t23", "GET", rig_http_url (server, "/sleep/5000"), 5, 1000));
    results = s_run (callout, 1, 200);
    assert (json_array_size (results) == 0 && wk_callout_active (callout) == 1);
    json_decref (results);
    wk_callout_destroy (&callout);
    assert (callout == NULL);
    wk_callout_destroy (&callout);

    //  The SSRF guard: every spelling of loopback is refused, nothing sent
    callout = wk_callout_new (false, 8);
    result = s_call (callout, s_job ("t24", "GET", rig_http_url (server, "/echo/ssrf"), 5, 1000));
    assert (s_streq (s_str (result, "error"),
                     "destination not allowed: 127.0.0.1 is a loopback address"));
    json_decref (result);
    s_expect_refused (callout, server, verbose);
    assert (!rig_http_request (server, "/echo/ssrf"));
    wk_callout_destroy (&callout);
    rig_http_destroy (&server);
}
