/*  callout.c - the outgoing HTTP calls: one curl multi, many in flight

    The only file that includes <curl/curl.h>. Each call is an easy handle in
    one multi handle driven by curl_multi_socket_action: curl says which fds
    to watch (s_socket_cb, into poller.c's epoll set, which follows them
    lazily) and when to wake (s_timer_cb). The worker adds its own fds
    (its ZeroMQ sockets') to the same set and waits on it with
    wk_callout_wait: one epoll_wait per turn sees everything, and only what
    is ready is looked at. The connection and DNS caches live in the multi
    handle, so calls to the same target reuse connections.

    A JOB is read where it lies in its frame (job.c) and a RESULT is
    written as a whole frame, ready to send, into one buffer of RESULTs
    (results.c); an ended call is kept, with its easy handle and buffers,
    for the next: the options every call has are set once per easy handle
    (s_easy_new), the ones that differ on every call (s_call_setup).

    The SSRF guard sits in s_open_cb, where curl asks for a socket for the
    address it is about to connect to: whatever the URL spelled, that is
    where the call would go. What the text of a call may be (header names
    and values, a RESULT's headers and body) is text.c's.
*/
#include "callout.h"
#include "aq_time.h"
#include "job.h"
#include "poller.h"
#include "results.h"
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
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#define S_DEFAULT_TIMEOUT  30          //  seconds, when a JOB has none
#define S_DEFAULT_MAX_BODY (64 * 1024) //  bytes, when a JOB has none
#define S_HEADERS_MAX      (64 * 1024) //  response header bytes kept per call
#define S_KEEP_BODY        (64 * 1024) //  body room an ended call keeps for the next

typedef struct _s_call_t s_call_t;

struct _wk_callout_t {
    CURLM *multi;         //  every call in flight
    bool allow_private;   //  SSRF guard lifted
    s_call_t *calls;      //  calls in flight (added to multi), a list
    size_t active;        //  their number
    s_call_t *spare;      //  ended calls kept for the next, a list
    size_t nspare;        //  their number
    size_t spare_max;     //  how many are kept: one per slot
    wk_results_t results; //  RESULT frames waiting to be taken
    char *scratch;        //  room for a body made valid UTF-8
    size_t scratch_room;  // bytes allocated
    wk_poller_t *poller;  //  curl's sockets and the watched fds
    int64_t deadline;     //  curl's one-shot timer, mono ms; -1: none
};

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
    wk_echo_t echo;                 //  echoed in the RESULT; its text is in echo_buf
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

//  --------------------------------------------------------------------------
//  Retry-After

int64_t wk_callout_retry_after (const char *value) {
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
//  A JOB's headers

//  True when node is a string equal, ignoring case, to name.
static bool s_name_is (const aq_node_t *node, const char *name) {
    size_t size = strlen (name);
    return node->count == size && strncasecmp ((const char *) node->data, name, size) == 0;
}

//  --------------------------------------------------------------------------
//  curl callbacks

static int s_socket_cb (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    wk_callout_t *self = userp;
    return wk_poller_want (self->poller, fd,
                           what == CURL_POLL_REMOVE
                               ? 0
                               : (what & CURL_POLL_IN ? WK_POLLER_IN : 0) |
                                     (what & CURL_POLL_OUT ? WK_POLLER_OUT : 0));
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
    if (fd != CURL_SOCKET_BAD && wk_poller_opened (call->owner->poller, fd) != 0) {
        close (fd);
        fd = CURL_SOCKET_BAD;
    }
    return fd;
}

//  curl closes a socket s_open_cb opened: closing takes it out of the epoll
//  set.
static int s_close_cb (void *userp, curl_socket_t fd) {
    wk_callout_t *self = userp;
    wk_poller_closed (self->poller, fd);
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
static int s_call_echo (s_call_t *call, const wk_job_t *job) {
    wk_echo_t echo = wk_job_echo (job);
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
    wk_results_error (&call->owner->results, &call->echo, duration, error, permanent);
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
static const char *s_call_setup (s_call_t *call, const wk_job_t *job, bool *permanent) {
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
        retry_after = wk_callout_retry_after (text);
    }
    int64_t duration = call->started ? aq_time_mono_ms () - call->started : 0;
    aq_writer_t *w =
        wk_results_begin (&self->results, &call->echo, duration, 3 + cut + (retry_after >= 0));
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
    wk_results_end (&self->results);
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
    self->poller = wk_poller_new ();
    self->spare_max = (size_t) slots;
    wk_results_init (&self->results);
    self->multi = curl_multi_init ();
    if (!self->multi || !self->poller) {
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
    wk_results_release (&self->results);
    free (self->scratch);
    wk_poller_destroy (&self->poller);
    free (self);
    *self_p = NULL;
}

int wk_callout_start (wk_callout_t *self, const aq_node_t *body) {
    assert (self);
    assert (body);
    wk_job_t job;
    wk_job_read (body, &job);
    s_call_t *call = s_call_new (self);
    if (!call || s_call_echo (call, &job) != 0) {
        wk_echo_t echo = wk_job_echo (&job);
        wk_results_error (&self->results, &echo, 0, "fetch failed: ENOMEM", false);
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
    wk_job_t job;
    wk_job_read (body, &job);
    wk_echo_t echo = wk_job_echo (&job);
    aq_writer_t *w = wk_results_begin (&self->results, &echo, 0, 2);
    aq_write_kv_str (w, "error", error);
    aq_write_kv_bool (w, "refused", true);
    return wk_results_end (&self->results);
}

int wk_callout_watch (wk_callout_t *self, int fd, unsigned bits) {
    assert (self);
    return wk_poller_watch (self->poller, fd, bits);
}

void wk_callout_unwatch (wk_callout_t *self, int fd) {
    assert (self);
    wk_poller_unwatch (self->poller, fd);
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

//  A socket of a call is ready (wk_poller_fn).
static void s_ready (void *arg, int fd, unsigned events) {
    wk_callout_t *self = arg;
    int running;
    curl_multi_socket_action (self->multi, fd,
                              (events & WK_POLLER_IN ? CURL_CSELECT_IN : 0) |
                                  (events & WK_POLLER_OUT ? CURL_CSELECT_OUT : 0) |
                                  (events & WK_POLLER_ERR ? CURL_CSELECT_ERR : 0),
                              &running);
}

unsigned wk_callout_wait (wk_callout_t *self, long timeout_ms) {
    assert (self);
    unsigned fired = wk_poller_wait (self->poller, timeout_ms, s_ready, self);
    wk_callout_timer (self);
    return fired;
}

const uint8_t *wk_callout_result (wk_callout_t *self, size_t *size) {
    assert (self && size);
    return wk_results_get (&self->results, 0, size);
}

void wk_callout_pop_result (wk_callout_t *self) {
    assert (self);
    wk_results_pop (&self->results);
}

size_t wk_callout_results (wk_callout_t *self) {
    assert (self);
    return wk_results_size (&self->results);
}

size_t wk_callout_active (wk_callout_t *self) {
    assert (self);
    return self->active;
}
