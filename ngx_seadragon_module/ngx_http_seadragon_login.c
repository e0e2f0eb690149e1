
/*
 * Copyright (C) The Seadragon authors
 *
 * A login's token as a credential (issue 16): one check for every place
 * that takes one (GET .../me, the queue's classification, the admin API).
 * The token must be an HS256 JWT signed with the store's jwt_secret, or
 * with jwt_previous until its tokens expire; its user must still exist,
 * be of the source the token names, be active, and have had no new
 * password since the token was made.  The store is read on every check,
 * so that disabling a user takes effect at the user's next request.
 *
 * It needs no thread: verifying an HMAC costs microseconds.
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/crypto.h>


static const char *ngx_http_seadragon_login_bounded(
    ngx_http_seadragon_jwt_claims_t *claims, seadragon_secret_t *previous);


/*
 * Whether a credential has a JWT's shape: three base64url parts joined by
 * two dots.  A Seadragon key ("sd-" and hex) never has a dot, and the
 * bearer words some clients must send ("ollama") have none either.
 */

ngx_uint_t
ngx_http_seadragon_login_token_like(ngx_str_t *value)
{
    u_char      c;
    size_t      i;
    ngx_uint_t  dots;

    if (value->len < 5 || value->len > NGX_HTTP_SEADRAGON_JWT_MAX) {
        return 0;
    }

    dots = 0;

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if (c == '.') {
            dots++;
            continue;
        }

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_')
        {
            continue;
        }

        return 0;
    }

    return dots == 2;
}


/*
 * NGX_HTTP_SEADRAGON_LOGIN_OK with the user's record and the token's
 * claims, or the verdict that refuses the token (logged at "info" with
 * the reason; the token itself never is).
 */

ngx_http_seadragon_login_e
ngx_http_seadragon_login_check(ngx_http_request_t *r, ngx_str_t *token,
    seadragon_user_record_t *user, ngx_http_seadragon_jwt_claims_t *claims)
{
    ngx_int_t                        rc;
    ngx_str_t                        value, name;
    const char                      *why;
    ngx_uint_t                       has_previous;
    seadragon_secret_t               current, previous;
    ngx_http_seadragon_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_seadragon_module);

    if (smcf->store == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon login: a token refused: no seadragon_store");
        return NGX_HTTP_SEADRAGON_LOGIN_INVALID;
    }

    value = *token;

    while (value.len && value.data[value.len - 1] == ' ') {
        value.len--;
    }

    rc = ngx_http_seadragon_store_secrets(smcf->store, r->connection->log,
                                          &current, &previous, &has_previous);

    if (rc == NGX_ERROR) {
        /* a read cut short (the guard's SIGBUS) may have copied a part */
        OPENSSL_cleanse(&current, sizeof(seadragon_secret_t));
        OPENSSL_cleanse(&previous, sizeof(seadragon_secret_t));
        return NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR;
    }

    if (rc == NGX_DECLINED) {
        why = "the store has no jwt_secret";

    } else {
        rc = ngx_http_seadragon_jwt_verify(r->pool, &value, current.key,
                                           sizeof(current.key),
                                           has_previous ? previous.key : NULL,
                                           sizeof(previous.key), ngx_time(),
                                           claims, &why);
    }

    if (rc == NGX_OK) {
        why = ngx_http_seadragon_login_bounded(claims, &previous);
        rc = why ? NGX_DECLINED : NGX_OK;
    }

    OPENSSL_cleanse(&current, sizeof(seadragon_secret_t));
    OPENSSL_cleanse(&previous, sizeof(seadragon_secret_t));

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon login: a token refused: %s", why);
        return NGX_HTTP_SEADRAGON_LOGIN_INVALID;
    }

    name.data = claims->user;
    name.len = claims->user_len;

    rc = ngx_http_seadragon_store_user(smcf->store, r->connection->log, &name,
                                       user);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_SEADRAGON_LOGIN_STORE_ERROR;
    }

    /*
     * A token of a user removed or moved to another source is no longer
     * the user's; a disabled user's is refused as such (disabling sets
     * "changed" too, so that the token stays refused once the user is
     * enabled again); and one made before the password or the state last
     * changed is no longer the user's either.
     */

    if (rc == NGX_DECLINED
        || ngx_strlen(user->source) != claims->source_len
        || ngx_strncmp(user->source, claims->source, claims->source_len) != 0)
    {
        goto changed;
    }

    if (user->flags & SEADRAGON_USER_DISABLED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "seadragon login: a token of the disabled user \"%V\" "
                      "refused", &name);
        return NGX_HTTP_SEADRAGON_LOGIN_DISABLED;
    }

    if (user->changed > (int64_t) claims->iat) {
        goto changed;
    }

    return NGX_HTTP_SEADRAGON_LOGIN_OK;

changed:

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "seadragon login: a token of \"%V\" refused: the user "
                  "is gone or has changed", &name);

    return NGX_HTTP_SEADRAGON_LOGIN_INVALID;
}


/* the user of a token accepted: $seadragon_user, the logs, the tenant */

ngx_int_t
ngx_http_seadragon_login_name(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_jwt_claims_t *claims)
{
    ctx->user_name.data = ngx_pnalloc(r->pool, claims->user_len);
    if (ctx->user_name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->user_name.data, claims->user, claims->user_len);
    ctx->user_name.len = claims->user_len;

    return NGX_OK;
}


/*
 * Whose a parked request is, for GET .../queue: the user of a token, or
 * the name of a key.  Names are at most 63 bytes; a longer one is not
 * written at all rather than cut into another's.
 */

size_t
ngx_http_seadragon_login_principal(ngx_http_seadragon_ctx_t *ctx, u_char *buf,
    size_t size)
{
    u_char  *p;

    if (ctx->user_name.len
        && ctx->user_name.len + sizeof("user:") - 1 <= size)
    {
        p = ngx_cpymem(buf, "user:", sizeof("user:") - 1);
        p = ngx_cpymem(p, ctx->user_name.data, ctx->user_name.len);
        return p - buf;
    }

    if (ctx->key_name.len && ctx->key_name.len + sizeof("key:") - 1 <= size) {
        p = ngx_cpymem(buf, "key:", sizeof("key:") - 1);
        p = ngx_cpymem(p, ctx->key_name.data, ctx->key_name.len);
        return p - buf;
    }

    return 0;
}


/*
 * What only the holder of a key could write, bounded all the same: a
 * token lives no longer than seadragon_auth lets one live, is not made in
 * the future, and one signed with the retired key was made before it was
 * retired, so that the retired key's tokens all expire within the longest
 * life of a token after a rotation, whatever they say.  NULL: within the
 * bounds; else why not.
 */

static const char *
ngx_http_seadragon_login_bounded(ngx_http_seadragon_jwt_claims_t *claims,
    seadragon_secret_t *previous)
{
    if (claims->exp - claims->iat > NGX_HTTP_SEADRAGON_LOGIN_LIFE_MAX) {
        return "the token's life is longer than any seadragon_auth gives";
    }

    if (claims->iat > ngx_time() + NGX_HTTP_SEADRAGON_LOGIN_SKEW) {
        return "the token was made in the future";
    }

    if (claims->previous && (int64_t) claims->iat > previous->created) {
        return "the token was signed by the previous key after it was "
               "retired";
    }

    return NULL;
}
