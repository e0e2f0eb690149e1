/*
 * Copyright (C) The Seadragon authors
 *
 * Usage kept: what each answer used (ctx->usage, read from the answer by
 * ngx_http_seadragon_usage_parse.c) is added to the zone, per day,
 * principal and model, and per model for the metrics, once: when the
 * answer's last buffer has passed the body filter, or else at the
 * request's end (the gate's cleanup: a broken or aborted answer).
 *
 * The zone's rows hold what is not in the store yet ("pending");
 * ngx_http_seadragon_usage_write.c writes them to the store, and
 * ngx_http_seadragon_usage_admin.c answers GET usage and the usage
 * metrics from them.  Without seadragon_store, usage lives in the zone
 * only.
 */


#include "ngx_http_seadragon_module.h"


static void ngx_http_seadragon_usage_principal(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, u_char *buf, size_t *len);
static ngx_http_seadragon_usage_shm_t *ngx_http_seadragon_usage_shm_locked(
    ngx_http_seadragon_zone_t *zone);
static ngx_int_t ngx_http_seadragon_usage_cmp(uint32_t day, u_char *p,
    size_t plen, u_char *m, size_t mlen, ngx_http_seadragon_usage_row_t *row);
static void ngx_http_seadragon_usage_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_seadragon_usage_row_t *ngx_http_seadragon_usage_row_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_usage_shm_t *usage,
    uint32_t day, u_char *p, size_t plen, u_char *m, size_t mlen,
    ngx_uint_t store);
static void ngx_http_seadragon_usage_model_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_usage_shm_t *usage,
    ngx_uint_t slot, u_char *m, size_t mlen,
    seadragon_usage_record_t *delta);


ngx_uint_t  ngx_http_seadragon_usage_tps_buckets[
                                               NGX_HTTP_SEADRAGON_USAGE_TPS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000
};


/*
 * Once the answer has passed (the body filter), or at the request's end
 * (the gate's cleanup): what it used, added to its row of today and to
 * its model's figures, under the zone's lock, with no allocation of
 * request memory and no I/O.
 */

