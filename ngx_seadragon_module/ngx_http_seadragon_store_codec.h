
/*
 * Copyright (C) The Seadragon authors
 *
 * The format of a seadragon store (an LMDB environment), shared by the
 * module and scripts/seadragon-store: plain C on LMDB and OpenSSL, with
 * no nginx types, so that both read and write the same bytes.
 *
 * Named databases:
 *   "meta"       "format" -> "seadragon-store 1";
 *                "prefixes4" / "prefixes6" -> uint32_t counts of the
 *                whitelist entries of each prefix length (33 / 129);
 *                "jwt_secret" -> the secret that signs login tokens
 *                (seadragon_secret_t, made by init), "jwt_previous" ->
 *                the one before the last rotation, created = when it
 *                was retired; a store made before logins has neither
 *                until the first "user add" or "secret rotate"
 *   "whitelist"  family (4|6), prefix length, network address (4|16
 *                bytes, host bits zero) -> entry
 *   "keys"       SHA-256 of the key -> key record: version 3 (with the
 *                key's limits and weight), version 2 (limits, weight 1)
 *                or version 1 (no limits, weight 1), read by its size;
 *                every write makes it version 3
 *   "key_names"  key name -> SHA-256 of the key
 *   "usage"      day (uint32, big-endian: days since 1970-01-01 UTC),
 *                principal ("key:NAME" or "source:NAME"), a NUL, model
 *                -> usage record; a store made before usage was counted
 *                has no "usage" database until the gateway first writes
 *                one (dbs->usage is then 0)
 *   "users"      user name -> user record (seadragon_user_record_t,
 *                version 1, one size: any other is damaged), the
 *                password an argon2id hash; a store made before logins
 *                has no "users" database until the first user is added
 *                (dbs->users is then 0: no users)
 *
 * A whitelist lookup probes one exact key per prefix length in use, so it
 * costs a bounded number of B-tree lookups, never a scan.
 */


#ifndef _NGX_HTTP_SEADRAGON_STORE_CODEC_H_INCLUDED_
#define _NGX_HTTP_SEADRAGON_STORE_CODEC_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <lmdb.h>


#define SEADRAGON_STORE_FORMAT          "seadragon-store 1"
#define SEADRAGON_STORE_MAXDBS          8

#define SEADRAGON_STORE_DB_META         "meta"
#define SEADRAGON_STORE_DB_WHITELIST    "whitelist"
#define SEADRAGON_STORE_DB_KEYS         "keys"
#define SEADRAGON_STORE_DB_KEY_NAMES    "key_names"
#define SEADRAGON_STORE_DB_USAGE        "usage"
#define SEADRAGON_STORE_DB_USERS        "users"

/* a principal: "key:" and a key's name, or "source:" and a source's */
#define SEADRAGON_USAGE_PRINCIPAL_LEN   (sizeof("source:") - 1 + 64)
#define SEADRAGON_USAGE_MODEL_LEN       64
#define SEADRAGON_USAGE_KEY_LEN                                            \
    (4 + SEADRAGON_USAGE_PRINCIPAL_LEN + 1 + SEADRAGON_USAGE_MODEL_LEN)
#define SEADRAGON_USAGE_ESTIMATED       0x01    /* some counts are guesses */

#define SEADRAGON_NET_KEY_LEN           18
#define SEADRAGON_NET_TEXT_LEN          64
#define SEADRAGON_KEY_HASH_LEN          32
#define SEADRAGON_KEY_NAME_LEN          64
#define SEADRAGON_KEY_SOURCE_LEN        32
#define SEADRAGON_KEY_PREFIX            "sd-"

#define SEADRAGON_KEY_DISABLED          0x01

/* a key record's version: 3 has limits and a weight, 2
 * (SEADRAGON_KEY_RECORD_V2_LEN bytes) limits, 1 (..._V1_LEN) neither */
#define SEADRAGON_KEY_VERSION           3
#define SEADRAGON_KEY_RECORD_V1_LEN                                        \
    offsetof(seadragon_key_record_t, tokens_per_day)
#define SEADRAGON_KEY_RECORD_V2_LEN                                        \
    offsetof(seadragon_key_record_t, weight)

/* a key's weight in fair shares: 1 (the default) to SEADRAGON_WEIGHT_MAX */
#define SEADRAGON_WEIGHT_MAX            1000

