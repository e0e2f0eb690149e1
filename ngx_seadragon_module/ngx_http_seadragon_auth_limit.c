
/*
 * Copyright (C) The Seadragon authors
 *
 * Login attempts limited (issue 16): seadragon_auth's attempts=N/TIME
 * (default 10/1m) counts each login whose form is accepted (it goes on
 * to the store and its password hash), per client address (after
 * realip) and, apart, per user name as sent; a login of an address or a
 * name that has used its N attempts is answered 429 with Retry-After
 * before the store is read or any hash runs.  A name no user has counts
 * as a known one does, so the answers say nothing of which names exist.
 * A successful login clears its name's count, not its address's.
 *
 * The window is fixed and opens with the first attempt after the last
 * one closed, as a key's rpm (ngx_http_seadragon_limit_window.c): one
 * record is a start and a count, its Retry-After is exact (the window's
 * end), and a limited login extends nothing.  Across a window's end an
 * address may try 2N times in a short span, never more than N a window
 * in the long run.
 *
 * The counts are kept in the shared zone of seadragon_auth, under its
 * lock, so every worker sees one count: at most
 * NGX_HTTP_SEADRAGON_LOGIN_RECORDS records, keyed by SHA-256 of the
 * address or the name (names are not kept in clear, and an invalid or
 * 4 KB name costs what a short one does), in a tree and a list by last
 * use; the least recently used record makes room for a new one, an
 * expired one first.  A zone short of memory counts nothing new: the
 * login is served, uncounted, and that is logged and counted
 * (seadragon_logins_untracked_total).
 *
 * The zone also counts the logins' results, for the metrics and GET
 * stats: ok, refused (401), limited (429), inactive (403).
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/evp.h>


#define NGX_HTTP_SEADRAGON_LOGIN_RECORDS     4096
#define NGX_HTTP_SEADRAGON_LOGIN_DIGEST      32
#define NGX_HTTP_SEADRAGON_LOGIN_MAX         100000
#define NGX_HTTP_SEADRAGON_LOGIN_PERIOD_MAX  86400
/* a worker says at most this often that the zone is short */
#define NGX_HTTP_SEADRAGON_LOGIN_LOG_EVERY   60


typedef struct {
    ngx_rbtree_node_t                node;        /* key: the digest's */
    ngx_queue_t                      lru;         /* oldest use first */
    time_t                           start;       /* the window's; 0 none */
    uint32_t                         count;       /* attempts in it */
    u_char                           digest[NGX_HTTP_SEADRAGON_LOGIN_DIGEST];
} ngx_http_seadragon_login_count_t;


struct ngx_http_seadragon_logins_s {
    ngx_rbtree_t                     tree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      lru;
    ngx_uint_t                       n;
    uint64_t                         results[NGX_HTTP_SEADRAGON_LOGINS_RESULTS];
    uint64_t                         untracked;   /* zone short */
};

typedef struct ngx_http_seadragon_logins_s  ngx_http_seadragon_logins_t;


static ngx_int_t ngx_http_seadragon_auth_limit_digest(u_char kind,
    u_char *data, size_t len, u_char *digest);
static ngx_uint_t ngx_http_seadragon_auth_limit_take_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_logins_t *logins,
    u_char *da, u_char *du, ngx_http_seadragon_auth_conf_t *acf, time_t now,
    time_t *retry_after, ngx_uint_t *untracked);
static ngx_http_seadragon_logins_t *ngx_http_seadragon_auth_limit_shm_locked(
    ngx_http_seadragon_zone_t *zone);
static ngx_http_seadragon_login_count_t *
    ngx_http_seadragon_auth_limit_find_locked(
    ngx_http_seadragon_logins_t *logins, u_char *digest);
static ngx_http_seadragon_login_count_t *
    ngx_http_seadragon_auth_limit_new_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_logins_t *logins, u_char *digest, time_t now,
    time_t period, ngx_http_seadragon_login_count_t *keep);
static void ngx_http_seadragon_auth_limit_free_locked(
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_logins_t *logins,
    ngx_http_seadragon_login_count_t *c);
