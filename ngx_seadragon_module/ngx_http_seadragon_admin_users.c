
/*
 * Copyright (C) The Seadragon authors
 *
 * The store's users through the admin API (issue 16), with the rules of
 * seadragon-store user:
 *
 *   GET    users         list: name, source, active, created, last_login
 *   POST   users         {"name":..,"source":..,"password":..,
 *                         "active":true|false}: 201 and the user
 *   GET    users/NAME    the user
 *   PATCH  users/NAME    {"password":..?, "active":..?, "source":..?}
 *   DELETE users/NAME
 *
 * A hash never leaves the store.  A new password is hashed with argon2id
 * in the admin location's thread pool (ngx_http_seadragon_auth_task.c),
 * never in the worker; the write that follows goes through the admin
 * API's write path.  A new password or source sets the record's
 * "changed", so that the user's older tokens are refused (login.c).
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/crypto.h>
#include <yajl/yajl_tree.h>


#define NGX_HTTP_SEADRAGON_USERS_BODY_MAX  65536


/* a creation or a change, from its body to its write */

typedef struct {
    ngx_str_t                        name;
    seadragon_user_record_t          record;     /* the new one, or after */
    u_char                          *password;   /* cleansed with the pool */
    size_t                           password_len;
    char                             hash[SEADRAGON_USER_HASH_LEN];
    int                              hashed;     /* the thread's: 0, -1 */
    time_t                           now;
    unsigned                         create:1;
    unsigned                         set_password:1;
    unsigned                         set_source:1;
    unsigned                         set_active:1;
    unsigned                         active:1;
} ngx_http_seadragon_users_op_t;


static ngx_int_t ngx_http_seadragon_users_body(ngx_http_request_t *r,
    ngx_str_t *name);
static void ngx_http_seadragon_users_body_read(ngx_http_request_t *r);
static char *ngx_http_seadragon_users_parse(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op, yajl_val body);
static ngx_int_t ngx_http_seadragon_users_start(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op);
static void ngx_http_seadragon_users_hash(void *data);
static ngx_int_t ngx_http_seadragon_users_hashed(ngx_http_request_t *r,
    void *data);
static ngx_int_t ngx_http_seadragon_users_write(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op);
static int ngx_http_seadragon_users_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data);
static ngx_int_t ngx_http_seadragon_users_list(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store);
static int ngx_http_seadragon_users_walk(ngx_http_seadragon_store_t *store,
    void *data);
static ngx_int_t ngx_http_seadragon_users_get(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name);
static ngx_int_t ngx_http_seadragon_users_remove(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name);
static int ngx_http_seadragon_users_remove_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data);
static void ngx_http_seadragon_users_json(ngx_http_seadragon_json_t *j,
    seadragon_user_record_t *user);
static ngx_int_t ngx_http_seadragon_users_send(ngx_http_request_t *r,
    ngx_uint_t status, seadragon_user_record_t *user);
static ngx_uint_t ngx_http_seadragon_users_name_valid(ngx_str_t *name);
static void ngx_http_seadragon_users_cleanse(void *data);


static char  ngx_http_seadragon_users_unknown[] =
    "there is no user with this name";

static char  ngx_http_seadragon_users_no_memory[] = "no memory";


ngx_int_t
ngx_http_seadragon_admin_users(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg)
{
    ngx_str_t                        name;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (smcf->store == NULL) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "no seadragon_store is "
                                              "configured");
    }

    /* "users" or "users/NAME" */

    name.data = route->data + 5;
    name.len = route->len - 5;

    if (name.len) {
        name.data++;
        name.len--;
    }

    if (name.len == 0) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return ngx_http_seadragon_users_list(r, smcf->store);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_seadragon_admin_not_allowed(r, "GET, HEAD, POST",
                                                     "list with GET, add "
                                                     "with POST");
        }

        return ngx_http_seadragon_users_body(r, NULL);
    }

    if (ngx_strlchr(name.data, name.data + name.len, '/')) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                              "use users or users/NAME");
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_seadragon_users_get(r, smcf->store, &name);
    }

    if (r->method == NGX_HTTP_PATCH) {
        /* the admin handler left the body of PATCH users/NAME unread */
        return ngx_http_seadragon_users_body(r, &name);
    }

    if (r->method == NGX_HTTP_DELETE) {
        return ngx_http_seadragon_users_remove(r, smcf->store, &name);
    }

    return ngx_http_seadragon_admin_not_allowed(r, "GET, HEAD, PATCH, DELETE",
                                             "read a user with GET, change "
                                             "it with PATCH, remove it with "
                                             "DELETE");
}


