/*  callout.c - the outgoing HTTP calls: one curl multi, many in flight

    The only file that includes <curl/curl.h>. Each call is an easy handle in
    one multi handle driven by curl_multi_socket_action: curl says which fds
    to watch (s_socket_cb) and when to wake (s_timer_cb), the worker polls
    them along with its ZeroMQ socket. The connection and DNS caches live in
    the multi handle, so calls to the same target reuse connections.

    The SSRF guard sits in s_open_cb, where curl asks for a socket for the
    address it is about to connect to: whatever the URL spelled, that is
    where the call would go. What the text of a call may be (header names
    and values, a RESULT's headers and body) is text.c's.
*/
#include "callout.h"
#include "aq_time.h"
#include "ssrf.h"
#include "text.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define S_DEFAULT_TIMEOUT  30          //  seconds, when a JOB has none
#define S_DEFAULT_MAX_BODY (64 * 1024) //  bytes, when a JOB has none
#define S_HEADERS_MAX      (64 * 1024) //  response header bytes kept per call

typedef struct {
    curl_socket_t fd; //  a socket curl uses
    short events;     //  ZMQ_POLLIN | ZMQ_POLLOUT it waits for
} s_sock_t;

typedef struct _s_call_t s_call_t;

struct _wk_callout_t {
    CURLM *multi;       //  every call in flight
    bool allow_private; //  SSRF guard lifted
    s_call_t *calls;    //  calls in flight (added to multi), a list
    size_t active;      //  their number
    json_t *results;    //  finished RESULT bodies, oldest first
    s_sock_t *socks;    //  curl's sockets
    size_t nsocks;      //  used entries in socks
    size_t socks_max;   //  allocated entries
    int64_t deadline;   //  curl's one-shot timer, mono ms; -1: none
    CURL **idle;        //  easy handles of ended calls, reset, for the next
    size_t nidle;       //  how many
    size_t idle_max;    //  room: one per slot
};

struct _s_call_t {
    wk_callout_t *owner;        //  the engine it runs in
    s_call_t *prev, *next;      //  in owner->calls while added to multi
    CURL *easy;                 //  the transfer
    struct curl_slist *headers; //  request headers
    json_t *result;             //  RESULT body being built
    int64_t timeout;            //  seconds, for "timeout after Ns"
    int64_t started;            //  mono ms
    char *body;                 //  response body so far
    size_t body_size;           //  bytes in body
    size_t body_room;           //  bytes allocated
    size_t body_max;            //  maxBody
    bool body_cut;              //  more arrived than body_max: transfer stopped
    json_t *resp_headers;       //  final response's headers, lower-case names
    size_t header_bytes;        //  bytes kept in resp_headers
    bool headers_done;          //  blank line seen: later lines are trailers
    char blocked[128];          //  "destination not allowed: ..." or ""
};

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
//  curl callbacks

static int s_socket_cb (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    wk_callout_t *self = userp;
    size_t i = 0;
    while (i < self->nsocks && self->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < self->nsocks)
            self->socks[i] = self->socks[--self->nsocks];
        return 0;
    }
    if (i == self->nsocks) {
        if (self->nsocks == self->socks_max) {
            size_t max = self->socks_max ? self->socks_max * 2 : 16;
            s_sock_t *socks = realloc (self->socks, max * sizeof *socks);
            if (!socks)
                return -1;
            self->socks = socks;
            self->socks_max = max;
        }
        self->socks[self->nsocks++].fd = fd;
    }
    self->socks[i].events =
        (short) ((what & CURL_POLL_IN ? ZMQ_POLLIN : 0) | (what & CURL_POLL_OUT ? ZMQ_POLLOUT : 0));
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
    return socket (address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
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
        json_object_clear (call->resp_headers);
        call->header_bytes = 0;
        call->headers_done = false;
    } else if (len == 0)
        call->headers_done = true;
    else if (!call->headers_done && call->header_bytes + len <= S_HEADERS_MAX &&
             wk_text_add_header (call->resp_headers, data, len) == 0)
        call->header_bytes += len; //  lines that are not headers are skipped
    return n;
}

//  --------------------------------------------------------------------------
//  A call

static void s_call_destroy (s_call_t **call_p) {
    s_call_t *call = *call_p;
    if (!call)
        return;
    wk_callout_t *owner = call->owner;
    if (call->prev || owner->calls == call) { //  added to the multi handle
        curl_multi_remove_handle (owner->multi, call->easy);
        if (call->prev)
            call->prev->next = call->next;
        else
            owner->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
        owner->active--;
    }
    if (call->easy && owner->nidle < owner->idle_max) {
        curl_easy_reset (call->easy); //  options back to defaults; the handle is reused
        owner->idle[owner->nidle++] = call->easy;
    } else if (call->easy)
        curl_easy_cleanup (call->easy);
    curl_slist_free_all (call->headers);
    json_decref (call->result);
    json_decref (call->resp_headers);
    free (call->body);
    free (call);
    *call_p = NULL;
}

