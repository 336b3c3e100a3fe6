/*  ssrf.c - fuzzes the SSRF address classifier (workers/ssrf.c)

    Input: a selector byte, then an address (4 bytes IPv4, 16 bytes IPv6)
    or, with selector 2 mod 3, raw sockaddr bytes of any family and size.
    An IPv4 address is judged the same inside every IPv6 form that carries
    it (mapped exactly; translated, NAT64 and 6to4 never more leniently);
    IPv6 outside 2000::/3 is public only with an IPv4 inside; the printed address parses back
    to the same address.
*/
#include "fuzz.h"
#include "ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static const char *s_v6 (const uint8_t addr[16]) {
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    memcpy (in6.sin6_addr.s6_addr, addr, 16);
    char text[WK_SSRF_TEXT];
    wk_ssrf_format ((struct sockaddr *) &in6, sizeof in6, text);
    struct in6_addr back;
    FUZZ_CHECK (inet_pton (AF_INET6, text, &back) == 1 && memcmp (&back, addr, 16) == 0);
    return wk_ssrf_reason ((struct sockaddr *) &in6, sizeof in6);
}

//  v4 inside the IPv6 prefix of the given bytes, at offset at.
static const char *s_carried (const uint8_t v4[4], const uint8_t *prefix, size_t prefix_size,
                              size_t at) {
    uint8_t addr[16] = {0};
    if (prefix_size)
        memcpy (addr, prefix, prefix_size);
    memcpy (addr + at, v4, 4);
    return s_v6 (addr);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
    int which = (int) (fuzz_take (&data, &size, 1) % 3);
    if (which == 0 && size >= 4) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy (&in.sin_addr, data, 4);
        const char *reason = wk_ssrf_reason ((struct sockaddr *) &in, sizeof in);
        char text[WK_SSRF_TEXT];
        wk_ssrf_format ((struct sockaddr *) &in, sizeof in, text);
        struct in_addr back;
        FUZZ_CHECK (inet_pton (AF_INET, text, &back) == 1 && memcmp (&back, data, 4) == 0);
        static const uint8_t mapped[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t translated[] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t nat64[] = {0, 0x64, 0xff, 0x9b};
        static const uint8_t six_to_four[] = {0x20, 0x02};
        const char *as_mapped = s_carried (data, mapped, sizeof mapped, 12);
        FUZZ_CHECK (reason ? as_mapped && strcmp (reason, as_mapped) == 0 : !as_mapped);
        FUZZ_CHECK (!reason || s_carried (data, translated, sizeof translated, 12));
        FUZZ_CHECK (!reason || s_carried (data, nat64, sizeof nat64, 12));
        FUZZ_CHECK (!reason || s_carried (data, six_to_four, sizeof six_to_four, 2));
        FUZZ_CHECK (s_carried (data, NULL, 0, 12)); //  ::a.b.c.d, deprecated
    } else if (which == 1 && size >= 16) {
        const char *reason = s_v6 (data);
        static const uint8_t zeros[10] = {0}, nat64[12] = {0, 0x64, 0xff, 0x9b};
        bool carries_v4 =
            (memcmp (data, zeros, 10) == 0 &&
             ((data[10] == 0xff && data[11] == 0xff) || (data[10] == 0 && data[11] == 0))) ||
            (memcmp (data, zeros, 8) == 0 && data[8] == 0xff && data[9] == 0xff && data[10] == 0 &&
             data[11] == 0) ||
            memcmp (data, nat64, 12) == 0;
        //  public: global unicast, or a public IPv4 inside
        FUZZ_CHECK (reason || (data[0] & 0xE0) == 0x20 || carries_v4);
    } else if (which == 2) {
        //  any family and length: "non-IP" or a reason, never a read past size
        uint8_t *copy = malloc (size ? size : 1);
        FUZZ_CHECK (copy);
        memcpy (copy, data, size);
        char text[WK_SSRF_TEXT];
        if (size >= sizeof (sa_family_t)) {
            wk_ssrf_reason ((struct sockaddr *) copy, size);
            wk_ssrf_format ((struct sockaddr *) copy, size, text);
            FUZZ_CHECK (memchr (text, 0, sizeof text));
        }
        free (copy);
    }
    return 0;
}
