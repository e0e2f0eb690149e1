
/*
 * Copyright (C) The Seadragon authors
 *
 * What the admin API and the metrics show of the scheduler: GET history
 * (the queue a second at a time over the last minutes, for the admin
 * page's chart), GET tenants (fair shares: each tenant's counter, the
 * tokens it was served and its share of its source's), and the tenants'
 * metrics.  GET queue's own fields are in ngx_http_seadragon_admin.c.
 *
 * As everywhere in the admin API, the zone is copied under its lock into
 * memory taken before it, and written out after it is released.  The
 * tenants may be thousands: at most NGX_HTTP_SEADRAGON_TENANTS_SHOWN are
 * copied, and the answer says it was truncated.
 */


#include "ngx_http_seadragon_module.h"


/* the most tenants an answer or a scrape shows */
#define NGX_HTTP_SEADRAGON_TENANTS_SHOWN  4096

/* a metrics line of a tenant: the names (escaped, so twice) and numbers */
#define NGX_HTTP_SEADRAGON_TENANT_LINE                                       \
    (128 + NGX_HTTP_SEADRAGON_NAME_LEN + 2 * NGX_HTTP_SEADRAGON_TENANT_LEN)


typedef struct {
    ngx_uint_t                       source;
    ngx_uint_t                       weight;
    ngx_uint_t                       nwaiting;
    ngx_uint_t                       nrunning;
    uint64_t                         counter;
    uint64_t                         tokens;
    uint64_t                         requests;
    size_t                           len;
    u_char                           name[NGX_HTTP_SEADRAGON_TENANT_LEN];
} ngx_http_seadragon_tenant_copy_t;


typedef struct {
    ngx_http_seadragon_tenant_copy_t  *tenants;
    ngx_uint_t                         n;           /* copied */
    ngx_uint_t                         known;       /* in the zone */
    ngx_uint_t                         backlogged;  /* with entries waiting */
    ngx_uint_t                         fair;
    ngx_uint_t                         nsources;
    size_t                   source_len[NGX_HTTP_SEADRAGON_MAX_SOURCES];
    u_char                   source[NGX_HTTP_SEADRAGON_MAX_SOURCES]
                                   [NGX_HTTP_SEADRAGON_NAME_LEN];
    /* the tokens of all known tenants of a source, for the shares */
    uint64_t                 source_tokens[NGX_HTTP_SEADRAGON_MAX_SOURCES];
} ngx_http_seadragon_tenants_t;


static ngx_int_t ngx_http_seadragon_tenants_copy(ngx_pool_t *pool,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_tenants_t *t);
static int ngx_libc_cdecl ngx_http_seadragon_tenants_cmp(const void *one,
    const void *two);
static double ngx_http_seadragon_tenant_share(ngx_http_seadragon_tenants_t *t,
    ngx_http_seadragon_tenant_copy_t *c);
static void ngx_http_seadragon_json_decimal(ngx_http_seadragon_json_t *j,
    char *key, u_char *buf, u_char *last);


static char  *ngx_http_seadragon_fair_names[] = {
    "off", "tokens", "requests"
};


/*
 * GET history: {"zone", "interval": 1, "samples": [{"time", "waiting",
 * "running", "oldest_wait" (seconds), "admitted"}]}, oldest first.  The
 * read takes a sample itself, so that the newest one is now.
 */

