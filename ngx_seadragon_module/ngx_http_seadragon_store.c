
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
 *
 * A store is a file that anyone with the rights can truncate, overwrite,
 * remove or chmod while nginx reads it through a map, where a page past
 * the end of the file is a SIGBUS.  So a worker:
 *
 *   - opens it read-only (MDB_RDONLY opens data.mdb without O_CREAT, so
 *     a worker never creates a store, nor re-initializes an empty file);
 *     the admin API's changes need a read-write environment: the worker
 *     closes its read-only one and opens a read-write one for the change,
 *     after checking the file, and goes back to read-only at the next
 *     read.  Two environments on one file in one process would break
 *     LMDB's fcntl() locks (closing either drops the other's), so it is
 *     one or the other, never both;
 *   - checks the file before each read: fstat(), and when the file has
 *     changed since the last check, its two meta pages with pread()
 *     (seadragon_store_check_file()), never through the map;
 *   - reads inside a SIGBUS/SIGSEGV guard (sigsetjmp()) all the same, for
 *     what no check can see: a file truncated during the read, or a page
 *     that points past the file's end.  A fault there closes the store
 *     (503) instead of killing the worker, whose replacement would fault
 *     again and leak a reader slot each time;
 *   - clears the reader slots of dead processes (mdb_reader_check()) at
 *     each open and when the table is full;
 *   - checks once a second, on a timer, that the files are the ones it
 *     has open and that it could open them again (a chmod, a new file),
 *     and reopens a closed store as soon as it opens: no reload needed.
 *
 * While the store is closed every lookup fails, which the callers turn
 * into 503 JSON: closed, never open.
 *
 * This file opens and closes the store and holds its reads and writes;
 * the lookups of a request's path are in
 * ngx_http_seadragon_store_lookup.c, the guard and the checks of the
 * store's files in ngx_http_seadragon_store_guard.c.
 */


#include "ngx_http_seadragon_module.h"



#define NGX_HTTP_SEADRAGON_STORE_TICK   1000
#define NGX_HTTP_SEADRAGON_STORE_RELOG  60000


static ngx_int_t ngx_http_seadragon_store_open(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, ngx_uint_t level);
static ngx_int_t ngx_http_seadragon_store_env(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, unsigned flags);
static ngx_int_t ngx_http_seadragon_store_open_read(
    ngx_http_seadragon_store_t *store, ngx_log_t *log);
static void ngx_http_seadragon_store_map_range(
    ngx_http_seadragon_store_t *store, ngx_log_t *log);
static void ngx_http_seadragon_store_close(ngx_http_seadragon_store_t *store);
static void ngx_http_seadragon_store_closed(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_uint_t level);
static ngx_int_t ngx_http_seadragon_store_ready(
    ngx_http_seadragon_store_t *store, ngx_log_t *log);
static int ngx_http_seadragon_store_txn_begin(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, unsigned flags,
    MDB_txn **txn);
static int ngx_http_seadragon_store_renew(ngx_http_seadragon_store_t *store,
    ngx_log_t *log);
static ngx_int_t ngx_http_seadragon_store_faulted(
    ngx_http_seadragon_store_t *store, ngx_log_t *log);
static ngx_int_t ngx_http_seadragon_store_read_failed(
    ngx_http_seadragon_store_t *store, ngx_log_t *log, const char *what,
    int rc);
static void ngx_http_seadragon_store_tick(ngx_event_t *ev);
static void ngx_http_seadragon_store_probe(ngx_http_seadragon_store_t *store,
    ngx_log_t *log);


/* seadragon_store PATH [map_size=SIZE] */

