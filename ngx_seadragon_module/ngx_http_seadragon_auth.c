
/*
 * Copyright (C) The Seadragon authors
 *
 * Logins (issue 16): a location of "seadragon_auth" answers
 *
 *   POST .../token  an OAuth2 password form (username, password, as
 *                   FastAPI's OAuth2PasswordRequestForm reads it) with
 *                   {"access_token", "token_type":"bearer", "expires_in"},
 *                   an HS256 JWT signed with the store's jwt_secret;
 *   GET  .../me     Authorization: Bearer TOKEN with the token's user.
 *
 * argon2id costs tens of milliseconds and 64 MiB by design, so a password
 * is checked in nginx's thread pool, never in the worker: the request
 * waits as nginx's own thread operations make one wait (r->main->blocked:
 * ngx_http_close_request() frees nothing while it is set, so the request
 * and its pool outlive the task whatever the client does), and the task's
 * event, run back in the worker, resumes it.  A name no user has is
 * checked against a dummy hash of the same cost: a wrong name and a wrong
 * password get the same answer after the same work.
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/crypto.h>


/* a login form longer than this is refused before it is read */
#define NGX_HTTP_SEADRAGON_AUTH_FORM_MAX   4096

/* a token's life unless expires= says otherwise, and its bounds */
#define NGX_HTTP_SEADRAGON_AUTH_EXPIRES    3600
#define NGX_HTTP_SEADRAGON_AUTH_EXPIRES_MIN  60
#define NGX_HTTP_SEADRAGON_AUTH_EXPIRES_MAX  (30 * 86400)

/* nginx has no name for it: FastAPI's answer to a form that lacks a field */
#define NGX_HTTP_SEADRAGON_AUTH_UNPROCESSABLE  422

#if (NGX_THREADS)

/* a login between its form and its answer: the thread task's data */

typedef struct {
    ngx_str_t                        name;
    ngx_str_t                        password;    /* decoded, cleansed */
    seadragon_user_record_t          user;        /* read before the hash */
    char                            *hash;        /* the user's or dummy */
    int                              verdict;     /* the thread's: 1, 0, -1 */
    unsigned                         known:1;     /* the name is a user's */
} ngx_http_seadragon_auth_login_t;


/*
 * The form's fields, decoded into the request's pool; the form itself is
 * in the pool too, so that a cleanup wipes its raw copy and the decoded
 * password however the login ends, refused or not.
 */

typedef struct {
    ngx_str_t                        raw;         /* the body, cleansed */
    ngx_str_t                        username;
    ngx_str_t                        password;
    ngx_str_t                        grant_type;
    unsigned                         has_username:1;
    unsigned                         has_password:1;
    unsigned                         has_grant_type:1;
} ngx_http_seadragon_auth_form_t;