ngx_int_t
ngx_http_seadragon_admin_history(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    ngx_uint_t                    i, n;
    ngx_http_seadragon_json_t     j;
    ngx_http_seadragon_sample_t  *samples, *s;

    samples = ngx_palloc(r->pool, NGX_HTTP_SEADRAGON_HISTORY
                                  * sizeof(ngx_http_seadragon_sample_t));
    if (samples == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_seadragon_history_sample(zone->sh, ngx_time(), ngx_current_msec);
    n = ngx_http_seadragon_history_read(zone->sh, samples,
                                        NGX_HTTP_SEADRAGON_HISTORY);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "zone", zone->name.data, zone->name.len);
    ngx_http_seadragon_json_int(&j, "interval", 1);
    ngx_http_seadragon_json_str(&j, "samples");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < n; i++) {
        s = &samples[i];

        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_int(&j, "time", (long long) s->time);
        ngx_http_seadragon_json_int(&j, "waiting", (long long) s->waiting);
        ngx_http_seadragon_json_int(&j, "running", (long long) s->running);
        ngx_http_seadragon_json_seconds(&j, "oldest_wait",
                                        (ngx_msec_t) s->oldest_ms);
        ngx_http_seadragon_json_int(&j, "admitted", (long long) s->admitted);
        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_array_close(&j);
    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * GET tenants: {"zone", "fair", "tenants_known", "backlogged",
 * "truncated", "tenants": [{"source", "tenant", "weight", "counter" (in
 * tokens), "tokens", "requests", "waiting", "running", "share"}]}, by
 * source, the most served first.
 */

ngx_int_t
ngx_http_seadragon_admin_tenants(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    u_char                            *p, buf[NGX_INT64_LEN + 8];
    ngx_uint_t                         i;
    ngx_http_seadragon_json_t          j;
    ngx_http_seadragon_tenants_t      *t;
    ngx_http_seadragon_tenant_copy_t  *c;

    t = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_tenants_t));
    if (t == NULL
        || ngx_http_seadragon_tenants_copy(r->pool, zone, t) != NGX_OK
        || ngx_http_seadragon_json_begin(r, &j) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "zone", zone->name.data, zone->name.len);
    ngx_http_seadragon_json_str(&j, "fair");
    ngx_http_seadragon_json_str(&j, ngx_http_seadragon_fair_names[t->fair]);
    ngx_http_seadragon_json_int(&j, "tenants_known", (long long) t->known);
    ngx_http_seadragon_json_int(&j, "backlogged", (long long) t->backlogged);
    ngx_http_seadragon_json_str(&j, "truncated");
    ngx_http_seadragon_json_check(&j, yajl_gen_bool(j.gen, t->n < t->known));
    ngx_http_seadragon_json_str(&j, "tenants");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < t->n; i++) {
        c = &t->tenants[i];

        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_field(&j, "source", t->source[c->source],
                                      t->source_len[c->source]);
        ngx_http_seadragon_json_field(&j, "tenant", c->name, c->len);
        ngx_http_seadragon_json_int(&j, "weight", (long long) c->weight);

        p = ngx_slprintf(buf, buf + sizeof(buf), "%uL.%03uL",
                         c->counter / NGX_HTTP_SEADRAGON_VTC_UNIT,
                         c->counter % NGX_HTTP_SEADRAGON_VTC_UNIT * 1000
                         / NGX_HTTP_SEADRAGON_VTC_UNIT);
        ngx_http_seadragon_json_decimal(&j, "counter", buf, p);

        ngx_http_seadragon_json_int(&j, "tokens", (long long) c->tokens);
        ngx_http_seadragon_json_int(&j, "requests", (long long) c->requests);
        ngx_http_seadragon_json_int(&j, "waiting", (long long) c->nwaiting);
        ngx_http_seadragon_json_int(&j, "running", (long long) c->nrunning);

        p = ngx_slprintf(buf, buf + sizeof(buf), "%.4f",
                         ngx_http_seadragon_tenant_share(t, c));
        ngx_http_seadragon_json_decimal(&j, "share", buf, p);

        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_array_close(&j);
    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * The tenants' metrics, for the metrics handler: the tokens served and
 * the share of each tenant (bounded as GET tenants is), the tenants
 * known and those with requests waiting.  "zn" is the zone's label,
 * escaped.
 */

ngx_int_t
ngx_http_seadragon_tenant_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out)
{
    u_char                            *p, *last, *start;
    size_t                             len;
    ngx_uint_t                         i;
    ngx_http_seadragon_tenants_t      *t;
    ngx_http_seadragon_tenant_copy_t  *c;

    t = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_tenants_t));
    if (t == NULL
        || ngx_http_seadragon_tenants_copy(r->pool, zone, t) != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = 2048 + 2 * zn->len
          + 2 * t->n * (NGX_HTTP_SEADRAGON_TENANT_LINE + zn->len);

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;
    last = start + len;

    p = ngx_slprintf(p, last, "# HELP seadragon_tenant_tokens_total Tokens "
                     "served to a tenant of fair shares (prompt and "
                     "completion), by source and tenant.\n"
                     "# TYPE seadragon_tenant_tokens_total counter\n");

    for (i = 0; i < t->n; i++) {
        c = &t->tenants[i];

        p = ngx_slprintf(p, last, "seadragon_tenant_tokens_total{zone=\"%V\","
                         "source=\"%*s\",tenant=\"", zn,
                         t->source_len[c->source], t->source[c->source]);
        p = ngx_http_seadragon_usage_label(p, last, c->name, c->len);
        p = ngx_slprintf(p, last, "\"} %uL\n", c->tokens);
    }

    p = ngx_slprintf(p, last, "# HELP seadragon_tenant_share A tenant's "
                     "tokens over those of all known tenants of its "
                     "source (0 to 1).\n"
                     "# TYPE seadragon_tenant_share gauge\n");

    for (i = 0; i < t->n; i++) {
        c = &t->tenants[i];

        p = ngx_slprintf(p, last, "seadragon_tenant_share{zone=\"%V\","
                         "source=\"%*s\",tenant=\"", zn,
                         t->source_len[c->source], t->source[c->source]);
        p = ngx_http_seadragon_usage_label(p, last, c->name, c->len);
        p = ngx_slprintf(p, last, "\"} %.4f\n",
                         ngx_http_seadragon_tenant_share(t, c));
    }

    p = ngx_slprintf(p, last, "# HELP seadragon_tenants Tenants of fair "
                     "shares the zone knows now.\n"
                     "# TYPE seadragon_tenants gauge\n"
                     "seadragon_tenants{zone=\"%V\"} %ui\n"
                     "# HELP seadragon_tenants_backlogged Tenants with "
                     "requests waiting now.\n"
                     "# TYPE seadragon_tenants_backlogged gauge\n"
                     "seadragon_tenants_backlogged{zone=\"%V\"} %ui\n",
                     zn, t->known, zn, t->backlogged);

    if (p == last) {
        return NGX_ERROR;
    }

    out->data = start;
    out->len = p - start;

    return NGX_OK;
}


