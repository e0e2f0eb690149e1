
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's lookups on a request's path: whether an address is
 * whitelisted, an API key's record, and what a principal used on a day
 * (for the limits).  Each is one read through
 * ngx_http_seadragon_store_read(), inside the guard.
 */


#include "ngx_http_seadragon_module.h"


typedef struct {
    ngx_str_t                   *key;
    seadragon_key_record_t      *record;
} ngx_http_seadragon_store_key_find_t;


typedef struct {
    ngx_str_t                   *principal;
    uint32_t                     day;
    seadragon_usage_record_t    *sum;
} ngx_http_seadragon_store_usage_find_t;


static int ngx_http_seadragon_store_find_addr(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_key(
    ngx_http_seadragon_store_t *store, void *data);
static int ngx_http_seadragon_store_find_usage(
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
