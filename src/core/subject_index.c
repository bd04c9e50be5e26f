/*
 * subject_index.c - subscription patterns to values, as a token trie.
 *
 * Each node is one token of a pattern. A node has its literal children in
 * an open-addressing hash table (linear probing, backward-shift deletion, so
 * no tombstones), one child for '*', the values of patterns that end at the
 * node, and the values of patterns "<node>.>". Matching a subject walks only
 * the branches its tokens select (the literal child and the '*' child at each
 * level), so its cost depends on the subject and the number of matches, not
 * on how many patterns are stored. Matching never writes to the index, which
 * is what makes concurrent matches safe while no insert/remove runs. There
 * is no result cache: the walk is already a handful of hash probes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/subject.h"

/* Values of one pattern: an array, in insertion order. Borrowed pointers. */
typedef struct vlist {
    void **items;
    size_t len, cap;
} vlist;

typedef struct node node;
struct node {
    node *parent;
    node **slots; /* literal children; nslots is 0 or a power of two */
    size_t nslots;
    size_t nkids;
    node *star;    /* the '*' child */
    vlist here;    /* patterns ending at this node */
    vlist rest;    /* patterns "<this node>.>" */
    uint32_t hash; /* of token, for the parent's table */
    size_t toklen;
    char token[]; /* this node's token (not NUL-terminated) */
};

struct ms_subject_index {
    node *root; /* the empty prefix: only rest (">") and children are used */
    size_t count;
};

static uint32_t hash_token(const char *s, size_t n)
{
    /* FNV-1a, then a final mix so that low bits (the table index) vary. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

static const char *token_end(const char *p)
{
    while (*p != '.' && *p != '\0')
        p++;
    return p;
}

static node *node_new(node *parent, const char *tok, size_t len, uint32_t hash)
{
    node *n = ms__malloc(sizeof *n + len);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->hash = hash;
    n->toklen = len;
    memcpy(n->token, tok, len);
    return n;
}

static bool node_empty(const node *n)
{
    return n->nkids == 0 && n->star == NULL && n->here.len == 0 && n->rest.len == 0;
}

/* --- literal children table ------------------------------------------------ */

static node *kid_find(const node *n, const char *tok, size_t len, uint32_t hash)
{
    size_t mask, i;

    if (n->nkids == 0)
        return NULL;
    mask = n->nslots - 1;
    for (i = hash & mask;; i = (i + 1) & mask) {
        node *k = n->slots[i];
        if (k == NULL)
            return NULL;
        if (k->hash == hash && k->toklen == len && memcmp(k->token, tok, len) == 0)
            return k;
    }
}

static void slot_place(node **slots, size_t nslots, node *k)
{
    size_t mask = nslots - 1;
    size_t i = k->hash & mask;
    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = k;
}

/* Add child k to n's table, growing it at 3/4 load. MS_ERR_NO_MEMORY. */
static ms_status kid_add(node *n, node *k)
{
    if ((n->nkids + 1) * 4 > n->nslots * 3) {
        size_t ncap = n->nslots ? n->nslots * 2 : 4;
        node **fresh = ms__calloc(ncap, sizeof *fresh);
        if (fresh == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "subject index: growing a node table");
        for (size_t i = 0; i < n->nslots; i++) {
            if (n->slots[i] != NULL)
                slot_place(fresh, ncap, n->slots[i]);
        }
        ms__free(n->slots);
        n->slots = fresh;
        n->nslots = ncap;
    }
    slot_place(n->slots, n->nslots, k);
    n->nkids++;
    return MS_OK;
}

static void kid_remove(node *n, const node *k)
{
    size_t mask = n->nslots - 1;
    size_t i = k->hash & mask;
    size_t j;

    while (n->slots[i] != k)
        i = (i + 1) & mask;
    n->slots[i] = NULL;
    /* Backward shift: pull later entries of the probe run into the hole when
     * their home slot is not in (hole, their position]. */
    for (j = (i + 1) & mask; n->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = n->slots[j]->hash & mask;
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            n->slots[i] = n->slots[j];
            n->slots[j] = NULL;
            i = j;
        }
    }
    if (--n->nkids == 0) {
        ms__free(n->slots);
        n->slots = NULL;
        n->nslots = 0;
    }
}

/* --- value lists ------------------------------------------------------------ */

static ms_status vlist_push(vlist *l, void *v)
{
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 2;
        void **grown = ms__realloc(l->items, ncap * sizeof *grown);
        if (grown == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "subject index: growing a value list");
        l->items = grown;
        l->cap = ncap;
    }
    l->items[l->len++] = v;
    return MS_OK;
}

static bool vlist_remove(vlist *l, const void *v)
{
    for (size_t i = 0; i < l->len; i++) {
        if (l->items[i] == v) {
            memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof *l->items);
            if (--l->len == 0) {
                ms__free(l->items);
                l->items = NULL;
                l->cap = 0;
            }
            return true;
        }
    }
    return false;
}

/* --- life cycle -------------------------------------------------------------- */

ms_status ms_subject_index_create(ms_subject_index **out)
{
    ms_subject_index *idx;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_subject_index_create: out is NULL");
    *out = NULL;
    idx = ms__malloc(sizeof *idx);
    if (idx == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_subject_index_create: allocating the index");
    idx->root = node_new(NULL, "", 0, 0);
    if (idx->root == NULL) {
        ms__free(idx);
        return ms__err(MS_ERR_NO_MEMORY, "ms_subject_index_create: allocating the root");
    }
    idx->count = 0;
    *out = idx;
    return MS_OK;
}

static void node_free(node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nslots; i++)
        node_free(n->slots[i]);
    node_free(n->star);
    ms__free(n->slots);
    ms__free(n->here.items);
    ms__free(n->rest.items);
    ms__free(n);
}

