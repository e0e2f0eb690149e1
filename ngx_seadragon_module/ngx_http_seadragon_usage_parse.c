
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


/* the longest key that is compared: longer ones are someone else's */
#define NGX_HTTP_SEADRAGON_USAGE_KEY_LEN  24

/* a figure beyond it stays there */
#define NGX_HTTP_SEADRAGON_USAGE_MAX      ((uint64_t) -1)

/* the levels followed: deeper, and elsewhere, a figure cannot be */
#define NGX_HTTP_SEADRAGON_USAGE_DEPTH    4


/* where the JSON scan is */

typedef enum {
    NGX_HTTP_SEADRAGON_SCAN_VALUE = 0,    /* a value is next */
    NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END, /* after "[" */
    NGX_HTTP_SEADRAGON_SCAN_KEY,          /* after "," in an object */
    NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END,   /* after "{" */
    NGX_HTTP_SEADRAGON_SCAN_COLON,
    NGX_HTTP_SEADRAGON_SCAN_AFTER,        /* after a value: , } ] */
    NGX_HTTP_SEADRAGON_SCAN_STRING,
    NGX_HTTP_SEADRAGON_SCAN_ESCAPE,
    NGX_HTTP_SEADRAGON_SCAN_NUMBER,
    NGX_HTTP_SEADRAGON_SCAN_LITERAL,
    NGX_HTTP_SEADRAGON_SCAN_SKIP,         /* a container of no interest */
    NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING,  /* a string in it */
    NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE
} ngx_http_seadragon_scan_e;


/* where an SSE stream is (/v1 with "stream": true) */

typedef enum {
    NGX_HTTP_SEADRAGON_SSE_LINE = 0,      /* at the start of a line */
    NGX_HTTP_SEADRAGON_SSE_FIELD,         /* matching "data:" */
    NGX_HTTP_SEADRAGON_SSE_DATA,          /* after "data:" */
    NGX_HTTP_SEADRAGON_SSE_JSON,          /* the event's JSON, to the \n */
    NGX_HTTP_SEADRAGON_SSE_SKIP           /* any other line, [DONE] */
} ngx_http_seadragon_sse_e;


/* the keys that matter, and the figures of the current top-level value */

typedef enum {
    NGX_HTTP_SEADRAGON_KEY_OTHER = 0,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT,
    NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT,
    NGX_HTTP_SEADRAGON_KEY_TOTAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_LOAD_DURATION,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION,
    NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS,
    NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS,
    NGX_HTTP_SEADRAGON_KEY_NUMBERS,       /* the numbers above it */
    NGX_HTTP_SEADRAGON_KEY_DONE,
    NGX_HTTP_SEADRAGON_KEY_USAGE,
    NGX_HTTP_SEADRAGON_KEY_CHOICES,
    NGX_HTTP_SEADRAGON_KEY_DELTA,
    NGX_HTTP_SEADRAGON_KEY_CONTENT,
    NGX_HTTP_SEADRAGON_KEY_TEXT
} ngx_http_seadragon_usage_key_e;


#define NGX_HTTP_SEADRAGON_TARGET_CONTENT  NGX_HTTP_SEADRAGON_KEY_CONTENT
#define NGX_HTTP_SEADRAGON_TARGET_DONE     NGX_HTTP_SEADRAGON_KEY_DONE

#define ngx_http_seadragon_usage_bit(key)  ((ngx_uint_t) 1 << (key))

/* whether level d (1: the top-level value) is an array */
#define ngx_http_seadragon_usage_array(p, d)  ((p)->arrays >> ((d) - 1) & 1)

#define NGX_HTTP_SEADRAGON_NATIVE_FIGURES                                     \
    (ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT)   \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT)         \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION))

#define NGX_HTTP_SEADRAGON_OPENAI_FIGURES                                     \
    (ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS)       \
     |ngx_http_seadragon_usage_bit(NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS))


