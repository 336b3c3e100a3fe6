/*  ssrf.h - which addresses an outgoing call may connect to

    A pure classification of one socket address, used on the address curl is
    about to connect to (after DNS, so names that resolve to private
    addresses and numeric spellings such as 127.1 or 2130706433 are judged
    by where they really lead). IPv6 forms that carry an IPv4 address
    (mapped, compatible, NAT64, 6to4) are judged by the IPv4 inside.
*/
#ifndef WK_SSRF_H
#define WK_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define WK_SSRF_TEXT 64 //  room for any address wk_ssrf_format writes

//  Why a call must not connect to addr: a static text, "loopback",
//  "private", "link-local", "CGNAT", "multicast", "broadcast",
//  "unspecified", "reserved" or "non-IP"; NULL when addr is public unicast.
//  size is the length of *addr; a short one is "non-IP".
const char *wk_ssrf_reason (const struct sockaddr *addr, size_t size);

//  Writes the numeric address without port ("127.0.0.1", "::ffff:10.0.0.1")
//  into buf of WK_SSRF_TEXT bytes; returns buf ("?" for a non-IP address).
char *wk_ssrf_format (const struct sockaddr *addr, size_t size, char *buf);

void wk_ssrf_test (bool verbose);

#endif
