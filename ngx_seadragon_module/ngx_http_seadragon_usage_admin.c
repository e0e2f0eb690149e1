
/*
 * Copyright (C) The Seadragon authors
 *
 * Usage answered: the admin API's GET usage answers from the store and
 * adds what the zones have not written yet, so the two always agree; and
 * the usage families of the metrics, from the zone.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_USAGE_RANGE    366    /* days of one query */


/* a principal and model of an admin answer, summed over its days */

typedef struct {
    ngx_rbtree_node_t                node;      /* key: crc32 of names */
    u_char                          *principal;
    size_t                           plen;
    u_char                          *model;
    size_t                           mlen;
    seadragon_usage_record_t         sum;
} ngx_http_seadragon_usage_item_t;


typedef struct {
    ngx_pool_t                      *pool;
    ngx_rbtree_t                     tree;
    ngx_rbtree_node_t                sentinel;
    ngx_array_t                      items;     /* of ..._item_t * */
    ngx_str_t                        filter;    /* a principal, or empty */
    uint32_t                         from;
    uint32_t                         to;
    ngx_uint_t                       failed;    /* out of memory */
    ngx_uint_t                       corrupted;
} ngx_http_seadragon_usage_sum_t;


static ngx_int_t ngx_http_seadragon_usage_args(ngx_http_request_t *r,
    ngx_http_seadragon_usage_sum_t *sum, char **error);
static void ngx_http_seadragon_usage_sum_add(
    ngx_http_seadragon_usage_sum_t *sum, uint32_t day, u_char *p,
    size_t plen, u_char *m, size_t mlen, seadragon_usage_record_t *record);
static void ngx_http_seadragon_usage_item_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_seadragon_usage_sum_each(MDB_val *key, MDB_val *value,
    void *data);
static ngx_int_t ngx_http_seadragon_usage_sum_zones(ngx_http_request_t *r,
    ngx_http_seadragon_main_conf_t *smcf, ngx_http_seadragon_usage_sum_t *sum,
    uint64_t *unwritten, uint64_t *dropped, uint64_t *written);
static ngx_int_t ngx_http_seadragon_usage_collect(ngx_http_request_t *r,
    ngx_http_seadragon_main_conf_t *smcf, ngx_http_seadragon_usage_sum_t *sum,
    uint64_t *unwritten, uint64_t *dropped);
static uint64_t ngx_http_seadragon_usage_written(
    ngx_http_seadragon_main_conf_t *smcf);
static int ngx_libc_cdecl ngx_http_seadragon_usage_item_cmp(const void *one,
    const void *two);
static int ngx_libc_cdecl ngx_http_seadragon_usage_model_cmp(const void *one,
    const void *two);
static void ngx_http_seadragon_usage_json_principals(
    ngx_http_seadragon_json_t *j, ngx_http_seadragon_usage_item_t **items,
    ngx_uint_t n);
static void ngx_http_seadragon_usage_json_models(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_usage_item_t **models, ngx_uint_t n);
static ngx_int_t ngx_http_seadragon_usage_args_days(
    ngx_http_seadragon_usage_sum_t *sum, ngx_str_t *day, ngx_str_t *from,
    ngx_str_t *to, char **error);
static ngx_int_t ngx_http_seadragon_usage_args_filter(ngx_http_request_t *r,
    ngx_http_seadragon_usage_sum_t *sum, ngx_str_t *key, ngx_str_t *source,
    char **error);
static u_char *ngx_http_seadragon_usage_metrics_tokens(u_char *p,
    u_char *last, ngx_str_t *zn, ngx_http_seadragon_usage_model_t *models,
    ngx_uint_t nmodels, ngx_http_seadragon_shm_source_t *src,
    ngx_uint_t nsources);
static u_char *ngx_http_seadragon_usage_metrics_tps(u_char *p, u_char *last,
    ngx_str_t *zn, ngx_http_seadragon_usage_model_t *models,
    ngx_uint_t nmodels);
static void ngx_http_seadragon_usage_json_record(ngx_http_seadragon_json_t *j,
    seadragon_usage_record_t *rec);


/*
 * GET usage[?day=YYYY-MM-DD | ?from=..&to=..][&key=NAME | &source=NAME]:
 * per principal and per model, the store's figures and what the zones
 * have not written yet (the zones' own, without a store).
 */

