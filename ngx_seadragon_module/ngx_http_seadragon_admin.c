
/*
 * Copyright (C) The Seadragon authors
 *
 * The admin API of a zone, as JSON built with yajl: the queue in dispatch
 * order and what holds the gate, the counters of each source, and the
 * gate's maintenance controls (pause, resume, drain).
 *
 * The zone is read under its lock into request memory allocated before
 * the lock is taken, and the JSON is written after it is released.
 */


#include "ngx_http_seadragon_module.h"

#include <yajl/yajl_gen.h>


typedef struct {
    ngx_http_seadragon_entry_t   entry;
    ngx_uint_t                   position;
} ngx_http_seadragon_snapshot_entry_t;


typedef struct {
    ngx_http_seadragon_snapshot_entry_t  *waiting;
    ngx_uint_t                            nwaiting;
    ngx_http_seadragon_snapshot_entry_t  *running;
    ngx_uint_t                            nrunning;
    ngx_uint_t                            capacity;
    ngx_uint_t                            gate_state;
    time_t                                gate_changed;
    time_t                                started;
    ngx_uint_t                            nsources;
    ngx_http_seadragon_shm_source_t       sources[NGX_HTTP_SEADRAGON_MAX_SOURCES];
} ngx_http_seadragon_snapshot_t;


static ngx_int_t ngx_http_seadragon_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_admin_authorize(ngx_http_request_t *r,
    ngx_http_seadragon_admin_conf_t *acf);
static ngx_int_t ngx_http_seadragon_admin_snapshot(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_snapshot_t *snap);
static ngx_int_t ngx_http_seadragon_admin_queue(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone);
static ngx_int_t ngx_http_seadragon_admin_stats(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone);
static ngx_int_t ngx_http_seadragon_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, char *message);
static ngx_int_t ngx_http_seadragon_admin_not_allowed(ngx_http_request_t *r,
    char *allow, char *message);
static ngx_int_t ngx_http_seadragon_admin_send(ngx_http_request_t *r,
    yajl_gen gen);
static yajl_gen ngx_http_seadragon_json_gen(void);
static void ngx_http_seadragon_json_str(yajl_gen gen, char *s);
static void ngx_http_seadragon_json_field(yajl_gen gen, char *key,
    u_char *value, size_t len);
static void ngx_http_seadragon_json_int(yajl_gen gen, char *key,
    long long value);
static void ngx_http_seadragon_json_seconds(yajl_gen gen, char *key,
    ngx_msec_t ms);


static char *ngx_http_seadragon_gate_states[] = {
    "open", "paused", "draining"
};


/* seadragon_admin ZONE [auth=key|nginx] */

char *
ngx_http_seadragon_admin_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_seadragon_admin_conf_t  *acf;

    if (slcf->admin) {
        return "is duplicate";
    }

    value = cf->args->elts;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_admin_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (acf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "auth=key") == 0) {
            acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_KEY;
            continue;
        }

        if (ngx_strcmp(value[i].data, "auth=nginx") == 0) {
            acf->auth = NGX_HTTP_SEADRAGON_ADMIN_AUTH_NGINX;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected auth=key "
                           "(an admin key from the store) or auth=nginx "
                           "(this location's own access checks)", &value[i]);
        return NGX_CONF_ERROR;
    }

    acf->conf_file = cf->conf_file->file.name.data;
    acf->conf_line = cf->conf_file->line;

    slcf->admin = acf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seadragon_admin_handler;

    /* the JSON answers of this location never become HTML */

    slcf->json_errors = 1;

    return NGX_CONF_OK;
}


/*
 * The part of the URI after the location's prefix: "queue", "stats",
 * "gate/pause"...; for a regex or exact location, what follows its last
 * "/admin/"-like segment is not known, so the last one or two segments
 * are used.
 */