//  Moves the call's RESULT to the owner's queue and frees the call.
static void s_call_end (s_call_t **call_p) {
    s_call_t *call = *call_p;
    json_object_set_new (call->result, "duration",
                         json_integer (call->started ? aq_time_mono_ms () - call->started : 0));
    json_array_append_new (call->owner->results, call->result);
    call->result = NULL;
    s_call_destroy (call_p);
}

static void s_call_fail (s_call_t **call_p, const char *error, bool permanent) {
    json_t *result = (*call_p)->result;
    json_object_set_new (result, "error", json_string (error));
    if (permanent)
        json_object_set_new (result, "permanent", json_true ());
    s_call_end (call_p);
}

//  Appends one request header line; 0 or -1 when out of memory.
static int s_add_header (s_call_t *call, const char *format, ...) {
    char *line = NULL;
    va_list args;
    va_start (args, format);
    int rc = vasprintf (&line, format, args);
    va_end (args);
    struct curl_slist *list = rc < 0 ? NULL : curl_slist_append (call->headers, line);
    free (line);
    if (!list)
        return -1;
    call->headers = list;
    return 0;
}

static bool s_has_header (const json_t *headers, const char *name) {
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) headers, key, value) {
        if (strcasecmp (key, name) == 0)
            return true;
    }
    return false;
}

static bool s_url_ok (const char *url) {
    CURLU *parsed = curl_url ();
    char *scheme = NULL, *host = NULL;
    bool ok = parsed && curl_url_set (parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get (parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              (strcmp (scheme, "http") == 0 || strcmp (scheme, "https") == 0) &&
              curl_url_get (parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK && *host;
    curl_free (scheme);
    curl_free (host);
    curl_url_cleanup (parsed);
    return ok;
}

//  Sets the call up from a JOB body. Returns NULL, or the RESULT error text
//  and whether it is permanent (the job can never succeed as it is).
static const char *s_call_setup (s_call_t *call, const json_t *job, bool *permanent) {
    *permanent = true;
    const char *url = json_string_value (json_object_get (job, "url"));
    if (!url || !s_url_ok (url))
        return "invalid URL";
    const char *method = json_string_value (json_object_get (job, "method"));
    method = method ? method : "POST";
    bool get = strcmp (method, "GET") == 0;
    if (!get && strcmp (method, "POST") && strcmp (method, "PUT") && strcmp (method, "DELETE"))
        return "invalid method";
    json_t *headers = json_object_get (job, "headers");
    if (headers && !json_is_object (headers) && !json_is_null (headers))
        return "invalid headers";
    const char *name;
    json_t *value;
    json_object_foreach (headers, name, value) {
        if (!wk_text_is_token (name))
            return "invalid header name";
        if (!wk_text_is_value (value))
            return "invalid header value";
    }
    if (!wk_text_is_value (json_object_get (call->result, "id")))
        return "invalid task id";
    json_t *body = json_object_get (job, "body");
    if (body && !json_is_string (body) && !json_is_null (body))
        return "invalid body";
    bool send_body = !get && (json_is_string (body) || strcmp (method, "DELETE") != 0);

    //  The request headers: the user's as given, then ours
    *permanent = false;
    int rc = 0;
    json_object_foreach (headers, name, value) {
        if (strcasecmp (name, "AsyncQueue-Task-Id") == 0 ||
            strcasecmp (name, "AsyncQueue-Attempt") == 0 ||
            strcasecmp (name, "Content-Length") == 0 || strcasecmp (name, "Transfer-Encoding") == 0)
            continue; //  ours, or curl's to compute
        const char *text = json_string_value (value);
        rc |= *text ? s_add_header (call, "%s: %s", name, text) : s_add_header (call, "%s;", name);
    }
    if (!s_has_header (headers, "User-Agent"))
        rc |= s_add_header (call, "User-Agent: %s", WK_USER_AGENT);
    rc |= s_add_header (call, "AsyncQueue-Task-Id: %s",
                        json_string_value (json_object_get (call->result, "id")));
    rc |= s_add_header (call, "AsyncQueue-Attempt: %lld",
                        (long long) json_integer_value (json_object_get (call->result, "attempt")));
    if (!s_has_header (headers, "Accept"))
        rc |= s_add_header (call, "Accept:"); //  no "Accept: */*" of curl's own
    if (!s_has_header (headers, "Expect"))
        rc |= s_add_header (call, "Expect:"); //  no "Expect: 100-continue"
    if (send_body && !s_has_header (headers, "Content-Type"))
        rc |= s_add_header (call, "Content-Type:"); //  no form type of curl's own
    call->easy = call->owner->nidle ? call->owner->idle[--call->owner->nidle] : curl_easy_init ();
    if (rc || !call->easy)
        return "fetch failed: ENOMEM";

    CURL *easy = call->easy;
    bool bad = false;
    bad |= curl_easy_setopt (easy, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PRIVATE, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_NOPROXY, "*") != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) call->timeout * 1000) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HTTPHEADER, call->headers) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_write_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_WRITEDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_header_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_HEADERDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_OPENSOCKETFUNCTION, s_open_cb) != CURLE_OK;
    bad |= curl_easy_setopt (easy, CURLOPT_OPENSOCKETDATA, call) != CURLE_OK;
    if (strcmp (method, "PUT") == 0 || strcmp (method, "DELETE") == 0)
        bad |= curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    if (send_body) {
        //  POSTFIELDSIZE first, so COPYPOSTFIELDS copies that many bytes
        curl_off_t size = (curl_off_t) json_string_length (body);
        bad |= curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, size) != CURLE_OK;
        bad |= curl_easy_setopt (easy, CURLOPT_COPYPOSTFIELDS,
                                 body ? json_string_value (body) : "") != CURLE_OK;
    } else
        bad |= curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    return bad ? "fetch failed: ENOMEM" : NULL;
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

