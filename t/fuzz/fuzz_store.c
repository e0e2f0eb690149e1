
/*
 * Copyright (C) The Seadragon authors
 *
 * The store codec's records and writes
 * (ngx_seadragon_module/ngx_http_seadragon_store_codec.c) against a model,
 * on a real LMDB environment in a temporary directory.  Each input is a
 * program of operations in one write transaction, aborted at its end:
 * whitelist add, remove and lookup; prefix counts overwritten with any
 * bytes (a damaged or foreign store); key records of any bytes; key add,
 * revoke, disable and enable by name; a format marker of any bytes; a
 * key's record deleted behind its name.
 *
 *  - every result is the one the model predicts (MDB_KEYEXIST for a
 *    duplicate, MDB_NOTFOUND for what is not there, MDB_CORRUPTED for
 *    counts of the wrong size or that would wrap);
 *  - a lookup finds an address exactly when a listed network whose
 *    prefix count is not zero contains it, bit by bit;
 *  - a key record of the wrong size is refused, one of the right size
 *    comes back with its name and source ending inside their fields;
 *  - the format check passes exactly for "seadragon-store 1"; a name whose
 *    record is gone is not found as a key, cannot be disabled (the store
 *    is corrupt) and can be revoked;
 *  - names are valid exactly when they are 1 to max letters, digits and
 *    the extra characters; a generated key is "sd-" and 43 base64url
 *    characters;
 *  - after the program, the whitelist holds exactly the model's networks,
 *    each key decoding to its network, and untouched counts match them.
 */


#include "fuzz.h"
#include "ngx_http_seadragon_store_codec.h"

#include <string.h>
#include <unistd.h>
#include <openssl/sha.h>


#define FUZZ_STORE_NETS     128
#define FUZZ_STORE_KEYS     32
#define FUZZ_STORE_OPS      256


typedef struct {
    char                    name[SEADRAGON_KEY_NAME_LEN];
    char                    key[64];
    size_t                  key_len;
    seadragon_key_record_t  record;
    int                     orphan;     /* its record deleted behind it */
} fuzz_store_key_t;


typedef struct {
    seadragon_net_t         nets[FUZZ_STORE_NETS];
    size_t                  nnets;

    /* per family (0: IPv4, 1: IPv6) */
    uint32_t                counts[2][129];
    int                     counts_state[2];    /* below */
    int                     counts_raw[2];      /* overwritten by the input */

    fuzz_store_key_t        keys[FUZZ_STORE_KEYS];
    size_t                  nkeys;
    unsigned                serial;
} fuzz_store_model_t;


enum {
    FUZZ_COUNTS_OK = 0,
    FUZZ_COUNTS_MISSING,
    FUZZ_COUNTS_WRONG_SIZE
};


static MDB_env               *fuzz_env;
static seadragon_store_dbs_t  fuzz_dbs;
static char                   fuzz_dir[] = "/tmp/seadragon-fuzz-store.XXXXXX";


