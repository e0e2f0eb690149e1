
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the store's users, JWT secrets and password hashes
 * (ngx_http_seadragon_store_users.c) in a new LMDB environment: argon2id
 * hashes that seadragon_password_verify() accepts for their password
 * only, hashes of another kind or of a higher cost refused before argon2
 * runs, records of another size or version refused, a store without
 * "users", and a rotation that keeps the previous secret.  Prints TAP
 * for prove (t/052-users-unit.t).
 */


#include "ngx_http_seadragon_store_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static int  tests, failures;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        tests++;                                                             \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ");                                                  \
        }                                                                    \
        printf("ok %d - ", tests);                                           \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
    } while (0)


static void
test_passwords(void)
{
    char    hash[SEADRAGON_USER_HASH_LEN], other[SEADRAGON_USER_HASH_LEN];
    char    edited[2 * SEADRAGON_USER_HASH_LEN];
    char    big[SEADRAGON_PASSWORD_MAX + 2];
    size_t  prefix;

    static const char  params[] = "$argon2id$v=19$m=65536,t=3,p=1$";

    ok(seadragon_password_hash("hunter2", 7, hash, sizeof(hash)) == 0,
       "a password is hashed");
    prefix = sizeof(params) - 1;
    ok(strncmp(hash, params, prefix) == 0, "argon2id, m=65536, t=3, p=1: %s",
       hash);
    ok(strlen(hash) == prefix + 22 + 1 + 43,
       "a salt of 16 bytes and a hash of 32, in base64");

    ok(seadragon_password_verify(hash, "hunter2", 7) == 1,
       "its password verifies");
    ok(seadragon_password_verify(hash, "hunter3", 7) == 0,
       "another does not");
    ok(seadragon_password_verify(hash, "hunter2\n", 8) == 0,
       "nor the password with a newline");
    ok(seadragon_password_verify(hash, "hunter", 6) == 0,
       "nor a prefix of it");
    ok(seadragon_password_verify(hash, "", 0) == 0, "nor an empty one");

    ok(seadragon_password_hash("hunter2", 7, other, sizeof(other)) == 0
       && strcmp(other, hash) != 0, "the same password, another salt");
    ok(seadragon_password_verify(other, "hunter2", 7) == 1,
       "which verifies too");

    ok(seadragon_password_hash("", 0, other, sizeof(other)) == -1,
       "an empty password is not hashed");
    memset(big, 'x', sizeof(big));
    ok(seadragon_password_hash(big, SEADRAGON_PASSWORD_MAX + 1, other,
                               sizeof(other)) == -1,
       "nor one of 1025 bytes");
    ok(seadragon_password_hash(big, SEADRAGON_PASSWORD_MAX, other,
                               sizeof(other)) == 0
       && seadragon_password_verify(other, big, SEADRAGON_PASSWORD_MAX) == 1,
       "one of 1024 bytes is");
    ok(seadragon_password_verify(other, big, SEADRAGON_PASSWORD_MAX + 1)
       == -1, "a password of 1025 bytes is refused by verify");
    ok(seadragon_password_hash("hunter2", 7, other, 64) == -1,
       "a buffer too small for the hash is refused");

    /* a cost above ours, or another kind, is refused before argon2 runs */

    snprintf(edited, sizeof(edited), "$argon2id$v=19$m=4194304,t=3,p=1$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == -1,
       "m=4194304 (4 GiB) is refused");
    snprintf(edited, sizeof(edited), "$argon2id$v=19$m=65536,t=99,p=1$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == -1,
       "t=99 is refused");
    snprintf(edited, sizeof(edited), "$argon2id$v=19$m=65536,t=3,p=8$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == -1,
       "p=8 is refused");
    snprintf(edited, sizeof(edited),
             "$argon2id$v=19$m=99999999999999999999,t=3,p=1$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == -1,
       "a cost that overflows is refused");
    snprintf(edited, sizeof(edited), "$argon2i$v=19$m=65536,t=3,p=1$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == -1,
       "argon2i is refused");
    ok(seadragon_password_verify("", "hunter2", 7) == -1,
       "an empty hash is refused");
    ok(seadragon_password_verify(params, "hunter2", 7) == -1,
       "a hash without salt and digest is refused");

    /* the same parameters, a lower cost: a hash made with them verifies */

    snprintf(edited, sizeof(edited), "$argon2id$v=19$m=65536,t=2,p=1$%s",
             hash + prefix);
    ok(seadragon_password_verify(edited, "hunter2", 7) == 0,
       "t=2 is checked (and this digest is not its)");
}


