
/*
 * Copyright (C) The Seadragon authors
 *
 * The gate: a request enters the zone's queue, waits parked in the access
 * phase, and resumes into the content phase (proxy_pass) when it is first
 * in line and a slot of the gate is free.  Its slot is given back by a
 * request-pool cleanup, so it is freed however the request ends.
 *
 * Only the worker that parked a request (its owner) may admit it.  A
 * worker admits its own requests at once when a slot frees in that worker.
 * When the next in line belongs to another worker, it wakes that worker
 * through a pipe: the master makes one per worker before it forks them,
 * so every worker of a generation holds the write ends of all of them.
 * The tick of the gate timer is the backstop (across generations during
 * a reload, say), and it reclaims what a worker that died left behind: it
 * runs every "tick" while this worker has requests parked or the zone
 * holds entries of other workers, and once a second otherwise, so that
 * reaping never waits for traffic.
 *
 * Beside this file: the gate's body filter, which gives the slot back at
 * the answer's last byte (ngx_http_seadragon_release.c); the workers'
 * records in the zone and the reaping of dead workers
 * (ngx_http_seadragon_gate_reap.c); the wake-up pipes
 * (ngx_http_seadragon_gate_wake.c); a request's tenant of fair shares
 * (ngx_http_seadragon_gate_fair.c); the statistics the gate keeps
 * (ngx_http_seadragon_counters.c).
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_ADMIT_BATCH  16
#define NGX_HTTP_SEADRAGON_FOREVER      86400000
#define NGX_HTTP_SEADRAGON_IDLE_TICK    1000


/* what a request asks for a place in line, and why it got none */

typedef struct {
    u_char                            name[NGX_HTTP_SEADRAGON_CLIENT_LEN];
    size_t                            name_len;   /* 0: clients not capped */
    ngx_uint_t                        cap;
    ngx_http_seadragon_client_t      *client;
    ngx_http_seadragon_fair_place_t   fair;       /* its tenant */
    unsigned                          draining:1;
    unsigned                          full:1;
    unsigned                          capped:1;
} ngx_http_seadragon_gate_place_t;


static ngx_uint_t ngx_http_seadragon_gate_dispatch_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_ctx_t **admitted,
    ngx_int_t *wake);
static ngx_http_seadragon_entry_t *ngx_http_seadragon_gate_reserve_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_gate_place_t *place);
static ngx_int_t ngx_http_seadragon_gate_refuse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_gate_place_t *place);
static void ngx_http_seadragon_gate_queue_locked(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_entry_t *entry,
    ngx_http_seadragon_gate_place_t *place);