static void
ngx_http_seadragon_admin_route(ngx_http_request_t *r, ngx_str_t *route)
{
    u_char                    *p, *last;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    last = r->uri.data + r->uri.len;

    if (!clcf->regex && !clcf->exact_match && r->uri.len >= clcf->name.len
        && ngx_strncmp(p, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;

    } else {
        p = last;

        while (p > r->uri.data && *(p - 1) != '/') {
            p--;
        }

        if (p - r->uri.data > 5 && ngx_strncmp(p - 5, "gate/", 5) == 0) {
            p -= 5;
        }
    }

    while (p < last && *p == '/') {
        p++;
    }

    while (last > p && *(last - 1) == '/') {
        last--;
    }

    route->data = p;
    route->len = last - p;
}


static ngx_int_t
ngx_http_seadragon_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         route;
    ngx_uint_t                        state;
    ngx_http_seadragon_loc_conf_t    *slcf;
    ngx_http_seadragon_admin_conf_t  *acf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);
    acf = slcf->admin;

    rc = ngx_http_seadragon_admin_authorize(r, acf);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_seadragon_admin_route(r, &route);

    if (route.len == 0
        || (route.len == 5 && ngx_strncmp(route.data, "queue", 5) == 0)
        || (route.len == 5 && ngx_strncmp(route.data, "stats", 5) == 0))
    {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            goto not_allowed_read;
        }

        if (route.len == 5 && route.data[0] == 's') {
            return ngx_http_seadragon_admin_stats(r, acf->zone);
        }

        return ngx_http_seadragon_admin_queue(r, acf->zone);
    }

    if (route.len > 5 && ngx_strncmp(route.data, "gate/", 5) == 0) {
        route.data += 5;
        route.len -= 5;

        if (route.len == 5 && ngx_strncmp(route.data, "pause", 5) == 0) {
            state = NGX_HTTP_SEADRAGON_GATE_PAUSED;

        } else if (route.len == 6
                   && ngx_strncmp(route.data, "resume", 6) == 0)
        {
            state = NGX_HTTP_SEADRAGON_GATE_OPEN;

        } else if (route.len == 5
                   && ngx_strncmp(route.data, "drain", 5) == 0)
        {
            state = NGX_HTTP_SEADRAGON_GATE_DRAINING;

        } else {
            return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                                  "no such gate control: use "
                                                  "pause, resume or drain");
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_seadragon_admin_not_allowed(r, "POST",
                                                     "gate controls take "
                                                     "POST");
        }

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "seadragon zone \"%V\": gate set to %s",
                      &acf->zone->name, ngx_http_seadragon_gate_states[state]);

        ngx_http_seadragon_gate_set_state(acf->zone, state);

        return ngx_http_seadragon_admin_queue(r, acf->zone);
    }

    return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                          "no such admin endpoint: use queue, "
                                          "stats or gate/pause|resume|drain");

not_allowed_read:

    return ngx_http_seadragon_admin_not_allowed(r, "GET, HEAD",
                                             "this endpoint only reads: "
                                             "use GET");
}


static ngx_int_t
ngx_http_seadragon_admin_not_allowed(ngx_http_request_t *r, char *allow,
    char *message)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) allow;
    h->value.len = ngx_strlen(allow);

    return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_ALLOWED, message);
}


/*
 * auth=key: an API key made for the source "admin" (seadragon-store key
 * create NAME --source admin).  auth=nginx: this location's own access
 * checks (allow/deny, auth_basic, auth_request) have already run.
 */

static ngx_int_t
ngx_http_seadragon_admin_authorize(ngx_http_request_t *r,
    ngx_http_seadragon_admin_conf_t *acf)
{
    ngx_int_t                        rc;
    ngx_table_elt_t                 *h;
    seadragon_key_record_t           record;
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_main_conf_t  *smcf;

    if (acf->auth == NGX_HTTP_SEADRAGON_ADMIN_AUTH_NGINX) {
        return NGX_OK;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_key_take(r, ctx);

    if (ctx->key.len == 0) {
        rc = NGX_DECLINED;
        goto unauthorized;
    }

    rc = ngx_http_seadragon_store_key(smcf->store, r->connection, &ctx->key,
                                      &record);

    if (rc == NGX_ERROR) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "the gateway cannot check "
                                              "access right now");
    }

    if (rc == NGX_OK) {

        if ((record.flags & SEADRAGON_KEY_DISABLED)
            || (record.expires && record.expires <= ngx_time()))
        {
            rc = NGX_DECLINED;
            goto unauthorized;
        }

        if (ngx_strcmp(record.source, "admin") != 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "seadragon admin refused the key \"%s\", which is "
                          "not an admin key", record.name);
            return ngx_http_seadragon_admin_error(r, NGX_HTTP_FORBIDDEN,
                                                  "not an admin key");
        }

        ctx->key_name.len = ngx_strlen(record.name);
        ctx->key_name.data = ngx_pnalloc(r->pool, ctx->key_name.len);
        if (ctx->key_name.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->key_name.data, record.name, ctx->key_name.len);

        return NGX_OK;
    }