static void
fuzz_store_cleanup(void)
{
    char  path[sizeof(fuzz_dir) + 16];

    if (fuzz_env) {
        mdb_env_close(fuzz_env);
        fuzz_env = NULL;
    }

    snprintf(path, sizeof(path), "%s/data.mdb", fuzz_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", fuzz_dir);
    unlink(path);
    rmdir(fuzz_dir);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int       rc;
    MDB_txn  *txn;

    (void) argc;
    (void) argv;

    fuzz_check(mkdtemp(fuzz_dir) != NULL, "mkdtemp failed");
    atexit(fuzz_store_cleanup);

    rc = mdb_env_create(&fuzz_env);
    fuzz_check(rc == 0, "mdb_env_create: %s", mdb_strerror(rc));

    mdb_env_set_maxdbs(fuzz_env, SEADRAGON_STORE_MAXDBS);
    mdb_env_set_mapsize(fuzz_env, 64 << 20);

    rc = mdb_env_open(fuzz_env, fuzz_dir, MDB_NOSYNC | MDB_NOMETASYNC, 0600);
    fuzz_check(rc == 0, "mdb_env_open: %s", mdb_strerror(rc));

    rc = mdb_txn_begin(fuzz_env, NULL, 0, &txn);
    fuzz_check(rc == 0, "mdb_txn_begin: %s", mdb_strerror(rc));

    rc = seadragon_store_create(txn, &fuzz_dbs);
    fuzz_check(rc == 0, "seadragon_store_create: %s", mdb_strerror(rc));

    rc = mdb_txn_commit(txn);
    fuzz_check(rc == 0, "mdb_txn_commit: %s", mdb_strerror(rc));

    return 0;
}


static unsigned
fuzz_store_bits(int family)
{
    return family == 4 ? 32 : 128;
}


static int
fuzz_store_fam(int family)
{
    return family == 4 ? 0 : 1;
}


/* the first prefix bits of addr are those of net: no codec code */

static int
fuzz_store_under(const seadragon_net_t *net, const seadragon_net_t *addr)
{
    unsigned  i;

    if (net->family != addr->family) {
        return 0;
    }

    for (i = 0; i < net->prefix; i++) {
        if (((net->addr[i / 8] ^ addr->addr[i / 8]) >> (7 - i % 8)) & 1) {
            return 0;
        }
    }

    return 1;
}


static long
fuzz_store_net_index(fuzz_store_model_t *m, const seadragon_net_t *net)
{
    size_t  i;

    for (i = 0; i < m->nnets; i++) {
        if (m->nets[i].family == net->family
            && m->nets[i].prefix == net->prefix
            && memcmp(m->nets[i].addr, net->addr, 16) == 0)
        {
            return (long) i;
        }
    }

    return -1;
}


/*
 * A network from the input: one of the model's when the first byte says
 * so (so that removes and lookups hit), else any, masked to its prefix.
 */

static void
fuzz_store_net(fuzz_input_t *in, fuzz_store_model_t *m, seadragon_net_t *net)
{
    uint8_t   b;
    unsigned  bits;

    b = fuzz_byte(in);

    if ((b & 0x80) && m->nnets) {
        *net = m->nets[fuzz_byte(in) % m->nnets];
        return;
    }

    memset(net, 0, sizeof(seadragon_net_t));

    net->family = (b & 1) ? 6 : 4;
    bits = fuzz_store_bits(net->family);
    fuzz_bytes(in, net->addr, bits / 8);

    seadragon_net_mask(net, fuzz_byte(in) % (bits + 1));
}


static int
fuzz_store_whitelist_add(MDB_txn *txn, fuzz_input_t *in,
    fuzz_store_model_t *m)
{
    int                          rc, fam;
    seadragon_net_t              net;
    seadragon_whitelist_entry_t  entry;

    fuzz_store_net(in, m, &net);

    memset(&entry, 0, sizeof(entry));
    entry.created = (int64_t) fuzz_u32(in);
    fuzz_bytes(in, (uint8_t *) entry.note, fuzz_byte(in) % sizeof(entry.note));

    fam = fuzz_store_fam(net.family);

    rc = seadragon_whitelist_add(txn, &fuzz_dbs, &net, &entry);

    if (fuzz_store_net_index(m, &net) >= 0) {
        fuzz_check(rc == MDB_KEYEXIST, "adding a listed network: %d", rc);
        return 0;
    }

    if (m->counts_state[fam] != FUZZ_COUNTS_OK
        || m->counts[fam][net.prefix] == UINT32_MAX)
    {
        fuzz_check(rc == MDB_CORRUPTED, "add with bad counts: %d", rc);
        return -1;      /* the caller must abort: the program ends */
    }

    fuzz_check(rc == MDB_SUCCESS, "add: %s", mdb_strerror(rc));

    if (m->nnets == FUZZ_STORE_NETS) {
        return -1;      /* the model is full: the program ends */
    }

    m->nets[m->nnets++] = net;
    m->counts[fam][net.prefix]++;

    return 0;
}


static int
fuzz_store_whitelist_remove(MDB_txn *txn, fuzz_input_t *in,
    fuzz_store_model_t *m)
{
    int              rc, fam;
    long             i;
    seadragon_net_t  net;

    fuzz_store_net(in, m, &net);

    fam = fuzz_store_fam(net.family);
    i = fuzz_store_net_index(m, &net);

    rc = seadragon_whitelist_remove(txn, &fuzz_dbs, &net);

    if (i < 0) {
        fuzz_check(rc == MDB_NOTFOUND, "removing what is not listed: %d",
                   rc);
        return 0;
    }

    if (m->counts_state[fam] != FUZZ_COUNTS_OK
        || m->counts[fam][net.prefix] == 0)
    {
        fuzz_check(rc == MDB_CORRUPTED, "remove with bad counts: %d", rc);
        return -1;
    }

    fuzz_check(rc == MDB_SUCCESS, "remove: %s", mdb_strerror(rc));

    m->nets[i] = m->nets[--m->nnets];
    m->counts[fam][net.prefix]--;

    return 0;
}


static void
fuzz_store_whitelist_find(MDB_txn *txn, fuzz_input_t *in,
    fuzz_store_model_t *m)
{
    int              rc, fam, state, expected;
    size_t           i;
    unsigned         bits;
    seadragon_net_t  addr;

    fuzz_store_net(in, m, &addr);

    /* any host bits: a client's full address under the network */

    bits = fuzz_store_bits(addr.family);

    for (i = addr.prefix; i < bits; i++) {
        if (fuzz_byte(in) & 1) {
            addr.addr[i / 8] |= (uint8_t) (0x80 >> (i % 8));
        }
    }

    addr.prefix = (uint8_t) bits;

    fam = fuzz_store_fam(addr.family);
    state = m->counts_state[fam];

    rc = seadragon_whitelist_find(txn, &fuzz_dbs, &addr);

    if (state == FUZZ_COUNTS_MISSING) {
        fuzz_check(rc == MDB_NOTFOUND, "find without counts: %d", rc);
        return;
    }

    if (state == FUZZ_COUNTS_WRONG_SIZE) {
        fuzz_check(rc == MDB_CORRUPTED, "find with bad counts: %d", rc);
        return;
    }

    expected = MDB_NOTFOUND;

    for (i = 0; i < m->nnets; i++) {
        if (fuzz_store_under(&m->nets[i], &addr)
            && m->counts[fam][m->nets[i].prefix] != 0)
        {
            expected = 0;
        }
    }

    fuzz_check(rc == expected, "find: %d, the model says %d", rc, expected);
}


/* counts of any size and values, or none */

static void
fuzz_store_counts(MDB_txn *txn, fuzz_input_t *in, fuzz_store_model_t *m)
{
    int        rc, fam;
    size_t     i, n, size;
    uint8_t    b;
    uint32_t   counts[129 + 4];
    MDB_val    k, v;
    unsigned   bits;

    b = fuzz_byte(in);

    fam = b & 1;
    bits = fam ? 128 : 32;

    k.mv_data = (void *) (fam ? "prefixes6" : "prefixes4");
    k.mv_size = sizeof("prefixes4") - 1;

    m->counts_raw[fam] = 1;

    if ((b & 0x0e) == 0) {
        rc = mdb_del(txn, fuzz_dbs.meta, &k, NULL);
        fuzz_check(rc == 0 || rc == MDB_NOTFOUND, "del: %s",
                   mdb_strerror(rc));
        m->counts_state[fam] = FUZZ_COUNTS_MISSING;
        return;
    }

    /* mostly the right size, with small counts, sometimes any */

    n = (b & 0x10) ? fuzz_byte(in) % (bits + 4) : bits + 1;
    size = n * sizeof(uint32_t);

    if ((b & 0x20) && size) {
        size -= fuzz_byte(in) % 4;      /* not a whole number of counts */
    }

    for (i = 0; i < n; i++) {
        counts[i] = (b & 0x40) ? fuzz_u32(in) : fuzz_byte(in) % 3;
    }

    v.mv_data = counts;
    v.mv_size = size;

    rc = mdb_put(txn, fuzz_dbs.meta, &k, &v, 0);
    fuzz_check(rc == 0, "put: %s", mdb_strerror(rc));

    if (size == (bits + 1) * sizeof(uint32_t)) {
        m->counts_state[fam] = FUZZ_COUNTS_OK;
        memcpy(m->counts[fam], counts, size);

    } else {
        m->counts_state[fam] = FUZZ_COUNTS_WRONG_SIZE;
    }
}


/* a key record of any bytes under a hash of any bytes */

static void
fuzz_store_record(MDB_txn *txn, fuzz_input_t *in, fuzz_store_model_t *m)
{
    int                     rc;
    size_t                  i, size;
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    uint8_t                 bytes[sizeof(seadragon_key_record_t) + 8];
    MDB_val                 k, v;
    seadragon_key_record_t  record, raw;

    fuzz_bytes(in, hash, sizeof(hash));

    for (i = 0; i < m->nkeys; i++) {
        uint8_t  h[SEADRAGON_KEY_HASH_LEN];

        SHA256((const uint8_t *) m->keys[i].key, m->keys[i].key_len, h);

        if (memcmp(h, hash, sizeof(h)) == 0) {
            return;
        }
    }

    size = fuzz_byte(in);
    size = (size & 0x80) ? size % sizeof(bytes)
           : (size & 0x01) ? SEADRAGON_KEY_RECORD_V1_LEN
           : (size & 0x02) ? SEADRAGON_KEY_RECORD_V2_LEN : sizeof(record);

    memset(bytes, 0, sizeof(bytes));
    fuzz_bytes(in, bytes, size);

    k.mv_data = hash;
    k.mv_size = sizeof(hash);
    v.mv_data = bytes;
    v.mv_size = size;

    rc = mdb_put(txn, fuzz_dbs.keys, &k, &v, 0);
    fuzz_check(rc == 0, "put: %s", mdb_strerror(rc));

    memset(&record, 0x5a, sizeof(record));

    rc = seadragon_key_find_hash(txn, &fuzz_dbs, hash, &record);

    if (size != sizeof(seadragon_key_record_t)
        && size != SEADRAGON_KEY_RECORD_V2_LEN
        && size != SEADRAGON_KEY_RECORD_V1_LEN)
    {
        fuzz_check(rc == MDB_CORRUPTED, "a record of %zu bytes: %d", size,
                   rc);

    } else {
        fuzz_check(rc == 0, "a record of the right size: %d", rc);

        /* a version 1 record (shorter) has no limits, nor weight */

        memset(&raw, 0, sizeof(raw));
        memcpy(&raw, bytes, size);

        fuzz_check(record.version == raw.version
                   && record.flags == raw.flags
                   && record.created == raw.created
                   && record.expires == raw.expires
                   && record.rpm == raw.rpm
                   && record.tokens_per_day == raw.tokens_per_day
                   && record.max_concurrent == raw.max_concurrent,
                   "the record's numbers changed");

        /* a weight absent, 0 or too large reads as the default 1 */

        fuzz_check(record.weight == ((raw.weight >= 1
                                      && raw.weight <= SEADRAGON_WEIGHT_MAX)
                                     ? raw.weight : 1)
                   && record.reserved == 0,
                   "the weight %u of a record of %zu bytes read as %u",
                   raw.weight, size, record.weight);

        fuzz_check(memchr(record.name, '\0', sizeof(record.name)) != NULL
                   && memchr(record.source, '\0', sizeof(record.source))
                      != NULL, "a name or source without its end");

        fuzz_check(strncmp(record.name, raw.name, strlen(record.name)) == 0
                   && strncmp(record.source, raw.source,
                              strlen(record.source)) == 0,
                   "the record's name or source changed");
    }

    rc = mdb_del(txn, fuzz_dbs.keys, &k, NULL);
    fuzz_check(rc == 0, "del: %s", mdb_strerror(rc));
}


/* seadragon_name_valid, against the rule read the long way */

static int
fuzz_store_name_rule(const char *s, size_t len, size_t max, const char *extra)
{
    size_t  i, j;
    int     ok;

    if (len < 1 || len > max) {
        return 0;
    }

    /* the dot segments of a URL are no names */

    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
             || (s[i] >= '0' && s[i] <= '9');

        for (j = 0; extra[j]; j++) {
            ok |= s[i] == extra[j];
        }

        if (!ok) {
            return 0;
        }
    }

    return 1;
}