//  The transfer ended with code: completes the RESULT and ends the call.
static void s_call_finish (s_call_t **call_p, CURLcode code) {
    s_call_t *call = *call_p;
    json_t *result = call->result;
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && call->body_cut)) {
        long status = 0;
        curl_easy_getinfo (call->easy, CURLINFO_RESPONSE_CODE, &status);
        bool cut = call->body_cut;
        json_object_set_new (result, "statusCode", json_integer (status));
        json_object_set (result, "headers", call->resp_headers);
        json_object_set_new (
            result, "body",
            wk_text_utf8_string (call->body, call->body_size, call->body_max, &cut));
        if (cut)
            json_object_set_new (result, "bodyTruncated", json_true ());
        int64_t retry_after =
            s_retry_after (json_string_value (json_object_get (call->resp_headers, "retry-after")));
        if (retry_after >= 0)
            json_object_set_new (result, "retryAfter", json_integer (retry_after));
        s_call_end (call_p);
    } else {
        char text[160];
        bool permanent;
        s_error_text (call, code, text, sizeof text, &permanent);
        s_call_fail (call_p, text, permanent);
    }
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
    self->multi = curl_multi_init ();
    self->results = json_array ();
    self->idle_max = (size_t) slots;
    self->idle = calloc (self->idle_max, sizeof *self->idle);
    if (!self->multi || !self->results || !self->idle) {
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
    while (self->calls) {
        s_call_t *call = self->calls;
        s_call_destroy (&call);
    }
    if (self->multi)
        curl_multi_cleanup (self->multi); //  may still call s_socket_cb
    while (self->nidle)
        curl_easy_cleanup (self->idle[--self->nidle]);
    free (self->idle);
    json_decref (self->results);
    free (self->socks);
    free (self);
    *self_p = NULL;
}

json_t *wk_callout_result_new (const json_t *job) {
    const char *id = json_string_value (json_object_get (job, "id"));
    json_int_t attempt = json_integer_value (json_object_get (job, "attempt"));
    json_t *result = json_pack ("{s:s, s:I}", "id", id ? id : "", "attempt", attempt);
    static const char *const echoed[] = {"kind", "lease"};
    for (size_t i = 0; result && i < sizeof echoed / sizeof *echoed; i++)
        if (json_is_string (json_object_get (job, echoed[i])))
            json_object_set (result, echoed[i], json_object_get (job, echoed[i]));
    return result;
}

