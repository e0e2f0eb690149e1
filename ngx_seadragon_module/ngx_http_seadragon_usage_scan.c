
/*
 * Copyright (C) The Seadragon authors
 *
 * The JSON scan of ngx_http_seadragon_usage_parse.c: the lexer that
 * follows an answer's structure (brackets, keys, colons, commas and
 * values) buffer by buffer, keeps the keys that matter and reads their
 * numbers as they pass; what the figures mean is settled by
 * ngx_http_seadragon_usage_parse.c (usage_string_end(), _number_end()
 * and _line_end()).
 */


#include "ngx_http_seadragon_module.h"


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
static u_char *ngx_http_seadragon_usage_scan_number(
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last,
    ngx_uint_t *state, uint64_t *np);
static u_char *ngx_http_seadragon_usage_scan_skip(
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last,
    ngx_uint_t *state);
static u_char *ngx_http_seadragon_usage_scan_struct(
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, u_char *last, ngx_uint_t *state, uint64_t *number);
static ngx_int_t ngx_http_seadragon_usage_scan_value(
    ngx_http_seadragon_usage_parser_t *p, u_char c, ngx_uint_t *state,
    uint64_t *number);
static u_char *ngx_http_seadragon_usage_scan_close(
    ngx_http_seadragon_ctx_t *ctx, ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, ngx_uint_t array, ngx_uint_t *state);


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

ngx_int_t
ngx_http_seadragon_usage_scan(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last)
{
    u_char      *start;
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
            pos = ngx_http_seadragon_usage_scan_number(p, pos, last, &state,
                                                       &number);
            break;

        case NGX_HTTP_SEADRAGON_SCAN_SKIP:
        case NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING:
        case NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE:
            pos = ngx_http_seadragon_usage_scan_skip(p, pos, last, &state);
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
            pos = ngx_http_seadragon_usage_scan_struct(ctx, p, pos, last,
                                                       &state, &number);
            if (pos == NULL) {
                return NGX_ERROR;
            }
        }
    }

    p->state = state;
    p->number = number;

    return NGX_OK;
}


/* a number's digits as they pass; the byte after it is looked at again */

static u_char *
ngx_http_seadragon_usage_scan_number(ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, u_char *last, ngx_uint_t *state, uint64_t *np)
{
    u_char    c;
    uint64_t  number;

    number = *np;

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

    *np = number;

    if (pos == last) {
        return pos;
    }

    /* the byte after the number is looked at again */

    p->number = number;
    ngx_http_seadragon_usage_number_end(p);
    *state = NGX_HTTP_SEADRAGON_SCAN_AFTER;

    return pos;
}


/* a container of no interest: brackets and strings only */

static u_char *
ngx_http_seadragon_usage_scan_skip(ngx_http_seadragon_usage_parser_t *p,
    u_char *pos, u_char *last, ngx_uint_t *state)
{
    u_char  c;

    switch (*state) {

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
            *state = NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;

        } else if (c == '{' || c == '[') {
            p->skipped++;

        } else if (--p->skipped == 0) {
            *state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
        }

        break;

    case NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING:
        *state = NGX_HTTP_SEADRAGON_SCAN_STRING;
        pos = ngx_http_seadragon_usage_skip(p, pos, last, state);

        *state = (*state == NGX_HTTP_SEADRAGON_SCAN_AFTER)
                 ? NGX_HTTP_SEADRAGON_SCAN_SKIP
                 : (*state == NGX_HTTP_SEADRAGON_SCAN_ESCAPE)
                   ? NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE
                   : NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;
        break;

    default: /* NGX_HTTP_SEADRAGON_SCAN_SKIP_ESCAPE */
        pos++;
        *state = NGX_HTTP_SEADRAGON_SCAN_SKIP_STRING;
    }

    return pos;
}


/*
 * Between the tokens: white space, then a key, a colon, a comma, a
 * closing bracket or the start of a value; NULL at a byte that is not
 * JSON.
 */