ngx_int_t
ngx_http_seadragon_usage_admin(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    char                             *error, from[11], to[11];
    uint64_t                          unwritten, dropped;
    ngx_int_t                         rc;
    ngx_uint_t                        n, try;
    ngx_http_seadragon_json_t         j;
    ngx_http_seadragon_usage_sum_t    sum;
    ngx_http_seadragon_usage_item_t **items, **models;
    ngx_http_seadragon_main_conf_t   *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    ngx_memzero(&sum, sizeof(ngx_http_seadragon_usage_sum_t));
    sum.pool = r->pool;

    if (ngx_http_seadragon_usage_args(r, &sum, &error) != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST, error);
    }

    /*
     * The store first, then what the zones have not written: a write
     * that commits in between is still "writing" in its zone when the
     * zones are read, unless it was settled meanwhile, which the zones'
     * count of written rows shows; then it is read again.
     */

    for (try = 0; try < 8; try++) {
        rc = ngx_http_seadragon_usage_collect(r, smcf, &sum, &unwritten,
                                              &dropped);
        if (rc != NGX_AGAIN) {
            break;
        }
    }

    if (rc == NGX_DECLINED) {
        if (ngx_http_seadragon_header_add(r, "Retry-After",
                (u_char *) NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT,
                sizeof(NGX_HTTP_SEADRAGON_STORE_RETRY_TEXT) - 1)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "the store cannot be read "
                                              "right now, please try again");
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sum.corrupted) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon_store \"%V\": %ui usage entries that are "
                      "not usage records were left out",
                      &smcf->store->path, sum.corrupted);
    }

    n = sum.items.nelts;
    items = sum.items.elts;

    models = ngx_palloc(r->pool,
                        (n + 1) * sizeof(ngx_http_seadragon_usage_item_t *));
    if (models == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(models, items, n * sizeof(ngx_http_seadragon_usage_item_t *));

    ngx_qsort(items, n, sizeof(ngx_http_seadragon_usage_item_t *),
              ngx_http_seadragon_usage_item_cmp);
    ngx_qsort(models, n, sizeof(ngx_http_seadragon_usage_item_t *),
              ngx_http_seadragon_usage_model_cmp);

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    seadragon_usage_day_format(sum.from, from);
    seadragon_usage_day_format(sum.to, to);

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "from", (u_char *) from, 10);
    ngx_http_seadragon_json_field(&j, "to", (u_char *) to, 10);
    ngx_http_seadragon_json_str(&j, "store");
    ngx_http_seadragon_json_check(&j, yajl_gen_bool(j.gen,
                                                    smcf->store != NULL));
    ngx_http_seadragon_json_int(&j, "unwritten", (long long) unwritten);
    ngx_http_seadragon_json_int(&j, "dropped", (long long) dropped);

    ngx_http_seadragon_usage_json_principals(&j, items, n);
    ngx_http_seadragon_usage_json_models(&j, models, n);

    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


/* per principal, with its models; the items in the principals' order */

static void
ngx_http_seadragon_usage_json_principals(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_usage_item_t **items, ngx_uint_t n)
{
    ngx_uint_t                        i, k;
    seadragon_usage_record_t          total;
    ngx_http_seadragon_usage_item_t  *it;

    ngx_http_seadragon_json_str(j, "principals");
    ngx_http_seadragon_json_map_open(j);

    for (i = 0; i < n; i = k) {
        ngx_memzero(&total, sizeof(seadragon_usage_record_t));

        for (k = i;
             k < n && ngx_memn2cmp(items[k]->principal, items[i]->principal,
                                   items[k]->plen, items[i]->plen) == 0;
             k++)
        {
            ngx_http_seadragon_usage_record_add(&total, &items[k]->sum);
        }

        ngx_http_seadragon_json_text(j, items[i]->principal,
                                     items[i]->plen);
        ngx_http_seadragon_json_map_open(j);
        ngx_http_seadragon_usage_json_record(j, &total);

        ngx_http_seadragon_json_str(j, "models");
        ngx_http_seadragon_json_map_open(j);

        for (k = i;
             k < n && ngx_memn2cmp(items[k]->principal, items[i]->principal,
                                   items[k]->plen, items[i]->plen) == 0;
             k++)
        {
            it = items[k];
            ngx_http_seadragon_json_text(j, it->model, it->mlen);
            ngx_http_seadragon_json_map_open(j);
            ngx_http_seadragon_usage_json_record(j, &it->sum);
            ngx_http_seadragon_json_map_close(j);
        }

        ngx_http_seadragon_json_map_close(j);
        ngx_http_seadragon_json_map_close(j);
    }

    ngx_http_seadragon_json_map_close(j);

}