void ms_subject_index_destroy(ms_subject_index *idx)
{
    if (idx == NULL)
        return;
    node_free(idx->root);
    ms__free(idx);
}

size_t ms_subject_index_count(const ms_subject_index *idx)
{
    return idx ? idx->count : 0;
}

/* Free n and its ancestors while they hold nothing (never the root). */
static void prune(node *n)
{
    while (n->parent != NULL && node_empty(n)) {
        node *p = n->parent;
        if (p->star == n)
            p->star = NULL;
        else
            kid_remove(p, n);
        ms__free(n);
        n = p;
    }
}

/* --- insert / remove ----------------------------------------------------------- */

/*
 * Walk pattern (already valid) from the root. With create, missing nodes are
 * added (on failure the new empty nodes are pruned again). *list is where
 * the pattern's values live, *last its node. MS_ERR_NOT_FOUND without create
 * when the path does not exist, MS_ERR_NO_MEMORY.
 */
static ms_status walk_pattern(ms_subject_index *idx, const char *pattern, bool create, node **last,
                              vlist **list)
{
    node *n = idx->root;
    const char *tok = pattern;

    for (;;) {
        const char *end = token_end(tok);
        size_t len = (size_t)(end - tok);
        node *k;

        if (len == 1 && tok[0] == '>') { /* always the last token */
            *last = n;
            *list = &n->rest;
            return MS_OK;
        }
        if (len == 1 && tok[0] == '*') {
            k = n->star;
            if (k == NULL && create) {
                k = node_new(n, tok, len, 0);
                if (k == NULL)
                    goto no_memory;
                n->star = k;
            }
        } else {
            uint32_t h = hash_token(tok, len);
            k = kid_find(n, tok, len, h);
            if (k == NULL && create) {
                k = node_new(n, tok, len, h);
                if (k == NULL)
                    goto no_memory;
                if (kid_add(n, k) != MS_OK) {
                    ms__free(k);
                    goto no_memory;
                }
            }
        }
        if (k == NULL)
            return MS_ERR_NOT_FOUND;
        n = k;
        if (*end == '\0') {
            *last = n;
            *list = &n->here;
            return MS_OK;
        }
        tok = end + 1;
    }

no_memory:
    prune(n);
    return ms__err(MS_ERR_NO_MEMORY, "subject index: adding pattern '%.64s'", pattern);
}

ms_status ms_subject_index_insert(ms_subject_index *idx, const char *pattern, void *value)
{
    node *last;
    vlist *list;
    ms_status s;

    if (idx == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_subject_index_insert: index is NULL");
    s = ms_subject_validate_pattern(pattern);
    if (s != MS_OK)
        return s;
    s = walk_pattern(idx, pattern, true, &last, &list);
    if (s != MS_OK)
        return s;
    s = vlist_push(list, value);
    if (s != MS_OK) {
        prune(last);
        return s;
    }
    idx->count++;
    return MS_OK;
}

ms_status ms_subject_index_remove(ms_subject_index *idx, const char *pattern, void *value)
{
    node *last;
    vlist *list;
    ms_status s;

    if (idx == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_subject_index_remove: index is NULL");
    s = ms_subject_validate_pattern(pattern);
    if (s != MS_OK)
        return s;
    s = walk_pattern(idx, pattern, false, &last, &list);
    if (s != MS_OK || !vlist_remove(list, value))
        return ms__err(MS_ERR_NOT_FOUND,
                       "subject index: no entry for pattern '%.64s' with "
                       "that value",
                       pattern);
    idx->count--;
    prune(last);
    return MS_OK;
}

/* --- match ------------------------------------------------------------------------ */

typedef struct visit_ctx {
    ms_subject_visit visit; /* NULL: only count */
    void *closure;
    size_t count;
} visit_ctx;

/* Visit every value of l; false when the visitor asked to stop. */
static bool visit_list(const vlist *l, visit_ctx *c)
{
    for (size_t i = 0; i < l->len; i++) {
        c->count++;
        if (c->visit != NULL && !c->visit(l->items[i], c->closure))
            return false;
    }
    return true;
}

/* tok: the rest of the subject from its next token, or NULL when no token
 * is left. Reads the trie only. */
static bool walk(const node *n, const char *tok, visit_ctx *c)
{
    const char *end, *next;
    size_t len;

    if (tok == NULL)
        return visit_list(&n->here, c);
    /* "<n>.>" matches whenever at least one token is left. */
    if (!visit_list(&n->rest, c))
        return false;
    end = token_end(tok);
    len = (size_t)(end - tok);
    next = *end == '\0' ? NULL : end + 1;
    if (n->nkids > 0) {
        const node *k = kid_find(n, tok, len, hash_token(tok, len));
        if (k != NULL && !walk(k, next, c))
            return false;
    }
    if (n->star != NULL && !walk(n->star, next, c))
        return false;
    return true;
}

size_t ms_subject_index_match(ms_subject_index *idx, const char *subject, ms_subject_visit visit,
                              void *closure)
{
    visit_ctx c = {visit, closure, 0};

    if (idx == NULL || subject == NULL || subject[0] == '\0')
        return 0;
    walk(idx->root, subject, &c);
    return c.count;
}