/* the most a limit may be; 0 is no limit */
#define SEADRAGON_LIMIT_RPM_MAX         1000000
#define SEADRAGON_LIMIT_TOKENS_MAX      1000000000000000ULL
#define SEADRAGON_LIMIT_CONCURRENT_MAX  100000

/* which limits seadragon_key_set_limits() changes */
#define SEADRAGON_LIMIT_RPM             0x01
#define SEADRAGON_LIMIT_TOKENS          0x02
#define SEADRAGON_LIMIT_CONCURRENT      0x04
#define SEADRAGON_LIMIT_WEIGHT          0x08

/* a user record's version and flags */
#define SEADRAGON_USER_VERSION          1
#define SEADRAGON_USER_DISABLED         0x01
#define SEADRAGON_USER_HASH_LEN         128

/* argon2id's parameters: t passes over m KiB (64 MiB) in p lanes; a hash
 * of 32 bytes with a salt of 16, in argon2's encoded form */
#define SEADRAGON_ARGON2_T              3
#define SEADRAGON_ARGON2_M              65536
#define SEADRAGON_ARGON2_P              1
#define SEADRAGON_ARGON2_SALT_LEN       16
#define SEADRAGON_ARGON2_HASH_LEN       32

/* a password: 1 to SEADRAGON_PASSWORD_MAX bytes */
#define SEADRAGON_PASSWORD_MAX          1024

/* the JWT secrets in "meta" */
#define SEADRAGON_SECRET_CURRENT        "jwt_secret"
#define SEADRAGON_SECRET_PREVIOUS       "jwt_previous"
#define SEADRAGON_SECRET_VERSION        1
#define SEADRAGON_SECRET_KEY_LEN        32

/* "sd-" and the base64url of 32 random bytes, without padding */
#define SEADRAGON_KEY_RANDOM_LEN        32
#define SEADRAGON_KEY_TEXT_LEN          (sizeof(SEADRAGON_KEY_PREFIX) - 1 + 43)


typedef struct {
    uint8_t     family;             /* 4 or 6 */
    uint8_t     prefix;             /* 0..32 or 0..128 */
    uint8_t     addr[16];           /* 4 or 16 bytes used */
} seadragon_net_t;


/* a whitelist entry's value */

typedef struct {
    int64_t     created;
    char        note[64];
} seadragon_whitelist_entry_t;


/*
 * A key record: what a key grants, (version 2) how much of it: 0 is no
 * limit, and (version 3) its weight in fair shares.  A version 1 record
 * ends before tokens_per_day, a version 2 record before weight.
 */

typedef struct {
    uint32_t    version;            /* SEADRAGON_KEY_VERSION, or 1 */
    uint32_t    flags;              /* SEADRAGON_KEY_DISABLED */
    int64_t     created;
    int64_t     expires;            /* unix time; 0: never */
    char        name[SEADRAGON_KEY_NAME_LEN];
    char        source[SEADRAGON_KEY_SOURCE_LEN];
    uint64_t    tokens_per_day;     /* prompt + completion, a UTC day */
    uint32_t    rpm;                /* requests per minute */
    uint32_t    max_concurrent;     /* parked and running at once */
    uint32_t    weight;             /* fair share, 1..1000; read as 1 */
    uint32_t    reserved;           /* 0: no padding left unwritten */
} seadragon_key_record_t;


/* limits to set: the bits of "set" say which */

typedef struct {
    uint64_t    tokens_per_day;
    uint32_t    rpm;
    uint32_t    max_concurrent;
    uint32_t    weight;             /* 1..SEADRAGON_WEIGHT_MAX */
    unsigned    set;                /* SEADRAGON_LIMIT_* */
} seadragon_key_limits_t;


/*
 * What seadragon_store_check_file() read from the two meta pages of an
 * LMDB data file, with pread(), never through a map.
 */

typedef struct {
    size_t      psize;              /* page size */
    uint64_t    size;               /* of the file */
    uint64_t    txnid;              /* the newer meta page's */
    uint64_t    last_pgno;          /* the newer meta page's */
    uint64_t    map_size;           /* the larger one of the two */
} seadragon_store_file_t;


/*
 * What one principal used of one model on one day: a usage record, or
 * what one answer adds to it.  Durations are Ollama's, in milliseconds.
 */