static long
fuzz_store_key_index(fuzz_store_model_t *m, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < m->nkeys; i++) {
        if (strlen(m->keys[i].name) == len
            && memcmp(m->keys[i].name, name, len) == 0)
        {
            return (long) i;
        }
    }

    return -1;
}


/* a name: one of the model's when the first byte says so, else any */

static size_t
fuzz_store_name(fuzz_input_t *in, fuzz_store_model_t *m, char *name,
    size_t size)
{
    size_t   i, len;
    uint8_t  b;

    b = fuzz_byte(in);

    if ((b & 0x80) && m->nkeys) {
        i = fuzz_byte(in) % m->nkeys;
        len = strlen(m->keys[i].name);
        memcpy(name, m->keys[i].name, len + 1);
        return len;
    }

    len = fuzz_bytes(in, (uint8_t *) name, b % size);
    name[len] = '\0';

    return len;
}


static void
fuzz_store_key_check(MDB_txn *txn, const fuzz_store_key_t *k)
{
    int                     rc;
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    uint8_t                 want[SHA256_DIGEST_LENGTH];
    seadragon_key_record_t  record;

    rc = seadragon_key_find(txn, &fuzz_dbs, (const uint8_t *) k->key,
                            k->key_len, &record);

    if (k->orphan) {
        fuzz_check(rc == MDB_NOTFOUND, "a key without its record: %d", rc);
        return;
    }

    fuzz_check(rc == 0, "a key added is not found: %d", rc);
    fuzz_check(record.version == k->record.version
               && record.flags == k->record.flags
               && record.created == k->record.created
               && record.expires == k->record.expires
               && strcmp(record.name, k->record.name) == 0
               && strcmp(record.source, k->record.source) == 0,
               "the key's record changed");

    rc = seadragon_key_hash_of_name(txn, &fuzz_dbs, k->name, strlen(k->name),
                                    hash);

    SHA256((const uint8_t *) k->key, k->key_len, want);

    fuzz_check(rc == 0 && memcmp(hash, want, sizeof(want)) == 0,
               "the name does not lead to the key's SHA-256");
}


