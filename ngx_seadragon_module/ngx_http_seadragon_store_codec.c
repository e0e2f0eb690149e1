
/*
 * Copyright (C) The Seadragon authors
 *
 * The bytes of a seadragon store: address and key encodings, the two
 * lookups, and the writes that must keep the whitelist's prefix counts
 * exact (used by scripts/seadragon-store only).  Shared by the module and
 * scripts/seadragon-store; see the header for the layout.
 */


#include "ngx_http_seadragon_store_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


static int seadragon_whitelist_count(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, const seadragon_net_t *net, int delta);


static const uint8_t  seadragon_v4_mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};


static unsigned
seadragon_net_bits(const seadragon_net_t *net)
{
    return net->family == 4 ? 32 : 128;
}


static void
seadragon_net_unmap(seadragon_net_t *net)
{
    if (net->family == 6
        && memcmp(net->addr, seadragon_v4_mapped, 12) == 0
        && net->prefix >= 96)
    {
        memmove(net->addr, net->addr + 12, 4);
        memset(net->addr + 4, 0, 12);
        net->family = 4;
        net->prefix -= 96;
    }
}


int
seadragon_net_parse(const char *text, size_t len, seadragon_net_t *net,
    const char **error)
{
    char           buf[SEADRAGON_NET_TEXT_LEN];
    char          *slash, *end;
    unsigned long  prefix;
    seadragon_net_t  masked;

    /* a NUL would end the text early: "10.0.0.1\0junk" is not an address */

    if (len == 0 || len >= sizeof(buf) || memchr(text, '\0', len) != NULL) {
        *error = "not an IP address or CIDR range";
        return -1;
    }

    memcpy(buf, text, len);
    buf[len] = '\0';

    memset(net, 0, sizeof(seadragon_net_t));

    slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
    }

    if (inet_pton(AF_INET, buf, net->addr) == 1) {
        net->family = 4;

    } else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
        net->family = 6;

    } else {
        *error = "not an IP address or CIDR range";
        return -1;
    }

    net->prefix = (uint8_t) seadragon_net_bits(net);

    if (slash) {
        if (slash[1] < '0' || slash[1] > '9') {
            *error = "the prefix length after \"/\" must be a number";
            return -1;
        }

        prefix = strtoul(slash + 1, &end, 10);

        if (*end != '\0' || prefix > seadragon_net_bits(net)
            || (end - (slash + 1)) > 3)
        {
            *error = net->family == 4
                     ? "an IPv4 prefix length is 0 to 32"
                     : "an IPv6 prefix length is 0 to 128";
            return -1;
        }

        net->prefix = (uint8_t) prefix;
    }

    masked = *net;
    seadragon_net_mask(&masked, net->prefix);

    if (memcmp(masked.addr, net->addr, sizeof(net->addr)) != 0) {
        *error = "the address has host bits set beyond its prefix length";
        return -1;
    }

    seadragon_net_unmap(net);

    return 0;
}


