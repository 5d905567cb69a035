/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* See types.h: no architecture-specific byte swaps; linux/swab.h's generic
 * ones (compiler builtins) serve. */