static void
fuzz_store_key_add(MDB_txn *txn, fuzz_input_t *in, fuzz_store_model_t *m)
{
    int                     rc, valid;
    char                    name[SEADRAGON_KEY_NAME_LEN + 8];
    char                    source[SEADRAGON_KEY_SOURCE_LEN + 8];
    size_t                  nlen, slen;
    fuzz_store_key_t       *k;
    seadragon_key_record_t  record;

    nlen = fuzz_store_name(in, m, name, sizeof(name));
    slen = fuzz_bytes(in, (uint8_t *) source,
                      fuzz_byte(in) % sizeof(source));
    source[slen] = '\0';

    valid = seadragon_name_valid(name, nlen, SEADRAGON_KEY_NAME_LEN - 1,
                                 "_-.@");
    fuzz_check(valid == fuzz_store_name_rule(name, nlen,
                                             SEADRAGON_KEY_NAME_LEN - 1,
                                             "_-.@"),
               "name \"%.*s\" valid: %d", (int) nlen, name, valid);

    rc = seadragon_name_valid(source, slen, SEADRAGON_KEY_SOURCE_LEN - 1,
                              "_-");
    fuzz_check(rc == fuzz_store_name_rule(source, slen,
                                          SEADRAGON_KEY_SOURCE_LEN - 1, "_-"),
               "source \"%.*s\" valid: %d", (int) slen, source, rc);

    if (!valid || !rc) {
        return;         /* the tool and the admin API stop here */
    }

    memset(&record, 0, sizeof(record));
    record.version = SEADRAGON_KEY_VERSION;
    record.weight = 1;
    record.flags = fuzz_byte(in) & SEADRAGON_KEY_DISABLED;
    record.created = (int64_t) fuzz_u32(in);
    record.expires = (int64_t) fuzz_u32(in);
    memcpy(record.name, name, nlen + 1);
    memcpy(record.source, source, slen + 1);

    if (m->nkeys == FUZZ_STORE_KEYS) {
        return;
    }

    /* distinct keys: two keys with one SHA-256 do not happen */

    k = &m->keys[m->nkeys];
    k->key_len = (size_t) snprintf(k->key, sizeof(k->key), "sd-%08x-%u",
                                   fuzz_u32(in), m->serial++);

    rc = seadragon_key_add(txn, &fuzz_dbs, k->key, k->key_len, &record);

    if (fuzz_store_key_index(m, name, nlen) >= 0) {
        fuzz_check(rc == MDB_KEYEXIST, "a name in use was taken again: %d",
                   rc);
        return;
    }

    fuzz_check(rc == 0, "key add: %s", mdb_strerror(rc));

    memcpy(k->name, name, nlen + 1);
    k->record = record;
    k->orphan = 0;
    m->nkeys++;

    fuzz_store_key_check(txn, k);
}


