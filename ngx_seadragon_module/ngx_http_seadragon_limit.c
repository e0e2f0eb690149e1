
/*
 * Copyright (C) The Seadragon authors
 *
 * A key's limits on the request's path: requests per minute, tokens per
 * UTC day and requests parked or running at once, each stored with the
 * key (a key record of version 2) and kept in the zone, so that they hold
 * across workers and reloads.  The access phase checks them before the
 * body is read, so a refused request never queues; the gate's cleanup
 * gives back the request's place and adds the tokens its answer used.
 * A zone knows a key from its first request with limits on: it starts
 * with the tokens the store says the key used today, so a restart does
 * not give a key a new day.  The arithmetic is
 * ngx_http_seadragon_limit_window.c's.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_LIMIT_MESSAGE_LEN  256


static uint64_t ngx_http_seadragon_limit_seed(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, time_t now);
static ngx_http_seadragon_limit_t *ngx_http_seadragon_limit_new_locked(
    ngx_http_request_t *r, ngx_http_seadragon_ctx_t *ctx, uint64_t seed,
    time_t now);
static ngx_int_t ngx_http_seadragon_limit_refuse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_uint_t limit, uint64_t used,
    time_t retry_after);


/*
 * NGX_OK: the request may go on (and holds its place until limit_end());
 * otherwise the status of its refusal, already counted.
 */

