
/*
 * Copyright (C) The Seadragon authors
 *
 * The gateway's JSON Web Tokens (RFC 7519), HS256 only: made by
 * ngx_http_seadragon_jwt_sign() for a user who logged in, checked by
 * ngx_http_seadragon_jwt_verify() on every request that presents one.
 *
 * The check is strict and bounded, since its input is anyone's: at most
 * NGX_HTTP_SEADRAGON_JWT_MAX bytes, three segments of canonical base64url
 * (no padding, no "+" or "/", no stray bits), a header whose "alg" is
 * exactly "HS256" (no "none", no other algorithm, no other case), the
 * signature compared in constant time with the current key's and then
 * with the previous key's, and only then the claims.  Header and claims
 * are flat JSON objects of at most NGX_HTTP_SEADRAGON_JWT_MEMBERS members,
 * each key once; "sub" and "src" are a user's and a source's names as the
 * store has them, "iat" and "exp" integers.  Pure code on OpenSSL, yajl
 * and nginx's pool and base64url: t/unit/jwt_test.c runs it without nginx.
 */


#include "ngx_http_seadragon_module.h"

#include <yajl/yajl_parse.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


#define NGX_HTTP_SEADRAGON_JWT_SIG_LEN   32    /* SHA-256 */
#define NGX_HTTP_SEADRAGON_JWT_KEY_MAX   32    /* a member's name */
#define NGX_HTTP_SEADRAGON_JWT_STR_MAX   255   /* any string value */
#define NGX_HTTP_SEADRAGON_JWT_DIGITS    18    /* fits an int64_t */

/* base64url of {"alg":"HS256","typ":"JWT"} */
#define NGX_HTTP_SEADRAGON_JWT_HEADER    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"


enum {
    NGX_HTTP_SEADRAGON_JWT_OTHER = 0,
    NGX_HTTP_SEADRAGON_JWT_ALG,
    NGX_HTTP_SEADRAGON_JWT_TYP,
    NGX_HTTP_SEADRAGON_JWT_SUB,
    NGX_HTTP_SEADRAGON_JWT_SRC,
    NGX_HTTP_SEADRAGON_JWT_IAT,
    NGX_HTTP_SEADRAGON_JWT_EXP
};


/* what the callbacks of one object's parse share */
typedef struct {
    ngx_uint_t                        claims;   /* 0: the header */
    ngx_uint_t                        depth;
    ngx_uint_t                        members;
    ngx_uint_t                        key;
    const char                       *why;

    u_char                            keys[NGX_HTTP_SEADRAGON_JWT_MEMBERS]
                                          [NGX_HTTP_SEADRAGON_JWT_KEY_MAX];
    size_t                            key_lens[NGX_HTTP_SEADRAGON_JWT_MEMBERS];

    ngx_http_seadragon_jwt_claims_t  *out;

    unsigned                          alg:1;    /* "alg": "HS256" seen */
    unsigned                          sub:1;
    unsigned                          src:1;
    unsigned                          iat:1;
    unsigned                          exp:1;
    unsigned                          done:1;   /* the object ended */
} ngx_http_seadragon_jwt_parse_t;


static u_char *ngx_http_seadragon_jwt_encode(u_char *p, u_char *data,
    size_t len);
static u_char *ngx_http_seadragon_jwt_number(u_char *p, uint64_t u);
static ngx_int_t ngx_http_seadragon_jwt_decode(ngx_pool_t *pool,
    u_char *data, size_t len, ngx_str_t *out);
static ngx_int_t ngx_http_seadragon_jwt_hmac(u_char *key, size_t klen,
    u_char *data, size_t len, u_char *md);
static ngx_int_t ngx_http_seadragon_jwt_signed(u_char *key, size_t klen,
    u_char *prev, size_t plen, u_char *data, size_t len, ngx_str_t *sig,
    ngx_uint_t *previous);
static ngx_int_t ngx_http_seadragon_jwt_json(ngx_str_t *text,
    ngx_http_seadragon_jwt_parse_t *ps);