static ngx_int_t ngx_http_seadragon_gate_park(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static void ngx_http_seadragon_gate_dispatch(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *self);
static void ngx_http_seadragon_gate_admit(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_ctx_t *self);
static void ngx_http_seadragon_gate_wake_handler(ngx_event_t *ev);
static void ngx_http_seadragon_gate_timeout(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx);
static void ngx_http_seadragon_gate_cleanup(void *data);
static void ngx_http_seadragon_gate_tick_handler(ngx_event_t *ev);
static void ngx_http_seadragon_gate_tick_arm(ngx_msec_t interval);


uint64_t             ngx_http_seadragon_worker_token;
uint64_t             ngx_http_seadragon_worker_started;  /* 0: no /proc */

static ngx_event_t   ngx_http_seadragon_tick;
static ngx_array_t  *ngx_http_seadragon_zones;
static ngx_msec_t    ngx_http_seadragon_tick_interval;
static ngx_msec_t    ngx_http_seadragon_tick_armed;      /* its interval */


/*
 * From here on the request is the zone's to account for: it is received,
 * and the cleanup below records how it ended and gives back what it held.
 */

ngx_int_t
ngx_http_seadragon_gate_track(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_uint_t                  slot;
    ngx_pool_cleanup_t         *cln;
    ngx_http_seadragon_zone_t  *zone;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_seadragon_gate_cleanup;
    cln->data = ctx;

    ngx_http_seadragon_counters_add(ctx,
                                    ngx_http_seadragon_counter(received));

    /*
     * The worker's record in the zone keeps, per source, the requests
     * received and not yet counted otherwise: should the worker die,
     * whoever reaps it counts them as aborted.reaped, and received =
     * served + errors + rejected + aborted still holds.  Only this worker
     * writes its record, so no lock is taken for it.
     */

    zone = ctx->zone;
    slot = zone->slot[ctx->source];

    if (zone->owner == NULL) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        (void) ngx_http_seadragon_gate_register_locked(zone);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    if (zone->owner) {
        zone->owner->tracked[slot]++;
        ctx->tracked = 1;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_seadragon_gate_enter(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_int_t                         wake;
    ngx_uint_t                        i, n, reaped, admitted_self, foreign;
    ngx_slab_pool_t                  *shpool;
    ngx_http_seadragon_zone_t        *zone;
    ngx_http_seadragon_entry_t       *entry;
    ngx_http_seadragon_gate_place_t   place;
    ngx_http_seadragon_ctx_t         *admitted[NGX_HTTP_SEADRAGON_ADMIT_BATCH];

    zone = ctx->zone;
    shpool = zone->shpool;

    /* a client is its key or its user, if valid, else its address */

    place.cap = zone->client_cap[ctx->source];
    place.name_len = 0;

    if (zone->client_caps) {
        place.name_len = (ctx->key_name.len
                          ? ngx_snprintf(place.name, sizeof(place.name),
                                         "key:%V", &ctx->key_name)
                          : ctx->user_name.len
                          ? ngx_snprintf(place.name, sizeof(place.name),
                                         "user:%V", &ctx->user_name)
                          : ngx_snprintf(place.name, sizeof(place.name),
                                         "addr:%V",
                                         &r->connection->addr_text))
                         - place.name;
    }

    if (ngx_http_seadragon_fair_prepare(r, ctx, &place.fair) != NGX_OK) {
        return ngx_http_seadragon_reject(r, ctx,
                                       NGX_HTTP_INTERNAL_SERVER_ERROR,
                               ngx_http_seadragon_counter(rejected_unavailable),
                                       NULL, 0);
    }

    reaped = 0;

    for ( ;; ) {
        ngx_shmtx_lock(&shpool->mutex);

        entry = ngx_http_seadragon_gate_reserve_locked(zone, ctx, &place);

        if (entry) {
            break;      /* with the lock held */
        }

        ngx_shmtx_unlock(&shpool->mutex);

        /*
         * Before refusing a place as taken, whatever a dead worker left is
         * reaped: its entries must never keep the line full.  Checking
         * costs system calls, so at most once a tick.
         */

        if ((place.full && !place.draining) || place.capped) {

            if (!reaped
                && (ngx_msec_int_t) (ngx_current_msec - zone->reaped)
                   >= (ngx_msec_int_t) zone->tick)
            {
                reaped = 1;
                zone->reaped = ngx_current_msec;

                if (ngx_http_seadragon_gate_reap(zone, &foreign)) {
                    ngx_http_seadragon_gate_dispatch(zone, NULL);
                    continue;
                }
            }
        }

        return ngx_http_seadragon_gate_refuse(r, ctx, &place);
    }

    ngx_http_seadragon_gate_queue_locked(r, ctx, entry, &place);

    n = ngx_http_seadragon_gate_dispatch_locked(zone, admitted, &wake);

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_http_seadragon_gate_wake_worker(wake);

    admitted_self = 0;

    for (i = 0; i < n; i++) {
        if (admitted[i] == ctx) {
            admitted_self = 1;
        }

        ngx_http_seadragon_gate_admit(admitted[i], ctx);
    }

    if (n == NGX_HTTP_SEADRAGON_ADMIT_BATCH) {
        ngx_http_seadragon_gate_dispatch(zone, ctx);
        admitted_self = (ctx->state == NGX_HTTP_SEADRAGON_ADMITTED);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon queued #%uL at position %ui, %s, model \"%V\"",
                   ctx->id, ctx->position,
                   admitted_self ? "admitted" : "parked", &ctx->model);

    if (admitted_self) {
        return NGX_DECLINED;
    }

    return ngx_http_seadragon_gate_park(r, ctx);
}


/*
 * Under the lock: a queue entry (and the client's record, when clients
 * are capped) for a request that may take a place in line, or NULL and
 * why not in "place": the gate draining, the line full, the client at
 * its cap, or (none of these) no shared memory.
 */

static ngx_http_seadragon_entry_t *
ngx_http_seadragon_gate_reserve_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_gate_place_t *place)
{
    ngx_slab_pool_t                  *shpool;
    ngx_http_seadragon_entry_t       *entry;
    ngx_http_seadragon_client_t      *client;
    ngx_http_seadragon_shctx_t       *sh;
    ngx_http_seadragon_shm_source_t  *src;

    sh = zone->sh;
    shpool = zone->shpool;
    src = &sh->sources[zone->slot[ctx->source]];

    place->full = 0;
    place->capped = 0;
    place->client = NULL;
    entry = NULL;
    client = NULL;

    if (zone->owner == NULL) {
        (void) ngx_http_seadragon_gate_register_locked(zone);
    }

    place->draining = (sh->gate_state == NGX_HTTP_SEADRAGON_GATE_DRAINING);

    if (place->draining
        || sh->nwaiting >= sh->max_queued
        || (src->max_queued && src->nwaiting >= src->max_queued))
    {
        place->full = 1;

    } else if (zone->client_caps) {
        client = ngx_http_seadragon_queue_client_find(sh, place->name,
                                                      place->name_len);
        place->capped = (place->cap && client
                         && client->parked >= place->cap);
    }

    if (!place->full && !place->capped && zone->owner) {
        entry = ngx_slab_alloc_locked(shpool,
                                      sizeof(ngx_http_seadragon_entry_t));

        if (entry && place->fair.len) {
            if (ngx_http_seadragon_fair_tenant_locked(zone, ctx, &place->fair)
                != NGX_OK)
            {
                ngx_slab_free_locked(shpool, entry);
                entry = NULL;
            }
        }

        if (entry && zone->client_caps && client == NULL) {
            client = ngx_slab_alloc_locked(shpool,
                                          sizeof(ngx_http_seadragon_client_t));
            if (client == NULL) {
                ngx_http_seadragon_fair_drop_locked(zone, &place->fair);
                ngx_slab_free_locked(shpool, entry);
                entry = NULL;

            } else {
                ngx_http_seadragon_queue_client_insert(sh, client,
                                                       place->name,
                                                       place->name_len);
            }
        }
    }

    place->client = client;

    return entry;
}


/* a request that takes no place in line: counted, logged and answered */

static ngx_int_t
ngx_http_seadragon_gate_refuse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_gate_place_t *place)
{
    u_char                           *msg;
    ngx_connection_t                 *c;
    ngx_http_seadragon_zone_t        *zone;
    ngx_http_seadragon_shm_source_t  *src;

    c = r->connection;
    zone = ctx->zone;
    src = &zone->sh->sources[zone->slot[ctx->source]];

    if (place->draining) {
        return ngx_http_seadragon_reject(r, ctx,
                                       NGX_HTTP_SERVICE_UNAVAILABLE,
                                 ngx_http_seadragon_counter(rejected_draining),
                                       "server busy, please try again.  "
                                       "the gateway is draining for "
                                       "maintenance", 30);
    }

    if (place->full) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "seadragon queue of zone \"%V\" is full for "
                      "source \"%*s\"", &zone->name, src->name_len,
                      src->name);

        return ngx_http_seadragon_reject(r, ctx,
                                       NGX_HTTP_SERVICE_UNAVAILABLE,
                               ngx_http_seadragon_counter(rejected_queue_full),
                                       NGX_HTTP_SEADRAGON_QUEUE_FULL, 5);
    }

    if (place->capped) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "seadragon client \"%*s\" already has %ui requests "
                      "waiting in zone \"%V\", its most "
                      "(max_queued_per_client)",
                      place->name_len, place->name, place->cap, &zone->name);

        msg = ngx_pnalloc(r->pool, 128);
        if (msg == NULL) {
            return ngx_http_seadragon_reject(r, ctx,
                               NGX_HTTP_INTERNAL_SERVER_ERROR,
                               ngx_http_seadragon_counter(rejected_client_cap),
                               NULL, 0);
        }

        (void) ngx_snprintf(msg, 128, "too many requests: this client "
                            "already has %ui waiting in line, the most "
                            "it may%Z", place->cap);

        return ngx_http_seadragon_reject(r, ctx,
                                       NGX_HTTP_TOO_MANY_REQUESTS,
                               ngx_http_seadragon_counter(rejected_client_cap),
                                       (char *) msg, 5);
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "seadragon could not allocate a queue entry in zone "
                  "\"%V\"", &zone->name);

    return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                               ngx_http_seadragon_counter(rejected_unavailable),
                                   "server busy, please try again.  "
                                   "the gateway's queue is out of memory",
                                   5);
}