/* POST users, PATCH users/NAME: the body, then users_body_read() */

static ngx_int_t
ngx_http_seadragon_users_body(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_int_t                  rc;
    ngx_http_seadragon_ctx_t  *ctx;

    ctx = ngx_http_seadragon_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&ctx->admin_name);

    if (name) {
        ctx->admin_name = *name;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_SEADRAGON_USERS_BODY_MAX) {
        return ngx_http_seadragon_admin_error(r,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "the body is too large for an "
                                         "admin request");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_seadragon_users_body_read);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_seadragon_users_body_read(ngx_http_request_t *r)
{
    char                           *message;
    u_char                         *p, *q;
    size_t                          len;
    ngx_int_t                       rc;
    yajl_val                        body;
    ngx_chain_t                    *cl;
    ngx_pool_cleanup_t             *cln;
    ngx_http_seadragon_ctx_t       *ctx;
    ngx_http_seadragon_users_op_t  *op;
    char                            error[128];

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        if (cl->buf->in_file || !ngx_buf_in_memory(cl->buf)) {
            len = NGX_HTTP_SEADRAGON_USERS_BODY_MAX + 1;
            break;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len > NGX_HTTP_SEADRAGON_USERS_BODY_MAX) {
        ngx_http_finalize_request(r,
            ngx_http_seadragon_admin_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "the body is too large for an "
                                           "admin request"));
        return;
    }

    op = ngx_pcalloc(r->pool, sizeof(ngx_http_seadragon_users_op_t));
    p = ngx_pnalloc(r->pool, len + 1);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (op == NULL || p == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the password is in the body: both are wiped with the pool */

    op->password = p;
    op->password_len = len;
    cln->handler = ngx_http_seadragon_users_cleanse;
    cln->data = op;

    q = p;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        q = ngx_cpymem(q, cl->buf->pos, cl->buf->last - cl->buf->pos);
        OPENSSL_cleanse(cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *q = '\0';

    /* yajl's strings end at a NUL: one in the body is refused, not cut */

    for (q = p; q + 6 <= p + len; q++) {
        if (q[0] == '\\' && (q[1] == 'u' || q[1] == 'U')
            && ngx_strncmp(q + 2, "0000", 4) == 0)
        {
            ngx_http_finalize_request(r,
                ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                               "a NUL (\\u0000) is not "
                                               "allowed in a user's fields"));
            return;
        }
    }

    body = yajl_tree_parse((const char *) p, error, sizeof(error));

    /* yajl's message of a parse error quotes the text around it */

    OPENSSL_cleanse(error, sizeof(error));
    OPENSSL_cleanse(p, len);
    op->password = NULL;
    op->password_len = 0;

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

    op->create = (ctx->admin_name.len == 0);
    op->name = ctx->admin_name;

    message = ngx_http_seadragon_users_parse(r, op, body);

    yajl_tree_free(body);

    if (message == NULL) {
        rc = ngx_http_seadragon_users_start(r, op);

    } else if (message == ngx_http_seadragon_users_no_memory) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_seadragon_admin_error(r, NGX_HTTP_BAD_REQUEST, message);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * The body's fields into op, checked as seadragon-store checks them:
 * NULL, or the message of a 400 (ngx_http_seadragon_users_no_memory: a
 * 500).  The password is copied into
 * the pool, and wiped in yajl's tree before it is freed.
 */

static char *
ngx_http_seadragon_users_parse(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op, yajl_val body)
{
    char      *s;
    size_t     len;
    yajl_val   v;

    const char  *name_path[] = { "name", NULL };
    const char  *source_path[] = { "source", NULL };
    const char  *password_path[] = { "password", NULL };
    const char  *active_path[] = { "active", NULL };

    v = yajl_tree_get(body, password_path, yajl_t_any);

    if (v) {
        if (!YAJL_IS_STRING(v)) {
            return "\"password\" must be a string of 1 to 1024 bytes";
        }

        s = YAJL_GET_STRING(v);
        len = ngx_strlen(s);

        op->password = ngx_pnalloc(r->pool, len + 1);
        if (op->password == NULL) {
            OPENSSL_cleanse(s, len);
            return ngx_http_seadragon_users_no_memory;
        }

        ngx_memcpy(op->password, s, len + 1);
        op->password_len = len;
        OPENSSL_cleanse(s, len);

        if (len == 0 || len > SEADRAGON_PASSWORD_MAX) {
            return "\"password\" must be a string of 1 to 1024 bytes";
        }

        op->set_password = 1;
    }

    if (op->create) {
        v = yajl_tree_get(body, name_path, yajl_t_string);

        op->name.data = v ? (u_char *) YAJL_GET_STRING(v) : NULL;
        op->name.len = v ? ngx_strlen(op->name.data) : 0;

        if (!ngx_http_seadragon_users_name_valid(&op->name)) {
            return "\"name\" must have 1 to 63 letters, digits, \"_\", \"-\", "
                   "\".\" and \"@\"";
        }

        ngx_memcpy(op->record.name, op->name.data, op->name.len);
        op->name.data = (u_char *) op->record.name;
    }

    v = yajl_tree_get(body, source_path, yajl_t_any);

    if (v || op->create) {
        s = (v && YAJL_IS_STRING(v)) ? YAJL_GET_STRING(v) : NULL;

        if (s == NULL
            || !seadragon_name_valid(s, ngx_strlen(s),
                                     SEADRAGON_KEY_SOURCE_LEN - 1, "_-"))
        {
            return "\"source\" must be a source name: 1 to 31 letters, "
                   "digits, \"_\" and \"-\"";
        }

        ngx_memcpy(op->record.source, s, ngx_strlen(s));
        op->set_source = 1;
    }

    if (op->create && !op->set_password) {
        return "\"password\" is missing: a string of 1 to 1024 bytes";
    }

    v = yajl_tree_get(body, active_path, yajl_t_any);

    if (v) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            return "\"active\" must be true or false";
        }

        op->set_active = 1;
        op->active = YAJL_IS_TRUE(v);

    } else if (op->create) {
        op->set_active = 1;
        op->active = 1;
    }

    if (!op->set_password && !op->set_source && !op->set_active) {
        return "nothing to change: give \"password\", \"active\" or \"source\"";
    }

    return NULL;
}


