
/*
 * Copyright (C) The Seadragon authors
 *
 * The store through the admin API: the whitelist and the keys, listed
 * and changed with the rules and the wording of seadragon-store.
 */


#include "ngx_http_seadragon_module.h"

#include <yajl/yajl_tree.h>


#define NGX_HTTP_SEADRAGON_ADMIN_BODY_MAX  65536


static ngx_int_t ngx_http_seadragon_admin_store_body(ngx_http_request_t *r,
    ngx_uint_t keys, ngx_str_t *name);
static void ngx_http_seadragon_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_admin_whitelist_list(
    ngx_http_request_t *r, ngx_http_seadragon_store_t *store);
static ngx_int_t ngx_http_seadragon_admin_whitelist_change(
    ngx_http_request_t *r, ngx_http_seadragon_store_t *store, ngx_str_t *text,
    ngx_str_t *note, ngx_uint_t add);
static ngx_int_t ngx_http_seadragon_admin_keys_list(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store);
static ngx_int_t ngx_http_seadragon_admin_key_create(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, yajl_val body);
static char *ngx_http_seadragon_admin_key_record(yajl_val body,
    seadragon_key_record_t *record);
static char *ngx_http_seadragon_admin_key_limits_parse(yajl_val body,
    seadragon_key_limits_t *limits);
static u_char *ngx_http_seadragon_admin_limit_print(u_char *p, u_char *last,
    uint64_t limit);
static void ngx_http_seadragon_admin_key_limits_json(
    ngx_http_seadragon_json_t *j, seadragon_key_record_t *record);
static ngx_int_t ngx_http_seadragon_admin_key_limits(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name, yajl_val body);
static ngx_int_t ngx_http_seadragon_admin_key_change(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name, ngx_uint_t action);


/*
 * The store through the admin API, with the tool's rules and wording:
 *
 *   GET    whitelist                 list
 *   POST   whitelist                 {"address":"10.0.0.0/8","note":"..."}
 *   DELETE whitelist/ADDR[/PREFIX]
 *   GET    keys                      list (names, sources, states, limits,
 *                                    weights; no keys)
 *   POST   keys                      {"name":..,"source":..,"expires_in":s,
 *                                     "rpm":n,"tokens_per_day":n,
 *                                     "max_concurrent":n,"weight":n}
 *   PATCH  keys/NAME                 {"rpm":n|null, ..., "weight":n}: its
 *                                    limits and weight, live
 *   DELETE keys/NAME                 revoke
 *   POST   keys/NAME/disable | keys/NAME/enable
 */

enum {
    NGX_HTTP_SEADRAGON_ADMIN_KEY_REVOKE = 1,
    NGX_HTTP_SEADRAGON_ADMIN_KEY_DISABLE,
    NGX_HTTP_SEADRAGON_ADMIN_KEY_ENABLE
};


