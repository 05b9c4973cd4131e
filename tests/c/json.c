/* json.c: see json.h. A recursive-descent reader; nesting is capped so bad input cannot blow
 * the stack. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *text;
    size_t at;
    char *error;
    size_t error_size;
    int failed;
} reader;

static void fail(reader *r, const char *fmt, ...) {
    if (r->failed) {
        return;
    }
    r->failed = 1;
    if (r->error != NULL && r->error_size > 0) {
        char what[160];
        va_list args;
        va_start(args, fmt);
        vsnprintf(what, sizeof what, fmt, args);
        va_end(args);
        snprintf(r->error, r->error_size, "%s at byte %zu", what, r->at);
    }
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        fputs("json: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void skip_space(reader *r) {
    for (;;) {
        char c = r->text[r->at];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            r->at++;
        } else {
            return;
        }
    }
}

static int literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if (strncmp(r->text + r->at, word, n) != 0) {
        return 0;
    }
    r->at += n;
    return 1;
}

static int hex4(reader *r, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->text[r->at + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            fail(r, "bad \\u escape");
            return 0;
        }
    }
    r->at += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads a string literal (r->at on the opening quote). Escapes never lengthen the text beyond
 * the source's length, so a buffer of the remaining length is enough. */
static char *read_string(reader *r) {
    r->at++; /* opening quote */
    size_t start = r->at;
    size_t end = start;
    while (r->text[end] != '"') {
        if (r->text[end] == '\0') {
            fail(r, "unterminated string");
            return NULL;
        }
        if (r->text[end] == '\\' && r->text[end + 1] != '\0') {
            end++;
        }
        end++;
    }
    char *out = xcalloc(end - start + 1, 1);
    size_t n = 0;
    while (r->text[r->at] != '"') {
        unsigned char c = (unsigned char)r->text[r->at];
        if (c < 0x20) {
            fail(r, "control character in string");
            free(out);
            return NULL;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            r->at++;
            continue;
        }
        r->at++;
        char e = r->text[r->at++];
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!hex4(r, &cp)) {
                free(out);
                return NULL;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned low;
                if (r->text[r->at] != '\\' || r->text[r->at + 1] != 'u') {
                    fail(r, "lone high surrogate");
                    free(out);
                    return NULL;
                }
                r->at += 2;
                if (!hex4(r, &low)) {
                    free(out);
                    return NULL;
                }
                if (low < 0xDC00 || low > 0xDFFF) {
                    fail(r, "bad low surrogate");
                    free(out);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(r, "lone low surrogate");
                free(out);
                return NULL;
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default:
            fail(r, "bad escape");
            free(out);
            return NULL;
        }
    }
    r->at++; /* closing quote */
    out[n] = '\0';
    return out;
}

static int read_number(reader *r, double *out) {
    size_t start = r->at;
    const char *t = r->text;
    size_t i = r->at;
    if (t[i] == '-') {
        i++;
    }
    if (t[i] == '0') {
        i++;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (t[i] >= '0' && t[i] <= '9') {
            i++;
        }
    } else {
        fail(r, "bad number");
        return 0;
    }
    if (t[i] == '.') {
        i++;
        if (!(t[i] >= '0' && t[i] <= '9')) {
            r->at = i;
            fail(r, "bad fraction");
            return 0;
        }
        while (t[i] >= '0' && t[i] <= '9') {
            i++;
        }
    }
    if (t[i] == 'e' || t[i] == 'E') {
        i++;
        if (t[i] == '+' || t[i] == '-') {
            i++;
        }
        if (!(t[i] >= '0' && t[i] <= '9')) {
            r->at = i;
            fail(r, "bad exponent");
            return 0;
        }
        while (t[i] >= '0' && t[i] <= '9') {
            i++;
        }
    }
    char buf[64];
    size_t len = i - start;
    if (len >= sizeof buf) {
        fail(r, "number too long");
        return 0;
    }
    memcpy(buf, t + start, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);
    r->at = i;
    return 1;
}

static json_value *read_value(reader *r, int depth);

static void push(json_value *v, size_t *capacity, json_value *item, char *key) {
    if (v->count == *capacity) {
        *capacity = *capacity == 0 ? 4 : *capacity * 2;
        json_value **items = realloc(v->items, *capacity * sizeof *items);
        if (items == NULL) {
            abort();
        }
        v->items = items;
        if (v->type == JSON_OBJECT) {
            char **keys = realloc(v->keys, *capacity * sizeof *keys);
            if (keys == NULL) {
                abort();
            }
            v->keys = keys;
        }
    }
    v->items[v->count] = item;
    if (v->type == JSON_OBJECT) {
        v->keys[v->count] = key;
    }
    v->count++;
}

