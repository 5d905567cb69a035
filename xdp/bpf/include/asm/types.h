/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The BPF target's asm/ headers: the UAPI headers the program includes ask for
 * them, and the host's are per architecture. The target is 64-bit and
 * little-endian (bpf2go -target bpfel), whatever machine builds it. */
#include <asm-generic/types.h>
