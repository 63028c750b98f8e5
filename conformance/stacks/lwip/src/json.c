/* See json.h. */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

struct parser {
    const char *start, *p, *end;
    char *err;
    size_t errlen;
    int depth;
};

static int fail(struct parser *ps, const char *what)
{
    if (ps->err && ps->errlen && !ps->err[0])
        snprintf(ps->err, ps->errlen, "%s at byte %ld", what,
                 (long)(ps->p - ps->start));
    return -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'
                               || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int parse_value(struct parser *ps, struct jval *out);

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(struct parser *ps, unsigned *cp)
{
    unsigned v = 0;
    if (ps->end - ps->p < 4)
        return fail(ps, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0)
            return fail(ps, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *cp = v;
    return 0;
}

static void put_utf8(char *dst, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        dst[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        dst[(*n)++] = (char)(0xC0 | (cp >> 6));
        dst[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        dst[(*n)++] = (char)(0xE0 | (cp >> 12));
        dst[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        dst[(*n)++] = (char)(0xF0 | (cp >> 18));
        dst[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        dst[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* At the opening quote.  Output is at most as long as the input. */
static int parse_string(struct parser *ps, char **out, size_t *outlen)
{
    const char *start = ++ps->p;
    size_t cap = 0;
    while (start + cap < ps->end && start[cap] != '"') {
        if (start[cap] == '\\')
            cap++;
        cap++;
    }
    char *buf = malloc(cap + 1);
    size_t n = 0;
    if (!buf)
        return fail(ps, "out of memory");
    while (1) {
        if (ps->p >= ps->end) {
            free(buf);
            return fail(ps, "unterminated string");
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            free(buf);
            return fail(ps, "control character in string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            free(buf);
            return fail(ps, "unterminated escape");
        }
        char e = *ps->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (read_hex4(ps, &cp)) {
                free(buf);
                return -1;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6
                && ps->p[0] == '\\' && ps->p[1] == 'u') {
                const char *save = ps->p;
                ps->p += 2;
                if (read_hex4(ps, &lo)) {
                    free(buf);
                    return -1;
                }
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    ps->p = save;
            }
            if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;          /* lone surrogate: not representable */
            put_utf8(buf, &n, cp);    /* an escape is 6 bytes, UTF-8 <= 4 */
            break;
        }
        default:
            free(buf);
            return fail(ps, "bad escape");
        }
    }
    buf[n] = 0;
    *out = buf;
    *outlen = n;
    return 0;
}

static int parse_number(struct parser *ps, struct jval *out)
{
    const char *s = ps->p;
    int is_float = 0;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail(ps, "bad number");
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0'
        && ps->p[1] <= '9')
        return fail(ps, "leading zero");
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        is_float = 1;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "bad fraction");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        is_float = 1;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "bad exponent");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    char tmp[64];
    size_t n = (size_t)(ps->p - s);
    if (n >= sizeof tmp)
        return fail(ps, "number too long");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (is_float) {
        out->type = J_FLOAT;
        out->number = strtod(tmp, NULL);
    } else {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == ERANGE) {
            /* beyond any port, size or timeout: keep it as a huge value */
            v = tmp[0] == '-' ? LLONG_MIN : LLONG_MAX;
        }
        out->type = J_INT;
        out->integer = v;
        out->number = (double)v;
    }
    return 0;
}

static int literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected token");
    ps->p += n;
    return 0;
}

static int grow(void **arr, size_t elem, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int parse_object(struct parser *ps, struct jval *out)
{
    size_t cap = 0, kcap = 0;
    out->type = J_OBJ;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    while (1) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return fail(ps, "expected a member name");
        if (grow((void **)&out->items, sizeof *out->items, &cap, out->len + 1)
            || grow((void **)&out->keys, sizeof *out->keys, &kcap,
                    out->len + 1))
            return fail(ps, "out of memory");
        size_t klen;
        char *key;
        if (parse_string(ps, &key, &klen))
            return -1;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            return fail(ps, "expected ':'");
        }
        ps->p++;
        struct jval *v = &out->items[out->len];
        memset(v, 0, sizeof *v);
        out->keys[out->len] = key;
        out->len++;
        if (parse_value(ps, v))
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return 0;
        }
        return fail(ps, "expected ',' or '}'");
    }
}

static int parse_array(struct parser *ps, struct jval *out)
{
    size_t cap = 0;
    out->type = J_ARR;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
    }
    while (1) {
        if (grow((void **)&out->items, sizeof *out->items, &cap, out->len + 1))
            return fail(ps, "out of memory");
        struct jval *v = &out->items[out->len];
        memset(v, 0, sizeof *v);
        out->len++;
        if (parse_value(ps, v))
            return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return 0;
        }
        return fail(ps, "expected ',' or ']'");
    }
}

