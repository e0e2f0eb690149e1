
/*
 * Copyright (C) The Seadragon authors
 *
 * What an answer used, read from the answer as it passes the body filter
 * (ngx_http_seadragon_release_filter()): Ollama's own figures (the line
 * with "done":true of a stream, a whole answer, /api/embed's
 * prompt_eval_count, OpenAI's "usage"), or else the stream's chunks
 * counted, one token each, and marked estimated: the lines of Ollama's
 * stream before its last, OpenAI's chunks with text.  The answer is never
 * changed, copied or held: each buffer is scanned where it lies.
 *
 * The scan follows the JSON's structure itself rather than handing the
 * bytes to yajl: yajl keeps a token that a buffer cuts and lexes it again
 * from its first byte with every later buffer (one 16 MB string in 4k
 * reads is lexed thousands of times over, and held whole in yajl's
 * buffer).  Here a string is skipped with memchr() wherever it is cut; of
 * a key, at most NGX_HTTP_SEADRAGON_USAGE_KEY_LEN bytes are kept, and
 * only at the levels where a figure can be (the top four); a number is
 * read into a uint64_t as it passes.  The scan checks the structure (the
 * brackets, the order of keys, colons, commas and values) and stops
 * counting at the first byte that is not JSON: what was counted stays.
 * A line of Ollama's stream that is whole in a buffer and ends as the
 * lines before the last do ("done":false) is counted without a scan, so
 * that a stream costs a search for its newlines and the scan of its last
 * line.
 */


#include "ngx_http_seadragon_module.h"


/* where an SSE stream is (/v1 with "stream": true) */

typedef enum {
    NGX_HTTP_SEADRAGON_SSE_LINE = 0,      /* at the start of a line */
    NGX_HTTP_SEADRAGON_SSE_FIELD,         /* matching "data:" */
    NGX_HTTP_SEADRAGON_SSE_DATA,          /* after "data:" */
    NGX_HTTP_SEADRAGON_SSE_JSON,          /* the event's JSON, to the \n */
    NGX_HTTP_SEADRAGON_SSE_SKIP           /* any other line, [DONE] */
} ngx_http_seadragon_sse_e;


#define NGX_HTTP_SEADRAGON_NATIVE_FIGURES                                     \
    (ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT)   \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT)         \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION))

#define NGX_HTTP_SEADRAGON_OPENAI_FIGURES                                     \
    (ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS)       \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS))



static void ngx_http_seadragon_usage_feed(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last);
static u_char *ngx_http_seadragon_usage_lines(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last);
static void ngx_http_seadragon_usage_chunk(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p);


/*
 * The answers that are read: Ollama's 200 to an admitted request of a
 * generating endpoint, in plain JSON (nginx's gzip, if any, comes later in
 * the chain).  Called by the header filter; the copy filter is asked for
 * the answer in memory (nginx reads what it buffered in a temporary file
 * back into memory instead of sending it with sendfile).
 */