/* per model, over the principals; the items in the models' order */

static void
ngx_http_seadragon_usage_json_models(ngx_http_seadragon_json_t *j,
    ngx_http_seadragon_usage_item_t **models, ngx_uint_t n)
{
    ngx_uint_t                 i, k;
    seadragon_usage_record_t   total;

    ngx_http_seadragon_json_str(j, "models");
    ngx_http_seadragon_json_map_open(j);

    for (i = 0; i < n; i = k) {
        ngx_memzero(&total, sizeof(seadragon_usage_record_t));

        for (k = i;
             k < n && ngx_memn2cmp(models[k]->model, models[i]->model,
                                   models[k]->mlen, models[i]->mlen) == 0;
             k++)
        {
            ngx_http_seadragon_usage_record_add(&total, &models[k]->sum);
        }

        ngx_http_seadragon_json_text(j, models[i]->model, models[i]->mlen);
        ngx_http_seadragon_json_map_open(j);
        ngx_http_seadragon_usage_json_record(j, &total);
        ngx_http_seadragon_json_map_close(j);
    }

    ngx_http_seadragon_json_map_close(j);
}


static void
ngx_http_seadragon_usage_json_record(ngx_http_seadragon_json_t *j,
    seadragon_usage_record_t *rec)
{
    ngx_http_seadragon_json_int(j, "requests", (long long) rec->requests);
    ngx_http_seadragon_json_int(j, "prompt_tokens",
                                (long long) rec->prompt_tokens);
    ngx_http_seadragon_json_int(j, "completion_tokens",
                                (long long) rec->completion_tokens);
    ngx_http_seadragon_json_seconds(j, "generation_seconds",
                                    (ngx_msec_t) rec->generation_ms);
    ngx_http_seadragon_json_seconds(j, "prompt_seconds",
                                    (ngx_msec_t) rec->prompt_ms);
    ngx_http_seadragon_json_seconds(j, "load_seconds",
                                    (ngx_msec_t) rec->load_ms);
    ngx_http_seadragon_json_int(j, "estimated", (long long) rec->estimated);
}


/* the query: day, or from and to; key or source; nothing else */

static ngx_int_t
ngx_http_seadragon_usage_args(ngx_http_request_t *r,
    ngx_http_seadragon_usage_sum_t *sum, char **error)
{
    char        *twice;
    u_char      *p, *last, *amp, *eq, *dst, *src;
    size_t       nlen;
    ngx_str_t    name, value, day, from, to, key, source, *v;

    ngx_str_null(&day);
    ngx_str_null(&from);
    ngx_str_null(&to);
    ngx_str_null(&key);
    ngx_str_null(&source);

    p = r->args.data;
    last = r->args.data + r->args.len;

    while (p < last) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');

        name.data = p;
        name.len = (eq ? eq : amp) - p;

        if (eq == NULL) {
            ngx_str_null(&value);

        } else {
            value.data = eq + 1;
            value.len = amp - (eq + 1);
        }

        p = amp + 1;

        if (name.len == 0) {
            continue;
        }

        /* a value percent-decoded ("alice%40example.org"), at most 128 */

        if (value.len > 128) {
            *error = "a query value is too long";
            return NGX_ERROR;
        }

        dst = ngx_pnalloc(r->pool, value.len + 1);
        if (dst == NULL) {
            *error = "out of memory";
            return NGX_ERROR;
        }

        src = value.data;
        value.data = dst;
        ngx_unescape_uri(&dst, &src, value.len, 0);
        value.len = dst - value.data;

        nlen = name.len;

        if (nlen == 3 && ngx_strncmp(name.data, "day", 3) == 0) {
            v = &day;
            twice = "day= is given twice";

        } else if (nlen == 4 && ngx_strncmp(name.data, "from", 4) == 0) {
            v = &from;
            twice = "from= is given twice";

        } else if (nlen == 2 && ngx_strncmp(name.data, "to", 2) == 0) {
            v = &to;
            twice = "to= is given twice";

        } else if (nlen == 3 && ngx_strncmp(name.data, "key", 3) == 0) {
            v = &key;
            twice = "key= is given twice";

        } else if (nlen == 6 && ngx_strncmp(name.data, "source", 6) == 0) {
            v = &source;
            twice = "source= is given twice";

        } else {
            *error = "unknown query parameter: use day=YYYY-MM-DD, or "
                     "from=YYYY-MM-DD&to=YYYY-MM-DD, and key=NAME or "
                     "source=NAME";
            return NGX_ERROR;
        }

        /* one of each: which of two would count is not the client's guess */

        if (v->data) {
            *error = twice;
            return NGX_ERROR;
        }

        *v = value;
    }

    if (ngx_http_seadragon_usage_args_days(sum, &day, &from, &to, error)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_seadragon_usage_args_filter(r, sum, &key, &source, error);
}