ngx_int_t
ngx_http_seadragon_admin_store(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t data)
{
    u_char                          *slash;
    ngx_str_t                        arg, name;
    ngx_uint_t                       whitelist, action;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (smcf->store == NULL) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "no seadragon_store is "
                                              "configured");
    }

    whitelist = (route->data[0] == 'w');

    arg.len = route->len - (whitelist ? 9 : 4);
    arg.data = route->data + (whitelist ? 9 : 4);

    if (arg.len) {
        arg.data++;
        arg.len--;
    }

    if (arg.len == 0) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return whitelist
                   ? ngx_http_seadragon_admin_whitelist_list(r, smcf->store)
                   : ngx_http_seadragon_admin_keys_list(r, smcf->store);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_seadragon_admin_not_allowed(r, "GET, HEAD, POST",
                                                     "list with GET, add "
                                                     "with POST");
        }

        return ngx_http_seadragon_admin_store_body(r, !whitelist, NULL);
    }

    if (whitelist) {
        if (r->method != NGX_HTTP_DELETE) {
            return ngx_http_seadragon_admin_not_allowed(r, "DELETE",
                                                     "remove an entry with "
                                                     "DELETE");
        }

        return ngx_http_seadragon_admin_whitelist_change(r, smcf->store, &arg,
                                                         NULL, 0);
    }

    /* keys/NAME or keys/NAME/disable|enable */

    name = arg;
    action = NGX_HTTP_SEADRAGON_ADMIN_KEY_REVOKE;

    slash = ngx_strlchr(arg.data, arg.data + arg.len, '/');

    if (slash) {
        name.len = slash - arg.data;
        arg.data = slash + 1;
        arg.len -= name.len + 1;

        if (arg.len == 7 && ngx_strncmp(arg.data, "disable", 7) == 0) {
            action = NGX_HTTP_SEADRAGON_ADMIN_KEY_DISABLE;

        } else if (arg.len == 6 && ngx_strncmp(arg.data, "enable", 6) == 0) {
            action = NGX_HTTP_SEADRAGON_ADMIN_KEY_ENABLE;

        } else {
            return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                                  "use keys/NAME/disable or "
                                                  "keys/NAME/enable");
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_seadragon_admin_not_allowed(r, "POST",
                                                     "key controls take "
                                                     "POST");
        }

    } else if (r->method == NGX_HTTP_PATCH) {

        /* the admin handler left the body of PATCH keys/NAME unread */

        return ngx_http_seadragon_admin_store_body(r, 1, &name);

    } else if (r->method != NGX_HTTP_DELETE) {
        return ngx_http_seadragon_admin_not_allowed(r, "DELETE, PATCH",
                                                 "revoke a key with DELETE, "
                                                 "change its limits with "
                                                 "PATCH");
    }

    return ngx_http_seadragon_admin_key_change(r, smcf->store, &name, action);
}


/*
 * A body to read (POST keys or whitelist, PATCH keys/NAME): it is handled
 * by ngx_http_seadragon_admin_body() once read.
 */