/*
 * Whether the user exists is checked before any hash (a name taken or
 * unknown costs none), and again in the write.  A new password goes to
 * the thread pool; a change without one is written at once.
 */

static ngx_int_t
ngx_http_seadragon_users_start(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op)
{
    ngx_int_t                         rc;
    seadragon_user_record_t           user;
    ngx_http_seadragon_loc_conf_t    *slcf;
    ngx_http_seadragon_main_conf_t   *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (!op->create && !ngx_http_seadragon_users_name_valid(&op->name)) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    rc = ngx_http_seadragon_store_user(smcf->store, r->connection->log,
                                       &op->name, &user);

    if (rc == NGX_ERROR) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "the store cannot be read");
    }

    if (op->create && rc == NGX_OK) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_CONFLICT,
                                              "a user with this name already "
                                              "exists; remove it first or "
                                              "choose another name");
    }

    if (!op->create && rc == NGX_DECLINED) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    if (!op->set_password) {
        return ngx_http_seadragon_users_write(r, op);
    }

#if (NGX_THREADS)

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    rc = ngx_http_seadragon_task_post(r, slcf->admin->thread_pool,
                                      ngx_http_seadragon_users_hash,
                                      ngx_http_seadragon_users_hashed, op);

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_BUSY) {
        if (ngx_http_seadragon_header_add(r, "Retry-After", (u_char *) "1", 1)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "too many passwords to hash at "
                                              "once: try again");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;

#else

    (void) slcf;

    return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "passwords are hashed in nginx's "
                                          "thread pool, and this nginx was "
                                          "built without threads");