char *
ngx_http_seadragon_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf = conf;

    ssize_t                      size;
    ngx_int_t                    rc;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i, installed;
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
    store->fd = -1;
    store->check_layout = 1;

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

    store->data_path = ngx_pnalloc(cf->pool,
                                   store->path.len + sizeof("/data.mdb"));
    store->lock_path = ngx_pnalloc(cf->pool,
                                   store->path.len + sizeof("/lock.mdb"));
    if (store->data_path == NULL || store->lock_path == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(store->data_path, "%V/data.mdb%Z", &store->path);
    ngx_sprintf(store->lock_path, "%V/lock.mdb%Z", &store->path);

    store->conf_file = cf->conf_file->file.name.data;
    store->conf_line = cf->conf_file->line;

    /*
     * nginx -t and start-up refuse a store that does not open; the guard
     * is the master's only for this check, which reads the store too.
     */

    installed = (ngx_http_seadragon_store_guard_install(cf->log) == NGX_OK);

    rc = ngx_http_seadragon_store_open(store, cf->log, NGX_LOG_EMERG);

    ngx_http_seadragon_store_close(store);

    if (installed) {
        ngx_http_seadragon_store_guard_remove();
    }

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    smcf->store = store;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_seadragon_store_init_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_store_t      *store;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    /*
     * The cache manager and loader never look a key up; the loader ends
     * with exit(), without exit_process, and would leave a reader slot.
     */

    if (smcf == NULL || smcf->store == NULL
        || ngx_process == NGX_PROCESS_HELPER)
    {
        return NGX_OK;
    }

    store = smcf->store;

    (void) ngx_http_seadragon_store_guard_install(cycle->log);

    /*
     * A store that stopped opening since start-up fails closed per
     * request (503), rather than taking the worker down, and the tick
     * opens it once it can.
     */

    if (ngx_http_seadragon_store_open(store, cycle->log, 0) != NGX_OK) {
        ngx_http_seadragon_store_closed(store, cycle->log, NGX_LOG_ALERT);
    }

    store->tick.handler = ngx_http_seadragon_store_tick;
    store->tick.data = store;
    store->tick.log = cycle->log;
    store->tick.cancelable = 1;

    ngx_add_timer(&store->tick, NGX_HTTP_SEADRAGON_STORE_TICK);

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


/*
 * Opens the store read-only with its read transaction, or says why not:
 * at the level given, or (level 0) into store->reason only.
 */

static ngx_int_t
ngx_http_seadragon_store_open(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_uint_t level)
{
    ngx_int_t  rc;

    store->reason[0] = '\0';

    rc = ngx_http_seadragon_store_env(store, log, MDB_RDONLY);

    if (rc == NGX_OK) {
        rc = ngx_http_seadragon_store_open_read(store, log);
    }

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    ngx_http_seadragon_store_close(store);

    if (level) {
        ngx_log_error(level, log, 0, "seadragon_store \"%V\" cannot be "
                      "opened: %s", &store->path, store->reason);
    }

    return NGX_ERROR;
}


/*
 * The environment, read-only (MDB_RDONLY) or read-write (0), on a data
 * file checked first: LMDB opening an empty or missing data.mdb
 * read-write would make a new environment of it.  NGX_DECLINED: the
 * files do not allow read-write.
 */

static ngx_int_t
ngx_http_seadragon_store_env(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, unsigned flags)
{
    int                     rc, fd, dead;
    size_t                  map_size;
    ngx_err_t               err;
    const char             *error;
    seadragon_store_file_t  file;

    fd = open((char *) store->data_path, O_RDONLY);

    if (fd == -1) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            ngx_http_seadragon_store_fail(store, "%s: no such file; create "
                                          "the store with \"seadragon-store "
                                          "--store %V init\"",
                                          store->data_path, &store->path);
        } else {
            ngx_http_seadragon_store_fail(store, "open(\"%s\") failed: %s",
                                          store->data_path, strerror(err));
        }

        return NGX_ERROR;
    }

    rc = seadragon_store_check_file(fd, &file, &error);

    (void) close(fd);

    if (rc != 0) {
        ngx_http_seadragon_store_fail(store, "%s; restore it from a copy, "
                                      "or move it away and create a new "
                                      "store with \"seadragon-store --store "
                                      "%V init\"", error, &store->path);
        return NGX_ERROR;
    }

    rc = mdb_env_create(&store->env);
    if (rc != MDB_SUCCESS) {
        store->env = NULL;
        ngx_http_seadragon_store_fail(store, "mdb_env_create(): %s",
                                      mdb_strerror(rc));
        return NGX_ERROR;
    }

    map_size = ngx_max(store->map_size, (size_t) file.map_size);

    rc = mdb_env_set_maxdbs(store->env, SEADRAGON_STORE_MAXDBS);

    if (rc == MDB_SUCCESS) {
        rc = mdb_env_set_mapsize(store->env, map_size);
    }

    if (rc == MDB_SUCCESS) {
        rc = mdb_env_open(store->env, (char *) store->path.data, flags,
                          0644);

        if ((rc == EACCES || rc == EROFS) && !(flags & MDB_RDONLY)) {
            mdb_env_close(store->env);
            store->env = NULL;
            return NGX_DECLINED;
        }
    }

    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "mdb_env_open(): %s",
                                      mdb_strerror(rc));
        return NGX_ERROR;
    }

    store->writable = !(flags & MDB_RDONLY);

    /* a dead reader's slot keeps old pages from reuse and fills the table */

    dead = 0;

    if (mdb_reader_check(store->env, &dead) == MDB_SUCCESS && dead) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "seadragon_store \"%V\": cleared %d reader slots of "
                      "dead processes", &store->path, dead);
    }

    if (mdb_env_get_fd(store->env, &store->fd) != MDB_SUCCESS) {
        store->fd = -1;
        ngx_http_seadragon_store_fail(store, "mdb_env_get_fd() failed");
        return NGX_ERROR;
    }

    /* none: LMDB reads a store on a read-only file system without one */

    if (ngx_file_info(store->lock_path, &store->lock_info) == NGX_FILE_ERROR) {
        ngx_memzero(&store->lock_info, sizeof(ngx_file_info_t));
    }

    /* the file LMDB holds, which may not be the one checked above */

    return ngx_http_seadragon_store_check(store, 1);
}


