
/*
 * Copyright (C) The Seadragon authors
 *
 * GET .../queue of a seadragon_auth location: where the requests of the
 * token's user wait, as of now.  A parked request gets nothing from the
 * gateway until it is released (its answer's X-Queue-Position says where
 * it was when it came), so a page that wants to show a person's place
 * while the person waits asks here, with the same token:
 *
 *   {"waiting":[{"id":17,"model":"llama3:latest","source":"chat",
 *                "position":2,"waited_ms":5310}],"total":4}
 *
 * Only the token's user's own requests are listed (those a request with
 * the user's token parked), with nothing of anyone else's but how many
 * wait in all.
 */


#include "ngx_http_seadragon_module.h"


#if (NGX_THREADS)

/* a user's requests listed at most; more are counted in "more" */
#define NGX_HTTP_SEADRAGON_AUTH_QUEUE_MAX  16


typedef struct {
    uint64_t                         id;
    ngx_uint_t                       position;
    ngx_msec_t                       waited;
    u_char                           model[NGX_HTTP_SEADRAGON_MODEL_LEN];
    size_t                           model_len;
    u_char                           source[NGX_HTTP_SEADRAGON_NAME_LEN];
    size_t                           source_len;
} ngx_http_seadragon_auth_place_t;


static ngx_uint_t ngx_http_seadragon_auth_queue_find(
    ngx_http_seadragon_zone_t *zone, u_char *principal, size_t len,
    ngx_http_seadragon_auth_place_t *places, ngx_uint_t *more,
    ngx_uint_t *total);


ngx_int_t
ngx_http_seadragon_auth_queue(ngx_http_request_t *r)
{
    u_char                          *p;
    u_char                           principal[
                                         NGX_HTTP_SEADRAGON_PRINCIPAL_LEN];
    ngx_int_t                        rc;
    ngx_uint_t                       i, n, more, total;
    seadragon_user_record_t          user;
    ngx_http_seadragon_json_t        j;
    ngx_http_seadragon_loc_conf_t   *slcf;
    ngx_http_seadragon_auth_place_t  places[NGX_HTTP_SEADRAGON_AUTH_QUEUE_MAX];
    ngx_http_seadragon_jwt_claims_t  claims;

    if (ngx_http_seadragon_auth_bearer(r, &user, &claims, &rc) != NGX_OK) {
        return rc;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    /* the name that gate_queue_locked() gave the user's entries */

    p = ngx_cpymem(principal, "user:", sizeof("user:") - 1);
    p = ngx_cpymem(p, claims.user, claims.user_len);

    n = ngx_http_seadragon_auth_queue_find(slcf->auth->zone, principal,
                                           p - principal, places, &more,
                                           &total);

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_str(&j, "waiting");
    ngx_http_seadragon_json_array_open(&j);

    for (i = 0; i < n; i++) {
        ngx_http_seadragon_json_map_open(&j);
        ngx_http_seadragon_json_int(&j, "id", (long long) places[i].id);
        ngx_http_seadragon_json_field(&j, "model", places[i].model,
                                      places[i].model_len);
        ngx_http_seadragon_json_field(&j, "source", places[i].source,
                                      places[i].source_len);
        ngx_http_seadragon_json_int(&j, "position",
                                    (long long) places[i].position);
        ngx_http_seadragon_json_int(&j, "waited_ms",
                                    (long long) places[i].waited);
        ngx_http_seadragon_json_map_close(&j);
    }

    ngx_http_seadragon_json_array_close(&j);
    ngx_http_seadragon_json_int(&j, "more", (long long) more);
    ngx_http_seadragon_json_int(&j, "total", (long long) total);
    ngx_http_seadragon_json_map_close(&j);

    if (ngx_http_seadragon_header_add(r, "Cache-Control",
                                      (u_char *) "no-store", 8)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * Under the zone's lock: the user's waiting entries, each with its place
 * in dispatch order now (queue_position(), the place X-Queue-Position
 * reports), in the order of the FIFOs.  Copies only: nothing of the zone
 * is kept after the lock.
 */

static ngx_uint_t
ngx_http_seadragon_auth_queue_find(ngx_http_seadragon_zone_t *zone,
    u_char *principal, size_t len, ngx_http_seadragon_auth_place_t *places,
    ngx_uint_t *more, ngx_uint_t *total)
{
    ngx_uint_t                        i, n;
    ngx_queue_t                      *q;
    ngx_http_seadragon_shctx_t       *sh;
    ngx_http_seadragon_entry_t       *e;
    ngx_http_seadragon_shm_source_t  *src;
    ngx_http_seadragon_auth_place_t  *place;

    n = 0;
    *more = 0;

    sh = zone->sh;

    ngx_shmtx_lock(&zone->shpool->mutex);

    *total = sh->nwaiting;

    for (i = 0; i < sh->nsources; i++) {
        src = &sh->sources[i];

        for (q = ngx_queue_head(&src->waiting);
             q != ngx_queue_sentinel(&src->waiting);
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);

            if (e->principal_len != len
                || ngx_memcmp(e->principal, principal, len) != 0)
            {
                continue;
            }

            if (n == NGX_HTTP_SEADRAGON_AUTH_QUEUE_MAX) {
                (*more)++;
                continue;
            }

            place = &places[n++];

            place->id = e->id;
            place->position = ngx_http_seadragon_queue_position(sh, e,
                                                             ngx_current_msec);
            place->waited = ngx_current_msec - e->enqueued;
            place->model_len = e->model_len;
            ngx_memcpy(place->model, e->model, e->model_len);
            place->source_len = src->name_len;
            ngx_memcpy(place->source, src->name, src->name_len);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return n;
}

#endif /* NGX_THREADS */
