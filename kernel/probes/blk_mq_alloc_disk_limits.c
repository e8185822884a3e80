// SPDX-License-Identifier: GPL-2.0
/* 6.9: blk_mq_alloc_disk() takes the queue limits. */
#include <linux/blk-mq.h>
#include <linux/module.h>

struct gendisk *dblock_probe(struct blk_mq_tag_set *set);
struct gendisk *dblock_probe(struct blk_mq_tag_set *set)
{
	struct queue_limits lim = { .logical_block_size = 512 };

	return blk_mq_alloc_disk(set, &lim, NULL);
}
MODULE_LICENSE("GPL");