static ngx_uint_t ngx_http_seadragon_auth_limit_over(
    ngx_http_seadragon_login_count_t *c, ngx_uint_t attempts, time_t period,
    time_t now, time_t *retry_after);
static void ngx_http_seadragon_auth_limit_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);


static char *ngx_http_seadragon_auth_limit_results[] = {
    "ok", "refused", "limited", "inactive"
};


/* attempts=N/TIME or attempts=off, in the directive's arguments */

ngx_int_t
ngx_http_seadragon_auth_limit_conf(ngx_conf_t *cf,
    ngx_http_seadragon_auth_conf_t *acf, ngx_str_t *value)
{
    u_char     *slash;
    time_t      period;
    ngx_int_t   n;
    ngx_str_t   arg, time;

    arg.data = value->data + sizeof("attempts=") - 1;
    arg.len = value->len - (sizeof("attempts=") - 1);

    if (arg.len == 3 && ngx_strncmp(arg.data, "off", 3) == 0) {
        acf->attempts = 0;
        acf->attempts_period = 0;
        return NGX_OK;
    }

    slash = ngx_strlchr(arg.data, arg.data + arg.len, '/');

    n = NGX_ERROR;
    period = (time_t) NGX_ERROR;

    if (slash) {
        n = ngx_atoi(arg.data, slash - arg.data);

        time.data = slash + 1;
        time.len = arg.data + arg.len - time.data;

        period = ngx_parse_time(&time, 1);
    }

    if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_SEADRAGON_LOGIN_MAX
        || period == (time_t) NGX_ERROR || period < 1
        || period > NGX_HTTP_SEADRAGON_LOGIN_PERIOD_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": attempts= is how many "
                           "logins an address and a user name may attempt "
                           "in a time, N/TIME with N from 1 to 100000 and "
                           "TIME from 1s to 1d (\"10/1m\", \"5/30s\"), or "
                           "\"off\"", value);
        return NGX_ERROR;
    }

    acf->attempts = n;
    acf->attempts_period = period;

    return NGX_OK;
}


/*
 * A login about to be hashed: NGX_OK, counted under its address and its
 * name; NGX_DECLINED, over the limit, with Retry-After set and the 429
 * the caller's; NGX_ERROR.
 */

ngx_int_t
ngx_http_seadragon_auth_limit_take(ngx_http_request_t *r, ngx_str_t *name)
{
    time_t                          now, retry_after;
    ngx_uint_t                      over, untracked;
    ngx_table_elt_t                *h;
    ngx_http_seadragon_zone_t      *zone;
    ngx_http_seadragon_logins_t    *logins;
    ngx_http_seadragon_loc_conf_t  *slcf;
    u_char                          da[NGX_HTTP_SEADRAGON_LOGIN_DIGEST];
    u_char                          du[NGX_HTTP_SEADRAGON_LOGIN_DIGEST];

    static time_t                   logged;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (slcf->auth == NULL || slcf->auth->attempts == 0) {
        return NGX_OK;
    }

    if (ngx_http_seadragon_auth_limit_digest('a',
                                            r->connection->addr_text.data,
                                            r->connection->addr_text.len, da)
        != NGX_OK
        || ngx_http_seadragon_auth_limit_digest('u', name->data, name->len,
                                                du)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone = slcf->auth->zone;
    now = ngx_time();
    retry_after = 0;
    over = 0;
    untracked = 2;

    ngx_shmtx_lock(&zone->shpool->mutex);

    logins = ngx_http_seadragon_auth_limit_shm_locked(zone);

    if (logins) {
        over = ngx_http_seadragon_auth_limit_take_locked(zone, logins, da, du,
                                                     slcf->auth, now,
                                                     &retry_after,
                                                     &untracked);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (over) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon auth: too many login attempts %s, retry "
                      "after %T s",
                      over == 3 ? "of the address and of the user name"
                      : over == 1 ? "of the address" : "of the user name",
                      retry_after);

        h = ngx_http_seadragon_header_add(r, "Retry-After", NULL, 0);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%T", retry_after)
                       - h->value.data;

        return NGX_DECLINED;
    }

    if (untracked && now - logged >= NGX_HTTP_SEADRAGON_LOGIN_LOG_EVERY) {
        logged = now;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "seadragon zone \"%V\" is short of memory for the "
                      "counts of login attempts: the login is served "
                      "without its count; give the zone more",
                      &zone->name);
    }

    return NGX_OK;
}