/* under the lock: the entry filled in and pushed, the request parked */

static void
ngx_http_seadragon_gate_queue_locked(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_entry_t *entry,
    ngx_http_seadragon_gate_place_t *place)
{
    size_t                       model_len, addr_len;
    ngx_connection_t            *c;
    ngx_http_seadragon_zone_t   *zone;
    ngx_http_seadragon_shctx_t  *sh;

    c = r->connection;
    zone = ctx->zone;
    sh = zone->sh;

    addr_len = ngx_min(c->addr_text.len, NGX_HTTP_SEADRAGON_ADDR_LEN);

    ngx_memzero(entry, sizeof(ngx_http_seadragon_entry_t));

    entry->owner = zone->owner;
    entry->client = place->client;
    entry->estimate = place->fair.estimate;
    entry->owner_pid = ngx_pid;
    entry->owner_token = ngx_http_seadragon_worker_token;
    entry->owner_generation = ngx_http_seadragon_generation;
    entry->owner_worker = ngx_worker;
    entry->data = ctx;
    entry->enqueued = ngx_current_msec;
    entry->enqueued_sec = ngx_time();
    entry->source = zone->slot[ctx->source];
    model_len = ngx_http_seadragon_model_canonical(entry->model,
                                                   NGX_HTTP_SEADRAGON_MODEL_LEN,
                                                   ctx->model.data,
                                                   ctx->model.len);
    entry->model_len = model_len;
    entry->model_slot = ngx_http_seadragon_queue_model_slot(sh, entry->model,
                                                            model_len);
    ngx_memcpy(entry->addr, c->addr_text.data, addr_len);
    entry->addr_len = addr_len;
    entry->principal_len = ngx_http_seadragon_login_principal(ctx,
                                                      entry->principal,
                                                      sizeof(entry->principal));

    ngx_http_seadragon_fair_enter_locked(zone, ctx, &place->fair, entry);

    ngx_http_seadragon_queue_push(sh, entry);

    ctx->entry = entry;
    ctx->id = entry->id;
    ctx->position = ngx_http_seadragon_queue_position(sh, entry,
                                                      ngx_current_msec);
    ctx->enqueued = entry->enqueued;
    ctx->queued = 1;
    ctx->state = NGX_HTTP_SEADRAGON_PARKED;
}


