
/*
 * Copyright (C) The Seadragon authors
 *
 * The gate's side of fair shares (seadragon_zone fair=): the tenant a
 * request waits as, its record in the zone, what its answer cost.  The
 * order itself is the queue's (ngx_http_seadragon_queue_fair.c).
 *
 * A request with a valid key is its key's tenant ("key:NAME"), one with
 * a valid login's token its user's ("user:NAME"); any other is the value
 * of the zone's tenant= ("addr:VALUE", the client's address by default),
 * any byte but printable ASCII written \xHH.  A value too long for a
 * tenant's name keeps its beginning and ends with a hash of the whole, so
 * that two long values stay two tenants.  A tenant's record lives while
 * it has requests waiting or running, and afterwards among the idle
 * ones, which keep their counters (a tenant cannot shed what it was
 * served by leaving for a moment) until NGX_HTTP_SEADRAGON_TENANTS_IDLE
 * of them are kept, or the zone runs short of memory.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_TENANT_HASH  (sizeof("~01234567") - 1)


static u_char *ngx_http_seadragon_fair_name(u_char *p, u_char *last,
    ngx_str_t *value);
static u_char *ngx_http_seadragon_fair_text(u_char *p, u_char *last,
    ngx_str_t *value, size_t *used);
static uint64_t ngx_http_seadragon_fair_estimate(ngx_http_request_t *r);


ngx_int_t
ngx_http_seadragon_fair_prepare(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_fair_place_t *place)
{
    u_char                     *p, *last;
    ngx_str_t                   value;
    ngx_http_seadragon_zone_t  *zone;

    zone = ctx->zone;

    place->len = 0;
    place->weight = 1;
    place->estimate = 0;
    place->tenant = NULL;
    place->created = 0;

    if (zone->fair == NGX_HTTP_SEADRAGON_FAIR_OFF) {
        return NGX_OK;
    }

    place->weight = (ngx_uint_t) ngx_min(ngx_max(ctx->limits.weight, 1),
                                         NGX_HTTP_SEADRAGON_WEIGHT_MAX);
    place->estimate = ngx_http_seadragon_fair_estimate(r);

    p = place->name;
    last = place->name + sizeof(place->name);

    if (ctx->key_name.len) {
        value = ctx->key_name;
        p = ngx_cpymem(p, "key:", sizeof("key:") - 1);

    } else if (ctx->user_name.len) {
        value = ctx->user_name;
        p = ngx_cpymem(p, "user:", sizeof("user:") - 1);

    } else {
        if (zone->tenant == NULL) {
            value = r->connection->addr_text;

        } else if (ngx_http_complex_value(r, zone->tenant, &value)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, "addr:", sizeof("addr:") - 1);
    }

    p = ngx_http_seadragon_fair_name(p, last, &value);

    place->len = p - place->name;

    return NGX_OK;
}


/*
 * A tenant's name from a value: printable ASCII as it is, any other byte
 * (of $binary_remote_addr, say, or UTF-8) as \xHH, so that the name is
 * text in JSON and in the metrics' labels; a name that does not fit
 * keeps its beginning, cut between two of those, and ends with "~" and a
 * hash of the whole value.
 */

static u_char *
ngx_http_seadragon_fair_name(u_char *p, u_char *last, ngx_str_t *value)
{
    u_char    *q;
    size_t     used;
    uint32_t   hash;

    q = ngx_http_seadragon_fair_text(p, last, value, &used);

    if (used == value->len) {
        return q;
    }

    q = ngx_http_seadragon_fair_text(p, last - NGX_HTTP_SEADRAGON_TENANT_HASH,
                                     value, &used);

    hash = ngx_crc32_long(value->data, value->len);

    return ngx_snprintf(q, last - q, "~%08xD", hash);
}


/* as much of the value as fits, byte by byte; "used": how much did */

static u_char *
ngx_http_seadragon_fair_text(u_char *p, u_char *last, ngx_str_t *value,
    size_t *used)
{
    u_char   c;
    size_t   i;

    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (c > 0x20 && c < 0x7f && c != '\\') {
            if (last - p < 1) {
                break;
            }

            *p++ = c;
            continue;
        }

        if (last - p < 4) {
            break;
        }

        *p++ = '\\';
        *p++ = 'x';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    *used = i;

    return p;
}