ngx_int_t
ngx_http_seadragon_limit_check(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    time_t                            now, retry_after;
    uint64_t                          seed, used;
    ngx_uint_t                        limit, none;
    ngx_slab_pool_t                  *shpool;
    ngx_http_seadragon_zone_t        *zone;
    ngx_http_seadragon_limit_t       *l;
    ngx_http_seadragon_limits_t      *limits;
    ngx_http_seadragon_limit_hold_t  *hold;

    limits = &ctx->limits;

    if (ctx->key_name.len == 0
        || ctx->key_name.len >= SEADRAGON_KEY_NAME_LEN)
    {
        return NGX_OK;
    }

    none = (limits->rpm == 0 && limits->tokens_per_day == 0
            && limits->max_concurrent == 0);

    zone = ctx->zone;
    shpool = zone->shpool;

    /*
     * A key the zone knows still counts while it has no limits, so that
     * limits set again later the same day find what it used meanwhile;
     * one the zone does not know is started from the store then.
     */

    if (none && zone->sh->limits.root == NULL) {
        return NGX_OK;
    }

    now = ngx_time();
    seed = 0;
    retry_after = 0;

    ngx_shmtx_lock(&shpool->mutex);

    l = ngx_http_seadragon_limit_find(zone->sh, ctx->key_name.data,
                                      ctx->key_name.len);

    if (l == NULL && none) {
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_OK;
    }

    if (l == NULL) {

        /* the store is read outside the lock; another worker may win */

        ngx_shmtx_unlock(&shpool->mutex);

        seed = ngx_http_seadragon_limit_seed(r, ctx, now);

        ngx_shmtx_lock(&shpool->mutex);

        l = ngx_http_seadragon_limit_find(zone->sh, ctx->key_name.data,
                                          ctx->key_name.len);

        if (l == NULL) {
            l = ngx_http_seadragon_limit_new_locked(r, ctx, seed, now);
        }

        if (l == NULL) {
            ngx_shmtx_unlock(&shpool->mutex);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "seadragon zone \"%V\" is out of memory for "
                          "the limits of the key \"%V\": give the zone "
                          "more", &zone->name, &ctx->key_name);

            return ngx_http_seadragon_reject(r, ctx,
                               NGX_HTTP_SERVICE_UNAVAILABLE,
                               ngx_http_seadragon_counter(rejected_unavailable),
                                       "server busy, please try again.  "
                                       "the gateway has no memory left "
                                       "for this key's limits", 5);
        }
    }

    limit = ngx_http_seadragon_limit_take(&l->state, limits, now,
                                          &retry_after);
    used = ngx_http_seadragon_limit_tokens(&l->state, now);

    /*
     * The request's place is noted in this worker's record, so that it is
     * given back if the worker dies; without memory for the note it only
     * is not, which reaping would have done.
     */

    hold = NULL;

    if (limit == NGX_HTTP_SEADRAGON_LIMIT_NONE && zone->owner) {
        hold = ngx_slab_alloc_locked(shpool,
                                     sizeof(ngx_http_seadragon_limit_hold_t));
        if (hold) {
            hold->limit = l;
            ngx_queue_insert_tail(&zone->owner->limit_holds, &hold->link);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (limit != NGX_HTTP_SEADRAGON_LIMIT_NONE) {
        return ngx_http_seadragon_limit_refuse(r, ctx, limit, used,
                                               retry_after);
    }

    ctx->limit = l;
    ctx->limit_hold = hold;

    return NGX_OK;
}


/*
 * A key's entry in the zone, its lock held: not of the pages the queue
 * needs; usage rows the store has in full make room first.  NULL: no
 * memory for it.
 */

static ngx_http_seadragon_limit_t *
ngx_http_seadragon_limit_new_locked(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, uint64_t seed, time_t now)
{
    ngx_http_seadragon_zone_t       *zone;
    ngx_http_seadragon_limit_t      *l;
    ngx_http_seadragon_main_conf_t  *smcf;

    zone = ctx->zone;
    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (!ngx_http_seadragon_zone_spare(zone) && smcf->store
        && zone->sh->usage)
    {
        ngx_http_seadragon_usage_sweep_locked(zone, zone->sh->usage,
                                              (uint32_t) -1);
    }

    if (!ngx_http_seadragon_zone_spare(zone)) {
        return NULL;
    }

    l = ngx_slab_alloc_locked(zone->shpool,
                              sizeof(ngx_http_seadragon_limit_t));
    if (l == NULL) {
        return NULL;
    }

    ngx_http_seadragon_limit_insert(zone->sh, l, ctx->key_name.data,
                                    ctx->key_name.len, seed, now);

    return l;
}


/*
 * Every ending of a request that took its place: the place is given back
 * and the tokens of its answer (what passed, also of a broken or aborted
 * one) count for today.
 */

void
ngx_http_seadragon_limit_end(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    uint64_t                    tokens;
    ngx_http_seadragon_zone_t  *zone;

    if (ctx->limit == NULL) {
        return;
    }

    /* an estimate's count is settled at the end */

    ngx_http_seadragon_usage_finish(r, ctx);

    tokens = seadragon_usage_count_add(ctx->usage.prompt_tokens,
                                       ctx->usage.completion_tokens);
    zone = ctx->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_seadragon_limit_give(&ctx->limit->state, tokens, ngx_time());

    if (ctx->limit_hold) {
        ngx_queue_remove(&ctx->limit_hold->link);
        ngx_slab_free_locked(zone->shpool, ctx->limit_hold);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->limit = NULL;
    ctx->limit_hold = NULL;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon limit of the key \"%V\": %uL tokens",
                   &ctx->key_name, tokens);
}


/*
 * Under the lock, as a worker's record goes (it died, or it exits with
 * requests open): the places its requests held are given back.  What
 * they used is not known, and not counted.
 */

void
ngx_http_seadragon_limit_purge_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_owner_t *owner)
{
    ngx_queue_t                      *q;
    ngx_http_seadragon_limit_hold_t  *hold;

    if (owner->limit_holds.next == NULL) {
        return;     /* a record never set up for limits */
    }

    while (!ngx_queue_empty(&owner->limit_holds)) {
        q = ngx_queue_head(&owner->limit_holds);
        ngx_queue_remove(q);

        hold = ngx_queue_data(q, ngx_http_seadragon_limit_hold_t, link);

        if (hold->limit->state.running) {
            hold->limit->state.running--;
        }

        ngx_slab_free_locked(zone->shpool, hold);
    }
}


/* today's tokens of the key by the store, for a zone that did not know it */

