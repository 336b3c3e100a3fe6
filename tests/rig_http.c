/*  rig_http.c - test rig: a small HTTP/1.1 server that keeps every request,
    a plain client, and loopback ports that refuse or hang

    The server is the selftests' target, not the engine's: a thread accepts,
    a thread per connection reads one request, keeps it and answers by path
    (see rig_http.h), then closes.
*/
#include "rig_http.h"
#include "aq_time.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_SERVER_MAX 64 //  connections and requests a test may make

struct _rig_http_t {
    int fd;                        //  listening socket
    int port;                      //  its port on 127.0.0.1
    atomic_bool stop;              //  tells every thread to end
    pthread_t acceptor;            //  runs s_accept
    pthread_mutex_t lock;          //  guards what follows
    pthread_t conns[S_SERVER_MAX]; //  connection threads, joined at the end
    size_t nconns;                 //  used entries in conns
    char *requests[S_SERVER_MAX];  //  every request as received
    size_t nrequests;              //  used entries in requests
    char url[256];                 //  rig_http_url's answer
};

typedef struct {
    rig_http_t *server; //  owner
    int fd;             //  the connection
} s_conn_t;

//  Waits up to ms for the peer; returns early if it hangs up or we stop.
static void s_sleep (s_conn_t *conn, int ms) {
    int64_t end = aq_time_mono_ms () + ms;
    while (!conn->server->stop && aq_time_mono_ms () < end) {
        struct pollfd item = {.fd = conn->fd, .events = POLLIN};
        char byte;
        if (poll (&item, 1, 20) > 0 && recv (conn->fd, &byte, 1, MSG_PEEK) <= 0)
            return;
    }
}

static void s_reply (s_conn_t *conn, const char *path) {
    char head[512] = "", extra[256] = "";
    const char *body = "hello";
    char *owned = NULL;
    int status = 200;
    if (strncmp (path, "/echo", 5) == 0)
        snprintf (extra, sizeof extra, "X-Reply: yes\r\nContent-Type: text/plain\r\n");
    else if (strncmp (path, "/status/", 8) == 0) {
        status = atoi (path + 8);
        if (status == 302)
            snprintf (extra, sizeof extra, "Location: /echo/followed\r\n");
        if (status == 503)
            snprintf (extra, sizeof extra, "Retry-After: 7\r\n");
    } else if (strcmp (path, "/date") == 0) {
        time_t when = time (NULL) + 120;
        struct tm tm;
        strftime (extra, sizeof extra, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
                  gmtime_r (&when, &tm));
        status = 503;
    } else if (strcmp (path, "/headers") == 0) {
        const char *early = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n";
        if (send (conn->fd, early, strlen (early), MSG_NOSIGNAL) < 0)
            return;
        snprintf (extra, sizeof extra,
                  "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-MiXeD:  spaced value \r\n");
    } else if (strcmp (path, "/big") == 0) {
        owned = malloc (100001);
        memset (owned, 'x', 100000);
        owned[100000] = '\0';
        body = owned;
    } else if (strcmp (path, "/utf8") == 0)
        body = "ok\xff\xfe end \xe2\x82";
    else if (strcmp (path, "/euro") == 0)
        body = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
    else if (strncmp (path, "/sleep/", 7) == 0) {
        s_sleep (conn, atoi (path + 7));
        body = "slept";
    } else
        status = 404;
    snprintf (head, sizeof head,
              "HTTP/1.1 %d Whatever\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
              strlen (body), extra);
    if (send (conn->fd, head, strlen (head), MSG_NOSIGNAL) > 0)
        send (conn->fd, body, strlen (body), MSG_NOSIGNAL); //  the client may be gone
    free (owned);
}

static void *s_conn (void *arg) {
    s_conn_t *conn = arg;
    char buf[16384];
    size_t size = 0, want = 0;
    while (size < sizeof buf - 1) {
        ssize_t n = recv (conn->fd, buf + size, sizeof buf - 1 - size, 0);
        if (n <= 0)
            break;
        size += (size_t) n;
        buf[size] = '\0';
        char *end = strstr (buf, "\r\n\r\n");
        if (end && !want) {
            char *length = strcasestr (buf, "\r\nContent-Length:");
            want = (size_t) (end + 4 - buf) + (length && length < end ? atoi (length + 17) : 0);
        }
        if (want && size >= want)
            break;
    }
    buf[size] = '\0';
    char path[256] = "";
    sscanf (buf, "%*s %255s", path);
    pthread_mutex_lock (&conn->server->lock);
    if (conn->server->nrequests < S_SERVER_MAX)
        conn->server->requests[conn->server->nrequests++] = strdup (buf);
    pthread_mutex_unlock (&conn->server->lock);
    if (size)
        s_reply (conn, path);
    close (conn->fd);
    free (conn);
    return NULL;
}