static void
fuzz_store_key_remove(MDB_txn *txn, fuzz_input_t *in, fuzz_store_model_t *m)
{
    int                     rc;
    char                    name[SEADRAGON_KEY_NAME_LEN + 8];
    long                    i;
    size_t                  len;
    uint8_t                 hash[SEADRAGON_KEY_HASH_LEN];
    seadragon_key_record_t  record;

    len = fuzz_store_name(in, m, name, sizeof(name));
    i = fuzz_store_key_index(m, name, len);

    rc = seadragon_key_remove(txn, &fuzz_dbs, name, len);

    if (i < 0) {
        fuzz_check(rc == MDB_NOTFOUND, "revoking an unknown name: %d", rc);
        return;
    }

    fuzz_check(rc == 0, "revoke: %s", mdb_strerror(rc));

    rc = seadragon_key_find(txn, &fuzz_dbs, (const uint8_t *) m->keys[i].key,
                            m->keys[i].key_len, &record);
    fuzz_check(rc == MDB_NOTFOUND, "a revoked key is found: %d", rc);

    rc = seadragon_key_hash_of_name(txn, &fuzz_dbs, name, len, hash);
    fuzz_check(rc == MDB_NOTFOUND, "a revoked name is found: %d", rc);

    m->keys[i] = m->keys[--m->nkeys];
}