static ngx_int_t
ngx_http_seadragon_admin_store_body(ngx_http_request_t *r, ngx_uint_t keys,
    ngx_str_t *name)
{
    ngx_int_t                  rc;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->admin_keys = keys;

    if (name) {
        ctx->admin_name = *name;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_seadragon_admin_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_seadragon_admin_body(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        address, note;
    yajl_val                         body, v;
    ngx_chain_t                     *cl;
    ngx_http_seadragon_ctx_t        *ctx;
    ngx_http_seadragon_main_conf_t  *smcf;
    char                             error[128];

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    len = 0;

    cl = r->request_body ? r->request_body->bufs : NULL;

    for ( /* void */ ; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            len = NGX_HTTP_SEADRAGON_ADMIN_BODY_MAX + 1;
            break;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len > NGX_HTTP_SEADRAGON_ADMIN_BODY_MAX) {
        ngx_http_finalize_request(r,
            ngx_http_seadragon_admin_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "the body is too large for an "
                                           "admin request"));
        return;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    cl = r->request_body ? r->request_body->bufs : NULL;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        len += cl->buf->last - cl->buf->pos;
    }

    *p = '\0';
    p -= len;

    body = yajl_tree_parse((const char *) p, error, sizeof(error));

    if (body == NULL || !YAJL_IS_OBJECT(body)) {
        if (body) {
            yajl_tree_free(body);
        }

        ngx_http_finalize_request(r,
            ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                           "Invalid JSON: expected an "
                                           "object"));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

    if (ctx->admin_name.len) {
        rc = ngx_http_seadragon_admin_key_limits(r, smcf->store,
                                                 &ctx->admin_name, body);

    } else if (ctx->admin_keys) {
        rc = ngx_http_seadragon_admin_key_create(r, smcf->store, body);

    } else {
        {
            const char  *path[] = { "address", NULL };
            const char  *npath[] = { "note", NULL };

            v = yajl_tree_get(body, path, yajl_t_string);

            if (v == NULL) {
                rc = ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                                    "\"address\" is missing: "
                                                    "an address or CIDR "
                                                    "range");
                goto done;
            }

            address.data = (u_char *) YAJL_GET_STRING(v);
            address.len = ngx_strlen(address.data);

            v = yajl_tree_get(body, npath, yajl_t_string);
            note.data = v ? (u_char *) YAJL_GET_STRING(v) : NULL;
            note.len = v ? ngx_strlen(note.data) : 0;
        }

        rc = ngx_http_seadragon_admin_whitelist_change(r, smcf->store,
                                                       &address, &note, 1);
    }

done:

    yajl_tree_free(body);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_seadragon_admin_whitelist_each(MDB_val *k, MDB_val *v, void *data)
{
    ngx_http_seadragon_json_t  *j = data;

    char                         text[SEADRAGON_NET_TEXT_LEN];
    seadragon_net_t              net;
    seadragon_whitelist_entry_t  entry;

    /* the map is read first, and only here: see store_walk() */

    if (seadragon_net_from_key(k->mv_data, k->mv_size, &net) != 0) {
        return;
    }

    ngx_memzero(&entry, sizeof(entry));

    if (v->mv_size == sizeof(entry)) {
        ngx_memcpy(&entry, v->mv_data, sizeof(entry));
        entry.note[sizeof(entry.note) - 1] = '\0';
    }

    seadragon_net_format(&net, text, sizeof(text));

    ngx_http_seadragon_json_map_open(j);
    ngx_http_seadragon_json_field(j, "address", (u_char *) text,
                                  ngx_strlen(text));
    ngx_http_seadragon_json_int(j, "created", (long long) entry.created);
    ngx_http_seadragon_json_field(j, "note", (u_char *) entry.note,
                                  ngx_strlen(entry.note));
    ngx_http_seadragon_json_map_close(j);
}


static ngx_int_t
ngx_http_seadragon_admin_whitelist_list(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store)
{
    ngx_int_t                  rc;
    ngx_http_seadragon_json_t  j;

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_str(&j, "whitelist");
    ngx_http_seadragon_json_array_open(&j);

    rc = ngx_http_seadragon_store_walk(store, r->connection->log,
                                       store->dbs.whitelist,
                                       ngx_http_seadragon_admin_whitelist_each,
                                       &j);

    return ngx_http_seadragon_admin_list_send(r, &j, rc);
}


typedef struct {
    seadragon_net_t               net;
    seadragon_whitelist_entry_t   entry;
    ngx_uint_t                    add;
} ngx_http_seadragon_admin_net_t;


static int
ngx_http_seadragon_admin_net_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_http_seadragon_admin_net_t  *op = data;

    return op->add ? seadragon_whitelist_add(txn, dbs, &op->net, &op->entry)
                   : seadragon_whitelist_remove(txn, dbs, &op->net);
}