/*
 * Parked: the client's close is noticed through the read event, as
 * limit_req does; the max-wait timer is not cancelable, so a worker
 * shutting down on reload keeps serving what it has parked.
 */

static ngx_int_t
ngx_http_seadragon_gate_park(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_msec_t                  max_wait;
    ngx_connection_t           *c;
    ngx_http_seadragon_zone_t  *zone;

    c = r->connection;
    zone = ctx->zone;

    zone->nparked++;

    max_wait = zone->max_wait ? zone->max_wait : NGX_HTTP_SEADRAGON_FOREVER;

    ctx->wake.handler = ngx_http_seadragon_gate_wake_handler;
    ctx->wake.data = ctx;
    ctx->wake.log = c->log;

    ngx_add_timer(&ctx->wake, max_wait);

    ngx_http_seadragon_gate_tick_arm(ngx_http_seadragon_tick_interval);

    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);

    } else if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


/*
 * Admits what is first in line while slots are free, stopping at an entry
 * of another worker: order is never broken to fill a slot sooner.  That
 * worker is then to be woken ("wake", else -1) once the lock is released.
 */

static ngx_uint_t
ngx_http_seadragon_gate_dispatch_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t **admitted, ngx_int_t *wake)
{
    ngx_uint_t                   n;
    ngx_http_seadragon_entry_t  *e;
    ngx_http_seadragon_shctx_t  *sh;

    sh = zone->sh;
    n = 0;
    *wake = -1;

    /* paused or draining: what runs finishes, nothing new starts */

    if (sh->gate_state != NGX_HTTP_SEADRAGON_GATE_OPEN) {
        return 0;
    }

    while (sh->nrunning < sh->capacity && n < NGX_HTTP_SEADRAGON_ADMIT_BATCH) {

        e = ngx_http_seadragon_queue_head(sh, ngx_current_msec);

        if (e == NULL) {
            break;
        }

        if (e->owner_pid != ngx_pid
            || e->owner_token != ngx_http_seadragon_worker_token)
        {
            if (e->owner_generation == ngx_http_seadragon_generation
                && ngx_http_seadragon_gate_wakeable(e->owner_worker))
            {
                *wake = e->owner_worker;
            }

            break;
        }

        ngx_http_seadragon_queue_grant(sh, e, ngx_current_msec);
        ngx_http_seadragon_resident_dispatch(sh, e->model, e->model_len,
                                             ngx_current_msec, ngx_time());

        ngx_http_seadragon_counters_wait(&sh->sources[e->source].counters,
                                         ngx_current_msec - e->enqueued);

        admitted[n++] = e->data;
    }

    ngx_http_seadragon_history_sample(sh, ngx_time(), ngx_current_msec);

    ngx_http_seadragon_gate_free_clients_locked(zone);

    return n;
}