static ngx_int_t ngx_http_seadragon_jwt_name_valid(u_char *s, size_t len,
    size_t max, const char *extra);
static int ngx_http_seadragon_jwt_null(void *data);
static int ngx_http_seadragon_jwt_boolean(void *data, int value);
static int ngx_http_seadragon_jwt_scalar(ngx_http_seadragon_jwt_parse_t *ps);
static int ngx_http_seadragon_jwt_num(void *data, const char *s, size_t len);
static int ngx_http_seadragon_jwt_string(void *data, const unsigned char *s,
    size_t len);
static int ngx_http_seadragon_jwt_start_map(void *data);
static int ngx_http_seadragon_jwt_map_key(void *data, const unsigned char *s,
    size_t len);
static int ngx_http_seadragon_jwt_end_map(void *data);
static int ngx_http_seadragon_jwt_start_array(void *data);


static yajl_callbacks  ngx_http_seadragon_jwt_callbacks = {
    ngx_http_seadragon_jwt_null,
    ngx_http_seadragon_jwt_boolean,
    NULL,
    NULL,
    ngx_http_seadragon_jwt_num,
    ngx_http_seadragon_jwt_string,
    ngx_http_seadragon_jwt_start_map,
    ngx_http_seadragon_jwt_map_key,
    ngx_http_seadragon_jwt_end_map,
    ngx_http_seadragon_jwt_start_array,
    NULL
};