int
seadragon_net_from_sockaddr(const struct sockaddr *sa, seadragon_net_t *net)
{
    memset(net, 0, sizeof(seadragon_net_t));

    switch (sa->sa_family) {

    case AF_INET:
        net->family = 4;
        net->prefix = 32;
        memcpy(net->addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        return 0;

    case AF_INET6:
        net->family = 6;
        net->prefix = 128;
        memcpy(net->addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
        seadragon_net_unmap(net);
        return 0;

    default:
        return -1;
    }
}


void
seadragon_net_mask(seadragon_net_t *net, unsigned prefix)
{
    unsigned  i, bits;

    bits = seadragon_net_bits(net);

    for (i = 0; i < bits / 8; i++) {
        if (prefix >= (i + 1) * 8) {
            continue;
        }

        if (prefix <= i * 8) {
            net->addr[i] = 0;

        } else {
            net->addr[i] &= (uint8_t) (0xff << (8 - (prefix - i * 8)));
        }
    }

    net->prefix = (uint8_t) prefix;
}


size_t
seadragon_net_key(const seadragon_net_t *net, uint8_t *key)
{
    size_t  n;

    n = seadragon_net_bits(net) / 8;

    key[0] = net->family;
    key[1] = net->prefix;
    memcpy(key + 2, net->addr, n);

    return 2 + n;
}


int
seadragon_net_from_key(const uint8_t *key, size_t len, seadragon_net_t *net)
{
    memset(net, 0, sizeof(seadragon_net_t));

    if (len < 2 || (key[0] != 4 && key[0] != 6)) {
        return -1;
    }

    net->family = key[0];
    net->prefix = key[1];

    if (len != 2 + seadragon_net_bits(net) / 8
        || net->prefix > seadragon_net_bits(net))
    {
        return -1;
    }

    memcpy(net->addr, key + 2, len - 2);

    return 0;
}


void
seadragon_net_format(const seadragon_net_t *net, char *buf, size_t size)
{
    char  text[INET6_ADDRSTRLEN];

    inet_ntop(net->family == 4 ? AF_INET : AF_INET6, net->addr, text,
              sizeof(text));

    if (net->prefix == seadragon_net_bits(net)) {
        snprintf(buf, size, "%s", text);

    } else {
        snprintf(buf, size, "%s/%u", text, net->prefix);
    }
}


int
seadragon_net_contains(const seadragon_net_t *net, const seadragon_net_t *addr)
{
    seadragon_net_t  masked;

    if (net->family != addr->family || net->prefix > addr->prefix) {
        return 0;
    }

    masked = *addr;
    seadragon_net_mask(&masked, net->prefix);

    return memcmp(masked.addr, net->addr, sizeof(net->addr)) == 0;
}


int
seadragon_store_open_dbs(MDB_txn *txn, seadragon_store_dbs_t *dbs,
    unsigned flags)
{
    int  rc;

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_META, flags, &dbs->meta);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_WHITELIST, flags,
                      &dbs->whitelist);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_KEYS, flags, &dbs->keys);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_KEY_NAMES, flags,
                      &dbs->key_names);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    /* a store from before usage was counted, or logins, has none yet */

    dbs->usage = 0;

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_USAGE, flags, &dbs->usage);

    if (rc != MDB_SUCCESS && !(rc == MDB_NOTFOUND && !(flags & MDB_CREATE))) {
        return rc;
    }

    dbs->users = 0;

    rc = mdb_dbi_open(txn, SEADRAGON_STORE_DB_USERS, flags, &dbs->users);

    return (rc == MDB_NOTFOUND && !(flags & MDB_CREATE)) ? MDB_SUCCESS : rc;
}


int
seadragon_store_create(MDB_txn *txn, seadragon_store_dbs_t *dbs)
{
    int       rc;
    uint32_t  counts[129];
    MDB_val   k, v;

    rc = seadragon_store_open_dbs(txn, dbs, MDB_CREATE);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    memset(counts, 0, sizeof(counts));

    k.mv_data = "prefixes4";
    k.mv_size = sizeof("prefixes4") - 1;
    v.mv_data = counts;
    v.mv_size = 33 * sizeof(uint32_t);

    rc = mdb_put(txn, dbs->meta, &k, &v, 0);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = "prefixes6";
    v.mv_size = 129 * sizeof(uint32_t);

    rc = mdb_put(txn, dbs->meta, &k, &v, 0);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    /* the marker last: a store with it is complete */

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;
    v.mv_data = SEADRAGON_STORE_FORMAT;
    v.mv_size = sizeof(SEADRAGON_STORE_FORMAT) - 1;

    return mdb_put(txn, dbs->meta, &k, &v, 0);
}


/*
 * LMDB's data file, format 1 (liblmdb 0.9), 64-bit build: two meta pages
 * at offsets 0 and the page size.  A page starts with a 16-byte header
 * (pgno 8, pad 2, flags 2, lower 2, upper 2); the meta follows it: magic
 * 4, version 4, address 8, map size 8, two MDB_db of 48 bytes (free,
 * main; the free one's first 4 bytes are the page size, its root at 40),
 * last page 8, txnid 8.  The module checks at each open that what this
 * reads agrees with mdb_env_info() and mdb_env_stat().
 */

