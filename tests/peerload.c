/*  peerload.c - aq-peer-load: pipelined load on a peer queue's own protocol

    aq-peer-load redis|beanstalkd --port N --figure NAME [--conns C] [--pipeline P]
                 [--count N] [--seconds S] [--size B]

    The load shape of `aq-bench create` for the products asyncqueue is
    compared with in `make bench`: C connections to 127.0.0.1:N, each with up
    to P requests in flight (a sliding window: a new request is written as
    soon as a reply frees a place), until N requests are answered or S
    seconds have gone by. One thread and poll(2): requests are fixed bytes
    encoded once, and each reply is one line, so the client costs little
    next to the server; its own CPU is printed so that can be checked.

        redis       LPUSH aq-peer-load <B bytes>      (RESP; reply `:<length>`)
        beanstalkd  put 1024 0 60 <B>\r\n<B bytes>    (reply `INSERTED <id>`)

    Prints `bench NAME <n> ops/s` on stdout (replies that were not errors,
    over the time from the first request to the last reply) and notes on
    stderr: the client's CPU per request, failures and the first error.
*/
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CONNS 64
#define S_READ_SIZE 65536

typedef struct {
    int fd;           //  the connection
    int64_t inflight; //  requests written (or queued to write), not answered
    char *out;        //  requests queued to write
    size_t out_len;   //  bytes queued
    size_t out_done;  //  of those, bytes written
    char *in;         //  reply bytes not yet a whole line
    size_t in_len;    //  their length
} s_conn_t;

typedef struct {
    const char *request;   //  one request, encoded
    size_t request_len;    //  its length
    const char *ok;        //  a reply line starting with this is a success
    int pipeline;          //  requests in flight per connection
    int64_t count;         //  requests in all
    int64_t sent;          //  requests queued, all connections
    int64_t ok_count;      //  successful replies
    int64_t failed;        //  other replies
    char first_error[200]; //  the first other reply
} s_load_t;

