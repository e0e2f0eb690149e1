
/*
 * Copyright (C) The Seadragon authors
 *
 * Which models are resident on the machine, kept in the zone (its lock
 * held by the caller), with no request in sight: unit-testable like the
 * queue.  Three sources feed it:
 *
 * - every dispatch (resident_dispatch()): the model enters the gate's
 *   view, the most recently used; beyond the zone's loaded= models, the
 *   least recently used goes out.  A dispatch of a model that was not in
 *   the view is a predicted swap;
 * - every answer's end (resident_answer()): a load_duration of
 *   NGX_HTTP_SEADRAGON_LOAD_MS or more is a load, a swap seen; the model
 *   is resident on that server and in the gate's view;
 * - Ollama's /api/ps (resident_ps()): what a server holds, exactly; the
 *   gate's view drops what it does not list (unless dispatched in the
 *   last NGX_HTTP_SEADRAGON_PS_GRACE ms: the listing may predate it).
 *
 * The counts per model (sh->resident.swaps) never forget a model; beyond
 * NGX_HTTP_SEADRAGON_SWAP_MODELS names, the last slot, "other", counts
 * the rest.
 */


#include "ngx_http_seadragon_module.h"


/* a model dispatched this recently stays in the view whatever /api/ps says */
#define NGX_HTTP_SEADRAGON_PS_GRACE  2000


static size_t ngx_http_seadragon_resident_whole(u_char *p, size_t n);
static ngx_uint_t ngx_http_seadragon_resident_loaded(
    ngx_http_seadragon_shctx_t *sh);
static ngx_uint_t ngx_http_seadragon_resident_touch(
    ngx_http_seadragon_resident_model_t *models, ngx_uint_t *n,
    ngx_uint_t max, u_char *name, size_t len, ngx_msec_t now,
    time_t now_sec);
static ngx_int_t ngx_http_seadragon_resident_find(
    ngx_http_seadragon_resident_model_t *models, ngx_uint_t n,
    u_char *name, size_t len);
static ngx_http_seadragon_swap_t *ngx_http_seadragon_resident_swap(
    ngx_http_seadragon_shctx_t *sh, u_char *name, size_t len);
static ngx_http_seadragon_server_t *ngx_http_seadragon_resident_server(
    ngx_http_seadragon_shctx_t *sh, u_char *name, size_t len);


/*
 * A model's name as Ollama resolves it: "llama3" is "llama3:latest".  The
 * result, at most size bytes, is not terminated; its length is returned.
 * A name too long for ":latest" is cut and keeps no tag.
 */

size_t
ngx_http_seadragon_model_canonical(u_char *dst, size_t size, u_char *src,
    size_t len)
{
    size_t  n;

    n = ngx_min(len, size);

    /* a cut name ends before the UTF-8 character that does not fit */

    while (n < len && n > 0 && (src[n] & 0xc0) == 0x80) {
        n--;
    }

    ngx_memcpy(dst, src, n);

    /* a name the gate cut at its 64 bytes, inside a character, too */

    n = ngx_http_seadragon_resident_whole(dst, n);

    if (n < len || len == 0 || ngx_strlchr(src, src + len, ':') != NULL) {
        return n;
    }

    if (len + sizeof(":latest") - 1 > size) {
        return n;
    }

    ngx_memcpy(dst + len, ":latest", sizeof(":latest") - 1);

    return len + sizeof(":latest") - 1;
}


void
ngx_http_seadragon_resident_dispatch(ngx_http_seadragon_shctx_t *sh,
    u_char *model, size_t len, ngx_msec_t now, time_t now_sec)
{
    u_char                      name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    ngx_http_seadragon_swap_t  *swap;

    len = ngx_http_seadragon_model_canonical(name, sizeof(name), model, len);

    if (len == 0) {
        return;
    }

    swap = ngx_http_seadragon_resident_swap(sh, name, len);
    swap->dispatched++;

    if (ngx_http_seadragon_resident_touch(sh->resident.models,
                                        &sh->resident.nmodels,
                                        ngx_http_seadragon_resident_loaded(sh),
                                        name, len, now, now_sec))
    {
        swap->predicted++;
    }
}