static void *s_accept (void *arg) {
    rig_http_t *server = arg;
    while (!server->stop) {
        struct pollfd item = {.fd = server->fd, .events = POLLIN};
        if (poll (&item, 1, 20) <= 0)
            continue;
        s_conn_t *conn = calloc (1, sizeof *conn);
        conn->server = server;
        conn->fd = accept (server->fd, NULL, NULL);
        assert (conn->fd >= 0);
        pthread_mutex_lock (&server->lock);
        assert (server->nconns < S_SERVER_MAX);
        int rc = pthread_create (&server->conns[server->nconns++], NULL, s_conn, conn);
        assert (rc == 0);
        pthread_mutex_unlock (&server->lock);
    }
    return NULL;
}

//  A TCP socket bound to 127.0.0.1 on a free port; *port says which.
static int s_bind (int *port) {
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t size = sizeof addr;
    int rc = bind (fd, (struct sockaddr *) &addr, size);
    assert (rc == 0);
    rc = getsockname (fd, (struct sockaddr *) &addr, &size);
    assert (rc == 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

rig_http_t *rig_http_new (void) {
    rig_http_t *server = calloc (1, sizeof *server);
    assert (server);
    pthread_mutex_init (&server->lock, NULL);
    server->fd = s_bind (&server->port);
    int rc = listen (server->fd, 64);
    assert (rc == 0);
    rc = pthread_create (&server->acceptor, NULL, s_accept, server);
    assert (rc == 0);
    return server;
}

void rig_http_destroy (rig_http_t **self_p) {
    assert (self_p);
    rig_http_t *server = *self_p;
    server->stop = true;
    pthread_join (server->acceptor, NULL);
    for (size_t i = 0; i < server->nconns; i++)
        pthread_join (server->conns[i], NULL);
    for (size_t i = 0; i < server->nrequests; i++)
        free (server->requests[i]);
    close (server->fd);
    pthread_mutex_destroy (&server->lock);
    free (server);
    *self_p = NULL;
}

int rig_http_port (rig_http_t *self) {
    return self->port;
}

const char *rig_http_url (rig_http_t *self, const char *path) {
    snprintf (self->url, sizeof self->url, "http://127.0.0.1:%d%s", self->port, path);
    return self->url;
}

char *rig_http_request (rig_http_t *self, const char *path) {
    char *found = NULL;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->nrequests && !found; i++) {
        const char *line = self->requests[i];
        const char *space = strchr (line, ' ');
        size_t len = strlen (path);
        if (space && strncmp (space + 1, path, len) == 0 && space[1 + len] == ' ')
            found = strdup (line);
    }
    pthread_mutex_unlock (&self->lock);
    return found;
}

int rig_http_free_port (void) {
    int port;
    close (s_bind (&port));
    return port;
}

int rig_http_silent_port (int *fd_p) {
    int port;
    *fd_p = s_bind (&port);
    int rc = listen (*fd_p, 16);
    assert (rc == 0);
    return port;
}

int rig_http_connect (int port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int fd;
    for (int tries = 0;; tries++) {
        fd = socket (AF_INET, SOCK_STREAM, 0);
        assert (fd >= 0);
        if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
            break;
        close (fd);
        assert (tries < 50);
        usleep (50 * 1000);
    }
    return fd;
}

int rig_http_client (int port) {
    int fd = rig_http_connect (port);
    fcntl (fd, F_SETFL, O_NONBLOCK);
    return fd;
}

char *rig_http_fetch (int port, const char *request) {
    int fd = rig_http_connect (port);
    struct timeval wait = {.tv_sec = 5};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    assert (send (fd, request, strlen (request), 0) == (ssize_t) strlen (request));
    char *text = calloc (1, 4096);
    assert (text);
    size_t size = 0;
    ssize_t n;
    while (size < 4095 && (n = recv (fd, text + size, 4095 - size, 0)) > 0)
        size += (size_t) n; //  "Connection: close" ends it
    close (fd);
    return text;
}

char *rig_http_read (int fd, long max_ms, bool *closed, void (*pump) (void *arg), void *arg) {
    size_t size = 0, cap = 65536;
    char *text = calloc (1, cap);
    assert (text);
    *closed = false;
    int64_t until = aq_time_mono_ms () + max_ms;
    while (aq_time_mono_ms () < until) {
        pump (arg);
        ssize_t n = recv (fd, text + size, cap - size - 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            *closed = true;
            break;
        }
        if (n > 0) {
            size += (size_t) n;
            text[size] = 0;
            char *end = strstr (text, "\r\n\r\n");
            const char *length = strcasestr (text, "Content-Length: ");
            if (end && length && size >= (size_t) (end + 4 - text) + strtoul (length + 16, 0, 10))
                break;
        }
    }
    return text;
}

char *rig_http_exchange (int port, const char *request, void (*pump) (void *arg), void *arg) {
    int fd = rig_http_client (port);
    assert (send (fd, request, strlen (request), 0) == (ssize_t) strlen (request));
    bool closed;
    char *text = rig_http_read (fd, 3000, &closed, pump, arg);
    close (fd);
    return text;
}

void rig_http_expect (const char *text, const char *what) {
    if (!strstr (text, what)) {
        fprintf (stderr, "missing '%s' in:\n%s\n", what, text);
        assert (false);
    }
}