/* day=, or from= and to=; today without them */

static ngx_int_t
ngx_http_seadragon_usage_args_days(ngx_http_seadragon_usage_sum_t *sum,
    ngx_str_t *day, ngx_str_t *from, ngx_str_t *to, char **error)
{
    uint32_t  today;

    today = (uint32_t) (ngx_time() / 86400);

    if (day->data && (from->data || to->data)) {
        *error = "day= and from=/to= do not go together";
        return NGX_ERROR;
    }

    if (day->data) {
        if (seadragon_usage_day_parse((char *) day->data, day->len, &sum->from)
            != 0)
        {
            *error = "day= is not a date: use YYYY-MM-DD (UTC)";
            return NGX_ERROR;
        }

        sum->to = sum->from;

    } else if (from->data || to->data) {
        if (from->data == NULL || to->data == NULL) {
            *error = "a range needs both from= and to=";
            return NGX_ERROR;
        }

        if (seadragon_usage_day_parse((char *) from->data, from->len,
                                      &sum->from)
            != 0
            || seadragon_usage_day_parse((char *) to->data, to->len, &sum->to)
               != 0)
        {
            *error = "from= and to= are dates: use YYYY-MM-DD (UTC)";
            return NGX_ERROR;
        }

        if (sum->from > sum->to) {
            *error = "from= is after to=";
            return NGX_ERROR;
        }

        if (sum->to - sum->from >= NGX_HTTP_SEADRAGON_USAGE_RANGE) {
            *error = "a range has at most 366 days";
            return NGX_ERROR;
        }

    } else {
        sum->from = today;
        sum->to = today;
    }

    return NGX_OK;
}


/* key= or source=: the principal filtered on, "key:NAME" or "source:NAME" */

static ngx_int_t
ngx_http_seadragon_usage_args_filter(ngx_http_request_t *r,
    ngx_http_seadragon_usage_sum_t *sum, ngx_str_t *key, ngx_str_t *source,
    char **error)
{
    ngx_str_t    value;
    ngx_uint_t   max;

    if (key->data && source->data) {
        *error = "key= and source= do not go together";
        return NGX_ERROR;
    }

    if (key->data || source->data) {
        value = key->data ? *key : *source;
        max = key->data ? SEADRAGON_KEY_NAME_LEN - 1
                        : SEADRAGON_KEY_SOURCE_LEN - 1;

        if (!seadragon_name_valid((char *) value.data, value.len, max,
                                  key->data ? "_-.@" : "_-"))
        {
            *error = key->data ? "key= is not a key's name"
                               : "source= is not a source's name";
            return NGX_ERROR;
        }

        sum->filter.len = (key->data ? sizeof("key:") : sizeof("source:")) - 1
                          + value.len;
        sum->filter.data = ngx_pnalloc(r->pool, sum->filter.len);
        if (sum->filter.data == NULL) {
            *error = "out of memory";
            return NGX_ERROR;
        }

        ngx_sprintf(sum->filter.data, "%s%V", key->data ? "key:" : "source:",
                    &value);
    }

    return NGX_OK;
}


