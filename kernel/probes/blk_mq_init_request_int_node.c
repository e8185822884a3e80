// SPDX-License-Identifier: GPL-2.0
/* 7.x: blk_mq_ops.init_request takes the NUMA node as int, not unsigned int. */
#include <linux/blk-mq.h>
#include <linux/build_bug.h>
#include <linux/module.h>

typedef int (*dblock_probe_init_request_t)(struct blk_mq_tag_set *set,
					   struct request *rq,
					   unsigned int hctx_idx,
					   int numa_node);

static_assert(__builtin_types_compatible_p(typeof(((struct blk_mq_ops *)NULL)->init_request),
					   dblock_probe_init_request_t));
MODULE_LICENSE("GPL");
