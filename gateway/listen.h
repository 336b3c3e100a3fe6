/*  listen.h - the gateway's listening socket, from "HOST:PORT" */
#ifndef GW_LISTEN_H
#define GW_LISTEN_H

#include <stdbool.h>

//  A new non-blocking socket listening on "HOST:PORT" ("[v6]:PORT" too; an
//  empty HOST is every address, PORT 0 a free port), its address family in
//  *family. Returns the socket (the caller closes it), or -1 after logging
//  one line.
int gw_listen_socket (const char *listen_on, int *family);

//  The TCP port the socket fd is bound to, or 0.
int gw_listen_port (int fd);

void gw_listen_test (bool verbose);

#endif