static ngx_int_t
ngx_http_seadragon_admin_whitelist_change(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *text, ngx_str_t *note,
    ngx_uint_t add)
{
    int                          rc;
    char                        *message;
    u_char                      *p;
    char                         formatted[SEADRAGON_NET_TEXT_LEN];
    size_t                       size;
    const char                  *error;
    MDB_txn                     *txn;
    ngx_uint_t                   i, status;
    seadragon_net_t                 net;
    ngx_http_seadragon_admin_net_t  op;

    if (seadragon_net_parse((const char *) text->data, text->len, &net,
                            &error)
        != 0)
    {
        size = ngx_min(text->len, 64) + ngx_strlen(error) + 32;

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the client's bytes, cut or not UTF-8: the answer mends them */

        ngx_slprintf(p, p + size, "invalid address \"%*s\": %s%Z",
                     ngx_min(text->len, 64), text->data, error);

        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                              (char *) p);
    }

    if (note && note->len >= sizeof(op.entry.note)) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                              "the note is longer than 63 "
                                              "bytes");
    }

    /* as the tool: a tab or a newline would break its list */

    for (i = 0; note && i < note->len; i++) {
        if (note->data[i] < 0x20 || note->data[i] == 0x7f) {
            return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                                  "the note may not contain "
                                                  "control characters");
        }
    }

    status = ngx_http_seadragon_admin_write_begin(r, store, &txn, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_memzero(&op, sizeof(op));
    op.net = net;
    op.add = add;

    if (add) {
        op.entry.created = (int64_t) ngx_time();

        if (note && note->len) {
            ngx_memcpy(op.entry.note, note->data, note->len);
        }
    }

    rc = ngx_http_seadragon_store_write(store, r->connection->log, txn,
                                        ngx_http_seadragon_admin_net_change,
                                        &op);

    seadragon_net_format(&net, formatted, sizeof(formatted));

    if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
        size = SEADRAGON_NET_TEXT_LEN + 64;

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_slprintf(p, p + size, "%s is %s%Z", formatted,
                     rc == MDB_KEYEXIST ? "already whitelisted"
                                        : "not whitelisted");

        return ngx_http_seadragon_admin_error(r,
                                              rc == MDB_KEYEXIST
                                              ? NGX_HTTP_CONFLICT
                                              : NGX_HTTP_NOT_FOUND,
                                              (char *) p);
    }

    status = ngx_http_seadragon_admin_commit(r, store, rc, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon admin %s %s the whitelist",
                  add ? "added" : "removed", formatted);

    size = SEADRAGON_NET_TEXT_LEN + 32;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = ngx_slprintf(p, p + size, "{\"%s\":\"%s\"}",
                        add ? "whitelisted" : "removed", formatted) - p;

    return ngx_http_seadragon_send_json(r,
                                        add ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                                        p, size);
}


typedef struct {
    ngx_http_seadragon_json_t  *j;
    time_t                      now;
} ngx_http_seadragon_admin_keys_t;


static void
ngx_http_seadragon_admin_keys_each(MDB_val *k, MDB_val *v, void *data)
{
    ngx_http_seadragon_admin_keys_t  *ctx = data;

    ngx_http_seadragon_json_t  *j;
    seadragon_key_record_t      record;

    /* the map is read first, and only here: see store_walk() */

    if (seadragon_key_record_read(v, &record) != 0) {
        return;
    }

    j = ctx->j;

    ngx_http_seadragon_json_map_open(j);
    ngx_http_seadragon_json_field(j, "name", (u_char *) record.name,
                                  ngx_strlen(record.name));
    ngx_http_seadragon_json_field(j, "source", (u_char *) record.source,
                                  ngx_strlen(record.source));
    ngx_http_seadragon_json_str(j, "state");
    ngx_http_seadragon_json_str(j,
        (record.flags & SEADRAGON_KEY_DISABLED) ? "disabled"
        : (record.expires && record.expires <= ctx->now) ? "expired"
        : "active");
    ngx_http_seadragon_json_int(j, "created", (long long) record.created);
    ngx_http_seadragon_json_int(j, "expires", (long long) record.expires);
    ngx_http_seadragon_admin_key_limits_json(j, &record);
    ngx_http_seadragon_json_int(j, "weight", (long long) record.weight);
    ngx_http_seadragon_json_map_close(j);
}


/* a limit in an answer: its number, or null for no limit */

static u_char *
ngx_http_seadragon_admin_limit_print(u_char *p, u_char *last, uint64_t limit)
{
    return limit ? ngx_slprintf(p, last, "%uL", limit)
                 : ngx_slprintf(p, last, "null");
}


/* "limits": {"rpm":10,"tokens_per_day":null,...}, null for no limit */