/* the databases, the format marker, and the reset read transaction */

static ngx_int_t
ngx_http_seadragon_store_open_read(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    int         rc;
    sigjmp_buf  jmp;

    if (sigsetjmp(jmp, 0)) {
        ngx_http_seadragon_store_fail(store, "reading it raised signal %d "
                                      "at %p (a page past the end of "
                                      "data.mdb?)",
                                      ngx_http_seadragon_store_signo,
                                      ngx_http_seadragon_store_addr);
        return NGX_ERROR;
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = ngx_http_seadragon_store_txn_begin(store, log, MDB_RDONLY,
                                            &store->txn);
    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "mdb_txn_begin(): %s",
                                      mdb_strerror(rc));
        goto failed;
    }

    rc = seadragon_store_open_dbs(store->txn, &store->dbs, 0);
    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "opening its databases: %s%s",
                                      mdb_strerror(rc),
                                      rc == MDB_NOTFOUND
                                      ? " (not a seadragon store?)" : "");
        goto failed;
    }

    rc = seadragon_store_check_format(store->txn, &store->dbs);

    if (rc == MDB_NOTFOUND) {
        ngx_http_seadragon_store_fail(store, "it is not a seadragon store "
                                      "(no \"%s\" format marker)",
                                      SEADRAGON_STORE_FORMAT);
        goto failed;
    }

    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "reading its format marker: %s",
                                      mdb_strerror(rc));
        goto failed;
    }

    ngx_http_seadragon_store_map_range(store, log);

    /*
     * Database handles opened in a transaction become the environment's
     * only when it commits; a reset one would leave them invalid (EINVAL)
     * in every later transaction.
     */

    rc = mdb_txn_commit(store->txn);
    store->txn = NULL;

    if (rc == MDB_SUCCESS) {
        rc = ngx_http_seadragon_store_txn_begin(store, log, MDB_RDONLY,
                                                &store->txn);
    }

    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "a read transaction: %s",
                                      mdb_strerror(rc));
        goto failed;
    }

    mdb_txn_reset(store->txn);

    ngx_http_seadragon_store_jmp = NULL;

    ngx_http_seadragon_store_lo = store->fault_lo;
    ngx_http_seadragon_store_hi = store->fault_hi;

    return NGX_OK;

failed:

    ngx_http_seadragon_store_jmp = NULL;

    return NGX_ERROR;
}


/*
 * Inside open_read()'s guard: where a fault is the store's, around the
 * map, found from a value in it (a read-only transaction reads the map
 * itself); and whether what the module reads of the meta pages agrees
 * with LMDB.
 */

