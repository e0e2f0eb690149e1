
/*
 * Copyright (C) The Seadragon authors
 *
 * Logins (issue 16): seadragon_auth's endpoints, the thread pool's tasks,
 * the admin API's users, the limit of login attempts, the tokens (HS256
 * JWTs) and their check as a credential.  Included by
 * ngx_http_seadragon_module.h only, after the types it uses.
 */


#ifndef _NGX_HTTP_SEADRAGON_AUTH_H_INCLUDED_
#define _NGX_HTTP_SEADRAGON_AUTH_H_INCLUDED_


/* ngx_http_seadragon_auth.c: logins, POST .../token and GET .../me */
char *ngx_http_seadragon_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_seadragon_auth_merge(ngx_conf_t *cf,
    ngx_http_seadragon_loc_conf_t *conf);

/*
 * ngx_http_seadragon_auth_task.c: a request's work in the thread pool;
 * work(data) runs in a thread, done(r, data) in the worker, its status
 * the one the request is finalized with.  NGX_DONE (the request waits),
 * NGX_BUSY (the pool's queue is full) or NGX_ERROR.  pool_name(): the
 * NAME of a directive's thread_pool=NAME.
 */
ngx_int_t ngx_http_seadragon_task_pool_name(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name);
typedef void (*ngx_http_seadragon_task_work_pt)(void *data);
typedef ngx_int_t (*ngx_http_seadragon_task_done_pt)(ngx_http_request_t *r,
    void *data);
#if (NGX_THREADS)
ngx_int_t ngx_http_seadragon_task_post(ngx_http_request_t *r,
    ngx_thread_pool_t *pool, ngx_http_seadragon_task_work_pt work,
    ngx_http_seadragon_task_done_pt done, void *data);
#endif

/* ngx_http_seadragon_admin_users.c: GET/POST users, GET/PATCH/DELETE
 * users/NAME */
ngx_int_t ngx_http_seadragon_admin_users(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *route, ngx_uint_t arg);

/* ngx_http_seadragon_auth_limit.c: login attempts per address and user */
#define NGX_HTTP_SEADRAGON_LOGIN_ATTEMPTS        10
#define NGX_HTTP_SEADRAGON_LOGIN_PERIOD          60
#define NGX_HTTP_SEADRAGON_LOGINS_OK             0
#define NGX_HTTP_SEADRAGON_LOGINS_REFUSED        1
#define NGX_HTTP_SEADRAGON_LOGINS_LIMITED        2
#define NGX_HTTP_SEADRAGON_LOGINS_INACTIVE       3
#define NGX_HTTP_SEADRAGON_LOGINS_RESULTS        4
ngx_int_t ngx_http_seadragon_auth_limit_conf(ngx_conf_t *cf,
    ngx_http_seadragon_auth_conf_t *acf, ngx_str_t *value);
ngx_int_t ngx_http_seadragon_auth_limit_take(ngx_http_request_t *r,
    ngx_str_t *name);
void ngx_http_seadragon_auth_limit_result(ngx_http_request_t *r,
    ngx_str_t *name, ngx_uint_t result);
void ngx_http_seadragon_auth_limit_counts(ngx_http_seadragon_zone_t *zone,
    uint64_t *counts, uint64_t *untracked, ngx_uint_t *records);
ngx_int_t ngx_http_seadragon_auth_limit_metrics(ngx_http_request_t *r,
    ngx_http_seadragon_zone_t *zone, ngx_str_t *zn, ngx_str_t *out);


/* ngx_http_seadragon_jwt.c: the logins' tokens, HS256 JWTs */

/* a token longer is refused before it is decoded */
#define NGX_HTTP_SEADRAGON_JWT_MAX         4096
/* members of its header or claims, at most */
#define NGX_HTTP_SEADRAGON_JWT_MEMBERS     8

typedef struct {
    u_char                           user[SEADRAGON_KEY_NAME_LEN];
    size_t                           user_len;      /* 1..63, NUL after */
    u_char                           source[SEADRAGON_KEY_SOURCE_LEN];
    size_t                           source_len;    /* 1..31, NUL after */
    time_t                           iat;
    time_t                           exp;
    unsigned                         previous:1;    /* by the previous key */
} ngx_http_seadragon_jwt_claims_t;

/* NGX_OK, or NGX_ERROR: no memory, or a name verify would refuse */
ngx_int_t ngx_http_seadragon_jwt_sign(ngx_pool_t *pool, u_char *key,
    size_t klen, ngx_str_t *user, ngx_str_t *source, time_t iat, time_t exp,
    ngx_str_t *out);
/* NGX_OK, or NGX_DECLINED with *why (for the log); prev may be NULL */
ngx_int_t ngx_http_seadragon_jwt_verify(ngx_pool_t *pool, ngx_str_t *token,
    u_char *key, size_t klen, u_char *prev, size_t plen, time_t now,
    ngx_http_seadragon_jwt_claims_t *claims, const char **why);


/* ngx_http_seadragon_login.c: a login's token as a credential */

typedef enum {
    NGX_HTTP_SEADRAGON_LOGIN_OK = 0,
    NGX_HTTP_SEADRAGON_LOGIN_INVALID,     /* bad, expired, user changed */
    NGX_HTTP_SEADRAGON_LOGIN_DISABLED,    /* the user is disabled */
    NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR  /* the store cannot be read */
} ngx_http_seadragon_login_e;

/* the longest life of a token (seadragon_auth's expires= at most) */
#define NGX_HTTP_SEADRAGON_LOGIN_LIFE_MAX  (30 * 86400)
/* how far in the future a token's "iat" may be: clocks differ */
#define NGX_HTTP_SEADRAGON_LOGIN_SKEW      60

/* a JWT's shape: three base64url parts, two dots, at most JWT_MAX bytes */
ngx_uint_t ngx_http_seadragon_login_token_like(ngx_str_t *value);
/* "user:NAME" or "key:NAME" of a request's credential into buf; 0: none */
/* ctx->user_name, the token's user in the request's pool ($seadragon_user) */
ngx_int_t ngx_http_seadragon_login_name(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_jwt_claims_t *claims);
size_t ngx_http_seadragon_login_principal(ngx_http_seadragon_ctx_t *ctx,
    u_char *buf, size_t size);
/* the token verified and its user read from the store now */
ngx_http_seadragon_login_e ngx_http_seadragon_login_check(
    ngx_http_request_t *r, ngx_str_t *token, seadragon_user_record_t *user,
    ngx_http_seadragon_jwt_claims_t *claims);


/* ngx_http_seadragon_auth.c, for the files of its endpoints */
#if (NGX_THREADS)
/* {"detail": ..., "error": ...} with the status, Bearer when challenge */
ngx_int_t ngx_http_seadragon_auth_error(ngx_http_request_t *r,
    ngx_uint_t status, char *detail, ngx_uint_t challenge);
/* NGX_OK: the token's user; NGX_DECLINED: refused, *answer to return */
ngx_int_t ngx_http_seadragon_auth_bearer(ngx_http_request_t *r,
    seadragon_user_record_t *user, ngx_http_seadragon_jwt_claims_t *claims,
    ngx_int_t *answer);

/* ngx_http_seadragon_auth_queue.c: GET .../queue, a user's places */
ngx_int_t ngx_http_seadragon_auth_queue(ngx_http_request_t *r);
#endif


#endif /* _NGX_HTTP_SEADRAGON_AUTH_H_INCLUDED_ */