ngx_int_t
ngx_http_seadragon_usage_start(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_str_t                          *name, *type;
    ngx_http_seadragon_usage_parser_t  *p;
    ngx_http_seadragon_loc_conf_t      *slcf;

    if (r != r->main || ctx->usage_parser != NULL || r->upstream == NULL
        || r->header_only
        || r->headers_out.status != NGX_HTTP_OK
        || ctx->endpoint == NULL
        || ctx->endpoint->kind != NGX_HTTP_SEADRAGON_ENDPOINT_GENERATE
        || (ctx->state != NGX_HTTP_SEADRAGON_ADMITTED
            && ctx->state != NGX_HTTP_SEADRAGON_BYPASSED))
    {
        return NGX_OK;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_seadragon_module);

    /*
     * With seadragon_usage off, an answer is still read for its
     * load_duration (a model's load, ngx_http_seadragon_resident.c) when
     * the zone schedules by it: fair=tokens, affinity= or loaded= above 1.
     * A zone without them keeps "nothing is read" of usage off, and its
     * view of the resident models from what it dispatched and /api/ps.
     */

    if (!slcf->usage
        && (ctx->zone == NULL
            || !(ctx->zone->fair == NGX_HTTP_SEADRAGON_FAIR_TOKENS
                 || ctx->zone->affinity || ctx->zone->loaded > 1)))
    {
        return NGX_OK;
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len
        && !(r->headers_out.content_encoding->value.len == 8
             && ngx_strncasecmp(r->headers_out.content_encoding->value.data,
                                (u_char *) "identity", 8) == 0))
    {
        return NGX_OK;
    }

    name = &ctx->endpoint->name;

    p = ngx_pcalloc(r->pool, sizeof(ngx_http_seadragon_usage_parser_t));
    if (p == NULL) {
        return NGX_ERROR;
    }

    p->openai = (ctx->endpoint->api == NGX_HTTP_SEADRAGON_API_OPENAI);

    type = &r->headers_out.content_type;

    if (type->len
        && ngx_strlcasestrn(type->data, type->data + type->len,
                            (u_char *) "event-stream",
                            sizeof("event-stream") - 2)
           != NULL)
    {
        p->event_stream = 1;
        p->streamed = 1;

    } else if (type->len
               && ngx_strlcasestrn(type->data, type->data + type->len,
                                   (u_char *) "ndjson",
                                   sizeof("ndjson") - 2)
                  != NULL)
    {
        p->streamed = 1;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon usage: reading the answer of %V "
                   "(streamed: %ui, sse: %ui)", name,
                   (ngx_uint_t) p->streamed, (ngx_uint_t) p->event_stream);

    r->filter_need_in_memory = 1;

    ngx_http_seadragon_resident_peer(r);

    ctx->usage_parser = p;
    ctx->usage.counted = 1;

    return NGX_OK;
}


/*
 * Each buffer of the answer, before it goes down the chain.  Nothing here
 * can change or stop the answer: a failure only stops the counting.
 */

void
ngx_http_seadragon_usage_parse(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_buf_t                          *b;
    ngx_chain_t                        *cl;
    ngx_http_seadragon_usage_parser_t  *p;

    p = ctx->usage_parser;

    if (p == NULL || p->failed) {
        return;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_special(b)) {
            continue;
        }

        if (!ngx_buf_in_memory(b)) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "seadragon usage: a part of the answer is not in "
                          "memory, its tokens are not counted");
            p->failed = 1;
            return;
        }

        ngx_http_seadragon_usage_feed(ctx, p, b->pos, b->last);

        if (p->failed) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "seadragon usage: the answer is not the JSON "
                          "expected, counting stops there");
            return;
        }
    }
}


/* a piece of the answer: NDJSON or JSON as it is, SSE through its lines */

static void
ngx_http_seadragon_usage_feed(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last)
{
    u_char  *nl;

    static u_char  data[] = "data:";

    if (!p->event_stream) {
        if (p->streamed && !p->openai) {
            pos = ngx_http_seadragon_usage_lines(ctx, p, pos, last);
        }

        if (pos && ngx_http_seadragon_usage_scan(ctx, p, pos, last) != NGX_OK) {
            p->failed = 1;
        }

        return;
    }

    while (pos < last) {

        switch (p->sse) {

        case NGX_HTTP_SEADRAGON_SSE_LINE:
            if (*pos == '\n' || *pos == '\r') {
                pos++;
                break;
            }

            p->sse = NGX_HTTP_SEADRAGON_SSE_FIELD;
            p->sse_pos = 0;

            /* fall through */

        case NGX_HTTP_SEADRAGON_SSE_FIELD:
            while (pos < last && p->sse_pos < sizeof(data) - 1) {
                if (*pos != data[p->sse_pos]) {
                    p->sse = NGX_HTTP_SEADRAGON_SSE_SKIP;
                    break;
                }

                pos++;
                p->sse_pos++;
            }

            if (p->sse_pos == sizeof(data) - 1) {
                p->sse = NGX_HTTP_SEADRAGON_SSE_DATA;
            }

            break;

        case NGX_HTTP_SEADRAGON_SSE_DATA:
            if (*pos == ' ') {
                pos++;
                break;
            }

            /* an event's JSON is an object; "[DONE]" is not JSON */

            p->sse = (*pos == '{') ? NGX_HTTP_SEADRAGON_SSE_JSON
                                   : NGX_HTTP_SEADRAGON_SSE_SKIP;
            break;

        case NGX_HTTP_SEADRAGON_SSE_JSON:
            nl = ngx_strlchr(pos, last, '\n');

            if (ngx_http_seadragon_usage_scan(ctx, p, pos, nl ? nl : last)
                != NGX_OK)
            {
                p->failed = 1;
                return;
            }

            if (nl == NULL) {
                return;
            }

            /* the event ends with its line: so must its JSON */

            if (p->depth || p->state != NGX_HTTP_SEADRAGON_SCAN_VALUE) {
                p->failed = 1;
                return;
            }

            p->sse = NGX_HTTP_SEADRAGON_SSE_LINE;
            pos = nl + 1;
            break;

        default: /* NGX_HTTP_SEADRAGON_SSE_SKIP */
            nl = ngx_strlchr(pos, last, '\n');

            if (nl == NULL) {
                return;
            }

            p->sse = NGX_HTTP_SEADRAGON_SSE_LINE;
            pos = nl + 1;
        }
    }
}