#endif
}


/* in a thread of the pool: only op's password and hash */

static void
ngx_http_seadragon_users_hash(void *data)
{
    ngx_http_seadragon_users_op_t  *op = data;

    op->hashed = seadragon_password_hash((const char *) op->password,
                                         op->password_len, op->hash,
                                         sizeof(op->hash));

    OPENSSL_cleanse(op->password, op->password_len);
    op->password_len = 0;
}


/* back in the worker, the client still there */

static ngx_int_t
ngx_http_seadragon_users_hashed(ngx_http_request_t *r, void *data)
{
    ngx_http_seadragon_users_op_t  *op = data;

    if (op->hashed != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon admin: hashing the password of the user "
                      "\"%V\" failed", &op->name);

        return ngx_http_seadragon_admin_error(r,
                                              NGX_HTTP_INTERNAL_SERVER_ERROR,
                                              "the password could not be "
                                              "hashed");
    }

    return ngx_http_seadragon_users_write(r, op);
}


static ngx_int_t
ngx_http_seadragon_users_write(ngx_http_request_t *r,
    ngx_http_seadragon_users_op_t *op)
{
    int                              rc;
    char                            *message;
    MDB_txn                         *txn;
    ngx_uint_t                       status;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    op->now = ngx_time();

    status = ngx_http_seadragon_admin_write_begin(r, smcf->store, &txn,
                                                  &message);

    if (status != NGX_OK) {
        ngx_explicit_memzero(op->hash, sizeof(op->hash));
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    rc = ngx_http_seadragon_store_write(smcf->store, r->connection->log, txn,
                                        ngx_http_seadragon_users_change, op);

    ngx_explicit_memzero(op->hash, sizeof(op->hash));

    if (rc == MDB_KEYEXIST) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_CONFLICT,
                                              "a user with this name already "
                                              "exists; remove it first or "
                                              "choose another name");
    }

    if (rc == MDB_NOTFOUND) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon admin: no random bytes for the store's "
                      "JWT secret");
        return ngx_http_seadragon_admin_error(r,
                                              NGX_HTTP_INTERNAL_SERVER_ERROR,
                                              "no random bytes for the "
                                              "store's secret");
    }

    status = ngx_http_seadragon_admin_commit(r, smcf->store, rc, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon admin %s the user \"%V\" (source \"%s\", %s%s)",
                  op->create ? "added" : "changed", &op->name,
                  op->record.source,
                  (op->record.flags & SEADRAGON_USER_DISABLED) ? "disabled"
                                                               : "active",
                  (op->set_password && !op->create) ? ", a new password" : "");

    ngx_explicit_memzero(op->record.hash, sizeof(op->record.hash));

    return ngx_http_seadragon_users_send(r, op->create ? NGX_HTTP_CREATED
                                                       : NGX_HTTP_OK,
                                         &op->record);
}


/*
 * In the write transaction: a new user (MDB_KEYEXIST if one was added
 * meanwhile; a store made before logins gets its JWT secret, as the tool
 * gives it), or the fields the body gives (MDB_NOTFOUND if the user was
 * removed meanwhile).  op->record is the record written.
 */