static void
ngx_http_seadragon_admin_key_limits_json(ngx_http_seadragon_json_t *j,
    seadragon_key_record_t *record)
{
    ngx_uint_t  i;
    uint64_t    value[3];

    static char  *names[] = { "rpm", "tokens_per_day", "max_concurrent" };

    value[0] = record->rpm;
    value[1] = record->tokens_per_day;
    value[2] = record->max_concurrent;

    ngx_http_seadragon_json_str(j, "limits");
    ngx_http_seadragon_json_map_open(j);

    for (i = 0; i < 3; i++) {
        if (value[i]) {
            ngx_http_seadragon_json_int(j, names[i], (long long) value[i]);

        } else {
            ngx_http_seadragon_json_str(j, names[i]);
            ngx_http_seadragon_json_check(j, yajl_gen_null(j->gen));
        }
    }

    ngx_http_seadragon_json_map_close(j);
}


/*
 * The limits a body gives, each a whole number from 0 to its most, or
 * null (0 and null: no limit), and the weight, 1 to SEADRAGON_WEIGHT_MAX;
 * limits->set says which were given.  NULL, or the message of a 400.
 */

static char *
ngx_http_seadragon_admin_key_limits_parse(yajl_val body,
    seadragon_key_limits_t *limits)
{
    long long   n;
    yajl_val    v;
    ngx_uint_t  i;

    static const char  *names[] = { "rpm", "tokens_per_day",
                                    "max_concurrent" };
    static uint64_t     max[] = { SEADRAGON_LIMIT_RPM_MAX,
                                  SEADRAGON_LIMIT_TOKENS_MAX,
                                  SEADRAGON_LIMIT_CONCURRENT_MAX };
    static char        *errors[] = {
        "\"rpm\" must be the requests a minute, a whole number from 0 to "
        "1000000, or null for no limit",
        "\"tokens_per_day\" must be the tokens a UTC day, a whole number "
        "from 0 to 1000000000000000, or null for no limit",
        "\"max_concurrent\" must be the requests waiting or running at "
        "once, a whole number from 0 to 100000, or null for no limit"
    };

    const char  *weight_path[] = { "weight", NULL };

    ngx_memzero(limits, sizeof(seadragon_key_limits_t));

    for (i = 0; i < 3; i++) {
        const char  *path[] = { names[i], NULL };

        v = yajl_tree_get(body, path, yajl_t_any);

        if (v == NULL) {
            continue;
        }

        if (YAJL_IS_NULL(v)) {
            n = 0;

        } else if (YAJL_IS_INTEGER(v)) {
            n = YAJL_GET_INTEGER(v);

            if (n < 0 || (uint64_t) n > max[i]) {
                return errors[i];
            }

        } else {
            return errors[i];
        }

        limits->set |= 1 << i;

        switch (i) {
        case 0:
            limits->rpm = (uint32_t) n;
            break;
        case 1:
            limits->tokens_per_day = (uint64_t) n;
            break;
        default:
            limits->max_concurrent = (uint32_t) n;
        }
    }

    v = yajl_tree_get(body, weight_path, yajl_t_any);

    if (v == NULL) {
        return NULL;
    }

    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1
        || YAJL_GET_INTEGER(v) > SEADRAGON_WEIGHT_MAX)
    {
        return "\"weight\" must be the key's share in fair queuing, a "
               "whole number from 1 (the default) to 1000";
    }

    limits->weight = (uint32_t) YAJL_GET_INTEGER(v);
    limits->set |= SEADRAGON_LIMIT_WEIGHT;

    return NULL;
}


static ngx_int_t
ngx_http_seadragon_admin_keys_list(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store)
{
    ngx_int_t                        rc;
    ngx_http_seadragon_json_t        j;
    ngx_http_seadragon_admin_keys_t  ctx;

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx.j = &j;
    ctx.now = ngx_time();

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_str(&j, "keys");
    ngx_http_seadragon_json_array_open(&j);

    rc = ngx_http_seadragon_store_walk(store, r->connection->log,
                                       store->dbs.keys,
                                       ngx_http_seadragon_admin_keys_each,
                                       &ctx);

    return ngx_http_seadragon_admin_list_send(r, &j, rc);
}


