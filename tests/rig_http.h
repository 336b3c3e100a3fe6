/*  rig_http.h - test rig: a small HTTP/1.1 server that keeps every request,
    a plain client, and loopback ports that refuse or hang

    For selftests only: linked into aq-selftest, never into a component
    library. Failures assert; nothing here returns an error.

        rig_http_t *server = rig_http_new ();
        ...call rig_http_url (server, "/echo/x") from the code under test
        char *request = rig_http_request (server, "/echo/x");
        assert (request && strstr (request, "\r\nX-Custom: 1\r\n"));
        free (request);
        rig_http_destroy (&server);

    The server answers (Content-Length, Connection: close):
        /echo...        200 "hello" with X-Reply: yes, Content-Type: text/plain
        /status/N       status N "hello"; 302 adds Location: /echo/followed,
                        503 adds Retry-After: 7
        /date           503 with Retry-After as an HTTP-date 120 s ahead
        /headers        a 103 Early Hints first, then 200 with Set-Cookie: a=1,
                        Set-Cookie: b=2, X-MiXeD:  spaced value
        /big            200 with 100000 'x'
        /utf8           200 with invalid UTF-8 in the body
        /euro           200 with three U+20AC (9 bytes)
        /sleep/MS       200 "slept" after MS ms (sooner if the client hangs up)
        anything else   404 "hello"
*/
#ifndef RIG_HTTP_H
#define RIG_HTTP_H

#include <stdbool.h>

typedef struct _rig_http_t rig_http_t;

//  A new server on 127.0.0.1 (a free port), a thread per connection.
rig_http_t *rig_http_new (void);

//  Stops the server, joins its threads, frees it. Sets *self_p to NULL.
void rig_http_destroy (rig_http_t **self_p);

//  The port it listens on.
int rig_http_port (rig_http_t *self);

//  "http://127.0.0.1:PORT" followed by path, in a buffer of the server's
//  that the next call overwrites.
const char *rig_http_url (rig_http_t *self, const char *path);

//  The request the server got for path (request line, headers and body, a
//  copy the caller frees), or NULL if none came.
char *rig_http_request (rig_http_t *self, const char *path);

//  A port on 127.0.0.1 that nobody listens on (just released): a connection
//  there is refused, and a server may bind it.
int rig_http_free_port (void);

//  A port on 127.0.0.1 that listens but never accepts: a call there hangs
//  until its timeout. *fd_p is the listening socket, the caller closes it.
int rig_http_silent_port (int *fd_p);

//  Connects to 127.0.0.1:port, retrying for a while (a server thread may not
//  listen yet). Returns the connected, blocking socket.
int rig_http_connect (int port);

//  rig_http_connect, then made non-blocking.
int rig_http_client (int port);

//  Sends request (expected to ask for "Connection: close") and returns the
//  response as text, at most 4095 bytes (caller frees).
char *rig_http_fetch (int port, const char *request);

//  Reads one response (headers, and a body as long as Content-Length) from
//  the non-blocking socket fd for at most max_ms, calling pump (arg) before
//  each read: the loop of the server under test. Returns the text received
//  (caller frees); *closed tells whether the peer closed.
char *rig_http_read (int fd, long max_ms, bool *closed, void (*pump) (void *arg), void *arg);

//  Sends request on a new non-blocking connection to port and returns the
//  response rig_http_read gets within 3 s (caller frees); closes.
char *rig_http_exchange (int port, const char *request, void (*pump) (void *arg), void *arg);

//  Asserts that text contains what; prints both first when it does not.
void rig_http_expect (const char *text, const char *what);

#endif