static u_char *
ngx_http_seadragon_usage_scan_struct(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, u_char *last,
    ngx_uint_t *state, uint64_t *number)
{
    u_char  c;

    while (pos < last && ngx_http_seadragon_usage_space(*pos)) {
        pos++;
    }

    if (pos == last) {
        return pos;
    }

    c = *pos;

    switch (*state) {

    case NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END:
        if (c == '}') {
            return ngx_http_seadragon_usage_scan_close(ctx, p, pos, 0, state);
        }

        /* fall through */

    case NGX_HTTP_SEADRAGON_SCAN_KEY:
        if (c != '"') {
            return NULL;
        }

        pos++;
        p->in_key = 1;
        p->key_long = 0;
        p->key_len = 0;
        p->key_start = NULL;
        *state = NGX_HTTP_SEADRAGON_SCAN_STRING;
        break;

    case NGX_HTTP_SEADRAGON_SCAN_COLON:
        if (c != ':') {
            return NULL;
        }

        pos++;
        *state = NGX_HTTP_SEADRAGON_SCAN_VALUE;
        break;

    case NGX_HTTP_SEADRAGON_SCAN_AFTER:
        if (p->depth == 0) {
            /* a top-level scalar: the next value may follow */
            *state = NGX_HTTP_SEADRAGON_SCAN_VALUE;
            break;
        }

        if (c == ',') {
            pos++;
            *state = ngx_http_seadragon_usage_array(p, p->depth)
                     ? NGX_HTTP_SEADRAGON_SCAN_VALUE
                     : NGX_HTTP_SEADRAGON_SCAN_KEY;
            break;
        }

        if (c == '}') {
            return ngx_http_seadragon_usage_scan_close(ctx, p, pos, 0, state);
        }

        if (c == ']') {
            return ngx_http_seadragon_usage_scan_close(ctx, p, pos, 1, state);
        }

        return NULL;

    case NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END:
        if (c == ']') {
            return ngx_http_seadragon_usage_scan_close(ctx, p, pos, 1, state);
        }

        /* fall through */

    default: /* NGX_HTTP_SEADRAGON_SCAN_VALUE */

        if (p->depth <= NGX_HTTP_SEADRAGON_USAGE_DEPTH) {
            ngx_http_seadragon_usage_value_target(p);

        } else {
            p->target = NGX_HTTP_SEADRAGON_KEY_OTHER;
        }

        pos++;

        if (ngx_http_seadragon_usage_scan_value(p, c, state, number)
            != NGX_OK)
        {
            return NULL;
        }
    }

    return pos;
}


/* a value's first byte: a container, a string, a literal or a number */

static ngx_int_t
ngx_http_seadragon_usage_scan_value(ngx_http_seadragon_usage_parser_t *p,
    u_char c, ngx_uint_t *state, uint64_t *number)
{
    switch (c) {

    case '{':
    case '[':
        if (!ngx_http_seadragon_usage_wanted(p, c == '[')) {
            p->skipped = 1;
            *state = NGX_HTTP_SEADRAGON_SCAN_SKIP;
            break;
        }

        ngx_http_seadragon_usage_open(p, c == '[');

        *state = (c == '[') ? NGX_HTTP_SEADRAGON_SCAN_VALUE_OR_END
                            : NGX_HTTP_SEADRAGON_SCAN_KEY_OR_END;
        break;

    case '"':
        p->in_key = 0;
        p->nonempty = 0;
        *state = NGX_HTTP_SEADRAGON_SCAN_STRING;
        break;

    case 't':
    case 'f':
    case 'n':
        p->literal = (c == 't') ? "true"
                     : (c == 'f') ? "false" : "null";
        p->literal_pos = 1;
        p->value_true = (c == 't');
        *state = NGX_HTTP_SEADRAGON_SCAN_LITERAL;
        break;

    case '-':
        *number = 0;
        p->negative = 1;
        p->fraction = 0;
        *state = NGX_HTTP_SEADRAGON_SCAN_NUMBER;
        break;

    default:
        if (c < '0' || c > '9') {
            return NGX_ERROR;
        }

        *number = c - '0';
        p->negative = 0;
        p->fraction = 0;
        *state = NGX_HTTP_SEADRAGON_SCAN_NUMBER;
    }

    return NGX_OK;
}


/*
 * A "}" (array 0) or "]" (array 1) at pos: it must close what is open;
 * the end of a top-level value settles its figures.  The byte after it,
 * or NULL.
 */

static u_char *
ngx_http_seadragon_usage_scan_close(ngx_http_seadragon_ctx_t *ctx,
    ngx_http_seadragon_usage_parser_t *p, u_char *pos, ngx_uint_t array,
    ngx_uint_t *state)
{
    if (p->depth == 0
        || (ngx_uint_t) ngx_http_seadragon_usage_array(p, p->depth) != array)
    {
        return NULL;
    }

    pos++;

    if (--p->depth == 0) {
        ngx_http_seadragon_usage_line_end(ctx, p);
        *state = NGX_HTTP_SEADRAGON_SCAN_VALUE;

    } else {
        *state = NGX_HTTP_SEADRAGON_SCAN_AFTER;
    }

    return pos;
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


