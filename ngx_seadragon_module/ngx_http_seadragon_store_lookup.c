
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's lookups on a request's path: whether an address is
 * whitelisted, an API key's record, and what a principal used on a day
 * (for the limits), a user's record and the secrets of the login tokens
 * (for seadragon_auth).  Each is one read through
 * ngx_http_seadragon_store_read(), inside the guard.
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/crypto.h>


typedef struct {
    ngx_str_t                   *key;
    seadragon_key_record_t      *record;
} ngx_http_seadragon_store_key_find_t;


typedef struct {
    ngx_str_t                   *principal;
    uint32_t                     day;
    seadragon_usage_record_t    *sum;
} ngx_http_seadragon_store_usage_find_t;


typedef struct {
    ngx_str_t                   *name;
    seadragon_user_record_t     *record;
} ngx_http_seadragon_store_user_find_t;


typedef struct {
    seadragon_secret_t          *current;
    seadragon_secret_t          *previous;
    ngx_uint_t                  *has_previous;
} ngx_http_seadragon_store_secrets_find_t;


static int ngx_http_seadragon_store_find_addr(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_key(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_usage(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_user(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_secrets(
    ngx_http_seadragon_store_t *store, void *data);


/* NGX_OK: listed; NGX_DECLINED: not listed; NGX_ERROR: cannot tell */

ngx_int_t
ngx_http_seadragon_store_whitelisted(ngx_http_seadragon_store_t *store,
    ngx_connection_t *c)
{
    seadragon_net_t  addr;

    if (seadragon_net_from_sockaddr(c->sockaddr, &addr) != 0) {
        return NGX_DECLINED;   /* a unix socket has no address to list */
    }

    return ngx_http_seadragon_store_read(store, c->log, "a whitelist lookup",
                                         ngx_http_seadragon_store_find_addr,
                                         &addr);
}


static int
ngx_http_seadragon_store_find_addr(ngx_http_seadragon_store_t *store,
    void *data)
{
    seadragon_net_t  *addr = data;

    return seadragon_whitelist_find(store->txn, &store->dbs, addr);
}


/* NGX_OK and the record; NGX_DECLINED: unknown key; NGX_ERROR */

ngx_int_t
ngx_http_seadragon_store_key(ngx_http_seadragon_store_t *store,
    ngx_connection_t *c, ngx_str_t *key, seadragon_key_record_t *record)
{
    ngx_http_seadragon_store_key_find_t  find;

    find.key = key;
    find.record = record;

    return ngx_http_seadragon_store_read(store, c->log, "a key lookup",
                                         ngx_http_seadragon_store_find_key,
                                         &find);
}


static int
ngx_http_seadragon_store_find_key(ngx_http_seadragon_store_t *store,
    void *data)
{
    ngx_http_seadragon_store_key_find_t  *find = data;

    return seadragon_key_find(store->txn, &store->dbs, find->key->data,
                              find->key->len, find->record);
}


/* what a principal used of every model on a day: NGX_OK; NGX_ERROR */

ngx_int_t
ngx_http_seadragon_store_usage_sum(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_str_t *principal, uint32_t day,
    seadragon_usage_record_t *sum)
{
    ngx_http_seadragon_store_usage_find_t  find;

    ngx_memzero(sum, sizeof(seadragon_usage_record_t));

    find.principal = principal;
    find.day = day;
    find.sum = sum;

    return ngx_http_seadragon_store_read(store, log, "a usage lookup",
                                         ngx_http_seadragon_store_find_usage,
                                         &find);
}


static int
ngx_http_seadragon_store_find_usage(ngx_http_seadragon_store_t *store,
    void *data)
{
    ngx_http_seadragon_store_usage_find_t  *find = data;

    /* a store made before usage: seadragon_usage_dbi() looks in the txn */

    return seadragon_usage_sum(store->txn, &store->dbs, find->day,
                               (const char *) find->principal->data,
                               find->principal->len, find->sum);
}


/*
 * NGX_OK and the user's record (a copy: nothing of the map is kept),
 * NGX_DECLINED: no such user (also when the store has no users yet),
 * NGX_ERROR: the store cannot be read.
 */

ngx_int_t
ngx_http_seadragon_store_user(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_str_t *name, seadragon_user_record_t *record)
{
    ngx_http_seadragon_store_user_find_t  find;

    find.name = name;
    find.record = record;

    return ngx_http_seadragon_store_read(store, log, "a user lookup",
                                         ngx_http_seadragon_store_find_user,
                                         &find);
}


static int
ngx_http_seadragon_store_find_user(ngx_http_seadragon_store_t *store,
    void *data)
{
    ngx_http_seadragon_store_user_find_t  *find = data;

    /* a store made before users: seadragon_user_find() looks in the txn */

    return seadragon_user_find(store->txn, &store->dbs,
                               (const char *) find->name->data,
                               find->name->len, find->record);
}


/*
 * The secrets that sign and check login tokens: NGX_OK and "jwt_secret"
 * (and "jwt_previous" when *has_previous), NGX_DECLINED: the store has no
 * jwt_secret (made before logins, and no user added since), NGX_ERROR.
 * The caller cleanses both copies when done.
 */

ngx_int_t
ngx_http_seadragon_store_secrets(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, seadragon_secret_t *current, seadragon_secret_t *previous,
    ngx_uint_t *has_previous)
{
    ngx_http_seadragon_store_secrets_find_t  find;

    *has_previous = 0;

    find.current = current;
    find.previous = previous;
    find.has_previous = has_previous;

    return ngx_http_seadragon_store_read(store, log, "a secret lookup",
                                         ngx_http_seadragon_store_find_secrets,
                                         &find);
}


static int
ngx_http_seadragon_store_find_secrets(ngx_http_seadragon_store_t *store,
    void *data)
{
    ngx_http_seadragon_store_secrets_find_t  *find = data;

    int  rc;

    rc = seadragon_secret_get(store->txn, &store->dbs,
                              SEADRAGON_SECRET_CURRENT, find->current);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    rc = seadragon_secret_get(store->txn, &store->dbs,
                              SEADRAGON_SECRET_PREVIOUS, find->previous);

    if (rc == MDB_SUCCESS) {
        *find->has_previous = 1;
        return MDB_SUCCESS;
    }

    if (rc == MDB_NOTFOUND) {
        return MDB_SUCCESS;
    }

    OPENSSL_cleanse(find->current, sizeof(seadragon_secret_t));

    return rc;
}