/*
 * The zone's tenants, under its lock: every one is counted (for the
 * shares of its source), at most the memory taken before the lock is
 * copied; then sorted outside it.
 */

static ngx_int_t
ngx_http_seadragon_tenants_copy(ngx_pool_t *pool,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_tenants_t *t)
{
    ngx_uint_t                         i, room;
    ngx_rbtree_t                      *tree;
    ngx_rbtree_node_t                 *node;
    ngx_http_seadragon_shctx_t        *sh;
    ngx_http_seadragon_tenant_t       *tn;
    ngx_http_seadragon_tenant_copy_t  *c;

    sh = zone->sh;

    /* read without the lock, as a size only: what comes meanwhile is cut */

    room = ngx_min(sh->ntenants + 64, NGX_HTTP_SEADRAGON_TENANTS_SHOWN);

    t->tenants = ngx_palloc(pool,
                            room * sizeof(ngx_http_seadragon_tenant_copy_t));
    if (t->tenants == NULL) {
        return NGX_ERROR;
    }

    t->n = 0;
    t->known = 0;
    t->backlogged = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    t->fair = sh->fair <= NGX_HTTP_SEADRAGON_FAIR_REQUESTS
              ? sh->fair : NGX_HTTP_SEADRAGON_FAIR_OFF;
    t->nsources = sh->nsources;

    for (i = 0; i < sh->nsources; i++) {
        t->source_len[i] = ngx_min(sh->sources[i].name_len,
                                   NGX_HTTP_SEADRAGON_NAME_LEN);
        ngx_memcpy(t->source[i], sh->sources[i].name, t->source_len[i]);
        t->source_tokens[i] = 0;
    }

    tree = &sh->tenants;

    /* a zone whose tree was never set up has no tenants */

    if (tree->root != NULL && tree->sentinel != NULL
        && tree->root != tree->sentinel)
    {
        for (node = ngx_rbtree_min(tree->root, tree->sentinel);
             node;
             node = ngx_rbtree_next(tree, node))
        {
            tn = (ngx_http_seadragon_tenant_t *) node;

            if (tn->source >= sh->nsources) {
                continue;
            }

            t->known++;
            t->source_tokens[tn->source] += tn->tokens;

            if (tn->nwaiting) {
                t->backlogged++;
            }

            if (t->n == room) {
                continue;
            }

            c = &t->tenants[t->n++];

            c->source = tn->source;
            c->weight = tn->weight ? tn->weight : 1;
            c->nwaiting = tn->nwaiting;
            c->nrunning = tn->nrunning;
            c->counter = tn->counter;
            c->tokens = tn->tokens;
            c->requests = tn->requests;
            c->len = ngx_min(tn->len, NGX_HTTP_SEADRAGON_TENANT_LEN);
            ngx_memcpy(c->name, tn->name, c->len);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_qsort(t->tenants, t->n, sizeof(ngx_http_seadragon_tenant_copy_t),
              ngx_http_seadragon_tenants_cmp);

    return NGX_OK;
}


/* by source, then the most tokens first, then by name */

static int ngx_libc_cdecl
ngx_http_seadragon_tenants_cmp(const void *one, const void *two)
{
    const ngx_http_seadragon_tenant_copy_t  *a = one, *b = two;

    if (a->source != b->source) {
        return a->source < b->source ? -1 : 1;
    }

    if (a->tokens != b->tokens) {
        return a->tokens > b->tokens ? -1 : 1;
    }

    return (int) ngx_memn2cmp((u_char *) a->name, (u_char *) b->name,
                              a->len, b->len);
}


/* its tokens over those of all known tenants of its source, 0..1 */

static double
ngx_http_seadragon_tenant_share(ngx_http_seadragon_tenants_t *t,
    ngx_http_seadragon_tenant_copy_t *c)
{
    uint64_t  total;

    total = t->source_tokens[c->source];

    if (total == 0) {
        return 0;
    }

    return (double) c->tokens / (double) total;
}


/* a number written as text (buf .. last), as the answer shows it */

static void
ngx_http_seadragon_json_decimal(ngx_http_seadragon_json_t *j, char *key,
    u_char *buf, u_char *last)
{
    ngx_http_seadragon_json_str(j, key);
    ngx_http_seadragon_json_check(j,
        yajl_gen_number(j->gen, (const char *) buf, last - buf));
}
