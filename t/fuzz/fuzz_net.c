
/*
 * Copyright (C) The Seadragon authors
 *
 * The address encodings of the store codec
 * (ngx_seadragon_module/ngx_http_seadragon_store_codec.c) on any bytes:
 * the same bytes are read as the text of an address or CIDR range (what
 * the tool and the admin API parse), as a whitelist key (what the admin
 * API decodes when it lists the store) and as a client's socket address.
 *
 *  - a parsed network is canonical: family 4 or 6, a prefix within its
 *    bits, no host bits, unused bytes zero, no IPv4-mapped IPv6 form;
 *    formatting it gives text that parses back to the same network and
 *    formats to the same text; its whitelist key decodes back to it;
 *    it contains itself and every address under it, and no address
 *    that differs in a prefix bit;
 *  - text that does not parse gets one of the codec's sentences;
 *  - a key that decodes encodes back to the same bytes; its text parses
 *    back to it unless it has host bits or is IPv4-mapped;
 *  - a client address becomes a full-length network, IPv4-mapped IPv6
 *    addresses their IPv4 address;
 *  - formatting into any buffer size stays inside the buffer and ends
 *    with a NUL.
 */


#include "fuzz.h"
#include "ngx_http_seadragon_store_codec.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>


static const char  *fuzz_net_errors[] = {
    "not an IP address or CIDR range",
    "the prefix length after \"/\" must be a number",
    "an IPv4 prefix length is 0 to 32",
    "an IPv6 prefix length is 0 to 128",
    "the address has host bits set beyond its prefix length",
    NULL
};


static unsigned
fuzz_net_bits(const seadragon_net_t *net)
{
    return net->family == 4 ? 32 : 128;
}


/* bit i of the address, counted from the most significant */

static int
fuzz_net_bit(const seadragon_net_t *net, unsigned i)
{
    return (net->addr[i / 8] >> (7 - i % 8)) & 1;
}


static int
fuzz_net_equal(const seadragon_net_t *a, const seadragon_net_t *b)
{
    return a->family == b->family && a->prefix == b->prefix
           && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}


static int
fuzz_net_mapped(const seadragon_net_t *net)
{
    static const uint8_t  mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0xff, 0xff };

    return net->family == 6 && memcmp(net->addr, mapped, 12) == 0;
}


/* no host bits, by the bits themselves rather than seadragon_net_mask */

