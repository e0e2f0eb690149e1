
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's users and the secrets that sign their login tokens (see
 * ngx_http_seadragon_store_codec.h), and the argon2id hashing of their
 * passwords.  Plain C on LMDB, OpenSSL and libargon2, shared by the
 * module and scripts/seadragon-store.
 */


#include "ngx_http_seadragon_store_codec.h"

#include <string.h>
#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>


static int seadragon_users_dbi(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    MDB_dbi *dbi);
static int seadragon_password_cost(const char **text, const char *name,
    uint32_t max);


int
seadragon_users_open(MDB_txn *txn, seadragon_store_dbs_t *dbs)
{
    if (dbs->users) {
        return MDB_SUCCESS;
    }

    return mdb_dbi_open(txn, SEADRAGON_STORE_DB_USERS, MDB_CREATE,
                        &dbs->users);
}


/* as seadragon_usage_dbi(): the handle of txn ends with it */

static int
seadragon_users_dbi(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    MDB_dbi *dbi)
{
    if (dbs->users) {
        *dbi = dbs->users;
        return MDB_SUCCESS;
    }

    return mdb_dbi_open(txn, SEADRAGON_STORE_DB_USERS, 0, dbi);
}


int
seadragon_user_record_read(const MDB_val *value,
    seadragon_user_record_t *record)
{
    if (value->mv_size != sizeof(seadragon_user_record_t)) {
        return MDB_CORRUPTED;
    }

    memcpy(record, value->mv_data, sizeof(seadragon_user_record_t));

    if (record->version != SEADRAGON_USER_VERSION) {
        return MDB_CORRUPTED;
    }

    record->name[SEADRAGON_KEY_NAME_LEN - 1] = '\0';
    record->source[SEADRAGON_KEY_SOURCE_LEN - 1] = '\0';
    record->hash[SEADRAGON_USER_HASH_LEN - 1] = '\0';

    return 0;
}


int
seadragon_user_find(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len, seadragon_user_record_t *record)
{
    int      rc;
    MDB_val  k, v;
    MDB_dbi  dbi;

    /* LMDB refuses an empty key, and no user has a name that long */

    if (len == 0 || len >= SEADRAGON_KEY_NAME_LEN) {
        return MDB_NOTFOUND;
    }

    rc = seadragon_users_dbi(txn, dbs, &dbi);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    rc = mdb_get(txn, dbi, &k, &v);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    return seadragon_user_record_read(&v, record);
}


int
seadragon_user_put(MDB_txn *txn, seadragon_store_dbs_t *dbs,
    const seadragon_user_record_t *record)
{
    int      rc;
    size_t   len;
    MDB_val  k, v;

    len = strnlen(record->name, SEADRAGON_KEY_NAME_LEN);

    if (len == 0 || len == SEADRAGON_KEY_NAME_LEN) {
        return MDB_BAD_VALSIZE;
    }

    rc = seadragon_users_open(txn, dbs);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = (void *) record->name;
    k.mv_size = len;
    v.mv_data = (void *) record;
    v.mv_size = sizeof(seadragon_user_record_t);

    return mdb_put(txn, dbs->users, &k, &v, 0);
}


int
seadragon_user_remove(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *name, size_t len)
{
    int      rc;
    MDB_val  k;
    MDB_dbi  dbi;

    if (len == 0 || len >= SEADRAGON_KEY_NAME_LEN) {
        return MDB_NOTFOUND;
    }

    rc = seadragon_users_dbi(txn, dbs, &dbi);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    return mdb_del(txn, dbi, &k, NULL);
}


int
seadragon_secret_get(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    const char *which, seadragon_secret_t *secret)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) which;
    k.mv_size = strlen(which);

    rc = mdb_get(txn, dbs->meta, &k, &v);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (v.mv_size != sizeof(seadragon_secret_t)) {
        return MDB_CORRUPTED;
    }

    memcpy(secret, v.mv_data, sizeof(seadragon_secret_t));

    if (secret->version != SEADRAGON_SECRET_VERSION) {
        OPENSSL_cleanse(secret, sizeof(seadragon_secret_t));
        return MDB_CORRUPTED;
    }

    return 0;
}


