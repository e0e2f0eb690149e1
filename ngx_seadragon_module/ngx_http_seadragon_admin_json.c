
/*
 * Copyright (C) The Seadragon authors
 *
 * The JSON answers of the admin API, written with yajl_gen: its errors,
 * its 405s, its lists, and the writer the API and the store endpoints
 * share.  A failed yajl_gen_* call is remembered, and a half-written
 * answer never goes out.
 */


#include "ngx_http_seadragon_module.h"


static size_t ngx_http_seadragon_utf8_len(u_char *p, u_char *last);


ngx_int_t
ngx_http_seadragon_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    char *message)
{
    ngx_http_seadragon_json_t  j;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (ngx_http_seadragon_json_begin(r, &j) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the message may quote the client's bytes: json_text makes them UTF-8 */

    ngx_http_seadragon_json_map_open(&j);
    ngx_http_seadragon_json_str(&j, "error");
    ngx_http_seadragon_json_text(&j, (u_char *) message, ngx_strlen(message));
    ngx_http_seadragon_json_map_close(&j);

    r->headers_out.status = status;

    return ngx_http_seadragon_admin_send(r, &j);
}


ngx_int_t
ngx_http_seadragon_admin_not_allowed(ngx_http_request_t *r, char *allow,
    char *message)
{
    if (ngx_http_seadragon_header_add(r, "Allow", (u_char *) allow,
                                      ngx_strlen(allow))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_seadragon_admin_error(r, NGX_HTTP_NOT_ALLOWED, message);
}


/*
 * The end of a listing of the store ({"NAME":[...]}): a walk that failed
 * (rc) makes it a 503.
 */

ngx_int_t
ngx_http_seadragon_admin_list_send(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j, ngx_int_t rc)
{
    ngx_http_seadragon_json_array_close(j);
    ngx_http_seadragon_json_map_close(j);

    if (rc != NGX_OK) {
        yajl_gen_free(j->gen);
        return ngx_http_seadragon_admin_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                              "the store cannot be read");
    }

    return ngx_http_seadragon_admin_send(r, j);
}


/*
 * The generator's buffer is copied to the request, then the generator
 * freed.  An answer that a yajl_gen_* call failed to write is not sent:
 * a fixed error takes its place.
 */

ngx_int_t
ngx_http_seadragon_admin_send(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j)
{
    size_t                len;
    u_char               *p;
    ngx_uint_t            status;
    const unsigned char  *buf;

    static u_char  failed[] =
        "{\"error\":\"the admin API could not write its answer\"}";

    if (!j->failed
        && yajl_gen_get_buf(j->gen, &buf, &len) != yajl_gen_status_ok)
    {
        j->failed = 1;
    }

    if (j->failed) {
        yajl_gen_free(j->gen);

        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "seadragon admin could not write a JSON answer");

        return ngx_http_seadragon_send_json(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            failed, sizeof(failed) - 1);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        yajl_gen_free(j->gen);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, buf, len);
    yajl_gen_free(j->gen);

    status = r->headers_out.status ? r->headers_out.status : NGX_HTTP_OK;

    return ngx_http_seadragon_send_json(r, status, p, len);
}


