
/*
 * Copyright (C) The Seadragon authors
 *
 * A red-black tree with nginx's interface (ngx_rbtree.h), for the unit
 * tests and the dispatch benchmark: nginx-dev ships the header only.
 * Balanced, as nginx's is, so that the benchmark measures what the
 * module does (the textbook algorithm, with a shared black sentinel).
 */


#include <ngx_config.h>
#include <ngx_core.h>


static void
rbtree_left_rotate(ngx_rbtree_node_t **root, ngx_rbtree_node_t *sentinel,
    ngx_rbtree_node_t *x)
{
    ngx_rbtree_node_t  *y;

    y = x->right;
    x->right = y->left;

    if (y->left != sentinel) {
        y->left->parent = x;
    }

    y->parent = x->parent;

    if (x == *root) {
        *root = y;

    } else if (x == x->parent->left) {
        x->parent->left = y;

    } else {
        x->parent->right = y;
    }

    y->left = x;
    x->parent = y;
}


static void
rbtree_right_rotate(ngx_rbtree_node_t **root, ngx_rbtree_node_t *sentinel,
    ngx_rbtree_node_t *x)
{
    ngx_rbtree_node_t  *y;

    y = x->left;
    x->left = y->right;

    if (y->right != sentinel) {
        y->right->parent = x;
    }

    y->parent = x->parent;

    if (x == *root) {
        *root = y;

    } else if (x == x->parent->right) {
        x->parent->right = y;

    } else {
        x->parent->left = y;
    }

    y->right = x;
    x->parent = y;
}


void
ngx_rbtree_insert(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t  **root, *y, *s;

    root = &tree->root;
    s = tree->sentinel;

    if (*root == s) {
        node->parent = NULL;
        node->left = s;
        node->right = s;
        ngx_rbt_black(node);
        *root = node;
        return;
    }

    tree->insert(*root, node, s);

    while (node != *root && ngx_rbt_is_red(node->parent)) {

        if (node->parent == node->parent->parent->left) {
            y = node->parent->parent->right;

            if (ngx_rbt_is_red(y)) {
                ngx_rbt_black(node->parent);
                ngx_rbt_black(y);
                ngx_rbt_red(node->parent->parent);
                node = node->parent->parent;
                continue;
            }

            if (node == node->parent->right) {
                node = node->parent;
                rbtree_left_rotate(root, s, node);
            }

            ngx_rbt_black(node->parent);
            ngx_rbt_red(node->parent->parent);
            rbtree_right_rotate(root, s, node->parent->parent);

        } else {
            y = node->parent->parent->left;

            if (ngx_rbt_is_red(y)) {
                ngx_rbt_black(node->parent);
                ngx_rbt_black(y);
                ngx_rbt_red(node->parent->parent);
                node = node->parent->parent;
                continue;
            }

            if (node == node->parent->left) {
                node = node->parent;
                rbtree_right_rotate(root, s, node);
            }

            ngx_rbt_black(node->parent);
            ngx_rbt_red(node->parent->parent);
            rbtree_left_rotate(root, s, node->parent->parent);
        }
    }

    ngx_rbt_black(*root);
}


void
ngx_rbtree_delete(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    ngx_uint_t           red;
    ngx_rbtree_node_t  **root, *s, *subst, *temp, *w;

    root = &tree->root;
    s = tree->sentinel;

    if (node->left == s) {
        temp = node->right;
        subst = node;

    } else if (node->right == s) {
        temp = node->left;
        subst = node;

    } else {
        subst = ngx_rbtree_min(node->right, s);
        temp = subst->right;
    }

    if (subst == *root) {
        *root = temp;
        ngx_rbt_black(temp);
        node->left = NULL;
        node->right = NULL;
        node->parent = NULL;
        return;
    }

    red = ngx_rbt_is_red(subst);

    if (subst == subst->parent->left) {
        subst->parent->left = temp;

    } else {
        subst->parent->right = temp;
    }

    if (subst == node) {
        temp->parent = subst->parent;

    } else {

        if (subst->parent == node) {
            temp->parent = subst;

        } else {
            temp->parent = subst->parent;
        }

        subst->left = node->left;
        subst->right = node->right;
        subst->parent = node->parent;
        ngx_rbt_copy_color(subst, node);

        if (node == *root) {
            *root = subst;

        } else if (node == node->parent->left) {
            node->parent->left = subst;

        } else {
            node->parent->right = subst;
        }

        if (subst->left != s) {
            subst->left->parent = subst;
        }

        if (subst->right != s) {
            subst->right->parent = subst;
        }
    }

    node->left = NULL;
    node->right = NULL;
    node->parent = NULL;

    if (red) {
        return;
    }

    while (temp != *root && ngx_rbt_is_black(temp)) {

        if (temp == temp->parent->left) {
            w = temp->parent->right;

            if (ngx_rbt_is_red(w)) {
                ngx_rbt_black(w);
                ngx_rbt_red(temp->parent);
                rbtree_left_rotate(root, s, temp->parent);
                w = temp->parent->right;
            }

            if (ngx_rbt_is_black(w->left) && ngx_rbt_is_black(w->right)) {
                ngx_rbt_red(w);
                temp = temp->parent;
                continue;
            }

            if (ngx_rbt_is_black(w->right)) {
                ngx_rbt_black(w->left);
                ngx_rbt_red(w);
                rbtree_right_rotate(root, s, w);
                w = temp->parent->right;
            }

            ngx_rbt_copy_color(w, temp->parent);
            ngx_rbt_black(temp->parent);
            ngx_rbt_black(w->right);
            rbtree_left_rotate(root, s, temp->parent);
            temp = *root;

        } else {
            w = temp->parent->left;

            if (ngx_rbt_is_red(w)) {
                ngx_rbt_black(w);
                ngx_rbt_red(temp->parent);
                rbtree_right_rotate(root, s, temp->parent);
                w = temp->parent->left;
            }

            if (ngx_rbt_is_black(w->left) && ngx_rbt_is_black(w->right)) {
                ngx_rbt_red(w);
                temp = temp->parent;
                continue;
            }

            if (ngx_rbt_is_black(w->left)) {
                ngx_rbt_black(w->right);
                ngx_rbt_red(w);
                rbtree_left_rotate(root, s, w);
                w = temp->parent->left;
            }

            ngx_rbt_copy_color(w, temp->parent);
            ngx_rbt_black(temp->parent);
            ngx_rbt_black(w->left);
            rbtree_right_rotate(root, s, temp->parent);
            temp = *root;
        }
    }

    ngx_rbt_black(temp);
}


ngx_rbtree_node_t *
ngx_rbtree_next(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    ngx_rbtree_node_t  *parent;

    if (node->right != tree->sentinel) {
        return ngx_rbtree_min(node->right, tree->sentinel);
    }

    for ( ;; ) {
        parent = node->parent;

        if (node == tree->root) {
            return NULL;
        }

        if (node == parent->left) {
            return parent;
        }

        node = parent;
    }
}