static void
ngx_http_seadragon_gate_dispatch(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *self)
{
    ngx_int_t                  wake;
    ngx_uint_t                 i, n;
    ngx_http_seadragon_ctx_t  *admitted[NGX_HTTP_SEADRAGON_ADMIT_BATCH];

    do {
        ngx_shmtx_lock(&zone->shpool->mutex);
        n = ngx_http_seadragon_gate_dispatch_locked(zone, admitted, &wake);
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_seadragon_gate_wake_worker(wake);

        for (i = 0; i < n; i++) {
            ngx_http_seadragon_gate_admit(admitted[i], self);
        }

    } while (n == NGX_HTTP_SEADRAGON_ADMIT_BATCH);
}


/*
 * The entry now holds a slot.  A request other than the one running now
 * ("self") is resumed through a posted event, never from inside another
 * request's handlers or cleanups.
 */

static void
ngx_http_seadragon_gate_admit(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_ctx_t *self)
{
    ctx->state = NGX_HTTP_SEADRAGON_ADMITTED;
    ctx->holds_slot = 1;
    ctx->wait = ngx_current_msec - ctx->enqueued;

    if (ctx == self) {
        return;
    }

    ctx->zone->nparked--;

    if (ctx->wake.timer_set) {
        ngx_del_timer(&ctx->wake);
    }

    ngx_post_event(&ctx->wake, &ngx_posted_events);
}