static uint64_t
ngx_http_seadragon_limit_seed(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, time_t now)
{
    u_char                          *p;
    uint32_t                         day;
    uint64_t                         tokens;
    ngx_str_t                        principal;
    ngx_queue_t                     *q;
    ngx_http_seadragon_zone_t       *zone;
    seadragon_usage_record_t         sum;
    ngx_http_seadragon_usage_shm_t  *usage;
    ngx_http_seadragon_usage_row_t  *row;
    ngx_http_seadragon_main_conf_t  *smcf;
    u_char                           buf[SEADRAGON_USAGE_PRINCIPAL_LEN];

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (smcf->store == NULL) {
        return 0;
    }

    p = ngx_snprintf(buf, sizeof(buf), "key:%V", &ctx->key_name);

    principal.data = buf;
    principal.len = p - buf;
    day = (uint32_t) (now / 86400);
    tokens = 0;

    if (ngx_http_seadragon_store_usage_sum(smcf->store, r->connection->log,
                                           &principal, day, &sum)
        == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon could not read today's usage of the key "
                      "\"%V\": its tokens per day count from what this "
                      "zone has not written", &ctx->key_name);

    } else {
        tokens = seadragon_usage_count_add(sum.prompt_tokens,
                                           sum.completion_tokens);
    }

    /*
     * And what this zone has not written yet (the last second, or all a
     * store refusing writes holds): pending, or in a write.  As in GET
     * usage, a write that commits between the two reads may be counted
     * twice, for this once: the key is refused a little early, never let
     * past its day.
     */

    zone = ctx->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    usage = zone->sh->usage;

    if (usage) {
        for (q = ngx_queue_head(&usage->rows);
             q != ngx_queue_sentinel(&usage->rows);
             q = ngx_queue_next(q))
        {
            row = ngx_queue_data(q, ngx_http_seadragon_usage_row_t, link);

            if (row->day == day && row->plen == principal.len
                && ngx_memcmp(row->principal, buf, principal.len) == 0)
            {
                tokens = seadragon_usage_count_add(tokens,
                             seadragon_usage_count_add(
                                 seadragon_usage_count_add(
                                     row->pending.prompt_tokens,
                                     row->pending.completion_tokens),
                                 seadragon_usage_count_add(
                                     row->writing.prompt_tokens,
                                     row->writing.completion_tokens)));
            }
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return tokens;
}


/* 429 with the limit named, in either API's shape */

static ngx_int_t
ngx_http_seadragon_limit_refuse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_uint_t limit, uint64_t used,
    time_t retry_after)
{
    u_char  *msg, *last;
    char    *name;

    msg = ngx_pnalloc(r->pool, NGX_HTTP_SEADRAGON_LIMIT_MESSAGE_LEN);
    if (msg == NULL) {
        return ngx_http_seadragon_reject(r, ctx,
                                    NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    ngx_http_seadragon_counter(rejected_quota),
                                    NULL, 0);
    }

    last = msg + NGX_HTTP_SEADRAGON_LIMIT_MESSAGE_LEN;

    switch (limit) {

    case NGX_HTTP_SEADRAGON_LIMIT_RPM:
        name = "rpm";
        (void) ngx_slprintf(msg, last, "rate limit exceeded: this key may "
                            "make %uL requests a minute; try again in %T "
                            "seconds%Z", ctx->limits.rpm, retry_after);
        break;

    case NGX_HTTP_SEADRAGON_LIMIT_TOKENS:
        name = "tokens_per_day";
        (void) ngx_slprintf(msg, last, "rate limit exceeded: this key's "
                            "%uL tokens a day are used up (%uL today); "
                            "they renew at 00:00 UTC%Z",
                            ctx->limits.tokens_per_day, used);
        break;

    default: /* NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT */
        name = "max_concurrent";
        (void) ngx_slprintf(msg, last, "rate limit exceeded: this key "
                            "already has %uL requests waiting or running, "
                            "the most it may%Z", ctx->limits.max_concurrent);
    }

    msg[NGX_HTTP_SEADRAGON_LIMIT_MESSAGE_LEN - 1] = '\0';

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "seadragon key \"%V\" is over its limit %s, retry after "
                  "%T s", &ctx->key_name, name, retry_after);

    ctx->quota = 1;

    return ngx_http_seadragon_reject(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                     ngx_http_seadragon_counter(rejected_quota),
                                     (char *) msg, retry_after);
}