typedef struct {
    char                     *key;
    seadragon_key_record_t   *record;
} ngx_http_seadragon_admin_key_add_t;


static int
ngx_http_seadragon_admin_key_add_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_http_seadragon_admin_key_add_t  *op = data;

    return seadragon_key_add(txn, dbs, op->key, SEADRAGON_KEY_TEXT_LEN,
                             op->record);
}


/*
 * The record of a new key from the body, or the message of a 400: the
 * name and the source as the tool checks them, the expiry if given.
 */

static char *
ngx_http_seadragon_admin_key_record(yajl_val body,
    seadragon_key_record_t *record)
{
    char                    *message;
    const char              *name, *source;
    yajl_val                 v;
    seadragon_key_limits_t   limits;

    const char  *name_path[] = { "name", NULL };
    const char  *source_path[] = { "source", NULL };
    const char  *expires_path[] = { "expires_in", NULL };

    v = yajl_tree_get(body, name_path, yajl_t_string);
    name = v ? YAJL_GET_STRING(v) : NULL;

    if (name == NULL
        || !seadragon_name_valid(name, ngx_strlen(name),
                                 SEADRAGON_KEY_NAME_LEN - 1, "_-.@"))
    {
        return "\"name\" must have 1 to 63 letters, digits, \"_\", \"-\", "
               "\".\" and \"@\"";
    }

    v = yajl_tree_get(body, source_path, yajl_t_string);
    source = v ? YAJL_GET_STRING(v) : NULL;

    if (source == NULL
        || !seadragon_name_valid(source, ngx_strlen(source),
                                 SEADRAGON_KEY_SOURCE_LEN - 1, "_-"))
    {
        return "\"source\" must be a source name: 1 to 31 letters, digits, "
               "\"_\" and \"-\"";
    }

    ngx_memzero(record, sizeof(seadragon_key_record_t));
    record->version = SEADRAGON_KEY_VERSION;
    record->created = (int64_t) ngx_time();
    ngx_memcpy(record->name, name, ngx_strlen(name));
    ngx_memcpy(record->source, source, ngx_strlen(source));

    v = yajl_tree_get(body, expires_path, yajl_t_any);

    if (v) {
        if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0) {
            return "\"expires_in\" must be a number of seconds, at least 1";
        }

        record->expires = record->created + YAJL_GET_INTEGER(v);
    }

    message = ngx_http_seadragon_admin_key_limits_parse(body, &limits);

    if (message) {
        return message;
    }

    record->rpm = limits.rpm;
    record->tokens_per_day = limits.tokens_per_day;
    record->max_concurrent = limits.max_concurrent;
    record->weight = (limits.set & SEADRAGON_LIMIT_WEIGHT) ? limits.weight
                                                           : 1;

    return NULL;
}


/* the new key is in the answer, once, and nowhere else */