static void
ngx_http_seadragon_gate_wake_handler(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (ctx->state == NGX_HTTP_SEADRAGON_ADMITTED) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "seadragon admitted #%uL after %Mms",
                       ctx->id, ctx->wait);

        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;

        ngx_http_core_run_phases(r);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (!ev->timedout) {
        return;
    }

    ev->timedout = 0;

    if (ctx->zone->max_wait == 0) {
        ngx_add_timer(ev, NGX_HTTP_SEADRAGON_FOREVER);
        return;
    }

    ngx_http_seadragon_gate_timeout(r, ctx);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_seadragon_gate_timeout(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_http_seadragon_zone_t  *zone;

    zone = ctx->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_seadragon_queue_remove(zone->sh, ctx->entry);
    ngx_slab_free_locked(zone->shpool, ctx->entry);
    ngx_http_seadragon_gate_free_clients_locked(zone);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->entry = NULL;
    ctx->wait = ngx_current_msec - ctx->enqueued;
    zone->nparked--;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "seadragon request #%uL waited %Mms in zone \"%V\", "
                  "longer than max_wait", ctx->id, ctx->wait, &zone->name);

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_finalize_request(r,
        ngx_http_seadragon_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                            ngx_http_seadragon_counter(rejected_wait_timeout),
                                "server busy, please try again.  "
                                "timed out waiting in the queue",
                                (zone->max_wait + 999) / 1000));

    /* the entry left the line: what was behind it may move up */

    ngx_http_seadragon_gate_dispatch(zone, NULL);
}


/*
 * Runs exactly once, however the request ends: it takes the entry out of
 * the line, or gives its slot back and lets the next request in.
 */

static void
ngx_http_seadragon_gate_cleanup(void *data)
{
    ngx_http_seadragon_ctx_t  *ctx = data;

    size_t                       counter;
    ngx_http_request_t          *r;
    ngx_http_seadragon_zone_t   *zone;
    ngx_http_seadragon_entry_t  *entry;

    if (ctx->released) {
        return;
    }

    ctx->released = 1;

    r = ctx->request;
    zone = ctx->zone;
    entry = ctx->entry;

    if (ctx->wake.timer_set) {
        ngx_del_timer(&ctx->wake);
    }

    if (ctx->wake.posted) {
        ngx_delete_posted_event(&ctx->wake);
    }

    /* how it ended; a rejection was counted when it was decided */

    switch (ctx->state) {

    case NGX_HTTP_SEADRAGON_REJECTED:
        counter = 0;
        break;

    case NGX_HTTP_SEADRAGON_ADMITTED:
    case NGX_HTTP_SEADRAGON_BYPASSED:

        /* a client that timed out, or stalled, aborted too */

        if (r->connection->error
            || r->connection->timedout
            || ctx->stalled
            || r->headers_out.status == NGX_HTTP_CLIENT_CLOSED_REQUEST
            || r->err_status == NGX_HTTP_CLIENT_CLOSED_REQUEST)
        {
            counter = ngx_http_seadragon_counter(aborted_streaming);

        } else if (r->headers_out.status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                   || r->headers_out.status == 0
                   || ctx->stream_broken)
        {
            counter = ngx_http_seadragon_counter(upstream_errors);

        } else {
            counter = ngx_http_seadragon_counter(served);
        }

        break;

    default:    /* gone while its body arrived, or while parked */
        counter = ngx_http_seadragon_counter(aborted_parked);
    }

    if (counter) {
        ngx_http_seadragon_counters_add(ctx, counter);
    }

    if (ctx->state == NGX_HTTP_SEADRAGON_ADMITTED
        || ctx->state == NGX_HTTP_SEADRAGON_BYPASSED)
    {
        ngx_http_seadragon_usage_end(r, ctx);
    }

    /* the key's place given back, its answer's tokens counted */

    ngx_http_seadragon_limit_end(r, ctx);

    if (entry == NULL) {
        return;
    }

    if (ctx->state == NGX_HTTP_SEADRAGON_PARKED) {
        zone->nparked--;
    }

    ngx_http_seadragon_gate_release(ctx);
}


/*
 * Takes the request's entry out of the zone: out of the line, or out of
 * the gate, letting the next one in.  The cleanup above does it however
 * the request ends; the body filter does it as soon as the last byte of
 * the answer has passed, since the model is free from then on, while the
 * request itself may live on for seconds (a lingering close, a slow
 * client reading the end of the answer).
 */

