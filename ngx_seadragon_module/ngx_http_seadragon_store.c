
/*
 * Copyright (C) The Seadragon authors
 *
 * The store: the LMDB environment that says which addresses are
 * whitelisted and which API keys grant which source.  Operators change it
 * with scripts/seadragon-store while nginx runs; every lookup sees the
 * newest committed data, with no reload.
 *
 * LMDB environments must not cross a fork(): the master only checks that
 * the store opens (so nginx -t names a bad path), and each worker opens its
 * own in init_process.  A worker keeps one read transaction handle, renewed
 * for a lookup and reset right after, so readers never hold old pages.
 */


#include "ngx_http_seadragon_module.h"


static ngx_int_t ngx_http_seadragon_store_open(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, ngx_uint_t level);
static void ngx_http_seadragon_store_close(ngx_http_seadragon_store_t *store);


/* seadragon_store PATH [map_size=SIZE] */

char *
ngx_http_seadragon_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf = conf;

    ssize_t                      size;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i;
    ngx_http_seadragon_store_t  *store;

    if (smcf->store) {
        return "is duplicate";
    }

    value = cf->args->elts;

    store = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_store_t));
    if (store == NULL) {
        return NGX_CONF_ERROR;
    }

    store->path = value[1];

    if (ngx_conf_full_name(cf->cycle, &store->path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    store->map_size = 64 * 1024 * 1024;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "map_size=", 9) == 0) {

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (64 * 1024)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": map_size must be a size "
                                   "of at least 64k, such as 64m", &value[i]);
                return NGX_CONF_ERROR;
            }

            store->map_size = size;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected map_size=",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    /* nginx -t and start-up refuse a store that does not open */

    if (ngx_http_seadragon_store_open(store, cf->log, NGX_LOG_EMERG)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_http_seadragon_store_close(store);

    smcf->store = store;

    return NGX_CONF_OK;
}


/*
 * Runs in the master, as root when workers run as another user: readers of
 * an LMDB environment write its lock file, and the admin API writes its
 * data, so the workers' user must own both, as nginx gives its temporary
 * directories to that user.
 */

ngx_int_t
ngx_http_seadragon_store_init_module(ngx_cycle_t *cycle)
{
    u_char                          *path;
    ngx_uint_t                       i;
    ngx_core_conf_t                 *ccf;
    ngx_http_seadragon_main_conf_t  *smcf;

    static char  *files[] = { "lock.mdb", "data.mdb" };

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->store == NULL || geteuid() != 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT || ccf->user == 0) {
        return NGX_OK;
    }

    path = ngx_pnalloc(cycle->pool, smcf->store->path.len
                                    + sizeof("/lock.mdb"));
    if (path == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2; i++) {
        ngx_sprintf(path, "%V/%s%Z", &smcf->store->path, files[i]);

        if (chown((char *) path, ccf->user, (gid_t) -1) == -1
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "seadragon_store: chown(\"%s\") failed; nginx "
                          "workers must be able to write the store", path);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_seadragon_store_init_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->store == NULL) {
        return NGX_OK;
    }

    /*
     * A store that stopped opening since start-up fails closed per
     * request (503), rather than taking the worker down.
     */

    (void) ngx_http_seadragon_store_open(smcf->store, cycle->log,
                                         NGX_LOG_ALERT);

    return NGX_OK;
}


void
ngx_http_seadragon_store_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->store == NULL) {
        return;
    }

    ngx_http_seadragon_store_close(smcf->store);
}


static ngx_int_t
ngx_http_seadragon_store_open(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_uint_t level)
{
    int       rc;
    char     *what;
    MDB_txn  *txn;

    txn = NULL;
    what = "mdb_env_create()";

    rc = mdb_env_create(&store->env);
    if (rc != MDB_SUCCESS) {
        store->env = NULL;
        goto failed;
    }

    what = "mdb_env_set_maxdbs()";

    rc = mdb_env_set_maxdbs(store->env, SEADRAGON_STORE_MAXDBS);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_env_set_mapsize()";

    rc = mdb_env_set_mapsize(store->env, store->map_size);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_env_open()";

    /*
     * Read-write when the files allow it, so that the admin API can change
     * the store; read-only otherwise, where only the tool writes.
     */

    store->read_only = 0;

    rc = mdb_env_open(store->env, (char *) store->path.data, 0, 0644);

    if (rc == EACCES || rc == EROFS) {
        mdb_env_close(store->env);

        rc = mdb_env_create(&store->env);
        if (rc != MDB_SUCCESS) {
            store->env = NULL;
            goto failed;
        }

        (void) mdb_env_set_maxdbs(store->env, SEADRAGON_STORE_MAXDBS);
        (void) mdb_env_set_mapsize(store->env, store->map_size);

        store->read_only = 1;
        rc = mdb_env_open(store->env, (char *) store->path.data, MDB_RDONLY,
                          0644);
    }

    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_txn_begin()";

    rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "opening its databases";

    rc = seadragon_store_open_dbs(txn, &store->dbs, 0);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "reading its format marker";

    rc = seadragon_store_check_format(txn, &store->dbs);

    if (rc == MDB_NOTFOUND) {
        ngx_log_error(level, log, 0,
                      "seadragon_store \"%V\" is not a seadragon store "
                      "(no \"%s\" format marker)", &store->path,
                      SEADRAGON_STORE_FORMAT);
        goto close;
    }

    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    /*
     * Database handles opened in a transaction become the environment's
     * only when it commits; a reset one would leave them invalid (EINVAL)
     * in every later transaction.
     */

    what = "mdb_txn_commit()";

    rc = mdb_txn_commit(txn);
    txn = NULL;

    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    what = "mdb_txn_begin()";

    rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        goto failed;
    }

    mdb_txn_reset(txn);
    store->txn = txn;

    return NGX_OK;