ngx_int_t
ngx_http_seadragon_jwt_sign(ngx_pool_t *pool, u_char *key, size_t klen,
    ngx_str_t *user, ngx_str_t *source, time_t iat, time_t exp,
    ngx_str_t *out)
{
    size_t   hlen, clen;
    u_char  *p, *claims, *last;
    u_char   md[NGX_HTTP_SEADRAGON_JWT_SIG_LEN];

    /* only what verify accepts: its names need no JSON escapes */

    if (key == NULL || klen == 0
        || !ngx_http_seadragon_jwt_name_valid(user->data, user->len,
                                              SEADRAGON_KEY_NAME_LEN - 1,
                                              "_-.@")
        || !ngx_http_seadragon_jwt_name_valid(source->data, source->len,
                                              SEADRAGON_KEY_SOURCE_LEN - 1,
                                              "_-")
        || iat < 0 || exp <= iat)
    {
        return NGX_ERROR;
    }

    claims = ngx_pnalloc(pool, sizeof("{\"sub\":\"\",\"src\":\"\",\"iat\":"
                                      ",\"exp\":}") - 1
                               + user->len + source->len
                               + 2 * NGX_INT64_LEN);
    if (claims == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(claims, "{\"sub\":\"", sizeof("{\"sub\":\"") - 1);
    p = ngx_cpymem(p, user->data, user->len);
    p = ngx_cpymem(p, "\",\"src\":\"", sizeof("\",\"src\":\"") - 1);
    p = ngx_cpymem(p, source->data, source->len);
    p = ngx_cpymem(p, "\",\"iat\":", sizeof("\",\"iat\":") - 1);
    p = ngx_http_seadragon_jwt_number(p, (uint64_t) iat);
    p = ngx_cpymem(p, ",\"exp\":", sizeof(",\"exp\":") - 1);
    p = ngx_http_seadragon_jwt_number(p, (uint64_t) exp);
    *p++ = '}';
    clen = p - claims;

    hlen = sizeof(NGX_HTTP_SEADRAGON_JWT_HEADER) - 1;

    out->data = ngx_pnalloc(pool, hlen + 1 + ngx_base64_encoded_length(clen)
                                  + 1 + ngx_base64_encoded_length(
                                            NGX_HTTP_SEADRAGON_JWT_SIG_LEN));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, NGX_HTTP_SEADRAGON_JWT_HEADER, hlen);
    *p++ = '.';
    p = ngx_http_seadragon_jwt_encode(p, claims, clen);
    last = p;

    if (ngx_http_seadragon_jwt_hmac(key, klen, out->data, last - out->data,
                                    md)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *p++ = '.';
    p = ngx_http_seadragon_jwt_encode(p, md, sizeof(md));

    out->len = p - out->data;

    OPENSSL_cleanse(md, sizeof(md));

    return NGX_OK;
}


ngx_int_t
ngx_http_seadragon_jwt_verify(ngx_pool_t *pool, ngx_str_t *token,
    u_char *key, size_t klen, u_char *prev, size_t plen, time_t now,
    ngx_http_seadragon_jwt_claims_t *claims, const char **why)
{
    u_char                          *dot1, *dot2, *end;
    ngx_str_t                        header, payload, sig;
    ngx_uint_t                       previous;
    ngx_http_seadragon_jwt_parse_t   ps;

    ngx_memzero(claims, sizeof(ngx_http_seadragon_jwt_claims_t));

    if (token->len > NGX_HTTP_SEADRAGON_JWT_MAX) {
        *why = "token too long";
        return NGX_DECLINED;
    }

    if (key == NULL || klen == 0) {
        *why = "no key";
        return NGX_DECLINED;
    }

    /* three segments, none of them empty: "alg: none" has no signature */

    end = token->data + token->len;

    dot1 = ngx_strlchr(token->data, end, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, end, '.') : NULL;

    if (dot2 == NULL || ngx_strlchr(dot2 + 1, end, '.') != NULL
        || dot1 == token->data || dot2 == dot1 + 1 || dot2 + 1 == end)
    {
        *why = "not three segments";
        return NGX_DECLINED;
    }

    if (ngx_http_seadragon_jwt_decode(pool, token->data, dot1 - token->data,
                                      &header)
           != NGX_OK
        || ngx_http_seadragon_jwt_decode(pool, dot1 + 1, dot2 - dot1 - 1,
                                         &payload)
           != NGX_OK
        || ngx_http_seadragon_jwt_decode(pool, dot2 + 1, end - dot2 - 1,
                                         &sig)
           != NGX_OK)
    {
        *why = "bad base64url";
        return NGX_DECLINED;
    }

    /* the header first: the algorithm is ours or the token is refused */

    ngx_memzero(&ps, sizeof(ngx_http_seadragon_jwt_parse_t));

    if (ngx_http_seadragon_jwt_json(&header, &ps) != NGX_OK) {
        *why = ps.why ? ps.why : "bad header";
        return NGX_DECLINED;
    }

    if (!ps.alg) {
        *why = "alg is not HS256";
        return NGX_DECLINED;
    }

    if (sig.len != NGX_HTTP_SEADRAGON_JWT_SIG_LEN) {
        *why = "bad signature";
        return NGX_DECLINED;
    }

    if (ngx_http_seadragon_jwt_signed(key, klen, prev, plen, token->data,
                                      dot2 - token->data, &sig, &previous)
        != NGX_OK)
    {
        *why = "bad signature";
        return NGX_DECLINED;
    }

    /* the claims, which only a key's holder could have written */

    ngx_memzero(&ps, sizeof(ngx_http_seadragon_jwt_parse_t));
    ps.claims = 1;
    ps.out = claims;

    if (ngx_http_seadragon_jwt_json(&payload, &ps) != NGX_OK) {
        ngx_memzero(claims, sizeof(ngx_http_seadragon_jwt_claims_t));
        *why = ps.why ? ps.why : "bad claims";
        return NGX_DECLINED;
    }

    if (!ps.sub || !ps.src || !ps.iat || !ps.exp) {
        ngx_memzero(claims, sizeof(ngx_http_seadragon_jwt_claims_t));
        *why = "claims missing";
        return NGX_DECLINED;
    }

    if (claims->exp <= now) {
        ngx_memzero(claims, sizeof(ngx_http_seadragon_jwt_claims_t));
        *why = "token expired";
        return NGX_DECLINED;
    }

    claims->previous = previous;

    return NGX_OK;
}


/*
 * The signature of data, in constant time, by the current key then the
 * last: NGX_OK, *previous set when the last key signed; NGX_DECLINED.
 */

static ngx_int_t
ngx_http_seadragon_jwt_signed(u_char *key, size_t klen, u_char *prev,
    size_t plen, u_char *data, size_t len, ngx_str_t *sig,
    ngx_uint_t *previous)
{
    ngx_int_t  rc;
    u_char     md[NGX_HTTP_SEADRAGON_JWT_SIG_LEN];

    *previous = 0;

    if (ngx_http_seadragon_jwt_hmac(key, klen, data, len, md) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    if (CRYPTO_memcmp(md, sig->data, sizeof(md)) != 0) {

        if (prev == NULL || plen == 0
            || ngx_http_seadragon_jwt_hmac(prev, plen, data, len, md)
               != NGX_OK
            || CRYPTO_memcmp(md, sig->data, sizeof(md)) != 0)
        {
            rc = NGX_DECLINED;

        } else {
            *previous = 1;
        }
    }

    OPENSSL_cleanse(md, sizeof(md));

    return rc;
}


static u_char *
ngx_http_seadragon_jwt_encode(u_char *p, u_char *data, size_t len)
{
    ngx_str_t  dst, src;

    src.data = data;
    src.len = len;
    dst.data = p;

    ngx_encode_base64url(&dst, &src);

    return p + dst.len;
}


/*
 * n >= 0, in decimal; ngx_sprintf() lives in ngx_string.c, which the unit
 * test would otherwise need a copy of
 */

static u_char *
ngx_http_seadragon_jwt_number(u_char *p, uint64_t u)
{
    u_char   buf[NGX_INT64_LEN];
    u_char  *d;

    d = buf + sizeof(buf);

    do {
        *--d = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    return ngx_cpymem(p, d, buf + sizeof(buf) - d);
}


/*
 * Canonical base64url only: its alphabet, no "=", and the very text that
 * encoding the bytes gives back (nginx's decoder ignores a last
 * character's spare bits, so "...A" and "...B" could decode alike).
 */

static ngx_int_t
ngx_http_seadragon_jwt_decode(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out)
{
    size_t      i;
    u_char      c, check[NGX_HTTP_SEADRAGON_JWT_MAX];
    ngx_str_t   src, dst;

    if (len == 0 || len % 4 == 1 || len > NGX_HTTP_SEADRAGON_JWT_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        c = data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_ERROR;
        }
    }

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = data;
    src.len = len;

    if (ngx_decode_base64url(out, &src) != NGX_OK) {
        return NGX_ERROR;
    }

    dst.data = check;
    ngx_encode_base64url(&dst, out);

    if (dst.len != len || ngx_memcmp(check, data, len) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_seadragon_jwt_hmac(u_char *key, size_t klen, u_char *data,
    size_t len, u_char *md)
{
    unsigned int  mdlen;

    if (klen > NGX_MAX_INT32_VALUE) {
        return NGX_ERROR;
    }

    mdlen = 0;

    if (HMAC(EVP_sha256(), key, (int) klen, data, len, md, &mdlen) == NULL
        || mdlen != NGX_HTTP_SEADRAGON_JWT_SIG_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One flat object, all of text.  yajl checks the JSON and its UTF-8 and
 * refuses anything after the object, but for a string left open at the
 * end ('{} "'), which its complete_parse lets through: that is looked for
 * here.
 */

static ngx_int_t
ngx_http_seadragon_jwt_json(ngx_str_t *text, ngx_http_seadragon_jwt_parse_t *ps)
{
    size_t        i;
    ngx_uint_t    in_string, escaped;
    yajl_handle   h;
    yajl_status   status;

    in_string = 0;
    escaped = 0;

    for (i = 0; i < text->len; i++) {
        if (escaped) {
            escaped = 0;

        } else if (in_string && text->data[i] == '\\') {
            escaped = 1;

        } else if (text->data[i] == '"') {
            in_string = !in_string;
        }
    }

    if (in_string) {
        return NGX_ERROR;
    }

    h = yajl_alloc(&ngx_http_seadragon_jwt_callbacks, NULL, ps);
    if (h == NULL) {
        ps->why = "no memory";
        return NGX_ERROR;
    }

    status = yajl_parse(h, text->data, text->len);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (status != yajl_status_ok || !ps->done) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* seadragon_name_valid()'s rule, on bytes that may hold a NUL */

static ngx_int_t
ngx_http_seadragon_jwt_name_valid(u_char *s, size_t len, size_t max,
    const char *extra)
{
    size_t  i;
    u_char  c;

    if (len == 0 || len > max) {
        return 0;
    }

    if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.'))) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || (c != '\0' && ngx_strchr(extra, c) != NULL)))
        {
            return 0;
        }
    }

    return 1;
}


/* a value of a member nobody reads passes, of one that is read fails */

static int
ngx_http_seadragon_jwt_null(void *data)
{
    return ngx_http_seadragon_jwt_scalar(data);
}


static int
ngx_http_seadragon_jwt_boolean(void *data, int value)
{
    (void) value;

    return ngx_http_seadragon_jwt_scalar(data);
}


static int
ngx_http_seadragon_jwt_scalar(ngx_http_seadragon_jwt_parse_t *ps)
{
    if (ps->depth == 1 && ps->key == NGX_HTTP_SEADRAGON_JWT_OTHER) {
        return 1;
    }

    if (ps->depth == 0) {
        ps->why = ps->claims ? "claims not an object" : "header not an object";

    } else if (ps->key == NGX_HTTP_SEADRAGON_JWT_ALG) {
        ps->why = "alg is not HS256";

    } else if (ps->key == NGX_HTTP_SEADRAGON_JWT_IAT
               || ps->key == NGX_HTTP_SEADRAGON_JWT_EXP)
    {
        ps->why = "iat or exp not an integer";

    } else if (ps->key == NGX_HTTP_SEADRAGON_JWT_SUB) {
        ps->why = "sub is not a user name";

    } else if (ps->key == NGX_HTTP_SEADRAGON_JWT_SRC) {
        ps->why = "src is not a source name";
    }

    return 0;
}


static int
ngx_http_seadragon_jwt_num(void *data, const char *s, size_t len)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    size_t   i;
    int64_t  n;

    if (ps->depth != 1
        || (ps->key != NGX_HTTP_SEADRAGON_JWT_IAT
            && ps->key != NGX_HTTP_SEADRAGON_JWT_EXP))
    {
        return ngx_http_seadragon_jwt_scalar(ps);
    }

    /* an integer of digits alone: no sign, fraction or exponent */

    if (len == 0 || len > NGX_HTTP_SEADRAGON_JWT_DIGITS) {
        ps->why = "iat or exp not an integer";
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            ps->why = "iat or exp not an integer";
            return 0;
        }

        n = n * 10 + (s[i] - '0');
    }

    if ((int64_t) (time_t) n != n) {
        ps->why = "iat or exp out of range";
        return 0;
    }

    if (ps->key == NGX_HTTP_SEADRAGON_JWT_IAT) {
        ps->out->iat = (time_t) n;
        ps->iat = 1;

    } else {
        ps->out->exp = (time_t) n;
        ps->exp = 1;
    }

    return 1;
}


static int
ngx_http_seadragon_jwt_string(void *data, const unsigned char *s, size_t len)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    if (ps->depth != 1) {
        return ngx_http_seadragon_jwt_scalar(ps);
    }

    if (len > NGX_HTTP_SEADRAGON_JWT_STR_MAX) {
        ps->why = "a string too long";
        return 0;
    }

    switch (ps->key) {

    case NGX_HTTP_SEADRAGON_JWT_OTHER:
        return 1;

    case NGX_HTTP_SEADRAGON_JWT_ALG:
        if (len != sizeof("HS256") - 1
            || ngx_memcmp(s, "HS256", sizeof("HS256") - 1) != 0)
        {
            ps->why = "alg is not HS256";
            return 0;
        }

        ps->alg = 1;
        return 1;

    case NGX_HTTP_SEADRAGON_JWT_TYP:
        return len == sizeof("JWT") - 1
               && ngx_memcmp(s, "JWT", sizeof("JWT") - 1) == 0;

    case NGX_HTTP_SEADRAGON_JWT_SUB:
        if (!ngx_http_seadragon_jwt_name_valid((u_char *) s, len,
                                               SEADRAGON_KEY_NAME_LEN - 1,
                                               "_-.@"))
        {
            ps->why = "sub is not a user name";
            return 0;
        }

        ngx_memcpy(ps->out->user, s, len);
        ps->out->user[len] = '\0';
        ps->out->user_len = len;
        ps->sub = 1;
        return 1;

    case NGX_HTTP_SEADRAGON_JWT_SRC:
        if (!ngx_http_seadragon_jwt_name_valid((u_char *) s, len,
                                               SEADRAGON_KEY_SOURCE_LEN - 1,
                                               "_-"))
        {
            ps->why = "src is not a source name";
            return 0;
        }

        ngx_memcpy(ps->out->source, s, len);
        ps->out->source[len] = '\0';
        ps->out->source_len = len;
        ps->src = 1;
        return 1;

    default:                                    /* "iat", "exp" */
        ps->why = "iat or exp not an integer";
        return 0;
    }
}


static int
ngx_http_seadragon_jwt_start_map(void *data)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    if (ps->depth != 0 || ps->done) {
        ps->why = ps->claims ? "claims not a flat object"
                             : "header not a flat object";
        return 0;
    }

    ps->depth = 1;

    return 1;
}


static int
ngx_http_seadragon_jwt_map_key(void *data, const unsigned char *s,
    size_t len)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    ngx_uint_t  i;

    if (ps->members == NGX_HTTP_SEADRAGON_JWT_MEMBERS
        || len == 0 || len > NGX_HTTP_SEADRAGON_JWT_KEY_MAX)
    {
        ps->why = "too many or too long members";
        return 0;
    }

    for (i = 0; i < ps->members; i++) {
        if (ps->key_lens[i] == len && ngx_memcmp(ps->keys[i], s, len) == 0) {
            ps->why = "a member twice";
            return 0;
        }
    }

    ngx_memcpy(ps->keys[ps->members], s, len);
    ps->key_lens[ps->members++] = len;

#define ngx_http_seadragon_jwt_is(name)                                       \
    (len == sizeof(name) - 1 && ngx_memcmp(s, name, sizeof(name) - 1) == 0)

    ps->key = NGX_HTTP_SEADRAGON_JWT_OTHER;

    if (!ps->claims) {

        /* a header says "alg" and may say "typ": nothing else is ours */

        if (ngx_http_seadragon_jwt_is("alg")) {
            ps->key = NGX_HTTP_SEADRAGON_JWT_ALG;

        } else if (ngx_http_seadragon_jwt_is("typ")) {
            ps->key = NGX_HTTP_SEADRAGON_JWT_TYP;

        } else {
            ps->why = "unknown header member";
            return 0;
        }

    } else if (ngx_http_seadragon_jwt_is("sub")) {
        ps->key = NGX_HTTP_SEADRAGON_JWT_SUB;

    } else if (ngx_http_seadragon_jwt_is("src")) {
        ps->key = NGX_HTTP_SEADRAGON_JWT_SRC;

    } else if (ngx_http_seadragon_jwt_is("iat")) {
        ps->key = NGX_HTTP_SEADRAGON_JWT_IAT;

    } else if (ngx_http_seadragon_jwt_is("exp")) {
        ps->key = NGX_HTTP_SEADRAGON_JWT_EXP;
    }

#undef ngx_http_seadragon_jwt_is

    return 1;
}


static int
ngx_http_seadragon_jwt_end_map(void *data)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    ps->depth = 0;
    ps->done = 1;

    return 1;
}


static int
ngx_http_seadragon_jwt_start_array(void *data)
{
    ngx_http_seadragon_jwt_parse_t  *ps = data;

    ps->why = ps->claims ? "claims not a flat object"
                         : "header not a flat object";

    return 0;
}