#define SEADRAGON_LMDB_META_LEN         152
#define SEADRAGON_LMDB_P_META           0x08
#define SEADRAGON_LMDB_MAGIC            0xBEEFC0DEU
#define SEADRAGON_LMDB_VERSION          1
#define SEADRAGON_LMDB_P_INVALID        UINT64_MAX


static uint64_t
seadragon_u64(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, sizeof(v));
    return v;
}


static uint32_t
seadragon_u32(const uint8_t *p)
{
    uint32_t  v;

    memcpy(&v, p, sizeof(v));
    return v;
}


int
seadragon_store_check_file(int fd, seadragon_store_file_t *file,
    const char **error)
{
    int          i;
    size_t       psize;
    ssize_t      n;
    uint8_t      page[SEADRAGON_LMDB_META_LEN];
    uint16_t     flags;
    uint64_t     txnid, last, map, root[2], pages;
    struct stat  st;

    if (fstat(fd, &st) == -1) {
        *error = "fstat() failed";
        return -1;
    }

    if (st.st_nlink == 0) {
        *error = "data.mdb was removed or replaced";
        return -1;
    }

    memset(file, 0, sizeof(seadragon_store_file_t));
    file->size = (uint64_t) st.st_size;

    psize = 0;

    for (i = 0; i < 2; i++) {

        n = pread(fd, page, sizeof(page), (off_t) (i * psize));

        if (n != (ssize_t) sizeof(page)) {
            *error = n == -1 ? "data.mdb cannot be read"
                     : file->size == 0 ? "data.mdb is empty (truncated?)"
                     : "data.mdb is shorter than LMDB's two meta pages "
                       "(truncated?)";
            return -1;
        }

        memcpy(&flags, page + 10, sizeof(flags));

        if (!(flags & SEADRAGON_LMDB_P_META)
            || seadragon_u32(page + 16) != SEADRAGON_LMDB_MAGIC)
        {
            *error = "data.mdb is not an LMDB file (overwritten?)";
            return -1;
        }

        if (seadragon_u32(page + 20) != SEADRAGON_LMDB_VERSION) {
            *error = "data.mdb is of another LMDB format version";
            return -1;
        }

        if (i == 0) {
            psize = seadragon_u32(page + 40);

            if (psize < 512 || psize > 65536 || (psize & (psize - 1))) {
                *error = "data.mdb names an impossible page size "
                         "(overwritten?)";
                return -1;
            }

            if (file->size < 2 * psize) {
                *error = "data.mdb is shorter than LMDB's two meta pages "
                         "(truncated?)";
                return -1;
            }

        } else if (seadragon_u32(page + 40) != psize) {
            *error = "the meta pages of data.mdb disagree (overwritten?)";
            return -1;
        }

        map = seadragon_u64(page + 32);
        root[0] = seadragon_u64(page + 80);
        root[1] = seadragon_u64(page + 128);
        last = seadragon_u64(page + 136);
        txnid = seadragon_u64(page + 144);

        /*
         * The file may end before the last page when the pages at its
         * end are free; a tree's root is never one of them.
         */

        pages = file->size / psize;

        if (last < 1 || last > UINT64_MAX / psize
            || (root[0] != SEADRAGON_LMDB_P_INVALID
                && (root[0] < 2 || root[0] >= pages || root[0] > last))
            || (root[1] != SEADRAGON_LMDB_P_INVALID
                && (root[1] < 2 || root[1] >= pages || root[1] > last)))
        {
            *error = "the trees of data.mdb lie outside the file "
                     "(truncated or overwritten?)";
            return -1;
        }

        if (i == 0 || txnid > file->txnid) {
            file->txnid = txnid;
            file->last_pgno = last;
        }

        if (map > file->map_size) {
            file->map_size = map;
        }
    }

    file->psize = psize;

    return 0;
}


