/*  ssrf.c - which addresses an outgoing call may connect to

    Two tables of blocked ranges, IPv4 and IPv6, first match wins. IPv6
    outside 2000::/3 (the only global unicast block assigned) is reserved.
*/
#include "ssrf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    uint32_t net;       //  network address, host byte order
    int bits;           //  prefix length
    const char *reason; //  why it is blocked
} s_v4_range_t;

static const s_v4_range_t s_v4_blocked[] = {
    {0x00000000, 8, "unspecified"}, //  0.0.0.0/8 "this network"
    {0x0A000000, 8, "private"},     //  10/8
    {0x64400000, 10, "CGNAT"},      //  100.64/10 shared address space
    {0x7F000000, 8, "loopback"},    //  127/8
    {0xA9FE0000, 16, "link-local"}, //  169.254/16, cloud metadata lives here
    {0xAC100000, 12, "private"},    //  172.16/12
    {0xC0000000, 24, "reserved"},   //  192.0.0/24 IETF protocol assignments
    {0xC0000200, 24, "reserved"},   //  192.0.2/24 documentation
    {0xC0586300, 24, "reserved"},   //  192.88.99/24 6to4 relay anycast
    {0xC0A80000, 16, "private"},    //  192.168/16
    {0xC6120000, 15, "reserved"},   //  198.18/15 benchmarking
    {0xC6336400, 24, "reserved"},   //  198.51.100/24 documentation
    {0xCB007100, 24, "reserved"},   //  203.0.113/24 documentation
    {0xE0000000, 4, "multicast"},   //  224/4
    {0xFFFFFFFF, 32, "broadcast"},  //  255.255.255.255, before 240/4
    {0xF0000000, 4, "reserved"},    //  240/4
};

typedef struct {
    uint8_t net[16];    //  network address
    int bits;           //  prefix length
    const char *reason; //  why it is blocked (NULL: it is not)
    int v4_at;          //  offset of an IPv4 address inside, judged first; 0: none
} s_v6_range_t;

static const s_v6_range_t s_v6_blocked[] = {
    {{0}, 128, "unspecified", 0},                    //  ::
    {{[15] = 1}, 128, "loopback", 0},                //  ::1
    {{[10] = 0xff, [11] = 0xff}, 96, NULL, 12},      //  ::ffff:a.b.c.d mapped
    {{[8] = 0xff, [9] = 0xff}, 96, NULL, 12},        //  ::ffff:0:a.b.c.d translated
    {{0}, 96, "reserved", 12},                       //  ::a.b.c.d compatible (deprecated)
    {{0, 0x64, 0xff, 0x9b}, 96, NULL, 12},           //  64:ff9b::/96 NAT64
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, "private", 0}, //  64:ff9b:1::/48 local NAT64
    {{1}, 64, "reserved", 0},                        //  100::/64 discard
    {{0x20, 0x01}, 23, "reserved", 0},               //  2001::/23 incl. Teredo
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "reserved", 0},   //  2001:db8::/32 documentation
    {{0x20, 0x02}, 16, NULL, 2},                     //  2002::/16 6to4
    {{0xfc}, 7, "private", 0},                       //  fc00::/7 unique local
    {{0xfe, 0x80}, 10, "link-local", 0},             //  fe80::/10
    {{0xfe, 0xc0}, 10, "private", 0},                //  fec0::/10 old site-local
    {{0xff}, 8, "multicast", 0},                     //  ff00::/8
};

static const char *s_v4_reason (uint32_t addr) {
    for (size_t i = 0; i < sizeof s_v4_blocked / sizeof *s_v4_blocked; i++) {
        const s_v4_range_t *range = &s_v4_blocked[i];
        uint32_t mask = range->bits ? 0xFFFFFFFFu << (32 - range->bits) : 0;
        if ((addr & mask) == range->net)
            return range->reason;
    }
    return NULL;
}

static bool s_v6_match (const uint8_t *addr, const s_v6_range_t *range) {
    int whole = range->bits / 8, rest = range->bits % 8;
    if (memcmp (addr, range->net, (size_t) whole) != 0)
        return false;
    uint8_t mask = (uint8_t) (0xFF << (8 - rest));
    return rest == 0 || (addr[whole] & mask) == (range->net[whole] & mask);
}

static const char *s_v6_reason (const uint8_t *addr) {
    for (size_t i = 0; i < sizeof s_v6_blocked / sizeof *s_v6_blocked; i++) {
        const s_v6_range_t *range = &s_v6_blocked[i];
        if (!s_v6_match (addr, range))
            continue;
        if (range->v4_at) {
            const uint8_t *v4 = addr + range->v4_at;
            const char *reason = s_v4_reason ((uint32_t) v4[0] << 24 | (uint32_t) v4[1] << 16 |
                                              (uint32_t) v4[2] << 8 | v4[3]);
            if (reason)
                return reason;
        }
        return range->reason;
    }
    return (addr[0] & 0xE0) == 0x20 ? NULL : "reserved";
}

const char *wk_ssrf_reason (const struct sockaddr *addr, size_t size) {
    if (addr && addr->sa_family == AF_INET && size >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        return s_v4_reason (ntohl (in->sin_addr.s_addr));
    }
    if (addr && addr->sa_family == AF_INET6 && size >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
        return s_v6_reason (in6->sin6_addr.s6_addr);
    }
    return "non-IP";
}