unauthorized:

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer");
    r->headers_out.www_authenticate = h;

    return ngx_http_seadragon_admin_error(r, NGX_HTTP_UNAUTHORIZED,
                                          ctx->key.len ? "invalid admin key"
                                                       : "admin key required");
}


/*
 * Copies the zone's queue under its lock.  The memory is taken before the
 * lock, with room for what may arrive meanwhile; entries beyond it are
 * left out of this answer rather than allocated under the lock.
 */

static ngx_int_t
ngx_http_seadragon_admin_snapshot(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_http_seadragon_snapshot_t *snap)
{
    ngx_uint_t                            i, j, n, room, best, *next;
    ngx_queue_t                          *q;
    ngx_http_seadragon_shctx_t           *sh;
    ngx_http_seadragon_entry_t           *e;
    ngx_http_seadragon_snapshot_entry_t  *copy, *start[NGX_HTTP_SEADRAGON_MAX_SOURCES];
    ngx_uint_t                            count[NGX_HTTP_SEADRAGON_MAX_SOURCES];

    sh = zone->sh;

    room = sh->nwaiting + sh->nrunning + 64;

    copy = ngx_palloc(r->pool,
                      2 * room * sizeof(ngx_http_seadragon_snapshot_entry_t));
    next = ngx_pcalloc(r->pool, NGX_HTTP_SEADRAGON_MAX_SOURCES
                                * sizeof(ngx_uint_t));
    if (copy == NULL || next == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    snap->capacity = sh->capacity;
    snap->gate_state = sh->gate_state;
    snap->gate_changed = sh->gate_changed;
    snap->started = sh->started;
    snap->nsources = sh->nsources;
    ngx_memcpy(snap->sources, sh->sources,
               sh->nsources * sizeof(ngx_http_seadragon_shm_source_t));

    for (i = 0; i < sh->nsources; i++) {
        start[i] = &copy[n];
        count[i] = 0;

        for (q = ngx_queue_head(&sh->sources[i].waiting);
             q != ngx_queue_sentinel(&sh->sources[i].waiting) && n < room;
             q = ngx_queue_next(q))
        {
            e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);
            copy[n++].entry = *e;
            count[i]++;
        }
    }

    snap->running = &copy[room];
    snap->nrunning = 0;

    for (q = ngx_queue_head(&sh->running);
         q != ngx_queue_sentinel(&sh->running) && snap->nrunning < room;
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_seadragon_entry_t, link);
        snap->running[snap->nrunning++].entry = *e;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    /* merge the FIFOs by (priority, arrival): the order of dispatch */

    snap->waiting = ngx_palloc(r->pool,
                               (n + 1)
                               * sizeof(ngx_http_seadragon_snapshot_entry_t));
    if (snap->waiting == NULL) {
        return NGX_ERROR;
    }

    for (j = 0; j < n; j++) {
        best = NGX_HTTP_SEADRAGON_MAX_SOURCES;

        for (i = 0; i < snap->nsources; i++) {
            if (next[i] == count[i]) {
                continue;
            }

            if (best == NGX_HTTP_SEADRAGON_MAX_SOURCES
                || start[i][next[i]].entry.priority
                   < start[best][next[best]].entry.priority
                || (start[i][next[i]].entry.priority
                    == start[best][next[best]].entry.priority
                    && start[i][next[i]].entry.id
                       < start[best][next[best]].entry.id))
            {
                best = i;
            }
        }

        snap->waiting[j] = start[best][next[best]++];
        snap->waiting[j].position = j + 1;
    }

    snap->nwaiting = n;

    return NGX_OK;
}