static void
ngx_http_seadragon_store_map_range(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    MDB_val      k, v;
    MDB_stat     st;
    MDB_envinfo  info;

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    if (mdb_get(store->txn, store->dbs.meta, &k, &v) != MDB_SUCCESS
        || mdb_env_info(store->env, &info) != MDB_SUCCESS)
    {
        return;
    }

    store->fault_lo = (u_char *) v.mv_data
                      - ngx_min((uintptr_t) v.mv_data, info.me_mapsize);
    store->fault_hi = (u_char *) v.mv_data + info.me_mapsize + 256 * 1024;

    /*
     * A write that another process (a worker's usage, the tool) commits
     * between the module's read of the meta pages and LMDB's own gives
     * LMDB a newer transaction: that is no disagreement, and the next
     * open compares again.
     */

    if (store->check_layout
        && (mdb_env_stat(store->env, &st) != MDB_SUCCESS
            || st.ms_psize != store->file.psize
            || (info.me_last_txnid == store->file.txnid
                && info.me_last_pgno != store->file.last_pgno)
            || info.me_last_txnid < store->file.txnid))
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "seadragon_store \"%V\": this liblmdb's data file "
                      "is not laid out as the module reads it; it "
                      "checks only the file's size before a read",
                      &store->path);
        store->check_layout = 0;
    }
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

    store->fd = -1;
    store->writable = 0;
    store->fault_lo = NULL;
    store->fault_hi = NULL;
    ngx_http_seadragon_store_lo = NULL;
    ngx_http_seadragon_store_hi = NULL;
}


void
ngx_http_seadragon_store_fail(ngx_http_seadragon_store_t *store,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(store->reason, store->reason + sizeof(store->reason) - 1,
                      fmt, args);
    va_end(args);

    *p = '\0';
}


/*
 * Closes the store for store->reason, to be tried again in a second;
 * says so at ERR when the reason is new or a minute old (each refused
 * request says so at its own), at the level given when not 0.
 */

static void
ngx_http_seadragon_store_closed(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, ngx_uint_t level)
{
    ngx_http_seadragon_store_close(store);

    store->retry = ngx_current_msec + NGX_HTTP_SEADRAGON_STORE_TICK;

    if (store->reason[0] == '\0') {
        ngx_cpystrn(store->reason, (u_char *) "closed", sizeof(store->reason));
    }

    if (level == 0
        && ngx_strcmp(store->reason, store->logged) == 0
        && ngx_current_msec - store->logged_at < NGX_HTTP_SEADRAGON_STORE_RELOG)
    {
        return;
    }

    if (level == 0) {
        level = NGX_LOG_ERR;
    }

    ngx_log_error(level, log, 0,
                  "seadragon_store \"%V\" is closed in this worker: %s; "
                  "requests that need it get 503 until it opens again",
                  &store->path, store->reason);

    ngx_cpystrn(store->logged, store->reason, sizeof(store->logged));
    store->logged_at = ngx_current_msec;
}


/*
 * Before a read: the read-only environment open, or opened again when
 * its second has come, on a data file that passes the check.
 */

static ngx_int_t
ngx_http_seadragon_store_ready(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    if (store->env && store->writable) {

        /* the admin API's change is over: back to read-only */

        ngx_http_seadragon_store_close(store);
        store->reason[0] = '\0';
        store->retry = 0;
    }

    if (store->env == NULL) {

        if (store->reason[0] && (ngx_msec_int_t) (ngx_current_msec
                                                  - store->retry) < 0)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "seadragon_store \"%V\" is not open in this "
                          "worker: %s", &store->path, store->reason);
            return NGX_ERROR;
        }

        if (ngx_http_seadragon_store_open(store, log, 0) != NGX_OK) {
            ngx_http_seadragon_store_closed(store, log, 0);
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "seadragon_store \"%V\" is not open in this "
                          "worker: %s", &store->path, store->reason);
            return NGX_ERROR;
        }

        if (store->logged[0]) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "seadragon_store \"%V\" is open again",
                          &store->path);
            store->logged[0] = '\0';
        }

        return NGX_OK;
    }

    if (ngx_http_seadragon_store_check(store, 0) != NGX_OK) {
        ngx_http_seadragon_store_closed(store, log, 0);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* mdb_txn_begin(), clearing dead readers' slots when the table is full */

static int
ngx_http_seadragon_store_txn_begin(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, unsigned flags, MDB_txn **txn)
{
    int  rc, dead;

    rc = mdb_txn_begin(store->env, NULL, flags, txn);

    if (rc == MDB_READERS_FULL) {
        dead = 0;
        (void) mdb_reader_check(store->env, &dead);

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "seadragon_store \"%V\": the reader table is full; "
                      "cleared %d slots of dead processes", &store->path,
                      dead);

        rc = mdb_txn_begin(store->env, NULL, flags, txn);
    }

    if (rc == MDB_MAP_RESIZED) {

        /* the tool grew the map: adopt its size (checked) and try again */

        rc = mdb_env_set_mapsize(store->env, 0);

        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_begin(store->env, NULL, flags, txn);
        }
    }

    if (rc != MDB_SUCCESS) {
        *txn = NULL;
    }

    return rc;
}


