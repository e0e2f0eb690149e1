
/*
 * Copyright (C) The Seadragon authors
 *
 * Unit tests of the logins' tokens (ngx_http_seadragon_jwt.c): a round
 * trip, a vector made independently (Python's hmac), and every way a
 * token is refused: tampered, cut, padded, another alg, a header or
 * claims of the wrong shape, expired, names out of bounds, the keys
 * before last.  Tokens of any content are made here with OpenSSL's HMAC
 * directly.  Prints TAP for prove (t/052-jwt-unit.t runs it).
 */


#include "ngx_http_seadragon_module.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  tests, failures;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        tests++;                                                             \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("not ");                                                  \
        }                                                                    \
        printf("ok %d - ", tests);                                           \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
    } while (0)


/* 2026-12-01T10:00:00Z */
#define T0  ((time_t) 1796119200)

#define HEADER  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/*
 * Made at the time of writing, independently of the module:
 *   python3 -c 'import hmac,hashlib,base64
 *   b=lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
 *   h=b(b"{\"alg\":\"HS256\",\"typ\":\"JWT\"}")
 *   c=b(b"{\"sub\":\"alice@example.org\",\"src\":\"chat\",\"iat\":1796119200,"
 *       b"\"exp\":1796122800}")
 *   s=(h+"."+c).encode()
 *   print(s.decode()+"."+b(hmac.new(bytes(range(32)),s,hashlib.sha256)
 *       .digest()))'
 */
#define VECTOR                                                               \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"                                   \
    ".eyJzdWIiOiJhbGljZUBleGFtcGxlLm9yZyIsInNyYyI6ImNoYXQiLCJpYXQiOjE3OTYx"  \
    "MTkyMDAsImV4cCI6MTc5NjEyMjgwMH0"                                        \
    ".l-D7Hf4X3MAE45HFyccU2_8g2-P999QXWQvvJVGe8tE"


static u_char      key[32], prev[32], other[32];
static ngx_pool_t  pool;


/*
 * nginx's pool and base64 live in ngx_palloc.c and ngx_string.c, which
 * nginx-dev does not ship: malloc (freed at exit) and a copy of nginx's
 * base64url (1.26.3, the same in 1.22 and 1.30) stand in.
 */