failed:

    ngx_log_error(level, log, 0,
                  "seadragon_store \"%V\" cannot be opened: %s: %s; create "
                  "it with \"seadragon-store --store %V init\"",
                  &store->path, what, mdb_strerror(rc), &store->path);

close:

    if (txn) {
        mdb_txn_abort(txn);
    }

    if (store->env) {
        mdb_env_close(store->env);
        store->env = NULL;
    }

    return NGX_ERROR;
}


static void
ngx_http_seadragon_store_close(ngx_http_seadragon_store_t *store)
{
    if (store->txn) {
        mdb_txn_abort(store->txn);
        store->txn = NULL;
    }

    if (store->env) {
        mdb_env_close(store->env);
        store->env = NULL;
    }
}


ngx_int_t
ngx_http_seadragon_store_begin(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    int  rc;

    if (store->txn == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "seadragon_store \"%V\" is not open in this worker",
                      &store->path);
        return NGX_ERROR;
    }

    rc = mdb_txn_renew(store->txn);

    if (rc == MDB_MAP_RESIZED) {

        /* the tool grew the map: adopt its size and try once more */

        mdb_txn_abort(store->txn);
        store->txn = NULL;

        rc = mdb_env_set_mapsize(store->env, 0);

        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &store->txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "seadragon_store \"%V\": a read transaction failed: %s",
                      &store->path, mdb_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_seadragon_store_end(ngx_http_seadragon_store_t *store)
{
    mdb_txn_reset(store->txn);
}


/* NGX_OK: listed; NGX_DECLINED: not listed; NGX_ERROR: cannot tell */

ngx_int_t
ngx_http_seadragon_store_whitelisted(ngx_http_seadragon_store_t *store,
    ngx_connection_t *c)
{
    int              rc;
    seadragon_net_t  addr;

    if (seadragon_net_from_sockaddr(c->sockaddr, &addr) != 0) {
        return NGX_DECLINED;   /* a unix socket has no address to list */
    }

    if (ngx_http_seadragon_store_begin(store, c->log) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = seadragon_whitelist_find(store->txn, &store->dbs, &addr);

    ngx_http_seadragon_store_end(store);

    if (rc == MDB_SUCCESS) {
        return NGX_OK;
    }

    if (rc == MDB_NOTFOUND) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "seadragon_store \"%V\": whitelist lookup failed: %s",
                  &store->path, mdb_strerror(rc));

    return NGX_ERROR;
}


/* NGX_OK and the record; NGX_DECLINED: unknown key; NGX_ERROR */

ngx_int_t
ngx_http_seadragon_store_key(ngx_http_seadragon_store_t *store,
    ngx_connection_t *c, ngx_str_t *key, seadragon_key_record_t *record)
{
    int  rc;

    if (ngx_http_seadragon_store_begin(store, c->log) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = seadragon_key_find(store->txn, &store->dbs, key->data, key->len,
                            record);

    ngx_http_seadragon_store_end(store);

    if (rc == MDB_SUCCESS) {
        return NGX_OK;
    }

    if (rc == MDB_NOTFOUND) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "seadragon_store \"%V\": key lookup failed: %s",
                  &store->path, mdb_strerror(rc));

    return NGX_ERROR;
}


/*
 * A write transaction for the admin API, for the length of one change;
 * it waits only for a write of the tool, which is as short.
 */

ngx_int_t
ngx_http_seadragon_store_write_begin(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_txn **txn)
{
    int  rc;

    if (store->env == NULL || store->read_only) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "seadragon_store \"%V\" is read-only for nginx "
                      "workers", &store->path);
        return NGX_DECLINED;
    }

    rc = mdb_txn_begin(store->env, NULL, 0, txn);

    if (rc == MDB_MAP_RESIZED) {
        rc = mdb_env_set_mapsize(store->env, 0);

        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(store->env, NULL, 0, txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "seadragon_store \"%V\": a write transaction failed: "
                      "%s", &store->path, mdb_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}