static double s_now (void) {
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double s_cpu_seconds (void) {
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6 +
           (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
}

static int s_connect (int port) {
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

//  Queues as many requests as the window and the count allow.
static void s_fill (s_load_t *load, s_conn_t *conn, bool sending) {
    memmove (conn->out, conn->out + conn->out_done, conn->out_len - conn->out_done);
    conn->out_len -= conn->out_done; //  what is left is in flight: it fits the window
    conn->out_done = 0;
    while (sending && conn->inflight < load->pipeline && load->sent < load->count) {
        memcpy (conn->out + conn->out_len, load->request, load->request_len);
        conn->out_len += load->request_len;
        conn->inflight++;
        load->sent++;
    }
}

//  Writes what it can. Returns -1 on a broken connection.
static int s_write (s_conn_t *conn) {
    while (conn->out_done < conn->out_len) {
        ssize_t n = send (conn->fd, conn->out + conn->out_done, conn->out_len - conn->out_done,
                          MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        conn->out_done += (size_t) n;
    }
    return 0;
}

//  Reads what is there and counts each whole reply line. Returns -1 on a
//  closed or broken connection.
static int s_read (s_load_t *load, s_conn_t *conn) {
    ssize_t n = recv (conn->fd, conn->in + conn->in_len, S_READ_SIZE - conn->in_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        return -1;
    if (n < 0)
        return 0;
    conn->in_len += (size_t) n;
    size_t start = 0, oklen = strlen (load->ok);
    char *nl;
    while ((nl = memchr (conn->in + start, '\n', conn->in_len - start))) {
        size_t len = (size_t) (nl - (conn->in + start));
        if (len >= oklen && memcmp (conn->in + start, load->ok, oklen) == 0)
            load->ok_count++;
        else if (load->failed++ == 0)
            snprintf (load->first_error, sizeof load->first_error, "%.*s",
                      (int) (len && conn->in[start + len - 1] == '\r' ? len - 1 : len),
                      conn->in + start);
        conn->inflight--;
        start += len + 1;
    }
    memmove (conn->in, conn->in + start, conn->in_len - start);
    conn->in_len -= start;
    if (conn->in_len == S_READ_SIZE)
        return -1; //  a line longer than the buffer: not a reply we know
    return 0;
}

static char *s_request (const char *kind, size_t size, size_t *len, const char **ok) {
    char *value = malloc (size + 1);
    for (size_t i = 0; i < size; i++)
        value[i] = (char) ('a' + i % 26);
    value[size] = 0;
    char *request = malloc (size + 128);
    int head;
    if (strcmp (kind, "redis") == 0) {
        head =
            snprintf (request, 128, "*3\r\n$5\r\nLPUSH\r\n$12\r\naq-peer-load\r\n$%zu\r\n", size);
        *ok = ":";
    } else if (strcmp (kind, "beanstalkd") == 0) {
        head = snprintf (request, 128, "put 1024 0 60 %zu\r\n", size);
        *ok = "INSERTED ";
    } else {
        free (value);
        free (request);
        return NULL;
    }
    memcpy (request + head, value, size);
    memcpy (request + head + size, "\r\n", 2);
    *len = (size_t) head + size + 2;
    free (value);
    return request;
}

static int s_usage (void) {
    fprintf (stderr, "usage: aq-peer-load redis|beanstalkd --port N --figure NAME [--conns C]\n"
                     "                    [--pipeline P] [--count N] [--seconds S] [--size B]\n");
    return 2;
}

int main (int argc, char **argv) {
    if (argc < 2)
        return s_usage ();
    const char *kind = argv[1], *figure = NULL;
    long port = 0, conns = 4, pipeline = 500, size = 300;
    double seconds = 10;
    int64_t count = 200000;
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value)
            return s_usage ();
        i++;
        if (strcmp (name, "--port") == 0)
            port = atol (value);
        else if (strcmp (name, "--figure") == 0)
            figure = value;
        else if (strcmp (name, "--conns") == 0)
            conns = atol (value);
        else if (strcmp (name, "--pipeline") == 0)
            pipeline = atol (value);
        else if (strcmp (name, "--count") == 0)
            count = atoll (value);
        else if (strcmp (name, "--seconds") == 0)
            seconds = atof (value);
        else if (strcmp (name, "--size") == 0)
            size = atol (value);
        else
            return s_usage ();
    }
    if (port <= 0 || port > 65535 || !figure || conns < 1 || conns > S_MAX_CONNS || pipeline < 1 ||
        count < 1 || seconds <= 0 || size < 1 || size > 60000)
        return s_usage ();

    s_load_t load = {.pipeline = (int) pipeline, .count = count};
    char *request = s_request (kind, (size_t) size, &load.request_len, &load.ok);
    if (!request)
        return s_usage ();
    load.request = request;

    int rc = 1;
    s_conn_t conn[S_MAX_CONNS] = {{0}};
    struct pollfd items[S_MAX_CONNS];
    for (int i = 0; i < conns; i++) {
        conn[i].fd = s_connect ((int) port);
        conn[i].out = malloc ((size_t) pipeline * load.request_len);
        conn[i].in = malloc (S_READ_SIZE);
        if (conn[i].fd < 0) {
            fprintf (stderr, "aq-peer-load: cannot connect to '127.0.0.1:%ld': %s\n", port,
                     strerror (errno));
            goto out;
        }
    }
    double cpu = s_cpu_seconds (), start = s_now (), last = start;
    bool sending = true;
    for (;;) {
        int64_t inflight = 0;
        if (sending && s_now () - start >= seconds)
            sending = false;
        for (int i = 0; i < conns; i++) {
            s_fill (&load, &conn[i], sending);
            if (s_write (&conn[i]) != 0) {
                fprintf (stderr, "aq-peer-load: connection %d broken: %s\n", i, strerror (errno));
                goto out;
            }
            inflight += conn[i].inflight;
            items[i] = (struct pollfd){
                .fd = conn[i].fd,
                .events = POLLIN | (conn[i].out_done < conn[i].out_len ? POLLOUT : 0)};
        }
        if (inflight == 0)
            break;
        int ready = poll (items, (nfds_t) conns, 30000);
        if (ready == 0) {
            fprintf (stderr, "aq-peer-load: no reply for 30 s, %lld in flight\n",
                     (long long) inflight);
            goto out;
        }
        for (int i = 0; i < conns && ready > 0; i++)
            if (items[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (s_read (&load, &conn[i]) != 0) {
                    fprintf (stderr, "aq-peer-load: connection %d closed by the server\n", i);
                    goto out;
                }
                last = s_now ();
            }
    }
    double elapsed = last - start, used = s_cpu_seconds () - cpu;
    if (load.failed)
        fprintf (stderr, "aq-peer-load: %lld of %lld %s requests failed, first: %s\n",
                 (long long) load.failed, (long long) load.sent, kind, load.first_error);
    fprintf (stderr,
             "aq-peer-load: %lld %s requests answered in %.2f s over %ld connections x %ld in "
             "flight; client CPU %.2f us per request, %.0f%% of one core\n",
             (long long) (load.ok_count + load.failed), kind, elapsed, conns, pipeline,
             used * 1e6 / (double) (load.sent ? load.sent : 1),
             100.0 * used / (elapsed > 0 ? elapsed : 1));
    if (load.ok_count > 0 && elapsed > 0) {
        printf ("bench %s %.0f ops/s\n", figure, (double) load.ok_count / elapsed);
        rc = 0;
    }
out:
    for (int i = 0; i < conns; i++) {
        if (conn[i].fd > 0)
            close (conn[i].fd);
        free (conn[i].out);
        free (conn[i].in);
    }
    free (request);
    return rc;
}