static int parse_value(struct parser *ps, struct jval *out)
{
    int rc;
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "expected a value");
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, "nested too deeply");
    switch (*ps->p) {
    case '{': rc = parse_object(ps, out); break;
    case '[': rc = parse_array(ps, out); break;
    case '"':
        out->type = J_STR;
        rc = parse_string(ps, &out->str, &out->len);
        break;
    case 't':
        out->type = J_BOOL;
        out->boolean = 1;
        rc = literal(ps, "true");
        break;
    case 'f':
        out->type = J_BOOL;
        rc = literal(ps, "false");
        break;
    case 'n':
        out->type = J_NULL;
        rc = literal(ps, "null");
        break;
    default:
        rc = parse_number(ps, out);
    }
    ps->depth--;
    return rc;
}

int json_parse(const char *text, size_t len, struct jval *out,
               char *err, size_t errlen)
{
    struct parser ps = {text, text, text + len, err, errlen, 0};
    if (err && errlen)
        err[0] = 0;
    memset(out, 0, sizeof *out);
    if (parse_value(&ps, out)) {
        jval_free(out);
        return -1;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        jval_free(out);
        fail(&ps, "extra data after the value");
        return -1;
    }
    return 0;
}

void jval_free(struct jval *v)
{
    if (!v)
        return;
    if (v->type == J_STR)
        free(v->str);
    if (v->type == J_OBJ || v->type == J_ARR) {
        for (size_t i = 0; i < v->len; i++) {
            if (v->type == J_OBJ)
                free(v->keys[i]);
            jval_free(&v->items[i]);
        }
        free(v->keys);
        free(v->items);
    }
    memset(v, 0, sizeof *v);
}

const struct jval *jobj_get(const struct jval *obj, const char *key)
{
    if (!obj || obj->type != J_OBJ)
        return NULL;
    /* Python's json keeps the last of duplicate keys. */
    for (size_t i = obj->len; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

const char *jtype_name(const struct jval *v)
{
    switch (v->type) {
    case J_NULL: return "NoneType";
    case J_BOOL: return "bool";
    case J_INT: return "int";
    case J_FLOAT: return "float";
    case J_STR: return "str";
    case J_OBJ: return "dict";
    case J_ARR: return "list";
    }
    return "?";
}

/* ------------------------------------------------------------ writer */

void jb_init(struct jbuf *b)
{
    memset(b, 0, sizeof *b);
}

void jb_free(struct jbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void jb_raw(struct jbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *p = realloc(b->data, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void jb_cstr(struct jbuf *b, const char *s)
{
    jb_raw(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        jb_raw(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    jb_raw(b, big, (size_t)n);
    free(big);
}

/* Decode one UTF-8 sequence at s (n bytes left); returns its length, or 0
 * when it is not valid UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2; min = 0x80; *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; min = 0x800; *cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; min = 0x10000; *cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp < 0xE000))
        return 0;
    return len;
}

int utf8_valid(const unsigned char *s, size_t n)
{
    unsigned cp;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_next(s + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

void jb_string(struct jbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    jb_raw(b, "\"", 1);
    while (i < n) {
        unsigned cp;
        size_t k = utf8_next(s + i, n - i, &cp);
        if (!k) {
            cp = 0xFFFD;
            k = 1;
        }
        i += k;
        switch (cp) {
        case '"': jb_raw(b, "\\\"", 2); continue;
        case '\\': jb_raw(b, "\\\\", 2); continue;
        case '\n': jb_raw(b, "\\n", 2); continue;
        case '\r': jb_raw(b, "\\r", 2); continue;
        case '\t': jb_raw(b, "\\t", 2); continue;
        case '\b': jb_raw(b, "\\b", 2); continue;
        case '\f': jb_raw(b, "\\f", 2); continue;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            char c = (char)cp;
            jb_raw(b, &c, 1);
        } else if (cp < 0x10000) {
            jb_printf(b, "\\u%04x", cp);
        } else {
            cp -= 0x10000;
            jb_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
        }
    }
    jb_raw(b, "\"", 1);
}

void jb_key(struct jbuf *b, const char *key)
{
    jb_raw(b, ", ", 2);
    jb_string(b, key, strlen(key));
    jb_raw(b, ": ", 2);
}

/* ------------------------------------------------------------ base64 */

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const unsigned char *d, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16;
        if (i + 1 < n) v |= (unsigned)d[i + 1] << 8;
        if (i + 2 < n) v |= d[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = 0;
    return out;
}

static int b64val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

int b64_decode(const char *t, size_t n, unsigned char **out, size_t *outlen)
{
    if (n % 4)
        return -1;
    unsigned char *buf = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    if (!buf)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (t[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val(t[i + k])) < 0) {
                free(buf);
                return -1;
            }
        }
        unsigned w = ((unsigned)v[0] << 18) | ((unsigned)v[1] << 12)
                     | ((unsigned)v[2] << 6) | (unsigned)v[3];
        buf[o++] = (unsigned char)(w >> 16);
        if (pad < 2) buf[o++] = (unsigned char)(w >> 8);
        if (pad < 1) buf[o++] = (unsigned char)w;
    }
    *out = buf;
    *outlen = o;
    return 0;
}