typedef struct {
    uint32_t    version;            /* 1 */
    uint32_t    flags;              /* SEADRAGON_USAGE_ESTIMATED */
    uint64_t    requests;
    uint64_t    prompt_tokens;
    uint64_t    completion_tokens;
    uint64_t    generation_ms;      /* eval_duration */
    uint64_t    prompt_ms;          /* prompt_eval_duration */
    uint64_t    load_ms;            /* load_duration */
    uint64_t    estimated;          /* answers whose counts are guesses */
} seadragon_usage_record_t;


/* a user: the key of "users" is the name, also held here */

typedef struct {
    uint32_t    version;            /* SEADRAGON_USER_VERSION */
    uint32_t    flags;              /* SEADRAGON_USER_DISABLED */
    int64_t     created;            /* unix time */
    int64_t     last_login;         /* unix time; 0: never */
    int64_t     changed;            /* password set or disabled: unix */
    char        name[SEADRAGON_KEY_NAME_LEN];
    char        source[SEADRAGON_KEY_SOURCE_LEN];
    char        hash[SEADRAGON_USER_HASH_LEN];  /* argon2id, encoded */
} seadragon_user_record_t;


/* a JWT secret, "jwt_secret" or "jwt_previous" of "meta" */

typedef struct {
    uint32_t    version;            /* SEADRAGON_SECRET_VERSION */
    uint32_t    reserved;           /* 0 */
    int64_t     created;            /* made; of jwt_previous: retired */
    uint8_t     key[SEADRAGON_SECRET_KEY_LEN];
} seadragon_secret_t;


typedef struct {
    MDB_dbi     meta;
    MDB_dbi     whitelist;
    MDB_dbi     keys;
    MDB_dbi     key_names;
    MDB_dbi     usage;              /* 0: the store has none yet */
    MDB_dbi     users;              /* 0: the store has none yet */
} seadragon_store_dbs_t;


/*
 * "10.0.0.1", "10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.1".  An
 * IPv4-mapped IPv6 address becomes its IPv4 address.  Returns 0, or -1
 * with *error set to a sentence for the user.
 */
int seadragon_net_parse(const char *text, size_t len, seadragon_net_t *net,
    const char **error);

/* the client's address as a full-length network */
int seadragon_net_from_sockaddr(const struct sockaddr *sa,
    seadragon_net_t *net);

void seadragon_net_mask(seadragon_net_t *net, unsigned prefix);
size_t seadragon_net_key(const seadragon_net_t *net, uint8_t *key);
int seadragon_net_from_key(const uint8_t *key, size_t len,
    seadragon_net_t *net);
void seadragon_net_format(const seadragon_net_t *net, char *buf, size_t size);
int seadragon_net_contains(const seadragon_net_t *net,
    const seadragon_net_t *addr);

/* MDB_SUCCESS, or the error of the first database that fails to open */
int seadragon_store_open_dbs(MDB_txn *txn, seadragon_store_dbs_t *dbs,
    unsigned flags);

/*
 * In a write transaction: creates the databases, the format marker and
 * zero prefix counts.  MDB_SUCCESS or an LMDB error.
 */
int seadragon_store_create(MDB_txn *txn, seadragon_store_dbs_t *dbs);

/*
 * Checks the data file open on fd before LMDB maps it or reads through
 * its map: that it is long enough for LMDB's two meta pages, that both
 * are meta pages of LMDB's data format 1 with one page size, and that
 * the trees they name start inside the file and the map.  A file that
 * was truncated, removed or overwritten, which LMDB would fault on
 * (SIGBUS) or, when opening it for writing, re-create, fails.  Returns
 * 0, or -1 with *error set to a sentence naming what is wrong.
 */
int seadragon_store_check_file(int fd, seadragon_store_file_t *file,
    const char **error);

/* MDB_SUCCESS: the format marker is SEADRAGON_STORE_FORMAT; MDB_NOTFOUND:
 * it is missing or another one; or an LMDB error */
int seadragon_store_check_format(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs);

/* 0: listed, MDB_NOTFOUND: not listed, or an LMDB error */
int seadragon_whitelist_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *addr);

/*
 * In a write transaction, an entry and the prefix count that
 * seadragon_whitelist_find() relies on, together: MDB_SUCCESS,
 * MDB_KEYEXIST (add: already listed), MDB_NOTFOUND (remove: not listed),
 * MDB_CORRUPTED (the counts do not match the entries), or an LMDB error.
 * On any error the caller must abort the transaction.
 */