/*
 * Renews the read transaction, inside the guard.  The lock file's
 * transaction id ahead of every meta page's means data.mdb is not the
 * file this lock file saw (a copy put back while the store was open):
 * LMDB would pick a meta page by that id's parity, maybe the older one,
 * so the store is closed until every process has let go of it and the
 * next one to open it sets the id again.
 */

static int
ngx_http_seadragon_store_renew(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    int  rc;

    rc = mdb_txn_renew(store->txn);

    if (rc == MDB_MAP_RESIZED) {
        mdb_txn_abort(store->txn);
        store->txn = NULL;

        rc = ngx_http_seadragon_store_txn_begin(store, log, MDB_RDONLY,
                                                &store->txn);
    }

    if (rc != MDB_SUCCESS) {
        ngx_http_seadragon_store_fail(store, "a read transaction failed: %s",
                                      mdb_strerror(rc));
        return rc;
    }

    if (store->check_layout && mdb_txn_id(store->txn) > store->file.txnid) {

        /* a commit since the check, or a file that went back */

        if (ngx_http_seadragon_store_check(store, 1) != NGX_OK) {
            mdb_txn_reset(store->txn);
            return MDB_INVALID;
        }

        if (mdb_txn_id(store->txn) > store->file.txnid) {
            mdb_txn_reset(store->txn);
            ngx_http_seadragon_store_fail(store, "data.mdb is older than "
                                          "its lock file (was it copied "
                                          "back while the store was open?); "
                                          "waiting for every process to "
                                          "close it");
            return MDB_INVALID;
        }
    }

    return MDB_SUCCESS;
}


/* after a fault in the guard: the store closed, the lookup failed */

static ngx_int_t
ngx_http_seadragon_store_faulted(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    ngx_http_seadragon_store_fail(store, "reading it raised signal %d at %p "
                                  "(data.mdb truncated or overwritten while "
                                  "it was read?)",
                                  ngx_http_seadragon_store_signo,
                                  ngx_http_seadragon_store_addr);

    ngx_http_seadragon_store_closed(store, log, NGX_LOG_ALERT);

    return NGX_ERROR;
}


/* a lookup's error other than "not found": the store is closed */

static ngx_int_t
ngx_http_seadragon_store_read_failed(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, const char *what, int rc)
{
    if (rc != MDB_INVALID) {
        ngx_http_seadragon_store_fail(store, "%s failed: %s", what,
                                      mdb_strerror(rc));
    }

    ngx_http_seadragon_store_closed(store, log, 0);

    return NGX_ERROR;
}


static void
ngx_http_seadragon_store_tick(ngx_event_t *ev)
{
    ngx_http_seadragon_store_t  *store;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    store = ev->data;

    ngx_http_seadragon_store_probe(store, ev->log);

    ngx_add_timer(ev, NGX_HTTP_SEADRAGON_STORE_TICK);
}


/*
 * The tick's check: what a lookup would find, without one, so that a
 * worker with no traffic also lets go of a broken store (and so of its
 * lock file) and opens it again as soon as it can.
 */

static void
ngx_http_seadragon_store_probe(ngx_http_seadragon_store_t *store,
    ngx_log_t *log)
{
    if (store->env == NULL) {

        if (store->reason[0] && (ngx_msec_int_t) (ngx_current_msec
                                                  - store->retry) < 0)
        {
            return;
        }

        if (ngx_http_seadragon_store_open(store, log, 0) != NGX_OK) {
            ngx_http_seadragon_store_closed(store, log, 0);
            return;
        }

        if (store->logged[0]) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "seadragon_store \"%V\" is open again",
                          &store->path);
            store->logged[0] = '\0';
        }
    }

    if (!store->writable
        && ngx_http_seadragon_store_check_paths(store) != NGX_OK)
    {
        ngx_http_seadragon_store_closed(store, log, 0);
        return;
    }

    (void) ngx_http_seadragon_store_read(store, log, "a read transaction",
                                         NULL, NULL);
}


/*
 * The one shape of a lookup: the store ready, the read transaction
 * renewed, "read" (if any) run in it and the transaction reset, all
 * inside the guard.  The sigsetjmp() frame is this function's, alive for
 * the whole read.  NGX_OK: "read" returned MDB_SUCCESS; NGX_DECLINED:
 * MDB_NOTFOUND; NGX_ERROR: the store cannot be read, and is closed.
 */