int
seadragon_secret_rotate(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    time_t now)
{
    int                 rc;
    MDB_val             k, v;
    seadragon_secret_t  secret;

    rc = seadragon_secret_get(txn, dbs, SEADRAGON_SECRET_CURRENT, &secret);

    if (rc == MDB_SUCCESS) {
        secret.created = (int64_t) now;

        k.mv_data = SEADRAGON_SECRET_PREVIOUS;
        k.mv_size = sizeof(SEADRAGON_SECRET_PREVIOUS) - 1;
        v.mv_data = &secret;
        v.mv_size = sizeof(seadragon_secret_t);

        rc = mdb_put(txn, dbs->meta, &k, &v, 0);

        if (rc != MDB_SUCCESS) {
            OPENSSL_cleanse(&secret, sizeof(seadragon_secret_t));
            return rc;
        }

    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }

    memset(&secret, 0, sizeof(seadragon_secret_t));

    secret.version = SEADRAGON_SECRET_VERSION;
    secret.created = (int64_t) now;

    if (RAND_bytes(secret.key, sizeof(secret.key)) != 1) {
        return -1;
    }

    k.mv_data = SEADRAGON_SECRET_CURRENT;
    k.mv_size = sizeof(SEADRAGON_SECRET_CURRENT) - 1;
    v.mv_data = &secret;
    v.mv_size = sizeof(seadragon_secret_t);

    rc = mdb_put(txn, dbs->meta, &k, &v, 0);

    OPENSSL_cleanse(&secret, sizeof(seadragon_secret_t));

    return rc;
}


int
seadragon_password_hash(const char *password, size_t len, char *out,
    size_t size)
{
    int      rc;
    uint8_t  salt[SEADRAGON_ARGON2_SALT_LEN];

    if (len == 0 || len > SEADRAGON_PASSWORD_MAX
        || size < argon2_encodedlen(SEADRAGON_ARGON2_T, SEADRAGON_ARGON2_M,
                                    SEADRAGON_ARGON2_P, sizeof(salt),
                                    SEADRAGON_ARGON2_HASH_LEN, Argon2_id))
    {
        return -1;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return -1;
    }

    rc = argon2id_hash_encoded(SEADRAGON_ARGON2_T, SEADRAGON_ARGON2_M,
                               SEADRAGON_ARGON2_P, password, len, salt,
                               sizeof(salt), SEADRAGON_ARGON2_HASH_LEN, out,
                               size);

    OPENSSL_cleanse(salt, sizeof(salt));

    return rc == ARGON2_OK ? 0 : -1;
}


int
seadragon_password_verify(const char *encoded, const char *password,
    size_t len)
{
    int          rc;
    const char  *p;

    if (len == 0) {
        return 0;
    }

    if (len > SEADRAGON_PASSWORD_MAX) {
        return -1;
    }

    /* argon2 would run with whatever cost the encoded text names */

    p = encoded;

    if (strncmp(p, "$argon2id$v=19$", sizeof("$argon2id$v=19$") - 1) != 0) {
        return -1;
    }

    p += sizeof("$argon2id$v=19$") - 1;

    if (seadragon_password_cost(&p, "m=", SEADRAGON_ARGON2_M) != 0
        || *p++ != ','
        || seadragon_password_cost(&p, "t=", SEADRAGON_ARGON2_T) != 0
        || *p++ != ','
        || seadragon_password_cost(&p, "p=", SEADRAGON_ARGON2_P) != 0
        || *p != '$')
    {
        return -1;
    }

    rc = argon2id_verify(encoded, password, len);

    if (rc == ARGON2_OK) {
        return 1;
    }

    return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
}


/* "m=65536": a number of 1 to max after name; 0, or -1 */

static int
seadragon_password_cost(const char **text, const char *name, uint32_t max)
{
    uint64_t     n;
    const char  *p;

    p = *text;

    if (p[0] != name[0] || p[1] != '=' || p[2] < '1' || p[2] > '9') {
        return -1;
    }

    n = 0;

    for (p += 2; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t) (*p - '0');

        if (n > max) {
            return -1;
        }
    }

    *text = p;

    return 0;
}