int
seadragon_store_check_format(MDB_txn *txn, const seadragon_store_dbs_t *dbs)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    rc = mdb_get(txn, dbs->meta, &k, &v);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (v.mv_size != sizeof(SEADRAGON_STORE_FORMAT) - 1
        || memcmp(v.mv_data, SEADRAGON_STORE_FORMAT, v.mv_size) != 0)
    {
        return MDB_NOTFOUND;
    }

    return MDB_SUCCESS;
}


int
seadragon_whitelist_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *addr)
{
    int              rc;
    unsigned         prefix, bits;
    uint8_t          key[SEADRAGON_NET_KEY_LEN];
    uint32_t         counts[129];
    MDB_val          k, v;
    seadragon_net_t  net;

    bits = seadragon_net_bits(addr);

    k.mv_data = (void *) (addr->family == 4 ? "prefixes4" : "prefixes6");
    k.mv_size = sizeof("prefixes4") - 1;

    rc = mdb_get(txn, dbs->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return MDB_NOTFOUND;
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (v.mv_size != (bits + 1) * sizeof(uint32_t)) {
        return MDB_CORRUPTED;
    }

    memcpy(counts, v.mv_data, v.mv_size);

    /* the most specific prefixes first: they are the most common */

    for (prefix = bits + 1; prefix-- > 0; /* void */) {

        if (counts[prefix] == 0) {
            continue;
        }

        net = *addr;
        seadragon_net_mask(&net, prefix);

        k.mv_size = seadragon_net_key(&net, key);
        k.mv_data = key;

        rc = mdb_get(txn, dbs->whitelist, &k, &v);

        if (rc == MDB_SUCCESS) {
            return 0;
        }

        if (rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return MDB_NOTFOUND;
}


int
seadragon_whitelist_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *net, const seadragon_whitelist_entry_t *entry)
{
    int      rc;
    uint8_t  key[SEADRAGON_NET_KEY_LEN];
    MDB_val  k, v;

    k.mv_size = seadragon_net_key(net, key);
    k.mv_data = key;
    v.mv_size = sizeof(seadragon_whitelist_entry_t);
    v.mv_data = (void *) entry;

    rc = mdb_put(txn, dbs->whitelist, &k, &v, MDB_NOOVERWRITE);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    return seadragon_whitelist_count(txn, dbs, net, 1);
}


int
seadragon_whitelist_remove(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *net)
{
    int      rc;
    uint8_t  key[SEADRAGON_NET_KEY_LEN];
    MDB_val  k;

    k.mv_size = seadragon_net_key(net, key);
    k.mv_data = key;

    rc = mdb_del(txn, dbs->whitelist, &k, NULL);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    return seadragon_whitelist_count(txn, dbs, net, -1);
}


/*
 * A lookup skips the prefix lengths whose count is zero, so a count that
 * is too low hides entries: every add and remove changes it by one.
 */

static int
seadragon_whitelist_count(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *net, int delta)
{
    int       rc;
    unsigned  bits;
    uint32_t  counts[129];
    MDB_val   k, v;

    bits = seadragon_net_bits(net);

    k.mv_data = (void *) (net->family == 4 ? "prefixes4" : "prefixes6");
    k.mv_size = sizeof("prefixes4") - 1;

    rc = mdb_get(txn, dbs->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return MDB_CORRUPTED;
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (v.mv_size != (bits + 1) * sizeof(uint32_t)) {
        return MDB_CORRUPTED;
    }

    memcpy(counts, v.mv_data, v.mv_size);

    if ((delta < 0 && counts[net->prefix] == 0)
        || (delta > 0 && counts[net->prefix] == UINT32_MAX))
    {
        return MDB_CORRUPTED;
    }

    counts[net->prefix] += delta;

    v.mv_data = counts;

    return mdb_put(txn, dbs->meta, &k, &v, 0);
}


void
seadragon_key_hash(const uint8_t *key, size_t len,
    uint8_t hash[SEADRAGON_KEY_HASH_LEN])
{
    SHA256(key, len, hash);
}


int
seadragon_key_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const uint8_t *key, size_t len, seadragon_key_record_t *record)
{
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];

    seadragon_key_hash(key, len, hash);

    return seadragon_key_find_hash(txn, dbs, hash, record);
}


int
seadragon_key_find_hash(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const uint8_t hash[SEADRAGON_KEY_HASH_LEN],
    seadragon_key_record_t *record)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) hash;
    k.mv_size = SEADRAGON_KEY_HASH_LEN;

    rc = mdb_get(txn, dbs->keys, &k, &v);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    return seadragon_key_record_read(&v, record);
}