static ngx_int_t ngx_http_seadragon_auth_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_auth_token(ngx_http_request_t *r);
static void ngx_http_seadragon_auth_token_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_auth_token_start(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_auth_form_read(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form, char **message);
static ngx_uint_t ngx_http_seadragon_auth_form_type(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_auth_form_body(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form);
static ngx_int_t ngx_http_seadragon_auth_form_decode(ngx_pool_t *pool,
    u_char *p, u_char *last, ngx_str_t *out);
static ngx_int_t ngx_http_seadragon_auth_hash_post(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form, ngx_uint_t known,
    seadragon_user_record_t *user);
static void ngx_http_seadragon_auth_hash(void *data);
static ngx_int_t ngx_http_seadragon_auth_hashed(ngx_http_request_t *r,
    void *data);
static ngx_int_t ngx_http_seadragon_auth_token_answer(ngx_http_request_t *r,
    ngx_http_seadragon_auth_login_t *login);
static ngx_int_t ngx_http_seadragon_auth_token_send(ngx_http_request_t *r,
    ngx_str_t *token, time_t expires);
static void ngx_http_seadragon_auth_last_login(ngx_http_request_t *r,
    seadragon_user_record_t *user, time_t now);
static int ngx_http_seadragon_auth_last_login_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data);
static ngx_int_t ngx_http_seadragon_auth_me(ngx_http_request_t *r);
static ngx_int_t ngx_http_seadragon_auth_refuse(ngx_http_request_t *r);
static void ngx_http_seadragon_auth_form_cleanse(void *data);


/*
 * What an unknown name is checked against: an argon2id hash of random
 * bytes nobody kept, of the cost of every user's (SEADRAGON_ARGON2_*).
 * A match with it is never a login.
 */

static char  ngx_http_seadragon_auth_dummy[] =
    "$argon2id$v=19$m=65536,t=3,p=1$ErSHl3Qqtd8mh6134MGMoA"
    "$Rbf5hSvjshuUMKdsMcQPxrQBxtmJABzruYqNzDq2dqw";


static char  ngx_http_seadragon_auth_incorrect[] =
    "Incorrect username or password";

#endif /* NGX_THREADS */


/*
 * seadragon_auth ZONE [expires=TIME] [thread_pool=NAME]
 * [attempts=N/TIME|off] (ngx_http_seadragon_auth_limit.c): the location
 * answers .../token and .../me; the hashes run in the thread pool NAME
 * ("default" unless named: nginx makes that one with 32 threads; a pool
 * of its own, "thread_pool NAME threads=N;", bounds the hashes' memory to
 * N times 64 MiB per worker).
 */

char *
ngx_http_seadragon_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
#if (NGX_THREADS)
    ngx_http_seadragon_loc_conf_t  *slcf = conf;

    time_t                           expires;
    ngx_str_t                       *value, name, pool;
    ngx_uint_t                       i;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_seadragon_auth_conf_t  *acf;

    if (slcf->auth) {
        return "is duplicate";
    }

    value = cf->args->elts;

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_seadragon_auth_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->zone = ngx_http_seadragon_zone_get(cf, &value[1]);
    if (acf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->expires = NGX_HTTP_SEADRAGON_AUTH_EXPIRES;
    acf->attempts = NGX_HTTP_SEADRAGON_LOGIN_ATTEMPTS;
    acf->attempts_period = NGX_HTTP_SEADRAGON_LOGIN_PERIOD;
    ngx_str_set(&pool, "default");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "expires=", 8) == 0) {
            name.data = value[i].data + 8;
            name.len = value[i].len - 8;

            expires = ngx_parse_time(&name, 1);

            if (expires == (time_t) NGX_ERROR
                || expires < NGX_HTTP_SEADRAGON_AUTH_EXPIRES_MIN
                || expires > NGX_HTTP_SEADRAGON_AUTH_EXPIRES_MAX)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\": expires= is how "
                                   "long a login token lasts, a time from "
                                   "1m to 30d (\"1h\", \"90m\")", &value[i]);
                return NGX_CONF_ERROR;
            }

            acf->expires = expires;
            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
            if (ngx_http_seadragon_task_pool_name(cf, &value[i], &pool)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "attempts=", 9) == 0) {
            if (ngx_http_seadragon_auth_limit_conf(cf, acf, &value[i])
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected expires=TIME "
                           "(a login token's life), thread_pool=NAME (where "
                           "passwords are hashed) or attempts=N/TIME (logins "
                           "an address and a name may try)", &value[i]);
        return NGX_CONF_ERROR;
    }

    /* an unknown name is nginx's own error: "unknown thread pool" */

    acf->thread_pool = ngx_thread_pool_add(cf, &pool);
    if (acf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->conf_file = cf->conf_file->file.name.data;
    acf->conf_line = cf->conf_file->line;

    slcf->auth = acf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_seadragon_auth_handler;

    return NGX_CONF_OK;

#else

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"seadragon_auth\" hashes passwords in nginx's "
                       "thread pool, and this nginx was built without "
                       "threads (configure --with-threads)");
    return NGX_CONF_ERROR;

