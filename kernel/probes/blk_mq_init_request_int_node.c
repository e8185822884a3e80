// SPDX-License-Identifier: GPL-2.0
/* 7.x: blk_mq_ops.init_request takes the NUMA node as int, not unsigned int. */
#include <linux/blk-mq.h>
#include <linux/build_bug.h>
#include <linux/module.h>

static_assert(__builtin_types_compatible_p(
	typeof(((struct blk_mq_ops *)NULL)->init_request),
	int (*)(struct blk_mq_tag_set *, struct request *, unsigned int, int)));
MODULE_LICENSE("GPL");
