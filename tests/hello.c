/*  hello.c - aq-hello: a hello-world libmicrohttpd server, the benchmark's yardstick

    aq-hello [--port N] [--threads N]

    Listens on 127.0.0.1 (port 0 = ephemeral), prints `listening <port>` on
    stdout, and answers every request with 200 "hello" until SIGTERM or
    SIGINT. libmicrohttpd with its internal epoll thread pool (2 threads by
    default), keep-alive, nothing else: what the REST gateway's request rate
    is compared with in `make bench` (http_hello_per_s).
*/
#include "aq_main.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_hello[] = "hello";

static enum MHD_Result s_access (void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
    (void) cls;
    (void) url;
    (void) method;
    (void) version;
    (void) upload_data;
    if (!*con_cls) { //  headers are in: answer on the next call, as MHD expects
        *con_cls = (void *) s_hello;
        return MHD_YES;
    }
    *upload_data_size = 0; //  a body, if any, is ignored
    struct MHD_Response *response = MHD_create_response_from_buffer (
        sizeof s_hello - 1, (void *) s_hello, MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    enum MHD_Result rc = MHD_queue_response (conn, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

static void s_usage (void) {
    fprintf (stderr, "usage: aq-hello [--port N] [--threads N]\n");
    exit (2);
}

int main (int argc, char **argv) {
    long port = 0, threads = 2;
    for (int i = 1; i < argc; i++) {
        long *option = strcmp (argv[i], "--port") == 0      ? &port
                       : strcmp (argv[i], "--threads") == 0 ? &threads
                                                            : NULL;
        if (!option || i + 1 >= argc)
            s_usage ();
        char *end;
        *option = strtol (argv[++i], &end, 10);
        if (*end || *option < 0)
            s_usage ();
    }
    if (port > 65535 || threads < 1 || threads > 64)
        s_usage ();

    //  signals are taken by sigwait below; no thread gets them
    sigset_t signals;
    aq_main_block_signals (&signals);

    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t) port, NULL, NULL, s_access,
        NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 8192, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024, MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr, "aq-hello: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf ("listening %u\n", info ? (unsigned) info->port : (unsigned) port);
    fflush (stdout);

    int sig = 0;
    sigwait (&signals, &sig);
    MHD_stop_daemon (daemon);
    return 0;
}
