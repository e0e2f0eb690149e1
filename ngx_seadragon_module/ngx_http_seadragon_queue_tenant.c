
/*
 * Copyright (C) The Seadragon authors
 *
 * The scheduler's records by name, pure like the queue: the tenants of
 * fair shares (found by name within their source, trimmed when idle),
 * the models with slots of their own (seadragon_model), and the index of
 * waiting entries by model that affinity reads
 * (ngx_http_seadragon_queue_fair.c chooses with them).
 */


#include "ngx_http_seadragon_module.h"


static void ngx_http_seadragon_queue_tenant_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static void ngx_http_seadragon_queue_models_rebind(
    ngx_http_seadragon_shctx_t *sh);


void
ngx_http_seadragon_queue_tenant_init(ngx_http_seadragon_shctx_t *sh)
{
    ngx_rbtree_init(&sh->tenants, &sh->tenants_sentinel,
                    ngx_http_seadragon_queue_tenant_insert_value);
    ngx_queue_init(&sh->tenants_idle);
}


/*
 * queue_push(): the entry joins the FIFO of its model's row in its
 * source, taking a free row if its model has none, or counts in the
 * overflow.
 */

void
ngx_http_seadragon_queue_wait_enter(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    ngx_uint_t                        k, i;
    ngx_http_seadragon_wait_model_t  *w;

    k = NGX_HTTP_SEADRAGON_WAIT_MODELS;

    for (i = 0; i < NGX_HTTP_SEADRAGON_WAIT_MODELS; i++) {
        w = &sh->wait_models[i];

        if (w->len == entry->model_len
            && w->model_slot == entry->model_slot
            && ngx_memcmp(w->name, entry->model, w->len) == 0)
        {
            k = i;
            break;
        }

        if (w->nwaiting == 0 && k == NGX_HTTP_SEADRAGON_WAIT_MODELS) {
            k = i;
        }
    }

    if (k == NGX_HTTP_SEADRAGON_WAIT_MODELS) {
        entry->wait_slot = -1;
        sh->wait_overflow++;
        return;
    }

    w = &sh->wait_models[k];

    if (i != k) {
        /* a free row: now this model's */
        ngx_memcpy(w->name, entry->model, entry->model_len);
        w->len = entry->model_len;
        w->model_slot = entry->model_slot;
    }

    entry->wait_slot = k;
    ngx_queue_insert_tail(&sh->sources[entry->source].mwaiting[k],
                          &entry->mlink);
    w->nwaiting++;
}


/* the entry stops waiting (granted, or gone) */

void
ngx_http_seadragon_queue_wait_leave(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_entry_t *entry)
{
    if (entry->wait_slot >= 0
        && entry->wait_slot < NGX_HTTP_SEADRAGON_WAIT_MODELS)
    {
        ngx_queue_remove(&entry->mlink);
        sh->wait_models[entry->wait_slot].nwaiting--;

    } else if (sh->wait_overflow) {
        sh->wait_overflow--;
    }

    entry->wait_slot = -1;
}


/*
 * The tenants by name within their source, in sh->tenants: the key is a
 * hash (FNV-1a) of the source and the name.  The insert function is set
 * before each insertion: a reload may load the module at another address.
 */

static ngx_rbtree_key_t
ngx_http_seadragon_queue_tenant_hash(ngx_uint_t source, u_char *name,
    size_t len)
{
    return ngx_http_seadragon_name_hash((NGX_HTTP_SEADRAGON_FNV
                                         ^ (uint32_t) source)
                                        * NGX_HTTP_SEADRAGON_FNV_PRIME,
                                        name, len);
}


static ngx_int_t
ngx_http_seadragon_queue_tenant_cmp(ngx_uint_t source, u_char *name,
    size_t len, ngx_http_seadragon_tenant_t *t)
{
    if (source != t->source) {
        return source < t->source ? -1 : 1;
    }

    return ngx_http_seadragon_name_cmp(name, len, t->name, t->len);
}


static void
ngx_http_seadragon_queue_tenant_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_seadragon_tenant_t   *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            t = (ngx_http_seadragon_tenant_t *) node;

            p = (ngx_http_seadragon_queue_tenant_cmp(t->source, t->name,
                     t->len, (ngx_http_seadragon_tenant_t *) temp) < 0)
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