static void
ngx_http_seadragon_admin_entry(yajl_gen gen,
    ngx_http_seadragon_snapshot_t *snap, ngx_http_seadragon_entry_t *e,
    ngx_uint_t position, ngx_msec_t since)
{
    ngx_http_seadragon_shm_source_t  *src;

    src = &snap->sources[e->source];

    yajl_gen_map_open(gen);
    ngx_http_seadragon_json_int(gen, "id", (long long) e->id);
    ngx_http_seadragon_json_field(gen, "source", src->name, src->name_len);
    ngx_http_seadragon_json_int(gen, "priority", (long long) e->priority);
    ngx_http_seadragon_json_field(gen, "model", e->model, e->model_len);
    ngx_http_seadragon_json_field(gen, "client", e->addr, e->addr_len);

    if (position) {
        ngx_http_seadragon_json_int(gen, "position", (long long) position);
        ngx_http_seadragon_json_seconds(gen, "wait_time",
                                        ngx_current_msec - since);

    } else {
        ngx_http_seadragon_json_seconds(gen, "running_time",
                                        ngx_current_msec - since);
    }

    ngx_http_seadragon_json_int(gen, "enqueued_at",
                                (long long) e->enqueued_sec);
    yajl_gen_map_close(gen);
}


/*
 * The reference design's shape (queue_length, processing, entries[] with
 * id, source, priority and wait_time), extended.
 */