static void
ngx_http_seadragon_usage_sum_add(ngx_http_seadragon_usage_sum_t *sum,
    uint32_t day, u_char *p, size_t plen, u_char *m, size_t mlen,
    seadragon_usage_record_t *record)
{
    uint32_t                          hash;
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_seadragon_usage_item_t  *it, **slot;

    if (day < sum->from || day > sum->to || record->requests == 0) {
        return;
    }

    if (sum->filter.len
        && ngx_memn2cmp(p, sum->filter.data, plen, sum->filter.len) != 0)
    {
        return;
    }

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, p, plen);
    ngx_crc32_update(&hash, (u_char *) "", 1);
    ngx_crc32_update(&hash, m, mlen);
    ngx_crc32_final(hash);

    node = sum->tree.root;
    sentinel = sum->tree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        it = (ngx_http_seadragon_usage_item_t *) node;

        rc = ngx_memn2cmp(p, it->principal, plen, it->plen);

        if (rc == 0) {
            rc = ngx_memn2cmp(m, it->model, mlen, it->mlen);
        }

        if (rc == 0) {
            ngx_http_seadragon_usage_record_add(&it->sum, record);
            return;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    it = ngx_pcalloc(sum->pool, sizeof(ngx_http_seadragon_usage_item_t));
    slot = ngx_array_push(&sum->items);

    if (it == NULL || slot == NULL) {
        sum->failed = 1;
        return;
    }

    it->principal = ngx_pnalloc(sum->pool, plen + mlen + 1);
    if (it->principal == NULL) {
        sum->failed = 1;
        sum->items.nelts--;
        return;
    }

    ngx_memcpy(it->principal, p, plen);
    it->plen = plen;
    it->model = it->principal + plen;
    ngx_memcpy(it->model, m, mlen);
    it->mlen = mlen;
    it->sum.version = 1;
    ngx_http_seadragon_usage_record_add(&it->sum, record);

    it->node.key = hash;
    ngx_rbtree_insert(&sum->tree, &it->node);

    *slot = it;
}


/* the items' order: the names' crc32, then the names */