ngx_int_t
ngx_http_seadragon_store_read(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, const char *what, ngx_http_seadragon_store_read_pt read,
    void *data)
{
    int         rc;
    sigjmp_buf  jmp;

    if (ngx_http_seadragon_store_ready(store, log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (sigsetjmp(jmp, 0)) {
        return ngx_http_seadragon_store_faulted(store, log);
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = ngx_http_seadragon_store_renew(store, log);

    if (rc == MDB_SUCCESS) {
        if (read) {
            rc = read(store, data);
        }

        mdb_txn_reset(store->txn);
    }

    ngx_http_seadragon_store_jmp = NULL;

    if (rc == MDB_SUCCESS) {
        return NGX_OK;
    }

    if (rc == MDB_NOTFOUND) {
        return NGX_DECLINED;
    }

    return ngx_http_seadragon_store_read_failed(store, log, what, rc);
}


/*
 * For the admin API's listings: "each" is called with every entry of a
 * database, inside the guard, as every other read of the map.  "each"
 * copies what it reads of the map before it does anything else, so that
 * a fault leaves nothing of it half done.  NGX_OK: all listed; NGX_ERROR:
 * the store cannot be read, and is closed.
 */

ngx_int_t
ngx_http_seadragon_store_walk(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_dbi dbi, ngx_http_seadragon_store_each_pt each,
    void *data)
{
    int                    rc;
    MDB_val                k, v;
    sigjmp_buf             jmp;
    MDB_cursor            *c;
    MDB_cursor *volatile   cursor;

    if (ngx_http_seadragon_store_ready(store, log) != NGX_OK) {
        return NGX_ERROR;
    }

    cursor = NULL;

    if (sigsetjmp(jmp, 0)) {
        if (cursor) {
            mdb_cursor_close(cursor);
        }

        return ngx_http_seadragon_store_faulted(store, log);
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = ngx_http_seadragon_store_renew(store, log);

    if (rc == MDB_SUCCESS) {
        rc = mdb_cursor_open(store->txn, dbi, &c);

        if (rc == MDB_SUCCESS) {
            cursor = c;

            while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == MDB_SUCCESS)
            {
                each(&k, &v, data);
            }

            cursor = NULL;
            mdb_cursor_close(c);

            if (rc == MDB_NOTFOUND) {
                rc = MDB_SUCCESS;
            }
        }

        mdb_txn_reset(store->txn);
    }

    ngx_http_seadragon_store_jmp = NULL;

    if (rc != MDB_SUCCESS) {
        return ngx_http_seadragon_store_read_failed(store, log, "a listing",
                                                    rc);
    }

    return NGX_OK;
}


/*
 * A write transaction for the admin API, for the length of one change;
 * it waits only for a write of the tool, which is as short.  The worker
 * lets go of its read-only environment and opens a read-write one on a
 * checked file; the next read goes back to read-only.
 */

ngx_int_t
ngx_http_seadragon_store_write_begin(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_txn **txn)
{
    int         rc;
    ngx_int_t   n;
    sigjmp_buf  jmp;

    *txn = NULL;

    if (store->env && !store->writable) {
        ngx_http_seadragon_store_close(store);
    }

    if (store->env == NULL) {
        store->reason[0] = '\0';

        n = ngx_http_seadragon_store_env(store, log, 0);

        if (n == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "seadragon_store \"%V\" is read-only for nginx "
                          "workers", &store->path);
            return NGX_DECLINED;
        }

        if (n != NGX_OK) {
            ngx_http_seadragon_store_closed(store, log, 0);
            return NGX_ERROR;
        }

    } else if (ngx_http_seadragon_store_check(store, 0) != NGX_OK) {
        ngx_http_seadragon_store_closed(store, log, 0);
        return NGX_ERROR;
    }

    if (sigsetjmp(jmp, 0)) {
        if (*txn) {
            mdb_txn_abort(*txn);
            *txn = NULL;
        }

        return ngx_http_seadragon_store_faulted(store, log);
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = ngx_http_seadragon_store_txn_begin(store, log, 0, txn);

    if (rc == MDB_SUCCESS) {
        rc = seadragon_store_open_dbs(*txn, &store->dbs, 0);
    }

    if (rc == MDB_SUCCESS) {
        rc = seadragon_store_check_format(*txn, &store->dbs);
    }

    ngx_http_seadragon_store_jmp = NULL;

    if (rc != MDB_SUCCESS) {
        if (*txn) {
            mdb_txn_abort(*txn);
            *txn = NULL;
        }

        ngx_http_seadragon_store_fail(store, "a write transaction failed: %s",
                                      mdb_strerror(rc));
        ngx_http_seadragon_store_closed(store, log, 0);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The change and its commit, inside the guard: a change reads the tree's
 * pages in the map as a lookup does.  The transaction is committed when
 * the change returns MDB_SUCCESS, aborted otherwise; the code returned is
 * the change's or the commit's, MDB_PANIC after a fault (the store is
 * then closed).
 */

int
ngx_http_seadragon_store_write(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, MDB_txn *txn, ngx_http_seadragon_store_change_pt change,
    void *data)
{
    int         rc;
    sigjmp_buf  jmp;

    if (sigsetjmp(jmp, 0)) {
        mdb_txn_abort(txn);
        (void) ngx_http_seadragon_store_faulted(store, log);
        return MDB_PANIC;
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = change(txn, &store->dbs, data);

    if (rc == MDB_SUCCESS) {
        rc = mdb_txn_commit(txn);

    } else {
        mdb_txn_abort(txn);
    }

    ngx_http_seadragon_store_jmp = NULL;

    return rc;
}


/*
 * The usage database's entries of the days from "from" to "to", in key
 * order, inside the guard as every other read; "each" copies what it
 * reads of the map first.  A worker whose read-only environment was
 * opened before the gateway made the database opens it in the read
 * transaction itself (the handle ends with the transaction).  NGX_OK:
 * all read (also when the store has no usage yet); NGX_ERROR: the store
 * cannot be read, and is closed.
 */

ngx_int_t
ngx_http_seadragon_store_usage_read(ngx_http_seadragon_store_t *store,
    ngx_log_t *log, uint32_t from, uint32_t to,
    ngx_http_seadragon_store_usage_pt each, void *data)
{
    int                    rc;
    uint8_t                start[4];
    uint32_t               day;
    MDB_dbi                dbi;
    MDB_val                k, v;
    sigjmp_buf             jmp;
    MDB_cursor            *c;
    MDB_cursor *volatile   cursor;

    if (ngx_http_seadragon_store_ready(store, log) != NGX_OK) {
        return NGX_ERROR;
    }

    cursor = NULL;

    if (sigsetjmp(jmp, 0)) {
        if (cursor) {
            mdb_cursor_close(cursor);
        }

        return ngx_http_seadragon_store_faulted(store, log);
    }

    ngx_http_seadragon_store_jmp = &jmp;

    rc = ngx_http_seadragon_store_renew(store, log);

    if (rc == MDB_SUCCESS) {
        rc = seadragon_usage_dbi(store->txn, &store->dbs, &dbi);

        if (rc == MDB_SUCCESS) {
            rc = mdb_cursor_open(store->txn, dbi, &c);
        }

        if (rc == MDB_SUCCESS) {
            cursor = c;

            start[0] = (uint8_t) (from >> 24);
            start[1] = (uint8_t) (from >> 16);
            start[2] = (uint8_t) (from >> 8);
            start[3] = (uint8_t) from;

            k.mv_data = start;
            k.mv_size = sizeof(start);

            for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
                 rc == MDB_SUCCESS;
                 rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
            {
                if (k.mv_size < 4) {
                    continue;
                }

                day = ((uint32_t) ((uint8_t *) k.mv_data)[0] << 24)
                      | ((uint32_t) ((uint8_t *) k.mv_data)[1] << 16)
                      | ((uint32_t) ((uint8_t *) k.mv_data)[2] << 8)
                      | ((uint8_t *) k.mv_data)[3];

                if (day > to) {
                    break;
                }

                each(&k, &v, data);
            }

            cursor = NULL;
            mdb_cursor_close(c);
        }

        if (rc == MDB_NOTFOUND) {
            rc = MDB_SUCCESS;
        }

        mdb_txn_reset(store->txn);
    }

    ngx_http_seadragon_store_jmp = NULL;

    if (rc != MDB_SUCCESS) {
        return ngx_http_seadragon_store_read_failed(store, log,
                                                    "a usage listing", rc);
    }

    return NGX_OK;
}
