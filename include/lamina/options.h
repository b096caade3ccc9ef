/* lamina/options.h: the options rule, shared by every options struct.
 *
 * Every constructor or op that takes configuration takes a pointer to a
 * `lam_<name>_opts` struct; NULL, a zeroed struct `(lam_<name>_opts){0}`
 * and `lam_<name>_defaults()` mean exactly the same thing. So a field's zero
 * always means "the default", and designated initialisers change only what
 * they name:
 *
 *     lam_nn_linear(4, 8, &(lam_linear_opts){.no_bias = true});
 *
 * Booleans whose default is "on" are therefore spelled negatively
 * (`no_bias`, `no_affine`, `no_shuffle`). A floating-point field whose
 * default is not zero but for which zero is a meaningful value (Adam's
 * beta1, smooth L1's beta, a dropout rate whose default is 0.5) takes
 * LAM_ZERO to mean a real zero: a plain 0.0 means the default. */
#ifndef LAMINA_OPTIONS_H
#define LAMINA_OPTIONS_H

/* An explicit zero for floating-point option fields (negative zero, which
 * compares equal to 0 and is told apart by its sign bit). */
#define LAM_ZERO (-0.0)

#endif