void
ngx_http_seadragon_gate_release(ngx_http_seadragon_ctx_t *ctx)
{
    ngx_uint_t                   answered;
    ngx_http_seadragon_zone_t   *zone;
    ngx_http_seadragon_entry_t  *entry;

    zone = ctx->zone;
    entry = ctx->entry;

    if (entry == NULL) {
        return;
    }

    ctx->entry = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "seadragon release #%uL, %s", ctx->id,
                   ctx->holds_slot ? "slot freed" : "left the line");

    /* what the answer said of its model's load (usage_start() read it) */

    answered = (ctx->holds_slot && ctx->usage_parser != NULL
                && ctx->request != NULL);

    if (answered) {
        ngx_http_seadragon_usage_finish(ctx->request, ctx);
    }

    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_seadragon_fair_leave_locked(zone, ctx, entry);

    if (answered) {
        ngx_http_seadragon_resident_answer(zone->sh, ctx->server,
                                           ctx->server_len,
                                           entry->model, entry->model_len,
                                           ctx->usage.load_ms,
                                           ngx_current_msec, ngx_time());
    }

    ngx_http_seadragon_queue_remove(zone->sh, entry);
    ngx_slab_free_locked(zone->shpool, entry);
    ngx_http_seadragon_gate_free_clients_locked(zone);
    ngx_http_seadragon_fair_trim_locked(zone);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->holds_slot = 0;

    ngx_http_seadragon_gate_dispatch(zone, NULL);
}


static void
ngx_http_seadragon_gate_tick_handler(ngx_event_t *ev)
{
    ngx_uint_t                   i, parked, foreign, n;
    ngx_http_seadragon_zone_t  **zones;

    zones = ngx_http_seadragon_zones->elts;
    parked = 0;
    foreign = 0;

    for (i = 0; i < ngx_http_seadragon_zones->nelts; i++) {

        if (zones[i]->sh == NULL) {
            continue;
        }

        if (ngx_http_seadragon_gate_reap(zones[i], &n) || zones[i]->nparked) {
            ngx_http_seadragon_gate_dispatch(zones[i], NULL);
        }

        /* the admin page's chart: a sample a second, whatever happens */

        ngx_shmtx_lock(&zones[i]->shpool->mutex);
        ngx_http_seadragon_history_sample(zones[i]->sh, ngx_time(),
                                          ngx_current_msec);
        ngx_shmtx_unlock(&zones[i]->shpool->mutex);

        foreign += n;
        parked += zones[i]->nparked;
    }

    ngx_http_seadragon_tick_armed = 0;

    ngx_http_seadragon_gate_tick_arm((parked || foreign)
                                     ? ngx_http_seadragon_tick_interval
                                     : NGX_HTTP_SEADRAGON_IDLE_TICK);
}


/* (re)arms the tick, never later than it is armed for already */

static void
ngx_http_seadragon_gate_tick_arm(ngx_msec_t interval)
{
    if (ngx_http_seadragon_zones == NULL) {
        return;
    }

    if (ngx_http_seadragon_tick.timer_set
        && ngx_http_seadragon_tick_armed
        && ngx_http_seadragon_tick_armed <= interval)
    {
        return;
    }

    ngx_http_seadragon_tick_armed = interval;
    ngx_add_timer(&ngx_http_seadragon_tick, interval);
}


/* clients whose last request left the line, under the zone's lock */

void
ngx_http_seadragon_gate_free_clients_locked(ngx_http_seadragon_zone_t *zone)
{
    ngx_queue_t                  *q;
    ngx_http_seadragon_client_t  *client;

    while (!ngx_queue_empty(&zone->sh->clients_free)) {
        q = ngx_queue_head(&zone->sh->clients_free);
        ngx_queue_remove(q);

        client = ngx_queue_data(q, ngx_http_seadragon_client_t, link);
        ngx_slab_free_locked(zone->shpool, client);
    }
}


/* a byte in this worker's wake-up pipe: another worker freed a slot */