/*
 * What the request's prompt may cost, before Ollama says: a token for
 * every four bytes of its body, the usual rule for English text, and at
 * least one.  The answer's own figures replace it when it ends.
 */

static uint64_t
ngx_http_seadragon_fair_estimate(ngx_http_request_t *r)
{
    off_t         size;
    ngx_chain_t  *cl;

    size = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            size += ngx_buf_size(cl->buf);
        }
    }

    return ngx_max(size / 4, 1);
}


/* under the lock: the tenant's record, found or made (not yet in line) */

ngx_int_t
ngx_http_seadragon_fair_tenant_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_fair_place_t *place)
{
    ngx_http_seadragon_shctx_t   *sh;
    ngx_http_seadragon_tenant_t  *t;

    sh = zone->sh;

    t = ngx_http_seadragon_queue_tenant_find(sh, zone->slot[ctx->source],
                                             place->name, place->len);
    if (t) {
        t->weight = place->weight;     /* the key's, as of now */
        place->tenant = t;
        return NGX_OK;
    }

    if (!ngx_http_seadragon_zone_spare(zone)) {
        while ((t = ngx_http_seadragon_queue_tenant_trim(sh, 0)) != NULL) {
            ngx_slab_free_locked(zone->shpool, t);
        }
    }

    t = ngx_slab_alloc_locked(zone->shpool,
                              sizeof(ngx_http_seadragon_tenant_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    place->tenant = t;
    place->created = 1;

    return NGX_OK;
}


/* under the lock: a record made for a request that got no place after all */

void
ngx_http_seadragon_fair_drop_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_fair_place_t *place)
{
    if (place->created && place->tenant) {
        ngx_slab_free_locked(zone->shpool, place->tenant);
    }

    place->tenant = NULL;
    place->created = 0;
}


/* under the lock, before the entry is pushed: it waits as its tenant */

void
ngx_http_seadragon_fair_enter_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_fair_place_t *place,
    ngx_http_seadragon_entry_t *entry)
{
    if (place->tenant == NULL) {
        return;
    }

    if (place->created) {
        ngx_http_seadragon_queue_tenant_insert(zone->sh, place->tenant,
                                               zone->slot[ctx->source],
                                               place->name, place->len,
                                               place->weight);
        place->created = 0;
    }

    entry->tenant = place->tenant;
}


/*
 * Under the lock, before the entry leaves the gate: the tokens of its
 * answer (ngx_http_seadragon_usage_finish() settled them) replace what it
 * was charged when it went in.  An answer cut short keeps what was
 * charged, unless its chunks were counted; then its prompt is still the
 * estimate, at least: Ollama read the whole prompt before the first
 * token, and a client that cancels must not have it for free.
 */

void
ngx_http_seadragon_fair_leave_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_entry_t *entry)
{
    uint64_t                     prompt;
    ngx_http_seadragon_usage_t  *u;

    u = &ctx->usage;

    if (entry->tenant == NULL
        || entry->state != NGX_HTTP_SEADRAGON_ENTRY_RUNNING
        || !u->counted
        || !(u->reported || u->estimated))
    {
        return;
    }

    prompt = u->prompt_tokens;

    if (!u->reported) {
        prompt = ngx_max(prompt, entry->estimate);
    }

    ngx_http_seadragon_queue_charge(zone->sh, entry, prompt,
                                    u->completion_tokens);
}


/* under the lock: idle tenants beyond what is kept go back to the slab */

void
ngx_http_seadragon_fair_trim_locked(ngx_http_seadragon_zone_t *zone)
{
    ngx_uint_t                    keep;
    ngx_http_seadragon_tenant_t  *t;

    keep = ngx_http_seadragon_zone_spare(zone)
           ? NGX_HTTP_SEADRAGON_TENANTS_IDLE : 0;

    while ((t = ngx_http_seadragon_queue_tenant_trim(zone->sh, keep))
           != NULL)
    {
        ngx_slab_free_locked(zone->shpool, t);
    }
}