int seadragon_whitelist_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const seadragon_net_t *net, const seadragon_whitelist_entry_t *entry);
int seadragon_whitelist_remove(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, const seadragon_net_t *net);

void seadragon_key_hash(const uint8_t *key, size_t len,
    uint8_t hash[SEADRAGON_KEY_HASH_LEN]);

/* 0 and the record, MDB_NOTFOUND, or an LMDB error (MDB_CORRUPTED for a
 * record of neither version's size: not one this code can read) */
int seadragon_key_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const uint8_t *key, size_t len, seadragon_key_record_t *record);

/* the same, by the key's hash (as "key_names" holds it) */
int seadragon_key_find_hash(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const uint8_t hash[SEADRAGON_KEY_HASH_LEN],
    seadragon_key_record_t *record);


/*
 * Usage.  A day is the number of days since 1970-01-01 UTC (time / 86400).
 * seadragon_usage_open() opens, in a write transaction creating, the
 * "usage" database: MDB_SUCCESS or an LMDB error.
 */
int seadragon_usage_open(MDB_txn *txn, seadragon_store_dbs_t *dbs);

/* the "usage" database for a read in txn, looked for there when dbs has
 * none (a store made before usage, written since): MDB_SUCCESS,
 * MDB_NOTFOUND (none yet) or an LMDB error */
int seadragon_usage_dbi(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    MDB_dbi *dbi);

/* the key of (day, principal, model) into key (SEADRAGON_USAGE_KEY_LEN
 * bytes); 0 for a principal or model too long */
size_t seadragon_usage_key(uint32_t day, const char *principal, size_t plen,
    const char *model, size_t mlen, uint8_t *key);

/* a key's parts, pointing into the key; 0, or -1 for a malformed key */
int seadragon_usage_key_parse(const MDB_val *key, uint32_t *day,
    const char **principal, size_t *plen, const char **model, size_t *mlen);

/* in a write transaction: adds delta to the record of (day, principal,
 * model), creating it; MDB_SUCCESS or an LMDB error */
int seadragon_usage_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    uint32_t day, const char *principal, size_t plen, const char *model,
    size_t mlen, const seadragon_usage_record_t *delta);

/*
 * A count (tokens, milliseconds, requests) never goes past
 * SEADRAGON_USAGE_COUNT_MAX, the largest a JSON integer of the admin API
 * holds: a sum that would stays there instead of wrapping to a few.
 */
#define SEADRAGON_USAGE_COUNT_MAX  ((uint64_t) INT64_MAX)

uint64_t seadragon_usage_count_add(uint64_t a, uint64_t b);

/* delta added to *to, each count as seadragon_usage_count_add() does */
void seadragon_usage_record_sum(seadragon_usage_record_t *to,
    const seadragon_usage_record_t *delta);

/* the record of a value, checked; 0, or MDB_CORRUPTED */
int seadragon_usage_record(const MDB_val *value,
    seadragon_usage_record_t *record);

/* what a principal used of every model on a day, summed into *sum
 * (zeroed first); 0 (also when nothing or no "usage" database is there,
 * seadragon_usage_dbi()'s), or an LMDB error */
int seadragon_usage_sum(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    uint32_t day, const char *principal, size_t plen,
    seadragon_usage_record_t *sum);

/* "2026-12-01" into buf (11 bytes), and back: 0, or -1 for a bad date */
void seadragon_usage_day_format(uint32_t day, char *buf);
int seadragon_usage_day_parse(const char *text, size_t len, uint32_t *day);


/*
 * 1 when text (len bytes) has 1 to max letters, digits and characters of
 * extra: key names use "_-.@", source names "_-".  "." and ".." are no
 * names: a URL's dot segments (keys/.., users/.) would take them away, so
 * that the admin API could never reach them.
 */
int seadragon_name_valid(const char *text, size_t len, size_t max,
    const char *extra);

/* a new key, SEADRAGON_KEY_TEXT_LEN characters and a NUL; 0, or -1 when
 * the system gives no random bytes */
int seadragon_key_generate(char *key);

/* stores record for key, and its name; MDB_KEYEXIST: the name is taken */
int seadragon_key_add(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *key, size_t len, const seadragon_key_record_t *record);

/* the hash a name stands for; MDB_NOTFOUND: no key has that name */
int seadragon_key_hash_of_name(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, uint8_t hash[SEADRAGON_KEY_HASH_LEN]);