static ngx_int_t
ngx_http_seadragon_admin_queue(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone)
{
    yajl_gen                        gen;
    ngx_uint_t                      i;
    ngx_http_seadragon_entry_t     *e;
    ngx_http_seadragon_snapshot_t  *snap;

    snap = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_snapshot_t));
    if (snap == NULL
        || ngx_http_seadragon_admin_snapshot(r, zone, snap) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gen = ngx_http_seadragon_json_gen();
    if (gen == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(gen);

    ngx_http_seadragon_json_field(gen, "zone", zone->name.data,
                                  zone->name.len);
    ngx_http_seadragon_json_str(gen, "gate");
    ngx_http_seadragon_json_str(gen,
                                ngx_http_seadragon_gate_states[snap->gate_state]);
    ngx_http_seadragon_json_int(gen, "gate_changed_at",
                                (long long) snap->gate_changed);
    ngx_http_seadragon_json_int(gen, "capacity", (long long) snap->capacity);
    ngx_http_seadragon_json_int(gen, "queue_length",
                                (long long) snap->nwaiting);
    ngx_http_seadragon_json_int(gen, "processing",
                                (long long) snap->nrunning);

    ngx_http_seadragon_json_str(gen, "running");
    yajl_gen_array_open(gen);

    for (i = 0; i < snap->nrunning; i++) {
        e = &snap->running[i].entry;
        ngx_http_seadragon_admin_entry(gen, snap, e, 0, e->granted);
    }

    yajl_gen_array_close(gen);

    ngx_http_seadragon_json_str(gen, "entries");
    yajl_gen_array_open(gen);

    for (i = 0; i < snap->nwaiting; i++) {
        e = &snap->waiting[i].entry;
        ngx_http_seadragon_admin_entry(gen, snap, e, snap->waiting[i].position,
                                       e->enqueued);
    }

    yajl_gen_array_close(gen);
    yajl_gen_map_close(gen);

    return ngx_http_seadragon_admin_send(r, gen);
}


static ngx_int_t
ngx_http_seadragon_admin_stats(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone)
{
    yajl_gen                          gen;
    ngx_uint_t                        i;
    ngx_http_seadragon_counters_t    *c;
    ngx_http_seadragon_snapshot_t    *snap;
    ngx_http_seadragon_shm_source_t  *src;

    snap = ngx_palloc(r->pool, sizeof(ngx_http_seadragon_snapshot_t));
    if (snap == NULL
        || ngx_http_seadragon_admin_snapshot(r, zone, snap) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gen = ngx_http_seadragon_json_gen();
    if (gen == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(gen);
    ngx_http_seadragon_json_field(gen, "zone", zone->name.data,
                                  zone->name.len);
    ngx_http_seadragon_json_int(gen, "since", (long long) snap->started);
    ngx_http_seadragon_json_str(gen, "sources");
    yajl_gen_map_open(gen);

    for (i = 0; i < snap->nsources; i++) {
        src = &snap->sources[i];
        c = &src->counters;

        yajl_gen_string(gen, src->name, src->name_len);
        yajl_gen_map_open(gen);

        ngx_http_seadragon_json_int(gen, "priority", src->priority);
        ngx_http_seadragon_json_int(gen, "waiting", src->nwaiting);
        ngx_http_seadragon_json_int(gen, "running", src->nrunning);
        ngx_http_seadragon_json_int(gen, "received", c->received);
        ngx_http_seadragon_json_int(gen, "served", c->served);
        ngx_http_seadragon_json_int(gen, "upstream_errors",
                                    c->upstream_errors);

        ngx_http_seadragon_json_str(gen, "rejected");
        yajl_gen_map_open(gen);
        ngx_http_seadragon_json_int(gen, "key", c->rejected_key);
        ngx_http_seadragon_json_int(gen, "whitelist", c->rejected_whitelist);
        ngx_http_seadragon_json_int(gen, "invalid", c->rejected_invalid);
        ngx_http_seadragon_json_int(gen, "queue_full",
                                    c->rejected_queue_full);
        ngx_http_seadragon_json_int(gen, "wait_timeout",
                                    c->rejected_wait_timeout);
        ngx_http_seadragon_json_int(gen, "draining", c->rejected_draining);
        ngx_http_seadragon_json_int(gen, "unavailable",
                                    c->rejected_unavailable);
        yajl_gen_map_close(gen);

        ngx_http_seadragon_json_str(gen, "aborted");
        yajl_gen_map_open(gen);
        ngx_http_seadragon_json_int(gen, "parked", c->aborted_parked);
        ngx_http_seadragon_json_int(gen, "streaming", c->aborted_streaming);
        yajl_gen_map_close(gen);

        ngx_http_seadragon_json_seconds(gen, "wait_total",
                                        (ngx_msec_t) c->wait_total_ms);
        ngx_http_seadragon_json_seconds(gen, "wait_max",
                                        (ngx_msec_t) c->wait_max_ms);
        yajl_gen_map_close(gen);
    }

    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);

    return ngx_http_seadragon_admin_send(r, gen);
}


static ngx_int_t
ngx_http_seadragon_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    char *message)
{
    yajl_gen  gen;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    gen = ngx_http_seadragon_json_gen();
    if (gen == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(gen);
    ngx_http_seadragon_json_str(gen, "error");
    ngx_http_seadragon_json_str(gen, message);
    yajl_gen_map_close(gen);

    r->headers_out.status = status;

    return ngx_http_seadragon_admin_send(r, gen);
}


/* the generator's buffer is copied to the request, then the generator freed */

static ngx_int_t
ngx_http_seadragon_admin_send(ngx_http_request_t *r, yajl_gen gen)
{
    size_t                len;
    u_char               *p;
    ngx_uint_t            status;
    const unsigned char  *buf;

    if (yajl_gen_get_buf(gen, &buf, &len) != yajl_gen_status_ok) {
        yajl_gen_free(gen);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        yajl_gen_free(gen);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, buf, len);
    yajl_gen_free(gen);

    status = r->headers_out.status ? r->headers_out.status : NGX_HTTP_OK;

    return ngx_http_seadragon_send_json(r, status, p, len);
}


static yajl_gen
ngx_http_seadragon_json_gen(void)
{
    yajl_gen  gen;

    gen = yajl_gen_alloc(NULL);
    if (gen == NULL) {
        return NULL;
    }

    /* a string cut inside a UTF-8 sequence must fail, not go out */

    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);

    return gen;
}


static void
ngx_http_seadragon_json_str(yajl_gen gen, char *s)
{
    yajl_gen_string(gen, (const unsigned char *) s, ngx_strlen(s));
}


static void
ngx_http_seadragon_json_field(yajl_gen gen, char *key, u_char *value,
    size_t len)
{
    ngx_http_seadragon_json_str(gen, key);

    if (len == 0) {
        yajl_gen_null(gen);
        return;
    }

    /* a value that is not valid UTF-8 (a mangled model name) is left out */

    if (yajl_gen_string(gen, value, len) != yajl_gen_status_ok) {
        yajl_gen_null(gen);
    }
}


static void
ngx_http_seadragon_json_int(yajl_gen gen, char *key, long long value)
{
    ngx_http_seadragon_json_str(gen, key);
    yajl_gen_integer(gen, value);
}


/* milliseconds as seconds with three decimals: 1.158, not 1.15799999 */

static void
ngx_http_seadragon_json_seconds(yajl_gen gen, char *key, ngx_msec_t ms)
{
    u_char  *p, buf[NGX_INT64_LEN + 5];

    ngx_http_seadragon_json_str(gen, key);

    p = ngx_sprintf(buf, "%M.%03M", ms / 1000, ms % 1000);

    yajl_gen_number(gen, (const char *) buf, p - buf);
}