static int
ngx_http_seadragon_users_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_http_seadragon_users_op_t  *op = data;

    int                       rc;
    seadragon_secret_t        secret;
    seadragon_user_record_t   record;

    rc = seadragon_user_find(txn, dbs, (const char *) op->name.data,
                             op->name.len, &record);

    if (op->create) {
        if (rc == MDB_SUCCESS || rc == MDB_CORRUPTED) {
            return MDB_KEYEXIST;
        }

        if (rc != MDB_NOTFOUND) {
            return rc;
        }

        rc = seadragon_secret_get(txn, dbs, SEADRAGON_SECRET_CURRENT,
                                  &secret);
        OPENSSL_cleanse(&secret, sizeof(seadragon_secret_t));

        if (rc == MDB_NOTFOUND) {
            rc = seadragon_secret_rotate(txn, dbs, op->now);
        }

        if (rc != MDB_SUCCESS) {
            return rc;
        }

        ngx_memzero(&record, sizeof(seadragon_user_record_t));
        record.version = SEADRAGON_USER_VERSION;
        record.created = (int64_t) op->now;
        ngx_memcpy(record.name, op->name.data, op->name.len);

    } else if (rc != MDB_SUCCESS) {
        return rc;
    }

    if (op->set_password) {
        ngx_memcpy(record.hash, op->hash, sizeof(record.hash));
        record.hash[sizeof(record.hash) - 1] = '\0';
        record.changed = (int64_t) op->now;
    }

    if (op->set_source) {
        if (ngx_strcmp(record.source, op->record.source) != 0) {
            record.changed = (int64_t) op->now;
        }

        ngx_memzero(record.source, sizeof(record.source));
        ngx_memcpy(record.source, op->record.source,
                   ngx_strlen(op->record.source));
    }

    if (op->set_active) {
        if (op->active) {
            record.flags &= ~SEADRAGON_USER_DISABLED;

        } else if (!(record.flags & SEADRAGON_USER_DISABLED)) {
            /* ends the user's tokens: enabled again, a new login */
            record.flags |= SEADRAGON_USER_DISABLED;
            record.changed = (int64_t) op->now;
        }
    }

    op->record = record;

    rc = seadragon_user_put(txn, (seadragon_store_dbs_t *) dbs, &record);

    ngx_explicit_memzero(record.hash, sizeof(record.hash));

    return rc;
}


/* GET users: as the tool's "user list", in name order, with no hashes */

static ngx_int_t
ngx_http_seadragon_users_list(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store)
{
    ngx_int_t                  rc;
    ngx_http_seadragon_json_t  j;

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_str(&j, "users");
    ngx_http_seadragon_json_array_open(&j);

    rc = ngx_http_seadragon_store_read(store, r->connection->log,
                                       "a users listing",
                                       ngx_http_seadragon_users_walk, &j);

    return ngx_http_seadragon_admin_list_send(r, &j,
                                              rc == NGX_ERROR ? NGX_ERROR
                                                              : NGX_OK);
}


/*
 * Inside the store's guard: each record is copied out of the map before
 * it is written.  A store made before users has none (its handle opened
 * here ends with the transaction); a damaged record is left out, as the
 * keys' listing leaves out a damaged key.
 */

static int
ngx_http_seadragon_users_walk(ngx_http_seadragon_store_t *store, void *data)
{
    ngx_http_seadragon_json_t  *j = data;

    int                       rc;
    MDB_dbi                   dbi;
    MDB_val                   k, v;
    MDB_cursor               *c;
    seadragon_user_record_t   user;

    dbi = store->dbs.users;

    if (dbi == 0) {
        rc = mdb_dbi_open(store->txn, SEADRAGON_STORE_DB_USERS, 0, &dbi);

        if (rc == MDB_NOTFOUND) {
            return MDB_SUCCESS;
        }

        if (rc != MDB_SUCCESS) {
            return rc;
        }
    }

    rc = mdb_cursor_open(store->txn, dbi, &c);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        if (seadragon_user_record_read(&v, &user) != 0) {
            continue;
        }

        ngx_explicit_memzero(user.hash, sizeof(user.hash));
        ngx_http_seadragon_users_json(j, &user);
    }

    mdb_cursor_close(c);

    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}


