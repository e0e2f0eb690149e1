
/*
 * Copyright (C) The Seadragon authors
 *
 * A request body checked with yajl's callbacks as it is fed: the first
 * value must open an object, no container may nest deeper than the
 * limit, and the top level's "model" and "stream" are kept.  yajl checks
 * the rest (UTF-8, one value and nothing after it).  See the header.
 */


#include "ngx_http_seadragon_json.h"

#include <stdlib.h>
#include <string.h>


enum {
    SEADRAGON_JSON_KEY_OTHER = 0,
    SEADRAGON_JSON_KEY_MODEL,
    SEADRAGON_JSON_KEY_STREAM
};


static int seadragon_json_parse(seadragon_json_t *js,
    const unsigned char *buf, size_t len);
static int seadragon_json_hold(seadragon_json_t *js,
    const unsigned char *buf, size_t len);
static size_t seadragon_json_scan(seadragon_json_t *js,
    const unsigned char *buf, size_t len, size_t *first);
static int seadragon_json_value(seadragon_json_t *js);
static int seadragon_json_null(void *data);
static int seadragon_json_boolean(void *data, int value);
static int seadragon_json_number(void *data, const char *s, size_t len);
static int seadragon_json_string(void *data, const unsigned char *s,
    size_t len);
static int seadragon_json_start_map(void *data);
static int seadragon_json_start_array(void *data);
static int seadragon_json_map_key(void *data, const unsigned char *s,
    size_t len);
static int seadragon_json_end(void *data);
static int seadragon_json_utf8(const unsigned char *s, size_t len);


static yajl_callbacks  seadragon_json_callbacks = {
    seadragon_json_null,
    seadragon_json_boolean,
    NULL,
    NULL,
    seadragon_json_number,
    seadragon_json_string,
    seadragon_json_start_map,
    seadragon_json_map_key,
    seadragon_json_end,
    seadragon_json_start_array,
    seadragon_json_end
};


int
seadragon_json_init(seadragon_json_t *js, size_t max_depth,
    seadragon_json_alloc_pt alloc, void *alloc_data)
{
    memset(js, 0, sizeof(seadragon_json_t));

    js->alloc = alloc;
    js->alloc_data = alloc_data;
    js->max_depth = max_depth;

    js->parser = yajl_alloc(&seadragon_json_callbacks, NULL, js);
    if (js->parser == NULL) {
        return -1;
    }

    return 0;
}


int
seadragon_json_feed(seadragon_json_t *js, const unsigned char *buf,
    size_t len)
{
    size_t  first, last;

    if (js->failed || js->parser == NULL) {
        return -1;
    }

    if (len == 0) {
        return 0;
    }

    last = seadragon_json_scan(js, buf, len, &first);

    if (last) {

        /* the held token ends in this piece: it goes to yajl whole */

        if (js->held_len) {
            if (seadragon_json_hold(js, buf, first) != 0
                || seadragon_json_parse(js, js->held, js->held_len) != 0)
            {
                return -1;
            }

            js->held_len = 0;
            buf += first;
            len -= first;
            last -= first;
        }

        if (seadragon_json_parse(js, buf, last) != 0) {
            return -1;
        }

        buf += last;
        len -= last;
    }

    if (len && seadragon_json_hold(js, buf, len) != 0) {
        return -1;
    }

    return 0;
}


seadragon_json_verdict_e
seadragon_json_finish(seadragon_json_t *js)
{
    if (js->parser == NULL) {
        js->no_memory = 1;

    } else if (!js->failed
               && (js->held_len == 0
                   || seadragon_json_parse(js, js->held, js->held_len) == 0)
               && (yajl_complete_parse(js->parser) != yajl_status_ok
                   || js->in_string))
    {
        /*
         * yajl completes '{} "' with a string that never ends, trailing
         * garbage it does not see: no JSON text ends inside a string
         */

        js->failed = 1;
    }

    seadragon_json_free(js);

    /* a callback's own reason first: it is why yajl stopped */

    if (js->no_memory) {
        return SEADRAGON_JSON_NO_MEMORY;
    }

    if (js->too_deep) {
        return SEADRAGON_JSON_TOO_DEEP;
    }

    if (js->model_too_long) {
        return SEADRAGON_JSON_MODEL_TOO_LONG;
    }

    if (js->not_object) {
        return SEADRAGON_JSON_NOT_OBJECT;
    }

    if (js->failed) {
        return SEADRAGON_JSON_INVALID;
    }

    if (js->values == 0) {
        return SEADRAGON_JSON_EMPTY;
    }

    return SEADRAGON_JSON_OK;
}


void
seadragon_json_free(seadragon_json_t *js)
{
    if (js->parser) {
        yajl_free(js->parser);
        js->parser = NULL;
    }

    free(js->held);
    js->held = NULL;
    js->held_len = 0;
    js->held_size = 0;
}


static int
seadragon_json_parse(seadragon_json_t *js, const unsigned char *buf,
    size_t len)
{
    if (len && yajl_parse(js->parser, buf, len) != yajl_status_ok) {
        js->failed = 1;
        return -1;
    }

    return 0;
}


/* appends to the held bytes; each byte is copied O(1) times on average */

static int
seadragon_json_hold(seadragon_json_t *js, const unsigned char *buf,
    size_t len)
{
    size_t          size;
    unsigned char  *p;

    if (len > js->held_size - js->held_len) {
        size = js->held_len + len;

        if (size < len) {                       /* it wrapped */
            js->no_memory = 1;
            js->failed = 1;
            return -1;
        }

        if (size < 2 * js->held_size) {
            size = 2 * js->held_size;
        }

        if (size < 4096) {
            size = 4096;
        }

        p = realloc(js->held, size);
        if (p == NULL) {
            js->no_memory = 1;
            js->failed = 1;
            return -1;
        }

        js->held = p;
        js->held_size = size;
    }

    memcpy(js->held + js->held_len, buf, len);
    js->held_len += len;

    return 0;
}


