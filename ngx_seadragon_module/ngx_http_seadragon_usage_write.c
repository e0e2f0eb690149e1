
/*
 * Copyright (C) The Seadragon authors
 *
 * Usage written: the zone's rows hold what is not in the store yet
 * ("pending"); each worker, once a second, takes the pending rows under
 * the lock and writes them in one write transaction, through the admin
 * API's write path (ngx_http_seadragon_store_write_begin() and _write(),
 * with their guard); what was taken is "writing" until the commit, and
 * goes back to "pending" when the write fails.  Nothing of it runs on a
 * request's path.  A worker that ends writes what is left (graceful or
 * fast shutdown); a worker that crashes loses what was pending then, the
 * last second or so.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_USAGE_TICK     1000
#define NGX_HTTP_SEADRAGON_USAGE_RETRY    8000   /* at most, after failures */
#define NGX_HTTP_SEADRAGON_USAGE_STALE    60     /* a writer gone, seconds */


typedef struct {
    ngx_http_seadragon_usage_batch_t  *items;
    ngx_uint_t                         n;
} ngx_http_seadragon_usage_write_t;


static ngx_uint_t ngx_http_seadragon_usage_flush(ngx_cycle_t *cycle,
    ngx_log_t *log);
static ngx_int_t ngx_http_seadragon_usage_flush_zone(
    ngx_http_seadragon_main_conf_t *smcf, ngx_http_seadragon_zone_t *zone,
    ngx_log_t *log);
static void ngx_http_seadragon_usage_take_locked(
    ngx_http_seadragon_usage_shm_t *usage,
    ngx_http_seadragon_usage_write_t *w, ngx_uint_t room);
static void ngx_http_seadragon_usage_settle_locked(
    ngx_http_seadragon_usage_shm_t *usage,
    ngx_http_seadragon_usage_write_t *w, int rc);
static int ngx_http_seadragon_usage_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data);
static void ngx_http_seadragon_usage_tick(ngx_event_t *ev);


static ngx_event_t  ngx_http_seadragon_usage_timer;
static ngx_msec_t   ngx_http_seadragon_usage_delay;


/* the writing: once a second in each worker, and at its end */

ngx_int_t
ngx_http_seadragon_usage_init_process(ngx_cycle_t *cycle)
{
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL || smcf->zones.nelts == 0
        || ngx_process == NGX_PROCESS_HELPER)
    {
        return NGX_OK;
    }

    ngx_http_seadragon_usage_timer.handler = ngx_http_seadragon_usage_tick;
    ngx_http_seadragon_usage_timer.log = cycle->log;
    ngx_http_seadragon_usage_timer.data = cycle;
    ngx_http_seadragon_usage_timer.cancelable = 1;

    ngx_http_seadragon_usage_delay = NGX_HTTP_SEADRAGON_USAGE_TICK;

    ngx_add_timer(&ngx_http_seadragon_usage_timer,
                  NGX_HTTP_SEADRAGON_USAGE_TICK);

    return NGX_OK;
}


void
ngx_http_seadragon_usage_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_seadragon_usage_timer.handler == NULL) {
        return;
    }

    if (ngx_http_seadragon_usage_timer.timer_set) {
        ngx_del_timer(&ngx_http_seadragon_usage_timer);
    }

    (void) ngx_http_seadragon_usage_flush(cycle, cycle->log);
}


static void
ngx_http_seadragon_usage_tick(ngx_event_t *ev)
{
    ngx_uint_t  failed;

    failed = ngx_http_seadragon_usage_flush(ev->data, ev->log);

    /* a store that refuses the write is tried less often, up to 8 s */

    if (failed) {
        ngx_http_seadragon_usage_delay = ngx_min(
            2 * ngx_http_seadragon_usage_delay,
            NGX_HTTP_SEADRAGON_USAGE_RETRY);

    } else {
        ngx_http_seadragon_usage_delay = NGX_HTTP_SEADRAGON_USAGE_TICK;
    }

    ngx_add_timer(ev, ngx_http_seadragon_usage_delay);
}


/* every zone's pending rows written; the number of zones that failed */

static ngx_uint_t
ngx_http_seadragon_usage_flush(ngx_cycle_t *cycle, ngx_log_t *log)
{
    uint32_t                         today;
    ngx_uint_t                       i, failed;
    ngx_http_seadragon_zone_t      **zones;
    ngx_http_seadragon_usage_shm_t  *usage;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    if (smcf == NULL) {
        return 0;
    }

    today = (uint32_t) (ngx_time() / 86400);
    zones = smcf->zones.elts;
    failed = 0;

    for (i = 0; i < smcf->zones.nelts; i++) {

        if (zones[i]->sh == NULL || zones[i]->sh->usage == NULL) {
            continue;
        }

        if (smcf->store
            && ngx_http_seadragon_usage_flush_zone(smcf, zones[i], log)
               != NGX_OK)
        {
            failed++;
        }

        /*
         * Rows of earlier days go once written; without a store, the zone
         * keeps today and yesterday.
         */

        ngx_shmtx_lock(&zones[i]->shpool->mutex);

        usage = zones[i]->sh->usage;
        ngx_http_seadragon_usage_sweep_locked(zones[i], usage,
                                              smcf->store ? today
                                                          : today - 1);

        ngx_shmtx_unlock(&zones[i]->shpool->mutex);
    }

    return failed;
}