static ngx_int_t
ngx_http_seadragon_admin_key_create(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, yajl_val body)
{
    int                                  rc;
    char                                *message;
    u_char                              *p;
    u_char                              *q, *last;
    char                                 key[SEADRAGON_KEY_TEXT_LEN + 1];
    size_t                               size;
    MDB_txn                             *txn;
    ngx_uint_t                           status;
    seadragon_key_record_t               record;
    ngx_http_seadragon_admin_key_add_t   op;

    message = ngx_http_seadragon_admin_key_record(body, &record);

    if (message) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                              message);
    }

    if (seadragon_key_generate(key) != 0) {
        return ngx_http_seadragon_admin_error(r,
                                              NGX_HTTP_INTERNAL_SERVER_ERROR,
                                              "no random bytes for a key");
    }

    status = ngx_http_seadragon_admin_write_begin(r, store, &txn, &message);

    if (status != NGX_OK) {
        ngx_explicit_memzero(key, sizeof(key));
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    op.key = key;
    op.record = &record;

    rc = ngx_http_seadragon_store_write(store, r->connection->log, txn,
                                        ngx_http_seadragon_admin_key_add_change,
                                        &op);

    if (rc == MDB_KEYEXIST) {
        ngx_explicit_memzero(key, sizeof(key));
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_CONFLICT,
                                              "a key with this name already "
                                              "exists; revoke it first or "
                                              "choose another name");
    }

    status = ngx_http_seadragon_admin_commit(r, store, rc, &message);

    if (status != NGX_OK) {
        ngx_explicit_memzero(key, sizeof(key));
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon admin created the key \"%s\" for the source "
                  "\"%s\"", record.name, record.source);

    size = sizeof(key) + SEADRAGON_KEY_NAME_LEN + SEADRAGON_KEY_SOURCE_LEN
           + 4 * NGX_INT64_LEN + 128;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        ngx_explicit_memzero(key, sizeof(key));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the name and the source passed seadragon_name_valid(): no escapes */

    last = p + size;

    q = ngx_slprintf(p, last, "{\"name\":\"%s\",\"source\":\"%s\","
                     "\"expires\":%L,\"limits\":{\"rpm\":", record.name,
                     record.source, (int64_t) record.expires);
    q = ngx_http_seadragon_admin_limit_print(q, last, record.rpm);
    q = ngx_slprintf(q, last, ",\"tokens_per_day\":");
    q = ngx_http_seadragon_admin_limit_print(q, last, record.tokens_per_day);
    q = ngx_slprintf(q, last, ",\"max_concurrent\":");
    q = ngx_http_seadragon_admin_limit_print(q, last, record.max_concurrent);
    q = ngx_slprintf(q, last, "},\"weight\":%uD,\"key\":\"%s\"}",
                     record.weight, key);

    size = q - p;

    ngx_explicit_memzero(key, sizeof(key));

    return ngx_http_seadragon_send_json(r, NGX_HTTP_CREATED, p, size);
}


typedef struct {
    ngx_str_t                *name;
    seadragon_key_limits_t   *limits;
    seadragon_key_record_t   *record;
} ngx_http_seadragon_admin_key_limits_t;


static int
ngx_http_seadragon_admin_key_limits_op(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_http_seadragon_admin_key_limits_t  *op = data;

    return seadragon_key_set_limits(txn, dbs, (const char *) op->name->data,
                                    op->name->len, op->limits, op->record);
}


/*
 * PATCH keys/NAME: the limits and weight the body gives, the others as
 * they were; a bad value changes nothing
 */

static ngx_int_t
ngx_http_seadragon_admin_key_limits(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name, yajl_val body)
{
    int                                     rc;
    char                                   *message;
    MDB_txn                                *txn;
    ngx_uint_t                              status;
    seadragon_key_limits_t                  limits;
    seadragon_key_record_t                  record;
    ngx_http_seadragon_json_t               j;
    ngx_http_seadragon_admin_key_limits_t   op;

    if (!seadragon_name_valid((const char *) name->data, name->len,
                              SEADRAGON_KEY_NAME_LEN - 1, "_-.@"))
    {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "there is no key with this "
                                              "name");
    }

    message = ngx_http_seadragon_admin_key_limits_parse(body, &limits);

    if (message) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                              message);
    }

    if (limits.set == 0) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                              "nothing to change: give "
                                              "\"rpm\", \"tokens_per_day\", "
                                              "\"max_concurrent\" or "
                                              "\"weight\"");
    }

    status = ngx_http_seadragon_admin_write_begin(r, store, &txn, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    op.name = name;
    op.limits = &limits;
    op.record = &record;

    rc = ngx_http_seadragon_store_write(store, r->connection->log, txn,
                                        ngx_http_seadragon_admin_key_limits_op,
                                        &op);

    if (rc == MDB_NOTFOUND) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "there is no key with this "
                                              "name");
    }

    status = ngx_http_seadragon_admin_commit(r, store, rc, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon admin set the limits of the key \"%V\": rpm %uD, "
                  "tokens_per_day %uL, max_concurrent %uD (0: none), "
                  "weight %uD", name, record.rpm, record.tokens_per_day,
                  record.max_concurrent, record.weight);

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "name", name->data, name->len);
    ngx_http_seadragon_admin_key_limits_json(&j, &record);
    ngx_http_seadragon_json_int(&j, "weight", (long long) record.weight);
    ngx_http_seadragon_json_map_close(&j);

    return ngx_http_seadragon_admin_send(r, &j);
}