int wk_callout_start (wk_callout_t *self, const json_t *job) {
    assert (self);
    assert (job);
    s_call_t *call = calloc (1, sizeof *call);
    json_t *result = wk_callout_result_new (job);
    json_t *headers = json_object ();
    if (!call || !result || !headers) {
        free (call);
        json_decref (result);
        json_decref (headers);
        return -1;
    }
    call->owner = self;
    call->result = result;
    call->resp_headers = headers;
    json_int_t timeout = json_integer_value (json_object_get (job, "timeout"));
    call->timeout = timeout > 0 ? (timeout < 86400 ? timeout : 86400) : S_DEFAULT_TIMEOUT;
    json_t *max_body = json_object_get (job, "maxBody");
    call->body_max = json_is_integer (max_body) && json_integer_value (max_body) >= 0
                         ? (size_t) json_integer_value (max_body)
                         : S_DEFAULT_MAX_BODY;
    bool permanent;
    const char *error = s_call_setup (call, job, &permanent);
    if (!error) {
        call->started = aq_time_mono_ms ();
        if (curl_multi_add_handle (self->multi, call->easy) == CURLM_OK) {
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

int wk_callout_poll_items (wk_callout_t *self, zmq_pollitem_t *items, int max) {
    assert (self);
    for (size_t i = 0; i < self->nsocks && (int) i < max; i++)
        items[i] = (zmq_pollitem_t){.fd = self->socks[i].fd, .events = self->socks[i].events};
    return (int) self->nsocks;
}

long wk_callout_timeout_ms (wk_callout_t *self) {
    assert (self);
    if (self->deadline < 0)
        return -1;
    int64_t left = self->deadline - aq_time_mono_ms ();
    return left > 0 ? (long) left : 0;
}

void wk_callout_handle (wk_callout_t *self, zmq_pollitem_t *items, int n) {
    assert (self);
    int running;
    for (int i = 0; i < n; i++) {
        short ready = items[i].revents;
        if (ready)
            curl_multi_socket_action (self->multi, items[i].fd,
                                      (ready & ZMQ_POLLIN ? CURL_CSELECT_IN : 0) |
                                          (ready & ZMQ_POLLOUT ? CURL_CSELECT_OUT : 0) |
                                          (ready & ZMQ_POLLERR ? CURL_CSELECT_ERR : 0),
                                      &running);
    }
    if (self->deadline >= 0 && aq_time_mono_ms () >= self->deadline) {
        self->deadline = -1; //  one-shot: curl sets the next one
        curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
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

json_t *wk_callout_next_result (wk_callout_t *self) {
    assert (self);
    json_t *result = json_incref (json_array_get (self->results, 0));
    if (result)
        json_array_remove (self->results, 0);
    return result;
}

size_t wk_callout_active (wk_callout_t *self) {
    assert (self);
    return self->active;
}

//  --------------------------------------------------------------------------
//  Selftest: calls to a small HTTP/1.1 server in this process (tests/rig_http)

#include "../tests/rig_http.h"

#define S_ITEMS_MAX 64 //  poll items the selftest's loop has room for

static json_t *s_job (const char *id, const char *method, const char *url, int timeout,
                      int max_body) {
    json_t *job =
        json_pack ("{s:s, s:i, s:s, s:s, s:{}, s:i, s:i}", "id", id, "attempt", 1, "url", url,
                   "method", method, "headers", "timeout", timeout, "maxBody", max_body);
    assert (job);
    return job;
}

//  Runs the engine until want results are in or limit_ms passes; returns
//  them in the order they came.
static json_t *s_run (wk_callout_t *callout, size_t want, int limit_ms) {
    json_t *results = json_array ();
    int64_t end = aq_time_mono_ms () + limit_ms;
    while (json_array_size (results) < want && aq_time_mono_ms () < end) {
        zmq_pollitem_t items[S_ITEMS_MAX];
        int n = wk_callout_poll_items (callout, items, S_ITEMS_MAX);
        assert (n <= S_ITEMS_MAX);
        long timeout = wk_callout_timeout_ms (callout);
        zmq_poll (items, n, timeout < 0 || timeout > 100 ? 100 : timeout);
        wk_callout_handle (callout, items, n);
        json_t *result;
        while ((result = wk_callout_next_result (callout)))
            json_array_append_new (results, result);
    }
    return results;
}

//  Starts job, taking it.
static void s_start (wk_callout_t *callout, json_t *job) {
    wk_callout_start (callout, job);
    json_decref (job);
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

    //  Method, user headers and body delivered; ours added, curl's removed
    json_t *job = s_job ("t1", "POST", rig_http_url (server, "/echo/post"), 5, 1000);
    json_object_set_new (job, "attempt", json_integer (2));
    json_object_set_new (job, "body", json_string ("{\"a\":1}"));
    json_object_set_new (job, "headers",
                         json_pack ("{s:s, s:s, s:s, s:s}", "X-Custom", "hello", "Content-Type",
                                    "application/json", "X-Empty", "", "AsyncQueue-Task-Id",
                                    "spoofed"));
    wk_callout_start (callout, job);
    json_decref (job);
    assert (wk_callout_active (callout) == 1);
    json_t *results = s_run (callout, 1, 5000);
    assert (wk_callout_active (callout) == 0);
    json_t *result = json_array_get (results, 0);
    assert (s_streq (s_str (result, "id"), "t1") && s_int (result, "attempt") == 2);
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
        assert (wk_callout_start (callout, job) == -1);
        assert (wk_callout_active (callout) == 0);
        result = wk_callout_next_result (callout);
        assert (s_streq (s_str (result, "error"), "invalid URL"));
        assert (json_is_true (json_object_get (result, "permanent")));
        assert (s_streq (s_str (result, "id"), "t16") && s_int (result, "duration") == 0);
        json_decref (result);
        json_decref (job);
    }
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