/*
 * Under the lock: the address's and the name's records, found or made
 * (NULL: no memory, counted as untracked).  0, the attempt counted in
 * both; or over the limit, 1 the address, 2 the name, 3 both, with
 * *retry_after the longer wait, and nothing counted but the refusal.
 */

static ngx_uint_t
ngx_http_seadragon_auth_limit_take_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_logins_t *logins, u_char *da, u_char *du,
    ngx_http_seadragon_auth_conf_t *acf, time_t now, time_t *retry_after,
    ngx_uint_t *untracked)
{
    ngx_uint_t                         i, over;
    ngx_http_seadragon_login_count_t  *c[2];

    c[0] = NULL;
    over = 0;

    for (i = 0; i < 2; i++) {
        c[i] = ngx_http_seadragon_auth_limit_find_locked(logins,
                                                         i ? du : da);
        if (c[i] == NULL) {
            c[i] = ngx_http_seadragon_auth_limit_new_locked(zone, logins,
                                                    i ? du : da, now,
                                                    acf->attempts_period,
                                                    i ? c[0] : NULL);
        }

        if (c[i] == NULL) {
            continue;
        }

        /* put last in the list, so that making the other cannot evict it */

        ngx_queue_remove(&c[i]->lru);
        ngx_queue_insert_tail(&logins->lru, &c[i]->lru);

        if (ngx_http_seadragon_auth_limit_over(c[i], acf->attempts,
                                               acf->attempts_period, now,
                                               retry_after))
        {
            over |= 1 << i;
        }
    }

    if (over) {
        logins->results[NGX_HTTP_SEADRAGON_LOGINS_LIMITED]++;
        *untracked = 0;
        return over;
    }

    *untracked = 0;

    for (i = 0; i < 2; i++) {
        if (c[i] == NULL) {
            (*untracked)++;
            continue;
        }

        if (c[i]->count == 0) {
            c[i]->start = now;
        }

        c[i]->count++;
    }

    logins->untracked += *untracked;

    return 0;
}


/*
 * A login's answer, counted by its result; a successful one (name given)
 * clears its name's attempts.
 */

