/*  listen.c - the gateway's listening socket, from "HOST:PORT"

    The socket is made here and handed to libmicrohttpd
    (MHD_OPTION_LISTEN_SOCKET), so the address syntax, the backlog and the
    error lines are ours, not MHD's.
*/
#include "listen.h"

#include "aq_log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_BACKLOG 4096 //  listen backlog

int gw_listen_socket (const char *listen_on, int *family) {
    char host[256];
    const char *port;
    const char *colon = strrchr (listen_on, ':');
    size_t host_size = colon ? (size_t) (colon - listen_on) : 0;
    if (!colon || host_size >= sizeof host || !colon[1]) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot listen on '%s': expected HOST:PORT", listen_on);
        return -1;
    }
    memcpy (host, listen_on, host_size);
    host[host_size] = 0;
    port = colon + 1;
    if (host[0] == '[' && host_size >= 2 && host[host_size - 1] == ']') {
        memmove (host, host + 1, host_size - 2);
        host[host_size - 2] = 0;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host[0] ? host : NULL, port, &hints, &found);
    if (rc != 0) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot listen on '%s': %s", listen_on, gai_strerror (rc));
        return -1;
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind (fd, found->ai_addr, found->ai_addrlen) != 0 || listen (fd, S_BACKLOG) != 0) {
        aq_log (AQ_LOG_ERROR, "gateway", "cannot listen on '%s': %s", listen_on, strerror (errno));
        if (fd >= 0)
            close (fd);
        fd = -1;
    }
    *family = found->ai_family;
    freeaddrinfo (found);
    return fd;
}

int gw_listen_port (int fd) {
    struct sockaddr_storage addr;
    socklen_t size = sizeof addr;
    if (getsockname (fd, (struct sockaddr *) &addr, &size) != 0)
        return 0;
    if (addr.ss_family == AF_INET6)
        return ntohs (((struct sockaddr_in6 *) &addr)->sin6_port);
    return ntohs (((struct sockaddr_in *) &addr)->sin_port);
}

//  --------------------------------------------------------------------------
//  Selftest

void gw_listen_test (bool verbose) {
    if (verbose)
        printf (" * gw_listen: ");
    //  Bad addresses fail with -1 (and one log line each)
    const char *bad[] = {"nowhere", "127.0.0.1:", "256.0.0.1:80", "127.0.0.1:http", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int family = -1;
        assert (gw_listen_socket (bad[i], &family) == -1);
    }
    //  Port 0 is a free port; that port is then taken
    int family = -1;
    int fd = gw_listen_socket ("127.0.0.1:0", &family);
    assert (fd >= 0 && family == AF_INET);
    int port = gw_listen_port (fd);
    assert (port > 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int client = socket (AF_INET, SOCK_STREAM, 0);
    assert (connect (client, (struct sockaddr *) &addr, sizeof addr) == 0);
    close (client);
    char taken[32];
    snprintf (taken, sizeof taken, "127.0.0.1:%d", port);
    assert (gw_listen_socket (taken, &family) == -1);
    close (fd);
    //  An empty host is every address; brackets hold an IPv6 address
    fd = gw_listen_socket (":0", &family);
    assert (fd >= 0 && gw_listen_port (fd) > 0);
    close (fd);
    fd = gw_listen_socket ("[::1]:0", &family);
    if (fd >= 0) { //  IPv6 may be off here
        assert (family == AF_INET6 && gw_listen_port (fd) > 0);
        close (fd);
    }
    assert (gw_listen_port (-1) == 0);
    if (verbose)
        printf ("OK\n");
}