static json_value *read_container(reader *r, int depth, json_type type) {
    char close = type == JSON_ARRAY ? ']' : '}';
    json_value *v = xcalloc(1, sizeof *v);
    v->type = type;
    size_t capacity = 0;
    r->at++; /* opening bracket */
    skip_space(r);
    if (r->text[r->at] == close) {
        r->at++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        skip_space(r);
        if (type == JSON_OBJECT) {
            if (r->text[r->at] != '"') {
                fail(r, "expected a member name");
                json_free(v);
                return NULL;
            }
            key = read_string(r);
            if (key == NULL) {
                json_free(v);
                return NULL;
            }
            skip_space(r);
            if (r->text[r->at] != ':') {
                fail(r, "expected ':'");
                free(key);
                json_free(v);
                return NULL;
            }
            r->at++;
        }
        json_value *item = read_value(r, depth + 1);
        if (item == NULL) {
            free(key);
            json_free(v);
            return NULL;
        }
        push(v, &capacity, item, key);
        skip_space(r);
        if (r->text[r->at] == ',') {
            r->at++;
            continue;
        }
        if (r->text[r->at] == close) {
            r->at++;
            return v;
        }
        fail(r, "expected ',' or '%c'", close);
        json_free(v);
        return NULL;
    }
}

static json_value *read_value(reader *r, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        fail(r, "nested too deeply");
        return NULL;
    }
    skip_space(r);
    char c = r->text[r->at];
    if (c == '{') {
        return read_container(r, depth, JSON_OBJECT);
    }
    if (c == '[') {
        return read_container(r, depth, JSON_ARRAY);
    }
    json_value *v = xcalloc(1, sizeof *v);
    if (c == '"') {
        v->type = JSON_STRING;
        v->string = read_string(r);
        if (v->string == NULL) {
            free(v);
            return NULL;
        }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = JSON_NUMBER;
        if (!read_number(r, &v->number)) {
            free(v);
            return NULL;
        }
    } else if (literal(r, "true")) {
        v->type = JSON_BOOL;
        v->boolean = 1;
    } else if (literal(r, "false")) {
        v->type = JSON_BOOL;
    } else if (literal(r, "null")) {
        v->type = JSON_NULL;
    } else {
        fail(r, c == '\0' ? "unexpected end of text" : "unexpected character");
        free(v);
        return NULL;
    }
    return v;
}

json_value *json_parse(const char *text, char *error, size_t error_size) {
    reader r = {text, 0, error, error_size, 0};
    if (error != NULL && error_size > 0) {
        error[0] = '\0';
    }
    if (text == NULL) {
        fail(&r, "no text");
        return NULL;
    }
    json_value *v = read_value(&r, 0);
    if (v == NULL) {
        return NULL;
    }
    skip_space(&r);
    if (r.text[r.at] != '\0') {
        fail(&r, "trailing characters");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(json_value *value) {
    if (value == NULL) {
        return;
    }
    for (size_t i = 0; i < value->count; i++) {
        json_free(value->items[i]);
        if (value->keys != NULL) {
            free(value->keys[i]);
        }
    }
    free(value->items);
    free(value->keys);
    free(value->string);
    free(value);
}

const json_value *json_get(const json_value *object, const char *key) {
    if (object == NULL || object->type != JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < object->count; i++) {
        if (strcmp(object->keys[i], key) == 0) {
            return object->items[i];
        }
    }
    return NULL;
}

const json_value *json_at(const json_value *array, size_t index) {
    if (array == NULL || array->type != JSON_ARRAY || index >= array->count) {
        return NULL;
    }
    return array->items[index];
}

const json_value *json_path(const json_value *root, const char *path) {
    const json_value *v = root;
    const char *p = path;
    char name[128];
    while (v != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot == NULL ? strlen(p) : (size_t)(dot - p);
        if (n >= sizeof name) {
            return NULL;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        v = json_get(v, name);
        p += n;
        if (*p == '.') {
            p++;
        }
    }
    return v;
}

double json_number_at(const json_value *root, const char *path, double fallback) {
    const json_value *v = json_path(root, path);
    return v != NULL && v->type == JSON_NUMBER ? v->number : fallback;
}

const char *json_string_at(const json_value *root, const char *path) {
    const json_value *v = json_path(root, path);
    return v != NULL && v->type == JSON_STRING ? v->string : NULL;
}