/*
 * Ollama's stream, line by line: a whole line that ends as every line
 * before the last ends, "done":false at the top level, is one token, and
 * is not scanned any further (encoding/json writes the struct's fields in
 * their order, "done" after the text); any other line (the last one with
 * the figures, an error, a line cut by the piece's end) is scanned.
 * Returns where the scan of the rest begins, or NULL: no rest.
 */

#define NGX_HTTP_SEADRAGON_USAGE_LINE_END  ",\"done\":false}"

static u_char *
ngx_http_seadragon_usage_lines(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last)
{
    size_t   n;
    u_char  *nl, *end;

    n = sizeof(NGX_HTTP_SEADRAGON_USAGE_LINE_END) - 1;

    while (pos < last
           && p->depth == 0 && p->state == NGX_HTTP_SEADRAGON_SCAN_VALUE)
    {
        nl = memchr(pos, '\n', last - pos);

        if (nl == NULL) {
            return pos;
        }

        end = (nl > pos && nl[-1] == '\r') ? nl - 1 : nl;

        if (*pos == '{' && (size_t) (end - pos) > n
            && ngx_memcmp(end - n, NGX_HTTP_SEADRAGON_USAGE_LINE_END, n) == 0)
        {
            ngx_http_seadragon_usage_chunk(ctx, p);

        } else if (ngx_http_seadragon_usage_scan(ctx, p, pos, nl + 1)
                   != NGX_OK)
        {
            p->failed = 1;
            return NULL;
        }

        pos = nl + 1;
    }

    return pos;
}


/*
 * A chunk of a stream, one token: a line of Ollama's with "done": false,
 * an OpenAI chunk with text in it.  Counted as it passes; Ollama's own
 * figures, when they come, replace the count.
 */

static void
ngx_http_seadragon_usage_chunk(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p)
{
    p->chunks++;

    if (p->chunks == 1) {
        p->first = ngx_current_msec;
    }

    p->last = ngx_current_msec;

    if (!ctx->usage.reported) {
        ctx->usage.completion_tokens = p->chunks;
        ctx->usage.estimated = 1;
    }
}


void
ngx_http_seadragon_usage_string_end(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p)
{
    if (p->target != NGX_HTTP_SEADRAGON_TARGET_CONTENT || !p->nonempty
        || !p->streamed || p->line_content)
    {
        return;
    }

    p->line_content = 1;

    ngx_http_seadragon_usage_chunk(ctx, p);
}


void
ngx_http_seadragon_usage_number_end(ngx_http_seadragon_usage_parser_t *p)
{
    if (p->target == NGX_HTTP_SEADRAGON_KEY_OTHER
        || p->target >= NGX_HTTP_SEADRAGON_KEY_NUMBERS)
    {
        return;
    }

    p->figures[p->target] = p->negative ? 0 : p->number;
    p->seen |= ngx_http_seadragon_usage_bit(p->target);
}


/*
 * The end of a top-level value (a line of a stream, an event, a whole
 * answer): Ollama's figures, if it has them, are the answer's.
 */