int
seadragon_key_record_read(const MDB_val *value, seadragon_key_record_t *record)
{
    if (value->mv_size != sizeof(seadragon_key_record_t)
        && value->mv_size != SEADRAGON_KEY_RECORD_V2_LEN
        && value->mv_size != SEADRAGON_KEY_RECORD_V1_LEN)
    {
        return MDB_CORRUPTED;
    }

    /* a version 1 record has no limits: they stay 0 */

    memset(record, 0, sizeof(seadragon_key_record_t));
    memcpy(record, value->mv_data, value->mv_size);

    record->name[SEADRAGON_KEY_NAME_LEN - 1] = '\0';
    record->source[SEADRAGON_KEY_SOURCE_LEN - 1] = '\0';

    /* a record made before weights (or a bad one) has the default */

    if (record->weight == 0 || record->weight > SEADRAGON_WEIGHT_MAX) {
        record->weight = 1;
    }

    record->reserved = 0;

    return 0;
}


int
seadragon_weight_parse(const char *text, size_t len, uint32_t *weight)
{
    size_t    i;
    uint32_t  n;

    if (len == 0 || len > 4 || text[0] == '0') {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }

        n = n * 10 + (text[i] - '0');
    }

    if (n < 1 || n > SEADRAGON_WEIGHT_MAX) {
        return -1;
    }

    *weight = n;

    return 0;
}


int
seadragon_limit_parse(const char *text, size_t len, uint64_t max,
    uint64_t *value, const char **error)
{
    size_t    i;
    uint64_t  n;

    if (len == 4 && memcmp(text, "none", 4) == 0) {
        *value = 0;
        return 0;
    }

    if (len == 0 || len > 20) {
        goto invalid;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            goto invalid;
        }

        if (n > (max - (uint64_t) (text[i] - '0')) / 10) {
            *error = "is more than the most a limit may be";
            return -1;
        }

        n = n * 10 + (uint64_t) (text[i] - '0');
    }

    *value = n;

    return 0;

invalid:

    *error = "is not a whole number or \"none\"";
    return -1;
}

int
seadragon_name_valid(const char *text, size_t len, size_t max,
    const char *extra)
{
    size_t  i;
    char    c;

    if (len == 0 || len > max) {
        return 0;
    }

    if (text[0] == '.' && (len == 1 || (len == 2 && text[1] == '.'))) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = text[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || (c != '\0' && strchr(extra, c))))
        {
            return 0;
        }
    }

    return 1;
}


int
seadragon_key_generate(char *key)
{
    size_t   i, len;
    uint8_t  random[SEADRAGON_KEY_RANDOM_LEN];
    char     text[4 * ((SEADRAGON_KEY_RANDOM_LEN + 2) / 3) + 1];

    if (RAND_bytes(random, sizeof(random)) != 1) {
        return -1;
    }

    EVP_EncodeBlock((unsigned char *) text, random, sizeof(random));
    OPENSSL_cleanse(random, sizeof(random));

    len = sizeof(SEADRAGON_KEY_PREFIX) - 1;
    memcpy(key, SEADRAGON_KEY_PREFIX, len);

    /* base64url, and the padding "=" left out */

    for (i = 0; len < SEADRAGON_KEY_TEXT_LEN; i++, len++) {
        key[len] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    }

    key[len] = '\0';

    OPENSSL_cleanse(text, sizeof(text));

    return 0;
}