void
ngx_http_seadragon_auth_limit_result(ngx_http_request_t *r, ngx_str_t *name,
    ngx_uint_t result)
{
    ngx_uint_t                         clear;
    ngx_http_seadragon_zone_t         *zone;
    ngx_http_seadragon_logins_t       *logins;
    ngx_http_seadragon_loc_conf_t     *slcf;
    ngx_http_seadragon_login_count_t  *u;
    u_char                             du[NGX_HTTP_SEADRAGON_LOGIN_DIGEST];

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    if (slcf->auth == NULL || result >= NGX_HTTP_SEADRAGON_LOGINS_RESULTS) {
        return;
    }

    zone = slcf->auth->zone;

    clear = (name != NULL
             && ngx_http_seadragon_auth_limit_digest('u', name->data,
                                                     name->len, du)
                == NGX_OK);

    ngx_shmtx_lock(&zone->shpool->mutex);

    logins = ngx_http_seadragon_auth_limit_shm_locked(zone);

    if (logins) {
        logins->results[result]++;

        u = clear ? ngx_http_seadragon_auth_limit_find_locked(logins, du)
                  : NULL;

        if (u) {
            ngx_http_seadragon_auth_limit_free_locked(zone, logins, u);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* the zone's results, as GET stats and the metrics show them */

void
ngx_http_seadragon_auth_limit_counts(ngx_http_seadragon_zone_t *zone,
    uint64_t *counts, uint64_t *untracked, ngx_uint_t *records)
{
    ngx_http_seadragon_logins_t  *logins;

    ngx_memzero(counts, NGX_HTTP_SEADRAGON_LOGINS_RESULTS * sizeof(uint64_t));
    *untracked = 0;
    *records = 0;

    if (zone->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    logins = zone->sh->logins;

    if (logins) {
        ngx_memcpy(counts, logins->results,
                   NGX_HTTP_SEADRAGON_LOGINS_RESULTS * sizeof(uint64_t));
        *untracked = logins->untracked;
        *records = logins->n;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


ngx_int_t
ngx_http_seadragon_auth_limit_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out)
{
    u_char      *p, *last;
    size_t       len;
    uint64_t     counts[NGX_HTTP_SEADRAGON_LOGINS_RESULTS], untracked;
    ngx_uint_t   i, records;

    ngx_http_seadragon_auth_limit_counts(zone, counts, &untracked, &records);

    len = 1024 + 8 * (zn->len + 64);

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    last = p + len;

    p = ngx_slprintf(p, last, "# HELP seadragon_logins_total Logins at the "
                     "zone's seadragon_auth locations, by result: ok, "
                     "refused (401), limited (429, too many attempts), "
                     "inactive (403, a disabled user).\n"
                     "# TYPE seadragon_logins_total counter\n");

    for (i = 0; i < NGX_HTTP_SEADRAGON_LOGINS_RESULTS; i++) {
        p = ngx_slprintf(p, last, "seadragon_logins_total{zone=\"%V\","
                         "result=\"%s\"} %uL\n", zn,
                         ngx_http_seadragon_auth_limit_results[i], counts[i]);
    }

    p = ngx_slprintf(p, last, "# HELP seadragon_logins_untracked_total "
                     "Counts of login attempts not kept because the zone "
                     "was short of memory (the login was served).\n"
                     "# TYPE seadragon_logins_untracked_total counter\n"
                     "seadragon_logins_untracked_total{zone=\"%V\"} %uL\n"
                     "# HELP seadragon_login_records Addresses and user "
                     "names whose login attempts the zone counts now.\n"
                     "# TYPE seadragon_login_records gauge\n"
                     "seadragon_login_records{zone=\"%V\"} %ui\n",
                     zn, untracked, zn, records);

    out->len = p - out->data;

    return NGX_OK;
}


/* SHA-256 of the kind ('a' an address, 'u' a name) and the bytes */

static ngx_int_t
ngx_http_seadragon_auth_limit_digest(u_char kind, u_char *data, size_t len,
    u_char *digest)
{
    int            ok;
    unsigned int   n;
    EVP_MD_CTX    *md;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL)
         && EVP_DigestUpdate(md, &kind, 1)
         && (len == 0 || EVP_DigestUpdate(md, data, len))
         && EVP_DigestFinal_ex(md, digest, &n);

    EVP_MD_CTX_free(md);

    return (ok && n == NGX_HTTP_SEADRAGON_LOGIN_DIGEST) ? NGX_OK : NGX_ERROR;
}


/* the zone's records, made with the first login; NULL: no memory */

static ngx_http_seadragon_logins_t *
ngx_http_seadragon_auth_limit_shm_locked(ngx_http_seadragon_zone_t *zone)
{
    ngx_http_seadragon_logins_t  *logins;

    logins = zone->sh->logins;

    if (logins) {
        logins->tree.insert = ngx_http_seadragon_auth_limit_insert_value;
        return logins;
    }

    logins = ngx_slab_calloc_locked(zone->shpool,
                                    sizeof(ngx_http_seadragon_logins_t));
    if (logins == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&logins->tree, &logins->sentinel,
                    ngx_http_seadragon_auth_limit_insert_value);
    ngx_queue_init(&logins->lru);

    zone->sh->logins = logins;

    return logins;
}


static ngx_http_seadragon_login_count_t *
ngx_http_seadragon_auth_limit_find_locked(ngx_http_seadragon_logins_t *logins,
    u_char *digest)
{
    ngx_int_t                          rc;
    ngx_rbtree_key_t                   key;
    ngx_rbtree_node_t                 *node, *sentinel;
    ngx_http_seadragon_login_count_t  *c;

    ngx_memcpy(&key, digest, sizeof(ngx_rbtree_key_t));

    node = logins->tree.root;
    sentinel = logins->tree.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        c = (ngx_http_seadragon_login_count_t *) node;

        rc = ngx_memcmp(digest, c->digest, NGX_HTTP_SEADRAGON_LOGIN_DIGEST);

        if (rc == 0) {
            return c;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * A new record: the least recently used ones make room, expired ones
 * (up to two) always, one still counting when the records are all taken,
 * never "keep".  NULL: the zone has no page to spare for it.
 */

static ngx_http_seadragon_login_count_t *
ngx_http_seadragon_auth_limit_new_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_logins_t *logins, u_char *digest, time_t now,
    time_t period, ngx_http_seadragon_login_count_t *keep)
{
    ngx_uint_t                         i;
    ngx_queue_t                       *q;
    ngx_http_seadragon_login_count_t  *c;

    for (i = 0; i < 3 && !ngx_queue_empty(&logins->lru); i++) {
        q = ngx_queue_head(&logins->lru);
        c = ngx_queue_data(q, ngx_http_seadragon_login_count_t, lru);

        if (c == keep) {
            break;
        }

        /* the first two if they expired, a third only for room */

        if ((i == 2 || (c->count && now - c->start < period
                        && now >= c->start))
            && logins->n < NGX_HTTP_SEADRAGON_LOGIN_RECORDS)
        {
            break;
        }

        ngx_http_seadragon_auth_limit_free_locked(zone, logins, c);
    }

    if (logins->n >= NGX_HTTP_SEADRAGON_LOGIN_RECORDS
        || !ngx_http_seadragon_zone_spare(zone))
    {
        return NULL;
    }

    c = ngx_slab_alloc_locked(zone->shpool,
                              sizeof(ngx_http_seadragon_login_count_t));
    if (c == NULL) {
        return NULL;
    }

    ngx_memzero(c, sizeof(ngx_http_seadragon_login_count_t));
    ngx_memcpy(c->digest, digest, NGX_HTTP_SEADRAGON_LOGIN_DIGEST);
    ngx_memcpy(&c->node.key, digest, sizeof(ngx_rbtree_key_t));

    ngx_rbtree_insert(&logins->tree, &c->node);
    ngx_queue_insert_tail(&logins->lru, &c->lru);
    logins->n++;

    return c;
}


static void
ngx_http_seadragon_auth_limit_free_locked(ngx_http_seadragon_zone_t *zone,
    ngx_http_seadragon_logins_t *logins, ngx_http_seadragon_login_count_t *c)
{
    ngx_rbtree_delete(&logins->tree, &c->node);
    ngx_queue_remove(&c->lru);
    logins->n--;

    ngx_slab_free_locked(zone->shpool, c);
}


/*
 * Whether a record has used its attempts in its window; a window that
 * is over (or a clock set back before it) starts again at 0.
 */

static ngx_uint_t
ngx_http_seadragon_auth_limit_over(ngx_http_seadragon_login_count_t *c,
    ngx_uint_t attempts, time_t period, time_t now, time_t *retry_after)
{
    time_t  left;

    if (c->count && (now - c->start >= period || now < c->start)) {
        c->count = 0;
        c->start = 0;
    }

    if (c->count < attempts) {
        return 0;
    }

    left = c->start + period - now;

    if (left < 1) {
        left = 1;
    }

    if (left > *retry_after) {
        *retry_after = left;
    }

    return 1;
}


/* by the digest's first bytes, then all of it (the insert of every load) */

static void
ngx_http_seadragon_auth_limit_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                **p;
    ngx_http_seadragon_login_count_t  *c, *ct;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            c = (ngx_http_seadragon_login_count_t *) node;
            ct = (ngx_http_seadragon_login_count_t *) temp;

            p = (ngx_memcmp(c->digest, ct->digest,
                            NGX_HTTP_SEADRAGON_LOGIN_DIGEST) < 0)
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