typedef struct {
    ngx_str_t                *name;
    ngx_uint_t                action;
    int                      *changed;
    seadragon_key_record_t   *record;
} ngx_http_seadragon_admin_key_op_t;


static int
ngx_http_seadragon_admin_key_change_op(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_http_seadragon_admin_key_op_t  *op = data;

    if (op->action == NGX_HTTP_SEADRAGON_ADMIN_KEY_REVOKE) {
        return seadragon_key_remove(txn, dbs, (const char *) op->name->data,
                                    op->name->len);
    }

    return seadragon_key_set_disabled(txn, dbs,
                                      (const char *) op->name->data,
                                      op->name->len,
                                      op->action
                                      == NGX_HTTP_SEADRAGON_ADMIN_KEY_DISABLE,
                                      op->changed, op->record);
}


static ngx_int_t
ngx_http_seadragon_admin_key_change(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name, ngx_uint_t action)
{
    int                                 rc, changed;
    char                               *message;
    u_char                             *p;
    size_t                              size;
    MDB_txn                            *txn;
    ngx_uint_t                          status;
    seadragon_key_record_t              record;
    ngx_http_seadragon_admin_key_op_t   op;

    static char  *done[] = { "", "revoked", "disabled", "enabled" };

    if (!seadragon_name_valid((const char *) name->data, name->len,
                              SEADRAGON_KEY_NAME_LEN - 1, "_-.@"))
    {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "there is no key with this "
                                              "name");
    }

    status = ngx_http_seadragon_admin_write_begin(r, store, &txn, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    changed = 1;

    op.name = name;
    op.action = action;
    op.changed = &changed;
    op.record = &record;

    rc = ngx_http_seadragon_store_write(store, r->connection->log, txn,
                                        ngx_http_seadragon_admin_key_change_op,
                                        &op);

    if (rc == MDB_NOTFOUND) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "there is no key with this "
                                              "name");
    }

    status = ngx_http_seadragon_admin_commit(r, store, rc, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    if (changed) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "seadragon admin %s the key \"%V\"", done[action], name);
    }

    size = name->len + 32;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the name passed seadragon_name_valid(): no escapes */

    size = ngx_slprintf(p, p + size, "{\"%s\":\"%V\"}", done[action], name)
           - p;

    return ngx_http_seadragon_send_json(r, NGX_HTTP_OK, p, size);
}


/*
 * NGX_OK and a write transaction, or the status and the message of the
 * answer; nothing is sent here.
 */

ngx_uint_t
ngx_http_seadragon_admin_write_begin(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, MDB_txn **txn, char **message)
{
    ngx_int_t  rc;

    rc = ngx_http_seadragon_store_write_begin(store, r->connection->log, txn);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    *message = (rc == NGX_DECLINED)
               ? "the store is read-only for nginx workers: change it with "
                 "seadragon-store"
               : "the store cannot be written";

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


/*
 * After store_write(), which committed or aborted: NGX_OK, or the status
 * and the message of the answer.
 */

ngx_uint_t
ngx_http_seadragon_admin_commit(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, int rc, char **message)
{
    if (rc == MDB_SUCCESS) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "seadragon_store \"%V\": a change failed: %s",
                  &store->path, mdb_strerror(rc));

    *message = (rc == MDB_MAP_FULL)
               ? "the store is full: grow it with seadragon-store init "
                 "--map-size"
               : "the store cannot be written";

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}