void
ngx_http_seadragon_usage_line_end(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p)
{
    uint64_t                    *f;
    ngx_http_seadragon_usage_t  *u;

    f = p->figures;
    u = &ctx->usage;

    if (p->openai) {
        if (!(p->seen & NGX_HTTP_SEADRAGON_OPENAI_FIGURES)) {
            return;
        }

        u->prompt_tokens = f[NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS];
        u->completion_tokens = f[NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS];
        u->reported = 1;
        u->estimated = 0;

        return;
    }

    if (!p->done && !(p->seen & NGX_HTTP_SEADRAGON_NATIVE_FIGURES)) {

        if (p->not_done && p->streamed) {
            ngx_http_seadragon_usage_chunk(ctx, p);
        }

        return;
    }

    u->prompt_tokens = f[NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT];
    u->completion_tokens = f[NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT];
    u->total_ms = f[NGX_HTTP_SEADRAGON_KEY_TOTAL_DURATION] / 1000000;
    u->load_ms = f[NGX_HTTP_SEADRAGON_KEY_LOAD_DURATION] / 1000000;
    u->prompt_ms = f[NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_DURATION] / 1000000;
    u->generation_ms = f[NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION] / 1000000;
    u->reported = 1;
    u->estimated = 0;

    p->eval_ns = f[NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION];
    p->load_seen = (p->seen
                    & ngx_http_seadragon_usage_bit(
                          NGX_HTTP_SEADRAGON_KEY_LOAD_DURATION))
                   != 0;
}


/*
 * The request's end (the accounting calls it first; the variables call it
 * too): an estimate's generation time is the time from its first chunk to
 * its last.  It changes nothing else, and may be called any number of
 * times, also before the answer's end (a variable in a header).
 */

void
ngx_http_seadragon_usage_finish(ngx_http_request_t *r,
    ngx_http_seadragon_ctx_t *ctx)
{
    ngx_http_seadragon_usage_parser_t  *p;

    p = ctx->usage_parser;

    if (p == NULL) {
        return;
    }

    if (ctx->usage.estimated && !ctx->usage.reported && p->chunks) {
        ctx->usage.completion_tokens = p->chunks;
        ctx->usage.generation_ms = p->last - p->first;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "seadragon usage: prompt %uL, completion %uL, "
                   "generation %uLms, reported %ui, estimated %ui",
                   ctx->usage.prompt_tokens, ctx->usage.completion_tokens,
                   ctx->usage.generation_ms,
                   (ngx_uint_t) ctx->usage.reported,
                   (ngx_uint_t) ctx->usage.estimated);
}


/*
 * Completion tokens per second of generation, in hundredths: from
 * Ollama's eval_duration (in nanoseconds) when it reported one, else
 * from the estimate's time; NGX_DECLINED when unknown.
 */

ngx_int_t
ngx_http_seadragon_usage_rate(ngx_http_seadragon_ctx_t *ctx,
    uint64_t *hundredths)
{
    uint64_t                            tokens, ns;
    ngx_http_seadragon_usage_parser_t  *p;

    p = ctx->usage_parser;

    if (p == NULL) {
        return NGX_DECLINED;
    }

    tokens = ctx->usage.completion_tokens;

    if (ctx->usage.reported && p->eval_ns) {
        ns = p->eval_ns;

    } else if (ctx->usage.generation_ms) {
        ns = ctx->usage.generation_ms * 1000000;

    } else {
        return NGX_DECLINED;
    }

    if (tokens == 0) {
        *hundredths = 0;
        return NGX_OK;
    }

    /* tokens * 100 * 10^9 / ns, rounded; figures beyond reason saturate */

    if (tokens > NGX_HTTP_SEADRAGON_USAGE_MAX / 100000000000ULL) {
        *hundredths = NGX_HTTP_SEADRAGON_USAGE_MAX;
        return NGX_OK;
    }

    *hundredths = (tokens * 100000000000ULL + ns / 2) / ns;

    return NGX_OK;
}


/* whether Ollama reported a load_duration (the native API only) */

ngx_uint_t
ngx_http_seadragon_usage_load_known(ngx_http_seadragon_ctx_t *ctx)
{
    ngx_http_seadragon_usage_parser_t  *p;

    p = ctx->usage_parser;

    return p != NULL && ctx->usage.reported && p->load_seen;
}
