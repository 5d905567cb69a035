/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* See types.h: bpfel is little-endian. */
#include <linux/byteorder/little_endian.h>