static void
fuzz_store_key_disable(MDB_txn *txn, fuzz_input_t *in,
    fuzz_store_model_t *m)
{
    int                     rc, disabled, changed, was;
    char                    name[SEADRAGON_KEY_NAME_LEN + 8];
    long                    i;
    size_t                  len;
    seadragon_key_record_t  record;

    disabled = fuzz_byte(in) & 1;
    len = fuzz_store_name(in, m, name, sizeof(name));
    i = fuzz_store_key_index(m, name, len);

    changed = -1;

    rc = seadragon_key_set_disabled(txn, &fuzz_dbs, name, len, disabled,
                                    &changed, &record);

    if (i < 0) {
        fuzz_check(rc == MDB_NOTFOUND, "disabling an unknown name: %d", rc);
        return;
    }

    if (m->keys[i].orphan) {
        fuzz_check(rc == MDB_CORRUPTED, "disabling a name without its "
                   "record: %d", rc);
        return;
    }

    fuzz_check(rc == 0, "disable: %s", mdb_strerror(rc));

    was = (m->keys[i].record.flags & SEADRAGON_KEY_DISABLED) != 0;

    fuzz_check(changed == (was != disabled), "changed %d, was %d, now %d",
               changed, was, disabled);
    fuzz_check(((record.flags & SEADRAGON_KEY_DISABLED) != 0) == disabled,
               "the record's flag is not what was asked");

    if (disabled) {
        m->keys[i].record.flags |= SEADRAGON_KEY_DISABLED;

    } else {
        m->keys[i].record.flags &= ~SEADRAGON_KEY_DISABLED;
    }

    fuzz_store_key_check(txn, &m->keys[i]);
}