#endif
}


/* from merge_loc_conf: what the location needs of the main configuration */

char *
ngx_http_seadragon_auth_merge(ngx_conf_t *cf,
    ngx_http_seadragon_loc_conf_t *conf)
{
    ngx_http_seadragon_main_conf_t  *smcf;

    /* the location answers itself: a queue or an admin API would be lost */

    if ((conf->zone != NGX_CONF_UNSET_PTR && conf->zone != NULL)
        || conf->admin || conf->health_zone || conf->metrics_zone)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"seadragon_auth\" in %s:%ui answers the location's "
                      "requests itself: give \"seadragon_queue\", "
                      "\"seadragon_admin\", \"seadragon_health\" and "
                      "\"seadragon_metrics\" locations of their own",
                      conf->auth->conf_file, conf->auth->conf_line);
        return NGX_CONF_ERROR;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_seadragon_module);

    if (smcf->store == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"seadragon_auth\" in %s:%ui checks the store's users "
                      "and signs with its secret, which needs "
                      "\"seadragon_store PATH\"",
                      conf->auth->conf_file, conf->auth->conf_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


#if (NGX_THREADS)

/* the last segment of the URI: "token", "me" */

static ngx_int_t
ngx_http_seadragon_auth_handler(ngx_http_request_t *r)
{
    u_char      *p, *last;
    ngx_int_t    rc;
    ngx_str_t    route;
    ngx_uint_t   me;

    last = r->uri.data + r->uri.len;

    while (last > r->uri.data && *(last - 1) == '/') {
        last--;
    }

    for (p = last; p > r->uri.data && *(p - 1) != '/'; p--) {
        /* void */
    }

    route.data = p;
    route.len = last - p;

    if (route.len == 5 && ngx_strncmp(route.data, "token", 5) == 0) {

        if (r->method != NGX_HTTP_POST) {
            if (ngx_http_seadragon_header_add(r, "Allow", (u_char *) "POST",
                                              4)
                == NULL)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_seadragon_auth_error(r, NGX_HTTP_NOT_ALLOWED,
                                                 "a login is POST .../token "
                                                 "with a form of username "
                                                 "and password", 0);
        }

        return ngx_http_seadragon_auth_token(r);
    }

    me = (route.len == 2 && ngx_strncmp(route.data, "me", 2) == 0);

    if (me || (route.len == 5 && ngx_strncmp(route.data, "queue", 5) == 0)) {

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            if (ngx_http_seadragon_header_add(r, "Allow",
                                              (u_char *) "GET, HEAD", 9)
                == NULL)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_seadragon_auth_error(r, NGX_HTTP_NOT_ALLOWED,
                                                 me ? "the user of a token "
                                                      "is GET .../me"
                                                    : "a user's place in "
                                                      "line is GET "
                                                      ".../queue", 0);
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return me ? ngx_http_seadragon_auth_me(r)
                  : ngx_http_seadragon_auth_queue(r);
    }

    return ngx_http_seadragon_auth_error(r, NGX_HTTP_NOT_FOUND,
                                         "no such auth endpoint: use token, "
                                         "me or queue", 0);
}


static ngx_int_t
ngx_http_seadragon_auth_token(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r->headers_in.content_length_n > NGX_HTTP_SEADRAGON_AUTH_FORM_MAX) {
        return ngx_http_seadragon_auth_error(r,
                                        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "the login form is too large: at "
                                        "most 4096 bytes", 0);
    }

    rc = ngx_http_read_client_request_body(r,
                                          ngx_http_seadragon_auth_token_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The form has arrived.  NGX_DONE from token_start: the hash runs, and
 * the request is finalized when it is done (token_resume).
 */

static void
ngx_http_seadragon_auth_token_body(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_seadragon_auth_token_start(r);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_seadragon_auth_token_start(ngx_http_request_t *r)
{
    char                            *message;
    ngx_int_t                        rc;
    ngx_uint_t                       known;
    ngx_pool_cleanup_t              *cln;
    seadragon_user_record_t          user;
    ngx_http_seadragon_auth_form_t  *form;
    ngx_http_seadragon_main_conf_t  *smcf;

    /* the cleanup first: every refusal below leaves no password behind */

    form = ngx_pcalloc(r->pool, sizeof(ngx_http_seadragon_auth_form_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (form == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_seadragon_auth_form_cleanse;
    cln->data = form;

    rc = ngx_http_seadragon_auth_form_read(r, form, &message);

    if (rc != NGX_OK) {
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_seadragon_auth_error(r, rc, message, 0);
    }

    /* longer than any password a user can have: no hash tells more */

    if (form->password.len > SEADRAGON_PASSWORD_MAX) {
        return ngx_http_seadragon_auth_refuse(r);
    }

    /* over attempts=, known or not: 429 before the store or a hash */

    rc = ngx_http_seadragon_auth_limit_take(r, &form->username);

    if (rc != NGX_OK) {
        return rc == NGX_DECLINED
               ? ngx_http_seadragon_auth_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                               "Too many login attempts", 0)
               : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    known = 0;

    if (seadragon_name_valid((const char *) form->username.data,
                             form->username.len, SEADRAGON_KEY_NAME_LEN - 1,
                             "._@-"))
    {
        rc = ngx_http_seadragon_store_user(smcf->store, r->connection->log,
                                           &form->username, &user);

        if (rc == NGX_ERROR) {
            return ngx_http_seadragon_auth_error(r,
                                                 NGX_HTTP_SERVICE_UNAVAILABLE,
                                                 "the store cannot be read",
                                                 0);
        }

        known = (rc == NGX_OK);
    }

    return ngx_http_seadragon_auth_hash_post(r, form, known, &user);
}


/*
 * The body, in memory, as application/x-www-form-urlencoded: NGX_OK and
 * the fields, or the status of the refusal and its message, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_seadragon_auth_form_read(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form, char **message)
{
    u_char     *p, *last, *eq, *amp;
    ngx_int_t   rc;
    ngx_str_t   key, *field;
    unsigned    seen;

    if (!ngx_http_seadragon_auth_form_type(r)) {
        *message = "a login is a form: Content-Type: "
                   "application/x-www-form-urlencoded";
        return NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
    }

    rc = ngx_http_seadragon_auth_form_body(r, form);

    if (rc != NGX_OK) {
        *message = "the login form is too large: at most 4096 bytes";
        return rc;
    }

    last = form->raw.data + form->raw.len;

    for (p = form->raw.data; p < last; p = amp + 1) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (ngx_http_seadragon_auth_form_decode(r->pool, p, eq ? eq : amp,
                                                &key)
            != NGX_OK)
        {
            goto invalid;
        }

        if (key.len == 8 && ngx_strncmp(key.data, "username", 8) == 0) {
            field = &form->username;
            seen = form->has_username;
            form->has_username = 1;

        } else if (key.len == 8 && ngx_strncmp(key.data, "password", 8) == 0) {
            field = &form->password;
            seen = form->has_password;
            form->has_password = 1;

        } else if (key.len == 10
                   && ngx_strncmp(key.data, "grant_type", 10) == 0)
        {
            field = &form->grant_type;
            seen = form->has_grant_type;
            form->has_grant_type = 1;

        } else {
            continue;    /* scope, client_id, client_secret: not used */
        }

        if (seen) {
            *message = "a field of the login form is given twice";
            return NGX_HTTP_BAD_REQUEST;
        }

        if (ngx_http_seadragon_auth_form_decode(r->pool, eq ? eq + 1 : amp,
                                                amp, field)
            != NGX_OK)
        {
            goto invalid;
        }
    }

    /* FastAPI's form: grant_type may be left out, else it is "password" */

    if (form->has_grant_type && form->grant_type.len
        && !(form->grant_type.len == 8
             && ngx_strncmp(form->grant_type.data, "password", 8) == 0))
    {
        *message = "unsupported grant_type: a login is grant_type=password";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (form->username.len == 0 || form->password.len == 0) {
        *message = "username and password are required";
        return NGX_HTTP_SEADRAGON_AUTH_UNPROCESSABLE;
    }

    return NGX_OK;

invalid:

    *message = "the login form is not valid application/x-www-form-urlencoded";
    return NGX_HTTP_BAD_REQUEST;
}


/* Content-Type: application/x-www-form-urlencoded, parameters or not */

static ngx_uint_t
ngx_http_seadragon_auth_form_type(ngx_http_request_t *r)
{
    size_t      len;
    ngx_str_t  *type;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    type = &r->headers_in.content_type->value;
    len = sizeof("application/x-www-form-urlencoded") - 1;

    if (type->len < len
        || ngx_strncasecmp(type->data,
                           (u_char *) "application/x-www-form-urlencoded",
                           len)
           != 0)
    {
        return 0;
    }

    return type->len == len || type->data[len] == ';'
           || type->data[len] == ' ';
}


/*
 * The body in one piece of the pool, form->raw: NGX_OK, or
 * NGX_HTTP_REQUEST_ENTITY_TOO_LARGE (in a file, or over 4096 bytes), or
 * NGX_ERROR.  nginx's buffers of it are wiped as they are copied: the
 * password is left only in form->raw, which the form's cleanup wipes.
 */

static ngx_int_t
ngx_http_seadragon_auth_form_body(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (!ngx_buf_in_memory(b) && b->file_last > b->file_pos) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        if (ngx_buf_in_memory(b)) {
            len += b->last - b->pos;
        }
    }

    if (len > NGX_HTTP_SEADRAGON_AUTH_FORM_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    form->raw.data = ngx_pnalloc(r->pool, len + 1);
    if (form->raw.data == NULL) {
        return NGX_ERROR;
    }

    p = form->raw.data;

    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            OPENSSL_cleanse(b->pos, b->last - b->pos);
        }
    }

    form->raw.len = p - form->raw.data;

    return NGX_OK;
}


/* "+" and "%XX" decoded into the pool; NGX_DECLINED: a bad "%" */

static ngx_int_t
ngx_http_seadragon_auth_form_decode(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *out)
{
    u_char      *d;
    ngx_int_t    hi, lo;

    out->data = ngx_pnalloc(pool, (last - p) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    d = out->data;

    while (p < last) {

        if (*p == '+') {
            *d++ = ' ';
            p++;
            continue;
        }

        if (*p != '%') {
            *d++ = *p++;
            continue;
        }

        if (last - p < 3) {
            return NGX_DECLINED;
        }

        hi = ngx_hextoi(p + 1, 1);
        lo = ngx_hextoi(p + 2, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) (hi << 4 | lo);
        p += 3;
    }

    *d = '\0';
    out->len = d - out->data;

    return NGX_OK;
}


/*
 * The hash goes to the thread pool (ngx_http_seadragon_auth_task.c); the
 * request waits blocked, as for nginx's aio threads, and is answered by
 * token_answer() when the hash is done.
 */

static ngx_int_t
ngx_http_seadragon_auth_hash_post(ngx_http_request_t *r,
    ngx_http_seadragon_auth_form_t *form, ngx_uint_t known,
    seadragon_user_record_t *user)
{
    ngx_int_t                         rc;
    ngx_http_seadragon_loc_conf_t    *slcf;
    ngx_http_seadragon_auth_login_t  *login;

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    /* the password is the form's: its cleanup wipes it, however it ends */

    login = ngx_pcalloc(r->pool, sizeof(ngx_http_seadragon_auth_login_t));
    if (login == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    login->name = form->username;
    login->password = form->password;
    login->known = known;

    if (known) {
        login->user = *user;
        login->hash = login->user.hash;

    } else {
        login->hash = ngx_http_seadragon_auth_dummy;
    }

    rc = ngx_http_seadragon_task_post(r, slcf->auth->thread_pool,
                                      ngx_http_seadragon_auth_hash,
                                      ngx_http_seadragon_auth_hashed, login);

    if (rc == NGX_BUSY) {
        if (ngx_http_seadragon_header_add(r, "Retry-After", (u_char *) "1", 1)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_seadragon_auth_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             "too many logins at once: try "
                                             "again", 0);
    }

    if (rc != NGX_DONE) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


/*
 * In a thread of the pool: only the login is read and written (the
 * decoded password and the verdict), which the worker leaves alone until
 * the task's event says it is done.
 */

static void
ngx_http_seadragon_auth_hash(void *data)
{
    ngx_http_seadragon_auth_login_t  *login = data;

    login->verdict = seadragon_password_verify(login->hash,
                                               (const char *)
                                               login->password.data,
                                               login->password.len);
}


/* back in the worker, the client still there: the answer */

static ngx_int_t
ngx_http_seadragon_auth_hashed(ngx_http_request_t *r, void *data)
{
    return ngx_http_seadragon_auth_token_answer(r, data);
}


static ngx_int_t
ngx_http_seadragon_auth_token_answer(ngx_http_request_t *r,
    ngx_http_seadragon_auth_login_t *login)
{
    time_t                           now;
    ngx_int_t                        rc;
    ngx_str_t                        token, source;
    ngx_uint_t                       has_previous;
    seadragon_secret_t               current, previous;
    seadragon_user_record_t          user;
    ngx_http_seadragon_loc_conf_t   *slcf;
    ngx_http_seadragon_main_conf_t  *smcf;

    OPENSSL_cleanse(login->password.data, login->password.len);
    login->password.len = 0;

    if (login->known && login->verdict == -1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon auth: the password hash of the user \"%V\" "
                      "is damaged: set it again with seadragon-store user "
                      "passwd", &login->name);
    }

    if (!login->known || login->verdict != 1) {
        return ngx_http_seadragon_auth_refuse(r);
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    /* what the store says now: the hash ran while it could change */

    rc = ngx_http_seadragon_store_user(smcf->store, r->connection->log,
                                       &login->name, &user);

    if (rc == NGX_ERROR) {
        return ngx_http_seadragon_auth_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             "the store cannot be read", 0);
    }

    if (rc == NGX_DECLINED
        || user.changed != login->user.changed
        || ngx_strcmp(user.hash, login->user.hash) != 0)
    {
        return ngx_http_seadragon_auth_refuse(r);
    }

    if (user.flags & SEADRAGON_USER_DISABLED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon auth: the user \"%V\" is disabled",
                      &login->name);
        ngx_http_seadragon_auth_limit_result(r, NULL,
                                          NGX_HTTP_SEADRAGON_LOGINS_INACTIVE);
        return ngx_http_seadragon_auth_error(r, NGX_HTTP_FORBIDDEN,
                                             "Inactive user", 0);
    }

    rc = ngx_http_seadragon_store_secrets(smcf->store, r->connection->log,
                                          &current, &previous, &has_previous);

    if (rc != NGX_OK) {
        OPENSSL_cleanse(&current, sizeof(seadragon_secret_t));
        OPENSSL_cleanse(&previous, sizeof(seadragon_secret_t));

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "seadragon auth: the store has no jwt_secret: run "
                          "seadragon-store secret rotate");
        }

        return ngx_http_seadragon_auth_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             rc == NGX_DECLINED
                                             ? "logins are not set up: the "
                                               "store has no secret"
                                             : "the store cannot be read", 0);
    }

    now = ngx_time();

    source.data = (u_char *) user.source;
    source.len = ngx_strlen(user.source);

    rc = ngx_http_seadragon_jwt_sign(r->pool, current.key, sizeof(current.key),
                                     &login->name, &source, now,
                                     now + slcf->auth->expires, &token);

    OPENSSL_cleanse(&current, sizeof(seadragon_secret_t));
    OPENSSL_cleanse(&previous, sizeof(seadragon_secret_t));

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_auth_last_login(r, &user, now);
    ngx_http_seadragon_auth_limit_result(r, &login->name,
                                         NGX_HTTP_SEADRAGON_LOGINS_OK);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seadragon auth: the user \"%V\" logged in", &login->name);

    return ngx_http_seadragon_auth_token_send(r, &token, slcf->auth->expires);
}