static ngx_int_t
ngx_http_seadragon_users_get(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name)
{
    ngx_int_t                rc;
    seadragon_user_record_t  user;

    if (!ngx_http_seadragon_users_name_valid(name)) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    rc = ngx_http_seadragon_store_user(store, r->connection->log, name,
                                       &user);

    if (rc == NGX_ERROR) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "the store cannot be read");
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    ngx_explicit_memzero(user.hash, sizeof(user.hash));

    return ngx_http_seadragon_users_send(r, NGX_HTTP_OK, &user);
}


static ngx_int_t
ngx_http_seadragon_users_remove(ngx_http_request_t *r,
    ngx_http_seadragon_store_t *store, ngx_str_t *name)
{
    int          rc;
    char        *message;
    u_char      *p;
    size_t       size;
    MDB_txn     *txn;
    ngx_uint_t   status;

    if (!ngx_http_seadragon_users_name_valid(name)) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    status = ngx_http_seadragon_admin_write_begin(r, store, &txn, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    rc = ngx_http_seadragon_store_write(store, r->connection->log, txn,
                                      ngx_http_seadragon_users_remove_change,
                                      name);

    if (rc == MDB_NOTFOUND) {
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_FOUND,
                                        ngx_http_seadragon_users_unknown);
    }

    status = ngx_http_seadragon_admin_commit(r, store, rc, &message);

    if (status != NGX_OK) {
        return ngx_http_seadragon_admin_error(r, status, message);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "seadragon admin removed the user \"%V\"", name);

    size = name->len + sizeof("{\"removed\":\"\"}");

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the name passed seadragon_name_valid(): no escapes */

    size = ngx_slprintf(p, p + size, "{\"removed\":\"%V\"}", name) - p;

    return ngx_http_seadragon_send_json(r, NGX_HTTP_OK, p, size);
}


/* a store made before users has no database to remove from: not found */

static int
ngx_http_seadragon_users_remove_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    ngx_str_t  *name = data;

    return seadragon_user_remove(txn, dbs, (const char *) name->data,
                                 name->len);
}


/* a user as GET .../me shows one: never its hash */

static void
ngx_http_seadragon_users_json(ngx_http_seadragon_json_t *j,
    seadragon_user_record_t *user)
{
    ngx_http_seadragon_json_map_open(j);
    ngx_http_seadragon_json_field(j, "name", (u_char *) user->name,
                                  ngx_strlen(user->name));
    ngx_http_seadragon_json_field(j, "source", (u_char *) user->source,
                                  ngx_strlen(user->source));
    ngx_http_seadragon_json_str(j, "active");
    ngx_http_seadragon_json_check(j, yajl_gen_bool(j->gen,
                                  !(user->flags & SEADRAGON_USER_DISABLED)));
    ngx_http_seadragon_json_int(j, "created", (long long) user->created);
    ngx_http_seadragon_json_str(j, "last_login");

    if (user->last_login) {
        ngx_http_seadragon_json_check(j, yajl_gen_integer(j->gen,
                                                (long long) user->last_login));

    } else {
        ngx_http_seadragon_json_check(j, yajl_gen_null(j->gen));
    }

    ngx_http_seadragon_json_map_close(j);
}


static ngx_int_t
ngx_http_seadragon_users_send(ngx_http_request_t *r, ngx_uint_t status,
    seadragon_user_record_t *user)
{
    ngx_http_seadragon_json_t  j;

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_users_json(&j, user);

    r->headers_out.status = status;

    return ngx_http_seadragon_admin_send(r, &j);
}


/* a user's name, as seadragon-store checks it */

static ngx_uint_t
ngx_http_seadragon_users_name_valid(ngx_str_t *name)
{
    return name->data != NULL
           && seadragon_name_valid((const char *) name->data, name->len,
                                   SEADRAGON_KEY_NAME_LEN - 1, "_-.@");
}


static void
ngx_http_seadragon_users_cleanse(void *data)
{
    ngx_http_seadragon_users_op_t  *op = data;

    if (op->password && op->password_len) {
        OPENSSL_cleanse(op->password, op->password_len);
        op->password_len = 0;
    }

    ngx_explicit_memzero(op->hash, sizeof(op->hash));
}