/* a format marker of any bytes, or none */

static void
fuzz_store_format(MDB_txn *txn, fuzz_input_t *in)
{
    int       rc, expected;
    char      marker[32];
    size_t    len, at;
    uint8_t   b;
    MDB_val   k, v;

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    b = fuzz_byte(in);

    if (b & 0x80) {
        rc = mdb_del(txn, fuzz_dbs.meta, &k, NULL);
        fuzz_check(rc == 0 || rc == MDB_NOTFOUND, "del: %s",
                   mdb_strerror(rc));
        expected = MDB_NOTFOUND;

    } else {
        if (b & 0x40) {
            len = fuzz_bytes(in, (uint8_t *) marker, b % sizeof(marker));

        } else {
            /* the marker, a byte of the input in it or after it */
            len = sizeof(SEADRAGON_STORE_FORMAT) - 1;
            memcpy(marker, SEADRAGON_STORE_FORMAT, len);

            if (b & 0x20) {
                at = b % (len + 1);
                marker[at] = (char) fuzz_byte(in);
                len += at == len;
            }
        }

        v.mv_data = marker;
        v.mv_size = len;

        if (len == 0) {
            return;         /* LMDB stores no empty value under a key */
        }

        rc = mdb_put(txn, fuzz_dbs.meta, &k, &v, 0);
        fuzz_check(rc == 0, "put: %s", mdb_strerror(rc));

        expected = (len == sizeof(SEADRAGON_STORE_FORMAT) - 1
                    && memcmp(marker, SEADRAGON_STORE_FORMAT, len) == 0)
                   ? MDB_SUCCESS : MDB_NOTFOUND;
    }

    rc = seadragon_store_check_format(txn, &fuzz_dbs);
    fuzz_check(rc == expected, "format check %d, expected %d", rc, expected);
}


/* a key's record deleted, its name left behind */

static void
fuzz_store_orphan(MDB_txn *txn, fuzz_input_t *in, fuzz_store_model_t *m)
{
    int                rc;
    uint8_t            hash[SHA256_DIGEST_LENGTH];
    MDB_val            k;
    fuzz_store_key_t  *key;

    if (m->nkeys == 0) {
        return;
    }

    key = &m->keys[fuzz_byte(in) % m->nkeys];

    if (key->orphan) {
        return;
    }

    SHA256((const uint8_t *) key->key, key->key_len, hash);

    k.mv_data = hash;
    k.mv_size = sizeof(hash);

    rc = mdb_del(txn, fuzz_dbs.keys, &k, NULL);
    fuzz_check(rc == 0, "del: %s", mdb_strerror(rc));

    key->orphan = 1;

    fuzz_store_key_check(txn, key);
}


/* the whitelist holds exactly the model's networks */