/*
 * Follows strings through the piece as yajl's lexer does and returns the
 * length of its longest prefix that ends where no token is open (0: no
 * such point); *first is the shortest such prefix.  For a prefix of valid
 * JSON this is where yajl has nothing of a token to keep; on anything
 * else yajl stops at its first wrong byte whatever the scan thought.
 */

static size_t
seadragon_json_scan(seadragon_json_t *js, const unsigned char *buf,
    size_t len, size_t *first)
{
    int     in_string, escaped;
    size_t  i, last;

    in_string = js->in_string;
    escaped = js->escaped;
    last = 0;
    *first = 0;

    for (i = 0; i < len; i++) {

        if (in_string) {
            if (escaped) {
                escaped = 0;
                continue;
            }

            /* the bulk of a body: its strings' plain bytes */

            while (buf[i] != '"' && buf[i] != '\\') {
                if (++i == len) {
                    goto done;
                }
            }

            if (buf[i] == '\\') {
                escaped = 1;
                continue;
            }

            in_string = 0;
            last = i + 1;

            if (*first == 0) {
                *first = last;
            }

            continue;
        }

        switch (buf[i]) {

        case '"':
            in_string = 1;
            continue;

        case ' ': case '\t': case '\n': case '\r':
        case '{': case '}': case '[': case ']': case ':': case ',':
            last = i + 1;
            break;

        default:
            continue;
        }

        if (*first == 0) {
            *first = last;
        }
    }

done:

    js->in_string = in_string;
    js->escaped = escaped;

    return last;
}


/* a scalar or the start of an array: 0 cancels the parse */

static int
seadragon_json_value(seadragon_json_t *js)
{
    if (js->depth == 0) {
        js->values++;
        js->not_object = 1;
        return 0;
    }

    return 1;
}


static int
seadragon_json_null(void *data)
{
    seadragon_json_t  *js = data;

    return seadragon_json_value(js);
}


static int
seadragon_json_boolean(void *data, int value)
{
    seadragon_json_t  *js = data;

    if (js->depth == 1 && js->key == SEADRAGON_JSON_KEY_STREAM) {
        js->stream = value ? 1 : 0;
        js->stream_set = 1;
    }

    return seadragon_json_value(js);
}


static int
seadragon_json_number(void *data, const char *s, size_t len)
{
    seadragon_json_t  *js = data;

    (void) s;
    (void) len;

    return seadragon_json_value(js);
}


static int
seadragon_json_string(void *data, const unsigned char *s, size_t len)
{
    seadragon_json_t  *js = data;

    unsigned char  *p;

    if (!seadragon_json_utf8(s, len)) {
        return 0;
    }

    if (js->depth == 1 && js->key == SEADRAGON_JSON_KEY_MODEL && len > 0) {
        if (len > SEADRAGON_JSON_MODEL_MAX) {
            js->model_too_long = 1;
            return 0;
        }

        p = js->alloc(js->alloc_data, len);
        if (p == NULL) {
            js->no_memory = 1;
            return 0;
        }

        memcpy(p, s, len);

        js->model = p;
        js->model_len = len;
    }

    return seadragon_json_value(js);
}


static int
seadragon_json_start_map(void *data)
{
    seadragon_json_t  *js = data;

    if (js->depth == 0) {
        js->values++;
    }

    if (++js->depth > js->max_depth) {
        js->too_deep = 1;
        return 0;
    }

    return 1;
}


static int
seadragon_json_start_array(void *data)
{
    seadragon_json_t  *js = data;

    if (seadragon_json_value(js) == 0) {
        return 0;
    }

    if (++js->depth > js->max_depth) {
        js->too_deep = 1;
        return 0;
    }

    return 1;
}


static int
seadragon_json_map_key(void *data, const unsigned char *s, size_t len)
{
    seadragon_json_t  *js = data;

    if (!seadragon_json_utf8(s, len)) {
        return 0;
    }

    if (js->depth != 1) {
        return 1;
    }

    if (len == 5 && memcmp(s, "model", 5) == 0) {
        js->key = SEADRAGON_JSON_KEY_MODEL;

    } else if (len == 6 && memcmp(s, "stream", 6) == 0) {
        js->key = SEADRAGON_JSON_KEY_STREAM;

    } else {
        js->key = SEADRAGON_JSON_KEY_OTHER;
    }

    return 1;
}


static int
seadragon_json_end(void *data)
{
    seadragon_json_t  *js = data;

    js->depth--;

    return 1;
}


/*
 * Well-formed UTF-8 as RFC 3629 has it, but for UTF-16 surrogates.  yajl
 * checks only the shape of multi-byte sequences, so overlong forms
 * ("\xc0\xaf" for "/") and code points past U+10FFFF would get through;
 * they are refused like any other invalid UTF-8.  Surrogates pass: a
 * string arrives here decoded, and yajl decodes a lone "\udc00" escape,
 * which is valid JSON (Ollama reads it as U+FFFD), into the very bytes a
 * raw surrogate would be.
 */

static int
seadragon_json_utf8(const unsigned char *s, size_t len)
{
    size_t         i, k, n;
    unsigned int   c, min;

    for (i = 0; i < len; i += n) {
        c = s[i];

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            c &= 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            c &= 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            c &= 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (s[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff) {
            return 0;
        }
    }

    return 1;
}