void
ngx_http_seadragon_gate_woken(void)
{
    ngx_uint_t                   i;
    ngx_http_seadragon_zone_t  **zones;

    if (ngx_http_seadragon_zones == NULL) {
        return;
    }

    zones = ngx_http_seadragon_zones->elts;

    for (i = 0; i < ngx_http_seadragon_zones->nelts; i++) {
        if (zones[i]->nparked) {
            ngx_http_seadragon_gate_dispatch(zones[i], NULL);
        }
    }
}


/*
 * Pausing and draining take effect in every worker at once: admission
 * reads the state under the zone's lock.  Resuming admits in this worker
 * right away; other workers admit on their next tick.
 */

void
ngx_http_seadragon_gate_set_state(ngx_http_seadragon_zone_t *zone,
    ngx_uint_t state)
{
    ngx_shmtx_lock(&zone->shpool->mutex);
    zone->sh->gate_state = state;
    zone->sh->gate_changed = ngx_time();
    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (state == NGX_HTTP_SEADRAGON_GATE_OPEN) {
        ngx_http_seadragon_gate_dispatch(zone, NULL);
    }
}


ngx_int_t
ngx_http_seadragon_gate_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i, dead, foreign, reaped;
    ngx_http_seadragon_zone_t      **zones;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_seadragon_module);

    /* the cache manager and loader never hold a request */

    if (smcf == NULL || smcf->zones.nelts == 0
        || ngx_process == NGX_PROCESS_HELPER)
    {
        return NGX_OK;
    }

    ngx_http_seadragon_worker_token = ((uint64_t) ngx_pid << 32)
                                      ^ (uint64_t) ngx_random()
                                      ^ (uint64_t) ngx_current_msec;

    /* /proc is trusted only if it knows this process by its pid */

    ngx_http_seadragon_worker_started =
        ngx_http_seadragon_gate_process_start(0, &dead);

    ngx_http_seadragon_zones = &smcf->zones;
    ngx_http_seadragon_tick_interval = smcf->min_tick;

    ngx_http_seadragon_tick.handler = ngx_http_seadragon_gate_tick_handler;
    ngx_http_seadragon_tick.log = cycle->log;
    ngx_http_seadragon_tick.data = smcf;
    ngx_http_seadragon_tick.cancelable = 1;

    ngx_http_seadragon_gate_wake_watch(cycle);

    /*
     * Before this worker refuses anything as full: its record in each
     * zone, and every worker that is gone reaped, an earlier process that
     * had our pid included.
     */

    zones = smcf->zones.elts;
    foreign = 0;

    for (i = 0; i < smcf->zones.nelts; i++) {

        ngx_shmtx_lock(&zones[i]->shpool->mutex);

        if (ngx_http_seadragon_gate_register_locked(zones[i]) == NULL) {
            ngx_shmtx_unlock(&zones[i]->shpool->mutex);
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "seadragon zone \"%V\" is out of memory for this "
                          "worker's record; it will try again",
                          &zones[i]->name);

        } else {
            ngx_shmtx_unlock(&zones[i]->shpool->mutex);
        }

        reaped = ngx_http_seadragon_gate_reap(zones[i], &dead);
        foreign += dead;

        if (reaped) {
            ngx_http_seadragon_gate_dispatch(zones[i], NULL);
        }
    }

    ngx_http_seadragon_gate_tick_arm(foreign
                                     ? ngx_http_seadragon_tick_interval
                                     : NGX_HTTP_SEADRAGON_IDLE_TICK);

    return NGX_OK;
}


void
ngx_http_seadragon_gate_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_seadragon_zone_t **zones;

    if (ngx_http_seadragon_zones == NULL) {
        return;
    }

    if (ngx_http_seadragon_tick.timer_set) {
        ngx_del_timer(&ngx_http_seadragon_tick);
    }

    /*
     * Requests still open when the process ends never reach a cleanup:
     * their entries go, and they are counted as aborted.
     */

    zones = ngx_http_seadragon_zones->elts;

    for (i = 0; i < ngx_http_seadragon_zones->nelts; i++) {
        while (ngx_http_seadragon_gate_purge(zones[i], ngx_pid,
                                             ngx_http_seadragon_worker_token))
        {
            /* void */
        }
    }
}