/* the token as OAuth2 answers one (RFC 6749 5.1): never cached */

static ngx_int_t
ngx_http_seadragon_auth_token_send(ngx_http_request_t *r, ngx_str_t *token,
    time_t expires)
{
    ngx_http_seadragon_json_t  j;

    if (ngx_http_seadragon_header_add(r, "Cache-Control",
                                      (u_char *) "no-store", 8)
        == NULL
        || ngx_http_seadragon_header_add(r, "Pragma", (u_char *) "no-cache", 8)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "access_token", token->data,
                                  token->len);
    ngx_http_seadragon_json_field(&j, "token_type", (u_char *) "bearer", 6);
    ngx_http_seadragon_json_int(&j, "expires_in", (long long) expires);
    ngx_http_seadragon_json_map_close(&j);

    r->headers_out.status = NGX_HTTP_OK;

    return ngx_http_seadragon_admin_send(r, &j);
}


/*
 * last_login through the admin API's write path.  A store read-only for
 * the workers keeps its last_login: the login still succeeds.
 */

static void
ngx_http_seadragon_auth_last_login(ngx_http_request_t *r,
    seadragon_user_record_t *user, time_t now)
{
    int                              rc;
    MDB_txn                         *txn;
    ngx_int_t                        n;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    n = ngx_http_seadragon_store_write_begin(smcf->store, r->connection->log,
                                             &txn);
    if (n != NGX_OK) {
        return;
    }

    user->last_login = (int64_t) now;

    rc = ngx_http_seadragon_store_write(smcf->store, r->connection->log, txn,
                                     ngx_http_seadragon_auth_last_login_change,
                                     user);

    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND && rc != MDB_PANIC) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "seadragon_store \"%V\": writing a last_login failed: "
                      "%s", &smcf->store->path, mdb_strerror(rc));
    }
}