typedef struct {
    /* the scan */
    ngx_uint_t                       state;          /* SCAN_* */
    ngx_uint_t                       depth;          /* open containers */
    ngx_uint_t                       arrays;         /* bit d-1: level d */
    uint64_t                         skipped;        /* open in a SKIP */
    ngx_uint_t                       keys[NGX_HTTP_SEADRAGON_USAGE_DEPTH + 1];
    ngx_uint_t                       target;         /* of the value: KEY_* */
    u_char                           key[NGX_HTTP_SEADRAGON_USAGE_KEY_LEN];
    u_char                          *key_start;      /* in place, or NULL */
    size_t                           key_len;
    const char                      *literal;        /* "true", ... */
    ngx_uint_t                       literal_pos;
    uint64_t                         number;
    ngx_uint_t                       sse;            /* SSE_* */
    ngx_uint_t                       sse_pos;

    /* the figures of the current top-level value */
    uint64_t                         figures[NGX_HTTP_SEADRAGON_KEY_NUMBERS];
    ngx_uint_t                       seen;           /* their bits */

    /* the answer's */
    uint64_t                         chunks;         /* counted, one token */
    uint64_t                         eval_ns;        /* eval_duration */
    ngx_msec_t                       first;          /* the first chunk */
    ngx_msec_t                       last;           /* the last one */

    unsigned                         openai:1;
    unsigned                         streamed:1;     /* NDJSON or SSE */
    unsigned                         event_stream:1; /* SSE */
    unsigned                         in_key:1;       /* the string is a key */
    unsigned                         key_long:1;     /* or escaped */
    unsigned                         nonempty:1;     /* the string has bytes */
    unsigned                         negative:1;
    unsigned                         fraction:1;     /* . or e: not counted */
    unsigned                         value_true:1;
    unsigned                         line_content:1; /* chunk counted */
    unsigned                         done:1;         /* "done": true */
    unsigned                         not_done:1;     /* "done": false */
    unsigned                         load_seen:1;
    unsigned                         failed:1;       /* not JSON: stopped */
} ngx_http_seadragon_usage_parser_t;


static void ngx_http_seadragon_usage_feed(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last);
static u_char *ngx_http_seadragon_usage_lines(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last);
static ngx_int_t ngx_http_seadragon_usage_scan(
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, u_char *last);
static ngx_uint_t ngx_http_seadragon_usage_wanted(
    ngx_http_seadragon_usage_parser_t *p, ngx_uint_t array);
static void ngx_http_seadragon_usage_open(
    ngx_http_seadragon_usage_parser_t *p, ngx_uint_t array);
static u_char *ngx_http_seadragon_usage_skip(
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last,
    ngx_uint_t *state);
static void ngx_http_seadragon_usage_key_add(
    ngx_http_seadragon_usage_parser_t *p, u_char *start, u_char *end,
    ngx_uint_t cut);
static ngx_uint_t ngx_http_seadragon_usage_key_find(u_char *key, size_t len);
static void ngx_http_seadragon_usage_value_target(
    ngx_http_seadragon_usage_parser_t *p);
static void ngx_http_seadragon_usage_key_end(
    ngx_http_seadragon_usage_parser_t *p);
static void ngx_http_seadragon_usage_chunk(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p);
static void ngx_http_seadragon_usage_string_end(
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_usage_parser_t *p);
static void ngx_http_seadragon_usage_number_end(
    ngx_http_seadragon_usage_parser_t *p);