ngx_int_t
ngx_http_seadragon_json_begin(ngx_http_request_t *r,
    ngx_http_seadragon_json_t *j)
{
    j->pool = r->pool;
    j->failed = 0;

    j->gen = yajl_gen_alloc(NULL);
    if (j->gen == NULL) {
        return NGX_ERROR;
    }

    /* a string cut inside a UTF-8 sequence must fail, not go out */

    if (yajl_gen_config(j->gen, yajl_gen_validate_utf8, 1) == 0) {
        yajl_gen_free(j->gen);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_seadragon_json_check(ngx_http_seadragon_json_t *j,
    yajl_gen_status status)
{
    if (status != yajl_gen_status_ok) {
        j->failed = 1;
    }
}


void
ngx_http_seadragon_json_map_open(ngx_http_seadragon_json_t *j)
{
    ngx_http_seadragon_json_check(j, yajl_gen_map_open(j->gen));
}


void
ngx_http_seadragon_json_map_close(ngx_http_seadragon_json_t *j)
{
    ngx_http_seadragon_json_check(j, yajl_gen_map_close(j->gen));
}


void
ngx_http_seadragon_json_array_open(ngx_http_seadragon_json_t *j)
{
    ngx_http_seadragon_json_check(j, yajl_gen_array_open(j->gen));
}


void
ngx_http_seadragon_json_array_close(ngx_http_seadragon_json_t *j)
{
    ngx_http_seadragon_json_check(j, yajl_gen_array_close(j->gen));
}


/* a string of ours: a key, or a fixed value */

void
ngx_http_seadragon_json_str(ngx_http_seadragon_json_t *j, char *s)
{
    ngx_http_seadragon_json_check(j,
        yajl_gen_string(j->gen, (const unsigned char *) s, ngx_strlen(s)));
}


/*
 * Bytes from elsewhere (a client, the store, a mangled model name): each
 * byte that does not begin a well-formed UTF-8 sequence becomes U+FFFD,
 * as a browser shows it, so that the answer is JSON whatever they are.
 */

void
ngx_http_seadragon_json_text(ngx_http_seadragon_json_t *j, u_char *data,
    size_t len)
{
    size_t   n;
    u_char  *p, *last, *out, *o;

    last = data + len;

    for (p = data; p < last; p += n) {
        n = ngx_http_seadragon_utf8_len(p, last);
        if (n == 0) {
            break;
        }
    }

    if (p == last) {
        ngx_http_seadragon_json_check(j, yajl_gen_string(j->gen, data, len));
        return;
    }

    out = ngx_pnalloc(j->pool, len * 3);
    if (out == NULL) {
        j->failed = 1;
        return;
    }

    o = ngx_cpymem(out, data, p - data);

    while (p < last) {
        n = ngx_http_seadragon_utf8_len(p, last);

        if (n == 0) {
            *o++ = 0xef;
            *o++ = 0xbf;
            *o++ = 0xbd;
            p++;
            continue;
        }

        o = ngx_cpymem(o, p, n);
        p += n;
    }

    ngx_http_seadragon_json_check(j, yajl_gen_string(j->gen, out, o - out));
}


/* the length of the well-formed UTF-8 sequence at p (RFC 3629), or 0 */

static size_t
ngx_http_seadragon_utf8_len(u_char *p, u_char *last)
{
    size_t  n, i;

    if (*p < 0x80) {
        return 1;
    }

    if (*p < 0xc2 || *p > 0xf4) {
        return 0;
    }

    n = (*p < 0xe0) ? 2 : (*p < 0xf0) ? 3 : 4;

    if ((size_t) (last - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */

    if ((*p == 0xe0 && p[1] < 0xa0)
        || (*p == 0xed && p[1] > 0x9f)
        || (*p == 0xf0 && p[1] < 0x90)
        || (*p == 0xf4 && p[1] > 0x8f))
    {
        return 0;
    }

    return n;
}


void
ngx_http_seadragon_json_field(ngx_http_seadragon_json_t *j, char *key,
    u_char *value, size_t len)
{
    ngx_http_seadragon_json_str(j, key);

    if (len == 0) {
        ngx_http_seadragon_json_check(j, yajl_gen_null(j->gen));
        return;
    }

    ngx_http_seadragon_json_text(j, value, len);
}


void
ngx_http_seadragon_json_int(ngx_http_seadragon_json_t *j, char *key,
    long long value)
{
    ngx_http_seadragon_json_str(j, key);
    ngx_http_seadragon_json_check(j, yajl_gen_integer(j->gen, value));
}


/* milliseconds as seconds with three decimals: 1.158, not 1.15799999 */

void
ngx_http_seadragon_json_seconds(ngx_http_seadragon_json_t *j, char *key,
    ngx_msec_t ms)
{
    u_char  *p, buf[NGX_INT64_LEN + 5];

    ngx_http_seadragon_json_str(j, key);

    p = ngx_slprintf(buf, buf + sizeof(buf), "%M.%03M", ms / 1000, ms % 1000);

    ngx_http_seadragon_json_check(j,
        yajl_gen_number(j->gen, (const char *) buf, p - buf));
}