static void
fuzz_store_check_whitelist(MDB_txn *txn, fuzz_store_model_t *m)
{
    int              rc, fam;
    size_t           n;
    uint8_t          key[SEADRAGON_NET_KEY_LEN];
    uint32_t         counts[2][129];
    MDB_val          k, v;
    MDB_cursor      *cur;
    seadragon_net_t  net;

    rc = mdb_cursor_open(txn, fuzz_dbs.whitelist, &cur);
    fuzz_check(rc == 0, "cursor: %s", mdb_strerror(rc));

    memset(counts, 0, sizeof(counts));
    n = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        fuzz_check(seadragon_net_from_key(k.mv_data, k.mv_size, &net) == 0,
                   "a whitelist key that does not decode");
        fuzz_check(fuzz_store_net_index(m, &net) >= 0,
                   "a listed network the model does not have");
        fuzz_check(seadragon_net_key(&net, key) == k.mv_size
                   && memcmp(key, k.mv_data, k.mv_size) == 0,
                   "a whitelist key that encodes differently");
        fuzz_check(v.mv_size == sizeof(seadragon_whitelist_entry_t),
                   "an entry of %zu bytes", v.mv_size);

        counts[fuzz_store_fam(net.family)][net.prefix]++;
        n++;
    }

    mdb_cursor_close(cur);

    fuzz_check(rc == MDB_NOTFOUND, "cursor: %s", mdb_strerror(rc));
    fuzz_check(n == m->nnets, "%zu listed, the model has %zu", n, m->nnets);

    for (fam = 0; fam < 2; fam++) {
        if (!m->counts_raw[fam]) {
            fuzz_check(memcmp(counts[fam], m->counts[fam],
                              (fam ? 129 : 33) * sizeof(uint32_t)) == 0,
                       "the prefix counts do not match the entries");
        }
    }
}


static void
fuzz_store_check_generate(void)
{
    size_t  i;
    char    key[SEADRAGON_KEY_TEXT_LEN + 1];

    fuzz_check(seadragon_key_generate(key) == 0, "no random bytes");
    fuzz_check(strlen(key) == SEADRAGON_KEY_TEXT_LEN
               && memcmp(key, SEADRAGON_KEY_PREFIX,
                         sizeof(SEADRAGON_KEY_PREFIX) - 1) == 0,
               "generated \"%s\"", key);

    for (i = sizeof(SEADRAGON_KEY_PREFIX) - 1; i < SEADRAGON_KEY_TEXT_LEN;
         i++)
    {
        fuzz_check(fuzz_store_name_rule(key + i, 1, 1, "_-"),
                   "generated \"%s\"", key);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    unsigned             ops;
    MDB_txn             *txn;
    fuzz_input_t         in;
    fuzz_store_model_t  *m;

    m = calloc(1, sizeof(fuzz_store_model_t));
    fuzz_check(m != NULL, "out of memory");

    in.p = data;
    in.left = size;

    rc = mdb_txn_begin(fuzz_env, NULL, 0, &txn);
    fuzz_check(rc == 0, "mdb_txn_begin: %s", mdb_strerror(rc));

    rc = 0;

    for (ops = 0; in.left && ops < FUZZ_STORE_OPS; ops++) {

        rc = 0;

        switch (fuzz_byte(&in) % 11) {

        case 0:
            rc = fuzz_store_whitelist_add(txn, &in, m);
            break;
        case 1:
            rc = fuzz_store_whitelist_remove(txn, &in, m);
            break;
        case 2:
            fuzz_store_whitelist_find(txn, &in, m);
            break;
        case 3:
            fuzz_store_counts(txn, &in, m);
            break;
        case 4:
            fuzz_store_record(txn, &in, m);
            break;
        case 5:
        case 6:
            fuzz_store_key_add(txn, &in, m);
            break;
        case 7:
            fuzz_store_key_remove(txn, &in, m);
            break;
        case 8:
            fuzz_store_key_disable(txn, &in, m);
            break;
        case 9:
            fuzz_store_format(txn, &in);
            break;
        default:
            fuzz_store_orphan(txn, &in, m);
            break;
        }

        if (rc != 0) {
            break;      /* a write failed: the transaction is aborted */
        }
    }

    if (rc == 0) {
        fuzz_store_check_whitelist(txn, m);
    }

    mdb_txn_abort(txn);

    if (size && data[0] == 0xff) {
        fuzz_store_check_generate();
    }

    free(m);

    return 0;
}