void
ngx_http_seadragon_resident_answer(ngx_http_seadragon_shctx_t *sh,
    u_char *server, size_t slen, u_char *model, size_t len,
    uint64_t load_ms, ngx_msec_t now, time_t now_sec)
{
    u_char                        name[NGX_HTTP_SEADRAGON_MODEL_LEN];
    ngx_uint_t                    loaded;
    ngx_http_seadragon_swap_t    *swap;
    ngx_http_seadragon_server_t  *srv;

    len = ngx_http_seadragon_model_canonical(name, sizeof(name), model, len);

    if (len == 0) {
        return;
    }

    loaded = ngx_http_seadragon_resident_loaded(sh);

    if (load_ms >= NGX_HTTP_SEADRAGON_LOAD_MS) {
        swap = ngx_http_seadragon_resident_swap(sh, name, len);
        swap->loads++;
        swap->load_ms += load_ms;
    }

    srv = ngx_http_seadragon_resident_server(sh, server, slen);

    if (srv) {
        (void) ngx_http_seadragon_resident_touch(srv->models, &srv->nmodels,
                                                 loaded, name, len, now,
                                                 now_sec);
    }

    (void) ngx_http_seadragon_resident_touch(sh->resident.models,
                                             &sh->resident.nmodels, loaded,
                                             name, len, now, now_sec);
}


/*
 * Ollama's /api/ps of a server: its view becomes exactly the listing (a
 * model already known keeps its since); the gate's view loses what was
 * neither listed nor dispatched lately, and gains what was listed while
 * it has room.
 */