/* only last_login changes, of the record as it is in the transaction */

static int
ngx_http_seadragon_auth_last_login_change(MDB_txn *txn,
    const seadragon_store_dbs_t *dbs, void *data)
{
    seadragon_user_record_t  *user = data;

    int                       rc;
    seadragon_user_record_t   record;

    rc = seadragon_user_find(txn, dbs, user->name,
                             ngx_strlen(user->name), &record);
    if (rc != MDB_SUCCESS) {
        return rc;
    }

    record.last_login = user->last_login;

    /* the database exists (the user is in it); dbs is the store's own */

    return seadragon_user_put(txn, (seadragon_store_dbs_t *) dbs, &record);
}


/*
 * NGX_OK: the user of the request's token; NGX_DECLINED: the token was
 * refused, the refusal is sent and *answer is what the handler returns.
 * The one check of GET .../me and GET .../queue.
 */

ngx_int_t
ngx_http_seadragon_auth_bearer(ngx_http_request_t *r,
    seadragon_user_record_t *user, ngx_http_seadragon_jwt_claims_t *claims,
    ngx_int_t *answer)
{
    ngx_http_seadragon_ctx_t  *ctx;

    /* the access phase took the key headers out: the token is the ctx's */

    ctx = ngx_http_get_module_ctx(r, ngx_seadragon_module);

    if (ctx == NULL || ctx->key.len == 0 || !ctx->key_bearer) {
        *answer = ngx_http_seadragon_auth_error(r, NGX_HTTP_UNAUTHORIZED,
                                                "Not authenticated", 1);
        return NGX_DECLINED;
    }

    switch (ngx_http_seadragon_login_check(r, &ctx->key, user, claims)) {

    case NGX_HTTP_SEADRAGON_LOGIN_OK:
        return NGX_OK;

    case NGX_HTTP_SEADRAGON_LOGIN_DISABLED:
        *answer = ngx_http_seadragon_auth_error(r, NGX_HTTP_FORBIDDEN,
                                                "Inactive user", 0);
        break;

    case NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR:
        *answer = ngx_http_seadragon_auth_error(r,
                                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                                "the store cannot be read", 0);
        break;

    default: /* NGX_HTTP_SEADRAGON_LOGIN_INVALID */
        *answer = ngx_http_seadragon_auth_error(r, NGX_HTTP_UNAUTHORIZED,
                                                "Could not validate "
                                                "credentials", 1);
        break;
    }

    return NGX_DECLINED;
}