static ngx_int_t
ngx_http_seadragon_usage_flush_zone(ngx_http_seadragon_main_conf_t *smcf,
    ngx_http_seadragon_zone_t *zone, ngx_log_t *log)
{
    int                                rc;
    MDB_txn                           *txn;
    ngx_int_t                          n;
    ngx_uint_t                         room;
    ngx_http_seadragon_usage_shm_t    *usage;
    ngx_http_seadragon_usage_write_t   w;

    usage = zone->sh->usage;

    room = usage->npending;    /* a hint: read again under the lock */

    if (room == 0) {
        return NGX_OK;
    }

    room += 64;

    w.items = ngx_alloc(room * sizeof(ngx_http_seadragon_usage_batch_t), log);
    if (w.items == NULL) {
        return NGX_ERROR;
    }

    w.n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_seadragon_usage_take_locked(usage, &w, room);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (w.n == 0) {
        ngx_free(w.items);
        return NGX_OK;
    }

    rc = MDB_PANIC;

    n = ngx_http_seadragon_store_write_begin(smcf->store, log, &txn);

    if (n == NGX_OK) {
        rc = ngx_http_seadragon_store_write(smcf->store, log, txn,
                                            ngx_http_seadragon_usage_change,
                                            &w);
        if (rc != MDB_SUCCESS && rc != MDB_PANIC) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "seadragon_store \"%V\": writing the usage of "
                          "zone \"%V\" failed: %s; it is kept and written "
                          "later", &smcf->store->path, &zone->name,
                          mdb_strerror(rc));
        }
    }

    /* written, or back to pending for the next try */

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_seadragon_usage_settle_locked(usage, &w, rc);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_free(w.items);

    return rc == MDB_SUCCESS ? NGX_OK : NGX_ERROR;
}


/* the pending rows taken for a write, at most room of them */

static void
ngx_http_seadragon_usage_take_locked(ngx_http_seadragon_usage_shm_t *usage,
    ngx_http_seadragon_usage_write_t *w, ngx_uint_t room)
{
    time_t                             now;
    ngx_queue_t                       *q;
    ngx_http_seadragon_usage_row_t    *row;
    ngx_http_seadragon_usage_batch_t  *b;

    now = ngx_time();

    for (q = ngx_queue_head(&usage->rows);
         q != ngx_queue_sentinel(&usage->rows) && w->n < room;
         q = ngx_queue_next(q))
    {
        row = ngx_queue_data(q, ngx_http_seadragon_usage_row_t, link);

        /* a write of a worker that is gone: what it took goes back */

        if (row->writer && row->writer != ngx_http_seadragon_worker_token
            && now - row->writing_since > NGX_HTTP_SEADRAGON_USAGE_STALE)
        {
            if (row->pending.requests == 0) {
                usage->npending++;
            }

            ngx_http_seadragon_usage_record_add(&row->pending, &row->writing);
            ngx_memzero(&row->writing, sizeof(seadragon_usage_record_t));
            row->writing.version = 1;
            row->writer = 0;
        }

        if (row->pending.requests == 0 || row->writer) {
            continue;
        }

        b = &w->items[w->n++];
        b->row = row;
        b->day = row->day;
        b->plen = row->plen;
        b->mlen = row->mlen;
        ngx_memcpy(b->principal, row->principal, row->plen);
        ngx_memcpy(b->model, row->model, row->mlen);
        b->delta = row->pending;

        row->writing = row->pending;
        row->writer = ngx_http_seadragon_worker_token;
        row->writing_since = now;
        ngx_memzero(&row->pending, sizeof(seadragon_usage_record_t));
        row->pending.version = 1;
        usage->npending--;
    }
}


/* written, or back to pending for the next try */

static void
ngx_http_seadragon_usage_settle_locked(ngx_http_seadragon_usage_shm_t *usage,
    ngx_http_seadragon_usage_write_t *w, int rc)
{
    ngx_uint_t                       i;
    ngx_http_seadragon_usage_row_t  *row;

    for (i = 0; i < w->n; i++) {
        row = w->items[i].row;

        if (row->writer != ngx_http_seadragon_worker_token) {
            continue;    /* taken back as stale: it is pending again */
        }

        if (rc != MDB_SUCCESS) {
            if (row->pending.requests == 0) {
                usage->npending++;
            }

            ngx_http_seadragon_usage_record_add(&row->pending, &row->writing);

        } else {
            usage->written++;
        }

        ngx_memzero(&row->writing, sizeof(seadragon_usage_record_t));
        row->writing.version = 1;
        row->writer = 0;
    }
}


/* inside the store's guard, in the write transaction */

static int
ngx_http_seadragon_usage_change(MDB_txn *txn, const seadragon_store_dbs_t *dbs,
    void *data)
{
    ngx_http_seadragon_usage_write_t  *w = data;

    int                                rc;
    ngx_uint_t                         i;
    seadragon_store_dbs_t             *d;
    ngx_http_seadragon_usage_batch_t  *b;

    /* the database is made by the first write; dbs is the store's own */

    d = (seadragon_store_dbs_t *) dbs;

    rc = seadragon_usage_open(txn, d);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    for (i = 0; i < w->n; i++) {
        b = &w->items[i];

        rc = seadragon_usage_add(txn, dbs, b->day, (char *) b->principal,
                                 b->plen, (char *) b->model, b->mlen,
                                 &b->delta);
        if (rc != MDB_SUCCESS) {
            return rc;
        }
    }

    return MDB_SUCCESS;
}