void *
ngx_pnalloc(ngx_pool_t *p, size_t size)
{
    return malloc(size ? size : 1);
}


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    static u_char   basis[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    u_char         *d, *s;
    size_t          len;

    len = src->len;
    s = src->data;
    d = dst->data;

    while (len > 2) {
        *d++ = basis[(s[0] >> 2) & 0x3f];
        *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = basis[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = basis[s[2] & 0x3f];

        s += 3;
        len -= 3;
    }

    if (len) {
        *d++ = basis[(s[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = basis[(s[0] & 3) << 4];

        } else {
            *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = basis[(s[1] & 0x0f) << 2];
        }
    }

    dst->len = d - dst->data;
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    static u_char   basis[] = {
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 62, 77, 77,
        52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 77, 77, 77, 77, 77, 77,
        77,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
        15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 77, 77, 77, 77, 63,
        77, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 77, 77, 77, 77, 77,

        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77
    };

    size_t          len;
    u_char         *d, *s;

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        if (basis[src->data[len]] == 77) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    s = src->data;
    d = dst->data;

    while (len > 3) {
        *d++ = (u_char) (basis[s[0]] << 2 | basis[s[1]] >> 4);
        *d++ = (u_char) (basis[s[1]] << 4 | basis[s[2]] >> 2);
        *d++ = (u_char) (basis[s[2]] << 6 | basis[s[3]]);

        s += 3 + 1;
        len -= 4;
    }

    if (len > 1) {
        *d++ = (u_char) (basis[s[0]] << 2 | basis[s[1]] >> 4);
    }

    if (len > 2) {
        *d++ = (u_char) (basis[s[1]] << 4 | basis[s[2]] >> 2);
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


static size_t
b64(char *out, const u_char *data, size_t len)
{
    ngx_str_t  src, dst;

    src.data = (u_char *) data;
    src.len = len;
    dst.data = (u_char *) out;

    ngx_encode_base64url(&dst, &src);
    out[dst.len] = '\0';

    return dst.len;
}


/*
 * A token of any header and claims (len bytes each: they may hold NULs),
 * signed with k; static, overwritten by the next call.
 */

static char *
make_n(const char *header, size_t hlen, const char *claims, size_t clen,
    const u_char *k)
{
    size_t         n;
    unsigned int   mdlen;
    u_char         md[32];
    static char    token[16384];

    n = b64(token, (const u_char *) header, hlen);
    token[n++] = '.';
    n += b64(token + n, (const u_char *) claims, clen);

    HMAC(EVP_sha256(), k, 32, (u_char *) token, n, md, &mdlen);

    token[n++] = '.';
    b64(token + n, md, mdlen);

    return token;
}


static char *
make(const char *header, const char *claims, const u_char *k)
{
    return make_n(header, strlen(header), claims, strlen(claims), k);
}


static ngx_int_t
check_with(const char *text, u_char *p, time_t now,
    ngx_http_seadragon_jwt_claims_t *claims, const char **why)
{
    ngx_str_t  token;

    token.data = (u_char *) text;
    token.len = strlen(text);
    *why = "";

    return ngx_http_seadragon_jwt_verify(&pool, &token, key, sizeof(key),
                                         p, p ? 32 : 0, now, claims, why);
}


/* verify with the current key and no previous one, at T0 */

static ngx_int_t
check(const char *text, const char **why)
{
    ngx_http_seadragon_jwt_claims_t  claims;

    return check_with(text, NULL, T0, &claims, why);
}


static const char *
claims_of(const char *sub, const char *src, const char *iat, const char *exp)
{
    static char  buf[1024];

    snprintf(buf, sizeof(buf),
             "{\"sub\":\"%s\",\"src\":\"%s\",\"iat\":%s,\"exp\":%s}",
             sub, src, iat, exp);

    return buf;
}


static const char *
good_claims(void)
{
    return claims_of("alice", "chat", "1796119200", "1796122800");
}


int
main(void)
{
    int                               i;
    char                              buf[8192], *t;
    size_t                            len;
    ngx_str_t                         user, source, out, token;
    ngx_int_t                         rc;
    const char                       *why;
    ngx_http_seadragon_jwt_claims_t   claims;

    for (i = 0; i < 32; i++) {
        key[i] = (u_char) i;
        prev[i] = (u_char) (0xa0 + i);
        other[i] = (u_char) (0x50 + i);
    }

    /* sign, then verify */

    user.data = (u_char *) "alice@example.org";
    user.len = strlen("alice@example.org");
    source.data = (u_char *) "chat";
    source.len = 4;

    rc = ngx_http_seadragon_jwt_sign(&pool, key, sizeof(key), &user, &source,
                                     T0, T0 + 3600, &out);
    ok(rc == NGX_OK, "sign");
    ok(out.len == sizeof(VECTOR) - 1
       && memcmp(out.data, VECTOR, out.len) == 0,
       "the token is the one Python's hmac made: %.*s",
       (int) out.len, out.data);

    rc = ngx_http_seadragon_jwt_verify(&pool, &out, key, sizeof(key), NULL, 0,
                                       T0, &claims, &why);
    ok(rc == NGX_OK, "and it verifies");
    ok(claims.user_len == user.len
       && memcmp(claims.user, "alice@example.org", user.len + 1) == 0
       && claims.source_len == 4
       && memcmp(claims.source, "chat", 5) == 0
       && claims.iat == T0 && claims.exp == T0 + 3600 && !claims.previous,
       "claims: the user, the source, iat, exp; not by the previous key");

    rc = check(VECTOR, &why);
    ok(rc == NGX_OK, "the vector verifies (%s)", why);

    user.data = (u_char *) "bob";
    user.len = 3;

    rc = ngx_http_seadragon_jwt_sign(&pool, prev, sizeof(prev), &user,
                                     &source, T0, T0 + 60, &out);
    ok(rc == NGX_OK
       && ngx_http_seadragon_jwt_verify(&pool, &out, prev, sizeof(prev),
                                        NULL, 0, T0 + 59, &claims, &why)
          == NGX_OK
       && claims.user_len == 3 && claims.exp == T0 + 60,
       "another key and user round trip, one second before exp");

    /* what sign refuses: what verify would */

    user.data = (u_char *) "a\"b";
    user.len = 3;
    ok(ngx_http_seadragon_jwt_sign(&pool, key, 32, &user, &source, T0,
                                   T0 + 1, &out) == NGX_ERROR,
       "sign refuses a user name with a quote");

    user.data = (u_char *) "alice";
    user.len = 5;
    source.data = (u_char *) "a.b";
    source.len = 3;
    ok(ngx_http_seadragon_jwt_sign(&pool, key, 32, &user, &source, T0,
                                   T0 + 1, &out) == NGX_ERROR,
       "sign refuses a source name with a dot");

    source.data = (u_char *) "chat";
    source.len = 4;
    ok(ngx_http_seadragon_jwt_sign(&pool, key, 0, &user, &source, T0,
                                   T0 + 1, &out) == NGX_ERROR,
       "sign refuses an empty key");

    ok(ngx_http_seadragon_jwt_sign(&pool, key, 32, &user, &source, T0,
                                   T0, &out) == NGX_ERROR,
       "sign refuses an exp that is not after iat");

    /* tampered, cut, extra */

    strcpy(buf, VECTOR);
    t = strchr(buf, '.') + 5;
    *t = (*t == 'A') ? 'B' : 'A';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad signature") == 0,
       "a payload changed: bad signature (%s)", why);

    strcpy(buf, VECTOR);
    t = strrchr(buf, '.') + 3;
    *t = (*t == 'A') ? 'B' : 'A';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad signature") == 0,
       "a signature changed: bad signature (%s)", why);

    /* the signature's last character carries 4 spare bits: "E" is 000100 */

    strcpy(buf, VECTOR);
    buf[strlen(buf) - 1] = 'F';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "a signature's spare bits changed: not canonical (%s)", why);

    strcpy(buf, VECTOR);
    buf[strlen(buf) - 1] = '\0';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED, "a signature one character short (%s)", why);

    strcpy(buf, VECTOR);
    t = strrchr(buf, '.');
    *t = '\0';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "not three segments") == 0,
       "no signature segment (%s)", why);

    strcpy(buf, VECTOR);
    t = strrchr(buf, '.');
    t[1] = '\0';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "not three segments") == 0,
       "an empty signature (%s)", why);

    snprintf(buf, sizeof(buf), "%s.%s", VECTOR, "e30");
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "not three segments") == 0,
       "a fourth segment (%s)", why);

    snprintf(buf, sizeof(buf), "%s.", VECTOR);
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED, "a trailing dot (%s)", why);

    snprintf(buf, sizeof(buf), ".%s", VECTOR);
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED, "a leading dot (%s)", why);

    rc = check("", &why);
    ok(rc == NGX_DECLINED, "an empty token (%s)", why);

    rc = check("..", &why);
    ok(rc == NGX_DECLINED, "two dots alone (%s)", why);

    /* base64url, canonical */

    snprintf(buf, sizeof(buf), "%s=", VECTOR);
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "padding after the signature (%s)", why);

    strcpy(buf, VECTOR);
    t = strchr(buf, '.');
    memmove(t + 1, t, strlen(t) + 1);
    *t = '=';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "padding after the header (%s)", why);

    strcpy(buf, VECTOR);
    t = strchr(VECTOR, '-');
    buf[t - VECTOR] = '+';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "'+' for '-' (%s)", why);

    strcpy(buf, VECTOR);
    t = strchr(VECTOR, '_');
    buf[t - VECTOR] = '/';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "'/' for '_' (%s)", why);

    strcpy(buf, VECTOR);
    buf[3] = ' ';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "a space in the header (%s)", why);

    /* one character more of the payload: a length of 4n+1 */

    strcpy(buf, VECTOR);
    t = strrchr(buf, '.');

    while ((t - strchr(buf, '.') - 1) % 4 != 1) {
        memmove(t + 1, t, strlen(t) + 1);
        *t++ = 'A';
    }

    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad base64url") == 0,
       "a payload of 4n+1 characters (%s)", why);

    /* the algorithm */

    t = make("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_claims(), key);
    strcpy(buf, t);
    strrchr(buf, '.')[1] = '\0';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED, "alg none, empty signature (%s)", why);

    rc = check(t, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "alg none, even with a good HMAC (%s)", why);

    rc = check(make("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "alg HS512 (%s)", why);

    rc = check(make("{\"alg\":\"hs256\"}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "alg hs256 (%s)", why);

    rc = check(make("{\"alg\":\"HS256 \"}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "alg \"HS256 \" (%s)", why);

    rc = check(make("{\"alg\":\"HS256\\u0000\"}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "alg \"HS256\\u0000\" (%s)", why);

    rc = check(make("{\"typ\":\"JWT\"}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "no alg (%s)", why);

    rc = check(make("{}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "an empty header (%s)", why);

    rc = check(make("{\"alg\":256}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "alg a number (%s)", why);

    rc = check(make("{\"alg\":[\"HS256\"]}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "alg an array (%s)", why);

    rc = check(make("{\"alg\":null}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "alg is not HS256") == 0,
       "alg null (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "a member twice") == 0,
       "alg twice, both HS256 (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"alg\":\"none\"}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED, "alg HS256 then none (%s)", why);

    rc = check(make("{\"alg\":\"HS256\"}", good_claims(), key), &why);
    ok(rc == NGX_OK, "a header of alg alone is enough (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED, "typ other than JWT (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED, "a crit member (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"kid\":\"1\"}", good_claims(), key),
               &why);
    ok(rc == NGX_DECLINED && strcmp(why, "unknown header member") == 0,
       "a kid member: the gateway makes none (%s)", why);

    /* the header's shape */

    rc = check(make("[\"alg\",\"HS256\"]", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "a header that is an array (%s)", why);

    rc = check(make("\"HS256\"", good_claims(), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "header not an object") == 0,
       "a header that is a string (%s)", why);

    rc = check(make("{\"alg\":\"HS256\",\"typ\":{\"a\":1}}", good_claims(),
                    key), &why);
    ok(rc == NGX_DECLINED, "a nested object in the header (%s)", why);

    rc = check(make("{\"alg\":\"HS256\"", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "a header that never closes (%s)", why);

    rc = check(make("{\"alg\":\"HS256\"} {}", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "a second object after the header (%s)", why);

    rc = check(make("{\"alg\":\"HS256\"} \"", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "a string left open after the header (%s)", why);

    rc = check(make("not json", good_claims(), key), &why);
    ok(rc == NGX_DECLINED, "a header that is not JSON (%s)", why);

    /* size */

    len = NGX_HTTP_SEADRAGON_JWT_MAX + 1;
    t = malloc(len + 1);
    memset(t, 'A', len);
    t[100] = '.';
    t[200] = '.';
    t[len] = '\0';
    rc = check(t, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "token too long") == 0,
       "a token of 4097 bytes (%s)", why);

    /* padded by a number nobody reads: 4096 bytes pass, 4097 do not */

    {
        char    pad[4096];
        size_t  n, found;

        for (found = 0; found < 2; found++) {

            for (n = 0; n < 3500; n++) {
                memset(pad, '1', n);
                pad[n] = '\0';
                snprintf(buf, sizeof(buf),
                         "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
                         "\"exp\":1796122800,\"x\":1%s}", pad);
                t = make(HEADER, buf, key);

                if (strlen(t) == NGX_HTTP_SEADRAGON_JWT_MAX + found) {
                    break;
                }
            }

            rc = check(t, &why);
            ok(strlen(t) == NGX_HTTP_SEADRAGON_JWT_MAX + found
               && rc == (found ? NGX_DECLINED : NGX_OK),
               "a token of %zu bytes: %s (%s)", strlen(t),
               found ? "refused" : "accepted", why);
        }

        n = 256;
        memset(pad, 'x', n);
        pad[n] = '\0';
        snprintf(buf, sizeof(buf),
                 "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
                 "\"exp\":1796122800,\"x\":\"%s\"}", pad);
        t = make(HEADER, buf, key);
        rc = check(t, &why);
        ok(rc == NGX_DECLINED && strcmp(why, "a string too long") == 0,
           "a string of %zu bytes in the claims (%s)", n, why);

        memset(pad, 'x', 255);
        pad[255] = '\0';
        snprintf(buf, sizeof(buf),
                 "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
                 "\"exp\":1796122800,\"x\":\"%s\"}", pad);
        rc = check(make(HEADER, buf, key), &why);
        ok(rc == NGX_OK, "a claim nobody reads of 255 bytes passes (%s)",
           why);
    }

    snprintf(buf, sizeof(buf),
             "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
             "\"exp\":1796122800,\"a\":1,\"b\":2,\"c\":3,\"d\":4}");
    rc = check(make(HEADER, buf, key), &why);
    ok(rc == NGX_OK, "claims of 8 members (%s)", why);

    snprintf(buf, sizeof(buf),
             "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
             "\"exp\":1796122800,\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}");
    rc = check(make(HEADER, buf, key), &why);
    ok(rc == NGX_DECLINED, "claims of 9 members (%s)", why);

    snprintf(buf, sizeof(buf),
             "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
             "\"exp\":1796122800,\"a\":{}}");
    rc = check(make(HEADER, buf, key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "claims not a flat object") == 0,
       "an object in the claims (%s)", why);

    snprintf(buf, sizeof(buf),
             "{\"sub\":\"alice\",\"src\":\"chat\",\"iat\":1,"
             "\"exp\":1796122800,\"a\":[]}");
    rc = check(make(HEADER, buf, key), &why);
    ok(rc == NGX_DECLINED, "an array in the claims (%s)", why);

    /* expiry */

    rc = check_with(VECTOR, NULL, T0 + 3600, &claims, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "token expired") == 0,
       "exp == now: expired (%s)", why);
    ok(claims.user_len == 0 && claims.user[0] == '\0',
       "and the claims are left empty");

    rc = check_with(VECTOR, NULL, T0 + 3601, &claims, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "token expired") == 0,
       "exp < now: expired (%s)", why);

    rc = check_with(VECTOR, NULL, T0 + 3599, &claims, &why);
    ok(rc == NGX_OK, "exp == now + 1: valid (%s)", why);

    rc = check(make(HEADER, "{\"sub\":\"alice\",\"src\":\"chat\","
                            "\"iat\":1796119200}", key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "claims missing") == 0,
       "no exp (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1796119200",
                                      "1796122800.0"), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "iat or exp not an integer") == 0,
       "exp 1796122800.0 (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1796119200",
                                      "1.7e9"), key), &why);
    ok(rc == NGX_DECLINED, "exp 1.7e9 (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1796119200",
                                      "\"1796122800\""), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "iat or exp not an integer") == 0,
       "exp a string (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1796119200",
                                      "-1796122800"), key), &why);
    ok(rc == NGX_DECLINED, "exp negative (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1796119200",
                                      "9999999999999999999999"), key), &why);
    ok(rc == NGX_DECLINED, "exp of 22 digits (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "true",
                                      "1796122800"), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "iat or exp not an integer") == 0,
       "iat true (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1.5",
                                      "1796122800"), key), &why);
    ok(rc == NGX_DECLINED, "iat 1.5 (%s)", why);

    rc = check(make(HEADER, "{\"sub\":\"alice\",\"src\":\"chat\","
                            "\"exp\":1796122800}", key), &why);
    ok(rc == NGX_DECLINED, "no iat (%s)", why);

    rc = check(make(HEADER, "{\"sub\":\"alice\",\"src\":\"chat\","
                            "\"iat\":1,\"exp\":1,\"exp\":1796122800}", key),
               &why);
    ok(rc == NGX_DECLINED && strcmp(why, "a member twice") == 0,
       "exp twice (%s)", why);

    /* the names */

    memset(buf, 'u', 64);
    buf[64] = '\0';
    rc = check(make(HEADER, claims_of(buf, "chat", "1", "1796122800"), key),
               &why);
    ok(rc == NGX_DECLINED && strcmp(why, "sub is not a user name") == 0,
       "a sub of 64 bytes (%s)", why);

    buf[63] = '\0';
    rc = check_with(make(HEADER, claims_of(buf, "chat", "1", "1796122800"),
                         key), NULL, T0, &claims, &why);
    ok(rc == NGX_OK && claims.user_len == 63 && claims.user[63] == '\0',
       "a sub of 63 bytes (%s)", why);

    rc = check(make(HEADER, claims_of("", "chat", "1", "1796122800"), key),
               &why);
    ok(rc == NGX_DECLINED, "an empty sub (%s)", why);

    memset(buf, 's', 32);
    buf[32] = '\0';
    rc = check(make(HEADER, claims_of("alice", buf, "1", "1796122800"), key),
               &why);
    ok(rc == NGX_DECLINED && strcmp(why, "src is not a source name") == 0,
       "a src of 32 bytes (%s)", why);

    buf[31] = '\0';
    rc = check_with(make(HEADER, claims_of("alice", buf, "1", "1796122800"),
                         key), NULL, T0, &claims, &why);
    ok(rc == NGX_OK && claims.source_len == 31, "a src of 31 bytes (%s)", why);

    rc = check(make(HEADER, "{\"sub\":\"alice\",\"iat\":1,"
                            "\"exp\":1796122800}", key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "claims missing") == 0,
       "no src (%s)", why);

    rc = check(make(HEADER, "{\"sub\":\"alice\",\"src\":7,\"iat\":1,"
                            "\"exp\":1796122800}", key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "src is not a source name") == 0,
       "src a number (%s)", why);

    rc = check(make(HEADER, "{\"src\":\"chat\",\"iat\":1,"
                            "\"exp\":1796122800}", key), &why);
    ok(rc == NGX_DECLINED, "no sub (%s)", why);

    /* NULs and UTF-8: refused, a name is letters, digits and "._@-" */

    rc = check(make(HEADER, claims_of("ali\\u0000ce", "chat", "1",
                                      "1796122800"), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "sub is not a user name") == 0,
       "a sub with an escaped NUL (%s)", why);

    {
        static const char  raw[] = "{\"sub\":\"ali\0ce\",\"src\":\"chat\","
                                   "\"iat\":1,\"exp\":1796122800}";

        rc = check(make_n(HEADER, sizeof(HEADER) - 1, raw, sizeof(raw) - 1,
                          key), &why);
        ok(rc == NGX_DECLINED, "a sub with a raw NUL (%s)", why);

        rc = check(make_n(HEADER, sizeof(HEADER) - 1, raw, 5, key), &why);
        ok(rc == NGX_DECLINED, "claims cut (%s)", why);
    }

    {
        static const char  nul[] = "{\"alg\":\"HS256\"}\0";

        rc = check(make_n(nul, sizeof(nul) - 1, good_claims(),
                          strlen(good_claims()), key), &why);
        ok(rc == NGX_DECLINED, "a NUL after the header's object (%s)", why);
    }

    rc = check(make(HEADER, claims_of("ali\xc3\xa9", "chat", "1",
                                      "1796122800"), key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "sub is not a user name") == 0,
       "a sub of valid non-ASCII UTF-8 (%s)", why);

    rc = check(make(HEADER, claims_of("ali\xc3", "chat", "1", "1796122800"),
                    key), &why);
    ok(rc == NGX_DECLINED, "a sub of invalid UTF-8 (%s)", why);

    rc = check(make(HEADER, claims_of("alice", "chat", "1", "1796122800"),
                    key), &why);
    ok(rc == NGX_OK, "the same claims with plain names pass (%s)", why);

    rc = check(make(HEADER, claims_of("a\\\"b", "chat", "1", "1796122800"),
                    key), &why);
    ok(rc == NGX_DECLINED, "a sub with a quote (%s)", why);

    rc = check(make(HEADER, "\"alice\"", key), &why);
    ok(rc == NGX_DECLINED && strcmp(why, "claims not an object") == 0,
       "claims that are a string (%s)", why);

    /* the keys: the current, the previous when given, none other */

    t = make(HEADER, good_claims(), prev);
    rc = check_with(t, prev, T0, &claims, &why);
    ok(rc == NGX_OK && claims.previous == 1 && claims.user_len == 5,
       "signed by the previous key: accepted and flagged (%s)", why);

    rc = check_with(t, NULL, T0, &claims, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad signature") == 0,
       "the same without a previous key: refused (%s)", why);

    rc = check_with(make(HEADER, good_claims(), key), prev, T0, &claims,
                    &why);
    ok(rc == NGX_OK && claims.previous == 0,
       "signed by the current key with a previous one given: not flagged");

    rc = check_with(make(HEADER, good_claims(), other), prev, T0, &claims,
                    &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad signature") == 0,
       "signed by a third key: refused (%s)", why);

    token.data = (u_char *) VECTOR;
    token.len = sizeof(VECTOR) - 1;
    rc = ngx_http_seadragon_jwt_verify(&pool, &token, key, 31, NULL, 0, T0,
                                       &claims, &why);
    ok(rc == NGX_DECLINED, "the key one byte short: refused (%s)", why);

    rc = ngx_http_seadragon_jwt_verify(&pool, &token, NULL, 0, NULL, 0, T0,
                                       &claims, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "no key") == 0,
       "no key at all: refused (%s)", why);

    /* a signature of another length, however signed */

    strcpy(buf, VECTOR);
    t = strrchr(buf, '.') + 1;
    t[40] = '\0';
    rc = check(buf, &why);
    ok(rc == NGX_DECLINED && strcmp(why, "bad signature") == 0,
       "a signature of 30 bytes (%s)", why);

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