char *wk_ssrf_format (const struct sockaddr *addr, size_t size, char *buf) {
    const void *raw = NULL;
    if (addr && addr->sa_family == AF_INET && size >= sizeof (struct sockaddr_in))
        raw = &((const struct sockaddr_in *) addr)->sin_addr;
    else if (addr && addr->sa_family == AF_INET6 && size >= sizeof (struct sockaddr_in6))
        raw = &((const struct sockaddr_in6 *) addr)->sin6_addr;
    if (!raw || !inet_ntop (addr->sa_family, raw, buf, WK_SSRF_TEXT))
        snprintf (buf, WK_SSRF_TEXT, "?");
    return buf;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Parses text as a numeric host, as curl does with a bracketed IPv6 or a
//  dotted IPv4 in a URL; returns its reason and its printed form in buf.
static const char *s_reason_of (const char *text, char *buf) {
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo (text, NULL, &hints, &list);
    assert (rc == 0 && list);
    wk_ssrf_format (list->ai_addr, list->ai_addrlen, buf);
    const char *reason = wk_ssrf_reason (list->ai_addr, list->ai_addrlen);
    freeaddrinfo (list);
    return reason;
}

//  The IPv4 address curl connects to for an inet_aton spelling of a host.
static const char *s_reason_of_aton (const char *text) {
    struct sockaddr_in in = {.sin_family = AF_INET};
    int rc = inet_aton (text, &in.sin_addr);
    assert (rc == 1);
    char buf[WK_SSRF_TEXT];
    assert (strcmp (wk_ssrf_format ((struct sockaddr *) &in, sizeof in, buf), "127.0.0.1") == 0);
    return wk_ssrf_reason ((struct sockaddr *) &in, sizeof in);
}

static bool s_same (const char *a, const char *b) {
    return a == b || (a && b && strcmp (a, b) == 0);
}

void wk_ssrf_test (bool verbose) {
    static const struct {
        const char *text;   //  numeric address
        const char *reason; //  expected, NULL: allowed
    } cases[] = {
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"10.1.2.3", "private"},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"172.32.0.1", NULL},
        {"192.168.1.1", "private"},
        {"169.254.169.254", "link-local"},
        {"100.64.0.1", "CGNAT"},
        {"100.127.255.255", "CGNAT"},
        {"100.128.0.1", NULL},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"240.0.0.1", "reserved"},
        {"255.255.255.255", "broadcast"},
        {"192.0.2.7", "reserved"},
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"93.184.216.34", NULL},
        {"11.0.0.1", NULL},
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
        {"fc00::1", "private"},
        {"fd12:3456::1", "private"},
        {"fec0::1", "private"},
        {"ff02::1", "multicast"},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:10.0.0.1", "private"},
        {"::ffff:169.254.169.254", "link-local"},
        {"::ffff:8.8.8.8", NULL},
        {"::ffff:0:127.0.0.1", "loopback"},
        {"::127.0.0.1", "loopback"},
        {"::8.8.8.8", "reserved"},
        {"64:ff9b::7f00:1", "loopback"},
        {"64:ff9b::808:808", NULL},
        {"64:ff9b::a9fe:a9fe", "link-local"},
        {"64:ff9b:1::1", "private"},
        {"2002:7f00:1::", "loopback"},
        {"2002:c0a8:101::1", "private"},
        {"2002:808:808::1", NULL},
        {"2001:db8::1", "reserved"},
        {"2001::1", "reserved"},
        {"100::1", "reserved"},
        {"4000::1", "reserved"},
        {"2606:4700:4700::1111", NULL},
        {"2a00:1450:4001:80b::200e", NULL},
    };
    char buf[WK_SSRF_TEXT];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *reason = s_reason_of (cases[i].text, buf);
        if (verbose)
            printf ("  %-26s %-26s %s\n", cases[i].text, buf, reason ? reason : "allowed");
        assert (s_same (reason, cases[i].reason));
    }
    assert (s_same (s_reason_of ("::ffff:127.0.0.1", buf), "loopback")); //  [::ffff:127.0.0.1]
    assert (strcmp (buf, "::ffff:127.0.0.1") == 0);
    assert (s_same (s_reason_of ("fd00::0001", buf), "private"));
    assert (strcmp (buf, "fd00::1") == 0);
    //  What curl makes of the numeric spellings of loopback in a URL
    const char *spellings[] = {"127.1",      "2130706433",   "0x7f.1",
                               "0x7f000001", "017700000001", "127.0.1"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++)
        assert (s_same (s_reason_of_aton (spellings[i]), "loopback"));

    //  Not an IP address, or too short to be one
    struct sockaddr unix_addr = {.sa_family = AF_UNIX};
    assert (s_same (wk_ssrf_reason (&unix_addr, sizeof unix_addr), "non-IP"));
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    assert (s_same (wk_ssrf_reason ((struct sockaddr *) &in6, sizeof in6), "unspecified"));
    assert (s_same (wk_ssrf_reason ((struct sockaddr *) &in6, 8), "non-IP"));
    assert (s_same (wk_ssrf_reason (NULL, 0), "non-IP"));
    assert (strcmp (wk_ssrf_format (&unix_addr, sizeof unix_addr, buf), "?") == 0);
}