ngx_http_seadragon_tenant_t *
ngx_http_seadragon_queue_tenant_find(ngx_http_seadragon_shctx_t *sh,
    ngx_uint_t source, u_char *name, size_t len)
{
    ngx_int_t                     rc;
    ngx_rbtree_key_t              hash;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_seadragon_tenant_t  *t;

    len = ngx_min(len, NGX_HTTP_SEADRAGON_TENANT_LEN);
    hash = ngx_http_seadragon_queue_tenant_hash(source, name, len);

    node = sh->tenants.root;
    sentinel = sh->tenants.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        t = (ngx_http_seadragon_tenant_t *) node;

        rc = ngx_http_seadragon_queue_tenant_cmp(source, name, len, t);

        if (rc == 0) {
            return t;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/* "tenant" is the caller's memory, handed back by tenant_trim() */

void
ngx_http_seadragon_queue_tenant_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_tenant_t *tenant, ngx_uint_t source, u_char *name,
    size_t len, ngx_uint_t weight)
{
    len = ngx_min(len, NGX_HTTP_SEADRAGON_TENANT_LEN);

    ngx_memzero(tenant, sizeof(ngx_http_seadragon_tenant_t));
    ngx_memcpy(tenant->name, name, len);
    tenant->len = len;
    tenant->source = source;
    tenant->weight = weight == 0 ? 1 : ngx_min(weight,
                                               NGX_HTTP_SEADRAGON_WEIGHT_MAX);
    ngx_queue_init(&tenant->waiting);
    tenant->node.key = ngx_http_seadragon_queue_tenant_hash(source, name, len);

    sh->tenants.insert = ngx_http_seadragon_queue_tenant_insert_value;
    ngx_rbtree_insert(&sh->tenants, &tenant->node);
    sh->ntenants++;

    /* nothing waiting or running yet: idle until its first push */

    ngx_queue_insert_tail(&sh->tenants_idle, &tenant->idle);
    sh->nidle++;
}


/* the oldest idle tenant beyond "keep", out of the zone, for the caller */

ngx_http_seadragon_tenant_t *
ngx_http_seadragon_queue_tenant_trim(ngx_http_seadragon_shctx_t *sh,
    ngx_uint_t keep)
{
    ngx_queue_t                  *q;
    ngx_http_seadragon_tenant_t  *t;

    if (sh->nidle <= keep || ngx_queue_empty(&sh->tenants_idle)) {
        return NULL;
    }

    q = ngx_queue_head(&sh->tenants_idle);
    t = ngx_queue_data(q, ngx_http_seadragon_tenant_t, idle);

    ngx_queue_remove(q);
    sh->nidle--;

    ngx_rbtree_delete(&sh->tenants, &t->node);
    sh->ntenants--;

    return t;
}


/* the index of a model of seadragon_model in the zone, or -1 */

ngx_int_t
ngx_http_seadragon_queue_model_slot(ngx_http_seadragon_shctx_t *sh,
    u_char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < sh->nmodels && i < NGX_HTTP_SEADRAGON_MODELS; i++) {
        if (sh->models[i].len == len
            && ngx_memcmp(sh->models[i].name, name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/*
 * The newest configuration's models: known ones take their new slots,
 * new ones are appended, those no longer configured keep their index with
 * no slots of their own; running counts stay.  NGX_ERROR, and nothing
 * changed, if the zone would know more than NGX_HTTP_SEADRAGON_MODELS.
 */

ngx_int_t
ngx_http_seadragon_queue_models_set(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_model_conf_t *models, ngx_uint_t n)
{
    ngx_int_t                         slot;
    ngx_uint_t                        i, add;
    ngx_http_seadragon_model_slot_t  *m;

    add = 0;

    for (i = 0; i < n; i++) {
        if (models[i].name.len > NGX_HTTP_SEADRAGON_MODEL_LEN) {
            return NGX_ERROR;
        }

        if (ngx_http_seadragon_queue_model_slot(sh, models[i].name.data,
                                                models[i].name.len)
            < 0)
        {
            add++;
        }
    }

    if (sh->nmodels + add > NGX_HTTP_SEADRAGON_MODELS) {
        return NGX_ERROR;
    }

    for (i = 0; i < sh->nmodels; i++) {
        sh->models[i].slots = 0;
    }

    for (i = 0; i < n; i++) {
        slot = ngx_http_seadragon_queue_model_slot(sh, models[i].name.data,
                                                   models[i].name.len);
        if (slot < 0) {
            m = &sh->models[sh->nmodels++];
            ngx_memcpy(m->name, models[i].name.data, models[i].name.len);
            m->len = models[i].name.len;
            m->running = 0;

        } else {
            m = &sh->models[slot];
        }

        m->slots = models[i].slots;
    }

    if (add) {
        ngx_http_seadragon_queue_models_rebind(sh);
    }

    return NGX_OK;
}


/*
 * A model that gets its own slots by a reload: the requests for it that
 * were queued or let in before count in them from now on, so the new
 * slots hold at once.  Nothing has the new slot yet (this runs before the
 * new workers start), and each source's line is taken in order, so the
 * model's line in each source keeps its order.
 */

static void
ngx_http_seadragon_queue_models_rebind(ngx_http_seadragon_shctx_t *sh)
{
    ngx_int_t                    slot;
    ngx_uint_t                   i;
    ngx_queue_t                 *q, *list;
    ngx_http_seadragon_entry_t  *e;

    for (i = 0; i <= sh->nsources; i++) {

        list = (i < sh->nsources) ? &sh->sources[i].waiting : &sh->running;

        for (q = ngx_queue_head(list);
             q != ngx_queue_sentinel(list);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (e->model_slot >= 0) {
                continue;
            }

            slot = ngx_http_seadragon_queue_model_slot(sh, e->model,
                                                       e->model_len);
            if (slot < 0) {
                continue;
            }

            if (e->state == NGX_HTTP_SEADRAGON_ENTRY_RUNNING) {
                e->model_slot = slot;
                sh->models[slot].running++;
                continue;
            }

            ngx_http_seadragon_queue_wait_leave(sh, e);
            e->model_slot = slot;
            ngx_http_seadragon_queue_wait_enter(sh, e);

            if (e->tenant && e->wait_slot >= 0) {
                e->tenant->rows |= (u_char) (1 << e->wait_slot);
            }
        }
    }
}