void
ngx_http_seadragon_usage_end(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    u_char                           principal[SEADRAGON_USAGE_PRINCIPAL_LEN];
    size_t                           plen, mlen;
    uint32_t                         day;
    ngx_uint_t                       slot;
    ngx_http_seadragon_zone_t       *zone;
    ngx_http_seadragon_usage_t      *u;
    seadragon_usage_record_t         delta;
    ngx_http_seadragon_usage_shm_t  *usage;
    ngx_http_seadragon_usage_row_t  *row;
    ngx_http_seadragon_loc_conf_t   *slcf;
    ngx_http_seadragon_main_conf_t  *smcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (ctx->usage_kept || !slcf->usage || ctx->endpoint == NULL
        || ctx->endpoint->kind != NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
        || ctx->zone == NULL || r != r->main)
    {
        return;
    }

    ctx->usage_kept = 1;

    ngx_http_seadragon_usage_finish(r, ctx);

    u = &ctx->usage;

    /* an answer that never came used nothing */

    if (!u->counted && r->headers_out.status != NGX_HTTP_OK) {
        return;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
    zone = ctx->zone;
    slot = zone->slot[ctx->source];

    ngx_http_seadragon_usage_principal(r, ctx, principal, &plen);

    mlen = ngx_min(ctx->model.len, SEADRAGON_USAGE_MODEL_LEN);

    /*
     * A longer name (the body check has made it UTF-8) is cut before the
     * character that does not fit, so that the metrics, the admin API and
     * the store keep UTF-8: Prometheus refuses a scrape with a label that
     * is not.
     */

    while (mlen < ctx->model.len && mlen > 0
           && (ctx->model.data[mlen] & 0xc0) == 0x80)
    {
        mlen--;
    }

    ngx_memzero(&delta, sizeof(seadragon_usage_record_t));
    delta.version = 1;
    delta.requests = 1;
    delta.prompt_tokens = u->prompt_tokens;
    delta.completion_tokens = u->completion_tokens;
    delta.generation_ms = u->generation_ms;
    delta.prompt_ms = u->prompt_ms;
    delta.load_ms = u->load_ms;

    if (u->estimated) {
        delta.estimated = 1;
        delta.flags = SEADRAGON_USAGE_ESTIMATED;
    }

    day = (uint32_t) (ngx_time() / 86400);

    ngx_shmtx_lock(&zone->shpool->mutex);

    usage = ngx_http_seadragon_usage_shm_locked(zone);

    if (usage == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon zone \"%V\" has no memory left to keep "
                      "usage: this answer's is not kept", &zone->name);
        return;
    }

    row = ngx_http_seadragon_usage_row_locked(zone, usage, day, principal,
                                              plen, ctx->model.data, mlen,
                                              smcf->store != NULL);

    if (row == NULL) {
        usage->dropped++;

    } else {
        ngx_http_seadragon_usage_record_add(&row->total, &delta);

        if (smcf->store) {
            if (row->pending.requests == 0) {
                usage->npending++;
            }

            ngx_http_seadragon_usage_record_add(&row->pending, &delta);
        }
    }

    ngx_http_seadragon_usage_model_locked(zone, usage, slot, ctx->model.data,
                                          mlen, &delta);

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* "key:NAME" for a request with a valid key, else "source:NAME" */

static void
ngx_http_seadragon_usage_principal(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, u_char *buf, size_t *len)
{
    u_char                          *p, *last;
    ngx_http_seadragon_source_t     *source;
    ngx_http_seadragon_main_conf_t  *smcf;

    last = buf + SEADRAGON_USAGE_PRINCIPAL_LEN;

    if (ctx->key_name.len) {
        p = ngx_slprintf(buf, last, "key:%V", &ctx->key_name);

    } else {
        smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
        source = smcf->sources.elts;
        p = ngx_slprintf(buf, last, "source:%V", &source[ctx->source].name);
    }

    *len = p - buf;
}


static ngx_http_seadragon_usage_shm_t *
ngx_http_seadragon_usage_shm_locked(ngx_http_seadragon_zone_t *zone)
{
    ngx_http_seadragon_usage_shm_t  *usage;

    usage = zone->sh->usage;

    if (usage) {
        return usage;
    }

    usage = ngx_slab_calloc_locked(zone->shpool,
                                   sizeof(ngx_http_seadragon_usage_shm_t));
    if (usage == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&usage->tree, &usage->sentinel,
                    ngx_http_seadragon_usage_rbtree_insert);
    ngx_queue_init(&usage->rows);

    zone->sh->usage = usage;

    return usage;
}


/* the rows' order: the names' crc32, then the day and the names */

static ngx_int_t
ngx_http_seadragon_usage_cmp(uint32_t day, u_char *p, size_t plen, u_char *m,
    size_t mlen, ngx_http_seadragon_usage_row_t *row)
{
    ngx_int_t  rc;

    if (day != row->day) {
        return day < row->day ? -1 : 1;
    }

    rc = ngx_memn2cmp(p, row->principal, plen, row->plen);
    if (rc) {
        return rc;
    }

    return ngx_memn2cmp(m, row->model, mlen, row->mlen);
}


static void
ngx_http_seadragon_usage_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t              **p;
    ngx_http_seadragon_usage_row_t  *n, *t;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            n = (ngx_http_seadragon_usage_row_t *) node;
            t = (ngx_http_seadragon_usage_row_t *) temp;

            p = (ngx_http_seadragon_usage_cmp(n->day, n->principal, n->plen,
                                              n->model, n->mlen, t) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_seadragon_usage_row_t *
ngx_http_seadragon_usage_row_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_usage_shm_t *usage, uint32_t day, u_char *p,
    size_t plen, u_char *m, size_t mlen, ngx_uint_t store)
{
    uint32_t                         hash;
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_seadragon_usage_row_t  *row;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, (u_char *) &day, sizeof(uint32_t));
    ngx_crc32_update(&hash, p, plen);
    ngx_crc32_update(&hash, (u_char *) "", 1);
    ngx_crc32_update(&hash, m, mlen);
    ngx_crc32_final(hash);

    node = usage->tree.root;
    sentinel = usage->tree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        row = (ngx_http_seadragon_usage_row_t *) node;

        rc = ngx_http_seadragon_usage_cmp(day, p, plen, m, mlen, row);

        if (rc == 0) {
            return row;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    /* full: with a store, the rows it has in full make room */

    if (usage->nrows >= NGX_HTTP_SEADRAGON_USAGE_ROWS && store) {
        ngx_http_seadragon_usage_sweep_locked(zone, usage, (uint32_t) -1);
    }

    if (usage->nrows >= NGX_HTTP_SEADRAGON_USAGE_ROWS) {
        return NULL;
    }

    /* the pages the queue needs are not the usage's (queue_spare) */

    if (!ngx_http_seadragon_zone_spare(zone) && store) {
        ngx_http_seadragon_usage_sweep_locked(zone, usage, (uint32_t) -1);
    }

    row = ngx_http_seadragon_zone_spare(zone)
          ? ngx_slab_calloc_locked(zone->shpool,
                                   sizeof(ngx_http_seadragon_usage_row_t))
          : NULL;

    if (row == NULL && store) {
        ngx_http_seadragon_usage_sweep_locked(zone, usage, (uint32_t) -1);

        if (ngx_http_seadragon_zone_spare(zone)) {
            row = ngx_slab_calloc_locked(zone->shpool,
                                     sizeof(ngx_http_seadragon_usage_row_t));
        }
    }

    if (row == NULL) {
        return NULL;
    }

    row->node.key = hash;
    row->day = day;
    row->plen = plen;
    row->mlen = mlen;
    ngx_memcpy(row->principal, p, plen);
    ngx_memcpy(row->model, m, mlen);
    row->total.version = 1;
    row->pending.version = 1;
    row->writing.version = 1;

    /* as for the clients and the limits: a reload may move the module */

    usage->tree.insert = ngx_http_seadragon_usage_rbtree_insert;
    ngx_rbtree_insert(&usage->tree, &row->node);
    ngx_queue_insert_tail(&usage->rows, &row->link);
    usage->nrows++;

    return row;
}


/* a model's figures for the metrics; beyond the first 64 models, "other" */

static void
ngx_http_seadragon_usage_model_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_usage_shm_t *usage, ngx_uint_t slot, u_char *m,
    size_t mlen, seadragon_usage_record_t *delta)
{
    uint64_t                           tps;
    ngx_uint_t                         i;
    ngx_http_seadragon_usage_model_t  *model;

    model = NULL;

    for (i = 0; i < usage->nmodels; i++) {
        if (usage->models[i]->mlen == mlen
            && ngx_memcmp(usage->models[i]->model, m, mlen) == 0)
        {
            model = usage->models[i];
            break;
        }
    }

    if (model == NULL) {
        i = usage->nmodels < NGX_HTTP_SEADRAGON_USAGE_MODELS
            ? usage->nmodels : NGX_HTTP_SEADRAGON_USAGE_MODELS;

        model = usage->models[i];

        if (model == NULL) {
            model = ngx_slab_calloc_locked(zone->shpool,
                                     sizeof(ngx_http_seadragon_usage_model_t));
            if (model == NULL) {
                usage->dropped_metrics++;
                return;
            }

            if (i < NGX_HTTP_SEADRAGON_USAGE_MODELS) {
                model->mlen = mlen;
                ngx_memcpy(model->model, m, mlen);
                usage->nmodels++;

            } else {
                model->mlen = sizeof("other") - 1;
                ngx_memcpy(model->model, "other", sizeof("other") - 1);
            }

            usage->models[i] = model;
        }
    }

    if (slot < NGX_HTTP_SEADRAGON_MAX_SOURCES) {
        model->tokens[slot][0] = seadragon_usage_count_add(
                                     model->tokens[slot][0],
                                     delta->prompt_tokens);
        model->tokens[slot][1] = seadragon_usage_count_add(
                                     model->tokens[slot][1],
                                     delta->completion_tokens);
    }

    model->load_ms = seadragon_usage_count_add(model->load_ms,
                                               delta->load_ms);

    if (delta->completion_tokens == 0 || delta->generation_ms == 0) {
        return;
    }

    /* tokens a second, in thousandths; figures beyond reason stay there */

    tps = (delta->completion_tokens > SEADRAGON_USAGE_COUNT_MAX / 1000000)
          ? SEADRAGON_USAGE_COUNT_MAX
          : delta->completion_tokens * 1000000 / delta->generation_ms;

    for (i = 0; i < NGX_HTTP_SEADRAGON_USAGE_TPS; i++) {
        if (tps <= ngx_http_seadragon_usage_tps_buckets[i] * 1000) {
            model->tps[i]++;
            break;
        }
    }

    model->tps_count++;
    model->tps_sum = seadragon_usage_count_add(model->tps_sum, tps);
}


void
ngx_http_seadragon_usage_record_add(seadragon_usage_record_t *to,
    seadragon_usage_record_t *delta)
{
    seadragon_usage_record_sum(to, delta);
}


void
ngx_http_seadragon_usage_sweep_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_usage_shm_t *usage, uint32_t keep_from)
{
    ngx_queue_t                     *q, *next;
    ngx_http_seadragon_usage_row_t  *row;

    for (q = ngx_queue_head(&usage->rows);
         q != ngx_queue_sentinel(&usage->rows);
         q = next)
    {
        next = ngx_queue_next(q);
        row = ngx_queue_data(q, ngx_http_seadragon_usage_row_t, link);

        if (row->day >= keep_from || row->pending.requests || row->writer) {
            continue;
        }

        ngx_queue_remove(&row->link);
        ngx_rbtree_delete(&usage->tree, &row->node);
        ngx_slab_free_locked(zone->shpool, row);
        usage->nrows--;
    }
}