int
seadragon_key_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *key, size_t len, const seadragon_key_record_t *record)
{
    int      rc;
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];
    MDB_val  k, v;

    seadragon_key_hash((const uint8_t *) key, len, hash);

    k.mv_data = (void *) record->name;
    k.mv_size = strlen(record->name);
    v.mv_data = hash;
    v.mv_size = sizeof(hash);

    rc = mdb_put(txn, dbs->key_names, &k, &v, MDB_NOOVERWRITE);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = hash;
    k.mv_size = sizeof(hash);
    v.mv_data = (void *) record;
    v.mv_size = sizeof(seadragon_key_record_t);

    /* MDB_KEYEXIST here would be a collision of SHA-256 */

    return mdb_put(txn, dbs->keys, &k, &v, MDB_NOOVERWRITE);
}


int
seadragon_key_hash_of_name(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, uint8_t hash[SEADRAGON_KEY_HASH_LEN])
{
    int      rc;
    MDB_val  k, v;

    /* no key has an empty name, and LMDB refuses an empty key */

    if (len == 0) {
        return MDB_NOTFOUND;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    rc = mdb_get(txn, dbs->key_names, &k, &v);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (v.mv_size != SEADRAGON_KEY_HASH_LEN) {
        return MDB_CORRUPTED;
    }

    memcpy(hash, v.mv_data, SEADRAGON_KEY_HASH_LEN);

    return MDB_SUCCESS;
}


int
seadragon_key_remove(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len)
{
    int      rc;
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];
    MDB_val  k;

    rc = seadragon_key_hash_of_name(txn, dbs, name, len, hash);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = hash;
    k.mv_size = sizeof(hash);

    rc = mdb_del(txn, dbs->keys, &k, NULL);

    /* a name without its record is removed all the same */

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        return rc;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    return mdb_del(txn, dbs->key_names, &k, NULL);
}


int
seadragon_key_set_disabled(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, int disabled, int *changed,
    seadragon_key_record_t *record)
{
    int      rc;
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];
    MDB_val  k, v;

    rc = seadragon_key_hash_of_name(txn, dbs, name, len, hash);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = seadragon_key_find_hash(txn, dbs, hash, record);

    if (rc == MDB_NOTFOUND) {
        return MDB_CORRUPTED;       /* a name whose record is gone */
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    *changed = !(record->flags & SEADRAGON_KEY_DISABLED) != !disabled;

    if (!*changed) {
        return MDB_SUCCESS;
    }

    if (disabled) {
        record->flags |= SEADRAGON_KEY_DISABLED;

    } else {
        record->flags &= ~SEADRAGON_KEY_DISABLED;
    }

    record->version = SEADRAGON_KEY_VERSION;

    k.mv_data = hash;
    k.mv_size = sizeof(hash);
    v.mv_data = record;
    v.mv_size = sizeof(seadragon_key_record_t);

    return mdb_put(txn, dbs->keys, &k, &v, 0);
}



int
seadragon_key_set_limits(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, const seadragon_key_limits_t *limits,
    seadragon_key_record_t *record)
{
    int      rc;
    uint8_t  hash[SEADRAGON_KEY_HASH_LEN];
    MDB_val  k, v;

    rc = seadragon_key_hash_of_name(txn, dbs, name, len, hash);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = seadragon_key_find_hash(txn, dbs, hash, record);

    if (rc == MDB_NOTFOUND) {
        return MDB_CORRUPTED;       /* a name whose record is gone */
    }

    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (limits->set & SEADRAGON_LIMIT_RPM) {
        record->rpm = limits->rpm;
    }

    if (limits->set & SEADRAGON_LIMIT_TOKENS) {
        record->tokens_per_day = limits->tokens_per_day;
    }

    if (limits->set & SEADRAGON_LIMIT_CONCURRENT) {
        record->max_concurrent = limits->max_concurrent;
    }

    if (limits->set & SEADRAGON_LIMIT_WEIGHT) {
        record->weight = limits->weight;
    }

    /* a version 1 or 2 record becomes version 3 */

    record->version = SEADRAGON_KEY_VERSION;

    k.mv_data = hash;
    k.mv_size = sizeof(hash);
    v.mv_data = record;
    v.mv_size = sizeof(seadragon_key_record_t);

    return mdb_put(txn, dbs->keys, &k, &v, 0);
}