static int
fuzz_net_no_host_bits(const seadragon_net_t *net)
{
    unsigned  i;

    for (i = net->prefix; i < fuzz_net_bits(net); i++) {
        if (fuzz_net_bit(net, i)) {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_net_check_format(const seadragon_net_t *net, const uint8_t *data,
    size_t size)
{
    char    *buf, text[SEADRAGON_NET_TEXT_LEN];
    size_t   len;

    /* the whole text, then the same into a buffer of the input's choice */

    seadragon_net_format(net, text, sizeof(text));

    len = strlen(text);
    fuzz_check(len > 0 && len < sizeof(text), "formatted to %zu bytes", len);

    len = size ? data[0] % (sizeof(text) + 1) : 0;
    if (len == 0) {
        return;
    }

    buf = malloc(len);
    fuzz_check(buf != NULL, "out of memory");

    seadragon_net_format(net, buf, len);

    fuzz_check(memchr(buf, '\0', len) != NULL
               && strncmp(buf, text, len - 1) == 0,
               "formatting into %zu bytes gave \"%.*s\" for \"%s\"", len,
               (int) len, buf, text);

    free(buf);
}


static void
fuzz_net_check_parsed(const seadragon_net_t *net, const uint8_t *data,
    size_t size)
{
    char             text[SEADRAGON_NET_TEXT_LEN];
    char             again[SEADRAGON_NET_TEXT_LEN];
    size_t           len, n;
    unsigned         i, bits;
    uint8_t          key[SEADRAGON_NET_KEY_LEN];
    const char      *error;
    seadragon_net_t  back, addr, masked, other;

    fuzz_check(net->family == 4 || net->family == 6, "family %u",
               net->family);

    bits = fuzz_net_bits(net);

    fuzz_check(net->prefix <= bits, "prefix %u of %u bits", net->prefix,
               bits);
    fuzz_check(fuzz_net_no_host_bits(net), "host bits set");
    fuzz_check(net->family == 6 || memcmp(net->addr + 4,
               "\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0,
               "an IPv4 network with bytes past its address");
    fuzz_check(!(fuzz_net_mapped(net) && net->prefix >= 96),
               "an IPv4-mapped network left in IPv6 form");

    /* text and back, to a fixed point */

    seadragon_net_format(net, text, sizeof(text));

    fuzz_check(seadragon_net_parse(text, strlen(text), &back, &error) == 0,
               "\"%s\" does not parse back: %s", text, error);
    fuzz_check(fuzz_net_equal(net, &back), "\"%s\" parses to another network",
               text);

    seadragon_net_format(&back, again, sizeof(again));
    fuzz_check(strcmp(text, again) == 0, "\"%s\" formats as \"%s\"", text,
               again);

    fuzz_net_check_format(net, data, size);

    /* the whitelist key and back */

    len = seadragon_net_key(net, key);
    fuzz_check(len == 2 + bits / 8, "a key of %zu bytes", len);
    fuzz_check(seadragon_net_from_key(key, len, &back) == 0
               && fuzz_net_equal(net, &back), "its key does not decode");

    /* masking is idempotent */

    masked = *net;
    seadragon_net_mask(&masked, net->prefix);
    fuzz_check(fuzz_net_equal(net, &masked), "masking changed it");

    /* an address under it, host bits from the input */

    addr = *net;
    addr.prefix = (uint8_t) bits;

    for (i = net->prefix, n = 0; i < bits; i++, n++) {
        if (size && (data[n % size] >> (n % 8)) & 1) {
            addr.addr[i / 8] |= (uint8_t) (0x80 >> (i % 8));
        }
    }

    fuzz_check(seadragon_net_contains(net, net), "does not contain itself");
    fuzz_check(seadragon_net_contains(net, &addr),
               "does not contain an address under it");

    masked = addr;
    seadragon_net_mask(&masked, net->prefix);
    fuzz_check(fuzz_net_equal(net, &masked),
               "an address under it masks to another network");

    /* flipping a bit of the prefix leaves it */

    if (net->prefix > 0) {
        i = size ? data[size - 1] % net->prefix : 0;
        other = addr;
        other.addr[i / 8] ^= (uint8_t) (0x80 >> (i % 8));

        fuzz_check(!seadragon_net_contains(net, &other),
                   "contains an address outside it (bit %u)", i);
    }

    /* a network of the other family contains nothing of this one */

    other = *net;
    other.family = net->family == 4 ? 6 : 4;
    other.prefix = 0;
    memset(other.addr, 0, sizeof(other.addr));

    fuzz_check(!seadragon_net_contains(&other, &addr),
               "a network of the other family contains it");
}


static void
fuzz_net_text(const uint8_t *data, size_t size)
{
    int               rc, known;
    const char       *error;
    seadragon_net_t   net;

    error = NULL;

    rc = seadragon_net_parse((const char *) data, size, &net, &error);

    if (rc == 0) {
        fuzz_check(size > 0 && size < SEADRAGON_NET_TEXT_LEN,
                   "parsed %zu bytes", size);
        fuzz_check(memchr(data, '\0', size) == NULL,
                   "parsed text with a NUL byte in it");
        fuzz_net_check_parsed(&net, data, size);
        return;
    }

    fuzz_check(rc == -1, "parse returned %d", rc);

    known = 0;
    for (size_t i = 0; fuzz_net_errors[i]; i++) {
        if (error && strcmp(error, fuzz_net_errors[i]) == 0) {
            known = 1;
        }
    }

    fuzz_check(known, "an unknown error: %s", error ? error : "(none)");
}


static void
fuzz_net_key(const uint8_t *data, size_t size)
{
    char              text[SEADRAGON_NET_TEXT_LEN];
    size_t            len;
    uint8_t           key[SEADRAGON_NET_KEY_LEN];
    const char       *error;
    seadragon_net_t   net, back;

    if (seadragon_net_from_key(data, size, &net) != 0) {
        return;
    }

    fuzz_check(net.family == 4 || net.family == 6, "family %u", net.family);
    fuzz_check(net.prefix <= fuzz_net_bits(&net), "prefix %u", net.prefix);

    len = seadragon_net_key(&net, key);
    fuzz_check(len == size && memcmp(key, data, size) == 0,
               "a decoded key encodes to other bytes");

    seadragon_net_format(&net, text, sizeof(text));
    fuzz_net_check_format(&net, data, size);

    if (!fuzz_net_no_host_bits(&net)) {
        fuzz_check(seadragon_net_parse(text, strlen(text), &back, &error)
                   == -1, "\"%s\" with host bits parsed", text);
        return;
    }

    fuzz_check(seadragon_net_parse(text, strlen(text), &back, &error) == 0,
               "\"%s\" from a key does not parse: %s", text, error);

    if (fuzz_net_mapped(&net) && net.prefix >= 96) {
        fuzz_check(back.family == 4 && back.prefix == net.prefix - 96
                   && memcmp(back.addr, net.addr + 12, 4) == 0,
                   "\"%s\" is not its IPv4 network", text);
        return;
    }

    fuzz_check(fuzz_net_equal(&net, &back), "\"%s\" parses to another network",
               text);
}


static void
fuzz_net_sockaddr(const uint8_t *data, size_t size)
{
    struct sockaddr_un    sun;
    struct sockaddr_in    sin;
    struct sockaddr_in6   sin6;
    seadragon_net_t       net;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;

    fuzz_check(seadragon_net_from_sockaddr((struct sockaddr *) &sun, &net)
               == -1, "a unix-domain client has an address");

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    memcpy(&sin6.sin6_addr, data, size < 16 ? size : 16);

    fuzz_check(seadragon_net_from_sockaddr((struct sockaddr *) &sin6, &net)
               == 0, "an IPv6 client refused");

    if (memcmp(&sin6.sin6_addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        fuzz_check(net.family == 4 && net.prefix == 32
                   && memcmp(net.addr, sin6.sin6_addr.s6_addr + 12, 4) == 0,
                   "an IPv4-mapped client is not its IPv4 address");

    } else {
        fuzz_check(net.family == 6 && net.prefix == 128
                   && memcmp(net.addr, &sin6.sin6_addr, 16) == 0,
                   "an IPv6 client is not itself");
    }

    fuzz_net_check_parsed(&net, data, size);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr, data, size < 4 ? size : 4);

    fuzz_check(seadragon_net_from_sockaddr((struct sockaddr *) &sin, &net)
               == 0 && net.family == 4 && net.prefix == 32
               && memcmp(net.addr, &sin.sin_addr, 4) == 0,
               "an IPv4 client is not itself");

    fuzz_net_check_parsed(&net, data, size);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_net_text(data, size);
    fuzz_net_key(data, size);

    fuzz_net_sockaddr(data, size);

    return 0;
}