static void
test_store(const char *path)
{
    int                      rc;
    MDB_env                 *env;
    MDB_txn                 *txn;
    MDB_val                  k, v;
    seadragon_secret_t       secret, previous, again;
    seadragon_store_dbs_t    dbs;
    seadragon_user_record_t  user, read;

    rc = mdb_env_create(&env);
    if (rc == 0) {
        mdb_env_set_maxdbs(env, SEADRAGON_STORE_MAXDBS);
        rc = mdb_env_open(env, path, 0, 0644);
    }

    ok(rc == 0, "an environment: %s", mdb_strerror(rc));
    if (rc) {
        return;
    }

    /* a store made before users: its databases but "users" */

    mdb_txn_begin(env, NULL, 0, &txn);
    memset(&dbs, 0, sizeof(dbs));
    mdb_dbi_open(txn, SEADRAGON_STORE_DB_META, MDB_CREATE, &dbs.meta);
    mdb_dbi_open(txn, SEADRAGON_STORE_DB_WHITELIST, MDB_CREATE,
                 &dbs.whitelist);
    mdb_dbi_open(txn, SEADRAGON_STORE_DB_KEYS, MDB_CREATE, &dbs.keys);
    mdb_dbi_open(txn, SEADRAGON_STORE_DB_KEY_NAMES, MDB_CREATE,
                 &dbs.key_names);
    ok(mdb_txn_commit(txn) == 0, "an old store");

    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    ok(seadragon_store_open_dbs(txn, &dbs, 0) == 0 && dbs.users == 0,
       "its databases open, without users");
    ok(seadragon_user_find(txn, &dbs, "alice", 5, &read) == MDB_NOTFOUND,
       "no user is found there");
    ok(seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_CURRENT, &secret)
       == MDB_NOTFOUND, "nor a secret");
    mdb_txn_abort(txn);

    mdb_txn_begin(env, NULL, 0, &txn);
    seadragon_store_open_dbs(txn, &dbs, 0);
    ok(seadragon_user_remove(txn, &dbs, "alice", 5) == MDB_NOTFOUND,
       "removing a user from it: none");

    memset(&user, 0, sizeof(user));
    user.version = SEADRAGON_USER_VERSION;
    user.created = 1000;
    user.changed = 1000;
    strcpy(user.name, "alice");
    strcpy(user.source, "chat");
    seadragon_password_hash("pw", 2, user.hash, sizeof(user.hash));

    ok(seadragon_user_put(txn, &dbs, &user) == 0 && dbs.users != 0,
       "the first put makes \"users\"");
    ok(seadragon_user_find(txn, &dbs, "alice", 5, &read) == 0
       && memcmp(&read, &user, sizeof(user)) == 0, "and finds the record");
    ok(seadragon_password_verify(read.hash, "pw", 2) == 1,
       "whose hash verifies");
    ok(seadragon_user_find(txn, &dbs, "alic", 4, &read) == MDB_NOTFOUND,
       "a prefix of the name is no user");
    ok(seadragon_user_find(txn, &dbs, "", 0, &read) == MDB_NOTFOUND,
       "nor an empty name");

    k.mv_data = "short";
    k.mv_size = 5;
    v.mv_data = &user;
    v.mv_size = sizeof(user) - 1;
    mdb_put(txn, dbs.users, &k, &v, 0);
    ok(seadragon_user_find(txn, &dbs, "short", 5, &read) == MDB_CORRUPTED,
       "a record a byte short is damaged");

    user.version = 2;
    k.mv_data = "v2";
    k.mv_size = 2;
    v.mv_size = sizeof(user);
    mdb_put(txn, dbs.users, &k, &v, 0);
    ok(seadragon_user_find(txn, &dbs, "v2", 2, &read) == MDB_CORRUPTED,
       "a record of version 2 is damaged");
    ok(seadragon_user_remove(txn, &dbs, "v2", 2) == 0,
       "and can be removed");

    ok(seadragon_secret_rotate(txn, &dbs, 2000) == 0
       && seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_CURRENT, &secret)
          == 0
       && secret.version == 1 && secret.created == 2000,
       "a rotation without a secret makes the first");
    ok(seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_PREVIOUS, &previous)
       == MDB_NOTFOUND, "and no previous one");

    ok(seadragon_secret_rotate(txn, &dbs, 3000) == 0
       && seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_PREVIOUS,
                               &previous) == 0
       && seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_CURRENT, &again)
          == 0,
       "a second rotation");
    ok(memcmp(previous.key, secret.key, sizeof(secret.key)) == 0
       && previous.created == 3000,
       "moves the secret to jwt_previous, created when it was retired");
    ok(memcmp(again.key, secret.key, sizeof(secret.key)) != 0
       && again.created == 3000, "and makes a new one");

    k.mv_data = SEADRAGON_SECRET_CURRENT;
    k.mv_size = sizeof(SEADRAGON_SECRET_CURRENT) - 1;
    v.mv_data = &again;
    v.mv_size = sizeof(again) - 1;
    mdb_put(txn, dbs.meta, &k, &v, 0);
    ok(seadragon_secret_get(txn, &dbs, SEADRAGON_SECRET_CURRENT, &secret)
       == MDB_CORRUPTED, "a secret of 47 bytes is damaged");
    ok(seadragon_secret_rotate(txn, &dbs, 4000) == MDB_CORRUPTED,
       "and is not rotated");

    ok(seadragon_user_remove(txn, &dbs, "alice", 5) == 0
       && seadragon_user_find(txn, &dbs, "alice", 5, &read) == MDB_NOTFOUND,
       "a user removed is gone");

    mdb_txn_abort(txn);
    mdb_env_close(env);
}


int
main(void)
{
    char  path[] = "/tmp/seadragon-users-test-XXXXXX";
    char  file[sizeof(path) + 16];

    test_passwords();

    if (mkdtemp(path) == NULL) {
        ok(0, "mkdtemp()");

    } else {
        test_store(path);

        snprintf(file, sizeof(file), "%s/data.mdb", path);
        unlink(file);
        snprintf(file, sizeof(file), "%s/lock.mdb", path);
        unlink(file);
        rmdir(path);
    }

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