/* GET .../me: the user of a valid token, as the store has it now */

static ngx_int_t
ngx_http_seadragon_auth_me(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    seadragon_user_record_t           user;
    ngx_http_seadragon_json_t         j;
    ngx_http_seadragon_jwt_claims_t   claims;

    if (ngx_http_seadragon_auth_bearer(r, &user, &claims, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "name", (u_char *) user.name,
                                  ngx_strlen(user.name));
    ngx_http_seadragon_json_field(&j, "source", (u_char *) user.source,
                                  ngx_strlen(user.source));
    ngx_http_seadragon_json_str(&j, "active");
    ngx_http_seadragon_json_check(&j, yajl_gen_bool(j.gen, 1));
    ngx_http_seadragon_json_int(&j, "created", (long long) user.created);
    ngx_http_seadragon_json_str(&j, "last_login");

    if (user.last_login) {
        ngx_http_seadragon_json_check(&j, yajl_gen_integer(j.gen,
                                                 (long long) user.last_login));

    } else {
        ngx_http_seadragon_json_check(&j, yajl_gen_null(j.gen));
    }

    ngx_http_seadragon_json_map_close(&j);

    r->headers_out.status = NGX_HTTP_OK;

    return ngx_http_seadragon_admin_send(r, &j);
}


/* a wrong name and a wrong password: one answer */

static ngx_int_t
ngx_http_seadragon_auth_refuse(ngx_http_request_t *r)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seadragon auth: a login refused: incorrect username or "
                  "password");

    ngx_http_seadragon_auth_limit_result(r, NULL,
                                         NGX_HTTP_SEADRAGON_LOGINS_REFUSED);

    return ngx_http_seadragon_auth_error(r, NGX_HTTP_UNAUTHORIZED,
                                         ngx_http_seadragon_auth_incorrect, 1);
}


/*
 * {"detail": ..., "error": ...}: FastAPI's member and Ollama's, the same
 * words; a refused credential says how to give one (RFC 6750).
 */

ngx_int_t
ngx_http_seadragon_auth_error(ngx_http_request_t *r, ngx_uint_t status,
    char *detail, ngx_uint_t challenge)
{
    size_t                     len;
    ngx_http_seadragon_json_t  j;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (challenge && ngx_http_seadragon_bearer_challenge(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(detail);

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_field(&j, "detail", (u_char *) detail, len);
    ngx_http_seadragon_json_field(&j, "error", (u_char *) detail, len);
    ngx_http_seadragon_json_map_close(&j);

    r->headers_out.status = status;

    return ngx_http_seadragon_admin_send(r, &j);
}


/* the pool's cleanup of a login form: its raw copy and its password */

static void
ngx_http_seadragon_auth_form_cleanse(void *data)
{
    ngx_http_seadragon_auth_form_t  *form = data;

    if (form->raw.len) {
        OPENSSL_cleanse(form->raw.data, form->raw.len);
        form->raw.len = 0;
    }

    if (form->password.len) {
        OPENSSL_cleanse(form->password.data, form->password.len);
        form->password.len = 0;
    }
}

#endif /* NGX_THREADS */