/* deletes a key by name; MDB_NOTFOUND: no key has that name */
int seadragon_key_remove(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len);

/*
 * The record of a value of "keys", any version, into *record (the limits
 * of a version 1 record 0, the weight of a version 1 or 2 record 1, as
 * is a weight out of 1..SEADRAGON_WEIGHT_MAX); 0, or MDB_CORRUPTED for a
 * value of another size.
 */
int seadragon_key_record_read(const MDB_val *value,
    seadragon_key_record_t *record);

/*
 * A limit as the tool and the admin API take it: "none" or "0" (no
 * limit), or 1 to max in decimal; 0, or -1 with *error set.
 */
int seadragon_limit_parse(const char *text, size_t len, uint64_t max,
    uint64_t *value, const char **error);

/* a weight as the tool and the admin API take it: 1 to
 * SEADRAGON_WEIGHT_MAX in decimal; 0, or -1 */
int seadragon_weight_parse(const char *text, size_t len, uint32_t *weight);

/* changes the limits (and weight) of limits->set of a key by name;
 * MDB_NOTFOUND: no key has that name; the record as it now is goes to
 * *record */
int seadragon_key_set_limits(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, const seadragon_key_limits_t *limits,
    seadragon_key_record_t *record);

/* disables or enables a key by name; *changed says whether it was not
 * already so; the record as it now is goes to *record */
int seadragon_key_set_disabled(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, int disabled, int *changed,
    seadragon_key_record_t *record);


/*
 * Users (ngx_http_seadragon_store_users.c).  seadragon_users_open()
 * opens, in a write transaction creating, the "users" database:
 * MDB_SUCCESS or an LMDB error.  A store without one has no users: find
 * and remove answer MDB_NOTFOUND, looking for it in txn when dbs has
 * none (another process may have made it since dbs was opened).
 */
int seadragon_users_open(MDB_txn *txn, seadragon_store_dbs_t *dbs);

/* 0 and the record, MDB_NOTFOUND, MDB_CORRUPTED (a record of another
 * size or version), or an LMDB error */
int seadragon_user_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, seadragon_user_record_t *record);

/* in a write transaction: adds or replaces the record of record->name,
 * creating "users"; MDB_SUCCESS, MDB_BAD_VALSIZE (a name that is not
 * one), or an LMDB error */
int seadragon_user_put(MDB_txn *txn, seadragon_store_dbs_t *dbs,
    const seadragon_user_record_t *record);

/* MDB_SUCCESS, MDB_NOTFOUND: no user has that name, or an LMDB error */
int seadragon_user_remove(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len);

/* the record of a value of "users", its strings NUL-terminated; 0, or
 * MDB_CORRUPTED for another size or version */
int seadragon_user_record_read(const MDB_val *value,
    seadragon_user_record_t *record);

/* which: SEADRAGON_SECRET_CURRENT or SEADRAGON_SECRET_PREVIOUS; 0 and
 * the secret, MDB_NOTFOUND, MDB_CORRUPTED, or an LMDB error */
int seadragon_secret_get(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *which, seadragon_secret_t *secret);

/*
 * In a write transaction: the current secret, if any, becomes the
 * previous one (created: now, when it was retired), and a new one from
 * RAND_bytes() the current one.  MDB_SUCCESS, an LMDB error, or -1 when
 * the system gives no random bytes.
 */
int seadragon_secret_rotate(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    time_t now);

/*
 * Passwords, argon2id with SEADRAGON_ARGON2_*: the encoded hash of a
 * password of 1 to SEADRAGON_PASSWORD_MAX bytes into out (size bytes,
 * SEADRAGON_USER_HASH_LEN will do), NUL-terminated, with a new salt: 0,
 * or -1.  Costs tens of milliseconds and 64 MiB: never on an event loop.
 */
int seadragon_password_hash(const char *password, size_t len, char *out,
    size_t size);

/*
 * 1: the password is the one of encoded, 0: it is not, -1: encoded is
 * not an argon2id hash of at most SEADRAGON_ARGON2_*'s cost (a damaged
 * record must not make a check cost more) or the check failed.
 */
int seadragon_password_verify(const char *encoded, const char *password,
    size_t len);


#endif /* _NGX_HTTP_SEADRAGON_STORE_CODEC_H_INCLUDED_ */
