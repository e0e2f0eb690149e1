
/*
 * Copyright (C) The Seadragon authors
 *
 * The arithmetic of a key's limits and the zone's tree of keys with
 * limits: pure work on memory the caller owns and has locked, with the
 * time given, so that it is unit-tested on its own (t/unit/limit_test.c)
 * and a test drives the clock instead of waiting for it.
 *
 * Requests per minute count in a window that opens with the first
 * request after the last window closed and lasts 60 seconds; tokens
 * count per UTC day; the concurrent count is what was taken and not yet
 * given back.  A refused request takes nothing.
 */


#include "ngx_http_seadragon_module.h"


#define NGX_HTTP_SEADRAGON_LIMIT_MINUTE           60
#define NGX_HTTP_SEADRAGON_LIMIT_DAY              86400
/* a request parked or running ends in seconds or minutes: ask again soon */
#define NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT_RETRY 2


static void ngx_http_seadragon_limit_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


/* a new day starts the day's tokens at 0 */

static void
ngx_http_seadragon_limit_day(ngx_http_seadragon_limit_state_t *state,
    time_t now)
{
    uint64_t  day;

    day = (uint64_t) now / NGX_HTTP_SEADRAGON_LIMIT_DAY;

    if (state->day != day) {
        state->day = day;
        state->day_tokens = 0;
    }
}


/*
 * A request of the key: NGX_HTTP_SEADRAGON_LIMIT_NONE and the request
 * counted (in the minute, and as running), or the limit that refuses it
 * and in *retry_after the seconds until that limit frees (at least 1).
 */

ngx_uint_t
ngx_http_seadragon_limit_take(ngx_http_seadragon_limit_state_t *state,
    ngx_http_seadragon_limits_t *limits, time_t now, time_t *retry_after)
{
    time_t  left;

    ngx_http_seadragon_limit_day(state, now);

    if (limits->tokens_per_day
        && state->day_tokens >= limits->tokens_per_day)
    {
        *retry_after = NGX_HTTP_SEADRAGON_LIMIT_DAY
                       - now % NGX_HTTP_SEADRAGON_LIMIT_DAY;
        return NGX_HTTP_SEADRAGON_LIMIT_TOKENS;
    }

    /* the window is over, or the clock went back past its start */

    if (state->minute_start
        && (now - state->minute_start >= NGX_HTTP_SEADRAGON_LIMIT_MINUTE
            || now < state->minute_start))
    {
        state->minute_start = 0;
        state->minute_requests = 0;
    }

    if (limits->rpm && state->minute_start
        && state->minute_requests >= limits->rpm)
    {
        left = state->minute_start + NGX_HTTP_SEADRAGON_LIMIT_MINUTE - now;
        *retry_after = left > 0 ? left : 1;
        return NGX_HTTP_SEADRAGON_LIMIT_RPM;
    }

    if (limits->max_concurrent && state->running >= limits->max_concurrent) {
        *retry_after = NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT_RETRY;
        return NGX_HTTP_SEADRAGON_LIMIT_CONCURRENT;
    }

    if (state->minute_start == 0) {
        state->minute_start = now;
    }

    state->minute_requests++;
    state->running++;

    return NGX_HTTP_SEADRAGON_LIMIT_NONE;
}


/*
 * A request that took its place has ended: it is no longer running, and
 * what it used counts on the day it ended (an answer that ran past
 * midnight counts on the new day).
 */

void
ngx_http_seadragon_limit_give(ngx_http_seadragon_limit_state_t *state,
    uint64_t tokens, time_t now)
{
    if (state->running) {
        state->running--;
    }

    ngx_http_seadragon_limit_day(state, now);

    state->day_tokens = (tokens > UINT64_MAX - state->day_tokens)
                        ? UINT64_MAX : state->day_tokens + tokens;
}


/* the tokens of the day now */

uint64_t
ngx_http_seadragon_limit_tokens(ngx_http_seadragon_limit_state_t *state,
    time_t now)
{
    return (state->day == (uint64_t) now / NGX_HTTP_SEADRAGON_LIMIT_DAY)
           ? state->day_tokens : 0;
}


/*
 * The keys with limits, by name in a red-black tree whose key is a hash
 * of the name (FNV-1a), as the clients of the queue.  The tree is made
 * with its first key, so a zone needs nothing for it until a key has
 * limits; its insert function is set before each insertion, as a reload
 * may load the module at another address.
 */

static void
ngx_http_seadragon_limit_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_seadragon_limit_t   *l, *lt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            l = (ngx_http_seadragon_limit_t *) node;
            lt = (ngx_http_seadragon_limit_t *) temp;

            p = (ngx_http_seadragon_name_cmp(l->name, l->len, lt->name,
                                              lt->len) < 0)
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


void
ngx_http_seadragon_limit_init(ngx_http_seadragon_shctx_t *sh)
{
    ngx_rbtree_init(&sh->limits, &sh->limits_sentinel,
                    ngx_http_seadragon_limit_insert_value);
    sh->nlimits = 0;
}


ngx_http_seadragon_limit_t *
ngx_http_seadragon_limit_find(ngx_http_seadragon_shctx_t *sh, u_char *name,
    size_t len)
{
    ngx_int_t                    rc;
    ngx_rbtree_key_t             hash;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_seadragon_limit_t  *l;

    if (sh->limits.root == NULL) {
        return NULL;        /* no key has had limits yet */
    }

    hash = ngx_http_seadragon_name_hash(NGX_HTTP_SEADRAGON_FNV, name, len);

    node = sh->limits.root;
    sentinel = sh->limits.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        l = (ngx_http_seadragon_limit_t *) node;

        rc = ngx_http_seadragon_name_cmp(name, len, l->name, l->len);

        if (rc == 0) {
            return l;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * "limit" is the caller's memory, for a name of at most
 * SEADRAGON_KEY_NAME_LEN bytes not in the tree; tokens are what the key
 * used today before the zone knew it (the store's count).
 */

void
ngx_http_seadragon_limit_insert(ngx_http_seadragon_shctx_t *sh,
    ngx_http_seadragon_limit_t *limit, u_char *name, size_t len,
    uint64_t tokens, time_t now)
{
    if (sh->limits.root == NULL) {
        ngx_http_seadragon_limit_init(sh);
    }

    ngx_memzero(limit, sizeof(ngx_http_seadragon_limit_t));
    ngx_memcpy(limit->name, name, len);
    limit->len = len;
    limit->node.key = ngx_http_seadragon_name_hash(NGX_HTTP_SEADRAGON_FNV,
                                                   name, len);

    limit->state.day = (uint64_t) now / NGX_HTTP_SEADRAGON_LIMIT_DAY;
    limit->state.day_tokens = tokens;

    sh->limits.insert = ngx_http_seadragon_limit_insert_value;
    ngx_rbtree_insert(&sh->limits, &limit->node);
    sh->nlimits++;
}