static void ngx_http_seadragon_usage_line_end(ngx_http_seadragon_ctx_t *ctx,
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

    if (!slcf->usage) {
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
 * The JSON scan over one piece: NGX_ERROR at a byte that is not JSON.  Any
 * number of top-level values follow each other (NDJSON, SSE events).  The
 * state lives in locals while the piece is scanned (the parser's fields
 * are written back where a helper needs them, and at the end); a key is
 * compared where it lies in the piece, and only a key cut by the piece's
 * end is copied, at most NGX_HTTP_SEADRAGON_USAGE_KEY_LEN bytes of it.
 */

#define ngx_http_seadragon_usage_space(c)                                     \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

static ngx_int_t
ngx_http_seadragon_usage_scan(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last)
{
    u_char      c, *start;
    uint64_t    number;
    ngx_uint_t  state;

    state = p->state;
    number = p->number;

    while (pos < last) {

        switch (state) {

        case NGX_HTTP_SEADRAGON_SCAN_STRING:

            if (!p->in_key) {
                pos = ngx_http_seadragon_usage_skip(p, pos, last, &state);

                if (state == NGX_HTTP_SEADRAGON_SCAN_AFTER) {
                    ngx_http_seadragon_usage_string_end(ctx, p);
                }

                break;
            }

            start = pos;

            while (pos < last && *pos != '"' && *pos != '\\') {
                pos++;
            }

            ngx_http_seadragon_usage_key_add(p, start, pos, pos == last);

            if (pos == last) {
                break;
            }

            if (*pos++ == '\\') {
                state = NGX_HTTP_SEADRAGON_SCAN_ESCAPE;
                p->key_long = 1;
                break;
            }

            ngx_http_seadragon_usage_key_end(p);
            state = NGX_HTTP_SEADRAGON_SCAN_COLON;
            break;

        case NGX_HTTP_SEADRAGON_SCAN_ESCAPE:
            pos++;
            p->nonempty = 1;
            state = NGX_HTTP_SEADRAGON_SCAN_STRING;
            break;

        case NGX_HTTP_SEADRAGON_SCAN_NUMBER:

            while (pos < last) {
                c = *pos;

                if (c >= '0' && c <= '9') {
                    if (p->fraction) {
                        /* a figure's fraction or exponent is not counted */

                    } else if (number > NGX_HTTP_SEADRAGON_USAGE_MAX / 10 - 1) {
                        number = NGX_HTTP_SEADRAGON_USAGE_MAX;

                    } else {
                        number = number * 10 + (c - '0');
                    }

                } else if (c == '.' || c == 'e' || c == 'E' || c == '+'
                           || c == '-')
                {
                    p->fraction = 1;

                } else {
                    break;
                }

                pos++;
            }

            if (pos == last) {
                break;
            }

            /* the byte after the number is looked at again */

            p->number = number;
            ngx_http_seadragon_usage_number_end(p);
            state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
            break;

        case NGX_HTTP_SEADRAGON_SCAN_SKIP:

            /* brackets and strings only: what is inside is not looked at */

            while (pos < last && *pos != '"' && *pos != '{' && *pos != '}'
                   && *pos != '[' && *pos != ']')
            {
                pos++;
            }

            if (pos == last) {
                break;
            }

            c = *pos++;

            if (c == '"') {
                state = NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;

            } else if (c == '{' || c == '[') {
                p->skipped++;

            } else if (--p->skipped == 0) {
                state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
            }

            break;

        case NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING:
            state = NGX_HTTP_SEADRAGON_SCAN_STRING;
            pos = ngx_http_seadragon_usage_skip(p, pos, last, &state);

            state = (state == NGX_HTTP_SEADRAGON_SCAN_AFTER)
                    ? NGX_HTTP_SEADRAGON_SCAN_SKIP
                    : (state == NGX_HTTP_SEADRAGON_SCAN_ESCAPE)
                      ? NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE
                      : NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;
            break;

        case NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE:
            pos++;
            state = NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;
            break;

        case NGX_HTTP_SEADRAGON_SCAN_LITERAL:
            if (*pos != (u_char) p->literal[p->literal_pos]) {
                return NGX_ERROR;
            }

            pos++;

            if (p->literal[++p->literal_pos] == '\0') {
                if (p->target == NGX_HTTP_SEADRAGON_TARGET_DONE) {
                    p->done = p->value_true;
                    p->not_done = !p->value_true;
                }

                state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
            }

            break;

        default:

            while (pos < last && ngx_http_seadragon_usage_space(*pos)) {
                pos++;
            }

            if (pos == last) {
                break;
            }

            c = *pos;

            switch (state) {

            case NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END:
                if (c == '}') {
                    goto close_object;
                }

                /* fall through */

            case NGX_HTTP_SEADRAGON_SCAN_KEY:
                if (c != '"') {
                    return NGX_ERROR;
                }

                pos++;
                p->in_key = 1;
                p->key_long = 0;
                p->key_len = 0;
                p->key_start = NULL;
                state = NGX_HTTP_SEADRAGON_SCAN_STRING;
                break;

            case NGX_HTTP_SEADRAGON_SCAN_COLON:
                if (c != ':') {
                    return NGX_ERROR;
                }

                pos++;
                state = NGX_HTTP_SEADRAGON_SCAN_VALUE;
                break;

            case NGX_HTTP_SEADRAGON_SCAN_AFTER:
                if (p->depth == 0) {
                    /* a top-level scalar: the next value may follow */
                    state = NGX_HTTP_SEADRAGON_SCAN_VALUE;
                    break;
                }

                if (c == ',') {
                    pos++;
                    state = ngx_http_seadragon_usage_array(p, p->depth)
                            ? NGX_HTTP_SEADRAGON_SCAN_VALUE
                            : NGX_HTTP_SEADRAGON_SCAN_KEY;
                    break;
                }

                if (c == '}') {
                    goto close_object;
                }

                if (c == ']') {
                    goto close_array;
                }

                return NGX_ERROR;

            case NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END:
                if (c == ']') {
                    goto close_array;
                }

                /* fall through */

            default: /* NGX_HTTP_SEADRAGON_SCAN_VALUE */

                if (p->depth <= NGX_HTTP_SEADRAGON_USAGE_DEPTH) {
                    ngx_http_seadragon_usage_value_target(p);

                } else {
                    p->target = NGX_HTTP_SEADRAGON_KEY_OTHER;
                }

                pos++;

                switch (c) {

                case '{':
                case '[':
                    if (!ngx_http_seadragon_usage_wanted(p, c == '[')) {
                        p->skipped = 1;
                        state = NGX_HTTP_SEADRAGON_SCAN_SKIP;
                        break;
                    }

                    ngx_http_seadragon_usage_open(p, c == '[');

                    state = (c == '[') ? NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END
                                       : NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END;
                    break;

                case '"':
                    p->in_key = 0;
                    p->nonempty = 0;
                    state = NGX_HTTP_SEADRAGON_SCAN_STRING;
                    break;

                case 't':
                case 'f':
                case 'n':
                    p->literal = (c == 't') ? "true"
                                 : (c == 'f') ? "false" : "null";
                    p->literal_pos = 1;
                    p->value_true = (c == 't');
                    state = NGX_HTTP_SEADRAGON_SCAN_LITERAL;
                    break;

                case '-':
                    number = 0;
                    p->negative = 1;
                    p->fraction = 0;
                    state = NGX_HTTP_SEADRAGON_SCAN_NUMBER;
                    break;

                default:
                    if (c < '0' || c > '9') {
                        return NGX_ERROR;
                    }

                    number = c - '0';
                    p->negative = 0;
                    p->fraction = 0;
                    state = NGX_HTTP_SEADRAGON_SCAN_NUMBER;
                }
            }
        }

        continue;

    close_object:

        if (p->depth == 0 || ngx_http_seadragon_usage_array(p, p->depth)) {
            return NGX_ERROR;
        }

        goto close;

    close_array:

        if (p->depth == 0 || !ngx_http_seadragon_usage_array(p, p->depth)) {
            return NGX_ERROR;
        }

    close:

        pos++;

        if (--p->depth == 0) {
            ngx_http_seadragon_usage_line_end(ctx, p);
            state = NGX_HTTP_SEADRAGON_SCAN_VALUE;

        } else {
            state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
        }
    }

    p->state = state;
    p->number = number;

    return NGX_OK;
}


/*
 * Whether a container that opens here can hold a figure: the top-level
 * value, its "usage" object, its "choices" array, their objects and the
 * "delta" in them.  Any other (Ollama's "message" and "context", the
 * vectors of embeddings, a tool call's arguments) is skipped whole.
 */

static ngx_uint_t
ngx_http_seadragon_usage_wanted(ngx_http_seadragon_usage_parser_t *p,
    ngx_uint_t array)
{
    ngx_uint_t  choices;

    choices = (p->keys[1] == NGX_HTTP_SEADRAGON_KEY_CHOICES);

    switch (p->depth) {

    case 0:
        return 1;

    case 1:
        return array ? choices
                     : (p->keys[1] == NGX_HTTP_SEADRAGON_KEY_USAGE);

    case 2:
        return choices && !array && ngx_http_seadragon_usage_array(p, 2);

    case 3:
        return choices && !array && !ngx_http_seadragon_usage_array(p, 3)
               && p->keys[3] == NGX_HTTP_SEADRAGON_KEY_DELTA;

    default:
        return 0;
    }
}


static void
ngx_http_seadragon_usage_open(ngx_http_seadragon_usage_parser_t *p,
    ngx_uint_t array)
{
    if (p->depth == 0) {
        /* a new top-level value: its own figures */
        ngx_memzero(p->figures, sizeof(p->figures));
        p->seen = 0;
        p->done = 0;
        p->not_done = 0;
        p->line_content = 0;
    }

    p->depth++;

    if (array) {
        p->arrays |= (ngx_uint_t) 1 << (p->depth - 1);

    } else {
        p->arrays &= ~((ngx_uint_t) 1 << (p->depth - 1));
    }

    p->keys[p->depth] = NGX_HTTP_SEADRAGON_KEY_OTHER;
}


/*
 * What the value that begins here is, by the path to it: one of the
 * figures (a top-level number, or one in the top-level "usage"), "done",
 * or the text of an OpenAI chunk: choices[].text (completions) or
 * choices[].delta.content (chat completions).
 */

static void
ngx_http_seadragon_usage_value_target(ngx_http_seadragon_usage_parser_t *p)
{
    ngx_uint_t  d, key;

    p->target = NGX_HTTP_SEADRAGON_KEY_OTHER;

    d = p->depth;

    if (d == 0 || d > NGX_HTTP_SEADRAGON_USAGE_DEPTH
        || ngx_http_seadragon_usage_array(p, d))
    {
        return;
    }

    key = p->keys[d];

    switch (d) {

    case 1:
        if (key < NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS
            || key == NGX_HTTP_SEADRAGON_KEY_DONE)
        {
            p->target = key;
        }

        return;

    case 2:
        if (p->keys[1] == NGX_HTTP_SEADRAGON_KEY_USAGE
            && (key == NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS
                || key == NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS))
        {
            p->target = key;
        }

        return;

    case 3:
        if (p->keys[1] == NGX_HTTP_SEADRAGON_KEY_CHOICES
            && ngx_http_seadragon_usage_array(p, 2)
            && key == NGX_HTTP_SEADRAGON_KEY_TEXT)
        {
            p->target = NGX_HTTP_SEADRAGON_TARGET_CONTENT;
        }

        return;

    default: /* 4 */
        if (p->keys[1] == NGX_HTTP_SEADRAGON_KEY_CHOICES
            && ngx_http_seadragon_usage_array(p, 2)
            && !ngx_http_seadragon_usage_array(p, 3)
            && p->keys[3] == NGX_HTTP_SEADRAGON_KEY_DELTA
            && key == NGX_HTTP_SEADRAGON_KEY_CONTENT)
        {
            p->target = NGX_HTTP_SEADRAGON_TARGET_CONTENT;
        }
    }
}


/*
 * A string's text, skipped to its closing quote with memchr(): the bulk
 * of an answer (and a 16 MB one) costs what a search for a byte costs.
 * A quote after an odd run of backslashes is escaped; a run that the
 * piece's end cuts is told by the state (ESCAPE: the next piece's first
 * byte is escaped).  Returns where the scan goes on; *state becomes AFTER
 * at the closing quote.
 */

static u_char *
ngx_http_seadragon_usage_skip(ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, u_char *last, ngx_uint_t *state)
{
    u_char  *q, *b;

    for ( ;; ) {
        q = memchr(pos, '"', last - pos);

        b = (q ? q : last);

        if (b != pos) {
            p->nonempty = 1;
        }

        /* the backslashes right before the quote, or the piece's end */

        while (b > pos && b[-1] == '\\') {
            b--;
        }

        if (q == NULL) {
            if ((last - b) % 2) {
                *state = NGX_HTTP_SEADRAGON_SCAN_ESCAPE;
            }

            return last;
        }

        if ((q - b) % 2 == 0) {
            *state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
            return q + 1;
        }

        pos = q + 1;

        if (pos == last) {
            return last;
        }
    }
}


/*
 * A key's bytes in this piece: a key that ends in the piece where it
 * began is compared where it lies; one that a piece's end cuts is copied,
 * at most NGX_HTTP_SEADRAGON_USAGE_KEY_LEN bytes (a longer key matches
 * none, nor does one with an escape).
 */

static void
ngx_http_seadragon_usage_key_add(ngx_http_seadragon_usage_parser_t *p,
    u_char *start, u_char *end, ngx_uint_t cut)
{
    size_t  n;

    if (p->key_long) {
        return;
    }

    n = end - start;

    if (p->key_len + n > NGX_HTTP_SEADRAGON_USAGE_KEY_LEN) {
        p->key_long = 1;
        return;
    }

    if (p->key_len == 0 && !cut) {
        p->key_start = start;
        p->key_len = n;
        return;
    }

    ngx_memcpy(p->key + p->key_len, start, n);
    p->key_len += n;
    p->key_start = NULL;
}


static void
ngx_http_seadragon_usage_key_end(ngx_http_seadragon_usage_parser_t *p)
{
    u_char      *key;
    ngx_uint_t   found;

    key = p->key_start ? p->key_start : p->key;
    p->key_start = NULL;

    if (p->depth == 0 || p->depth > NGX_HTTP_SEADRAGON_USAGE_DEPTH) {
        return;
    }

    found = NGX_HTTP_SEADRAGON_KEY_OTHER;

    if (!p->key_long) {
        found = ngx_http_seadragon_usage_key_find(key, p->key_len);
    }

    p->keys[p->depth] = found;
}


/*
 * The keys that matter, by length first: most keys of an answer are none
 * of them, and this runs for every key of the top four levels.
 */

#define ngx_http_seadragon_usage_is(key, name)                                \
    (ngx_memcmp(key, name, sizeof(name) - 1) == 0)

static ngx_uint_t
ngx_http_seadragon_usage_key_find(u_char *key, size_t len)
{
    switch (len) {

    case 4:
        if (ngx_http_seadragon_usage_is(key, "done")) {
            return NGX_HTTP_SEADRAGON_KEY_DONE;
        }

        if (ngx_http_seadragon_usage_is(key, "text")) {
            return NGX_HTTP_SEADRAGON_KEY_TEXT;
        }

        break;

    case 5:
        if (ngx_http_seadragon_usage_is(key, "usage")) {
            return NGX_HTTP_SEADRAGON_KEY_USAGE;
        }

        if (ngx_http_seadragon_usage_is(key, "delta")) {
            return NGX_HTTP_SEADRAGON_KEY_DELTA;
        }

        break;

    case 7:
        if (ngx_http_seadragon_usage_is(key, "choices")) {
            return NGX_HTTP_SEADRAGON_KEY_CHOICES;
        }

        if (ngx_http_seadragon_usage_is(key, "content")) {
            return NGX_HTTP_SEADRAGON_KEY_CONTENT;
        }

        break;

    case 10:
        if (ngx_http_seadragon_usage_is(key, "eval_count")) {
            return NGX_HTTP_SEADRAGON_KEY_EVAL_COUNT;
        }

        break;

    case 13:
        if (ngx_http_seadragon_usage_is(key, "load_duration")) {
            return NGX_HTTP_SEADRAGON_KEY_LOAD_DURATION;
        }

        if (ngx_http_seadragon_usage_is(key, "eval_duration")) {
            return NGX_HTTP_SEADRAGON_KEY_EVAL_DURATION;
        }

        if (ngx_http_seadragon_usage_is(key, "prompt_tokens")) {
            return NGX_HTTP_SEADRAGON_KEY_PROMPT_TOKENS;
        }

        break;

    case 14:
        if (ngx_http_seadragon_usage_is(key, "total_duration")) {
            return NGX_HTTP_SEADRAGON_KEY_TOTAL_DURATION;
        }

        break;

    case 17:
        if (ngx_http_seadragon_usage_is(key, "prompt_eval_count")) {
            return NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_COUNT;
        }

        if (ngx_http_seadragon_usage_is(key, "completion_tokens")) {
            return NGX_HTTP_SEADRAGON_KEY_COMPLETION_TOKENS;
        }

        break;

    case 20:
        if (ngx_http_seadragon_usage_is(key, "prompt_eval_duration")) {
            return NGX_HTTP_SEADRAGON_KEY_PROMPT_EVAL_DURATION;
        }

        break;
    }

    return NGX_HTTP_SEADRAGON_KEY_OTHER;
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


static void
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


static void
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

static void
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