static void
ngx_http_seadragon_usage_item_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t               **p;
    ngx_http_seadragon_usage_item_t  *n, *t;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            n = (ngx_http_seadragon_usage_item_t *) node;
            t = (ngx_http_seadragon_usage_item_t *) temp;

            rc = ngx_memn2cmp(n->principal, t->principal, n->plen, t->plen);

            if (rc == 0) {
                rc = ngx_memn2cmp(n->model, t->model, n->mlen, t->mlen);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
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


/* a store's entry: copied out of the map first, then summed */

static void
ngx_http_seadragon_usage_sum_each(MDB_val *key, MDB_val *value, void *data)
{
    ngx_http_seadragon_usage_sum_t *sum = data;

    size_t                    plen, mlen;
    uint8_t                   kbuf[SEADRAGON_USAGE_KEY_LEN];
    MDB_val                   k;
    uint32_t                  day;
    const char               *p, *m;
    seadragon_usage_record_t  record;

    if (key->mv_size > sizeof(kbuf)
        || seadragon_usage_record(value, &record) != 0)
    {
        sum->corrupted++;
        return;
    }

    ngx_memcpy(kbuf, key->mv_data, key->mv_size);
    k.mv_data = kbuf;
    k.mv_size = key->mv_size;

    if (seadragon_usage_key_parse(&k, &day, &p, &plen, &m, &mlen) != 0) {
        sum->corrupted++;
        return;
    }

    ngx_http_seadragon_usage_sum_add(sum, day, (u_char *) p, plen,
                                     (u_char *) m, mlen, &record);
}


/*
 * What every zone adds: with a store, what it has not written yet
 * (pending, and in a write now); without one, all it counted.  Copied
 * under each zone's lock into memory taken before it.
 */

/*
 * One reading of the store and the zones into sum: NGX_OK; NGX_AGAIN: a
 * write was settled meanwhile, to be read again; NGX_DECLINED: the store
 * cannot be read; NGX_ERROR.
 */

static ngx_int_t
ngx_http_seadragon_usage_collect(ngx_http_request_t *r,
    ngx_http_seadragon_main_conf_t *smcf, ngx_http_seadragon_usage_sum_t *sum,
    uint64_t *unwritten, uint64_t *dropped)
{
    uint64_t  before, after;

    sum->failed = 0;
    sum->corrupted = 0;

    ngx_rbtree_init(&sum->tree, &sum->sentinel,
                    ngx_http_seadragon_usage_item_insert);

    if (ngx_array_init(&sum->items, r->pool, 16,
                       sizeof(ngx_http_seadragon_usage_item_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    before = ngx_http_seadragon_usage_written(smcf);

    if (smcf->store
        && ngx_http_seadragon_store_usage_read(smcf->store,
                                      r->connection->log, sum->from, sum->to,
                                      ngx_http_seadragon_usage_sum_each, sum)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_seadragon_usage_sum_zones(r, smcf, sum, unwritten, dropped,
                                           &after)
        != NGX_OK
        || sum->failed)
    {
        return NGX_ERROR;
    }

    return (before == after || smcf->store == NULL) ? NGX_OK : NGX_AGAIN;
}


static uint64_t
ngx_http_seadragon_usage_written(ngx_http_seadragon_main_conf_t *smcf)
{
    uint64_t                    written;
    ngx_uint_t                  z;
    ngx_http_seadragon_zone_t **zones;

    written = 0;
    zones = smcf->zones.elts;

    for (z = 0; z < smcf->zones.nelts; z++) {
        if (zones[z]->sh == NULL) {
            continue;
        }

        ngx_shmtx_lock(&zones[z]->shpool->mutex);

        if (zones[z]->sh->usage) {
            written += zones[z]->sh->usage->written;
        }

        ngx_shmtx_unlock(&zones[z]->shpool->mutex);
    }

    return written;
}


static ngx_int_t
ngx_http_seadragon_usage_sum_zones(ngx_http_request_t *r,
    ngx_http_seadragon_main_conf_t *smcf, ngx_http_seadragon_usage_sum_t *sum,
    uint64_t *unwritten, uint64_t *dropped, uint64_t *written)
{
    ngx_uint_t                         i, n, room, z;
    ngx_queue_t                       *q;
    ngx_http_seadragon_zone_t        **zones;
    ngx_http_seadragon_usage_shm_t    *usage;
    ngx_http_seadragon_usage_row_t    *row;
    ngx_http_seadragon_usage_batch_t  *copy, *c;

    *unwritten = 0;
    *dropped = 0;
    *written = 0;

    zones = smcf->zones.elts;

    for (z = 0; z < smcf->zones.nelts; z++) {
        if (zones[z]->sh == NULL || zones[z]->sh->usage == NULL) {
            continue;
        }

        room = zones[z]->sh->usage->nrows + 64;

        copy = ngx_palloc(r->pool,
                          room * sizeof(ngx_http_seadragon_usage_batch_t));
        if (copy == NULL) {
            return NGX_ERROR;
        }

        n = 0;

        ngx_shmtx_lock(&zones[z]->shpool->mutex);

        usage = zones[z]->sh->usage;
        *dropped += usage->dropped;
        *written += usage->written;

        for (q = ngx_queue_head(&usage->rows);
             q != ngx_queue_sentinel(&usage->rows) && n < room;
             q = ngx_queue_next(q))
        {
            row = ngx_queue_data(q, ngx_http_seadragon_usage_row_t, link);

            if (row->day < sum->from || row->day > sum->to) {
                continue;
            }

            c = &copy[n];

            if (smcf->store) {
                c->delta = row->pending;
                ngx_http_seadragon_usage_record_add(&c->delta, &row->writing);

            } else {
                c->delta = row->total;
            }

            if (c->delta.requests == 0) {
                continue;
            }

            c->day = row->day;
            c->plen = row->plen;
            c->mlen = row->mlen;
            ngx_memcpy(c->principal, row->principal, row->plen);
            ngx_memcpy(c->model, row->model, row->mlen);
            n++;
        }

        ngx_shmtx_unlock(&zones[z]->shpool->mutex);

        for (i = 0; i < n; i++) {
            c = &copy[i];

            if (smcf->store) {
                *unwritten += c->delta.requests;
            }

            ngx_http_seadragon_usage_sum_add(sum, c->day, c->principal,
                                             c->plen, c->model, c->mlen,
                                             &c->delta);
        }
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_seadragon_usage_item_cmp(const void *one, const void *two)
{
    ngx_int_t                         rc;
    ngx_http_seadragon_usage_item_t  *a, *b;

    a = *(ngx_http_seadragon_usage_item_t **) one;
    b = *(ngx_http_seadragon_usage_item_t **) two;

    rc = ngx_memn2cmp(a->principal, b->principal, a->plen, b->plen);
    if (rc) {
        return (int) rc;
    }

    return (int) ngx_memn2cmp(a->model, b->model, a->mlen, b->mlen);
}


static int ngx_libc_cdecl
ngx_http_seadragon_usage_model_cmp(const void *one, const void *two)
{
    ngx_int_t                         rc;
    ngx_http_seadragon_usage_item_t  *a, *b;

    a = *(ngx_http_seadragon_usage_item_t **) one;
    b = *(ngx_http_seadragon_usage_item_t **) two;

    rc = ngx_memn2cmp(a->model, b->model, a->mlen, b->mlen);
    if (rc) {
        return (int) rc;
    }

    return (int) ngx_memn2cmp(a->principal, b->principal, a->plen, b->plen);
}


/*
 * The metrics of usage, in Prometheus' text format, for the metrics
 * handler: tokens by source, model and kind; Ollama's load time by
 * model; the tokens per second of the answers by model; what was not
 * kept.  The zone's figures are copied under its lock first.
 */

ngx_int_t
ngx_http_seadragon_usage_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out)
{
    u_char                            *p, *last, *start;
    size_t                             len;
    uint64_t                           dropped, dropped_metrics;
    ngx_uint_t                         i, nmodels, nsources;
    ngx_http_seadragon_usage_shm_t    *usage;
    ngx_http_seadragon_usage_model_t  *models, *m;
    ngx_http_seadragon_shm_source_t   *src;

    nmodels = 0;
    dropped = 0;
    dropped_metrics = 0;

    models = ngx_palloc(r->pool, (NGX_HTTP_SEADRAGON_USAGE_MODELS + 1)
                                 * sizeof(ngx_http_seadragon_usage_model_t));
    src = ngx_palloc(r->pool, NGX_HTTP_SEADRAGON_MAX_SOURCES
                              * sizeof(ngx_http_seadragon_shm_source_t));
    if (models == NULL || src == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    nsources = zone->sh->nsources;
    ngx_memcpy(src, zone->sh->sources,
               nsources * sizeof(ngx_http_seadragon_shm_source_t));

    usage = zone->sh->usage;

    if (usage) {
        for (i = 0; i <= NGX_HTTP_SEADRAGON_USAGE_MODELS; i++) {
            if (usage->models[i]) {
                models[nmodels++] = *usage->models[i];
            }
        }

        dropped = usage->dropped;
        dropped_metrics = usage->dropped_metrics;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    /* a line has the names, escaped, and numbers: 512 bytes at most */

    len = 2048 + nmodels * (2 * nsources + NGX_HTTP_SEADRAGON_USAGE_TPS + 4)
                 * (512 + zn->len);

    start = ngx_pnalloc(r->pool, len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;
    last = start + len;

    p = ngx_http_seadragon_usage_metrics_tokens(p, last, zn, models, nmodels,
                                                src, nsources);

    p = ngx_slprintf(p, last, "# HELP seadragon_model_load_seconds_total "
                     "Time Ollama spent loading a model for the answers, "
                     "by model.\n"
                     "# TYPE seadragon_model_load_seconds_total counter\n");

    for (i = 0; i < nmodels; i++) {
        m = &models[i];

        p = ngx_slprintf(p, last, "seadragon_model_load_seconds_total{zone="
                         "\"%V\",model=\"", zn);
        p = ngx_http_seadragon_usage_label(p, last, m->model, m->mlen);
        p = ngx_slprintf(p, last, "\"} %uL.%03uL\n", m->load_ms / 1000,
                         m->load_ms % 1000);
    }

    p = ngx_http_seadragon_usage_metrics_tps(p, last, zn, models, nmodels);

    p = ngx_slprintf(p, last, "# HELP seadragon_usage_dropped_total Answers "
                     "whose usage the zone had no room to keep, by what.\n"
                     "# TYPE seadragon_usage_dropped_total counter\n"
                     "seadragon_usage_dropped_total{zone=\"%V\","
                     "what=\"usage\"} %uL\n"
                     "seadragon_usage_dropped_total{zone=\"%V\","
                     "what=\"metrics\"} %uL\n",
                     zn, dropped, zn, dropped_metrics);

    if (p == last) {
        return NGX_ERROR;
    }

    out->data = start;
    out->len = p - start;

    return NGX_OK;
}


/* seadragon_tokens_total: by source, model and kind */

static u_char *
ngx_http_seadragon_usage_metrics_tokens(u_char *p, u_char *last,
    ngx_str_t *zn, ngx_http_seadragon_usage_model_t *models,
    ngx_uint_t nmodels, ngx_http_seadragon_shm_source_t *src,
    ngx_uint_t nsources)
{
    ngx_uint_t                         i, s, b;
    ngx_http_seadragon_usage_model_t  *m;

    static char  *kinds[] = { "prompt", "completion" };

    p = ngx_slprintf(p, last, "# HELP seadragon_tokens_total Tokens of "
                     "Ollama's answers, by source, model and kind.\n"
                     "# TYPE seadragon_tokens_total counter\n");

    for (i = 0; i < nmodels; i++) {
        m = &models[i];

        for (s = 0; s < nsources; s++) {
            if (m->tokens[s][0] == 0 && m->tokens[s][1] == 0) {
                continue;
            }

            for (b = 0; b < 2; b++) {
                p = ngx_slprintf(p, last, "seadragon_tokens_total{zone=\"%V\","
                                 "source=\"%*s\",model=\"", zn,
                                 ngx_min(src[s].name_len,
                                         NGX_HTTP_SEADRAGON_NAME_LEN),
                                 src[s].name);
                p = ngx_http_seadragon_usage_label(p, last, m->model,
                                                   m->mlen);
                p = ngx_slprintf(p, last, "\",kind=\"%s\"} %uL\n", kinds[b],
                                 m->tokens[s][b]);
            }
        }
    }

    return p;
}


/* seadragon_generation_tokens_per_second: the histogram, by model */

static u_char *
ngx_http_seadragon_usage_metrics_tps(u_char *p, u_char *last, ngx_str_t *zn,
    ngx_http_seadragon_usage_model_t *models, ngx_uint_t nmodels)
{
    uint64_t                           cumulative;
    ngx_uint_t                         i, b;
    ngx_http_seadragon_usage_model_t  *m;

    p = ngx_slprintf(p, last, "# HELP seadragon_generation_tokens_per_second "
                     "Tokens per second of Ollama's answers (completion "
                     "tokens over generation time), by model.\n"
                     "# TYPE seadragon_generation_tokens_per_second "
                     "histogram\n");

    for (i = 0; i < nmodels; i++) {
        m = &models[i];
        cumulative = 0;

        for (b = 0; b <= NGX_HTTP_SEADRAGON_USAGE_TPS; b++) {
            p = ngx_slprintf(p, last, "seadragon_generation_tokens_per_second"
                             "_bucket{zone=\"%V\",model=\"", zn);
            p = ngx_http_seadragon_usage_label(p, last, m->model, m->mlen);

            if (b == NGX_HTTP_SEADRAGON_USAGE_TPS) {
                p = ngx_slprintf(p, last, "\",le=\"+Inf\"} %uL\n",
                                 m->tps_count);
                break;
            }

            cumulative += m->tps[b];

            p = ngx_slprintf(p, last, "\",le=\"%ui\"} %uL\n",
                             ngx_http_seadragon_usage_tps_buckets[b],
                             cumulative);
        }

        p = ngx_slprintf(p, last, "seadragon_generation_tokens_per_second"
                         "_sum{zone=\"%V\",model=\"", zn);
        p = ngx_http_seadragon_usage_label(p, last, m->model, m->mlen);
        p = ngx_slprintf(p, last, "\"} %uL.%03uL\n", m->tps_sum / 1000,
                         m->tps_sum % 1000);

        p = ngx_slprintf(p, last, "seadragon_generation_tokens_per_second"
                         "_count{zone=\"%V\",model=\"", zn);
        p = ngx_http_seadragon_usage_label(p, last, m->model, m->mlen);
        p = ngx_slprintf(p, last, "\"} %uL\n", m->tps_count);
    }

    return p;
}


/*
 * A label's value: "\", '"' and a newline escaped (the tenants' too);
 * a byte that is not part of valid UTF-8 (a tenant= value is a client's
 * header, a name may be cut inside a character) is written as U+FFFD,
 * since the text format is UTF-8.
 */

u_char *
ngx_http_seadragon_usage_label(u_char *p, u_char *last, u_char *text,
    size_t len)
{
    size_t     i, n;
    u_char    *s;
    uint32_t   u;

    for (i = 0; i < len && p + 2 <= last; i++) {
        switch (text[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = text[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:

            if (text[i] < 0x80) {
                *p++ = text[i];
                break;
            }

            s = &text[i];
            u = ngx_utf8_decode(&s, len - i);

            if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
                s = (u_char *) "\xef\xbf\xbd";
                n = 3;

            } else {
                n = s - &text[i];
                s = &text[i];
                i += n - 1;
            }

            if ((size_t) (last - p) < n) {
                return p;
            }

            p = ngx_cpymem(p, s, n);
        }
    }

    return p;
}