void
ngx_http_seadragon_resident_ps(ngx_http_seadragon_shctx_t *sh,
    u_char *server, size_t slen, ngx_str_t *models, ngx_uint_t n,
    ngx_msec_t now, time_t now_sec)
{
    u_char                               *name;
    size_t                                len;
    ngx_int_t                             k;
    ngx_uint_t                            i, j, nkept, loaded, listed;
    ngx_http_seadragon_server_t          *srv;
    ngx_http_seadragon_resident_model_t   kept[NGX_HTTP_SEADRAGON_RESIDENT];
    ngx_http_seadragon_resident_model_t  *m;
    u_char                                canon[NGX_HTTP_SEADRAGON_RESIDENT]
                                               [NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                                clen[NGX_HTTP_SEADRAGON_RESIDENT];

    loaded = ngx_http_seadragon_resident_loaded(sh);

    n = ngx_min(n, NGX_HTTP_SEADRAGON_RESIDENT);

    for (i = 0; i < n; i++) {
        clen[i] = ngx_http_seadragon_model_canonical(canon[i],
                                                  NGX_HTTP_SEADRAGON_MODEL_LEN,
                                                  models[i].data,
                                                  models[i].len);
    }

    /* the server's view: the listing */

    srv = ngx_http_seadragon_resident_server(sh, server, slen);

    if (srv) {
        nkept = 0;

        for (i = 0; i < n; i++) {
            if (clen[i] == 0
                || ngx_http_seadragon_resident_find(kept, nkept, canon[i],
                                                    clen[i])
                   >= 0)
            {
                continue;
            }

            m = &kept[nkept++];
            ngx_memcpy(m->name, canon[i], clen[i]);
            m->len = clen[i];
            m->used = now;
            m->since = now_sec;

            k = ngx_http_seadragon_resident_find(srv->models, srv->nmodels,
                                                 canon[i], clen[i]);
            if (k >= 0) {
                m->since = srv->models[k].since;
                m->used = srv->models[k].used;
            }
        }

        ngx_memcpy(srv->models, kept,
                   nkept * sizeof(ngx_http_seadragon_resident_model_t));
        srv->nmodels = nkept;
        srv->checked = now_sec;
    }

    /* the gate's view: what is not listed goes, unless just dispatched */

    j = 0;

    for (i = 0; i < sh->resident.nmodels; i++) {
        m = &sh->resident.models[i];
        listed = 0;

        for (k = 0; k < (ngx_int_t) n; k++) {
            if (clen[k] == m->len
                && ngx_memcmp(canon[k], m->name, m->len) == 0)
            {
                listed = 1;
                break;
            }
        }

        if (!listed
            && (ngx_msec_int_t) (now - m->used) >= NGX_HTTP_SEADRAGON_PS_GRACE)
        {
            continue;
        }

        if (j != i) {
            sh->resident.models[j] = *m;
        }

        j++;
    }

    sh->resident.nmodels = j;

    for (i = 0; i < n && sh->resident.nmodels < loaded; i++) {
        name = canon[i];
        len = clen[i];

        if (len == 0
            || ngx_http_seadragon_resident_find(sh->resident.models,
                                                sh->resident.nmodels,
                                                name, len)
               >= 0)
        {
            continue;
        }

        m = &sh->resident.models[sh->resident.nmodels++];
        ngx_memcpy(m->name, name, len);
        m->len = len;
        m->used = now - NGX_HTTP_SEADRAGON_PS_GRACE;
        m->since = now_sec;
    }
}


/* the length of p without a UTF-8 character cut at its end */

static size_t
ngx_http_seadragon_resident_whole(u_char *p, size_t n)
{
    size_t  k, need;

    for (k = 0; k < n && k < 3 && (p[n - 1 - k] & 0xc0) == 0x80; k++) {
        /* void */
    }

    if (k == n) {
        return n;
    }

    need = p[n - 1 - k] >= 0xf0 ? 4
           : p[n - 1 - k] >= 0xe0 ? 3
           : p[n - 1 - k] >= 0xc0 ? 2 : 1;

    return need > k + 1 ? n - 1 - k : n;
}


/* the zone's loaded= (0 before the configuration set it: 1) */

static ngx_uint_t
ngx_http_seadragon_resident_loaded(ngx_http_seadragon_shctx_t *sh)
{
    if (sh->loaded == 0) {
        return 1;
    }

    return ngx_min(sh->loaded, NGX_HTTP_SEADRAGON_RESIDENT);
}


/*
 * The model becomes the most recently used of a view of at most max
 * models, the least recently used going out for it; 1 if it was not in.
 */

static ngx_uint_t
ngx_http_seadragon_resident_touch(ngx_http_seadragon_resident_model_t *models,
    ngx_uint_t *n, ngx_uint_t max, u_char *name, size_t len, ngx_msec_t now,
    time_t now_sec)
{
    ngx_int_t                             k;
    ngx_uint_t                            i, lru;
    ngx_http_seadragon_resident_model_t  *m;

    k = ngx_http_seadragon_resident_find(models, *n, name, len);

    if (k >= 0) {
        models[k].used = now;
    }

    /* room for it; a smaller loaded= after a reload shrinks the view */

    while (*n > 0 && (*n > max || (k < 0 && *n == max))) {
        lru = 0;

        for (i = 1; i < *n; i++) {
            if ((ngx_msec_int_t) (models[i].used - models[lru].used) < 0) {
                lru = i;
            }
        }

        models[lru] = models[*n - 1];
        (*n)--;
    }

    if (k >= 0) {
        return 0;
    }

    m = &models[(*n)++];
    ngx_memcpy(m->name, name, len);
    m->len = len;
    m->used = now;
    m->since = now_sec;

    return 1;
}


static ngx_int_t
ngx_http_seadragon_resident_find(ngx_http_seadragon_resident_model_t *models,
    ngx_uint_t n, u_char *name, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (models[i].len == len && ngx_memcmp(models[i].name, name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


/* a model's counts, added on first sight; the last slot: "other" */

static ngx_http_seadragon_swap_t *
ngx_http_seadragon_resident_swap(ngx_http_seadragon_shctx_t *sh,
    u_char *name, size_t len)
{
    ngx_uint_t                  i;
    ngx_http_seadragon_swap_t  *swap;

    for (i = 0; i < sh->resident.nswaps && i < NGX_HTTP_SEADRAGON_SWAP_MODELS;
         i++)
    {
        swap = &sh->resident.swaps[i];

        if (swap->len == len && ngx_memcmp(swap->name, name, len) == 0) {
            return swap;
        }
    }

    if (sh->resident.nswaps < NGX_HTTP_SEADRAGON_SWAP_MODELS) {
        swap = &sh->resident.swaps[sh->resident.nswaps++];
        ngx_memcpy(swap->name, name, len);
        swap->len = len;
        return swap;
    }

    swap = &sh->resident.swaps[NGX_HTTP_SEADRAGON_SWAP_MODELS];

    if (swap->len == 0) {
        swap->len = sizeof("other") - 1;
        ngx_memcpy(swap->name, "other", sizeof("other") - 1);
    }

    sh->resident.nswaps = NGX_HTTP_SEADRAGON_SWAP_MODELS + 1;

    return swap;
}


/* a server's view, added on first sight; beyond SERVERS, none */

static ngx_http_seadragon_server_t *
ngx_http_seadragon_resident_server(ngx_http_seadragon_shctx_t *sh,
    u_char *name, size_t len)
{
    ngx_uint_t                    i;
    ngx_http_seadragon_server_t  *srv;

    if (name == NULL) {
        name = (u_char *) "";
        len = 0;
    }

    len = ngx_min(len, NGX_HTTP_SEADRAGON_ADDR_LEN);

    for (i = 0; i < sh->resident.nservers; i++) {
        srv = &sh->resident.servers[i];

        if (srv->len == len && ngx_memcmp(srv->name, name, len) == 0) {
            return srv;
        }
    }

    if (sh->resident.nservers == NGX_HTTP_SEADRAGON_SERVERS) {
        return NULL;
    }

    srv = &sh->resident.servers[sh->resident.nservers++];
    ngx_memzero(srv, sizeof(ngx_http_seadragon_server_t));

    if (len) {
        ngx_memcpy(srv->name, name, len);
    }

    srv->len = len;

    return srv;
}
